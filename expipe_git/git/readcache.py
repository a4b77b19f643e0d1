"""A read cache shared between processes: parsed trees and records by object id.

A fresh process that reads every action of a 10,000-action project spends
two thirds of its time turning loose git objects into Python values (tree
reads, blob reads, TOML parsing). Objects are named by their content, so what
one process parsed can never go stale: it is kept in
``.git/expipe-git/read-cache``, loaded by the next process on its first
miss, and written back when a process that parsed many new objects ends.

The file is a header line, the SHA-1 of the rest, then :mod:`marshal` data
of plain values only (dicts, lists, tuples, str, bytes, numbers); dates and
times are stored as tagged tuples (parsed TOML holds no tuples, so the tag
cannot clash). Nothing in it is executed. A file whose checksum does not
match (a flipped bit, a torn write, an edit) or that does not load as
expected is ignored — never served — and rewritten by the next save.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import marshal
import os
import stat
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

# Bump when what is cached changes meaning (the TOML parser's output, the tree form).
FORMAT = 2
_MAGIC = b"expipe-git read-cache\n"
_DIGEST_SIZE = 20
# Writing the file costs ~10 ms per 10,000 records: only worth it after real work.
_MIN_NEW_TO_SAVE = 500
_MAX_ENTRIES = 400_000
# Objects a process parses itself before it loads the file: loading a cache
# of 100,000 records takes seconds, and a process that opens a project to
# read a few records (a query, one action) is done sooner without it.
_LOAD_AFTER_MISSES = 64


# The one eviction policy of the caches kept in memory (trees, commits, parsed
# records): past this many entries a cache starts over. Entries are cheap to
# compute again, and an LRU's bookkeeping cost more than the misses it saved.
MEMO_LIMIT = 200_000


def remember(memo: dict[K, V], key: K, value: V, limit: int = MEMO_LIMIT) -> V:
    """Keep ``value`` in ``memo`` under ``key``; an over-full memo is emptied first."""
    if len(memo) > limit:
        memo.clear()
    memo[key] = value
    return value


T = TypeVar("T")


class PerRepository(Generic[T]):
    """One ``make(repository)`` per repository, made on first use, dropped with the repository.

    The indexes kept beside a repository (history, queries) are found this
    way. Keyed weakly: a strong key would keep every repository (and its
    open pack files) alive; what ``make`` returns must hold the repository
    weakly too.
    """

    def __init__(self, make: Callable[[Any], T]):
        self._make = make
        self._found: weakref.WeakKeyDictionary[Any, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, repository: Any) -> T:
        with self._lock:
            found = self._found.get(repository)
            if found is None:
                found = self._found[repository] = self._make(repository)
            return found


def freeze(value: Any) -> Any:
    """Return parsed TOML as plain values marshal can store (dates and times as tagged tuples)."""
    kind = type(value)
    if kind is dict:
        return {key: freeze(item) for key, item in value.items()}
    if kind is list:
        return [freeze(item) for item in value]
    if kind is dt.datetime:
        return ("datetime", value.isoformat())
    if kind is dt.date:
        return ("date", value.isoformat())
    if kind is dt.time:
        return ("time", value.isoformat())
    return value


_THAW = {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "time": dt.time.fromisoformat}


def thaw(value: Any) -> Any:
    """Undo :func:`freeze`."""
    kind = type(value)
    if kind is dict:
        return {key: thaw(item) for key, item in value.items()}
    if kind is list:
        return [thaw(item) for item in value]
    if kind is tuple:
        return _THAW[value[0]](value[1])
    return value


class ReadCache:
    """Trees and parsed records by object id, kept in memory and on disk."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._loaded = False
        self._damaged = False
        self._misses = 0
        self._saved_trees: dict = {}
        self._saved_records: dict = {}
        self._new_trees: dict = {}
        self._new_records: dict = {}
        # The root tree of the latest commit read or written. Saving keeps
        # only what it reaches: a long-running writer (or a history walk)
        # parses every version of the big folders, and a cache of all of
        # them would take the next process seconds to load.
        self.root: bytes | None = None

    def _load(self) -> None:
        self._loaded = True
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except OSError:
            return  # absent or unreadable: start afresh, and write it later
        payload = _checked(raw)
        try:
            data = None if payload is None else marshal.loads(payload)
            if type(data) is not dict or data.get("format") != FORMAT:
                data = None
            else:
                trees, records = data["trees"], data["records"]
                if type(trees) is dict and type(records) is dict:
                    self._saved_trees, self._saved_records = trees, records
                else:
                    data = None
        except (EOFError, ValueError, TypeError, KeyError):
            data = None
        if data is None:
            self._damaged = True  # rewrite it at the next save, however little is new

    def _ready(self) -> bool:
        """Whether the file is loaded, loading it once this process has missed enough."""
        if not self._loaded:
            self._misses += 1
            if self._misses <= _LOAD_AFTER_MISSES:
                return False
            self._load()
        return True

    def tree(self, sha: bytes) -> dict | None:
        if not self._ready():
            return None
        return self._saved_trees.get(sha)

    def record(self, sha: bytes) -> Any:
        """Return the parsed record of a blob, or None if it is not cached."""
        if not self._ready():
            return None
        frozen = self._saved_records.get(sha)
        if frozen is None:
            return None
        try:
            return thaw(frozen)
        except (KeyError, TypeError, ValueError, IndexError):
            return None  # a damaged entry: parse the blob instead

    def add_tree(self, sha: bytes, entries: dict) -> None:
        if len(self._new_trees) < _MAX_ENTRIES:
            self._new_trees[sha] = entries

    def add_record(self, sha: bytes, record: Any) -> None:
        if len(self._new_records) < _MAX_ENTRIES:
            self._new_records[sha] = record

    def save(self) -> None:
        """Write what this process parsed, merged with the file, if it was much."""
        with self._lock:
            new = len(self._new_trees) + len(self._new_records)
            if new < _MIN_NEW_TO_SAVE and not (self._damaged and new):
                return
            if not self._loaded:
                self._load()
            trees = {**self._saved_trees, **self._new_trees}
            records = {**self._saved_records, **{k: freeze(v) for k, v in self._new_records.items()}}
            # The root of the latest commit read; in a process that wrote only
            # in transactions, none was: then the newest folder parsed that no
            # other names (a root). Without it every version was kept (2.6 MB
            # after 300 transactions on 200 actions; 45 KB with it).
            root = self.root if self.root in trees else _newest_root(self._new_trees)
            if root is not None:
                trees, blobs = _reachable(trees, root)
                records = {sha: record for sha, record in records.items() if sha in blobs}
            if len(trees) + len(records) > _MAX_ENTRIES:
                # Keep it bounded: what this process used is what is likely wanted.
                trees = dict(self._new_trees)
                records = {k: freeze(v) for k, v in self._new_records.items()}
            tmp = f"{self.path}.{os.getpid()}.tmp"
            try:
                # mkdir, not makedirs: a project deleted meanwhile stays deleted.
                with contextlib.suppress(FileExistsError):
                    os.mkdir(os.path.dirname(self.path))
                payload = marshal.dumps({"format": FORMAT, "trees": trees, "records": records})
                with open(tmp, "wb") as f:
                    f.writelines([_MAGIC, hashlib.sha1(payload).digest(), payload])
                os.replace(tmp, self.path)
            except (OSError, ValueError):
                # A cache is never worth failing for (a full disk, a read-only .git,
                # or a value marshal cannot hold).
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                return
            self._saved_trees, self._saved_records = trees, records
            self._new_trees, self._new_records = {}, {}
            self._damaged = False


def _checked(raw: bytes) -> memoryview | None:
    """Return the marshal data of a cache file, or None if its header or checksum is wrong."""
    start = len(_MAGIC) + _DIGEST_SIZE
    if not raw.startswith(_MAGIC) or len(raw) < start:
        return None
    payload = memoryview(raw)[start:]
    if hashlib.sha1(payload).digest() != raw[len(_MAGIC) : start]:
        return None
    return payload


def _newest_root(trees: dict) -> bytes | None:
    """Return the tree parsed last that no other parsed tree names."""
    named = {child for entries in trees.values() for mode, child in entries.values() if stat.S_ISDIR(mode)}
    return next((sha for sha in reversed(trees) if sha not in named), None)


def _reachable(trees: dict, root: bytes) -> tuple[dict, set]:
    """Return the cached trees ``root`` reaches, and the blob ids they name."""
    kept: dict = {}
    blobs: set = set()
    stack = [root]
    while stack:
        sha = stack.pop()
        entries = trees.get(sha)
        if entries is None or sha in kept:
            continue
        kept[sha] = entries
        for mode, child in entries.values():
            if stat.S_ISDIR(mode):
                stack.append(child)
            else:
                blobs.add(child)
    return kept, blobs
