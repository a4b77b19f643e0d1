"""Is a file a valid record in its place of the layout? Checks shared by
committing hand edits and merging another history.

The API writes only valid records; these checks guard what comes from
elsewhere: files edited by hand, and records of another branch or remote.
"""

from __future__ import annotations

import datetime as dt

from . import layout, values
from .errors import CorruptFileError
from .objects import LIST_ATTRIBUTES
from .store import Changes, Snapshot


def check_file(path: str, data: bytes) -> None:
    """Refuse a file (a hand edit, a merged or fetched record) that is not a valid record in its place."""
    if path == layout.IGNORE_FILE:
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
        raise CorruptFileError(
            f"{path} is not part of an expipe_git project's layout "
            "(see docs/storage-format.md); move or remove it, then commit again",
            path,
        )
    what = f"{layout.describe(place.obj)} ({path})"
    try:
        record = values.loads(data, what=what)
    except CorruptFileError as exc:
        exc.path = path
        raise
    if place.part in ("attributes", "config", "message") and not isinstance(record, dict):
        raise CorruptFileError(f"{what}: expected a table of keys", path)
    if place.part == "attributes":
        _check_attributes(record, what, path)
    if place.part == "message":
        _check_message(record, what, path)


def _check_attributes(record: dict, what: str, path: str) -> None:
    for key in LIST_ATTRIBUTES:
        items = record.get(key)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, str) for i in items)):
            raise CorruptFileError(f"{what}: {key} must be a list of strings", path)
    for key in ("type", "location"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise CorruptFileError(f"{what}: {key} must be a string", path)


def _check_message(record: dict, what: str, path: str) -> None:
    for key, kind in (("text", str), ("user", str), ("datetime", dt.datetime)):
        if not isinstance(record.get(key), kind):
            raise CorruptFileError(f"{what}: {key} must be a {kind.__name__}", path)


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
