"""A read cache shared between processes: parsed trees and records by object id.

A fresh process that reads every action of a 10,000-action project spends
two thirds of its time turning loose git objects into Python values (tree
reads, blob reads, TOML parsing). Objects are named by their content, so what
one process parsed can never go stale: it is kept in
``.git/expipe-git/read-cache``, loaded by the next process on its first
miss, and written back when a process that parsed many new objects ends.

The file is :mod:`marshal` data of plain values only (dicts, lists, tuples,
str, bytes, numbers); dates and times are stored as tagged tuples (parsed
TOML holds no tuples, so the tag cannot clash). Nothing in it is executed. A
file that does not load as expected is ignored and rewritten.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import marshal
import os
import stat
import threading
from typing import Any

# Bump when what is cached changes meaning (the TOML parser's output, the tree form).
FORMAT = 1
# Writing the file costs ~10 ms per 10,000 records: only worth it after real work.
_MIN_NEW_TO_SAVE = 500
_MAX_ENTRIES = 400_000


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _freeze(item) for key, item in value.items()}
    if kind is list:
        return [_freeze(item) for item in value]
    if kind is dt.datetime:
        return ("datetime", value.isoformat())
    if kind is dt.date:
        return ("date", value.isoformat())
    if kind is dt.time:
        return ("time", value.isoformat())
    return value


_THAW = {"datetime": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "time": dt.time.fromisoformat}


def _thaw(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {key: _thaw(item) for key, item in value.items()}
    if kind is list:
        return [_thaw(item) for item in value]
    if kind is tuple:
        return _THAW[value[0]](value[1])
    return value


class ReadCache:
    """Trees and parsed records by object id, kept in memory and on disk."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._loaded = False
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
                data = marshal.load(f)
            if type(data) is not dict or data.get("format") != FORMAT:
                return
            trees, records = data["trees"], data["records"]
            if type(trees) is dict and type(records) is dict:
                self._saved_trees, self._saved_records = trees, records
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            pass  # absent or unreadable: start afresh, and overwrite it later

    def tree(self, sha: bytes) -> dict | None:
        if not self._loaded:
            self._load()
        return self._saved_trees.get(sha)

    def record(self, sha: bytes) -> Any:
        """Return the parsed record of a blob, or None if it is not cached."""
        if not self._loaded:
            self._load()
        frozen = self._saved_records.get(sha)
        if frozen is None:
            return None
        try:
            return _thaw(frozen)
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
            if len(self._new_trees) + len(self._new_records) < _MIN_NEW_TO_SAVE:
                return
            if not self._loaded:
                self._load()
            trees = {**self._saved_trees, **self._new_trees}
            records = {**self._saved_records, **{k: _freeze(v) for k, v in self._new_records.items()}}
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
                records = {k: _freeze(v) for k, v in self._new_records.items()}
            tmp = f"{self.path}.{os.getpid()}.tmp"
            try:
                # mkdir, not makedirs: a project deleted meanwhile stays deleted.
                with contextlib.suppress(FileExistsError):
                    os.mkdir(os.path.dirname(self.path))
                with open(tmp, "wb") as f:
                    marshal.dump({"format": FORMAT, "trees": trees, "records": records}, f)
                os.replace(tmp, self.path)
            except (OSError, ValueError):
                # A cache is never worth failing for (a full disk, a read-only .git,
                # or a value marshal cannot hold).
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                return
            self._saved_trees, self._saved_records = trees, records
            self._new_trees, self._new_records = {}, {}


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
