"""Stored values as the pages show them: text plus a unit, and nested tables.

Templates receive plain data (:class:`Shown` leaves, lists of rows) and never
format a value themselves, so every page writes a value the same way.
Escaping is the templates' job (Jinja2 autoescapes every string).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy
import quantities

# An array longer than this is shown by its first values and its length.
_ARRAY_PREVIEW = 12


@dataclasses.dataclass(frozen=True)
class Shown:
    """One value as text, with its unit apart (empty when it has none)."""

    text: str
    unit: str = ""
    kind: str = "scalar"  # "scalar", "none" (no value) or "table" (see rows)
    rows: tuple = ()  # of (key text, Shown) for a table

    def __str__(self) -> str:
        return f"{self.text} {self.unit}".strip()


def when_text(when: dt.datetime | dt.date | None) -> str:
    """A datetime to the minute (seconds when it has any), with its UTC offset if it has one."""
    if when is None:
        return "—"
    if isinstance(when, dt.datetime):
        text = when.strftime("%Y-%m-%d %H:%M:%S" if when.second else "%Y-%m-%d %H:%M")
        if when.tzinfo is not None:
            text += " " + when.strftime("%z")
        return text
    return when.isoformat()


def _number(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return repr(value)
    return str(value)


def _array_text(values: Any) -> str:
    if isinstance(values, list):
        if len(values) > _ARRAY_PREVIEW:
            head = ", ".join(_array_text(v) for v in values[:_ARRAY_PREVIEW])
            return f"[{head}, … ({len(values):,} values)]"
        return "[" + ", ".join(_array_text(v) for v in values) + "]"
    return _number(values)


def show(value: Any) -> Shown:
    """Return how a stored (decoded) value is shown."""
    if value is None:
        return Shown("—", kind="none")
    if isinstance(value, bool):
        return Shown("true" if value else "false")
    if isinstance(value, quantities.Quantity):
        unit = value.dimensionality.unicode
        text = _array_text(value.magnitude.tolist())
        uncertainty = getattr(value, "uncertainty", None)
        if uncertainty is not None:
            spread = getattr(uncertainty, "magnitude", uncertainty)
            text += " ± " + _array_text(numpy.asarray(spread).tolist())
        return Shown(text, "" if unit == "dimensionless" else unit)
    if isinstance(value, (numpy.ndarray, numpy.generic)):
        return Shown(_array_text(value.tolist()))
    if isinstance(value, (dt.datetime, dt.date)):
        return Shown(when_text(value))
    if isinstance(value, dt.time):
        return Shown(value.isoformat())
    if isinstance(value, Mapping):
        rows = tuple((str(key), show(item)) for key, item in value.items())
        return Shown(f"{len(rows)} keys", kind="table", rows=rows)
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, str) for item in value):
            return Shown(", ".join(value) if value else "(empty list)")
        return Shown("[" + ", ".join(str(show(item)) for item in value) + "]")
    if isinstance(value, (int, float)):
        return Shown(_number(value))
    return Shown(str(value))
