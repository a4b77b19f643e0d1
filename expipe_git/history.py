"""History and audit: who changed which key of which object, and when.

git records files and lines; people ask about actions, modules and keys.
This module turns commits into :class:`Commit` and :class:`Change` values,
with the values decoded (a Quantity stays a Quantity), and provides the
operations behind ``project.log``, ``obj.history()``, ``project.diff``,
``project.at``, ``obj.blame()`` and ``project.revert``.

Objects
=======

A change names the object it belongs to by its address tuple, the same
tuple ``layout.parse_address`` returns for the CLI's addresses:

=============================================  ===========================================
file                                           ``Change.object``
=============================================  ===========================================
``expipe.toml``                                ``("project",)``
``modules/<m>.toml``                           ``("module", m)``
``templates/<t>.toml``                         ``("template", t)``
``actions/<shard>/<a>/attributes.toml``        ``("action", a)``
``actions/<shard>/<a>/modules/<m>.toml``       ``("action", a, "module", m)``
``actions/<shard>/<a>/messages/<id>.toml``     ``("action", a, "message", id)``
``entities/...``                               as actions, with ``"entity"``
any other file (``.gitignore``)                ``None``
=============================================  ===========================================

Keys
====

``Change.key`` is the path of keys inside the record. A record created or
deleted as a whole is one change with key ``()``; a changed record gives one
change per leaf key that differs, recursing into tables (a list such as
``tags`` is one value). A key added or removed whose value is a table is one
change holding the whole table. Edits that change no value (reordered keys,
comments, spacing) give no change. A file that does not parse as TOML, and a
file outside the layout, is compared as text, with key ``()``.

Revisions
=========

Wherever a revision is taken: a :class:`Commit`; a full or abbreviated
(4+ hex digits) commit id; ``HEAD`` (or ``@``); a branch, tag or remote
branch name; what a ref named by its reflog, as git reads it (``main@{2}``,
the value before its last two moves; ``main@{yesterday}``,
``HEAD@{2 days ago}``, its value then); any of those followed by ``~n``,
``^`` or ``^n`` (``HEAD~3``, ``main^2``); or a ``datetime`` (the newest
commit on HEAD's first-parent line committed at or before it; a naive
datetime is local time), also given as text that names no ref: ``"10 minutes ago"``, ``"yesterday"``,
``"yesterday 14:00"``, ``"2026-11-01"``, ``"2026-11-01 14:00"``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import pathlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from . import layout, values
from .changes import (
    MISSING,
    Change,
    delete_at,
    diff_values,
    iter_leaves,
    put_at,
    same_value,
    value_at,
)
from .changes import leaves as leaves  # the command line lists a record's leaves from here
from .errors import (
    CorruptFileError,
    InvalidTypeError,
    InvalidValueError,
    NotFoundError,
    RevertConflictError,
)
from .git import Changes, Repository, Snapshot, historyindex
from .layout import object_path, record_path
from .revisions import Revisions
from .timetext import parse_when

if TYPE_CHECKING:
    from .model import Project


@dataclass(frozen=True, eq=False)
class Commit:
    """A commit of the project, with its changes as key-level :class:`Change` values.

    ``changes`` are computed on first use, against the first parent (for a
    merge: what the merge brought into the first parent's line).
    """

    id: str
    author: str
    author_email: str
    datetime: dt.datetime
    message: str
    parents: tuple[str, ...]
    _history: _History = field(repr=False)

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]

    @functools.cached_property
    def changes(self) -> list[Change]:
        sha = self.id.encode("ascii")
        return self._history.file_changes(self._history.graph.changes(sha))

    def changes_of(self, target: Any) -> list[Change]:
        """Return the changes this commit made to one object and what it holds.

        ``target`` is what ``log(path=...)`` takes: an object, an address
        tuple or a path. Only that object's files are read, so this stays
        cheap on a commit that changed thousands of records.
        """
        path = path_of(target)
        if "changes" in self.__dict__:  # computed already
            return [c for c in self.changes if c.path == path or c.path.startswith(path + "/")]
        files = self._history.graph.changes(self.id.encode("ascii"))
        inside = tuple(f for f in files if f[0] == path or f[0].startswith(path + "/"))
        return self._history.file_changes(inside)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Commit) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return f"{self.id[:7]} {self.subject}"

    def __repr__(self) -> str:
        return f"<Commit {self.id[:7]} {self.subject!r}>"


class _History:
    """The history operations over one store."""

    def __init__(self, store: Repository):
        self.store = store
        self.graph = historyindex.of(store)
        self.revisions = Revisions(store)

    # -- revisions ---------------------------------------------------------

    def resolve(self, revision: Any) -> bytes:
        """Return the commit id ``revision`` names (see the module docstring).

        Raises:
            NotFoundError: no such commit, ref or commit at that time.
            InvalidValueError: the text is not a revision, or a short id is ambiguous.
        """
        if isinstance(revision, Commit):
            sha = revision.id.encode("ascii")
            if self.store.object_type(sha) != "commit":
                raise NotFoundError(f"commit {revision.id[:7]} is not in {self.store.root}")
            return sha
        return self.revisions.resolve(revision)

    # -- commits and changes ---------------------------------------------

    def commit(self, sha: bytes) -> Commit:
        info = self.store.read_commit(sha)
        name, email = _split_identity(info.author)
        zone = dt.timezone(dt.timedelta(seconds=info.author_offset))
        return Commit(
            id=sha.decode("ascii"),
            author=name,
            author_email=email,
            datetime=dt.datetime.fromtimestamp(info.author_time, zone),
            message=info.message,
            parents=tuple(p.decode("ascii") for p in info.parents),
            _history=self,
        )

    def load(self, sha: bytes | None, path: str) -> Any:
        """Return the decoded record a blob holds, its text if it is no record, or MISSING."""
        if sha is None:
            return MISSING
        if path.endswith(layout.SUFFIX) and layout.in_layout(path):  # analysis/x.toml is no record
            place = layout.place_of(path)
            what = f"{layout.describe(place.obj) if place else path} ({path})"
            try:
                raw = self.store.parsed(sha, lambda data: values.parse(data, what=what))
                return values.decode(cast(dict, raw), what=what)
            except CorruptFileError:
                pass
        return self.store.object_contents(sha).decode("utf-8", "replace")

    def decode_text(self, data: bytes, path: str) -> Any:
        """Return the decoded record ``data`` holds, or its text if it is no record (as :meth:`load`)."""
        if path.endswith(layout.SUFFIX) and layout.in_layout(path):
            try:
                return values.loads(data, what=path)
            except CorruptFileError:
                pass
        return data.decode("utf-8", "replace")

    def file_changes(self, files: tuple[historyindex.FileChange, ...]) -> list[Change]:
        changes: list[Change] = []
        for path, old_sha, new_sha in files:
            changes.extend(_file_changes(path, self.load(old_sha, path), self.load(new_sha, path)))
        return changes

    def worktree_diff(self) -> list[Change]:
        """Key-level changes of the hand edits: the project's files in the working tree against HEAD."""
        snap = self.store.snapshot()
        changes: list[Change] = []
        for path, state in self.store.status():
            if state == "added" and not layout.part_of_project(path):
                continue  # not the project's: status lists it, commit leaves it alone
            old = self.load(snap.blob_id(path), path)
            try:
                data = None if state == "deleted" else pathlib.Path(self.store.root, path).read_bytes()
            except FileNotFoundError:
                data = None
            new = MISSING if data is None else self.decode_text(data, path)
            changes.extend(_file_changes(path, old, new))
        return changes

    def diff(self, a: Any, b: Any = "HEAD") -> list[Change]:
        old, new = self.resolve(a), self.resolve(b)
        files = self.graph.diff_trees(self.store.commit_tree(old), self.store.commit_tree(new))
        return self.file_changes(files)

    # -- walking ---------------------------------------------------------

    def log(self, **options: Any) -> list[Commit]:
        return list(self.iter_log(**options))

    def iter_log(
        self,
        *,
        paths: list[str] | None = None,
        since: Any = None,
        until: Any = None,
        author: str | None = None,
        limit: int | None = None,
        start: Any = "HEAD",
    ) -> Iterator[Commit]:
        """Check the options now, then yield the commits as the walk finds them."""
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise InvalidValueError(f"limit must be a whole number of commits, not {limit!r}")
        low = None if since is None else math.ceil(parse_when(since).timestamp())
        high = None if until is None else parse_when(until).timestamp()
        pattern = None
        if author is not None:
            try:
                pattern = re.compile(author)
            except re.error as exc:
                raise InvalidValueError(f"author {author!r} is not a regular expression: {exc}") from None
        head = self.store.head()
        if head is None or limit == 0:
            return iter(())
        first = head if start == "HEAD" else self.resolve(start)
        return self._walk_log(first, paths, low, high, pattern, limit)

    def _walk_log(
        self,
        first: bytes,
        paths: list[str] | None,
        low: int | None,
        high: float | None,
        pattern: re.Pattern | None,
        limit: int | None,
    ) -> Iterator[Commit]:
        count = 0
        try:
            for sha in self.graph.walk([first], paths, since=low):
                if high is not None and self.graph.time(sha) > high:
                    continue
                if pattern is not None and not pattern.search(self.store.read_commit(sha).author):
                    continue
                yield self.commit(sha)
                count += 1
                if limit is not None and count >= limit:
                    return
        finally:
            self.graph.save()

    def blame(self, path: str, what: str) -> list[tuple[tuple, Any, Commit]]:
        """Return (leaf key, value, the commit that last set it) for the record at ``path``."""
        head = self.store.head()
        current = self.load(None if head is None else self.store.snapshot(head).blob_id(path), path)
        if current is MISSING:
            raise NotFoundError(f"{what} does not exist")
        assert head is not None  # a record was found, so there is a commit
        pending: dict[bytes, dict[tuple, Any]] = {head: dict(iter_leaves(current))}
        blame: dict[tuple, bytes] = {}
        # Commits newest first; a key moves to a parent that holds the same
        # value, and is blamed on the commit where no parent does.
        while pending:
            sha = max(pending, key=self.graph.time)
            keys = pending.pop(sha)
            parents = self.graph.parents(sha)
            diffs = self.graph.node(sha)[2]
            moved = False
            for parent, diff in zip(parents, diffs, strict=False):
                if not any(p == path for p, _, _ in diff):
                    _hand_on(pending, parent, keys)
                    moved = True
                    break
            if moved:
                continue
            parent_leaves = []
            for parent, diff in zip(parents, diffs, strict=False):
                old_sha = next(old for p, old, _ in diff if p == path)
                old = self.load(old_sha, path)
                parent_leaves.append((parent, {} if old is MISSING else dict(iter_leaves(old))))
            for key, value in keys.items():
                for parent, found in parent_leaves:
                    if key in found and same_value(found[key], value):
                        _hand_on(pending, parent, {key: value})
                        break
                else:
                    blame[key] = sha
        commits: dict[bytes, Commit] = {}
        rows = []
        for key, value in iter_leaves(current):
            sha = blame[key]
            if sha not in commits:
                commits[sha] = self.commit(sha)
            rows.append((key, value, commits[sha]))
        self.graph.save()
        return rows

    # -- reverting -------------------------------------------------------

    def revert_builder(
        self, revision: Any, check: Callable[[Snapshot, Changes], None] | None
    ) -> tuple[Callable[[Snapshot], Changes], str]:
        sha = self.resolve(revision)
        info = self.store.read_commit(sha)
        files = self.graph.changes(sha)
        short = sha.decode()[:7]

        def build(snap: Snapshot) -> Changes:
            changes: Changes = {}
            conflicts: list[str] = []
            for path, old_sha, new_sha in files:
                current_sha = snap.blob_id(path)
                if current_sha == new_sha:
                    changes[path] = None if old_sha is None else self.store.object_contents(old_sha)
                    continue
                data = self._revert_keys(path, old_sha, new_sha, current_sha, conflicts)
                if data is not None:
                    changes[path] = data
            if conflicts:
                raise RevertConflictError(
                    f"cannot revert {short} ({info.message.splitlines()[0] if info.message else ''}): "
                    f"later commits changed what it changed: {'; '.join(conflicts)}. Nothing was "
                    "written; change those keys by hand instead",
                    conflicts,
                )
            if check is not None:
                try:
                    check(snap, changes)
                except CorruptFileError as exc:
                    raise RevertConflictError(f"cannot revert {short}: {exc}", [str(exc)]) from None
            return changes

        subject = info.message.split("\n", 1)[0]
        message = (
            f'Revert "{subject}"\n\nThis reverts commit {sha.decode()}.\n\n'
            f"Expipe-Operation: revert\nExpipe-Reverts: {sha.decode()}\n"
        )
        return build, message

    def _revert_keys(
        self,
        path: str,
        old_sha: bytes | None,
        new_sha: bytes | None,
        current_sha: bytes | None,
        conflicts: list[str],
    ) -> bytes | None:
        """Undo one file's key changes on top of its current state; None if only conflicts."""
        place = layout.place_of(path)
        name = layout.address(place.obj) if place else path
        old, new = self.load(old_sha, path), self.load(new_sha, path)
        current = self.load(current_sha, path)
        record_like = all(type(v) is dict for v in (old, new, current))
        if not record_like:
            if current is MISSING:
                conflicts.append(f"{name} was deleted since")
            elif new is MISSING:
                conflicts.append(f"{name} was created again since")
            else:
                conflicts.append(f"{name} was changed since")
            return None
        before = len(conflicts)
        result = current
        for change in diff_values(path, None, (), old, new):
            now = value_at(current, change.key)
            expected = MISSING if change.kind == "removed" else change.new
            if not (now is MISSING and expected is MISSING) and (
                now is MISSING or expected is MISSING or not same_value(now, expected)
            ):
                key = layout.key_label(change.key)
                shown = "(removed)" if now is MISSING else repr(now)
                conflicts.append(f"{name} {key} is now {shown}")
                continue
            if change.kind == "added":
                delete_at(result, change.key)
            else:
                put_at(result, change.key, change.old)
        if len(conflicts) > before:
            return None
        what = layout.describe(place.obj) if place else path
        return values.dumps(result, what=what).encode()


def history_of(store: Repository) -> _History:
    return _History(store)


# ---------------------------------------------------------------------------
# What the model's thin methods call


def path_of(target: Any) -> str:
    """Return the repository path ``log(path=...)`` means: an object, an address tuple or a path."""
    obj = getattr(target, "_obj", None)
    if obj is not None:
        return object_path(obj)
    if isinstance(target, tuple):
        return object_path(target)
    if isinstance(target, str) or hasattr(target, "__fspath__"):
        text = str(target).replace("\\", "/").strip("/")
        if not text or ".." in text.split("/"):
            raise InvalidValueError(f"path {str(target)!r} is not a path inside the project")
        return text
    raise InvalidTypeError(
        "path must be an action, entity, module, template or message, an address tuple, "
        f"or a path in the repository, not {type(target).__name__}"
    )


def log(project: Project, **options: Any) -> list[Commit]:
    return list(iter_log(project, **options))


def iter_log(project: Project, **options: Any) -> Iterator[Commit]:
    """Like ``project.log`` but yielding commits as they are found (the CLI streams them)."""
    path = options.pop("path", None)
    paths = None if path is None else [path_of(path)]
    return history_of(project.session.repository).iter_log(paths=paths, **options)


def blame(project: Project, obj: tuple[str, ...]) -> dict[tuple, Commit]:
    return {key: commit for key, _, commit in blame_rows(project, obj)}


def blame_rows(project: Project, obj: tuple[str, ...]) -> list[tuple[tuple, Any, Commit]]:
    """Return (leaf key, its value now, the commit that last set it) for an object's record."""
    return history_of(project.session.repository).blame(record_path(obj), layout.describe(obj))


def _file_changes(path: str, old: Any, new: Any) -> list[Change]:
    """The changes of one file between two of its versions (``MISSING``: not there)."""
    place = layout.place_of(path)
    obj = place.obj if place else None
    if old is MISSING:
        return [Change("added", path, obj, (), None, new)]
    if new is MISSING:
        return [Change("removed", path, obj, (), old, None)]
    return list(diff_values(path, obj, (), old, new))


def _hand_on(pending: dict[bytes, dict], parent: bytes, keys: dict) -> None:
    pending.setdefault(parent, {}).update(keys)


# ---------------------------------------------------------------------------
# Values


def _split_identity(person: str) -> tuple[str, str]:
    name, _, rest = person.partition("<")
    return name.strip(), rest.rstrip(">").strip()


# ---------------------------------------------------------------------------
# Times
