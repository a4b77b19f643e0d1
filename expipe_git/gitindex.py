"""Patch entries of git's index file in place, without parsing all of it.

git's index lists every tracked file with its blob id and stat data; it must
match HEAD and the working tree or ``git status`` shows changes. Parsing and
rewriting the whole index costs ~7 µs per entry (over a second at 100k
files), so a mutation instead splices the few entries it changed into the raw
bytes. Only versions 2 and 3 are patched; anything else (version 4 path
compression, a split or sparse index) makes :func:`patch` return False and
the caller rebuilds the index from HEAD.

Cached extensions (TREE, UNTR, EOIE, IEOT, REUC) describe the old entries, so
they are dropped; git recomputes them when it needs them.
"""

from __future__ import annotations

import hashlib
import os
import struct
from bisect import bisect_left
from dataclasses import dataclass

_HEADER = struct.Struct(">4sLL")
_STAT = struct.Struct(">LLLLLLLLLL")
_FLAG_EXTENDED = 0x4000
_NAME_MASK = 0x0FFF
_FIXED = 62  # stat data (40) + sha (20) + flags (2)
_MANDATORY_EXTENSIONS = (b"link", b"sdir")


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
    """Return (end offset, path, is_stage0) of the entry at ``off``."""
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


def patch(index_path: str, updates: dict[bytes, Entry | None]) -> bool:
    """Apply ``updates`` (path -> new entry, or None to remove) to the index.

    Returns False, writing nothing, if the index is absent or in a form this
    module does not patch; the caller then rebuilds it.
    """
    try:
        with open(index_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    if len(data) < _HEADER.size + 20:
        return False
    signature, version, count = _HEADER.unpack_from(data)
    if signature != b"DIRC" or version not in (2, 3):
        return False

    offsets: list[int] = []
    paths: list[bytes] = []
    off = _HEADER.size
    for _ in range(count):
        end, path, stage0 = _entry_end(data, off, version)
        if not stage0:
            return False  # a merge in progress: not ours to touch
        offsets.append(off)
        paths.append(path)
        off = end
    entries_end = off
    ext = entries_end
    while ext < len(data) - 20:
        name = data[ext : ext + 4]
        if name in _MANDATORY_EXTENSIONS:
            return False
        (size,) = struct.unpack_from(">L", data, ext + 4)
        ext += 8 + size

    # Splice: walk the sorted updates once, copying untouched runs of bytes.
    pieces: list[bytes] = []
    cursor = _HEADER.size
    new_count = count
    for path in sorted(updates):
        i = bisect_left(paths, path)
        exists = i < len(paths) and paths[i] == path
        at = offsets[i] if i < len(offsets) else entries_end
        pieces.append(data[cursor:at])
        entry = updates[path]
        if entry is not None:
            pieces.append(entry.encode())
            new_count += 0 if exists else 1
        elif exists:
            new_count -= 1
        cursor = (offsets[i + 1] if i + 1 < len(offsets) else entries_end) if exists else at
    pieces.append(data[cursor:entries_end])
    body = _HEADER.pack(b"DIRC", version, new_count) + b"".join(pieces)
    write_atomic(index_path, body + hashlib.sha1(body).digest())
    return True


def write(index_path: str, entries: list[Entry]) -> None:
    """Write a fresh version-2 index holding ``entries``."""
    entries = sorted(entries, key=lambda e: e.path)
    body = _HEADER.pack(b"DIRC", 2, len(entries)) + b"".join(e.encode() for e in entries)
    write_atomic(index_path, body + hashlib.sha1(body).digest())


def read_paths(index_path: str) -> dict[bytes, tuple[bytes, tuple[int, int, int]]] | None:
    """Return path -> (sha, (mtime_s, mtime_ns, size)) for stage-0 entries.

    None if the index is absent or in a form this module does not read.
    """
    try:
        with open(index_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    if len(data) < _HEADER.size + 20:
        return None
    signature, version, count = _HEADER.unpack_from(data)
    if signature != b"DIRC" or version not in (2, 3):
        return None
    result = {}
    off = _HEADER.size
    for _ in range(count):
        end, path, stage0 = _entry_end(data, off, version)
        if stage0:
            mtime_s, mtime_ns = struct.unpack_from(">LL", data, off + 8)
            (size,) = struct.unpack_from(">L", data, off + 36)
            result[path] = (data[off + 40 : off + 60], (mtime_s, mtime_ns, size))
        off = end
    return result


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` by ``data`` through git's ``<path>.lock`` protocol.

    Raises:
        FileExistsError: the lock file is held by someone else.
    """
    lock = path + ".lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(lock, path)
    except BaseException:
        try:
            os.unlink(lock)
        except FileNotFoundError:
            pass
        raise
