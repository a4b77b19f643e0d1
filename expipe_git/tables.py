"""Tables of actions, entities and changes: pandas DataFrames and CSV.

One row per object, a column per attribute (``name`` first), and with
``modules=[...]`` one column per leaf key of those modules, flattened with
dots (``electrophysiology.probe.depth``). A quantity becomes a float (an
array quantity a list of floats) and its unit goes in the column's name,
``electrophysiology.probe.depth [um]``; a key stored with two units has a
column for each. The same rows feed ``to_dataframe()`` and ``expipe-git list
--csv``, so the CSV needs no pandas.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from . import history, layout
from .errors import InvalidTypeError

# Attributes in the order the columns show them; any others follow, sorted.
ATTRIBUTE_ORDER = ("registered", "datetime", "type", "location", "users", "tags", "entities", "data")
LOG_COLUMNS = ("commit", "author", "datetime", "object", "key", "old", "new")
PANDAS_HINT = "pip install 'expipe_git[pandas]'"


def require_pandas() -> Any:
    """Import pandas, or say how to install it."""
    try:
        import pandas
    except ImportError:
        raise ImportError(
            f"to_dataframe() needs pandas, which is not installed; {PANDAS_HINT} (or pip install pandas)"
        ) from None
    return pandas


def check_modules(modules: Any) -> list[str]:
    """Return the module names of a ``modules=`` argument (a str or a list of str)."""
    if modules is None:
        return []
    if isinstance(modules, str):
        modules = [modules]
    if isinstance(modules, (bytes, dict)) or not isinstance(modules, Iterable):
        raise InvalidTypeError(f"modules: expected a list of module names, got {type(modules).__name__}")
    names = list(modules)
    for name in names:
        layout.check_name(name, "module")
    return names


def _is_quantity(value: Any) -> bool:
    return hasattr(value, "dimensionality") and hasattr(value, "magnitude")


def _cell(value: Any) -> tuple[Any, str | None]:
    """Return a value as a table cell, and the unit for its column's name (None for no unit)."""
    if _is_quantity(value):
        import numpy

        magnitude = numpy.asarray(value.magnitude, dtype=float)
        number: Any = float(magnitude) if magnitude.ndim == 0 else magnitude.tolist()
        return number, value.dimensionality.string
    if type(value) is tuple:
        return list(value), None
    return value, None


def object_rows(
    records: Iterable[tuple[str, dict, dict]], modules: Sequence[str] = ()
) -> tuple[list[str], list[dict]]:
    """Return (columns, one dict per object) from (name, attributes, {module: contents}) of each."""
    rows: list[dict] = []
    attribute_keys: set[str] = set()
    module_columns: dict[str, None] = {}
    for name, attributes, contents in records:
        row: dict[str, Any] = {"name": name}
        for key, value in attributes.items():
            attribute_keys.add(key)
            row[key] = _cell(value)[0] if not isinstance(value, dict) else value
        for module in modules:
            if contents.get(module) is None:
                continue
            for key, value in history.leaves(contents[module]):
                cell, unit = _cell(value)
                column = ".".join(str(part) for part in (module, *key))
                if unit is not None:
                    column = f"{column} [{unit}]"
                module_columns.setdefault(column)
                row[column] = cell
        rows.append(row)
    ordered = [key for key in ATTRIBUTE_ORDER if key in attribute_keys]
    ordered += sorted(attribute_keys - set(ATTRIBUTE_ORDER))
    columns = ["name", *ordered, *sorted(module_columns)]
    return columns, rows


def key_changes(change: history.Change) -> list[tuple[str, Any, Any]]:
    """Return (dotted key, old, new) of each leaf a change touches.

    A record created or deleted whole is one change in the history; here
    it is one row per key it held, as a table of key-level changes wants.
    """
    old, new = change.old, change.new
    if change.kind == "added" and isinstance(new, dict) and new:
        pairs = [(key, None, value) for key, value in history.leaves(new)]
    elif change.kind == "removed" and isinstance(old, dict) and old:
        pairs = [(key, value, None) for key, value in history.leaves(old)]
    else:
        pairs = [((), old, new)]
    return [(".".join(str(part) for part in (*change.key, *key)), a, b) for key, a, b in pairs]


def log_rows(commits: Iterable[history.Commit]) -> list[dict]:
    """Return one row per key-level change of each commit: commit, author, datetime, object, key, old, new."""
    rows = []
    for commit in commits:
        author = f"{commit.author} <{commit.author_email}>"
        for change in commit.changes:
            for key, old, new in key_changes(change):
                rows.append(
                    {
                        "commit": commit.id,
                        "author": author,
                        "datetime": commit.datetime,
                        "object": change.address or change.path,
                        "key": key,
                        "old": old,
                        "new": new,
                    }
                )
    return rows


def dataframe(columns: Sequence[str], rows: list[dict], index: str | None = None) -> Any:
    """Return a pandas DataFrame of ``rows`` with exactly ``columns``."""
    pandas = require_pandas()
    frame = (
        pandas.DataFrame.from_records(rows, columns=list(columns))
        if rows
        else pandas.DataFrame(columns=columns)
    )
    if index is not None:
        frame = frame.set_index(index, drop=False)
        frame.index.name = None
    return frame


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_quantity(value):
        return str(value)
    return str(value)


def csv_text(columns: Sequence[str], rows: list[dict]) -> str:
    """Return the rows as CSV: a header line, dates in ISO 8601, lists as JSON, nothing for missing."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(column)) for column in columns])
    return out.getvalue()
