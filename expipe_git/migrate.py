"""Import an expipe 0.6 project (a folder of YAML files) into a new expipe_git project.

People switch only if their years of recordings come across whole and they
can see that they did, so an import

1. reads the source with the YAML loader expipe 0.6 itself used (ruamel.yaml,
   ``typ="safe"``: no tag is ever executed) and never writes to it;
2. turns each object into the files expipe_git stores, with the same encoder
   the API uses (:func:`expipe_git.values.dumps`), and commits it through
   :meth:`Repository.mutate <expipe_git.git.repository.Repository.mutate>` — one commit per object,
   dated by its ``registered`` time, or one commit for everything;
3. builds the project in a hidden sibling folder and renames it into place at
   the end, so a failure leaves no destination behind; the importer holds a
   lock on that folder while it builds, so the hidden folder of an import that
   was killed (nothing else could remove it) is recognised and removed by the
   next import into the same destination;
4. reads the source again and compares every value with what the expipe_git
   API returns (:class:`ImportReport`).

Values are read as expipe 0.6 read them: a mapping whose keys are exactly
``value`` and ``unit`` (and ``uncertainty``) becomes a Quantity (or an
UncertainQuantity), as expipe's ``convert_back_quantities`` did, looking
through mappings but not into lists. A mapping that has other keys too stays
a plain dict (expipe dropped the other keys). ``registered`` and ``datetime``
written as ``'2020-12-18T19:59:03'`` become datetimes, which is what expipe's
properties returned and what expipe_git stores.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import os
import pathlib
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import expipe06, layout, values
from .errors import (
    AlreadyExistsError,
    CorruptFileError,
    ExpipeError,
    InvalidValueError,
)
from .git import Changes, Repository, Snapshot, lockfile, packing
from .model import Project, _find_project_root
from .objects import _dump_message, _message_id, datetime_format

__all__ = ["ImportReport", "import_expipe_project", "verify_import"]

OPERATION = "import from expipe 0.6"
DATA_MODES = ("reference", "copy", "hardlink")

Progress = Callable[[int, int, str], None]


# ---------------------------------------------------------------------------
# The report


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


_NOTES_SHOWN = 3  # notes of one kind shown before "... and N more"
_STRAY_SHOWN = 20
_DATA_WORDS = {
    "reference": "referenced (linked to the source's data folders)",
    "copy": "copied",
    "hardlink": "hard-linked",
}


# ---------------------------------------------------------------------------
# Building one object's files


@dataclasses.dataclass
class _Built:
    """The files of one object, and the data links to make for it."""

    obj: tuple[str, ...]
    files: dict[str, bytes]
    when: dt.datetime | None
    data: list[tuple[str, pathlib.Path]]  # (name in the data folder, source path)


class _Builder:
    def __init__(self, source: expipe06.Source, report: ImportReport):
        self.source = source
        self.report = report
        self.notes: dict[str, list[str]] = {}

    def note(self, text: str, kind: str) -> None:
        """Note something; notes of one kind are summed up when there are many."""
        self.notes.setdefault(kind, []).append(text)

    def finish_notes(self) -> None:
        for kind, texts in self.notes.items():
            if len(texts) <= _NOTES_SHOWN + 2:
                self.report.notes.extend(texts)
            else:
                self.report.notes.extend(texts[:_NOTES_SHOWN])
                self.report.notes.append(f"... and {len(texts) - _NOTES_SHOWN} more: {kind}")

    def dump(self, record: Any, what: str, path: pathlib.Path) -> bytes:
        try:
            return values.dumps(record, what=f"{what} ({self.source.rel(path)})").encode()
        except ExpipeError as exc:
            raise type(exc)(
                f"{exc}; {path} cannot be imported as it is: fix a copy of the project and import the "
                "copy (nothing was written)"
            ) from None

    def config(self, path: pathlib.Path) -> _Built:
        # expipe 0.6 read expipe.yaml without converting quantities.
        record = self.source.load_mapping(path, "the project config")
        if "storage_format" in record:
            raise InvalidValueError(
                f"{path} has a storage_format key, which expipe_git keeps for itself; "
                "rename it in a copy of the project and import the copy (nothing was written)"
            )
        if "project" not in record:
            self.note(
                f"{expipe06.SOURCE_CONFIG} names no project; the project is named after its folder", "config"
            )
        when = expipe06.expipe_datetime(record.get("registered"))
        if when is not None:
            record["registered"] = when
        record["storage_format"] = layout.STORAGE_FORMAT
        files = {
            layout.CONFIG_FILE: self.dump(record, "project config", path),
            layout.IGNORE_FILE: layout.IGNORE_TEXT.encode(),
        }
        return _Built(("project",), files, when, [])

    def template(self, name: str, path: pathlib.Path) -> _Built:
        record = expipe06.convert_record(self.source.load_mapping(path, f"template {name!r}"))
        when = self._dates(record, ("registered",), f"template {name!r}")
        identifier = record.get("identifier")
        if identifier is None:
            self.note(
                f"template {name!r} has no identifier; modules made from it are named {name!r}",
                "templates without identifier",
            )
        elif not isinstance(identifier, str) or layout._name_problem(identifier):
            self.note(
                f"template {name!r} has identifier {identifier!r}, which cannot name a module",
                "odd template identifiers",
            )
        obj = ("template", name)
        return _Built(
            obj, {layout.template_path(name): self.dump(record, layout.describe(obj), path)}, when, []
        )

    def module(self, owner: tuple[str, ...], name: str, path: pathlib.Path) -> tuple[str, bytes]:
        obj = ("module", name) if owner == ("project",) else (*owner, "module", name)
        what = layout.describe(obj)
        contents = self.source.load(path)
        if contents is None:
            contents = {}  # expipe read an empty module file as {}
        if isinstance(contents, dict):
            if expipe06.quantity_shape(contents) and expipe06.as_quantity(contents) is not None:
                self.note(
                    f"{what}: expipe 0.6 read the whole module as one quantity; it is kept as a dict",
                    "modules that looked like one quantity",
                )
            contents = expipe06.convert_record(contents)
        elif not isinstance(contents, list):
            raise CorruptFileError(
                f"{path}: a module holds a mapping or a list, but the file holds "
                f"{expipe06.kind_of(contents)}; fix a copy of the project and import the copy "
                "(nothing was written)",
                str(path),
            )
        return layout.module_path(owner, name), self.dump(contents, what, path)

    def project_module(self, name: str, path: pathlib.Path) -> _Built:
        target, data = self.module(("project",), name, path)
        return _Built(("module", name), {target: data}, None, [])

    def folder_object(self, kind: str, name: str, folder: pathlib.Path, plan: expipe06.Plan) -> _Built:
        obj = (kind, name)
        what = layout.describe(obj)
        attributes_file = folder / "attributes.yaml"
        record = expipe06.convert_record(
            self.source.load_mapping(attributes_file, f"the attributes of {what}")
        )
        when = self._dates(record, expipe06.DATE_KEYS, what)
        self._lists(record, what)
        links = self._data(kind, name, folder, record, what)
        files = {layout.attributes_path(kind, name): self.dump(record, what, attributes_file)}
        for entry in sorted(folder.iterdir()):
            if entry.name == "attributes.yaml" or (entry.name == "data" and entry.is_dir()):
                continue
            if entry.name == "modules" and entry.is_dir():
                for module, path in expipe06.yaml_files(self.source, entry, "module", plan.stray).items():
                    target, data = self.module(obj, module, path)
                    files[target] = data
            elif entry.name == "messages" and entry.is_dir():
                # Messages get new ids from their contents, so their file names need not be names.
                messages = expipe06.yaml_files(self.source, entry, "message", plan.stray, check=False)
                for path in messages.values():
                    target, data = self.message(kind, name, path)
                    if target in files:
                        self.note(
                            f"{what}: {self.source.rel(path)} repeats another message exactly; kept once",
                            "repeated messages",
                        )
                    files[target] = data
            else:
                plan.stray.append(self.source.rel(entry) + ("/" if entry.is_dir() else ""))
        return _Built(obj, files, when, links)

    def message(self, kind: str, name: str, path: pathlib.Path) -> tuple[str, bytes]:
        record = expipe06.convert_record(self.source.load_mapping(path, "a message"))
        # The time comes from the file's contents, not its name.
        when = expipe06.expipe_datetime(record.get("datetime"))
        problems = []
        if not isinstance(record.get("text"), str):
            problems.append("text is not a str")
        if not isinstance(record.get("user"), str):
            problems.append("user is not a str")
        if when is None:
            problems.append(f"datetime is not a time written as {datetime_format}")
        if problems:
            raise CorruptFileError(
                f"{path}: not a message expipe 0.6 could read ({'; '.join(problems)}); "
                "fix a copy of the project and import the copy (nothing was written)",
                str(path),
            )
        record["datetime"] = when
        message_id = _message_id(record)
        return layout.message_path(kind, name, message_id), _dump_message(record, (kind, name))

    def _dates(self, record: dict, keys: tuple[str, ...], what: str) -> dt.datetime | None:
        for key in keys:
            if key not in record or record[key] is None:
                continue
            when = expipe06.expipe_datetime(record[key])
            if when is None:
                self.note(
                    f"{what}: {key} {record[key]!r} is not a time expipe 0.6 could read; kept as it is",
                    "unreadable times",
                )
            else:
                record[key] = when
        registered = record.get("registered")
        return registered if isinstance(registered, dt.datetime) else None

    def _lists(self, record: dict, what: str) -> None:
        for key in expipe06.LIST_KEYS:
            items = record.get(key)
            if items is None or not isinstance(items, list):
                if items is not None:
                    self.note(
                        f"{what}: {key} is {expipe06.kind_of(items)}, not a list; kept as it is",
                        "lists that are not lists",
                    )
                continue
            texts = [item if isinstance(item, str) else str(item) for item in items]
            if texts != items:
                odd = [item for item in items if not isinstance(item, str)]
                self.note(
                    f"{what}: {key} held items that are not text, {odd!r}; stored as text",
                    "list items stored as text",
                )
            unique = list(dict.fromkeys(texts))
            if len(unique) != len(texts):
                self.note(f"{what}: {key} listed an item twice; kept once", "list items given twice")
            record[key] = unique

    def _data(
        self, kind: str, name: str, folder: pathlib.Path, record: dict, what: str
    ) -> list[tuple[str, pathlib.Path]]:
        """Rewrite data entries relative to the data folder; return the links to make."""
        data_folder = folder / "data"
        links: dict[str, pathlib.Path] = {}
        if data_folder.is_dir():
            for entry in sorted(data_folder.iterdir()):
                links[entry.name] = entry
        entries = record.get("data")
        if entries is None:
            return list(links.items())
        if not isinstance(entries, dict):
            self.note(
                f"{what}: data is {expipe06.kind_of(entries)}, not a mapping; kept as it is",
                "data that is not a mapping",
            )
            return list(links.items())
        for key, value in entries.items():
            resolved = expipe06.resolve_data_entry(self.source.root, folder, value)
            if resolved.outside is not None:
                base = resolved.relative
                if base in links and links[base] != resolved.outside:
                    raise InvalidValueError(
                        f"{what}: data entry {key!r} names {value!r} outside its data folder, and its "
                        f"data folder holds another {base!r}; rename one in a copy of the project "
                        "(nothing was written)"
                    )
                links[base] = resolved.outside
            missing = "" if resolved.exists else "; it is not in the source"
            if resolved.relative != value:
                now = resolved.relative
                self.note(
                    f"{what}: data entry {key!r} {value!r} is now {now!r}: {resolved.how}{missing}",
                    f"data entries rewritten ({resolved.how})",
                )
            elif missing:
                self.note(
                    f"{what}: data entry {key!r} {value!r} is not in the source",
                    "data entries not in the source",
                )
            entries[key] = resolved.relative
        return list(links.items())


# ---------------------------------------------------------------------------
# Importing


def import_expipe_project(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    single_commit: bool = False,
    verify: bool = True,
    data: str = "reference",
    progress: Progress | None = None,
) -> Project:
    """Import the expipe 0.6 project at ``source`` into a new expipe_git project.

    Args:
        source: The folder holding ``expipe.yaml``. It is only read.
        destination: A folder that does not exist yet; it appears only when
            the import succeeded.
        single_commit: Make one commit of everything instead of one commit per
            object (dated by the object's ``registered`` time).
        verify: Read the source again and compare every value with the
            imported project through the public API.
        data: What to do with each object's ``data/`` folder: ``"reference"``
            (symbolic links to the source's files), ``"copy"`` or
            ``"hardlink"``. Data never enters git.
        progress: Called as ``progress(done, total, what)`` while importing
            and verifying.

    Returns:
        The new project; ``project.import_report`` is the :class:`ImportReport`
        (print it for the summary). When verification finds differences, a
        warning says so and the report lists them.

    Raises:
        NotFoundError: ``source`` is not an expipe 0.6 project.
        CorruptFileError: a source file does not parse; ``path`` names it.
        InvalidValueError: a name or value cannot be stored in expipe_git.
        AlreadyExistsError: ``destination`` exists, or is inside a project.
    """
    if data not in DATA_MODES:
        raise InvalidValueError(f"data must be one of {', '.join(map(repr, DATA_MODES))}, not {data!r}")
    root = pathlib.Path(source).absolute()
    target = pathlib.Path(destination).absolute()
    reader = expipe06.Source(root)
    plan = expipe06.scan(reader)
    _check_destination(root, target)
    report = ImportReport(str(root), str(target), data_mode=data)
    report.counts = _counts(plan)
    if (root / ".git").exists():
        report.notes.append(
            f"{root} is itself a git repository; it was only read, and its git history is not imported"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    for left in _remove_abandoned_imports(target):
        report.notes.append(f"removed {left}, the unfinished folder of an import of {target} that was killed")
    building, lock = _start_building(target)
    try:
        _build(reader, plan, building, report, single_commit=single_commit, data=data, progress=progress)
        appeared = f"{target} appeared while importing; the import was not put there"
        # A packing thread of this process writing there meanwhile would bring the old name back.
        packing.wait_for_packing(os.path.join(os.path.abspath(building), ".git"))
        if os.path.lexists(target):
            raise AlreadyExistsError(appeared)
        try:
            os.rename(building, target)
        except OSError:
            if os.path.lexists(target):  # made between the check and the rename
                raise AlreadyExistsError(appeared) from None
            raise
    except BaseException:
        # A packing thread of this process may still write there: the folder would come back.
        packing.wait_for_packing(os.path.join(os.path.abspath(building), ".git"))
        shutil.rmtree(building, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)  # releases the flock
    if plan.stray:
        shown = ", ".join(plan.stray[:_STRAY_SHOWN])
        more = f", and {len(plan.stray) - _STRAY_SHOWN} more" if len(plan.stray) > _STRAY_SHOWN else ""
        report.notes.append(f"not imported, not part of an expipe project: {shown}{more}")
    project = Project(target)
    if verify:
        _verify(reader, plan, project, report, progress)
        if report.differences:
            import warnings

            warnings.warn(
                f"the import of {root} differs from its source in {len(report.differences)} place(s); "
                "see project.import_report",
                stacklevel=2,
            )
    project.import_report = report  # type: ignore[attr-defined]
    return project


def _start_building(target: pathlib.Path) -> tuple[pathlib.Path, int | None]:
    """Make the hidden folder an import builds in, locked; return it and the lock's descriptor.

    The folder is made and locked under a name no cleaner looks at, then
    renamed: a folder named ``.NAME.importing-*`` whose lock is free was
    therefore left by an importer that died (the kernel frees a dead
    process's flock), never by one that is starting.
    """
    token = secrets.token_hex(4)
    starting = target.parent / f".{target.name}.starting-{token}"
    os.mkdir(starting)
    lock = None
    try:
        # Windows cannot lock a folder: there the folder of a killed import stays.
        lock = lockfile.lock_folder(str(starting), wait=True) if lockfile.FOLDER_LOCKS else None
        building = target.parent / f".{target.name}.importing-{token}"
        os.rename(starting, building)
    except BaseException:
        if lock is not None:
            os.close(lock)
        shutil.rmtree(starting, ignore_errors=True)
        raise
    return building, lock


def _remove_abandoned_imports(target: pathlib.Path) -> list[pathlib.Path]:
    """Remove the hidden folders of imports of ``target`` whose importer died; return them.

    A folder is removed only while we hold its lock, so a live import (which
    holds it until it ends) is never touched, and two imports starting at
    once do not both remove one folder. Symbolic links and files of that
    name are left alone.
    """
    removed: list[pathlib.Path] = []
    if not lockfile.FOLDER_LOCKS:
        return removed  # nothing can tell a live import's folder from a dead one's
    prefix = f".{target.name}.importing-"
    for entry in os.scandir(target.parent):
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = lockfile.lock_folder(entry.path, wait=False)
        except OSError:
            continue  # gone meanwhile, or not ours to open
        if fd is None:
            continue  # its importer is alive
        try:
            if os.path.isdir(entry.path):  # not removed by another import meanwhile
                shutil.rmtree(entry.path)
                removed.append(pathlib.Path(entry.path))
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
    return removed


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
    report.counts = _counts(plan)
    _verify(reader, plan, project, report, progress)
    return report


def _counts(plan: expipe06.Plan) -> dict[str, int]:
    return {
        "action": len(plan.folders["action"]),
        "entity": len(plan.folders["entity"]),
        "template": len(plan.templates),
        "project module": len(plan.modules),
    }


def _check_destination(root: pathlib.Path, target: pathlib.Path) -> None:
    if os.path.lexists(target):
        raise AlreadyExistsError(
            f"{target} exists already; give a folder that does not exist yet (the import creates it)"
        )
    resolved_root = root.resolve()
    resolved_target = target.parent.resolve() / target.name
    if resolved_target == resolved_root or resolved_root in resolved_target.parents:
        raise InvalidValueError(
            f"{target} is inside the source {root}, which is never changed; put the new project elsewhere"
        )
    outer = _find_project_root(target)
    if outer is not None:
        raise AlreadyExistsError(
            f"{target} is inside the expipe_git project at {outer}; a project cannot be created inside "
            "another project"
        )


def _objects(builder: _Builder, plan: expipe06.Plan) -> Iterator[Callable[[], _Built]]:
    """Yield a builder for each object: the config, templates, project modules, entities, actions."""
    yield lambda: builder.config(plan.config)
    for name, path in plan.templates.items():
        yield lambda name=name, path=path: builder.template(name, path)
    for name, path in plan.modules.items():
        yield lambda name=name, path=path: builder.project_module(name, path)
    for kind in ("entity", "action"):
        for name, folder in plan.folders[kind].items():
            yield lambda kind=kind, name=name, folder=folder: builder.folder_object(kind, name, folder, plan)


def _build(
    reader: expipe06.Source,
    plan: expipe06.Plan,
    folder: pathlib.Path,
    report: ImportReport,
    *,
    single_commit: bool,
    data: str,
    progress: Progress | None,
) -> None:
    store = Repository.init(folder)
    # Nobody sees the folder until it is renamed into place: sync once, at the end.
    store.sync_objects = False
    project = Project(folder, store=store)
    author = project._identity()
    builder = _Builder(reader, report)
    total = plan.total()
    try:
        if single_commit:
            everything: dict[str, bytes] = {}
            built = []
            for done, make in enumerate(_objects(builder, plan), 1):
                item = make()
                everything.update(item.files)
                built.append(item)
                if progress is not None:
                    progress(done, total, f"reading {layout.describe(item.obj)}")
            counted = report.counted()
            message = layout.commit_message(("project",), OPERATION, f"({counted})")
            if store.mutate(_fixed(everything), message, author=author) is not None:
                report.commits = 1
            for item in built:
                _make_data(folder, item, data)
        else:
            for done, make in enumerate(_objects(builder, plan), 1):
                item = make()
                message = layout.commit_message(item.obj, OPERATION)
                if store.mutate(_fixed(item.files), message, author=author, when=item.when) is not None:
                    report.commits += 1
                _make_data(folder, item, data)
                if progress is not None:
                    progress(done, total, f"importing {layout.describe(item.obj)}")
        builder.finish_notes()
    finally:
        # Save the read cache now, while the folder still has its building name.
        store.close()
    # What the rename publishes must be on disk first (the objects were not fsynced one by one).
    os.sync()


def _fixed(files: dict[str, bytes]) -> Callable[[Snapshot], Changes]:
    def build(snap: Snapshot) -> Changes:
        return dict(files)

    return build


def _make_data(folder: pathlib.Path, item: _Built, mode: str) -> None:
    if not item.data:
        return
    data_folder = folder / layout.data_dir(*item.obj[:2])
    data_folder.mkdir(parents=True, exist_ok=True)
    for name, source in item.data:
        target = data_folder / name
        try:
            if mode == "reference":
                os.symlink(os.path.abspath(source), target)
            elif os.path.isdir(source) and not os.path.islink(source):
                shutil.copytree(
                    source,
                    target,
                    symlinks=True,
                    copy_function=os.link if mode == "hardlink" else shutil.copy2,
                )
            elif mode == "hardlink" and not os.path.islink(source):
                os.link(source, target)
            else:
                shutil.copy2(source, target, follow_symlinks=False)
        except OSError as exc:
            hint = " (hard links need the same file system: use copy instead)" if mode == "hardlink" else ""
            raise ExpipeError(
                f"{layout.describe(item.obj)}: could not {mode} data {source} into the new project: "
                f"{exc.strerror or exc}{hint}; nothing was written"
            ) from None


# ---------------------------------------------------------------------------
# Verifying


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


def _verify(
    reader: expipe06.Source,
    plan: expipe06.Plan,
    project: Project,
    report: ImportReport,
    progress: Progress | None,
) -> None:
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

    messages_folder = folder / "messages"
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
