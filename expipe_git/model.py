"""Projects: opening and creating them, and the maps of their objects.

Every object is a handle: a project plus the object's name. Reads come from
the latest commit (so an old handle sees what another process wrote) and are
cached by blob id in the store; every mutation is one :meth:`Repository.mutate`
call whose builder re-reads the record at the latest commit, applies the
change and returns the new file contents.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pathlib
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from . import checks, display, history, layout, maps, merge, remoteconfig, values
from . import config as expipe_config
from . import remote as _remote
from .errors import (
    AlreadyExistsError,
    InvalidTypeError,
    InvalidValueError,
    NotAProjectError,
    NotFoundError,
)
from .git import Changes, Repository, Snapshot
from .maps import ActionMap, CommitLog, EntityMap, FileStatus, ProjectConfig, TemplateMap
from .objects import Action, Entity
from .records import Backend06, Module, ModuleMap, Template, delete_module, require_module
from .session import Session

if TYPE_CHECKING:
    from .importcheck import ImportReport


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


def find_project_root(path: pathlib.Path) -> pathlib.Path | None:
    """Return the nearest folder at or above ``path`` holding an expipe_git or expipe 0.6 project."""
    for folder in (path, *path.parents):
        if (folder / layout.CONFIG_FILE).is_file() or _is_expipe06_project(folder):
            return folder
    return None


def _is_expipe06_project(folder: pathlib.Path) -> bool:
    return (folder / expipe_config.EXPIPE06_CONFIG).is_file() and not (folder / layout.CONFIG_FILE).is_file()


def _import_hint(root: pathlib.Path) -> str:
    return (
        f"{root} is an expipe 0.6 project (expipe.yaml, YAML files, no history); expipe_git does not "
        f"change it in place: run `expipe-git import {root} NEW_FOLDER` (or "
        "expipe_git.import_expipe_project(old, new)) to make an expipe_git project of it, "
        "then open NEW_FOLDER; the old folder is only read"
    )


def get_project(path: str | os.PathLike[str], name: str | None = None) -> Project:
    """Open the project at ``path``.

    Raises:
        NotFoundError: no project is there.
    """
    root = pathlib.Path(path).absolute()
    if _is_expipe06_project(root):
        raise NotFoundError(_import_hint(root))
    if not (root / layout.CONFIG_FILE).is_file() or not (root / ".git").exists():
        raise NotFoundError(
            f"no expipe_git project at {root}; create one with expipe_git.create_project({str(path)!r})"
        )
    project = Project(root)
    found = project.config.stored.get("storage_format", layout.STORAGE_FORMAT)
    if not isinstance(found, int) or found > layout.STORAGE_FORMAT:
        raise InvalidValueError(
            f"the project at {root} has storage format {found!r}, newer than this expipe_git "
            f"understands ({layout.STORAGE_FORMAT}); upgrade expipe_git to open it"
        )
    return project


def create_project(path: str | os.PathLike[str], name: str | None = None, init: bool = False) -> Project:
    """Create a project (a git repository) at ``path`` and return it.

    Raises:
        AlreadyExistsError: ``path`` is inside another project.
        FileExistsError: ``path`` exists and ``init`` is False.
    """
    root = pathlib.Path(path).absolute()
    name = root.name if name is None else name
    layout.check_name(name, "project")
    outer = find_project_root(root)
    if outer == root and _is_expipe06_project(root):
        raise AlreadyExistsError(_import_hint(root))
    if outer is not None:
        kind = "expipe 0.6 project" if _is_expipe06_project(outer) else "project"
        raise AlreadyExistsError(
            f"{root} is inside the {kind} at {outer}; a project cannot be created inside another project"
        )
    root.mkdir(parents=True, exist_ok=init)
    store = Repository.init(root)
    config = {
        "project": name,
        "type": "project",
        "storage_format": layout.STORAGE_FORMAT,
        "registered": _now(),
    }
    project = Project(root, store=store)

    def build(snap: Snapshot) -> Changes:
        return {
            layout.CONFIG_FILE: values.dumps(config, what="project config").encode(),
            layout.IGNORE_FILE: layout.IGNORE_TEXT.encode(),
        }

    project.session.commit(("project",), "create", build, detail=repr(name))
    return project


def require_project(path: str | os.PathLike[str], name: str | None = None) -> Project:
    """Return the project at ``path``, creating it if the path does not exist.

    Raises:
        NotAProjectError (a FileExistsError): ``path`` exists but is no project.
    """
    root = pathlib.Path(path).absolute()
    if (root / layout.CONFIG_FILE).is_file():
        return get_project(root, name)
    if _is_expipe06_project(root):
        raise NotAProjectError(_import_hint(root))
    if root.exists():
        raise NotAProjectError(
            f"{root} exists but is not an expipe_git project; "
            "choose another path or create_project(path, init=True) to turn it into one"
        )
    return create_project(root, name)


def clone(
    url: str, path: str | os.PathLike[str], *, progress: Callable[[str], None] | None = None
) -> Project:
    """Clone the project at ``url`` (a path, file://, git://, http(s):// or ssh) into a new folder.

    ``progress``, if given, receives the server's progress text and
    expipe_git's own (checking, checking out) as it comes.

    Raises:
        RemoteError: the remote cannot be reached or holds no expipe_git project.
        UnsafeRemoteError: its history holds unsafe files; nothing is left behind.
    """
    return get_project(_remote.clone(url, path, progress=progress))


# Tells resolve(conflict, value=None) from resolve(conflict, "ours").
_NO_VALUE = object()


class Project:
    """An expipe project: a git repository of actions, entities, templates and modules."""

    # Set by expipe_git.import_expipe_project on the project it returns.
    import_report: ImportReport | None = None

    def __init__(self, root: pathlib.Path, *, store: Repository | None = None):
        self.path = pathlib.Path(root)
        self._store = store or Repository(self.path)
        self.session = Session(self._store)
        """The seam the object layer reaches the repository through (:mod:`expipe_git.session`)."""

    # -- plumbing shared by every object of the project --------------------

    @contextlib.contextmanager
    def transaction(self, message: str | None = None) -> Iterator[Project]:
        """Make every change in the block one commit; if the block raises, none.

        Inside the block, reads show the changes made so far; nothing reaches
        the repository until the block ends. Blocks nest: an inner block
        folds into the outer one, and if it raises, only its own changes are
        dropped. ``message`` is the commit's subject (default: the number of
        changes); its body lists each change. If another program committed
        meanwhile, the changes are applied again on top of its commit.
        """
        with self.session.transaction(message):
            yield self

    # -- expipe's project API ---------------------------------------------

    @property
    def config(self) -> ProjectConfig:
        """The project's ``expipe.toml`` over the user's expipe settings; see :class:`ProjectConfig`."""
        return ProjectConfig(self)

    @property
    def _backend(self) -> Backend06:
        """For expipe 0.6 scripts that reach into 0.6's private backend: ``path`` and ``config``."""
        return Backend06(self.path, config=self.config)

    @property
    def id(self) -> str:
        return self.config.stored.get("project", self.path.name)

    name = id

    def __repr__(self) -> str:
        return f"<expipe_git Project {self.id!r} at {str(self.path)!r}>"

    def _repr_html_(self) -> str:
        return display.project_html(self)

    def close(self) -> None:
        """Release the files the repository keeps open (pack files)."""
        self._store.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def actions(self) -> ActionMap:
        return ActionMap(self)

    @property
    def entities(self) -> EntityMap:
        return EntityMap(self)

    @property
    def templates(self) -> TemplateMap:
        return TemplateMap(self)

    @property
    def modules(self) -> ModuleMap:
        return ModuleMap(self, ("project",))

    def require_action(self, name: str) -> Action:
        return cast(Action, self._require_object("action", name))

    def create_action(self, name: str) -> Action:
        return cast(Action, self._create_object("action", name))

    def delete_action(self, name: str, remove_data: bool = False) -> None:
        """Delete action ``name``: its attributes, modules and messages, in one commit.

        Its data folder is not in git, so nothing could bring it back: a
        folder holding files is kept, with a warning naming it, unless
        ``remove_data=True`` (expipe 0.6 always removed it). An empty one is
        removed.
        """
        self._delete_object("action", name, remove_data)

    def require_entity(self, name: str) -> Entity:
        return cast(Entity, self._require_object("entity", name))

    def create_entity(self, name: str) -> Entity:
        return cast(Entity, self._create_object("entity", name))

    def delete_entity(self, name: str, remove_data: bool = False) -> None:
        """Delete entity ``name`` in one commit; its data folder as :meth:`delete_action` says."""
        self._delete_object("entity", name, remove_data)

    def _require_object(self, kind: str, name: str) -> Action | Entity:
        layout.check_name(name, kind)
        return self._create_object(kind, name, exist_ok=True)

    def _create_object(self, kind: str, name: str, exist_ok: bool = False) -> Action | Entity:
        layout.check_name(name, kind)
        path = layout.attributes_path(kind, name)

        def build(snap: Snapshot) -> Changes:
            if snap.blob_id(path) is not None:
                if exist_ok:
                    return {}
                raise AlreadyExistsError(f"{kind} {name!r} already exists in project {self.id!r}")
            record = {"registered": _now()}
            return {path: values.dumps(record, what=f"{kind} {name!r}").encode()}

        self.session.commit((kind, name), "create", build)
        return maps.handle(self, kind, name)

    def _delete_object(self, kind: str, name: str, remove_data: bool = False) -> None:
        layout.check_name(name, kind)
        folder = layout.object_dir(kind, name)

        def build(snap: Snapshot) -> Changes:
            if snap.blob_id(layout.attributes_path(kind, name)) is None:
                raise NotFoundError(f"{kind} {name!r} does not exist in project {self.id!r}")
            return {path: None for path, _ in snap.walk(folder)}

        self.session.commit((kind, name), "delete", build)
        self._drop_data_folder(kind, name, remove_data)

    def _drop_data_folder(self, kind: str, name: str, remove_data: bool) -> None:
        data = self.path / layout.data_dir(kind, name)
        if data.is_symlink() or data.is_file():
            if not remove_data:
                warnings.warn(_kept_data_text(kind, name, data), stacklevel=4)
                return
            data.unlink()
        elif data.is_dir():
            if any(data.iterdir()) and not remove_data:
                warnings.warn(_kept_data_text(kind, name, data), stacklevel=4)
                return
            # Links in it (an imported project's data) are removed, never what they point at.
            shutil.rmtree(data)
        else:
            return
        for folder in (data.parent, data.parent.parent):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: nothing tracked is left in it

    def require_template(self, name: str, contents: Mapping | None = None) -> Template:
        """Return template ``name``, creating it from ``contents`` if missing."""
        layout.check_name(name, "template")
        return self._create_template(name, contents, exist_ok=True)

    def create_template(self, name: str, contents: Mapping | None = None) -> Template:
        layout.check_name(name, "template")
        return self._create_template(name, contents, exist_ok=False)

    def _create_template(self, name: str, contents: Mapping | None, exist_ok: bool) -> Template:
        if contents is None:
            contents = {}
        if not isinstance(contents, Mapping):
            raise InvalidTypeError(
                f"template {name!r}: contents must be a dict, got {type(contents).__name__}"
            )
        path = layout.template_path(name)
        record = dict(contents)
        record.setdefault("identifier", name)
        record.setdefault("registered", _now())
        if not isinstance(record["identifier"], str):
            raise InvalidTypeError(f"template {name!r}: identifier must be a str")
        layout.check_name(record["identifier"], "module")
        data = values.dumps(record, what=f"template {name!r}").encode()

        def build(snap: Snapshot) -> Changes:
            if snap.blob_id(path) is not None:
                if exist_ok:
                    return {}
                raise AlreadyExistsError(f"template {name!r} already exists in project {self.id!r}")
            twin = layout.case_twin(snap.listdir("templates"), path)
            if twin is not None:
                raise AlreadyExistsError(
                    f"template {layout.strip_suffix(twin)!r} exists in project {self.id!r}: names that "
                    "differ only in case are one file on Windows and macOS; use that template or another name"
                )
            return {path: data}

        self.session.commit(("template", name), "create", build)
        return Template(self, name)

    def delete_template(self, name: str) -> None:
        layout.check_name(name, "template")
        path = layout.template_path(name)

        def build(snap: Snapshot) -> Changes:
            if snap.blob_id(path) is None:
                raise NotFoundError(f"template {name!r} does not exist in project {self.id!r}")
            return {path: None}

        self.session.commit(("template", name), "delete", build)

    def require_module(self, name=None, template=None, contents=None) -> Module:
        return require_module(self, ("project",), name, template, contents, exist_ok=True)

    def create_module(self, name=None, template=None, contents=None) -> Module:
        return require_module(self, ("project",), name, template, contents, exist_ok=False)

    def delete_module(self, name: str) -> None:
        delete_module(self, ("project",), name)

    # -- working with git directly ----------------------------------------

    def status(self) -> list[FileStatus]:
        """List files edited by hand in the working tree and not committed.

        States: "modified", "added", "deleted", and "untracked" for a new
        file that is not the project's (``notes.txt``, ``analysis/plot.ipynb``),
        which :meth:`commit` leaves alone unless it is named. Once committed,
        such a file is listed as any other ("modified", "deleted"). Files git's ignore rules ignore
        (``.gitignore``, ``.git/info/exclude``, ``core.excludesFile``) are not listed.
        """
        return [
            FileStatus(path, "untracked" if state == "added" and not layout.part_of_project(path) else state)
            for path, state in self._store.status()
        ]

    def commit(self, message: str, paths: Iterable[str | os.PathLike[str]] | None = None) -> str | None:
        """Check hand edits parse, then commit them as one commit.

        Without ``paths``, every edit of the project's files is committed
        (records, and files already committed), and new files that are not
        records (``README.md``, ``analysis/plot.ipynb``) are left alone; with
        ``paths`` (files or folders, relative to the project folder, or
        absolute), only the edits under them, new files that are not records
        included: from then on they are project files, which clone, pull and
        push carry and reads of records ignore.

        Returns the new commit id, or None if there was nothing to commit.

        Raises:
            CorruptFileError: a file does not parse, breaks a rule of its
                record, is not where a record belongs, or has a name some
                system cannot hold; nothing is committed then.
            InvalidValueError: a path given has no edit to commit.
        """
        if not isinstance(message, str) or not message.strip():
            raise InvalidValueError("a commit needs a message that says what was changed")
        wanted = None if paths is None else [self._relative(path) for path in paths]

        def build(snap: Snapshot) -> Changes:
            # Under the write lock, so the edits are read against the commit
            # they will be committed on top of.
            edits = self._store.status()
            if wanted is None:  # a new file that is not the project's waits until it is named
                edits = [(p, s) for p, s in edits if s != "added" or layout.part_of_project(p)]
            else:
                under = [(p, s) for p, s in edits if any(p == w or p.startswith(w + "/") for w in wanted)]
                for named in wanted:
                    if not any(p == named or p.startswith(named + "/") for p, _ in under):
                        raise InvalidValueError(
                            f"{named} has no uncommitted edit; 'expipe-git status' lists the files that have"
                        )
                edits = under
            changes: Changes = {}
            for path, state in edits:
                if state == "deleted":
                    changes[path] = None
                    continue
                data = self._store.worktree.read(path)  # CRLF line endings as LF
                checks.check_file(path, data)
                changes[path] = data
            checks.check_objects_whole(snap, changes)
            checks.check_case_twins(snap, changes)
            return changes

        body = message.rstrip("\n") + "\n\nExpipe-Operation: commit hand edits\n"
        sha = self.session.commit_as_is(build, body, from_worktree=True)
        return None if sha is None else sha.decode()

    def _relative(self, path: str | os.PathLike[str]) -> str:
        """A path given to commit(), as a repository path."""
        full = pathlib.Path(path)
        if full.is_absolute():
            if not full.is_relative_to(self.path):
                raise InvalidValueError(f"{full} is not inside the project at {self.path}")
            full = full.relative_to(self.path)
        text = full.as_posix().strip("/")
        if text in ("", ".") or ".." in text.split("/"):
            raise InvalidValueError(f"{path} is not a file or folder inside the project")
        return text

    # -- history (expipe_git.history) --------------------------------------

    def log(
        self,
        *,
        path: Any = None,
        since: Any = None,
        until: Any = None,
        author: str | None = None,
        limit: int | None = None,
    ) -> list[history.Commit]:
        """Return the commits of the project, newest first, as ``git log`` lists them.

        Args:
            path: only commits that changed this: an action, entity, module,
                template or message, an address tuple such as
                ``("action", "rec-1")``, or a path in the repository.
            since, until: only commits made in this span: datetimes, or text
                such as "2026-11-01", "yesterday 14:00" or "3 days ago".
            author: a regular expression matched against "Name <email>".
            limit: at most this many commits.
        """
        return CommitLog(history.log(self, path=path, since=since, until=until, author=author, limit=limit))

    def get_commit(self, revision: Any = "HEAD") -> history.Commit:
        """Return the commit a revision names: an id, HEAD~2, a branch, a tag or a datetime."""
        found = history.history_of(self._store)
        return found.commit(found.resolve(revision))

    def diff(self, a: Any = None, b: Any = "HEAD") -> list[history.Change]:
        """Return the key-level changes from revision ``a`` to revision ``b``.

        With no revision, the changes of the hand edits: the project's files
        in the working tree against the last commit.
        """
        if a is None:
            return history.history_of(self._store).worktree_diff()
        return history.history_of(self._store).diff(a, b)

    def at(self, revision: Any) -> Project:
        """Return a read-only view of the project as it was at a revision or datetime.

        Every read works as on the project; every change raises ReadOnlyError
        and writes nothing.
        """
        sha = history.history_of(self._store).resolve(revision)
        return Project(self.path, store=Repository(self.path, read_only_at=sha))

    def revert(self, commit: Any) -> history.Commit | None:
        """Undo a commit's changes, key by key, in one new commit; return it.

        Raises:
            RevertConflictError: a later commit changed a key the revert would
                set back; nothing is written.
        """
        build, message = history.history_of(self._store).revert_builder(commit, checks.check_objects_whole)
        sha = self.session.commit_as_is(build, message)
        return None if sha is None else self.get_commit(sha.decode())

    # -- remotes (expipe_git.remote does the work) -------------------------

    @property
    def remotes(self) -> dict[str, str]:
        """Remote name -> URL, without user names or passwords."""
        return remoteconfig.remotes(self._store)

    def add_remote(self, name: str, url: str) -> None:
        """Record remote ``name``; a password in ``url`` is kept out of .git/config."""
        remoteconfig.add_remote(self._store, name, url)

    def remove_remote(self, name: str) -> None:
        remoteconfig.remove_remote(self._store, name)

    def fetch(self, remote: str = "origin", *, progress: Callable[[str], None] | None = None) -> str | None:
        """Fetch the remote's main into ``refs/remotes/<remote>/main``; return its commit id."""
        sha = _remote.fetch(self._store, remote, progress=progress)
        return None if sha is None else sha.decode()

    def pull(
        self,
        remote: str = "origin",
        *,
        on_conflict: str = "raise",
        progress: Callable[[str], None] | None = None,
    ) -> str | None:
        """Fetch and bring the remote's main into ours; return the new commit id, or None."""
        sha = _remote.pull(self, remote, on_conflict=on_conflict, progress=progress)
        return None if sha is None else sha.decode()

    def push(self, remote: str = "origin", *, progress: Callable[[str], None] | None = None) -> str | None:
        """Push main (a fast-forward only); return the commit pushed, or None if it was there."""
        sha = _remote.push(self._store, remote, progress=progress)
        return None if sha is None else sha.decode()

    # -- merging (expipe_git.merge does the work; imported here, as it imports this module) --

    def merge(self, revision: str, *, on_conflict: str = "raise") -> str | None:
        """Merge a branch, tag or commit of this repository into the project, record by record.

        Returns the merge commit's id (the other commit's after a fast-forward),
        or None when it is merged already. ``on_conflict="ours"``/``"theirs"``
        resolves every conflict that way; see docs/merging.md.

        Raises:
            MergeConflict: with ``on_conflict="raise"``; nothing changed, and
                the merge waits for :meth:`resolve` and :meth:`continue_merge`.
        """
        return merge.merge(self, revision, on_conflict=on_conflict)

    @property
    def conflicts(self) -> list:
        """The unresolved conflicts of a merge stopped on conflicts (empty if none)."""
        return merge.conflicts(self)

    def resolve(self, conflict, side: str | None = None, *, value: Any = _NO_VALUE) -> None:
        """Resolve one conflict: ``resolve(conflict, "ours")``, ``"theirs"`` or ``value=...``.

        ``conflict`` is an item of :attr:`conflicts` or ``(object address, key)``.
        """
        if value is _NO_VALUE:
            merge.resolve(self, conflict, side)
        else:
            merge.resolve(self, conflict, side, value=value)

    def continue_merge(self) -> str | None:
        """Finish the stopped merge with the resolutions given; MergeConflict if some remain."""
        return merge.continue_merge(self)

    def abort_merge(self) -> None:
        """Forget the stopped merge and its resolutions (HEAD was never touched)."""
        merge.abort_merge(self)


def _kept_data_text(kind: str, name: str, data: pathlib.Path) -> str:
    return (
        f"{kind} {name!r} was deleted, but its data folder {data} was kept: it is not in git, so "
        f"nothing could bring it back; a new {kind} named {name!r} will see it. Remove it by hand, "
        f"or pass remove_data=True to delete_{kind}"
    )
