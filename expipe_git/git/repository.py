"""The git engine: read files at a commit, and commit changes safely.

This and :mod:`expipe_git.remote` (the wire protocols: clone, fetch, push)
are the modules that talk to dulwich; others borrow only pieces of it (its C
delta and tree decoders, and the object type its pack writer takes). It
knows nothing of TOML or of actions; it stores bytes at paths.

A mutation (:meth:`Store.mutate`) runs under one project-wide lock:

1. take the lock (:mod:`expipe_git.lockfile` on ``.git/expipe-git/write-mutex``;
   the kernel releases it when a writer dies, unlike git's ``*.lock`` files;
   the file itself is never removed);
2. clean up after a writer that died: its temporary files, git locks it
   held, and the working-tree update it left half-way (journal);
3. read HEAD and let the caller compute its changes from that state, so a
   mutation always applies to the latest commit and concurrent writers
   compose instead of overwriting each other;
4. refuse if a touched file was edited by hand and not committed;
5. write blobs, the changed trees and a commit; move the branch with
   compare-and-swap (a commit made meanwhile by stock git is retried on top,
   a bounded number of times);
6. update the index entries and working-tree files of the changed paths.
   The change is committed by now, so a failure here is a warning, never an
   error a retry would answer by committing it twice.

Hooks never run and gc never starts: nothing here calls porcelain.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import heapq
import itertools
import json
import os
import re
import stat
import threading
import time
import warnings
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

from dulwich.errors import ApplyDeltaError, ChecksumMismatch, MissingCommitError, NotGitRepository
from dulwich.ignore import IgnoreFilterManager
from dulwich.objects import Commit, Tree, parse_tree
from dulwich.repo import Repo

from ..errors import (
    CorruptRepositoryError,
    ExpipeError,
    ProjectBusyError,
    ReadOnlyError,
    RepositoryStateError,
    UncommittedChangesError,
)
from . import historyindex, lockfile, packing, packs, readcache
from . import index as gitindex
from .worktree import WorkTree, blob_sha

BRANCH = b"refs/heads/main"
FILE_MODE = 0o100644
TREE_MODE = 0o040000
_STATE_DIR = "expipe-git"
_LOCK_WAIT_SECONDS = 3.0
_DEAD_WRITER_LOCK_SECONDS = 1.0
# How often a mutation is rebuilt because the branch moved between reading it
# and swapping it. Only a program that commits without our lock moves it
# (stock git), so more than a few in a row means something keeps doing so.
_SWAP_ATTEMPTS = 20
# Temporary files of a write: write-object-PID-THREAD (objects), write-PID-THREAD (working tree).
_TEMP_FILE = re.compile(r"write-(?:object-)?(\d+)-\d+")
_OBJECT_ID = re.compile(rb"[0-9a-f]{40}")
# Files git keeps while an operation of the user's is unfinished.
_IN_PROGRESS = [
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase or git am"),
    ("BISECT_LOG", "bisect"),
]
T = TypeVar("T")

# A change: path -> new bytes, or None to delete the file.
Changes = dict[str, "bytes | None"]


@dataclass(frozen=True)
class Identity:
    """Who a commit is by; ``committer``, if given, who committed it (GIT_COMMITTER_*)."""

    name: str
    email: str
    committer: Identity | None = None

    def git_form(self) -> bytes:
        return f"{self.name} <{self.email}>".encode()


@dataclass(frozen=True)
class CommitInfo:
    """A commit's header fields and message, as stored."""

    id: bytes
    tree: bytes
    parents: tuple[bytes, ...]
    author: str  # "Name <email>"
    author_time: int  # seconds since the epoch
    author_offset: int  # seconds east of UTC
    committer: str
    commit_time: int
    commit_offset: int
    message: str

    @classmethod
    def parse(cls, sha: bytes, raw: bytes) -> CommitInfo:
        header, _, message = raw.partition(b"\n\n")
        fields: dict[bytes, list[bytes]] = {}
        last = b""
        for line in header.split(b"\n"):
            if line.startswith(b" ") and last:
                fields[last][-1] += b"\n" + line[1:]  # continuation (gpgsig, mergetag)
                continue
            key, _, value = line.partition(b" ")
            fields.setdefault(key, []).append(value)
            last = key
        author, author_time, author_offset = _signature(fields.get(b"author", [b""])[0])
        committer, commit_time, commit_offset = _signature(fields.get(b"committer", [b""])[0])
        encoding = fields.get(b"encoding", [b"utf-8"])[0].decode("ascii", "replace")
        try:
            text = message.decode(encoding, "replace")
        except LookupError:
            text = message.decode("utf-8", "replace")
        return cls(
            id=sha,
            tree=fields[b"tree"][0],
            parents=tuple(fields.get(b"parent", [])),
            author=author,
            author_time=author_time,
            author_offset=author_offset,
            committer=committer,
            commit_time=commit_time,
            commit_offset=commit_offset,
            message=text,
        )


class Draft:
    """A tree being changed in memory: the files of a transaction so far.

    Changes wait in ``pending`` and are folded into ``tree`` only when a
    folder they touch is read, so a run of mutations rewrites the root tree
    once, not once per mutation.
    """

    def __init__(self, store: Store, tree: bytes | None, put: Callable[[bytes, bytes], bytes]):
        self.store = store
        self.base = tree  # the tree with every change before ``pending``
        self.pending: dict[str, bytes | None] = {}
        self.folders: set[str] = set()
        self.put = put

    def change(self, changes: dict[str, bytes | None]) -> None:
        for path, sha in changes.items():
            self.pending[path] = sha
            folder = path.rpartition("/")[0]
            while folder and folder not in self.folders:
                self.folders.add(folder)
                folder = folder.rpartition("/")[0]

    def tree(self) -> bytes | None:
        if self.pending:
            tree = self.store._apply_to_tree(self.base, self.pending, put=self.put)
            self.base = None if tree == _EMPTY_TREE else tree
            self.pending, self.folders = {}, set()
        return self.base

    def entry(self, path: str) -> tuple[int, bytes] | None:
        if path in self.pending:
            sha = self.pending[path]
            return None if sha is None else (FILE_MODE, sha)
        tree = self.tree() if path in self.folders else self.base
        return None if tree is None else self.store.lookup(tree, path)


class Snapshot:
    """A read view of the files of one commit (or of an empty repository).

    With a ``draft``, reads see the draft's files instead: inside a
    transaction, the changes buffered so far on top of ``commit``.
    """

    def __init__(self, store: Store, commit: bytes | None, draft: Draft | None = None):
        self.store = store
        self.commit = commit
        self._draft = draft
        self._tree = store.commit_tree(commit) if commit and draft is None else None

    @property
    def tree(self) -> bytes | None:
        return self._tree if self._draft is None else self._draft.tree()

    def entry(self, path: str) -> tuple[int, bytes] | None:
        """Return (mode, sha) of ``path``, or None if it does not exist."""
        if self._draft is not None:
            return self._draft.entry(path)
        if self._tree is None:
            return None
        return self.store.lookup(self._tree, path)

    def blob_id(self, path: str) -> bytes | None:
        found = self.entry(path)
        if found is None or stat.S_ISDIR(found[0]):
            return None
        return found[1]

    def read_parsed(self, path: str, parse: Callable[[bytes], object]) -> object | None:
        """Return ``parse(bytes)`` of a file, cached by its blob id."""
        sha = self.blob_id(path)
        return None if sha is None else self.store.parsed(sha, parse)

    def listdir(self, path: str) -> dict[str, tuple[int, bytes]]:
        """Return name -> (mode, sha) of a folder; empty if it does not exist."""
        if self.tree is None:
            return {}
        if path in ("", "/"):
            return self.store.tree_entries(self.tree)
        found = self.entry(path)
        if found is None or not stat.S_ISDIR(found[0]):
            return {}
        return self.store.tree_entries(found[1])

    def predecessor(self, path: str) -> str | None:
        """Return the file that sorts right before ``path`` in git's index order.

        The index sorts full paths as bytes; a folder ``d`` sorts as ``d/``.
        """
        if self.tree is None:
            return None
        return self.store.predecessor(self.tree, path)

    def walk(self, path: str = "") -> Iterator[tuple[str, bytes]]:
        """Yield (path, blob sha) of every file below ``path``."""
        for name, (mode, sha) in self.listdir(path).items():
            full = f"{path}/{name}" if path else name
            if stat.S_ISDIR(mode):
                yield from self.walk(full)
            else:
                yield full, sha


class _Transaction:
    """Mutations buffered in memory until the outermost block ends.

    Each mutation's ``build`` is applied at once to an in-memory draft, so
    reads inside the block see it; nothing touches the disk. At the end the
    draft becomes one commit. If another writer committed meanwhile, the
    builds are replayed in order on top of its commit, as a single mutation
    would be.
    """

    def __init__(self, store: Store, start: bytes | None):
        self.start = start
        self.objects: dict[bytes, tuple[int, bytes]] = {}
        self.draft = Draft(store, store.commit_tree(start) if start else None, self.put)
        self.builds: list[Callable[[Snapshot], Changes]] = []
        self.subjects: list[str] = []
        self.message: str | None = None

    def put(self, kind: bytes, content: bytes) -> bytes:
        sha = hashlib.sha1(kind + b" %d\0" % len(content) + content).hexdigest().encode("ascii")
        self.objects[sha] = (_TYPE_NUMBERS[kind], content)
        return sha


class Store:
    """A git repository with a working tree, as expipe_git reads and writes it."""

    # Each loose object is fsynced before the branch can point at it. A bulk
    # writer filling a folder nobody uses yet (the importer, which builds the
    # project under a temporary name) turns this off and syncs once before
    # renaming the folder into place: per-object fsyncs were 2/3 of its time.
    sync_objects = True

    def __init__(self, root: str | os.PathLike[str], *, read_only_at: bytes | None = None):
        self.root = os.path.abspath(os.fspath(root))
        try:
            self.repo = Repo(self.root)
        except NotGitRepository as exc:
            raise ExpipeError(f"{self.root} is not a git repository") from exc
        self.git_dir = self.repo.controldir()
        self.state_dir = os.path.join(self.git_dir, _STATE_DIR)
        self.index_path = self.repo.index_path()
        self._objects_dir = os.path.join(self.git_dir, "objects")
        self._packs = packs.Packs(os.path.join(self._objects_dir, "pack"))
        self.worktree = WorkTree(self.root, self.state_dir)
        self._index_trust = os.path.join(self.state_dir, "index-written")
        self.pinned = read_only_at
        self._trees: dict[bytes, dict[str, tuple[int, bytes]]] = {}
        self._commit_trees: dict[bytes, bytes] = {}
        self._branch_file = os.path.join(self.git_dir, "refs", "heads", "main")
        self._packed_refs = os.path.join(self.git_dir, "packed-refs")
        self._branch_seen: tuple[tuple, bytes | None] | None = None
        self._cache = readcache.ReadCache(os.path.join(self.state_dir, "read-cache"))
        # At exit (or when this store is collected): save what was parsed, and
        # close pack files before the interpreter tears down the modules
        # dulwich's __del__ needs (it prints tracebacks otherwise).
        weakref.finalize(self, _close, self.repo, self._cache)
        self._parsed: dict[bytes, object] = {}
        self._commits: dict[bytes, CommitInfo] = {}
        self._local = threading.local()  # the transaction of each thread
        self._identity: tuple[str, str] | None = None  # who moves the branch, for its reflog
        self._thread_lock = threading.RLock()

    # -- creating ---------------------------------------------------------

    @classmethod
    def init(cls, root: str | os.PathLike[str]) -> Store:
        """Make ``root`` a git repository on branch main (root must exist)."""
        root = os.fspath(root)
        if not os.path.isdir(os.path.join(root, ".git")):
            repo = Repo.init(root, default_branch=b"main")
            config = repo.get_config()
            # gc is never started behind the user's back: dulwich's repack
            # writes packs without deltas and holds everything in memory.
            config.set((b"gc",), b"auto", b"0")
            config.write_to_path()
            repo.close()
        return cls(root)

    # -- reading ----------------------------------------------------------

    def head(self) -> bytes | None:
        """Return the commit the branch points to, or None before the first."""
        if self.pinned is not None:
            return self.pinned
        # Every read asks for the branch, so that an old handle sees what
        # another process committed. git replaces a ref file (loose, or
        # packed-refs once it packed them) by rename, so an unchanged
        # (inode, mtime, size) means an unchanged ref.
        key = _stat_key(self._branch_file)
        if key is None:
            key = _stat_key(self._packed_refs)
            key = None if key is None else ("packed", *key)
        if key is not None and self._branch_seen is not None and self._branch_seen[0] == key:
            return self._branch_seen[1]
        sha = self._read_branch()
        self._branch_seen = None if key is None else (key, sha)
        return sha

    def _read_branch(self) -> bytes | None:
        """Return the commit id branch main holds (its file, else packed-refs), or None.

        Raises:
            CorruptRepositoryError: the branch's file is empty, unreadable or
                holds something else than a commit id. (dulwich reads an empty
                file as a missing branch: reads showed an empty project, and a
                write took it for a branch stock git had just created.)
        """
        where = f"{self._branch_file} (branch main)"
        try:
            with open(self._branch_file, "rb") as f:
                value = f.read().strip()
        except FileNotFoundError:
            where = f"{self._packed_refs} (the line of branch main)"
            value = self._packed_branch()
            if value is None:
                return None  # no commit yet
        except OSError as exc:
            raise CorruptRepositoryError(
                f"cannot read {where}: {exc.strerror}; {_REF_ADVICE.format(root=self.root)}",
                BRANCH.decode(),
            ) from None
        if _OBJECT_ID.fullmatch(value):
            return value
        shown = "is empty" if not value else f"holds {value[:60]!r}, not a commit id"
        raise CorruptRepositoryError(
            f"{where} {shown}; {_REF_ADVICE.format(root=self.root)}", BRANCH.decode()
        )

    def _packed_branch(self) -> bytes | None:
        """Return what packed-refs (git pack-refs, git gc) says branch main holds, or None."""
        try:
            with open(self._packed_refs, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptRepositoryError(
                f"cannot read {self._packed_refs}: {exc.strerror}; {_REF_ADVICE.format(root=self.root)}",
                BRANCH.decode(),
            ) from None
        for line in lines:
            if line.endswith(b" " + BRANCH) and not line.startswith((b"#", b"^")):
                return line[: -len(BRANCH) - 1].strip()
        return None

    def snapshot(self, commit: bytes | None = None) -> Snapshot:
        """Return a view of ``commit`` (default: HEAD with this thread's buffered changes)."""
        if commit is None:
            tx = self._transaction()
            if tx is not None:
                return Snapshot(self, tx.start, tx.draft)
            commit = self.head()
            snap = Snapshot(self, commit)
            self._cache.root = snap.tree  # what the read cache keeps when saved
            return snap
        return Snapshot(self, commit)

    def commit_tree(self, commit: bytes) -> bytes:
        """Return the root tree of a commit (cached: commits never change)."""
        tree = self._commit_trees.get(commit)
        if tree is None:
            type_num, raw = self._raw_object(commit)
            # A commit object starts with "tree <40 hex digits>\n".
            if type_num != Commit.type_num or not raw.startswith(b"tree "):
                raise ExpipeError(f"{commit.decode()} is not a commit")
            tree = raw[5:45]
            self._commit_trees[commit] = tree
        return tree

    def tree_entries(self, sha: bytes) -> dict[str, tuple[int, bytes]]:
        """Return name -> (mode, sha) of a tree, cached by its id."""
        entries = self._trees.get(sha)
        if entries is None:
            entries = self._cache.tree(sha)
            if entries is None:
                _, raw = self._raw_object(sha)
                entries = {
                    name.decode("utf-8", "surrogateescape"): (mode, child)
                    for name, mode, child in parse_tree(raw, 20)
                }
                self._cache.add_tree(sha, entries)
            if len(self._trees) > 200_000:
                self._trees.clear()
            self._trees[sha] = entries
        return entries

    def lookup(self, tree: bytes, path: str) -> tuple[int, bytes] | None:
        entry: tuple[int, bytes] = (TREE_MODE, tree)
        for part in path.split("/"):
            if not stat.S_ISDIR(entry[0]):
                return None
            found = self.tree_entries(entry[1]).get(part)
            if found is None:
                return None
            entry = found
        return entry

    def predecessor(self, tree: bytes, path: str, prefix: str = "") -> str | None:
        """Return the greatest file path below ``tree`` that sorts before ``path``."""
        head, _, rest = path.partition("/")
        entries = self.tree_entries(tree)
        if rest:
            found = entries.get(head)
            if found is not None and stat.S_ISDIR(found[0]):
                inner = self.predecessor(found[1], rest, f"{prefix}{head}/")
                if inner is not None:
                    return inner
        target = (head + "/" + rest if rest else head).encode("utf-8", "surrogateescape")
        best: tuple[bytes, str, tuple[int, bytes]] | None = None
        for name, entry in entries.items():
            is_dir = stat.S_ISDIR(entry[0])
            key = (name + "/" if is_dir else name).encode("utf-8", "surrogateescape")
            if key < target and (is_dir or key != target) and not (is_dir and name == head and rest):
                if best is None or key > best[0]:
                    best = (key, name, entry)
        while best is not None:
            _, name, (mode, sha) = best
            if not stat.S_ISDIR(mode):
                return prefix + name
            prefix = f"{prefix}{name}/"
            inner = self.tree_entries(sha)
            best = max(
                (
                    ((n + "/" if stat.S_ISDIR(e[0]) else n).encode("utf-8", "surrogateescape"), n, e)
                    for n, e in inner.items()
                ),
                default=None,
            )
        return None

    def diff_trees(
        self, old: bytes | None, new: bytes | None, prefix: str = ""
    ) -> dict[str, tuple[bytes | None, bytes | None]]:
        """Return path -> (old blob id, new blob id) of the files that differ.

        Only folders whose tree ids differ are opened, so comparing two
        commits costs the size of the change, not of the project.
        """
        if old == new:
            return {}
        before = self.tree_entries(old) if old else {}
        after = self.tree_entries(new) if new else {}
        changed: dict[str, tuple[bytes | None, bytes | None]] = {}
        for name in before.keys() | after.keys():
            a, b = before.get(name), after.get(name)
            if a == b:
                continue
            a_dir = a is not None and stat.S_ISDIR(a[0])
            b_dir = b is not None and stat.S_ISDIR(b[0])
            if a_dir or b_dir:
                changed.update(
                    self.diff_trees(a[1] if a_dir else None, b[1] if b_dir else None, f"{prefix}{name}/")
                )
            a_file = None if a is None or a_dir else a[1]
            b_file = None if b is None or b_dir else b[1]
            if a_file != b_file:
                changed[prefix + name] = (a_file, b_file)
        return changed

    def read_commit(self, sha: bytes) -> CommitInfo:
        """Return the parsed header and message of a commit (cached)."""
        found = self._commits.get(sha)
        if found is None:
            type_num, raw = self._raw_object(sha)
            if type_num != Commit.type_num:
                raise ExpipeError(f"{sha.decode()} is not a commit")
            found = CommitInfo.parse(sha, raw)
            if len(self._commits) > 200_000:
                self._commits.clear()
            self._commits[sha] = found
        return found

    def merge_bases(self, one: bytes, two: bytes) -> list[bytes]:
        """Return the best common ancestors of two commits (usually one; none if unrelated).

        git's walk: commits are visited newest first from both sides, each
        marked with the sides that reach it; one reached from both is a
        candidate, and what lies below it is not. The walk stops when every
        commit left to visit lies below a candidate, so its cost is the
        divergence between the two histories, not their length.
        """
        if one == two:
            return [one]
        side_one, side_two, below = 1, 2, 4
        both = side_one | side_two
        flags = {one: side_one, two: side_two}
        order = itertools.count()
        queue = [
            (-self.read_commit(one).commit_time, next(order), one),
            (-self.read_commit(two).commit_time, next(order), two),
        ]
        found: list[bytes] = []
        while any(not flags[sha] & below for _, _, sha in queue):
            _, _, sha = heapq.heappop(queue)
            marks = flags[sha] & (both | below)
            if marks == both:
                found.append(sha)
                marks |= below
                flags[sha] |= below  # a commit queued twice is a candidate once
            for parent in self.read_commit(sha).parents:
                if flags.get(parent, 0) & marks == marks:
                    continue
                flags[parent] = flags.get(parent, 0) | marks
                heapq.heappush(queue, (-self.read_commit(parent).commit_time, next(order), parent))
        # Commits that share a second can be visited out of order; drop a
        # candidate that is an ancestor of another.
        return [c for c in found if not any(o != c and self._reaches(o, c) for o in found)]

    def is_ancestor(self, ancestor: bytes, descendant: bytes) -> bool:
        """Say whether ``ancestor`` is ``descendant`` or in its history."""
        return ancestor == descendant or ancestor in self.merge_bases(ancestor, descendant)

    def _reaches(self, start: bytes, target: bytes) -> bool:
        seen = {start}
        todo = [start]
        while todo:
            sha = todo.pop()
            if sha == target:
                return True
            for parent in self.read_commit(sha).parents:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return False

    def read_blob(self, sha: bytes) -> bytes:
        _, raw = self._raw_object(sha)
        return raw

    def stored_object(self, sha: bytes) -> packs.StoredObject | None:
        """Return an object's packed bytes as stored, for a push to send on; None if not packed."""
        return self._packs.stored(sha)

    def _raw_object(self, sha: bytes) -> tuple[int, bytes]:
        """Return (type number, contents) of an object.

        Objects are read directly: dulwich looks through its packs and
        rescans the pack folder first, which made reading every action of a
        10k-action project 3x slower, and reads a packed object through
        several layers of Python (:mod:`expipe_git.packs`). What neither
        reader here knows (an old index version, an alternate object store)
        goes through dulwich.
        """
        packed = self._packs.get(sha, look_again=False)  # an id names one content wherever it is
        if packed is not None:
            return packed
        in_memory = getattr(self._local, "objects", None)
        if in_memory and sha in in_memory:
            return in_memory[sha]
        hex_sha = sha.decode("ascii", "replace")
        path = os.path.join(self._objects_dir, hex_sha[:2], hex_sha[2:])
        try:
            with open(path, "rb") as f:
                compressed = f.read()
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError):
                raise CorruptRepositoryError(
                    f"cannot read git object {hex_sha} ({path}): {exc.strerror}; "
                    f"check who may read {self.git_dir}, then run 'git fsck' there",
                    hex_sha,
                ) from None
            if not _OBJECT_ID.fullmatch(sha):
                raise CorruptRepositoryError(
                    f"{sha[:60]!r} is not a git object id (read from a ref or tree in "
                    f"{self.git_dir}); run 'git fsck' there",
                    hex_sha,
                ) from None
            packed = self._packs.get(sha)
            if packed is not None:
                return packed
            try:
                return self.repo.object_store.get_raw(sha)
            except KeyError:
                problem = "is missing"
            except (zlib.error, ValueError, ChecksumMismatch, ApplyDeltaError) as exc:
                problem = f"is damaged ({exc})"  # packs.py gave up on it too: the pack is damaged
            # Raised here, not in the handler: the caught error's frames hold
            # views of the pack's memory map, and closing the store would fail.
            raise CorruptRepositoryError(
                f"git object {hex_sha} in {self.git_dir} {problem}; run 'git fsck' there "
                "(a copy of the project, a clone or a backup may still have it)",
                hex_sha,
            ) from None
        try:
            data = zlib.decompress(compressed)
            header, body = data.split(b"\0", 1)
            kind, size = header.split(b" ")
            if int(size) != len(body):
                raise ValueError("size mismatch")
            return _TYPE_NUMBERS[kind], body
        except (zlib.error, ValueError, KeyError) as exc:
            raise CorruptRepositoryError(
                f"git object {hex_sha} in {self.git_dir} is damaged ({exc}); run 'git fsck' there",
                hex_sha,
            ) from exc

    def parsed(self, sha: bytes, parse: Callable[[bytes], object]) -> object:
        """Return ``parse`` of a blob; blobs never change, so cache by id.

        The cache outlives the process (:mod:`expipe_git.readcache`), so every
        caller must pass the same ``parse`` (``values.parse``).
        """
        value = self._parsed.get(sha)
        if value is None:
            value = self._cache.record(sha)
            if value is None:
                value = parse(self.read_blob(sha))
                self._cache.add_record(sha, value)
            if len(self._parsed) > 200_000:
                self._parsed.clear()
            self._parsed[sha] = value
        return value

    def subjects(self, limit: int | None = None) -> list[tuple[str, str]]:
        """Return (commit id, subject) of the branch's commits, newest first."""
        head = self.head()
        if head is None:
            return []
        found = []
        try:
            for entry in self.repo.get_walker(include=[head], max_entries=limit):
                message = entry.commit.message.decode("utf-8", "replace")
                found.append((entry.commit.id.decode("ascii"), message.split("\n", 1)[0]))
        except (KeyError, MissingCommitError) as exc:  # dulwich's words for a missing object
            missing = getattr(exc, "sha", None) or (exc.args[0] if exc.args else b"?")
            if isinstance(missing, bytes):
                missing = missing.decode("ascii", "replace")
            raise CorruptRepositoryError(
                f"git object {missing} in {self.git_dir} is missing; run 'git fsck' there", missing
            ) from None
        return found

    # -- history (read-only helpers for expipe_git.history) ----------------

    def tree_bytes(self, sha: bytes) -> bytes:
        """Return a tree object's raw entries, without parsing or remembering them.

        History walks compare thousands of old trees once each: keeping them
        in the shared read cache would bloat it with trees nobody reads
        again, and two versions of a big folder differ in a few bytes, so the
        caller parses only around those (:mod:`expipe_git.git.historyindex`).
        """
        type_num, raw = self._raw_object(sha)
        if type_num != _TYPE_NUMBERS[b"tree"]:
            raise ExpipeError(f"{sha.decode()} is not a tree")
        return raw

    def resolve_ref(self, name: str) -> bytes | None:
        """Return the commit a ref name means, by git's rules, or None.

        ``name``, ``refs/<name>``, ``refs/tags/<name>``, ``refs/heads/<name>``,
        ``refs/remotes/<name>`` and ``refs/remotes/<name>/HEAD`` are tried in
        that order (git's order); an annotated tag is peeled to its commit.
        """
        raw = name.encode("utf-8", "surrogateescape")
        for candidate in (
            raw,
            b"refs/" + raw,
            b"refs/tags/" + raw,
            b"refs/heads/" + raw,
            b"refs/remotes/" + raw,
            b"refs/remotes/" + raw + b"/HEAD",
        ):
            if candidate != b"HEAD" and not candidate.startswith(b"refs/"):
                continue
            try:
                sha = self.repo.refs[candidate]
            except (KeyError, ValueError):
                continue
            return self.peel(sha)
        return None

    def peel(self, sha: bytes) -> bytes:
        """Follow annotated tags to the object they name."""
        for _ in range(64):
            type_num, raw = self._raw_object(sha)
            if type_num != _TYPE_NUMBERS[b"tag"] or not raw.startswith(b"object "):
                return sha
            sha = raw[7:47]
        return sha

    def objects_with_prefix(self, prefix: str) -> list[bytes]:
        """Return the ids of the objects whose hex id starts with ``prefix``."""
        try:
            return sorted(set(self.repo.object_store.iter_prefix(prefix.lower().encode("ascii"))))
        except (ValueError, UnicodeEncodeError):
            return []

    def object_type(self, sha: bytes) -> str | None:
        """Return "commit", "tree", "blob" or "tag", or None if the object is missing."""
        try:
            type_num, _ = self._raw_object(sha)
        except CorruptRepositoryError:
            if _OBJECT_ID.fullmatch(sha) and sha in self.repo.object_store:
                raise  # there, but damaged
            return None
        return {number: kind.decode() for kind, number in _TYPE_NUMBERS.items()}.get(type_num)

    # -- writing ----------------------------------------------------------

    def mutate(
        self,
        build: Callable[[Snapshot], Changes],
        message: str,
        *,
        author: Identity,
        from_worktree: bool = False,
        when: datetime | None = None,
        merge_parent: bytes | None = None,
    ) -> bytes | None:
        """Commit the changes ``build`` computes from the latest commit.

        ``build`` may raise to abort; nothing is written then. Returns the new
        commit id, or None when the changes leave every file as it was.
        ``from_worktree`` says the changes are the working-tree files
        themselves (committing hand edits), so they are not refused as edits.
        ``when`` dates the commit (default: now). ``merge_parent`` makes a
        merge commit whose second parent it is; it is made even when the
        merged tree equals HEAD's, so the other history becomes an ancestor.

        Inside :meth:`transaction` the change is buffered and None returned.
        """
        tx = self._transaction()
        if tx is not None:
            if from_worktree or when is not None or merge_parent is not None:
                raise ExpipeError(
                    "committing hand edits or merging cannot be part of a transaction; "
                    "do it before or after the 'with project.transaction()' block"
                )
            self._buffer(tx, build, message)
            return None

        def prepare(snap: Snapshot) -> tuple[dict, bytes] | None:
            updates = self._effective(snap, build(snap))
            if not updates and merge_parent is None:
                return None
            if not from_worktree:
                self._refuse_hand_edits(snap, updates)
            commit = self._write_commit(snap, updates, message, author, when=when, merge_parent=merge_parent)
            return updates, commit

        return self._land(prepare, message)

    def fast_forward(self, target: bytes, message: str = "fast-forward", *, into_empty: bool = False) -> bool:
        """Move the branch to ``target``, a descendant of HEAD, and check it out.

        Files that differ between the two and were edited by hand are
        refused, as in :meth:`mutate`. Returns False if HEAD already is
        ``target``, or is not an ancestor of it (checked under the lock, so a
        commit that landed meanwhile is never thrown away).
        """

        def prepare(snap: Snapshot) -> tuple[dict, bytes] | None:
            if snap.commit == target or (
                snap.commit is not None and not self.is_ancestor(snap.commit, target)
            ):
                return None
            changed = self.diff_trees(snap.tree, self.commit_tree(target))
            updates = {
                path: (new, None if new is None else self.read_blob(new))
                for path, (_, new) in changed.items()
            }
            self._refuse_hand_edits(snap, updates)
            return updates, target

        return self._land(prepare, message, into_empty=into_empty) is not None

    def _land(
        self,
        prepare: Callable[[Snapshot], tuple[dict, bytes] | None],
        message: str,
        *,
        into_empty: bool = False,
    ) -> bytes | None:
        """Move the branch to the commit ``prepare`` makes from HEAD; check it out.

        ``prepare(snapshot)`` returns (path -> (new blob id, bytes), commit)
        or None for nothing to do. It runs again if stock git moved the
        branch meanwhile.
        """
        if self.pinned is not None:
            raise ReadOnlyError("this is a read-only view of an old state of the project")
        with self._thread_lock, self._write_lock():
            self._recover_dead_writer()
            index: gitindex.IndexFile | None = None
            # Marked from here: finishing a dead writer's journal takes git's
            # index lock too, and a writer killed doing it leaves that lock.
            with self._writer_marker():
                self._finish_interrupted()
                self._check_repository_state()
                for _ in range(_SWAP_ATTEMPTS):
                    head = self.head()
                    snap = Snapshot(self, head)
                    prepared = prepare(snap)
                    if prepared is None:
                        return None
                    updates, commit = prepared
                    if index is None:
                        # Read only when there is something to commit (require_*
                        # of an existing object commits nothing): it is megabytes.
                        index = gitindex.IndexFile(self.index_path, self._index_trust)
                        if index.problem:
                            raise RepositoryStateError(f"{self.root}: {index.problem}")
                    # (path, blob before, blob after) of every changed file
                    files = [(p, snap.blob_id(p), sha) for p, (sha, _) in updates.items()]
                    self._journal(
                        {
                            "old": _hex(head),
                            "new": commit.decode(),
                            "paths": {p: [_hex(old), _hex(new)] for p, old, new in files},
                        }
                    )
                    if self._swap_branch(head, commit, message):
                        break
                    # Stock git moved the branch without our lock; rebuild on top.
                    self._clear_journal()
                else:
                    raise ProjectBusyError(
                        f"branch main of {self.root} moved {_SWAP_ATTEMPTS} times while this change "
                        "was being made (a program other than expipe_git keeps committing there); "
                        "nothing was changed: try again when it has finished"
                    )
                # The change is committed: from here on nothing raises, or a
                # retry would make it twice. What is left undone, the journal
                # lets the next mutation finish.
                self._after_landing(commit, head, files, updates, index, snap, into_empty=into_empty)
            return commit

    def _after_landing(
        self,
        commit: bytes,
        head: bytes | None,
        files: list,
        updates: dict,
        index: gitindex.IndexFile,
        snap: Snapshot,
        *,
        into_empty: bool,
    ) -> None:
        """Record the new commit's changes, update the working tree and index; warn on failure."""
        with contextlib.suppress(OSError):
            # Only the history cache: without it the commit is diffed when history needs it.
            self._index_history(commit, head, files)
        try:
            if self._sync_worktree(updates, index, snap, into_empty=into_empty):
                self._clear_journal()
                return
            problem = f"git's index was busy ({self.index_path}.lock)"
        except (OSError, ExpipeError) as exc:
            problem = f"the working tree or git's index could not be updated ({exc})"
        warnings.warn(
            f"committed, but {problem}; the change is saved as commit {commit.decode()} "
            "(do not repeat it) and the next change made through expipe_git finishes the update",
            stacklevel=5,
        )

    # -- transactions -----------------------------------------------------

    def _transaction(self) -> _Transaction | None:
        return getattr(self._local, "tx", None)

    @contextlib.contextmanager
    def transaction(self, message: str | None, author: Callable[[], Identity]) -> Iterator[None]:
        """Make every mutation in the block one commit, or none if it raises.

        A nested block folds into the outer one; if it raises, only its own
        changes are dropped (a savepoint), and the exception goes on.
        ``author`` is called once, when there is something to commit.
        """
        tx = self._transaction()
        if tx is not None:
            # Objects stay: they are named by their contents, and only those
            # the final tree reaches are written.
            savepoint = (tx.draft.tree(), len(tx.builds))
            if tx.message is None:
                tx.message = message
            try:
                yield
            except BaseException:
                tx.draft.base, count = savepoint
                tx.draft.pending, tx.draft.folders = {}, set()
                del tx.builds[count:], tx.subjects[count:]
                raise
            return
        if self.pinned is not None:
            raise ReadOnlyError("this is a read-only view of an old state of the project")
        start = self.head()
        tx = _Transaction(self, start)
        tx.message = message
        self._local.tx, self._local.objects = tx, tx.objects
        try:
            yield
            self._local.tx = None
            if tx.builds:
                self._commit_transaction(tx, author())
        finally:
            self._local.tx = self._local.objects = None

    @contextlib.contextmanager
    def scratch_objects(self) -> Iterator[Callable[[bytes, bytes], bytes]]:
        """Objects made in memory for the length of the block: read like stored ones, never written.

        Yields ``put(kind, content) -> hex id``. A merge builds its virtual
        merge base this way: trees and a commit nobody should find on disk.
        """
        outer = getattr(self._local, "objects", None)
        scratch: dict[bytes, tuple[int, bytes]] = {}

        def put(kind: bytes, content: bytes) -> bytes:
            sha = hashlib.sha1(kind + b" %d\0" % len(content) + content).hexdigest().encode("ascii")
            scratch[sha] = (_TYPE_NUMBERS[kind], content)
            return sha

        self._local.objects = scratch if outer is None else collections.ChainMap(scratch, outer)
        try:
            yield put
        finally:
            self._local.objects = outer

    def scratch_commit(
        self, put: Callable[[bytes, bytes], bytes], parents: list[bytes], changes: Changes, message: str
    ) -> bytes:
        """Make with ``put`` (of :meth:`scratch_objects`) a commit: first parent's files, and ``changes``."""
        blobs = {path: None if data is None else put(b"blob", data) for path, data in changes.items()}
        tree = self._apply_to_tree(self.commit_tree(parents[0]), blobs, put=put)
        if tree == _EMPTY_TREE:
            put(b"tree", b"")  # never stored on disk, but this commit's tree must be readable
        when = max(self.read_commit(parent).commit_time for parent in parents)
        header = [b"tree " + tree, *(b"parent " + parent for parent in parents)]
        header += [b"author expipe_git <> %d +0000" % when, b"committer expipe_git <> %d +0000" % when]
        return put(b"commit", b"\n".join(header) + b"\n\n" + message.encode() + b"\n")

    def _buffer(self, tx: _Transaction, build: Callable[[Snapshot], Changes], message: str) -> None:
        changes = {
            p: sha for p, (sha, _) in self._stage(Snapshot(self, tx.start, tx.draft), build, tx).items()
        }
        if changes:
            tx.draft.change(changes)
            tx.builds.append(build)
            tx.subjects.append(message.split("\n", 1)[0])

    def _stage(self, snap: Snapshot, build: Callable[[Snapshot], Changes], tx: _Transaction) -> dict:
        """Run ``build`` on ``snap``; keep the new blobs in the transaction's memory."""
        updates = self._effective(snap, build(snap))
        for sha, data in updates.values():
            if data is not None:
                tx.objects[sha] = (_TYPE_NUMBERS[b"blob"], data)
        return updates

    def _commit_transaction(self, tx: _Transaction, author: Identity) -> bytes | None:
        message = _transaction_message(tx.message, tx.subjects)

        def prepare(snap: Snapshot) -> tuple[dict, bytes] | None:
            draft = tx.draft
            if snap.commit != tx.start:
                # Another writer committed since the block began: replay.
                draft = Draft(self, snap.tree, tx.put)
                for build in tx.builds:
                    staged = self._stage(Snapshot(self, snap.commit, draft), build, tx)
                    draft.change({p: sha for p, (sha, _) in staged.items()})
            tree = draft.tree()
            changed = self.diff_trees(snap.tree, tree)
            if not changed:
                return None
            updates = {
                path: (new, None if new is None else self.read_blob(new))
                for path, (_, new) in changed.items()
            }
            self._refuse_hand_edits(snap, updates)
            self._persist(tx, tree)
            if tree is None:  # everything was deleted
                tree = self._write_object(b"tree", b"")
            return updates, self._write_commit(snap, {}, message, author, tree=tree)

        return self._land(prepare, message)

    def _persist(self, tx: _Transaction, tree: bytes | None) -> None:
        """Write to disk the objects of ``tree`` that exist only in memory."""
        if tree is None or tree not in tx.objects:
            return
        type_num, content = tx.objects[tree]
        for _, mode, sha in parse_tree(content, 20):
            if sha in tx.objects:
                if stat.S_ISDIR(mode):
                    self._persist(tx, sha)
                else:
                    self._write_object(b"blob", tx.objects[sha][1])
        self._write_object(b"tree", content)

    def _index_history(self, commit: bytes, parent: bytes | None, files: list) -> None:
        """Record which files a new commit changed against ``parent``, for history walks.

        A merge commit, or a fast-forward to commits made elsewhere, is
        left to be diffed when history first needs it.
        """
        info = self.read_commit(commit)  # parsed when it was written
        if info.parents != ((parent,) if parent else ()):
            return
        historyindex.of(self).record(commit, parent, info.commit_time, files)

    def _check_repository_state(self) -> None:
        """Refuse to commit where git is in the middle of something of the user's."""
        try:
            with open(os.path.join(self.git_dir, "HEAD"), "rb") as f:
                head = f.read().strip()
        except FileNotFoundError:
            head = b""
        if head != b"ref: " + BRANCH:
            checked_out = head[len(b"ref: refs/heads/") :].decode() if head.startswith(b"ref: ") else None
            what = f"branch {checked_out!r} checked out" if checked_out else "a detached HEAD"
            raise RepositoryStateError(
                f"{self.root} has {what}; expipe_git records on branch main: "
                "run 'git switch main' there first"
            )
        for name, doing in _IN_PROGRESS:
            if os.path.exists(os.path.join(self.git_dir, name)):
                raise RepositoryStateError(
                    f"{self.root} is in the middle of a {doing}; finish it (or abort it) with git first"
                )

    def _effective(self, snap: Snapshot, changes: Changes) -> dict[str, tuple[bytes | None, bytes | None]]:
        """Return path -> (new sha, data) for changes that change something."""
        updates = {}
        for path, data in changes.items():
            old = snap.blob_id(path)
            if data is None:
                if old is not None:
                    updates[path] = (None, None)
                continue
            sha = blob_sha(data)
            if sha != old:
                updates[path] = (sha, data)
        return updates

    def _refuse_hand_edits(self, snap: Snapshot, updates: dict) -> None:
        edited = []
        for path, (new_sha, _) in updates.items():
            state = self.worktree.state(path, snap.blob_id(path))
            if state is None:
                continue
            if state == "added" and new_sha is not None and self.worktree.file_sha(path) == new_sha:
                continue  # the file already holds what we are about to commit
            if state == "deleted" and new_sha is None:
                continue
            edited.append(path)
        if edited:
            listing = ", ".join(edited)
            raise UncommittedChangesError(
                f"{listing} {'was' if len(edited) == 1 else 'were'} edited by hand and not "
                "committed; commit the edit (project.commit(message) or "
                "'expipe-git commit -m MESSAGE') or restore the file "
                "('git checkout -- FILE') before changing it through expipe_git",
                edited,
            )

    def _write_commit(
        self,
        snap: Snapshot,
        updates: dict,
        message: str,
        author: Identity,
        *,
        when: datetime | None = None,
        merge_parent: bytes | None = None,
        tree: bytes | None = None,
    ) -> bytes:
        """Write the blobs of ``updates``, the new trees and the commit.

        ``tree``, if given, is the finished root tree (already on disk).
        """
        if tree is None:
            for _, data in updates.values():
                if data is not None:
                    self._write_object(b"blob", data)
            tree = self._apply_to_tree(snap.tree, {p: sha for p, (sha, _) in updates.items()})
        commit = Commit()
        commit.tree = tree
        commit.parents = [snap.commit] if snap.commit else []
        if merge_parent is not None:
            commit.parents.append(merge_parent)
        commit.author = author.git_form()
        commit.committer = (author.committer or author).git_form()
        if when is not None and when.tzinfo is None:
            when = when.astimezone()  # a naive time is local time
        now = when if when is not None else datetime.now(timezone.utc).astimezone()
        offset = int(now.utcoffset().total_seconds())
        commit.author_time = commit.commit_time = int(now.timestamp())
        commit.author_timezone = commit.commit_timezone = offset
        commit.encoding = b"UTF-8"
        commit.message = message.encode("utf-8")
        raw = commit.as_raw_string()
        sha = self._write_object(b"commit", raw)
        # The history index reads the new commit's header right after it
        # lands: keep it parsed instead of reading the object back.
        self._commits[sha] = CommitInfo.parse(sha, raw)
        return sha

    def _apply_to_tree(
        self,
        tree: bytes | None,
        changes: dict[str, bytes | None],
        put: Callable[[bytes, bytes], bytes] | None = None,
    ) -> bytes:
        """Write the trees that ``changes`` (path -> blob sha or None) alter.

        Unlike dulwich's commit_tree_changes this never stores an empty tree
        (git fsck would report it dangling) and never mutates cached trees.
        ``put`` stores a tree (default: on disk).
        """
        put = put or self._write_object
        entries = dict(self.tree_entries(tree)) if tree else {}
        nested: dict[str, dict[str, bytes | None]] = {}
        for path, sha in changes.items():
            head, _, rest = path.partition("/")
            if rest:
                nested.setdefault(head, {})[rest] = sha
            elif sha is None:
                entries.pop(head, None)
            else:
                entries[head] = (FILE_MODE, sha)
        for name, sub in nested.items():
            current = entries.get(name)
            subtree = current[1] if current and stat.S_ISDIR(current[0]) else None
            new = self._apply_to_tree(subtree, sub, put)
            if new == _EMPTY_TREE:
                entries.pop(name, None)
            else:
                entries[name] = (TREE_MODE, new)
        if not entries:
            return _EMPTY_TREE
        # git orders a tree's entries by name, a folder's name as if it ended in "/".
        rows = []
        for name, (mode, sha) in entries.items():
            raw_name = name.encode("utf-8", "surrogateescape")
            key = raw_name + b"/" if stat.S_ISDIR(mode) else raw_name
            rows.append((key, b"%o %s\0%s" % (mode, raw_name, bytes.fromhex(sha.decode("ascii")))))
        rows.sort()
        return put(b"tree", b"".join(row for _, row in rows))

    def _write_object(self, kind: bytes, content: bytes) -> bytes:
        """Store a loose object and return its hex id.

        Written to a temporary file in ``.git/expipe-git``, fsynced, then
        renamed into place, so a reader or a crash never sees half an object
        and the branch never points at one that is not on disk. (dulwich's
        own writer takes ``<object>.lock`` files that a killed writer leaves
        behind, blocking that object for good.)
        """
        raw = kind + b" %d\0" % len(content) + content
        sha = hashlib.sha1(raw).hexdigest()
        folder = os.path.join(self._objects_dir, sha[:2])
        path = os.path.join(folder, sha[2:])
        if os.path.exists(path):
            return sha.encode("ascii")
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(self.state_dir, f"write-object-{os.getpid()}-{threading.get_ident()}")
        try:
            with open(tmp, "wb") as f:
                f.write(zlib.compress(raw, 1))
                f.flush()
                if self.sync_objects:
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # a full disk must not keep half an object
            raise
        return sha.encode("ascii")

    def _swap_branch(self, old: bytes | None, new: bytes, message: str) -> bool:
        """Move the branch from ``old`` to ``new`` if nobody moved it meanwhile.

        git's protocol, done here rather than by dulwich so that every error
        takes the lock back: ``main.lock`` is created exclusively, the branch
        re-read under it, the new id written and synced, then renamed over
        the branch. (dulwich's ``GitFile.close()`` raised from its flush on a
        full disk before it removed the lock, leaving the project locked.)
        Whether or not it moved, the next :meth:`head` reads the file again.
        """
        subject = message.split("\n", 1)[0]
        lock = self._branch_file + ".lock"

        def swap() -> bool:
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise _LockHeld from None
            moved = False
            try:
                with os.fdopen(fd, "wb") as f:
                    if self._read_branch() != old:
                        return False
                    f.write(new + b"\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(lock, self._branch_file)
                moved = True
            finally:
                if not moved:
                    with contextlib.suppress(OSError):
                        os.unlink(lock)
            return True

        os.makedirs(os.path.dirname(self._branch_file), exist_ok=True)
        try:
            moved = self._retry(swap, _LockHeld, lock)
        finally:
            self._branch_seen = None
        if moved:
            self._append_reflog(old, new, ("commit: " if old else "commit (initial): ") + subject)
        return moved

    def _append_reflog(self, old: bytes | None, new: bytes, message: str) -> None:
        """Add the move of the branch to its reflog (``git reflog main``), as git does.

        The branch has moved already: a reflog that cannot be written (a
        full disk) is cut back to its last whole line and the move stands.
        """
        name, email = self._reflog_identity()
        now = datetime.now(timezone.utc).astimezone()
        offset = int(now.utcoffset().total_seconds()) // 60
        sign = "-" if offset < 0 else "+"
        zone = f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
        flat = message.replace("\n", " ")
        who = f"{name} <{email}> {int(now.timestamp())} {zone}"
        line = f"{_hex(old) or '0' * 40} {new.decode()} {who}\t{flat}\n"
        path = os.path.join(self.git_dir, "logs", *BRANCH.decode().split("/"))
        size = None
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "ab") as f:
                size = f.tell()
                f.write(line.encode("utf-8", "replace"))
        except OSError:
            if size is not None:
                with contextlib.suppress(OSError):
                    os.truncate(path, size)

    def _reflog_identity(self) -> tuple[str, str]:
        if self._identity is None:
            # git writes its reflog as the committer: environment, then config.
            config = self.git_identity()
            name = (
                os.environ.get("GIT_COMMITTER_NAME")
                or config.get("committer.name")
                or config.get("user.name")
            )
            email = (
                os.environ.get("GIT_COMMITTER_EMAIL")
                or config.get("committer.email")
                or config.get("user.email")
            )
            self._identity = (name or "expipe_git", email or "")
        return self._identity

    def _retry(self, action: Callable[[], T], busy: type[Exception], lock: str) -> T:
        """Run ``action`` until ``lock`` is free, for up to a few seconds.

        git's locks are never removed by age (a ``git commit`` waiting in an
        editor holds ``index.lock`` for minutes), only after a writer of ours
        died (:meth:`_recover_dead_writer`).
        """
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                return action()
            except busy:
                if time.monotonic() > deadline:
                    raise ProjectBusyError(
                        f"{lock} is held by another program; wait for it to finish and try again "
                        "(if no git program is running, the file is left over from a crash: delete it)"
                    ) from None
                time.sleep(0.01)

    # -- the index and working tree ---------------------------------------

    def _sync_worktree(
        self,
        updates: dict,
        index: gitindex.IndexFile | None = None,
        before: Snapshot | None = None,
        *,
        into_empty: bool = False,
    ) -> bool:
        """Make the working tree and the index match the new commit.

        Returns False if git held the index for too long: the commit stands,
        and the journal lets the next mutation finish the index.
        ``into_empty``: the working tree is a new, empty folder (a clone), so
        files are written in place, without a temporary file each.
        """
        entries: dict[bytes, gitindex.Entry | None] = {}
        for path, (sha, data) in updates.items():
            name = path.encode("utf-8", "surrogateescape")
            if data is None:
                self.worktree.remove(path)
                entries[name] = None
            else:
                st = self.worktree.write(path, data, new=into_empty)
                entries[name] = gitindex.Entry(name, bytes.fromhex(sha.decode()), st)
        index = index or gitindex.IndexFile(self.index_path, self._index_trust)

        def predecessor(path: bytes) -> bytes | None:
            found = before.predecessor(path.decode("utf-8", "surrogateescape")) if before else None
            return None if found is None else found.encode("utf-8", "surrogateescape")

        def apply() -> None:
            if not index.apply(entries, predecessor):
                self.rebuild_index(written=entries)

        try:
            self._retry(apply, gitindex.IndexBusyError, self.index_path + ".lock")
        except (ProjectBusyError, ValueError):
            return False
        return True

    def rebuild_index(self, written: dict[bytes, gitindex.Entry | None] | None = None) -> None:
        """Write the index afresh from HEAD, keeping stat data of clean files.

        ``written``: entries of files this mutation just wrote, whose stat
        data is known (a checkout of a whole project would read every file
        back otherwise).
        """
        snap = Snapshot(self, self.head())
        entries = []
        written = written or {}
        for path, sha in snap.walk():
            name = path.encode("utf-8", "surrogateescape")
            known = written.get(name)
            if known is not None and known.sha == bytes.fromhex(sha.decode()):
                entries.append(known)
                continue
            full = os.path.join(self.root, path)
            st = None
            with contextlib.suppress(OSError):
                if self.worktree.file_sha(path) == sha:
                    st = os.stat(full)
            entries.append(
                gitindex.Entry(path.encode("utf-8", "surrogateescape"), bytes.fromhex(sha.decode()), st)
            )
        gitindex.write(self.index_path, entries, self._index_trust)

    def status(self) -> list[tuple[str, str]]:
        """Return (path, "added" | "modified" | "deleted") for uncommitted edits."""
        committed = dict(Snapshot(self, self.head()).walk())
        # git's ignore rules: .gitignore files, .git/info/exclude, core.excludesFile.
        rules = IgnoreFilterManager.from_repo(self.repo)
        return self.worktree.changes(
            committed, gitindex.read_paths(self.index_path) or {}, lambda path: rules.is_ignored(path) is True
        )

    # -- locking and crash recovery ---------------------------------------

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        os.makedirs(self.state_dir, exist_ok=True)
        with lockfile.exclusive(os.path.join(self.state_dir, "write-mutex")):
            yield
        packing.after_write(self.git_dir)  # packs loose objects if many, outside the lock

    @contextlib.contextmanager
    def _writer_marker(self) -> Iterator[None]:
        """Mark a mutation in progress; a marker found later means its writer died."""
        marker = os.path.join(self.state_dir, "writer")
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)

    def _recover_dead_writer(self) -> None:
        """Clean up after a writer of ours that was killed mid-mutation.

        We hold the project lock, so a marker left behind belongs to a dead
        writer, and git lock files it may have held are removed — only those
        older than a moment, so a git command that just started keeps its own.
        The lock file itself is never removed: a writer waiting on it would
        then hold a lock nobody else sees. Temporary files go only when the
        process named in them is gone.
        """
        self._remove_temp_files_of_dead_writers()
        marker = os.path.join(self.state_dir, "writer")
        if not os.path.exists(marker):
            return
        for lock in (self._branch_file + ".lock", self.index_path + ".lock"):
            # A lock of the dead writer's is at most moments old; give a git
            # command that took it just now that moment to finish.
            while 0 <= _age(lock) < _DEAD_WRITER_LOCK_SECONDS:
                time.sleep(0.05)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)

    def _remove_temp_files_of_dead_writers(self) -> None:
        """Remove the temporary files (``write-object-PID-…``, ``write-PID-…``) of dead processes."""
        for name in os.listdir(self.state_dir):
            found = _TEMP_FILE.fullmatch(name)
            if found and not lockfile.process_alive(int(found.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.state_dir, name))

    def _journal_path(self) -> str:
        return os.path.join(self.state_dir, "journal.json")

    def _journal(self, entry: dict) -> None:
        # Written in place, not renamed: the branch moves only after this
        # returns, so a journal torn by a crash belongs to a commit that never
        # landed, and recovery discards it as unreadable.
        with open(self._journal_path(), "w") as f:
            json.dump(entry, f)

    def _clear_journal(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._journal_path())

    def _finish_interrupted(self) -> None:
        """Complete the working-tree update of a writer killed mid-way.

        A file is brought to HEAD only if it still holds the content from
        before or after that commit; anything else is a person's edit.
        """
        try:
            with open(self._journal_path()) as f:
                entry = json.load(f)
        except FileNotFoundError:
            return
        except ValueError:
            entry = None
        if entry is not None and _hex(self.head()) == entry["new"]:
            snap = Snapshot(self, self.head())
            updates = {}
            for path, (old, new) in entry["paths"].items():
                current = self.worktree.file_sha(path)
                # Missing is unfinished only for a file the commit added (or
                # removed); a modified file missing was deleted by a person.
                unfinished = (
                    (old is None or new is None) if current is None else current.decode() in (old, new)
                )
                if unfinished:
                    sha = snap.blob_id(path)
                    updates[path] = (sha, None if sha is None else self.read_blob(sha))
            if not self._sync_worktree(updates):
                raise ProjectBusyError(
                    f"{self.index_path}.lock is held by another program, and the last change "
                    "still has to be written to git's index; wait for git to finish and try again"
                )
        self._clear_journal()

    def git_identity(self) -> dict[str, str]:
        """Return the identity keys set in git's configuration (repository, then global).

        Keys: ``user.name``, ``user.email``, ``author.name``, ``author.email``,
        ``committer.name``, ``committer.email``.
        """
        config = self.repo.get_config_stack()
        found = {}
        for section in ("user", "author", "committer"):
            for key in ("name", "email"):
                try:
                    value = config.get((section.encode(),), key.encode()).decode("utf-8", "replace")
                except KeyError:
                    continue
                if value.strip():
                    found[f"{section}.{key}"] = value.strip()
        return found

    def close(self) -> None:
        _close(self.repo, self._cache)


_EMPTY_TREE = Tree().id
_TYPE_NUMBERS = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}


# git itself refuses to update a broken ref ('git update-ref' fails on it),
# but its reflog still names the last commit.
_REF_ADVICE = (
    "run 'git fsck' in {root}; the last line of .git/logs/refs/heads/main names the "
    "branch's last commit (its second field): put that id, alone on one line, in place of the "
    "branch's file"
)


class _LockHeld(Exception):
    """Someone else holds a git ``*.lock`` file we need."""


def _close(repo: Repo, cache: readcache.ReadCache) -> None:
    cache.save()
    repo.close()


def _stat_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _age(path: str) -> float:
    """Seconds since ``path`` was modified; -1 if it does not exist."""
    try:
        return time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return -1.0


def _hex(sha: bytes | None) -> str | None:
    return None if sha is None else sha.decode()


def _signature(value: bytes) -> tuple[str, int, int]:
    """Split ``Name <email> 1700000000 +0100`` into (identity, time, offset)."""
    person, _, when = value.rpartition(b"> ")
    try:
        seconds, zone = when.split(b" ")
        sign = -1 if zone.startswith(b"-") else 1
        offset = sign * (int(zone[-4:-2]) * 3600 + int(zone[-2:]) * 60)
        return (person + b">").decode("utf-8", "replace"), int(seconds), offset
    except ValueError:
        return value.decode("utf-8", "replace"), 0, 0


def _transaction_message(message: str | None, subjects: list[str]) -> str:
    """The commit message of a transaction: its message, then what it did."""
    if message is None and len(subjects) == 1:
        return subjects[0] + "\n\nExpipe-Operation: transaction\n"
    subject = message.strip() if message else f"{len(subjects)} changes"
    shown = subjects[:100]
    lines = [f"- {line}" for line in shown]
    if len(subjects) > len(shown):
        lines.append(f"- and {len(subjects) - len(shown)} more")
    return subject + "\n\n" + "\n".join(lines) + "\n\nExpipe-Operation: transaction\n"
