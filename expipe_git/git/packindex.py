"""Indexing a pack a fetch received: each object read once, deltas resolved, commits and trees kept.

dulwich's ``PackIndexer`` took three times as long, and its ``add_pack``
inflates every object twice more; the commits, trees and tags kept here are
all the check of a fetch needs (what else a pack holds is blobs).
"""

from __future__ import annotations

import mmap
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from .format import HASH, TYPE_NAMES, raw_object
from .packs import parse_header, patched


@dataclass
class IndexedPack:
    """What indexing a pack found: what git's ``.idx`` needs, and what the caller kept."""

    entries: list[tuple[bytes, int, int]]  # (binary id, offset, CRC-32 of the packed bytes)
    checksum: bytes  # the pack's trailing SHA-1
    kept: dict[bytes, tuple[int, bytes]]  # hex id -> (type, contents) of the kinds asked for
    external: set[bytes]  # binary ids of delta bases the pack does not hold (a thin pack)


def index_pack(
    path: str,
    keep: tuple[int, ...] = (),
    external_base: Callable[[bytes], tuple[int, bytes]] | None = None,
) -> IndexedPack:
    """Read every object of a pack once: ids, offsets and CRCs for its index.

    ``keep``: object types (1 commit, 2 tree...) whose contents to return.
    ``external_base(hex id)``: contents of a delta base the pack lacks.

    What is held meanwhile: the objects of the kinds kept, each delta's
    instructions until it is applied, and the bases of the chain being
    resolved; an object of another kind is dropped once it is hashed (a
    base among them is inflated again when its deltas are applied).

    Raises:
        ValueError or zlib.error: the pack is damaged or incomplete.
    """
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if len(data) < 32 or data[:4] != b"PACK" or struct.unpack(">I", data[4:8])[0] not in (2, 3):
            raise ValueError("not a version 2 or 3 pack")
        checksum = data[-20:]
        if HASH(data[:-20]).digest() != checksum:
            raise ValueError("the pack's checksum does not match its contents")
        count = struct.unpack(">I", data[8:12])[0]
        pack = _Indexing(data, keep)
        if pack.scan(count) != len(data) - 20:
            raise ValueError("the pack holds more than its header says")
        pack.resolve_in_pack()
        external = pack.resolve_outside(external_base)
    entries = sorted((sha, offset, pack.crcs[offset]) for sha, offset in pack.ids.items())
    return IndexedPack(entries, checksum, pack.kept, external)


class _Indexing:
    """One pack being indexed: what its scan found, and its deltas resolved base first."""

    def __init__(self, data: mmap.mmap, keep: tuple[int, ...]):
        self.data = data
        self.keep = keep
        self.crcs: dict[int, int] = {}  # offset -> CRC-32 of the packed bytes
        self.ids: dict[bytes, int] = {}  # binary id -> offset, of every object hashed
        self.kept: dict[bytes, tuple[int, bytes]] = {}  # hex id -> (type, contents)
        self.whole: dict[int, tuple[int, int, int, bytes]] = {}  # offset -> (type, zlib start, end, id)
        self.deltas: dict[int, bytes] = {}  # offset -> a delta's instructions, until applied
        # base offset, or base binary id -> offsets of its deltas. Tuples, not
        # lists: the garbage collector stops tracking a tuple of ints, and
        # tracking a list per base cost a few percent of the indexing time.
        self.after_offset: dict[int, tuple[int, ...]] = {}
        self.after_id: dict[bytes, tuple[int, ...]] = {}

    def scan(self, count: int) -> int:
        """Inflate each object once: hash the whole ones, keep the deltas; return where the last ends."""
        data, crcs, whole, deltas = self.data, self.crcs, self.whole, self.deltas
        ids, kept, keep = self.ids, self.kept, self.keep
        pos = 12
        for _ in range(count):
            start = pos
            kind, size, base, pos = parse_header(data, start)
            window = size + size // 1000 + 64
            while True:
                inflater = zlib.decompressobj()
                chunk = data[pos : pos + window]
                out = inflater.decompress(chunk)
                if inflater.eof or pos + window >= len(data):
                    break
                window *= 4
            if not inflater.eof or len(out) != size:
                raise ValueError(f"object at {start} is truncated or its size is wrong")
            stream = pos
            pos += len(chunk) - len(inflater.unused_data)
            crcs[start] = zlib.crc32(data[start:pos])
            if base is None:  # hashed here, inline: this runs for every whole object of the pack
                sha = HASH(raw_object(TYPE_NAMES[kind], out)).digest()
                ids[sha] = start
                if kind in keep:
                    kept[sha.hex().encode("ascii")] = (kind, out)
                whole[start] = (kind, stream, pos, sha)
            elif isinstance(base, int):
                deltas[start] = out
                self.after_offset[base] = self.after_offset.get(base, ()) + (start,)
            else:
                deltas[start] = out
                self.after_id[base] = self.after_id.get(base, ()) + (start,)
        return pos

    def _deltas_of(self, offset: int, sha: bytes) -> tuple[int, ...] | None:
        by_offset = self.after_offset.pop(offset, None)
        by_id = self.after_id.pop(sha, None)
        return by_id if by_offset is None else by_offset if by_id is None else by_offset + by_id

    def _apply(self, deltas: tuple[int, ...], kind: int, base: bytes) -> None:
        """Resolve ``deltas`` of ``base``, and theirs, depth first: one base per level is held."""
        # This runs for most objects of a pack: written out on local names.
        name, keep = TYPE_NAMES[kind], kind in self.keep
        ids, kept, instructions = self.ids, self.kept, self.deltas
        after_offset, after_id = self.after_offset, self.after_id
        stack = [(iter(deltas), base)]
        while stack:
            waiting, source = stack[-1]
            for offset in waiting:
                contents = patched(source, instructions.pop(offset))
                sha = HASH(raw_object(name, contents)).digest()
                ids[sha] = offset
                if keep:
                    kept[sha.hex().encode("ascii")] = (kind, contents)
                if offset in after_offset or sha in after_id:
                    stack.append((iter(after_offset.pop(offset, ()) + after_id.pop(sha, ())), contents))
                    break  # its deltas first; this level's iterator resumes after them
            else:
                stack.pop()

    def resolve_in_pack(self) -> None:
        """Resolve every delta whose chain starts at a whole object of the pack."""
        for offset, (kind, stream, end, sha) in self.whole.items():
            deltas = self._deltas_of(offset, sha)
            if deltas:
                kept = self.kept.get(sha.hex().encode("ascii"))
                self._apply(deltas, kind, kept[1] if kept else zlib.decompress(self.data[stream:end]))

    def resolve_outside(self, external_base: Callable[[bytes], tuple[int, bytes]] | None) -> set[bytes]:
        """Resolve the deltas left onto bases read with ``external_base``; return their binary ids."""
        external: set[bytes] = set()
        while self.after_id and external_base is not None:
            # A base named by id may be in the pack, itself a delta not yet
            # resolved (a chain onto an outside base): go on while any is found.
            outside: dict[bytes, tuple[int, bytes]] = {}
            _fetch_outside_bases(set(self.after_id), external_base, outside, external)
            for base_id, (kind, contents) in outside.items():
                self._apply(self.after_id.pop(base_id, ()), kind, contents)
        waiting = sum(map(len, self.after_offset.values())) + sum(map(len, self.after_id.values()))
        if waiting:
            raise ValueError(f"{waiting} deltas have no base in the pack")
        return external


def _fetch_outside_bases(
    missing: set[bytes],
    external_base: Callable[[bytes], tuple[int, bytes]],
    outside: dict[bytes, tuple[int, bytes]],
    external: set[bytes],
) -> None:
    """Read the bases ``missing`` (binary ids) from outside the pack into ``outside``; raise if none is."""
    found = False
    for base_id in sorted(missing):
        try:
            outside[base_id] = external_base(base_id.hex().encode("ascii"))
        except KeyError:
            continue
        external.add(base_id)
        found = True
    if not found:
        listed = ", ".join(sorted(base_id.hex() for base_id in missing))
        raise ValueError(
            f"a delta's base {listed} is missing"
            if len(missing) == 1
            else f"deltas' bases are missing (one of {listed})"
        )
