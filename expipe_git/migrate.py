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
import functools
import os
import pathlib
import secrets
import shutil
from collections.abc import Callable, Iterator
from typing import Any

from . import expipe06, layout, values
from .errors import (
    AlreadyExistsError,
    CorruptFileError,
    ExpipeError,
    InvalidValueError,
)
from .git import Changes, Repository, Snapshot, lockfile, packing
from .importcheck import ImportReport, Progress, compare_with_source, count_objects, verify_import
from .messages import message_bytes, message_id_of
from .model import Project, find_project_root
from .objects import datetime_format

__all__ = ["ImportReport", "import_expipe_project", "verify_import"]

OPERATION = "import from expipe 0.6"
DATA_MODES = ("reference", "copy", "hardlink")


_STRAY_SHOWN = 20
_NOTES_SHOWN = 3  # notes of one kind shown before "... and N more"


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
        elif not isinstance(identifier, str) or layout.name_problem(identifier):
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
        message_id = message_id_of(record)
        return layout.message_path(kind, name, message_id), message_bytes(record, (kind, name))

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
    report = _new_report(root, target, plan, data)
    _build_in_place(reader, plan, target, report, single_commit=single_commit, data=data, progress=progress)
    _note_stray(plan, report)
    project = Project(target)
    if verify:
        compare_with_source(reader, plan, project, report, progress)
        if report.differences:
            import warnings

            warnings.warn(
                f"the import of {root} differs from its source in {len(report.differences)} place(s); "
                "see project.import_report",
                stacklevel=2,
            )
    project.import_report = report
    return project


def _new_report(root: pathlib.Path, target: pathlib.Path, plan: expipe06.Plan, data: str) -> ImportReport:
    """Start the report; remove what killed imports into ``target`` left, and note it."""
    report = ImportReport(str(root), str(target), data_mode=data)
    report.counts = count_objects(plan)
    if (root / ".git").exists():
        report.notes.append(
            f"{root} is itself a git repository; it was only read, and its git history is not imported"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    for left in _remove_abandoned_imports(target):
        report.notes.append(f"removed {left}, the unfinished folder of an import of {target} that was killed")
    return report


def _build_in_place(
    reader: expipe06.Source,
    plan: expipe06.Plan,
    target: pathlib.Path,
    report: ImportReport,
    *,
    single_commit: bool,
    data: str,
    progress: Progress | None,
) -> None:
    """Build the project in a hidden folder beside ``target``, then rename it into place."""
    building, lock = _start_building(target)
    try:
        with packing.suspended(str(building / ".git")):  # the next write to the project packs
            _build(reader, plan, building, report, single_commit=single_commit, data=data, progress=progress)
        appeared = f"{target} appeared while importing; the import was not put there"
        if os.path.lexists(target):
            raise AlreadyExistsError(appeared)
        try:
            os.rename(building, target)
        except OSError:
            if os.path.lexists(target):  # made between the check and the rename
                raise AlreadyExistsError(appeared) from None
            raise
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)  # releases the flock


def _note_stray(plan: expipe06.Plan, report: ImportReport) -> None:
    if plan.stray:
        shown = ", ".join(plan.stray[:_STRAY_SHOWN])
        more = f", and {len(plan.stray) - _STRAY_SHOWN} more" if len(plan.stray) > _STRAY_SHOWN else ""
        report.notes.append(f"not imported, not part of an expipe project: {shown}{more}")


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
    outer = find_project_root(target)
    if outer is not None:
        raise AlreadyExistsError(
            f"{target} is inside the expipe_git project at {outer}; a project cannot be created inside "
            "another project"
        )


def _objects(builder: _Builder, plan: expipe06.Plan) -> Iterator[Callable[[], _Built]]:
    """Yield a builder for each object: the config, templates, project modules, entities, actions."""
    yield functools.partial(builder.config, plan.config)
    for name, path in plan.templates.items():
        yield functools.partial(builder.template, name, path)
    for name, path in plan.modules.items():
        yield functools.partial(builder.project_module, name, path)
    for kind in ("entity", "action"):
        for name, folder in plan.folders[kind].items():
            yield functools.partial(builder.folder_object, kind, name, folder, plan)


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
    author = project.session.identity()
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
