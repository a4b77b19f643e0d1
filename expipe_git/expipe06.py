"""What an expipe 0.6 project folder holds, read the way expipe 0.6 read it.

expipe 0.6 (the filesystem backend) kept a project as YAML files::

    expipe.yaml                              project config
    templates/<template>.yaml                templates
    modules/<module>.yaml                    project modules
    actions/<action>/attributes.yaml         an action's attributes
    actions/<action>/modules/<module>.yaml   its modules
    actions/<action>/messages/<time>.yaml    its messages
    actions/<action>/data/                   its data
    entities/<entity>/...                    entities, as actions

This module finds those files (:func:`scan`), parses them with the loader
expipe 0.6 used (ruamel.yaml, ``typ="safe"``, so no tag is ever executed;
:class:`Source`), turns values into what expipe's API returned
(:func:`convert`) and finds what a ``data`` entry points at
(:func:`resolve_data_entry`). It only ever reads the source.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import pathlib
from typing import Any

from . import layout, values
from .errors import CorruptFileError, ExpipeError, InvalidValueError, NotFoundError
from .objects import datetime_format

SOURCE_CONFIG = "expipe.yaml"
YAML_SUFFIX = ".yaml"
OBJECT_FOLDERS = {"actions": "action", "entities": "entity"}
TOP_LEVEL = {SOURCE_CONFIG, "actions", "entities", "templates", "modules"}
# Attribute keys expipe 0.6 wrote as '%Y-%m-%dT%H:%M:%S' text.
DATE_KEYS = ("registered", "datetime")
LIST_KEYS = ("users", "tags", "entities")

# ---------------------------------------------------------------------------
# Reading the source


class Source:
    """An expipe 0.6 project folder, read only."""

    def __init__(self, root: pathlib.Path):
        from ruamel.yaml import YAML

        self.root = root
        # The loader expipe 0.6 used, so files parse exactly as they did there.
        self._yaml = YAML(typ="safe", pure=True)

    def rel(self, path: pathlib.Path) -> str:
        return path.relative_to(self.root).as_posix()

    def load(self, path: pathlib.Path) -> Any:
        """Parse one YAML file; CorruptFileError naming it if it does not parse."""
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorruptFileError(f"{path}: cannot be read ({exc.strerror})", str(path)) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptFileError(
                f"{path}: not valid UTF-8 (byte {exc.start}); expipe 0.6 wrote UTF-8: "
                "fix the file and import again (nothing was written)",
                str(path),
            ) from None
        try:
            return self._yaml.load(text.removeprefix("\ufeff"))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = " ".join(filter(None, (exc.context, exc.problem)))
            raise CorruptFileError(
                f"{path}: not valid YAML{where}: {problem}; fix the file and import again "
                "(nothing was written)",
                str(path),
            ) from None
        except (YAMLError, ValueError, RecursionError) as exc:
            raise CorruptFileError(
                f"{path}: not valid YAML: {' '.join(str(exc).split())}; fix the file and import again "
                "(nothing was written)",
                str(path),
            ) from None

    def load_mapping(self, path: pathlib.Path, what: str) -> dict:
        found = self.load(path)
        if found is None:
            return {}
        if not isinstance(found, dict):
            raise CorruptFileError(
                f"{path}: {what} must be a mapping of keys, but the file holds {kind_of(found)}; "
                "fix the file and import again (nothing was written)",
                str(path),
            )
        return found


@dataclasses.dataclass
class Plan:
    """What the source holds: objects and the files they come from."""

    config: pathlib.Path
    templates: dict[str, pathlib.Path]
    modules: dict[str, pathlib.Path]
    folders: dict[str, dict[str, pathlib.Path]]  # kind -> name -> folder
    stray: list[str]

    def total(self) -> int:
        return 1 + len(self.templates) + len(self.modules) + sum(map(len, self.folders.values()))


def check_source_name(name: str, kind: str, path: pathlib.Path) -> str:
    try:
        return layout.check_name(name, kind)
    except ExpipeError as exc:
        raise InvalidValueError(
            f"{path} cannot be imported: {exc}; rename it in a copy of the project and import the copy "
            "(nothing was written)"
        ) from None


def yaml_files(
    source: Source, folder: pathlib.Path, kind: str, stray: list[str], *, check: bool = True
) -> dict[str, pathlib.Path]:
    """Return name -> path of the ``*.yaml`` files in ``folder``; others are stray."""
    found: dict[str, pathlib.Path] = {}
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir()):
        stem = entry.name[: -len(YAML_SUFFIX)] if entry.name.endswith(YAML_SUFFIX) else ""
        if not stem or not entry.is_file() or stem.startswith("."):
            stray.append(source.rel(entry) + ("/" if entry.is_dir() else ""))
            continue
        found[check_source_name(stem, kind, entry) if check else stem] = entry
    return found


def scan(source: Source) -> Plan:
    root = source.root
    config = root / SOURCE_CONFIG
    if not root.is_dir():
        raise NotFoundError(f"{root} is not a folder; give the folder of an expipe 0.6 project")
    if not config.is_file():
        hint = (
            "it is an expipe_git project already"
            if (root / layout.CONFIG_FILE).is_file()
            else "give the folder that holds expipe.yaml"
        )
        raise NotFoundError(f"{config} does not exist, so {root} is not an expipe 0.6 project; {hint}")
    stray: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name not in TOP_LEVEL and entry.name != ".git":
            stray.append(source.rel(entry) + ("/" if entry.is_dir() else ""))
    folders: dict[str, dict[str, pathlib.Path]] = {}
    for folder_name, kind in OBJECT_FOLDERS.items():
        found: dict[str, pathlib.Path] = {}
        folder = root / folder_name
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if (
                    entry.is_dir()
                    and (entry / "attributes.yaml").is_file()
                    and not entry.name.startswith(".")
                ):
                    found[check_source_name(entry.name, kind, entry)] = entry
                else:
                    stray.append(source.rel(entry) + ("/" if entry.is_dir() else ""))
        folders[kind] = found
    return Plan(
        config=config,
        templates=yaml_files(source, root / "templates", "template", stray),
        modules=yaml_files(source, root / "modules", "module", stray),
        folders=folders,
        stray=stray,
    )


# ---------------------------------------------------------------------------
# Values, as expipe 0.6 read them


def quantity_shape(value: dict) -> bool:
    return set(value) in ({"value", "unit"}, {"value", "unit", "uncertainty"})


def as_quantity(value: dict) -> Any:
    """Return the Quantity expipe 0.6 made of ``{value, unit[, uncertainty]}``, or None."""
    unit = value["unit"]
    if not isinstance(unit, str) or not values.unit_is_safe(unit):
        return None  # quantities evaluates unit names: only hand it plain ones
    import quantities as pq

    try:
        if "uncertainty" in value:
            return pq.UncertainQuantity(value["value"], unit, value["uncertainty"])
        return pq.Quantity(value["value"], unit)
    except Exception:  # expipe kept the dict when quantities refused it, and so do we
        return None


def convert(value: Any) -> Any:
    """Turn quantity leaves into Quantities, looking through dicts (not lists), as expipe did."""
    if not isinstance(value, dict):
        return value
    if quantity_shape(value):
        quantity = as_quantity(value)
        if quantity is not None:
            return quantity
    return {key: convert(item) for key, item in value.items()}


def convert_record(record: dict) -> dict:
    """Convert a whole record; the record itself stays a dict even if quantity-shaped."""
    return {key: convert(item) for key, item in record.items()}


def expipe_datetime(value: Any) -> dt.datetime | None:
    """Return the datetime expipe 0.6 read from ``value`` ('%Y-%m-%dT%H:%M:%S'), or None."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return dt.datetime.strptime(value, datetime_format)
    return None


def kind_of(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


@dataclasses.dataclass(frozen=True)
class DataEntry:
    """Where a data entry of expipe 0.6 points, and how expipe_git names it."""

    relative: Any  # the value to store: a path relative to the data folder (or as given)
    source: pathlib.Path | None  # the file or folder in the source it names
    exists: bool
    outside: pathlib.Path | None  # set when it lies outside the object's data folder
    how: str


def resolve_data_entry(root: pathlib.Path, folder: pathlib.Path, value: Any) -> DataEntry:
    """Find what an expipe 0.6 ``data`` entry names.

    expipe joined the entry to the object's ``data/`` folder, but projects
    made on Windows hold paths relative to the project root with
    backslashes (``actions\\rec-1\\data\\main.exdir``). Tried in order: an
    absolute path; a path into this object's own data folder from the project
    root; a path inside the data folder; a path from the project root (or
    one climbing out of the data folder with ``..``) to something that exists
    elsewhere, which is linked into the data folder by its file name; else
    the path inside the data folder, as expipe would have joined it.
    """
    if not isinstance(value, str) or not value:
        return DataEntry(value, None, False, None, "kept as it is")
    text = value.replace("\\", "/")
    data_folder = folder / "data"
    if text.startswith("/") or (len(text) > 2 and text[1] == ":" and text[2] == "/"):
        target = pathlib.Path(text)
        exists = os.path.lexists(target) if text.startswith("/") else False
        return DataEntry(value, target if exists else None, exists, None, "an absolute path, kept")
    parts = [part for part in pathlib.PurePosixPath(text).parts if part != "."]
    if not parts:
        return DataEntry(value, None, False, None, "kept as it is")
    own = [*folder.relative_to(root).parts, "data"]
    if parts[: len(own)] == own and len(parts) > len(own):
        inner = "/".join(parts[len(own) :])
        target = data_folder / inner
        return DataEntry(inner, target, os.path.lexists(target), None, "it was relative to the project root")
    joined = "/".join(parts)
    target = data_folder / joined
    linked = "it named a file outside the data folder, now linked there"
    if ".." in parts:
        # The new project's folders are laid out differently, so a path that
        # climbs out of the data folder would lead elsewhere there: link it.
        escaped = pathlib.Path(os.path.normpath(target))
        if os.path.lexists(escaped) and escaped.name:
            return DataEntry(escaped.name, escaped, True, escaped, linked)
        return DataEntry(joined, target, False, None, "it leads out of the data folder")
    if os.path.lexists(target):
        return DataEntry(joined, target, True, None, "relative to the data folder")
    elsewhere = root / joined
    if os.path.lexists(elsewhere):
        return DataEntry(parts[-1], elsewhere, True, elsewhere, linked)
    return DataEntry(joined, target, False, None, "relative to the data folder")
