"""One record merged three ways: parsed TOML data key by key, and the conflicts it finds.

A record changed on both sides is merged on its parsed form
(:func:`expipe_git.values.parse`; tagged values such as quantities are single
values), descending into nested tables; ``tags``, ``users`` and ``entities``
of attributes are sets. The same key changed to different values on both sides
is a :class:`Conflict`, which the merge (:mod:`expipe_git.merge`) decides.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import decoding, layout, values
from .objects import LIST_ATTRIBUTES

if TYPE_CHECKING:
    from .merge import Merger


class _Absent:
    """The value of a key, record or object that does not exist on one side."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT = _Absent()


@dataclass(frozen=True, eq=False)
class Conflict:
    """One thing both sides of a merge changed differently.

    Attributes:
        object: the object's address (``action/rec-1``, ``action/rec-1/module/m``,
            ``project`` for expipe.toml); a file outside the layout is named by its path.
        key: the key inside the record, nested keys joined by ``.``
            (``probe.depth``); ``""`` when the whole record or object is in conflict.
        base: the value at the merge base; ours and theirs: the value on each
            side. Values are decoded (quantities, datetimes…); ``ABSENT`` where
            the key, record or object does not exist.
        path: the file, relative to the project folder.
        kind: ``"value"`` (changed differently on both sides), ``"deleted"``
            (deleted on one side, changed on the other) or ``"file"`` (a file
            outside the layout changed on both sides); the last two are
            resolved by taking a side.
    """

    object: str
    key: str
    base: Any
    ours: Any
    theirs: Any
    path: str
    kind: str = "value"

    def describe(self) -> str:
        """Return one line naming the conflict and its three values."""
        where = f"{self.object} {self.key}" if self.key else self.object
        if self.kind == "deleted":
            deleted = "ours" if self.ours is ABSENT else "theirs"
            return f"{where}: deleted in {deleted}, changed in the other"
        base, ours, theirs = map(short_value, (self.base, self.ours, self.theirs))
        return f"{where}: base {base}, ours {ours}, theirs {theirs}"


def short_value(value: Any) -> str:
    """Show a value in one short line: quantities as ``3.0 um``, strings quoted."""
    quantities = sys.modules.get("quantities")
    if value is ABSENT:
        text = "(absent)"
    elif quantities is not None and isinstance(value, quantities.Quantity):
        text = " ".join(str(value).split())
    elif isinstance(value, (dt.datetime, dt.date, dt.time)):
        text = value.isoformat()
    else:
        text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


# A decision for one conflict: "ours", "theirs" or ("value", raw TOML data);
# and, inside a virtual merge base only, "base".
Decision = Any


Decide = Callable[[Conflict], Decision]


def same_data(a: Any, b: Any) -> bool:
    """Equality that tells 1, 1.0 and True apart and finds nan equal to nan."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float:
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if kind is dict:
        return a.keys() == b.keys() and all(same_data(a[k], b[k]) for k in a)
    if kind is list:
        return len(a) == len(b) and all(same_data(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _is_table(value: Any) -> bool:
    """A table we merge key by key (tagged values such as quantities are single values)."""
    return type(value) is dict and "$type" not in value


def _set_merge(base: Any, ours: Any, theirs: Any) -> list:
    """Additions from both sides, removals from either; ours' order, then theirs' additions."""
    base, ours, theirs = ([] if x is ABSENT else x for x in (base, ours, theirs))
    removed_by_theirs = [x for x in base if x not in theirs]
    kept = [x for x in ours if x not in removed_by_theirs]
    return kept + [x for x in theirs if x not in base and x not in kept]


def _is_set(value: Any) -> bool:
    return value is ABSENT or (type(value) is list and all(type(x) in (str, int) for x in value))


def decision_text(decision: Decision) -> str:
    if isinstance(decision, str):
        return f"took {decision}"
    return f"set to {short_value(values.decode({'v': decision[1]}, what='resolution')['v'])}"


class RecordMerge:
    """Merge the raw data of one record, key by key."""

    def __init__(self, merger: Merger, obj: str, path: str, part: str, created_on_both: bool):
        self.merger = merger
        self.obj = obj
        self.path = path
        self.part = part
        self.created_on_both = created_on_both

    def merge(self, base: Any, ours: Any, theirs: Any, keys: tuple[str, ...]) -> Any:
        if same_data(ours, theirs):
            return ours
        if same_data(base, ours):
            return theirs
        if same_data(base, theirs):
            return ours
        if _is_table(ours) and _is_table(theirs) and (base is ABSENT or _is_table(base)):
            return self._merge_table({} if base is ABSENT else base, ours, theirs, keys)
        conflict = Conflict(
            self.obj,
            layout.key_text(tuple(map(decoding.user_key, keys))),
            self._decoded(base, keys),
            self._decoded(ours, keys),
            self._decoded(theirs, keys),
            self.path,
        )
        decision = self.merger.decision_for(conflict, allow_value=True)
        if decision is None or decision == "ours":
            return ours
        if decision == "theirs":
            return theirs
        if decision == "base":
            return base
        return decision[1]

    def _merge_table(self, base: dict, ours: dict, theirs: dict, keys: tuple[str, ...]) -> dict:
        out: dict[str, Any] = {}
        for name in [*ours, *(k for k in theirs if k not in ours)]:
            if name == "$int_keys":
                continue
            sides = (base.get(name, ABSENT), ours.get(name, ABSENT), theirs.get(name, ABSENT))
            if (
                same_data(sides[0], sides[1])
                or same_data(sides[0], sides[2])
                or same_data(sides[1], sides[2])
            ):
                merged: Any = self.merge(*sides, (*keys, name))  # changed on one side only
            elif (
                not keys
                and self.part == "attributes"
                and name in LIST_ATTRIBUTES
                and all(map(_is_set, sides))
            ):
                merged = _set_merge(*sides)
            elif not keys and name == "registered" and self.created_on_both and _comparable(sides[1:]):
                merged = min(sides[1], sides[2])
            else:
                merged = self.merge(*sides, (*keys, name))
            if merged is not ABSENT:
                out[name] = merged
        # "$int_keys" lists which keys are ints: merge it as a set, keeping the keys that remain.
        int_keys = [
            n
            for n in _set_merge(*(t.get("$int_keys", ABSENT) for t in (base, ours, theirs)))
            if str(n) in out
        ]
        return {"$int_keys": int_keys, **out} if int_keys else out

    def _decoded(self, raw: Any, keys: tuple[str, ...]) -> Any:
        if raw is ABSENT:
            return ABSENT
        what = f"{self.obj} ({self.path})"
        if not keys:
            return values.decode(raw, what=what)
        return values.decode({"v": raw}, what=what)["v"]


def _comparable(pair: tuple[Any, ...]) -> bool:
    return all(type(x) is dt.datetime for x in pair) and (pair[0].tzinfo is None) == (pair[1].tzinfo is None)
