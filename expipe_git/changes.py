"""What changed: one key of one record, and the key-level difference of two records.

A :class:`Change` names its file, its object (an address tuple, see
:mod:`expipe_git.history`) and its key path; values are compared as they
would be stored (:func:`same_value`: nan equals nan, units must match).
"""

from __future__ import annotations

import builtins
import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import layout

# What value_at returns (and history reads) where a key or record is absent.
MISSING = object()


@dataclass(frozen=True)
class Change:
    """One key of one record that differs between two states of a project.

    Attributes:
        kind: "added", "modified" or "removed".
        path: the file in the repository.
        object: the address tuple of the object the file stores (see the
            module docstring), or None for a file outside the layout.
        key: the keys leading to the value inside the record; ``()`` for the
            whole record.
        old: the value before (None when added), decoded.
        new: the value after (None when removed), decoded.
    """

    kind: str
    path: str
    object: tuple[str, ...] | None
    key: tuple
    old: Any = field(compare=False)
    new: Any = field(compare=False)

    @property
    def address(self) -> str | None:
        """The object's CLI address, e.g. ``action/rec-1/module/tracking``."""
        return None if self.object is None else layout.address(self.object)

    # In this class body ``object`` is the field above, so the builtin is named in full.
    def __eq__(self, other: builtins.object) -> bool:
        if not isinstance(other, Change):
            return NotImplemented
        return (self.kind, self.path, self.object, self.key) == (
            other.kind,
            other.path,
            other.object,
            other.key,
        ) and (same_value(self.old, other.old) and same_value(self.new, other.new))


def leaves(value: Any) -> list[tuple[tuple, Any]]:
    """Return (key path, value) of every leaf of a record: tables are opened, lists are leaves."""
    return list(iter_leaves(value))


def diff_values(path: str, obj: tuple[str, ...] | None, key: tuple, old: Any, new: Any) -> Iterator[Change]:
    """Yield the changes from ``old`` to ``new``, descending into tables (``key``: where they are)."""
    if type(old) is dict and type(new) is dict:
        for name, value in old.items():
            if name not in new:
                yield Change("removed", path, obj, (*key, name), value, None)
            else:
                yield from diff_values(path, obj, (*key, name), value, new[name])
        for name, value in new.items():
            if name not in old:
                yield Change("added", path, obj, (*key, name), None, value)
    elif not same_value(old, new):
        yield Change("modified", path, obj, key, old, new)


def iter_leaves(value: Any, key: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Yield (key path, value) for each leaf of ``value``; an empty table is a leaf."""
    if type(value) is dict and value:
        for name, item in value.items():
            yield from iter_leaves(item, (*key, name))
    else:
        yield key, value


def value_at(record: Any, key: tuple) -> Any:
    """Return the value at key path ``key`` of ``record``, or MISSING."""
    node = record
    for name in key:
        if type(node) is not dict or name not in node:
            return MISSING
        node = node[name]
    return node


def put_at(record: dict, key: tuple, value: Any) -> None:
    """Set key path ``key`` of ``record``, making the tables on the way."""
    node = record
    for name in key[:-1]:
        if type(node.get(name)) is not dict:
            node[name] = {}
        node = node[name]
    node[key[-1]] = value


def delete_at(record: dict, key: tuple) -> None:
    """Delete key path ``key`` of ``record``."""
    node = record
    for name in key[:-1]:
        node = node[name]
    del node[key[-1]]


def same_value(a: Any, b: Any) -> bool:
    """Whether two decoded values would be stored the same (nan equals nan, units must match)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dt.datetime) or isinstance(a, dt.time):
        return a == b and a.utcoffset() == b.utcoffset() and str(a.tzinfo) == str(b.tzinfo)
    if hasattr(a, "dimensionality") and hasattr(a, "magnitude"):
        import numpy

        if a.dimensionality.string != b.dimensionality.string or a.shape != b.shape:
            return False
        try:
            if not numpy.array_equal(a.magnitude, b.magnitude, equal_nan=True):
                return False
        except TypeError:
            if not numpy.array_equal(a.magnitude, b.magnitude):
                return False
        return same_value(getattr(a, "uncertainty", None), getattr(b, "uncertainty", None))
    try:
        result = a == b
        return bool(result.all()) if hasattr(result, "all") else bool(result)
    except (TypeError, ValueError):
        return False
