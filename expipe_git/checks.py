"""Is a file a valid record in its place of the layout? Checks shared by
committing hand edits and merging another history.

The API writes only valid records; these checks guard what comes from
elsewhere: files edited by hand, and records of another branch or remote.
"""

from __future__ import annotations

import datetime as dt
import re

from . import layout, values
from .errors import CorruptFileError
from .git import Changes, Snapshot
from .objects import LIST_ATTRIBUTES, stored_datetime


def check_file(path: str, data: bytes) -> None:
    """Refuse a file (a hand edit, a merged or fetched record) that is not a valid record in its place."""
    if path == layout.IGNORE_FILE:
        return
    if not layout.in_layout(path):
        # A project file that is not a record (README.md, analysis/plot.ipynb):
        # any content, but a name every system and every clone can hold.
        unsafe = layout.outside_problem(path)
        if unsafe is not None:
            raise CorruptFileError(
                f"{path} cannot be part of the project: {unsafe}; rename it, "
                "or list it in .gitignore to keep it out",
                path,
            )
        return
    place = layout.place_of(path)
    right = layout.right_place(path) if place is None else None
    if right is not None:
        raise CorruptFileError(
            f"{path} is not where expipe_git looks for it: move it to {right} "
            "(actions and entities live in a folder named by a hash of the name), then commit again",
            path,
        )
    if place is None:
        top, slash, _ = path.partition("/")
        why = f"{top}/ holds only records" if slash else "its name is taken by expipe_git (in any case)"
        raise CorruptFileError(
            f"{path} is not a record in its place, and {why} (see docs/storage-format.md); "
            "move it out of the record folders or remove it, then commit again",
            path,
        )
    what = f"{layout.describe(place.obj)} ({path})"
    try:
        record = values.loads(data, what=what)
    except CorruptFileError as exc:
        exc.path = path
        raise
    if place.part in ("attributes", "config", "message", "template") and not isinstance(record, dict):
        raise CorruptFileError(f"{what}: expected a table of keys", path)
    problem = None
    if place.part == "attributes":
        problem = _attributes_problem(record)
    elif place.part == "message":
        problem = _message_problem(record)
    elif place.part == "template":
        problem = _template_problem(record)
    elif place.part == "config":
        problem = _config_problem(record)
    if problem is not None:
        key, rule = problem
        line = key_line(data, key)
        where = f"{path}, line {line}" if line else path
        raise CorruptFileError(
            f"{where} ({layout.describe(place.obj)}): {key} {rule}; fix the file or restore it with git", path
        )


# The rules below are those reads apply (objects.py, records.py): a file
# committed past them would make every later read of the object fail.


def _attributes_problem(record: dict) -> tuple[str, str] | None:
    for key in LIST_ATTRIBUTES:
        items = record.get(key)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, str) for i in items)):
            return key, "must be a list of strings"
    for key in ("type", "location"):
        if record.get(key) is not None and not isinstance(record[key], str):
            return key, "must be a string"
    for key in ("datetime", "registered"):
        try:
            stored_datetime(record.get(key), key)
        except CorruptFileError:
            return key, f"is {record[key]!r}, not a date and time (write e.g. {key} = 2026-11-01T14:00:00)"
    data = record.get("data")
    if data is not None and not (isinstance(data, dict) and all(isinstance(v, str) for v in data.values())):
        return "data", "must be a table of names to paths (text)"
    return None


def _message_problem(record: dict) -> tuple[str, str] | None:
    example = {"text": '"what happened"', "user": '"Mary"', "datetime": "2026-11-01T14:00:00"}
    for key, kind in (("text", str), ("user", str), ("datetime", dt.datetime)):
        if key not in record:
            return key, f"is missing: add {key} = {example[key]}"
        if not isinstance(record[key], kind):
            return key, f"must be {'text' if kind is str else 'a date and time'}, e.g. {key} = {example[key]}"
    return None


def _template_problem(record: dict) -> tuple[str, str] | None:
    identifier = record.get("identifier")
    if identifier is not None and not isinstance(identifier, str):
        return "identifier", "must be text (the name modules made from the template get)"
    return None


def _config_problem(record: dict) -> tuple[str, str] | None:
    found = record.get("storage_format", layout.STORAGE_FORMAT)
    if type(found) is not int or not 1 <= found <= layout.STORAGE_FORMAT:
        return "storage_format", f"must be {layout.STORAGE_FORMAT} (the version this expipe_git writes)"
    if "project" in record and not isinstance(record["project"], str):
        return "project", "must be text (the project's name)"
    return None


def key_line(data: bytes, key: str) -> int | None:
    """The line number of top-level ``key = ...`` in a TOML file, or None if not found."""
    pattern = re.compile(rb"^\s*(" + re.escape(key.encode()) + rb'|"' + re.escape(key.encode()) + rb'")\s*=')
    for number, line in enumerate(data.splitlines(), 1):
        if line.lstrip().startswith(b"["):
            return None  # past the top-level keys
        if pattern.match(line):
            return number
    return None


def check_objects_whole(snap: Snapshot, changes: Changes) -> None:
    """Refuse edits that leave modules or messages without their action or entity."""

    def exists_after(path: str) -> bool:
        return changes[path] is not None if path in changes else snap.blob_id(path) is not None

    for path, data in changes.items():
        place = layout.place_of(path)
        if place is None or place.obj[0] not in layout.FOLDER_KINDS:
            continue
        owner = place.obj[:2]
        attributes = layout.attributes_path(*owner)
        if data is not None and not exists_after(attributes):
            raise CorruptFileError(
                f"{path} belongs to {layout.describe(owner)}, which has no {attributes}; "
                "create the object through expipe_git first",
                path,
            )
        if data is None and place.part == "attributes":
            left = [p for p, _ in snap.walk(layout.object_dir(*owner)) if exists_after(p)]
            if left:
                raise CorruptFileError(
                    f"{path} was deleted but {left[0]} of {layout.describe(owner)} remains; "
                    "delete the whole folder (or project.delete_" + owner[0] + "(name))",
                    path,
                )


def check_case_twins(snap: Snapshot, changes: Changes) -> None:
    """Refuse a new file outside the layout whose path differs only in case from another's.

    Windows and macOS ignore case: ``README.md`` and ``readme.md`` would be
    one file there, and a clone on them could not hold both.
    """
    added = [p for p, data in changes.items() if data is not None and not layout.in_layout(p)]
    split = [p.split("/") for p in added]
    for path in added:
        if snap.blob_id(path) is not None:
            continue  # already there: its name was checked when it came
        parts = path.split("/")
        for depth, name in enumerate(parts):
            folder = "/".join(parts[:depth])
            names = {
                n for n in snap.listdir(folder) if changes.get(f"{folder}/{n}".lstrip("/"), b"") is not None
            }
            names |= {
                other[depth] for other in split if other[:depth] == parts[:depth] and len(other) > depth
            }
            twin = layout.case_twin(names, name)
            if twin is not None:
                where = f"{folder}/{twin}" if folder else twin
                raise CorruptFileError(
                    f"{path} differs only in case from {where}, and Windows and macOS would take "
                    "them for one file; rename one of them",
                    path,
                )
