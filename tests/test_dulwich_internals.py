"""What expipe_git.git.dulwichpack relies on in dulwich's internals, checked on every run.

A dulwich upgrade that changes one of these fails here, with the name of
what changed, instead of corrupting a push. See the module's docstring.
"""

from __future__ import annotations

import io
import subprocess
import zlib

from dulwich.object_format import SHA1
from dulwich.pack import UnpackedObject, write_pack_data

from expipe_git.git.dulwichpack import PackRecord, pack_records
from expipe_git.git.format import object_id
from expipe_git.git.packs import object_header


def test_unpacked_object_has_the_slots_a_pack_record_sets():
    """PackRecord skips UnpackedObject's constructor and sets these five slots itself."""
    slots = set(UnpackedObject.__slots__)
    assert {"pack_type_num", "delta_base", "decomp_chunks", "comp_chunks", "_sha"} <= slots
    record = PackRecord(3, object_id(b"blob", b"x"), [b"bytes"])
    assert record.sha() == bytes.fromhex(object_id(b"blob", b"x").decode())  # sha() reads _sha


def blobs(count: int) -> list[tuple[int, bytes, bytes]]:
    found = []
    for i in range(count):
        content = f"blob {i}\n".encode() * (i % 50 + 1)
        found.append(
            (3, object_id(b"blob", content), object_header(3, len(content)) + zlib.compress(content))
        )
    return found


def test_the_writer_writes_records_bytes_as_they_are_even_batched(tmp_path):
    """write_pack_data writes comp_chunks verbatim; records batched (empty, then many) give the same pack."""
    objects = blobs(3000)  # past one 64 KiB batch
    one_each = io.BytesIO()
    write_pack_data(
        one_each.write, iter([PackRecord(t, s, [d]) for t, s, d in objects]), SHA1, num_records=len(objects)
    )
    batched = io.BytesIO()
    write_pack_data(batched.write, pack_records(len(objects), iter(objects)), SHA1, num_records=len(objects))
    assert batched.getvalue() == one_each.getvalue()
    body = batched.getvalue()[12:-20]  # after the header, before the checksum
    assert body == b"".join(d for _, _, d in objects)
    # and git reads it: every object, by the id we named it with
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "index-pack", "--stdin", "--strict"],
        input=batched.getvalue(),
        check=True,
        capture_output=True,
    )
    listed = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch-check=%(objectname)"],
        capture_output=True,
        check=True,
    ).stdout.split()
    assert sorted(listed) == sorted(s for _, s, _ in objects)
