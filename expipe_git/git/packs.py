"""Read objects out of git's pack files, fast.

dulwich finds a packed object through several layers of Python (a binary
search over the index file entry by entry, then a chunked zlib reader, then
delta resolution); at ~40 µs an object, reading the trees and blobs of a
10,000-commit history took seconds (a clone's checkout, a first push, the
first history walk). Here the first lookups binary-search each pack's
memory-mapped index (opening a project reads a handful of objects, and
loading an index of 200,000 ids took half a second), later ones use a
dict (object id -> offset) built once, the pack is memory-mapped, and an object is one
header parse and one ``zlib.decompress``; deltas are applied with dulwich's C
``apply_delta`` and their bases kept in a small cache, since most deltas of
a history share a few bases.

Only what git writes today is read: index version 2 and pack version 2 or
3. Anything else (an index version 1, a damaged pack) makes
:meth:`Packs.get` return None, and the caller asks dulwich instead — never
silently: each such fallback is logged (logger ``expipe_git.git.packs``) and
counted in ``Packs.fallbacks``, so a bug here shows as a warning, not only
as slowness.

Also here: writing a pack (:class:`PackWriter`, for :mod:`expipe_git.git.packing`);
indexing a received one is :mod:`expipe_git.git.packindex`.
"""

from __future__ import annotations

import binascii
import bisect
import contextlib
import itertools
import logging
import mmap
import os
import struct
import sys
import threading
import time
import zlib
from collections import OrderedDict
from typing import NamedTuple

from dulwich.pack import apply_delta, write_pack_index

from .format import HASH

_log = logging.getLogger(__name__)

_OFS_DELTA = 6
_REF_DELTA = 7
_BASE_CACHE_BYTES = 32 * 1024 * 1024
_RACY_NS = 2_000_000_000
_SEARCHES_BEFORE_TABLE = 2000
_serials = itertools.count()  # names each PackFile of this process for good (id() is reused)


class StoredObject(NamedTuple):
    """A packed object as its pack stores it: what a push can send on as is."""

    packed: bytes  # header, the base's binary id if a delta, zlib data
    base: bytes | None  # hex id of a delta's base, None for a whole object


class PackFile:
    """One ``pack-*.pack`` file, memory-mapped."""

    def __init__(self, pack_path: str, index_path: str):
        with open(pack_path, "rb") as f:
            self.data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self.data[:4] != b"PACK" or struct.unpack(">I", self.data[4:8])[0] not in (2, 3):
            raise ValueError(f"{pack_path} is not a version 2 or 3 pack")
        self.index_path = index_path
        self.serial = next(_serials)
        self._entries: dict[int, tuple[bytes, int, int]] | None = None

        with open(index_path, "rb") as f:
            self.index = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self.index[:8] != b"\xfftOc\x00\x00\x00\x02":
            raise ValueError(f"{index_path} is not a version 2 pack index")
        self.count = struct.unpack_from(">I", self.index, 8 + 255 * 4)[0]
        self._names = _Names(self.index, 8 + 256 * 4, self.count)
        if len(self.index) < 8 + 256 * 4 + 28 * self.count:
            raise ValueError(f"{index_path} is truncated")

    def find(self, sha: bytes) -> int | None:
        """Return the offset of an object (by hex id) in this pack, or None: a binary search of the index."""
        binary = bytes.fromhex(sha.decode("ascii"))
        first = binary[0]
        lo = struct.unpack_from(">I", self.index, 8 + 4 * (first - 1))[0] if first else 0
        hi = struct.unpack_from(">I", self.index, 8 + 4 * first)[0]
        at = bisect.bisect_left(self._names, binary, lo, hi)
        if at >= hi or self._names[at] != binary:
            return None
        offsets_at = 8 + 256 * 4 + 24 * self.count
        offset = struct.unpack_from(">I", self.index, offsets_at + 4 * at)[0]
        if offset & 0x80000000:  # an index into the table of 8-byte offsets
            offset = struct.unpack_from(
                ">Q", self.index, offsets_at + 4 * self.count + 8 * (offset & 0x7FFFFFFF)
            )[0]
        return offset

    def ids_and_offsets(self) -> tuple[list[bytes], tuple[int, ...]]:
        """The hex id and offset of every object, read from the mapped index a block at a time.

        A writer that has looked up thousands of objects keeps all of them
        in one table, and adds each new pack to it after a packing: this
        is what that costs (a merged pack of 5,000 objects, ~1 ms).
        """
        names_at = 8 + 256 * 4
        offsets_at = names_at + 24 * self.count
        hexed = binascii.hexlify(self.index[names_at : names_at + 20 * self.count])
        ids = [hexed[at : at + 40] for at in range(0, 40 * self.count, 40)]
        offsets = struct.unpack_from(f">{self.count}I", self.index, offsets_at)
        if self.count and max(offsets) & 0x80000000:  # some past 2 GB: in the table of 8-byte offsets
            large_at = offsets_at + 4 * self.count
            offsets = tuple(
                struct.unpack_from(">Q", self.index, large_at + 8 * (offset & 0x7FFFFFFF))[0]
                if offset & 0x80000000
                else offset
                for offset in offsets
            )
        return ids, offsets

    def close(self) -> None:
        """Unmap the pack and its index (Windows cannot remove a file that is mapped)."""
        self.data.close()
        self.index.close()

    def entries(self) -> dict[int, tuple[bytes, int, int]]:
        """offset -> (hex id, where the entry ends, CRC-32 of its bytes), read when first asked.

        Only a push that sends stored bytes on needs this, so the index is
        read a second time rather than kept for every reader. Two threads
        asking at once both build the same table; either one is kept.
        """
        if self._entries is None:
            listed = read_index(self.index_path)
            if listed is None:
                raise ValueError(f"{self.index_path} is not a version 2 pack index")
            listed.sort(key=lambda entry: entry[1])
            ends = [offset for _, offset, _ in listed[1:]] + [len(self.data) - 20]
            self._entries = {
                offset: (sha, end, crc) for (sha, offset, crc), end in zip(listed, ends, strict=True)
            }
        return self._entries


class _Names:
    """The sorted binary ids of a pack index, as a sequence ``bisect`` can search."""

    def __init__(self, index: mmap.mmap, start: int, count: int):
        self._index, self._start, self._count = index, start, count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> bytes:
        at = self._start + 20 * i
        return self._index[at : at + 20]


def read_index(path: str) -> list[tuple[bytes, int, int]] | None:
    """Return (hex id, offset, CRC-32) of each entry of a version 2 pack index, or None for another kind."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != b"\xfftOc\x00\x00\x00\x02":
        return None
    count = struct.unpack(">I", raw[8 + 255 * 4 : 8 + 256 * 4])[0]
    names_at = 8 + 256 * 4  # then names (20 bytes each), CRCs (4 bytes each), offsets (4 bytes each)
    crcs_at = names_at + 20 * count
    offsets_at = crcs_at + 4 * count
    large_at = offsets_at + 4 * count
    offsets = list(struct.unpack(f">{count}I", raw[offsets_at:large_at]))
    for i, offset in enumerate(offsets):
        if offset & 0x80000000:  # an index into the table of 8-byte offsets
            at = large_at + 8 * (offset & 0x7FFFFFFF)
            offsets[i] = struct.unpack(">Q", raw[at : at + 8])[0]
    names = [raw[names_at + 20 * i : names_at + 20 * i + 20].hex().encode("ascii") for i in range(count)]
    return list(zip(names, offsets, struct.unpack(f">{count}I", raw[crcs_at:offsets_at]), strict=True))


class Packs:
    """The pack files of one object store, indexed by object id."""

    def __init__(self, pack_dir: str):
        self.pack_dir = pack_dir
        self._packs: dict[str, PackFile] = {}
        # Opening a project looks up a handful of objects: each is a binary
        # search of the pack indexes (~20 µs). A walk over thousands is faster
        # with every id in a dict, built once it has searched this many.
        self._where: dict[bytes, tuple[PackFile, int]] | None = None
        self._searches = 0
        self._listing: tuple[int, int] | None = None
        self._racy = False
        # Inflated objects by (pack serial, offset), most recently used last.
        self._bases: OrderedDict[tuple[int, int], tuple[int, bytes]] = OrderedDict()
        self._base_bytes = 0
        self._lock = threading.RLock()  # a delta's base may be looked up while reading it
        self.fallbacks = 0  # objects or packs left to dulwich because this reader could not decode them

    def _fall_back(self, what: str, problem: BaseException) -> None:
        self.fallbacks += 1
        _log.warning(
            "%s cannot be read here (%s: %s); dulwich reads it instead", what, type(problem).__name__, problem
        )

    def get(self, sha: bytes, *, look_again: bool = True) -> tuple[int, bytes] | None:
        """Return (type number, contents) of a packed object, or None if not found here.

        ``look_again``: on a miss, load packs that appeared since the last
        look (a stat of the pack folder) and try them.
        """
        found = self._locate(sha)
        if found is None:
            if not look_again:
                return None
            with self._lock:
                if not self._refresh():
                    return None
            found = self._locate(sha)
            if found is None:
                return None
        pack, offset = found
        try:
            with self._lock:
                return self._object_at(pack, offset)
        except (ValueError, IndexError, zlib.error, struct.error, RecursionError) as exc:
            # Damaged, or unusual (a delta chain deeper than Python's stack,
            # which git allows up to 4095): let dulwich read it, or say what is wrong.
            self._fall_back(f"object {sha.decode('ascii', 'replace')} in the pack of {pack.index_path}", exc)
            return None

    def stored(self, sha: bytes) -> StoredObject | None:
        """Return a packed object's bytes as its pack stores them, to send on without inflating.

        None if it is not packed here (loose, or in a pack that came after
        the first look) or its entry fails its CRC: then the caller reads it.
        """
        if self._listing is None:
            with self._lock:
                self._refresh()
        found = self._locate(sha)
        if found is None:
            return None
        pack, offset = found
        data = pack.data
        try:
            entries = pack.entries()
            _, end, crc = entries[offset]
            kind, size, base_ref, pos = parse_header(data, offset)
            entry = data[offset:end]
            if zlib.crc32(entry) != crc:
                return None
            if base_ref is None:
                return StoredObject(entry, None)
            # No chain of deltas sent on this way can loop: each object is
            # read from the last pack loaded that holds it, and a pack holds
            # its deltas' bases (git completes thin packs, and so does fetch),
            # so a chain only moves to packs loaded later, and within one
            # pack it ends.
            base = entries[base_ref][0] if isinstance(base_ref, int) else base_ref.hex().encode("ascii")
            if isinstance(base_ref, int):  # an offset means nothing outside this pack: name the base
                entry = object_header(_REF_DELTA, size) + bytes.fromhex(base.decode("ascii")) + data[pos:end]
            return StoredObject(entry, base)
        except (OSError, ValueError, KeyError, IndexError, struct.error):
            return None

    def _refresh(self) -> bool:
        """Load packs added since the last look; return whether there were any."""
        try:
            st = os.stat(self.pack_dir)
        except FileNotFoundError:
            return False
        listing = (st.st_mtime_ns, st.st_ino)
        if listing == self._listing and not self._racy:
            return False
        self._listing = listing
        # A folder's time has the file system's granularity (a few ms): a
        # pack renamed in within the same tick as the last look would leave
        # it unchanged, and a reader that then misses a loose object (packed
        # and removed meanwhile) would not find it. So a listing this recent
        # is looked at again on the next miss, as git does for its index.
        self._racy = time.time_ns() - st.st_mtime_ns < _RACY_NS
        names = os.listdir(self.pack_dir)
        gone = [name for name in self._packs if name not in names]
        if gone:
            self._forget(gone)
        added = False
        for name in sorted(names):
            if not name.endswith(".idx") or name in self._packs:
                continue
            pack_path = os.path.join(self.pack_dir, name[: -len(".idx")] + ".pack")
            try:
                pack = PackFile(pack_path, os.path.join(self.pack_dir, name))
            except FileNotFoundError:
                continue  # removed meanwhile (packing merged it into another)
            except (OSError, ValueError, struct.error) as exc:
                self._fall_back(f"pack {pack_path}", exc)
                continue
            self._packs[name] = pack
            if self._where is not None:
                self._add_to_where(pack)
            added = True
        return added

    def _locate(self, sha: bytes) -> tuple[PackFile, int] | None:
        """Return (pack, offset) of an object by hex id.

        The newest pack wins: when packing merges packs into one, the merged
        one is loaded before the others are forgotten. Both ways of looking
        (the binary searches and the table) keep that order.
        """
        if self._where is not None:
            return self._where.get(sha)
        self._searches += 1
        if self._searches > _SEARCHES_BEFORE_TABLE:
            with self._lock:
                if self._where is None:
                    self._where = {}
                    for pack in list(self._packs.values()):
                        self._add_to_where(pack)
            return self._where.get(sha)
        for pack in reversed(list(self._packs.values())):
            try:
                offset = pack.find(sha)
            except (ValueError, IndexError, struct.error):
                continue
            if offset is not None:
                return pack, offset
        return None

    def _add_to_where(self, pack: PackFile) -> None:
        assert self._where is not None
        ids, offsets = pack.ids_and_offsets()  # PackFile checked the index's length
        located = zip(itertools.repeat(pack), offsets)  # endless repeat: strict would fail
        self._where.update(zip(ids, located, strict=True))  # loaded later: newer, it wins

    def close(self) -> None:
        """Unmap every pack loaded; the next read loads them again."""
        with self._lock:
            for pack in self._packs.values():
                pack.close()
            self._packs, self._where, self._listing = {}, None, None
            self._searches = 0
            self._bases.clear()
            self._base_bytes = 0

    def _forget(self, gone: list[str]) -> None:
        """Drop packs whose index was removed (merged into another by packing).

        An object they held is found again in the pack that replaced them,
        loaded after this. A process that kept them would keep their files
        open, and their disk space taken, until it ends.
        """
        dropped = [self._packs.pop(name) for name in gone]
        if self._where is None:
            return
        # Only their own entries: a writer's table holds every object of the
        # project, and a packing replaces a few small packs each time.
        where = self._where
        for pack in dropped:
            for sha in pack.ids_and_offsets()[0]:
                if where.get(sha, (None,))[0] is pack:
                    del where[sha]
        # Their cached objects are keyed by serials no pack will have again:
        # they age out of the cache like any other.

    def _object_at(self, pack: PackFile, offset: int) -> tuple[int, bytes]:
        key = (pack.serial, offset)
        cached = self._bases.get(key)
        if cached is not None:
            self._bases.move_to_end(key)
            return cached
        data = pack.data
        kind, size, base_ref, pos = parse_header(data, offset)
        if isinstance(base_ref, int):
            base_kind, base = self._object_at(pack, base_ref)
            result = (base_kind, patched(base, _inflate(data, pos, size)))
        elif isinstance(base_ref, bytes):
            where = self._locate(base_ref.hex().encode("ascii"))
            if where is None:
                raise ValueError("the base of a delta is not in a pack")  # a thin pack: dulwich's case
            base_kind, base = self._object_at(*where)
            result = (base_kind, patched(base, _inflate(data, pos, size)))
        else:
            result = (kind, _inflate(data, pos, size))
        self._remember(key, result)
        return result

    def _remember(self, key: tuple[int, int], value: tuple[int, bytes]) -> None:
        # Every object read goes in: a delta's base is an object read before it.
        self._bases[key] = value
        self._base_bytes += len(value[1])
        while self._base_bytes > _BASE_CACHE_BYTES and self._bases:
            _, (_, dropped) = self._bases.popitem(last=False)
            self._base_bytes -= len(dropped)


def patched(base: bytes, delta: bytes) -> bytes:
    """Apply a delta; dulwich's C ``apply_delta`` returns a list of chunks."""
    out = apply_delta(base, delta)
    return out if isinstance(out, bytes) else b"".join(out)


def object_header(type_num: int, size: int) -> bytes:
    """A packed object's header: its type and (inflated) size, 7 bits a byte after the first 4."""
    header = bytearray()
    byte = (type_num << 4) | (size & 15)
    size >>= 4
    while size:
        header.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    header.append(byte)
    return bytes(header)


def parse_header(data: mmap.mmap | bytes, offset: int) -> tuple[int, int, int | bytes | None, int]:
    """Parse the header of the packed object at ``offset``.

    Returns (type, inflated size, delta base, where the zlib stream starts);
    the base is an offset for an offset delta, a binary id for a reference
    delta, None for a whole object.
    """
    byte = data[offset]
    kind, size, shift = (byte >> 4) & 7, byte & 15, 4
    pos = offset + 1
    while byte & 0x80:
        byte = data[pos]
        size |= (byte & 0x7F) << shift
        shift += 7
        pos += 1
    if kind == _OFS_DELTA:
        byte = data[pos]
        back = byte & 0x7F
        pos += 1
        while byte & 0x80:
            byte = data[pos]
            back = ((back + 1) << 7) | (byte & 0x7F)
            pos += 1
        if offset - back < 12:
            raise ValueError(f"object at {offset} refers before the pack's start")
        return kind, size, offset - back, pos
    if kind == _REF_DELTA:
        return kind, size, bytes(data[pos : pos + 20]), pos + 20
    if not 1 <= kind <= 4:
        raise ValueError(f"object type {kind} at offset {offset}")
    return kind, size, None, pos


def _inflate(data: mmap.mmap, pos: int, size: int) -> bytes:
    """Decompress the zlib stream at ``pos`` that holds ``size`` bytes."""
    window = size + size // 1000 + 64  # zlib never grows data by more than this
    inflater = zlib.decompressobj()
    out = inflater.decompress(data[pos : pos + window], size)
    while not inflater.eof and len(out) < size:
        window *= 2
        more = data[pos : pos + window]
        inflater = zlib.decompressobj()
        out = inflater.decompress(more, size)
        if pos + window >= len(data):
            break
    if len(out) != size:
        raise ValueError("a packed object's size does not match its header")
    return out


# -- writing a pack -------------------------------------------------------------


class PackWriter:
    """Write a pack of ``count`` objects and its index at ``path`` + .pack/.idx, then move both into place.

    Entries are added whole, as another pack stores them, or as offset
    deltas; a with-block removes the temporary files if it is left early.
    """

    def __init__(self, path: str, count: int):
        self.count = count
        self.path = path
        self.file = open(self.path + ".pack", "wb")  # noqa: SIM115 - closed in install or __exit__
        self.sha = HASH()
        self.offsets: dict[bytes, int] = {}  # hex id -> offset
        self._ids: dict[int, bytes] = {}  # offset -> hex id
        self.entries: list[tuple[bytes, int, int]] = []  # (binary id, offset, CRC-32)
        self.position = 0
        self._write(b"PACK" + struct.pack(">II", 2, count))

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        for suffix in (".pack", ".idx"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path + suffix)

    def _write(self, data: bytes) -> None:
        self.file.write(data)
        self.sha.update(data)
        self.position += len(data)

    def id_at(self, offset: int) -> bytes:
        return self._ids[offset]

    def add_stored(self, sha: bytes, entry: bytes) -> None:
        """Add an entry as another pack stores it (a whole object, or a delta naming its base by id)."""
        self.offsets[sha] = self.position
        self._ids[self.position] = sha
        self.entries.append((bytes.fromhex(sha.decode("ascii")), self.position, zlib.crc32(entry)))
        self._write(entry)

    def add_whole(self, sha: bytes, kind: int, data: bytes) -> None:
        self.add_stored(sha, object_header(kind, len(data)) + zlib.compress(data))

    def add_delta(self, sha: bytes, base: bytes, delta: bytes) -> None:
        self.add_stored_delta(sha, self.offsets[base], len(delta), zlib.compress(delta))

    def add_stored_delta(self, sha: bytes, base_offset: int, size: int, compressed: bytes) -> None:
        entry = object_header(_OFS_DELTA, size) + offset_distance(self.position - base_offset)
        self.add_stored(sha, entry + compressed)

    def install(self, pack_dir: str) -> None:
        """Finish the pack and its index, make them durable, and move them into ``pack_dir``."""
        if len(self.entries) != self.count:
            raise ValueError(f"a pack of {self.count} objects got {len(self.entries)}")
        checksum = self.sha.digest()
        self.file.write(checksum)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        with open(self.path + ".idx", "wb") as f:
            write_pack_index(f, sorted(self.entries), checksum, version=2)
            f.flush()
            os.fsync(f.fileno())
        name = os.path.join(pack_dir, f"pack-{checksum.hex()}")
        for suffix in (".pack", ".idx"):  # the index last: readers look for indexes
            os.chmod(self.path + suffix, 0o444)
            os.replace(self.path + suffix, name + suffix)
        sync_folder(pack_dir)


def offset_distance(distance: int) -> bytes:
    """How far back an offset delta's base is, in git's variable-length form."""
    out = [distance & 0x7F]
    distance >>= 7
    while distance:
        distance -= 1
        out.append(0x80 | (distance & 0x7F))
        distance >>= 7
    return bytes(reversed(out))


def sync_folder(path: str) -> None:
    if sys.platform == "win32":  # a folder cannot be opened to fsync there; NTFS journals renames
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
