"""The report of an import from expipe 0.6, and the check that compares the imported project with its source.

The check walks the source's raw YAML by expipe 0.6's rules and reads the
imported project through the public API only, so a mistake in the conversion,
the encoding or the reading shows up as a difference.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from . import expipe06, layout
from .model import Project

Progress = Callable[[int, int, str], None]


@dataclasses.dataclass
class ImportReport:
    """What an import did and what its verification found.

    ``notes`` are things a person should know that are not errors (stray
    files left behind, data paths rewritten, a source that is a git
    repository); ``differences`` are values that did not come across equal,
    and should be empty.
    """

    source: str
    destination: str
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    commits: int = 0
    data_mode: str = "reference"
    notes: list[str] = dataclasses.field(default_factory=list)
    verified: bool = False
    objects_compared: int = 0
    values_compared: int = 0
    differences: list[str] = dataclasses.field(default_factory=list)
    imported: bool = True  # False for a report of verify_import alone

    def counted(self) -> str:
        """Say how many objects of each kind the source holds: '2 actions, 1 entity, ...'."""
        return ", ".join(_plural(n, kind) for kind, n in self.counts.items())

    @property
    def ok(self) -> bool:
        """True when nothing differs (an unverified import counts as ok)."""
        return not self.differences

    def __str__(self) -> str:
        counted = self.counted()
        if self.imported:
            lines = [
                f"Imported {self.source} into {self.destination}",
                f"  {counted}",
                f"  {_plural(self.commits, 'commit')}; data {_DATA_WORDS[self.data_mode]}",
            ]
        else:
            lines = [f"Compared {self.source} with {self.destination}", f"  {counted}"]
        if self.notes:
            lines.append(f"Notes ({len(self.notes)}):")
            lines += [f"  - {note}" for note in self.notes]
        if not self.verified:
            lines.append("Not verified (--no-verify).")
        else:
            lines.append(
                f"Verified: {self.objects_compared} objects and {self.values_compared} values "
                f"compared, {_plural(len(self.differences), 'difference')}"
            )
            lines += [f"  ! {difference}" for difference in self.differences]
        return "\n".join(lines)


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


_DATA_WORDS = {
    "reference": "referenced (linked to the source's data folders)",
    "copy": "copied",
    "hardlink": "hard-linked",
}


def verify_import(
    source: str | os.PathLike[str], project: Project, *, progress: Progress | None = None
) -> ImportReport:
    """Compare an expipe 0.6 project with an expipe_git project imported from it.

    The check :func:`import_expipe_project` runs at the end, on its own: run it
    again later to see what changed since the import. Data entries are checked
    only where the source's data exists.

    Returns:
        An :class:`ImportReport` whose ``differences`` list what differs.
    """
    root = pathlib.Path(source).absolute()
    reader = expipe06.Source(root)
    plan = expipe06.scan(reader)
    report = ImportReport(str(root), str(project.path), imported=False)
    report.counts = count_objects(plan)
    compare_with_source(reader, plan, project, report, progress)
    return report


def count_objects(plan: expipe06.Plan) -> dict[str, int]:
    """Return how many objects of each kind the source holds."""
    return {
        "action": len(plan.folders["action"]),
        "entity": len(plan.folders["entity"]),
        "template": len(plan.templates),
        "project module": len(plan.modules),
    }


class _Comparer:
    """Compares source values (raw YAML) with what the expipe_git API returns.

    It walks the raw YAML itself, by expipe 0.6's rules, sharing with the
    conversion only the test of what a quantity is, so that a mistake in the
    conversion, the encoding or the reading shows up as a difference.
    """

    def __init__(self, report: ImportReport):
        self.report = report

    def differ(self, where: str, expected: Any, got: Any) -> None:
        self.report.differences.append(f"{where}: source {_short(expected)}, imported {_short(got)}")

    def same(self, where: str, expected: Any, got: Any, *, through_dicts: bool = True) -> None:
        """Compare one source value with one imported value, counting leaves."""
        if isinstance(expected, dict):
            if through_dicts and expipe06.quantity_shape(expected):
                quantity = expipe06.as_quantity(expected)
                if quantity is not None:
                    self.same_quantity(where, quantity, got)
                    return
            self.same_mapping(where, expected, got, through_dicts=through_dicts)
            return
        if isinstance(expected, list):
            if not isinstance(got, list) or len(got) != len(expected):
                self.differ(where, expected, got)
                return
            for index, (a, b) in enumerate(zip(expected, got, strict=True)):
                # expipe 0.6 did not look into lists for quantities.
                self.same(f"{where}[{index}]", a, b, through_dicts=False)
            return
        self.report.values_compared += 1
        if not _equal_scalar(expected, got):
            self.differ(where, expected, got)

    def same_mapping(self, where: str, expected: dict, got: Any, *, through_dicts: bool = True) -> None:
        if not isinstance(got, Mapping):
            self.differ(where, expected, got)
            return
        if set(expected) != set(got) or any(type(k) is not type(_key(got, k)) for k in expected):
            missing = [k for k in expected if k not in got]
            extra = [k for k in got if k not in expected]
            self.report.differences.append(f"{where}: keys missing {missing!r}, extra {extra!r}")
        for key, value in expected.items():
            if key in got:
                self.same(f"{where}[{key!r}]", value, got[key], through_dicts=through_dicts)

    def same_quantity(self, where: str, expected: Any, got: Any) -> None:
        import numpy as np
        import quantities as pq

        self.report.values_compared += 1
        uncertain = isinstance(expected, pq.UncertainQuantity)
        ok = (
            isinstance(got, pq.Quantity)
            and isinstance(got, pq.UncertainQuantity) == uncertain
            and got.dimensionality == expected.dimensionality
            and got.shape == expected.shape
            and bool(np.array_equal(got.magnitude, expected.magnitude, equal_nan=True))
            and (
                not uncertain
                or bool(
                    np.array_equal(got.uncertainty.magnitude, expected.uncertainty.magnitude, equal_nan=True)
                )
            )
        )
        if not ok:
            self.differ(where, expected, got)


def _key(mapping: Mapping, key: Any) -> Any:
    for found in mapping:
        if found == key:
            return found
    return None


def _equal_scalar(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return type(a) is type(b) and a == b
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return a == b and (a.tzinfo is None) == (b.tzinfo is None)
    return type(a) is type(b) and a == b


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 120 else text[:117] + "..."


def compare_with_source(
    reader: expipe06.Source,
    plan: expipe06.Plan,
    project: Project,
    report: ImportReport,
    progress: Progress | None,
) -> None:
    """Compare every object of the source with the project; differences go to ``report``."""
    compare = _Comparer(report)
    report.verified = True
    total = plan.total()
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        report.objects_compared += 1
        if progress is not None:
            progress(done, total, f"verifying {what}")

    config = reader.load_mapping(plan.config, "the project config")
    expected_config = {k: _date_or(v) if k == "registered" else v for k, v in config.items()}
    got_config = {k: v for k, v in project.config.stored.items() if k != "storage_format"}
    compare.same_mapping("project config", expected_config, got_config, through_dicts=False)
    step("project config")

    _same_names(report, "templates", plan.templates, project.templates)
    for name, path in plan.templates.items():
        if name in project.templates:
            record = reader.load_mapping(path, "a template")
            expected = {k: _date_or(v) if k == "registered" else v for k, v in record.items()}
            got = project.templates[name].contents
            compare.same_mapping(f"template {name!r}", expected, got)
            if "identifier" in record and record["identifier"] != project.templates[name].identifier:
                compare.differ(f"template {name!r} identifier", record["identifier"], got.get("identifier"))
        step(f"template {name!r}")

    _same_names(report, "project modules", plan.modules, project.modules)
    for name, path in plan.modules.items():
        if name in project.modules:
            _same_module(reader, compare, f"module {name!r}", path, project.modules[name].contents)
        step(f"module {name!r}")

    for kind, objects in plan.folders.items():
        mapping = project.actions if kind == "action" else project.entities
        _same_names(report, "actions" if kind == "action" else "entities", objects, mapping)
        for name, folder in objects.items():
            if name in mapping:
                _same_folder_object(reader, compare, kind, name, folder, mapping[name])
            step(f"{kind} {name!r}")


def _date_or(value: Any) -> Any:
    when = expipe06.expipe_datetime(value)
    return value if when is None else when


def _same_names(report: ImportReport, what: str, expected: Mapping, got: Mapping) -> None:
    names = set(got)
    missing = sorted(set(expected) - names)
    extra = sorted(names - set(expected))
    if missing or extra:
        report.differences.append(f"{what}: missing {missing!r}, extra {extra!r}")


def _same_module(
    reader: expipe06.Source, compare: _Comparer, where: str, path: pathlib.Path, got: Any
) -> None:
    contents = reader.load(path)
    if contents is None:
        contents = {}
    if isinstance(contents, dict):
        # The module itself is a record (a dict) even when it looks like one quantity.
        compare.same_mapping(where, contents, got)
    else:
        compare.same(where, contents, got)


def _same_folder_object(
    reader: expipe06.Source, compare: _Comparer, kind: str, name: str, folder: pathlib.Path, obj: Any
) -> None:
    what = layout.describe((kind, name))
    record = reader.load_mapping(folder / "attributes.yaml", "attributes")
    got = obj.attributes
    expected = {}
    for key, value in record.items():
        if key in expipe06.DATE_KEYS:
            value = _date_or(value)
        elif key in expipe06.LIST_KEYS and isinstance(value, list):
            value = list(dict.fromkeys(v if isinstance(v, str) else str(v) for v in value))
        elif key == "data" and isinstance(value, dict):
            _same_data(reader, compare, what, folder, value, obj)
            continue
        expected[key] = value
    if isinstance(record.get("data"), dict):
        got = {k: v for k, v in got.items() if k != "data"}
    compare.same_mapping(f"{what} attributes", expected, got)
    # The public properties read what the attributes hold, as expipe 0.6's did.
    for key in ("type", "location"):
        if isinstance(record.get(key), str):
            compare.same(f"{what} .{key}", record[key], getattr(obj, key))
    for key in expipe06.DATE_KEYS:
        when = expipe06.expipe_datetime(record.get(key))
        if when is not None:
            compare.same(f"{what} .{key}", when, getattr(obj, key))
    for key in expipe06.LIST_KEYS if kind == "action" else expipe06.LIST_KEYS[:2]:
        if isinstance(record.get(key), list):
            compare.same(f"{what} .{key}", expected[key], list(getattr(obj, key)))

    modules_folder = folder / "modules"
    names = {}
    if modules_folder.is_dir():
        names = {
            p.name[: -len(expipe06.YAML_SUFFIX)]: p for p in modules_folder.iterdir() if _is_yaml_record(p)
        }
    _same_names(compare.report, f"modules of {what}", names, obj.modules)
    for module, path in sorted(names.items()):
        if module in obj.modules:
            _same_module(reader, compare, f"module {module!r} of {what}", path, obj.modules[module].contents)
            compare.report.objects_compared += 1

    _same_messages(reader, compare, what, folder / "messages", obj)


def _same_messages(
    reader: expipe06.Source, compare: _Comparer, what: str, messages_folder: pathlib.Path, obj: Any
) -> None:
    expected_messages = []
    if messages_folder.is_dir():
        for path in sorted(messages_folder.iterdir()):
            if _is_yaml_record(path):
                message = reader.load_mapping(path, "a message")
                expected_messages.append({**message, "datetime": _date_or(message.get("datetime"))})
    got_messages = [message.contents for message in obj.messages.values()]
    compare.report.objects_compared += len(got_messages)
    unmatched = list(got_messages)
    for message in expected_messages:
        match = next((m for m in unmatched if _message_key(m) == _message_key(message)), None)
        if match is None:
            compare.report.differences.append(f"{what}: message {_short(message)} is missing")
            continue
        unmatched.remove(match)
        compare.same_mapping(f"{what} message of {message.get('datetime')}", message, match)
    for message in unmatched:
        if not any(_message_key(m) == _message_key(message) for m in expected_messages):
            compare.report.differences.append(f"{what}: message {_short(message)} is not in the source")


def _message_key(message: Mapping) -> tuple:
    return (message.get("text"), message.get("user"), message.get("datetime"))


def _is_yaml_record(path: pathlib.Path) -> bool:
    return (
        path.is_file()
        and path.name.endswith(expipe06.YAML_SUFFIX)
        and not path.name.startswith(".")
        and path.name != expipe06.YAML_SUFFIX
    )


def _same_data(
    reader: expipe06.Source, compare: _Comparer, what: str, folder: pathlib.Path, entries: dict, obj: Any
) -> None:
    """Check each data entry leads, in the new project, to what it led to in the source."""
    got = dict(obj.data)
    _same_names(compare.report, f"data entries of {what}", entries, got)
    for key, value in entries.items():
        if key not in got:
            continue
        compare.report.values_compared += 1
        resolved = expipe06.resolve_data_entry(reader.root, folder, value)
        if not isinstance(resolved.relative, str) or not isinstance(got[key], str):
            if resolved.relative != got[key]:
                compare.differ(f"{what} data[{key!r}]", value, got[key])
            continue
        path = obj.data_path(key)
        if resolved.exists:
            if not os.path.lexists(path) or not _same_file(resolved.source, path):
                compare.differ(f"{what} data[{key!r}]", str(resolved.source), str(path))
        elif pathlib.PurePath(path) != pathlib.PurePath(obj.data_path()) / resolved.relative:
            compare.differ(f"{what} data[{key!r}]", value, got[key])


def _same_file(source: pathlib.Path | None, copy: pathlib.Path) -> bool:
    """True if ``copy`` is (a link to) ``source`` or has its type and size."""
    if source is None:
        return False
    try:
        if os.path.samefile(source, copy):
            return True
        a, b = os.stat(source), os.stat(copy)
    except OSError:
        return os.path.islink(source) and os.path.islink(copy) and os.readlink(source) == os.readlink(copy)
    if os.path.isdir(source):
        return os.path.isdir(copy) and sorted(os.listdir(source)) == sorted(os.listdir(copy))
    return a.st_size == b.st_size
