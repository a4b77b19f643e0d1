"""The one module that relies on dulwich's internals: records for its pack writer.

A push hands dulwich's ``write_pack_data`` objects that are packed already
(as a pack stores them, or packed by :mod:`expipe_git.git.outgoing`), so
that nothing is inflated and compressed again. dulwich's public API has no
way to say "these bytes are the packed object": this module makes
``UnpackedObject``s the way its writer reads them. What it relies on, and
what tests/test_dulwich_internals.py checks on every run (a dulwich upgrade
that changes one of them fails those tests, not a push):

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

dulwich is pinned ``<1.3`` in pyproject.toml for this; dulwich 1.3 could not
be installed here to check it (not on the package index this machine uses).
"""

from __future__ import annotations

from collections.abc import Iterator

from dulwich.pack import UnpackedObject

_BATCH_BYTES = 64 * 1024


def pack_records(count: int, packed: Iterator[tuple[int, bytes, bytes]]) -> Iterator[PackRecord]:
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
