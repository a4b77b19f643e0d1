"""Which actions the actions table shows: the criteria of its form, and one selecting function.

The form's fields are the arguments of ``project.actions.where(...)``: tags,
type, location, users, entities and a date range (``since``/``until``, on
each action's ``datetime``). :func:`select_actions` is the one place that
applies them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from .. import history
from ..errors import InvalidValueError

# Columns a person can sort the table by, as the ``sort`` parameter names them.
SORT_KEYS = ("name", "datetime", "type", "location", "users", "entities", "tags", "registered")
PAGE_SIZE = 50


@dataclasses.dataclass(frozen=True)
class ActionRow:
    """What the actions table shows of one action (read from one snapshot)."""

    name: str
    datetime: dt.datetime | None
    registered: dt.datetime | None
    type: str | None
    location: str | None
    users: tuple[str, ...]
    entities: tuple[str, ...]
    tags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Criteria:
    """The filter of the actions table; an empty field does not filter."""

    tags: tuple[str, ...] = ()
    type: str = ""
    location: str = ""
    users: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    since: str = ""
    until: str = ""

    @classmethod
    def from_query(cls, params: Any) -> Criteria:
        """Read the criteria from a request's query parameters (a starlette ``QueryParams``).

        A list field may be given once per value (``tags=a&tags=b``) or as one
        comma-separated value (``tags=a, b``), as a person types it into the form.
        """

        def listed(key: str) -> tuple[str, ...]:
            items = []
            for value in params.getlist(key):
                items.extend(part.strip() for part in value.split(","))
            return tuple(dict.fromkeys(item for item in items if item))

        return cls(
            tags=listed("tags"),
            type=params.get("type", "").strip(),
            location=params.get("location", "").strip(),
            users=listed("users"),
            entities=listed("entities"),
            since=params.get("since", "").strip(),
            until=params.get("until", "").strip(),
        )

    def query_items(self) -> list[tuple[str, str]]:
        """The criteria as query parameters (for links that keep the filter)."""
        items = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                if value:
                    items.append((field.name, ", ".join(value)))
            elif value:
                items.append((field.name, value))
        return items

    def __bool__(self) -> bool:
        return bool(self.query_items())


def _moment(text: str, field: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        return history.parse_when(text)
    except (ValueError, OverflowError) as exc:
        raise InvalidValueError(
            f"{field} {text!r} is not a date: use e.g. 2026-11-01, '2026-11-01 14:00' or '3 days ago'"
        ) from exc


def _comparable(when: dt.datetime) -> float:
    # Stored datetimes may be naive (local time) or aware; compare them as instants.
    return when.timestamp()


def select_actions(rows: Sequence[ActionRow], criteria: Criteria) -> list[ActionRow]:
    """Return the rows that match every criterion, in the order given.

    Tags, users and entities: the action has every value listed. Type and
    location: equal. since/until: the action's datetime lies in the span
    (ends included); an action without a datetime is left out by a span.

    Raises:
        InvalidValueError: since or until is not a date.
    """
    since = _moment(criteria.since, "since")
    until = _moment(criteria.until, "until")
    start = None if since is None else _comparable(since)
    end = None if until is None else _comparable(until)
    wanted = (
        ("tags", set(criteria.tags)),
        ("users", set(criteria.users)),
        ("entities", set(criteria.entities)),
    )
    chosen = []
    for row in rows:
        if criteria.type and row.type != criteria.type:
            continue
        if criteria.location and row.location != criteria.location:
            continue
        if any(values and not values <= set(getattr(row, key)) for key, values in wanted):
            continue
        if start is not None or end is not None:
            if row.datetime is None:
                continue
            moment = _comparable(row.datetime)
            if (start is not None and moment < start) or (end is not None and moment > end):
                continue
        chosen.append(row)
    return chosen


def sort_rows(rows: list[ActionRow], sort: str) -> list[ActionRow]:
    """Sort by a column of SORT_KEYS; a leading '-' sorts descending. Empty values go last."""
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        raise InvalidValueError(f"cannot sort by {sort!r}; sort by one of: {', '.join(SORT_KEYS)}")
    descending = sort.startswith("-")

    def value(row: ActionRow) -> Any:
        item = getattr(row, key)
        if isinstance(item, dt.datetime):
            return _comparable(item)
        if isinstance(item, tuple):
            return ", ".join(item)
        return item

    present = [row for row in rows if value(row) not in (None, "")]
    missing = [row for row in rows if value(row) in (None, "")]
    present.sort(key=lambda row: (value(row), row.name), reverse=descending)
    return present + missing


def choices(rows: Sequence[ActionRow]) -> Mapping[str, list[str]]:
    """Every value of each filterable field in use, sorted (for the form's suggestions)."""
    found: dict[str, set[str]] = {
        "tags": set(),
        "type": set(),
        "location": set(),
        "users": set(),
        "entities": set(),
    }
    for row in rows:
        found["tags"].update(row.tags)
        found["users"].update(row.users)
        found["entities"].update(row.entities)
        if row.type:
            found["type"].add(row.type)
        if row.location:
            found["location"].add(row.location)
    return {key: sorted(values) for key, values in found.items()}
