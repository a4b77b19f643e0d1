"""A time typed as text, as ``since``/``until`` and revisions take it."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import dateutil.parser

from .errors import (
    InvalidTypeError,
    InvalidValueError,
)

_AGO = re.compile(r"^(\d+)\s*(second|minute|hour|day|week)s?\s+ago$")


_RELATIVE_DAY = re.compile(r"^(now|today|yesterday)(?:\s+(.+))?$")


def aware(when: dt.datetime) -> dt.datetime:
    """Return ``when`` with a time zone: a naive time is local time."""
    return when if when.tzinfo is not None else when.astimezone()


def parse_when(value: Any, *, now: dt.datetime | None = None) -> dt.datetime:
    """Turn ``since``/``until`` into an aware datetime.

    Accepts a datetime or date (naive means local time); text dateutil reads
    ("2026-11-01", "2026-11-01 14:00", "1 Nov 2026"); "now", "today",
    "yesterday", optionally with a time ("yesterday 14:00"); and "N
    seconds/minutes/hours/days/weeks ago".

    Raises:
        InvalidValueError: the text is none of these.
    """
    if isinstance(value, dt.datetime):
        return aware(value)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).astimezone()
    if not isinstance(value, str):
        raise InvalidTypeError(
            f"expected a datetime or text such as '2026-11-01', not {type(value).__name__}"
        )
    now = aware(now) if now is not None else dt.datetime.now().astimezone()
    text = " ".join(value.strip().lower().split())
    ago = _AGO.match(text)
    if ago:
        return now - dt.timedelta(**{ago.group(2) + "s": int(ago.group(1))})
    relative = _RELATIVE_DAY.match(text)
    try:
        if relative:
            word, rest = relative.groups()
            if word == "now" and not rest:
                return now
            day = now.date() - dt.timedelta(days=1 if word == "yesterday" else 0)
            midnight = dt.datetime(day.year, day.month, day.day)
            if not rest:
                return midnight.astimezone()
            return aware(dateutil.parser.parse(rest, default=midnight))
        return aware(dateutil.parser.parse(value, default=dt.datetime.combine(now.date(), dt.time())))
    except (ValueError, OverflowError):
        raise InvalidValueError(
            f"cannot read {value!r} as a time; use e.g. '2026-11-01', '2026-11-01 14:00', "
            "'yesterday 14:00', 'today' or '3 days ago'"
        ) from None
