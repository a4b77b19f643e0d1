"""Patch entries of git's index file in place, without parsing all of it.

git's index lists every tracked file with its blob id and stat data; it must
match HEAD and the working tree or ``git status`` shows changes. Parsing and
rewriting the whole index costs ~7 µs per entry (over a second at 100k
files), so a mutation instead splices the few entries it changed into the raw
bytes. Versions 2 and 3 are patched as they are; version 4 (path
compression) is rewritten as version 3. A split or sparse index, or one with
unresolved conflicts, is refused with the reason (:attr:`IndexFile.problem`)
before anything is committed, so the user's staged work is never lost.

Cached extensions (TREE, UNTR, EOIE, IEOT, REUC) describe the old entries, so
they are dropped; git recomputes them when it needs them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from . import spares

_HEADER = struct.Struct(">4sLL")
_STAT = struct.Struct(">LLLLLLLLLL")
_FLAG_EXTENDED = 0x4000
_NAME_MASK = 0x0FFF
_FIXED = 62  # stat data (40) + sha (20) + flags (2)
# Past this many changed paths one walk over the entries is cheaper than searches.
_MAX_SEARCHED_UPDATES = 16
# How often an index git changed meanwhile is parsed again outside index.lock
# before it is parsed while holding it.
_READS_BEFORE_LOCKED_PARSE = 3


@dataclass(frozen=True)
class Entry:
    """A stage-0 index entry for a regular file."""

    path: bytes
    sha: bytes  # 20 raw bytes
    stat: os.stat_result | None  # None: git re-hashes the file on status

    def encode(self) -> bytes:
        st = self.stat
        if st is None:
            stat_bytes = _STAT.pack(0, 0, 0, 0, 0, 0, 0o100644, 0, 0, 0)
        else:
            stat_bytes = _STAT.pack(
                int(st.st_ctime) & 0xFFFFFFFF,
                st.st_ctime_ns % 1_000_000_000,
                int(st.st_mtime) & 0xFFFFFFFF,
                st.st_mtime_ns % 1_000_000_000,
                st.st_dev & 0xFFFFFFFF,
                st.st_ino & 0xFFFFFFFF,
                0o100644,
                st.st_uid & 0xFFFFFFFF,
                st.st_gid & 0xFFFFFFFF,
                st.st_size & 0xFFFFFFFF,
            )
        flags = min(len(self.path), _NAME_MASK)
        body = stat_bytes + self.sha + struct.pack(">H", flags) + self.path
        padding = 8 - (len(body) % 8)
        return body + b"\0" * padding


def _entry_end(data: bytes, off: int, version: int) -> tuple[int, bytes, bool]:
    """Return (end offset, path, is_stage0) of the version 2/3 entry at ``off``."""
    flags = (data[off + 60] << 8) | data[off + 61]
    start = off + _FIXED
    if version >= 3 and flags & _FLAG_EXTENDED:
        start += 2
    length = flags & _NAME_MASK
    if length == _NAME_MASK:
        length = data.index(b"\0", start) - start
    path = data[start : start + length]
    end = off + ((start - off + length + 8) & ~7)
    return end, path, (flags >> 12) & 3 == 0


def _v4_to_v3(data: bytes, count: int) -> tuple[bytes, int]:
    """Rewrite version-4 entries (prefix-compressed names) in version-3 layout.

    Returns the entries' bytes and the offset in ``data`` where they ended.
    The index is written back as version 3 (or 2); git rewrites it in its
    configured version the next time it writes the index itself.
    """
    out = []
    off = _HEADER.size
    previous = b""
    for _ in range(count):
        flags = (data[off + 60] << 8) | data[off + 61]
        fixed_end = off + _FIXED + (2 if flags & _FLAG_EXTENDED else 0)
        # git's varint: how many bytes to drop from the end of the previous name.
        pos = fixed_end
        byte = data[pos]
        pos += 1
        strip = byte & 0x7F
        while byte & 0x80:
            byte = data[pos]
            pos += 1
            strip = ((strip + 1) << 7) | (byte & 0x7F)
        nul = data.index(b"\0", pos)
        path = previous[: len(previous) - strip] + data[pos:nul]
        body = data[off:fixed_end] + path
        out.append(body + b"\0" * (8 - len(body) % 8))
        previous = path
        off = nul + 1
    return b"".join(out), off


class IndexBusyError(Exception):
    """Someone else holds ``index.lock``."""


class IndexFile:
    """git's index, read once before a commit and patched after it.

    Reading first lets a mutation refuse, before it commits, an index it
    cannot patch (``problem``). :meth:`apply` then reads the index again under
    ``index.lock``, as git does: what ``git add`` staged meanwhile is kept
    (a patch of the bytes read before the lock would write it away).

    Finding entries needs a walk over every entry (~1 µs each in Python) —
    unless the index is one we wrote ourselves: then it has no extensions, its
    entries end 20 bytes before the end of the file, and an entry is found by
    searching the raw bytes for its name (see :meth:`_find`). We recognise our
    own index by its (inode, mtime, size) and checksum, recorded in ``trust_file``.
    """

    def __init__(self, path: str, trust_file: str | None = None):
        self.path = path
        self.trust_file = trust_file
        self._load(_read(path))

    def _trusted(self, seen: tuple[int, int, int], checksum: bytes) -> bool:
        if self.trust_file is None:
            return False
        try:
            with open(self.trust_file) as f:
                ino, mtime, size, written = f.read().split()
            return (int(ino), int(mtime), int(size)) == seen and bytes.fromhex(written) == checksum
        except (OSError, ValueError):
            return False

    def _load(self, read: tuple[bytes, os.stat_result] | None) -> None:
        """Parse the index bytes ``read`` (None: there is no index file)."""
        self.raw = None if read is None else read[0]  # the file's bytes, to see if it changed
        self.data: bytes | None = None  # None: absent or unreadable; rebuild it
        self.problem: str | None = None
        self.offsets: list[int] | None = None  # None until walked
        if read is None:
            return
        data, st = read
        if len(data) < _HEADER.size + 20:
            return
        signature, version, count = _HEADER.unpack_from(data)
        if signature != b"DIRC" or version not in (2, 3, 4):
            return
        self.data, self.version, self.count = data, version, count
        if version != 4 and self._trusted((st.st_ino, st.st_mtime_ns, st.st_size), data[-20:]):
            self.entries_end = len(data) - 20
        else:
            self._walk()

    def _walk(self) -> None:
        """Read every entry's offset and path, and check the extensions."""
        data, version, count = self.data, self.version, self.count
        assert data is not None
        if version == 4:
            entries, tail = _v4_to_v3(data, count)
            data = _HEADER.pack(b"DIRC", 3, count) + entries + data[tail:]
            version = 3
        offsets: list[int] = []
        paths: list[bytes] = []
        off = _HEADER.size
        for _ in range(count):
            end, path, stage0 = _entry_end(data, off, version)
            if not stage0:
                self.problem = "the index has unresolved merge conflicts; resolve them and commit first"
            offsets.append(off)
            paths.append(path)
            off = end
        ext = off
        while ext < len(data) - 20:
            name = data[ext : ext + 4]
            if name == b"link":
                self.problem = (
                    "git's split index (core.splitIndex) is not supported; "
                    "run 'git update-index --no-split-index' in the project"
                )
            elif name == b"sdir":
                self.problem = (
                    "git's sparse index is not supported; run 'git sparse-checkout disable' in the project"
                )
            (size,) = struct.unpack_from(">L", data, ext + 4)
            ext += 8 + size
        self.data, self.version = data, version
        self.offsets, self.paths, self.entries_end = offsets, paths, off

    def apply(
        self,
        updates: dict[bytes, Entry | None],
        predecessor: Callable[[bytes], bytes | None] | None = None,
    ) -> bool:
        """Apply ``updates`` (path -> new entry, or None to remove).

        ``predecessor(path)`` may name the tracked path that sorts right
        before a new ``path``; with it, an index we wrote ourselves is patched
        without walking its entries. Returns False, writing nothing, if the
        index is absent or unreadable: the caller writes a fresh one. Cached
        extensions are dropped.

        Raises:
            IndexBusyError: ``index.lock`` is held.
            ValueError: the index cannot be patched (see ``problem``).
        """
        reads = 1
        while True:
            with _LockFile(self.path) as lock:
                current = _read(self.path)
                changed = current is None or current[0] != self.raw
                if not changed or reads == _READS_BEFORE_LOCKED_PARSE:
                    if changed:
                        self._load(current)
                    return self._patch(lock, updates, predecessor)
            # git changed the index since it was read: parse it again without
            # the lock (walking a big index takes milliseconds, and git
            # refuses to run while we hold it), then compare once more.
            self._load(_read(self.path))
            reads += 1

    def _patch(
        self,
        lock: _LockFile,
        updates: dict[bytes, Entry | None],
        predecessor: Callable[[bytes], bytes | None] | None,
    ) -> bool:
        """Patch the index as parsed (the file holds exactly it), and commit ``lock``."""
        if self.data is None:
            return False
        if self.problem:
            raise ValueError(self.problem)
        pieces = None
        if self.offsets is None and len(updates) <= _MAX_SEARCHED_UPDATES:
            pieces = self._splice_by_search(updates, predecessor)
        if pieces is None:
            if self.offsets is None:
                self._walk()
                if self.problem:
                    raise ValueError(self.problem)
            pieces = self._splice_by_walk(updates)
        lock.commit_index(pieces, self.trust_file)
        self.raw = None  # read again if applied again
        return True

    def _splice_by_walk(self, updates: dict[bytes, Entry | None]) -> list:
        data, offsets, paths, entries_end = self.data, self.offsets, self.paths, self.entries_end
        assert data is not None and offsets is not None
        # Walk the sorted updates once, copying untouched runs of bytes.
        pieces: list[bytes] = []
        cursor = _HEADER.size
        count = self.count
        for path in sorted(updates):
            i = bisect_left(paths, path)
            exists = i < len(paths) and paths[i] == path
            at = offsets[i] if i < len(offsets) else entries_end
            pieces.append(data[cursor:at])
            entry = updates[path]
            if entry is not None:
                pieces.append(entry.encode())
                count += 0 if exists else 1
            elif exists:
                count -= 1
            cursor = (offsets[i + 1] if i + 1 < len(offsets) else entries_end) if exists else at
        pieces.append(data[cursor:entries_end])
        return [_HEADER.pack(b"DIRC", self.version, count), *pieces]

    def _find(self, data: bytes | bytearray, path: bytes, limit: int) -> tuple[int, int] | None:
        """Return (start, end) of the stage-0 entry for ``path``, found by search.

        An entry is 62 bytes of stat data, id and flags, then its name and
        1-8 NULs; the flags of a plain stage-0 entry are the name's length, so
        flags + name + NUL occurs only where that entry is (names hold no NUL,
        and the flags of a short name start with one).
        """
        if len(path) >= _NAME_MASK:
            return None
        needle = struct.pack(">H", len(path)) + path + b"\0"
        at = data.find(needle, _HEADER.size + 60, limit)
        if at < 0:
            return None
        start = at - 60
        return start, start + ((_FIXED + len(path) + 8) & ~7)

    def _splice_by_search(
        self, updates: dict[bytes, Entry | None], predecessor: Callable[[bytes], bytes | None] | None
    ) -> list | None:
        """Patch an index we wrote, finding entries by search; None to fall back.

        Edits are planned against the unchanged bytes and joined once at the
        end: the index is megabytes, and each copy of it costs a millisecond.
        """
        data = self.data
        assert data is not None
        end = self.entries_end
        count = self.count
        edits: list[tuple[int, int, bytes]] = []  # (offset, bytes replaced, new bytes)
        removed: set[bytes] = set()
        last_inserted: tuple[bytes, int] | None = None  # (path, offset it went in at)
        for path in sorted(updates):
            entry = updates[path]
            found = self._find(data, path, end)
            if found is not None:
                start, stop = found
                edits.append((start, stop - start, entry.encode() if entry is not None else b""))
                if entry is None:
                    count -= 1
                    removed.add(path)
                continue
            if entry is None:
                continue  # nothing to remove
            if predecessor is None:
                return None
            before = predecessor(path)
            if before in removed:
                return None
            if last_inserted is not None and (before is None or last_inserted[0] > before):
                at = last_inserted[1]
            elif before is None:
                at = _HEADER.size
            else:
                found = self._find(data, before, end)
                if found is None:
                    return None
                at = found[1]
            # The entry after the gap must sort after the new one, or entries
            # not in HEAD (staged by the user) sit here: walk instead.
            if at < end and _entry_end(data, at, self.version)[1] <= path:
                return None
            edits.append((at, 0, entry.encode()))
            count += 1
            last_inserted = (path, at)
        view = memoryview(data)
        pieces: list[bytes | memoryview] = [_HEADER.pack(b"DIRC", self.version, count)]
        cursor = _HEADER.size
        # Stable sort: an insertion and the edit of the entry after it share
        # an offset, and were planned in path order.
        for at, length, new in sorted(edits, key=lambda edit: edit[0]):
            pieces.append(view[cursor:at])
            pieces.append(new)
            cursor = at + length
        pieces.append(view[cursor:end])
        return pieces


def write(index_path: str, entries: list[Entry], trust_file: str | None = None) -> None:
    """Write a fresh version-2 index holding ``entries``.

    Raises:
        IndexBusyError: ``index.lock`` is held.
    """
    entries = sorted(entries, key=lambda e: e.path)
    with _LockFile(index_path) as lock:
        lock.commit_index(
            [_HEADER.pack(b"DIRC", 2, len(entries)), *(e.encode() for e in entries)], trust_file
        )


def _read(index_path: str) -> tuple[bytes, os.stat_result] | None:
    """Return the index's bytes and stat data, or None if there is no index."""
    try:
        with open(index_path, "rb") as f:
            return f.read(), os.fstat(f.fileno())
    except FileNotFoundError:
        return None


def read_paths(index_path: str) -> dict[bytes, tuple[bytes, tuple[int, int, int]]] | None:
    """Return path -> (sha, (mtime_s, mtime_ns, size)) for stage-0 entries.

    None if the index is absent or unreadable.
    """
    index = IndexFile(index_path)
    if index.data is None:
        return None
    data, offsets = index.data, index.offsets or []
    result = {}
    for off, path in zip(offsets, index.paths, strict=True):
        if (data[off + 60] >> 4) & 3 == 0:
            mtime_s, mtime_ns = struct.unpack_from(">LL", data, off + 8)
            (size,) = struct.unpack_from(">L", data, off + 36)
            result[path] = (data[off + 40 : off + 60], (mtime_s, mtime_ns, size))
    return result


class _LockFile:
    """git's ``<path>.lock``: taken before the file is read, renamed over it to commit.

    git takes the same lock and never waits for it, so whoever holds it is the
    only writer; leaving the block without committing removes the lock.

    Raises:
        IndexBusyError: the lock file is held by someone else.
    """

    def __init__(self, path: str):
        self.path = path
        self.lock = path + ".lock"
        try:
            # The index is .git/index: its spares are in .git/expipe-git.
            state_dir = os.path.join(os.path.dirname(path), spares.STATE_DIR)
            fd = spares.of(state_dir).create_exclusive(self.lock)
        except FileExistsError:
            raise IndexBusyError(self.lock) from None
        self.file = os.fdopen(fd, "wb")
        self.committed = False

    def __enter__(self) -> _LockFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.committed:
            with contextlib.suppress(OSError):
                self.file.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.lock)

    def commit_index(self, pieces: list, trust_file: str | None) -> None:
        """Write an index from ``pieces`` (bytes-like) with its SHA-1 trailer, and rename it in.

        The pieces are hashed and written one by one: joining a megabytes-long
        index into one bytes object would only copy it twice more.
        ``trust_file`` records the index written, so it is recognised without a
        walk; its stat data is taken before the rename, when it is surely ours.
        """
        digest = hashlib.sha1()
        for piece in pieces:
            digest.update(piece)
        checksum = digest.digest()
        self.file.writelines([*pieces, checksum])
        self.file.flush()
        st = os.fstat(self.file.fileno())
        self.file.close()
        os.replace(self.lock, self.path)
        self.committed = True
        if trust_file is not None:
            with open(trust_file, "w") as f:
                f.write(f"{st.st_ino} {st.st_mtime_ns} {st.st_size} {checksum.hex()}")
