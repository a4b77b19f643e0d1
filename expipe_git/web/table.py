"""The actions table: one row per action, the filter of its form, sorting and pages.

The form's fields are the criteria of ``project.actions.where(...)`` (tags,
type, location, users, entities, since, until), and :func:`select_actions`
asks ``where`` itself, on the snapshot the page reads, so the table shows
what a script calling ``where`` with the same criteria gets.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidValueError
from ..model import Project

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
    problem: str = ""  # why the attributes could not be read (a hand edit that does not parse)


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
            items: list[str] = []
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

    def where_arguments(self) -> dict[str, Any]:
        """The criteria as ``project.actions.where`` takes them (empty fields left out)."""
        arguments: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value:
                arguments[field.name] = list(value) if isinstance(value, tuple) else value
        return arguments

    def __bool__(self) -> bool:
        return bool(self.query_items())


def _comparable(when: dt.datetime) -> float:
    # Stored datetimes may be naive (local time) or aware; sort them as instants.
    return when.timestamp()


def select_actions(view: Project, rows: Mapping[str, ActionRow], criteria: Criteria) -> list[ActionRow]:
    """Return the rows of the actions that ``view.actions.where(...)`` finds with these criteria.

    Raises:
        InvalidValueError: a criterion cannot be read (since or until is not a date).
    """
    if not criteria:
        return list(rows.values())
    try:
        found = view.actions.where(**criteria.where_arguments())
    except InvalidValueError as exc:
        raise InvalidValueError(f"cannot filter the actions: {exc}") from None
    return [rows[name] for name in found if name in rows]


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
