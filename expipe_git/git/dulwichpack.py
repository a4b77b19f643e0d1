"""The one module that relies on dulwich's internals: records for its pack writer.

A push hands dulwich's ``write_pack_data`` objects that are packed already
(as a pack stores them, or packed by :mod:`expipe_git.git.outgoing`), so
that nothing is inflated and compressed again. dulwich's public API has no
way to say "these bytes are the packed object": this module makes
``UnpackedObject``s the way its writer reads them. What it relies on:

- ``UnpackedObject`` has ``__slots__`` ``pack_type_num``, ``delta_base``,
  ``decomp_chunks``, ``comp_chunks`` and ``_sha``, and its constructor can be
  skipped (ours sets those five: the constructor cost 73 ms for 40,000
  objects, this one 38 ms);
- the writer writes ``comp_chunks`` as the entry's bytes, header included,
  as they are, and asks ``sha()`` (read from ``_sha``) for the index it
  keeps;
- a record may carry no bytes and a later one the bytes of several (see
  :func:`pack_records`): the writer's offsets and CRCs of those records are
  then wrong, which a push discards — only the pack's bytes go out.

So that the next dulwich release may install (pyproject.toml allows any
1.x), this is checked twice. At the first push of a process,
:func:`internals_problem` looks at the slots and has the writer write two
records (one empty, one batched) into a pack in memory, comparing its bytes
with what they must be. If anything differs, every push of the process
takes the slower way that uses dulwich's public API only: each object
inflated again and handed over as an ``UnpackedObject`` built by its
constructor, which the writer compresses again. That fallback is logged (a
warning naming dulwich's version and what differed) and counted in
:data:`fallbacks`. And tests/test_dulwich_internals.py says on every test
run exactly which of the points above an upgrade broke, and pushes through
the fallback to real repositories checked by ``git fsck --strict``.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Iterator

import dulwich
from dulwich.pack import REF_DELTA, UnpackedObject, write_pack_data

from .format import object_id
from .packs import object_header, parse_header

_log = logging.getLogger(__name__)

_BATCH_BYTES = 64 * 1024
RELIED_ON_SLOTS = frozenset({"pack_type_num", "delta_base", "decomp_chunks", "comp_chunks", "_sha"})

fallbacks = 0  # pushes packed through dulwich's public API because its internals were not as relied on
_checked = False
_problem: str | None = None


def internals_problem() -> str | None:
    """What of dulwich's internals :class:`PackRecord` relies on does not hold here; None if all does.

    Checked once per process, at the first push.
    """
    global _checked, _problem
    if not _checked:
        _problem, _checked = _check_internals(), True
    return _problem


def _check_internals() -> str | None:
    missing = RELIED_ON_SLOTS - set(getattr(UnpackedObject, "__slots__", ()))
    if missing:
        return f"UnpackedObject has no slot {', '.join(sorted(missing))}"
    try:
        from dulwich.object_format import SHA1

        contents = [b"expipe_git checks dulwich's pack writer\n", b"a second object\n"]
        ids = [object_id(b"blob", content) for content in contents]
        entries = [object_header(3, len(content)) + zlib.compress(content) for content in contents]
        records = [PackRecord(3, ids[0], []), PackRecord(3, ids[1], [b"".join(entries)])]
        out = io.BytesIO()
        write_pack_data(out.write, iter(records), SHA1, num_records=2)
        if records[1].sha() != bytes.fromhex(ids[1].decode()):
            return "UnpackedObject.sha() does not read _sha"
    except Exception as exc:  # whatever a changed writer raises, the way out is the same
        return f"its pack writer failed on records already packed ({type(exc).__name__}: {exc})"
    if out.getvalue()[12:-20] != b"".join(entries):
        return "its pack writer does not write comp_chunks as they are"
    return None


def pack_records(count: int, packed: Iterator[tuple[int, bytes, bytes]]) -> Iterator[UnpackedObject]:
    """Hand the packed objects to dulwich's pack writer, which writes their bytes as they are.

    The writer sends each record's bytes with one write, and over git://
    that is one ``send`` on an unbuffered socket with TCP_NODELAY: batching
    took the first push of a 10,000-commit history from 1.8 s to 1.3 s.
    So bytes go out in batches:
    a record carries none until ~64 KiB are ready, then the record that
    completes the batch carries all of it. The pack's bytes, their order and
    the count of objects are unchanged; only the writer's note of where each
    object starts (which a push discards) is not.
    """
    problem = internals_problem()
    if problem is not None:
        return _through_public_api(packed, problem)
    return _batched(count, packed)


def _batched(count: int, packed: Iterator[tuple[int, bytes, bytes]]) -> Iterator[UnpackedObject]:
    batch: list[bytes] = []
    size = 0
    for index, (type_num, sha, data) in enumerate(packed):
        batch.append(data)
        size += len(data)
        if size >= _BATCH_BYTES or index == count - 1:
            yield PackRecord(type_num, sha, [b"".join(batch)])
            batch.clear()
            size = 0
        else:
            yield PackRecord(type_num, sha, [])


def _through_public_api(packed: Iterator[tuple[int, bytes, bytes]], problem: str) -> Iterator[UnpackedObject]:
    """The objects inflated again and given as dulwich's constructor makes them (slower, always right)."""
    global fallbacks
    fallbacks += 1
    version = ".".join(map(str, dulwich.__version__))
    _log.warning(
        "dulwich %s is not as expipe_git's fast push expects (%s); this push packs its objects "
        "through dulwich's public API instead, which is slower",
        version,
        problem,
    )
    for _, sha, data in packed:
        kind, _, base, start = parse_header(data, 0)  # what outgoing packs: whole objects or ref deltas
        assert not isinstance(base, int), "outgoing names a delta's base by id"
        yield UnpackedObject(
            REF_DELTA if base is not None else kind,
            delta_base=base,
            decomp_chunks=[zlib.decompress(data[start:])],
            sha=bytes.fromhex(sha.decode("ascii")),
        )


class PackRecord(UnpackedObject):
    """An object already packed: what dulwich's pack writer reads of an UnpackedObject, and no more.

    UnpackedObject's own constructor, which works out what a writer of
    unpacked objects needs, took 73 ms for 40,000 objects; this one 38 ms.
    """

    __slots__ = ()

    def __init__(self, type_num: int, sha: bytes, chunks: list[bytes]):
        self.pack_type_num = type_num
        self.delta_base = None
        self.decomp_chunks = []
        self.comp_chunks = chunks
        self._sha = bytes.fromhex(sha.decode("ascii"))
