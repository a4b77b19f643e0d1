"""What the criteria of ``where`` mean: checking them, and matching one object's facts.

``project.actions.where(tags="x", since="2026-05-01")`` is checked here at
call time (unknown criteria and bad values raise before any work), into a
:class:`Criteria`. An object's :class:`Facts` are the parts of its records
criteria look at; :func:`matches` is the Python answer for one object, and
the SQL of :mod:`expipe_git.queryindex` answers the same for many.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import dateutil.parser

from . import history, layout
from .errors import InvalidTypeError, InvalidValueError

LIST_CRITERIA = ("tags", "users", "entities")
CRITERIA = {
    "action": ("tags", "any_tags", "type", "location", "users", "entities", "since", "until", "modules"),
    "entity": ("tags", "any_tags", "type", "location", "users", "since", "until", "modules"),
}


# ---------------------------------------------------------------------------
# Criteria


@dataclass(frozen=True)
class Bound:
    """One end of a date range: an instant, and the same as local wall-clock time.

    An aware stored datetime is compared as an instant; a naive one (most
    are: ``datetime.now()``) is local time, as ``log --since`` takes it, so
    it is compared with the bound's local wall-clock time. Both are kept as
    microseconds (the wall clock counted as if it were UTC).
    """

    instant: int
    wall: int
    exclusive: bool  # ``until`` given as a bare date: before the next midnight


@dataclass(frozen=True)
class Criteria:
    """Validated criteria of one ``where`` call, combined with AND."""

    kind: str
    tags: tuple[str, ...] = ()
    any_tags: tuple[str, ...] | None = None
    type: str | None = None
    location: str | None = None
    users: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    since: Bound | None = None
    until: Bound | None = None
    modules: tuple[tuple[str, str], ...] = ()  # (key path as JSON text, value as key text)


def parse_criteria(kind: str, criteria: Mapping[str, Any]) -> Criteria:
    """Check ``where``'s keyword arguments and return them as :class:`Criteria`.

    Raises:
        InvalidTypeError (a TypeError): an unknown criterion, or a value of the wrong type.
        InvalidValueError (a ValueError): a value that cannot be read, such as a date.
    """
    known = CRITERIA[kind]
    unknown = sorted(set(criteria) - set(known))
    if unknown:
        raise InvalidTypeError(
            f"{layout.FOLDER_KINDS[kind]}.where() got unknown criteria {', '.join(unknown)}; "
            f"use {', '.join(known)}"
        )
    found: dict[str, Any] = {}
    for name in LIST_CRITERIA:
        if criteria.get(name) is not None:
            found[name] = _strings(criteria[name], name)
    if criteria.get("any_tags") is not None:
        any_tags = criteria["any_tags"]
        if isinstance(any_tags, str):
            raise InvalidTypeError("any_tags: expected a list of str (any_tags=['a', 'b']), got a str")
        found["any_tags"] = _strings(any_tags, "any_tags")
    for name in ("type", "location"):
        if criteria.get(name) is not None:
            if not isinstance(criteria[name], str):
                raise InvalidTypeError(f"{name}: expected a str, got {type(criteria[name]).__name__}")
            found[name] = criteria[name]
    if criteria.get("since") is not None:
        found["since"] = _bound(criteria["since"], "since", end_of_day=False)
    if criteria.get("until") is not None:
        found["until"] = _bound(criteria["until"], "until", end_of_day=True)
    if criteria.get("modules") is not None:
        found["modules"] = _module_criteria(criteria["modules"])
    return Criteria(kind, **found)


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidTypeError(f"{name}: expected a str or a list of str, got {type(value).__name__}")
    items = tuple(value)
    bad = [type(v).__name__ for v in items if not isinstance(v, str)]
    if bad:
        raise InvalidTypeError(f"{name}: expected a str or a list of str, got items of type {bad}")
    return items


_BARE_DAY = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}|today|yesterday)\s*$", re.IGNORECASE)


def _bound(value: Any, name: str, *, end_of_day: bool) -> Bound:
    day: dt.date | None = None
    try:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            day = value
        elif isinstance(value, str) and _BARE_DAY.match(value):
            day = history.parse_when(value).date()
        if day is not None and end_of_day:
            when, exclusive = history.parse_when(day + dt.timedelta(days=1)), True
        else:
            when, exclusive = history.parse_when(value), False
    except InvalidValueError as exc:
        raise InvalidValueError(f"{name}: {exc}") from None
    except InvalidTypeError as exc:
        raise InvalidTypeError(f"{name}: {exc}") from None
    wall = when.astimezone().replace(tzinfo=None)
    return Bound(_micros(when), _wall_micros(wall), exclusive)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _micros(when: dt.datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _wall_micros(when: dt.datetime) -> int:
    return _micros(when.replace(tzinfo=dt.timezone.utc))


def stored_time(value: Any) -> tuple[bool, int] | None:
    """Return (naive?, microseconds) of a stored ``datetime`` attribute, or None if it is none.

    Text is read as ISO 8601 (expipe 0.6 stored it so), as ``action.datetime`` reads it.
    """
    if isinstance(value, str):
        try:
            value = dateutil.parser.isoparse(value)
        except (ValueError, OverflowError):
            return None
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        return True, _wall_micros(value)
    return False, _micros(value)


def _module_criteria(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise InvalidTypeError(
            "modules: expected a dict of key path -> value, e.g. "
            "modules={'electrophysiology.probe.depth': 3 * pq.um}"
        )
    found = []
    for path, wanted in value.items():
        parts = _key_path(path)
        if isinstance(wanted, Mapping):
            raise InvalidTypeError(
                f"modules: the value for {path!r} is a dict; name a leaf key (e.g. {path!r}.key) instead"
            )
        key = value_key(wanted)
        if key is None:
            raise InvalidTypeError(
                f"modules: cannot compare {path!r} with {type(wanted).__name__} {wanted!r}; "
                "use a str, number, bool, datetime, quantity or a list of them"
            )
        found.append((path_key(parts), key))
    return tuple(found)


def _key_path(path: Any) -> tuple:
    if isinstance(path, str):
        parts: tuple = tuple(path.split("."))
    elif isinstance(path, tuple):
        parts = path
    else:
        raise InvalidTypeError(
            f"modules: a key path is 'module.key.subkey' or a tuple ('module', 'key'), got {path!r}"
        )
    if len(parts) < 2 or not all((isinstance(p, str) and p) or type(p) is int for p in parts):
        raise InvalidValueError(
            f"modules: the key path {path!r} must name a module and a key in it, e.g. 'tracking.box'"
            " (a tuple when names hold dots)"
        )
    if not isinstance(parts[0], str):
        raise InvalidValueError(f"modules: the key path {path!r} must start with a module name")
    return parts


def path_key(parts: tuple) -> str:
    """Return the text that names a module key path (module first) in the index."""
    return json.dumps(list(parts), ensure_ascii=False)


def value_key(value: Any) -> str | None:
    """Return the text two equal leaf values share, or None for a value criteria cannot compare.

    Numbers compare by value (3 equals 3.0; nan equals nothing); quantities
    by value and unit as stored (3 um, not 3000 nm); lists item by item;
    datetimes as instants, naive ones as wall-clock time.
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"b:{int(value)}"
    if isinstance(value, str):
        return "s:" + value
    if hasattr(value, "dimensionality") and hasattr(value, "magnitude"):
        import numpy

        magnitude = numpy.asarray(value.magnitude)
        if magnitude.dtype.kind not in "iuf":
            return None
        numbers = [_number(float(x)) for x in magnitude.ravel().tolist()]
        if any(n is None for n in numbers):
            return "nan"
        shape = "x".join(map(str, magnitude.shape))
        uncertainty = getattr(value, "uncertainty", None)
        extra = "" if uncertainty is None else f"±{value_key(uncertainty)}"
        return f"q:{shape}:{','.join(numbers)}:{value.dimensionality.string}{extra}"  # type: ignore[arg-type]
    item = value.item() if type(value).__module__ == "numpy" and hasattr(value, "item") else value
    if isinstance(item, bool):
        return f"b:{int(item)}"
    if isinstance(item, int):
        return f"n:{item}"
    if isinstance(item, float):
        number = _number(item)
        return "nan" if number is None else "n:" + number
    if isinstance(value, dt.datetime):
        found = stored_time(value)
        return None if found is None else f"t:{int(found[0])}:{found[1]}"
    if isinstance(value, (dt.date, dt.time)):
        return f"{type(value).__name__}:{value.isoformat()}"
    if isinstance(value, (list, tuple)):
        items = [value_key(item) for item in value]
        if any(item is None for item in items):
            return None
        return "l:" + json.dumps(items, ensure_ascii=False)
    return None


def _number(x: float) -> str | None:
    """Return the text of a number as ``value_key`` compares it: 3.0 and 3 alike."""
    if math.isnan(x):
        return None
    if x.is_integer() and abs(x) < 2**53:
        return str(int(x))
    return repr(x)


# ---------------------------------------------------------------------------
# What one object offers to criteria


@dataclass
class Facts:
    """What criteria look at in one action or entity."""

    type: str | None
    location: str | None
    time: tuple[bool, int] | None
    lists: dict[str, tuple[str, ...]]
    module_values: dict[str, set[str]]  # key path -> the value key of its leaf


def facts_of(attributes: Any, modules: Mapping[str, Any]) -> Facts:
    """Return the facts of an object from its attributes record and module records."""
    if not isinstance(attributes, dict):
        attributes = {}
    lists = {}
    for name in LIST_CRITERIA:
        items = attributes.get(name)
        lists[name] = tuple(v for v in items if isinstance(v, str)) if isinstance(items, list) else ()
    module_values: dict[str, set[str]] = {}
    for module, record in modules.items():
        if not isinstance(record, dict):
            continue
        for key, leaf in history.leaves(record):
            if not key:
                continue
            found = value_key(leaf)
            if found is not None and found != "nan":
                module_values.setdefault(path_key((module, *key)), set()).add(found)
    kind_type, location = attributes.get("type"), attributes.get("location")
    return Facts(
        kind_type if isinstance(kind_type, str) else None,
        location if isinstance(location, str) else None,
        stored_time(attributes.get("datetime")),
        lists,
        module_values,
    )


def _after(time: tuple[bool, int], bound: Bound) -> bool:
    return time[1] >= (bound.wall if time[0] else bound.instant)


def _before(time: tuple[bool, int], bound: Bound) -> bool:
    limit = bound.wall if time[0] else bound.instant
    return time[1] < limit if bound.exclusive else time[1] <= limit


def matches(criteria: Criteria, facts: Facts) -> bool:
    """Whether one object's facts meet every criterion."""
    if criteria.type is not None and facts.type != criteria.type:
        return False
    if criteria.location is not None and facts.location != criteria.location:
        return False
    for name in LIST_CRITERIA:
        wanted = getattr(criteria, name)
        if wanted and not set(wanted) <= set(facts.lists[name]):
            return False
    if criteria.any_tags is not None and not set(criteria.any_tags) & set(facts.lists["tags"]):
        return False
    if criteria.since is not None or criteria.until is not None:
        if facts.time is None:
            return False
        if criteria.since is not None and not _after(facts.time, criteria.since):
            return False
        if criteria.until is not None and not _before(facts.time, criteria.until):
            return False
    return all(value in facts.module_values.get(path, ()) for path, value in criteria.modules)
