"""Which files each commit changed: the index that history walks run on.

Answering "which commits changed action rec-1" by looking the path up in
every commit's tree costs a parse of the 256-entry ``actions/`` tree per
commit (about a second at 10,000 commits). Instead, each commit is diffed
once against each parent (only the folders that differ are opened, and
two versions of a folder are compared around the bytes that differ:
:mod:`expipe_git.treediff`) and the result is kept: parents, commit time, and the
(path, old blob, new blob) of every changed file. A commit never changes, so
an entry never goes stale. Walks then read no git objects at all.

The entries are kept in ``.git/expipe-git/history-cache``: :mod:`marshal`
data of tuples, bytes, str and ints (nothing in it is executed), in chunks
appended by each save (one ``write`` to a file opened for appending, so
processes saving at once do not mix their chunks) and rewritten as one chunk
by a process that finds many, or damage. Each chunk is its length (8 bytes,
little-endian) and then its marshal data, so that the file is read with one
``read`` and each chunk decoded from memory: ``marshal.load`` from a file
reads it piece by piece, 3.6 ms for a 165 KB file that ``marshal.loads``
decodes in 0.3 ms (a fresh handle's first history call pays this). What does not load is ignored and
rewritten; deleting the file loses nothing.
"""

from __future__ import annotations

import contextlib
import heapq
import marshal
import os
import stat
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ..errors import ExpipeError
from .readcache import PerRepository
from .trees import TreeDiff

if TYPE_CHECKING:  # the store feeds this index as it commits: it sits below store.py
    from .repository import Repository

FORMAT = 2  # 2: each chunk after its length
_LENGTH_BYTES = 8
_SAVE_AFTER = 200  # new entries that make saving worth a write
_COMPACT_CHUNKS = 32  # a file loaded with more chunks than this is rewritten as one

# path, old blob id (None: added), new blob id (None: removed)
FileChange = tuple[str, "bytes | None", "bytes | None"]
# parents, commit time (seconds), changed files against each parent (one
# tuple against the empty tree for a root commit)
Node = tuple[tuple[bytes, ...], int, tuple[tuple[FileChange, ...], ...]]


class HistoryIndex:
    """Parents, commit time and changed files of commits, computed once each."""

    def __init__(self, store: Repository):
        # Weak: ``of`` keys graphs by store weakly, and a strong reference
        # back would keep every store (and its open pack files) alive.
        self._store = weakref.ref(store)
        self.path = os.path.join(store.state_dir, "history-cache")
        self._nodes: dict[bytes, Node] = {}
        self._new: dict[bytes, Node] = {}
        self._loaded = False
        # Not strict: git only warns about modes written with a leading zero,
        # and history must read what is there.
        # The reader holds the store weakly, never this graph: the graph's
        # finalizer saves it, and a cycle through itself would delay that.
        store_ref = self._store
        self._trees = TreeDiff(
            lambda sha: _alive(store_ref).tree_bytes(sha),
            lambda sha: ExpipeError(f"tree {sha.decode()} is damaged; run 'git fsck'"),
            strict=False,
        )
        self._lock = threading.RLock()
        weakref.finalize(self, _save, self.path, self._new)

    @property
    def store(self) -> Repository:
        return _alive(self._store)

    def node(self, sha: bytes) -> Node:
        found = self._nodes.get(sha)
        if found is None:
            with self._lock:
                if not self._loaded:
                    self._load()
                    found = self._nodes.get(sha)
                if found is None:
                    found = self._compute(sha)
                    self._nodes[sha] = self._new[sha] = found
        return found

    def record(
        self, sha: bytes, parent: bytes | None, time: int, files: Iterable[FileChange], *, save: bool = True
    ) -> None:
        """Enter a commit the store just made, so no history walk has to diff it.

        Saved with the next batch (or at exit), like computed entries; a
        caller entering many at once passes ``save=False`` and calls
        :meth:`save` once (each save rewrites the whole file).
        """
        node: Node = ((parent,) if parent else (), time, (tuple(sorted(files)),))
        with self._lock:
            self._nodes[sha] = self._new[sha] = node
            if save and len(self._new) >= _SAVE_AFTER:
                _save(self.path, self._new)

    def parents(self, sha: bytes) -> tuple[bytes, ...]:
        return self.node(sha)[0]

    def time(self, sha: bytes) -> int:
        return self.node(sha)[1]

    def changes(self, sha: bytes, parent_index: int = 0) -> tuple[FileChange, ...]:
        """Files changed against a parent (against nothing for a root commit)."""
        return self.node(sha)[2][parent_index]

    def _compute(self, sha: bytes) -> Node:
        info = self.store.read_commit(sha)
        tree = info.tree
        diffs: tuple[tuple[FileChange, ...], ...]
        if not info.parents:
            diffs = (self._diff(None, tree),)
        else:
            diffs = tuple(self._diff(self.store.commit_tree(p), tree) for p in info.parents)
        return info.parents, info.commit_time, diffs

    def diff_trees(self, old: bytes | None, new: bytes | None) -> tuple[FileChange, ...]:
        """Return the files that differ between two trees, sorted by path."""
        return self._diff(old, new)

    def _diff(self, old: bytes | None, new: bytes | None) -> tuple[FileChange, ...]:
        found: list[FileChange] = []
        self._diff_into(old, new, "", found)
        found.sort()
        return tuple(found)

    def _diff_into(self, old: bytes | None, new: bytes | None, prefix: str, out: list[FileChange]) -> None:
        if old == new:
            return
        gone, came = self._trees.differing(old, new)
        for raw_name in gone.keys() | came.keys():
            a, b = gone.get(raw_name), came.get(raw_name)
            if a == b:
                continue
            name = raw_name.decode("utf-8", "surrogateescape")
            a_dir = a is not None and stat.S_ISDIR(a[0])
            b_dir = b is not None and stat.S_ISDIR(b[0])
            if a_dir or b_dir:
                self._diff_into(
                    a[1] if a and a_dir else None, b[1] if b and b_dir else None, f"{prefix}{name}/", out
                )
            a_file = None if a is None or a_dir else a[1]
            b_file = None if b is None or b_dir else b[1]
            if a_file != b_file:
                out.append((prefix + name, a_file, b_file))

    # -- walking ----------------------------------------------------------

    def walk(
        self, heads: Iterable[bytes], prefixes: list[str] | None = None, since: int | None = None
    ) -> Iterator[bytes]:
        """Yield commits newest first, as ``git log [-- prefixes]`` lists them.

        Commits come out by commit time (ties in the order they were
        reached), like git's default order. With ``prefixes``, git's default
        history simplification applies: a commit is shown only if it changed
        a path under a prefix against every parent, and at a merge whose
        paths equal one parent's, only that parent is followed. ``since``
        (seconds) stops the walk at older commits, as ``git log --since``.
        """
        heap: list[tuple[int, int, bytes]] = []
        seen: set[bytes] = set()
        count = 0
        for head in heads:
            if head not in seen:
                seen.add(head)
                heap.append((-self.time(head), count, head))
                count += 1
        heapq.heapify(heap)
        while heap:
            _, _, sha = heapq.heappop(heap)
            parents, when, diffs = self.node(sha)
            if since is not None and when < since:
                continue
            follow = parents
            if prefixes is None:
                show = True
            elif not parents:
                show = _touches(diffs[0], prefixes)
            elif len(parents) == 1:
                show = _touches(diffs[0], prefixes)
            else:
                show = True
                for parent, diff in zip(parents, diffs, strict=True):
                    if not _touches(diff, prefixes):
                        follow, show = (parent,), False
                        break
            for parent in follow:
                if parent not in seen:
                    seen.add(parent)
                    heapq.heappush(heap, (-self.time(parent), count, parent))
                    count += 1
            if show:
                yield sha

    # -- the file ---------------------------------------------------------

    def _load(self) -> None:
        self._loaded = True
        loaded, chunks = _read_chunks(self.path)
        if chunks > _COMPACT_CHUNKS:
            _compact(self.path, loaded)
        for sha, node in loaded.items():
            self._nodes.setdefault(sha, node)

    def save(self, force: bool = False) -> None:
        """Write new entries to the cache file, if there are enough of them."""
        with self._lock:
            if len(self._new) >= (1 if force else _SAVE_AFTER):
                _save(self.path, self._new)


def _alive(store_ref: weakref.ref[Repository]) -> Repository:
    store = store_ref()
    if store is None:
        raise ReferenceError("the store of this history index was closed and collected")
    return store


def _touches(diff: tuple[FileChange, ...], prefixes: list[str]) -> bool:
    for path, _, _ in diff:
        for prefix in prefixes:
            if path == prefix or path.startswith(prefix) and path[len(prefix)] == "/":
                return True
    return False


def _valid(node: object) -> bool:
    return (
        type(node) is tuple
        and len(node) == 3
        and type(node[0]) is tuple
        and type(node[1]) is int
        and type(node[2]) is tuple
    )


def _read(path: str) -> dict[bytes, Node]:
    return _read_chunks(path)[0]


def _read_chunks(path: str) -> tuple[dict[bytes, Node], int]:
    """Load every chunk of the file and count them.

    A damaged chunk ends the reading and counts as many chunks, so that the
    loader rewrites the file (chunks appended after the damage would never
    be read otherwise).
    """
    found: dict[bytes, Node] = {}
    chunks = 0
    try:
        with open(path, "rb") as f:
            contents = f.read()
    except FileNotFoundError:
        return found, 0
    except OSError:
        return found, _COMPACT_CHUNKS + 1
    at = 0
    while at < len(contents):
        length = int.from_bytes(contents[at : at + _LENGTH_BYTES], "little")
        end = at + _LENGTH_BYTES + length
        if end > len(contents):  # a torn or foreign chunk
            return found, _COMPACT_CHUNKS + 1
        try:
            data = marshal.loads(contents[at + _LENGTH_BYTES : end])
        except (EOFError, ValueError, TypeError):
            return found, _COMPACT_CHUNKS + 1
        if type(data) is not dict or data.get("format") != FORMAT or type(data.get("commits")) is not dict:
            return found, _COMPACT_CHUNKS + 1
        chunks += 1
        for sha, node in data["commits"].items():
            if type(sha) is bytes and _valid(node):
                found[sha] = node
        at = end
    return found, chunks


def _chunk(commits: dict[bytes, Node]) -> bytes:
    """One chunk of the file: its length, then the marshal data."""
    data = marshal.dumps({"format": FORMAT, "commits": commits})
    return len(data).to_bytes(_LENGTH_BYTES, "little") + data


def _save(path: str, new: dict[bytes, Node]) -> None:
    """Append the new entries to the file as one chunk (another process may append its own).

    Appending costs the size of what is new; a long-running writer that
    rewrote the whole file every 200 commits spent time growing with the
    history. A process that loads a file of many chunks rewrites it as one.
    """
    if not new:
        return
    try:
        # mkdir, not makedirs: a project deleted meanwhile stays deleted.
        with contextlib.suppress(FileExistsError):
            os.mkdir(os.path.dirname(path))
        chunk = _chunk(new)
        # One write to a file opened for appending lands whole at the end,
        # even with another process appending at the same time.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, chunk)
        finally:
            os.close(fd)
        new.clear()
    except (OSError, ValueError):
        return  # a cache is never worth failing for (a full disk, a read-only .git)


def _compact(path: str, merged: dict[bytes, Node]) -> None:
    """Rewrite the file as one chunk (a chunk appended meanwhile by another process may be lost)."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(_chunk(merged))
        os.replace(tmp, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# The history index of a repository (one per repository).
of: PerRepository[HistoryIndex] = PerRepository(HistoryIndex)
