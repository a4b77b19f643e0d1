"""How the command line shows things: records as text, JSON, changes and commits, colour, progress."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import history, merge
from ..layout import key_text
from .base import PROG

JSON_NOTE = (
    "JSON output: datetimes, dates and times are ISO 8601 strings; a Quantity is "
    '{"value": ..., "unit": "um"} (plus "uncertainty" for an UncertainQuantity), '
    "its value a number or nested lists; numpy arrays are lists and numpy scalars numbers; "
    'NaN and infinities, which JSON cannot hold, are the strings "NaN", "Infinity" and '
    '"-Infinity" (float() reads them back); None is null; integer keys become strings.'
)
SIGN = {"added": "+", "removed": "-", "modified": "~"}
COLOR = {"added": "32", "removed": "31", "modified": "33", "commit": "33"}


def error(message: str) -> None:
    """Print ``message`` as the CLI's one error line on stderr."""
    print(f"{PROG}: error: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# JSON


def _quantity_type() -> Any:  # quantities.Quantity once quantities is imported, else None
    quantities = sys.modules.get("quantities")
    return None if quantities is None else quantities.Quantity


def jsonable(value: Any) -> Any:
    """Turn a stored value into plain JSON data (see JSON_NOTE)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    quantity = _quantity_type()
    if quantity is not None and isinstance(value, quantity):
        out = {"value": jsonable(value.magnitude.tolist()), "unit": value.dimensionality.string}
        uncertainty = getattr(value, "uncertainty", None)
        if uncertainty is not None:
            out["uncertainty"] = jsonable(getattr(uncertainty, "magnitude", uncertainty).tolist())
        return out
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic)):
        return jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def print_json(data: Any) -> None:
    print(json.dumps(jsonable(data), indent=2, ensure_ascii=False, allow_nan=False))


def conflict_json(conflict: Any) -> dict:
    """One conflict of a stopped merge as `conflicts --json` and `status --json` show it."""
    row = {"object": conflict.object, "key": conflict.key, "kind": conflict.kind, "path": conflict.path}
    sides = {"base": conflict.base, "ours": conflict.ours, "theirs": conflict.theirs}
    row.update({side: None if value is merge.ABSENT else value for side, value in sides.items()})
    row["absent"] = [side for side, value in sides.items() if value is merge.ABSENT]
    return row


# ---------------------------------------------------------------------------
# Records as text for people


def scalar_text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    quantity = _quantity_type()
    if quantity is not None and isinstance(value, quantity):
        return " ".join(str(value).split())  # an array quantity's str may wrap
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        return " ".join(str(value).split())
    return str(value)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (Mapping, list, tuple))


def record_lines(value: Any, indent: str = "") -> list[str]:
    """Lines showing a record to a person, nested by indentation."""
    if isinstance(value, Mapping):
        lines = []
        for key, item in value.items():
            lines.extend(_item_lines(f"{indent}{key}:", item, indent))
        return lines
    if isinstance(value, (list, tuple)):
        if all(_is_scalar(v) for v in value):
            return [indent + _list_text(value)]
        lines = []
        for item in value:
            lines.extend(_item_lines(f"{indent}-", item, indent))
        return lines
    return [indent + line for line in scalar_text(value).splitlines() or [""]]


def _item_lines(label: str, item: Any, indent: str) -> list[str]:
    inner = indent + "  "
    if isinstance(item, Mapping):
        return [label] + (record_lines(item, inner) if item else [inner + "{}"])
    if isinstance(item, (list, tuple)) and not all(_is_scalar(v) for v in item):
        return [label, *record_lines(item, inner)]
    if isinstance(item, (list, tuple)):
        return [f"{label} {_list_text(item)}"]
    text = scalar_text(item)
    if "\n" in text:
        return [f"{label} |", *(inner + line for line in text.splitlines())]
    return [f"{label} {text}"]


def _list_text(items: Any) -> str:
    return ", ".join(scalar_text(v) for v in items) if items else "[]"


def dash(value: Any) -> str:
    """A table cell: ``-`` for nothing, a datetime to the second."""
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def table_lines(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as aligned columns, two spaces apart; the last column is not padded."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]) for row in rows]


def value_text(value: Any) -> str:
    """A stored value on one line, units included: ``2.0 um``, ``[a, b]``, ``{x: 1}``."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {value_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(item) for item in value) + "]"
    return scalar_text(value).replace("\n", "\\n")


# ---------------------------------------------------------------------------
# Changes and commits


def use_color() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def paint(text: str, what: str, color: bool) -> str:
    return f"\033[{COLOR[what]}m{text}\033[0m" if color else text


def change_lines(change: history.Change, color: bool) -> list[str]:
    """A key-level change as ``+``/``-``/``~`` lines (a created record: one line per key)."""
    where = change.address or change.path
    sign = SIGN[change.kind]
    if change.key == ():
        if change.kind == "added":
            lines = [f"{sign} {where}: created"]
            if isinstance(change.new, Mapping):
                lines += [f"    {key_text(k)}: {value_text(v)}" for k, v in history.leaves(change.new) if k]
        elif change.kind == "removed":
            lines = [f"{sign} {where}: deleted"]
        elif change.object is None and isinstance(change.old, str) and isinstance(change.new, str):
            lines = [f"{sign} {where}: changed", *text_diff_lines(change.old, change.new)]
        else:
            lines = [f"{sign} {where}: {value_text(change.old)} -> {value_text(change.new)}"]
    elif change.kind == "added":
        lines = [f"{sign} {where} {key_text(change.key)}: {value_text(change.new)}"]
    elif change.kind == "removed":
        lines = [f"{sign} {where} {key_text(change.key)}: {value_text(change.old)}"]
    else:
        lines = [
            f"{sign} {where} {key_text(change.key)}: {value_text(change.old)} -> {value_text(change.new)}"
        ]
    return [paint(lines[0], change.kind, color), *lines[1:]]


def text_diff_lines(old: str, new: str) -> list[str]:
    """The lines of a file that is not a record (README.md) that changed, as ``diff -u`` shows them."""
    if "\0" in old or "\0" in new:
        return ["    (a binary file: its lines are not shown)"]
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
    return [f"    {line}" for line in list(diff)[2:]]  # without the ---/+++ header


def change_json(change: history.Change) -> dict:
    return {
        "kind": change.kind,
        "path": change.path,
        "object": change.address,
        "key": list(change.key),
        "old": change.old,
        "new": change.new,
    }


def commit_json(commit: history.Commit, changes: list[history.Change]) -> dict:
    return {
        "id": commit.id,
        "author": commit.author,
        "author_email": commit.author_email,
        "datetime": commit.datetime,
        "message": commit.message,
        "parents": list(commit.parents),
        "changes": [change_json(c) for c in changes],
    }


def commit_lines(commit: history.Commit, color: bool) -> list[str]:
    """A commit as ``git show`` prints it, its key-level changes in place of a patch."""
    lines = [paint(f"commit {commit.id}", "commit", color)]
    if len(commit.parents) > 1:
        lines.append("Merge: " + " ".join(p[:7] for p in commit.parents))
    lines.append(f"Author: {commit.author} <{commit.author_email}>")
    lines.append(f"Date:   {commit.datetime.strftime('%Y-%m-%d %H:%M:%S %z')}")
    lines.append("")
    lines += ["    " + line if line else "" for line in commit.message.rstrip("\n").split("\n")]
    if commit.changes:
        lines.append("")
    for change in commit.changes:
        lines += change_lines(change, color)
    return lines


# ---------------------------------------------------------------------------
# Progress, on a terminal only


def progress_bar(stream: Any, width: int = 30) -> Callable[[int, int, str], None]:
    """Return a progress callback drawing one line on a terminal, redrawn in place."""
    shown = {"line": ""}

    def draw(done: int, total: int, what: str) -> None:
        filled = width * done // total if total else width
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"
        columns = shutil.get_terminal_size((100, 20)).columns - 1
        line = line[:columns]
        stream.write("\r" + line + " " * max(0, len(shown["line"]) - len(line)))
        if done >= total:
            stream.write("\n")
            line = ""
        stream.flush()
        shown["line"] = line

    return draw


def transfer_progress() -> Callable[[str], None] | None:
    """Show transfer progress on stderr, and only when a person watches it."""
    if not sys.stderr.isatty():
        return None

    def show(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    return show
