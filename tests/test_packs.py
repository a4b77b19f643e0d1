"""The pack reader returns exactly what git stores, for every object of real packs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import zlib

import pytest
import quantities as pq
from conftest import git, project_path

import expipe_git
import expipe_git.git.packs
from expipe_git.git import packing
from expipe_git.git.packs import Packs

TYPES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}


def all_objects(path) -> dict[bytes, tuple[int, bytes]]:
    """Every object of the repository, as ``git cat-file --batch`` prints it."""
    ids = git(path, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
    out = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=path,
        input="\n".join(ids).encode() + b"\n",
        capture_output=True,
        check=True,
    ).stdout
    found, pos = {}, 0
    while pos < len(out):
        header_end = out.index(b"\n", pos)
        sha, kind, size = out[pos:header_end].split()
        start = header_end + 1
        found[sha] = (TYPES[kind.decode()], out[start : start + int(size)])
        pos = start + int(size) + 1
    return found


def history(project, rounds=60):
    for i in range(rounds):
        action = project.require_action(f"rec-{i % 7}")
        action.tags = [f"t{i}", "x" * (i % 13)]
        action.require_module("m", contents={"k": 0})["k"] = i * pq.um
        if i % 5 == 0:
            action.create_message(f"note {i} " + "y" * 3000, user="ana")
    # expipe_git packs loose objects in the background: let it finish before
    # git repacks, so the packs each test finds are git's.
    packing.wait_for_background_packing()


@pytest.mark.parametrize(
    "gc", [["gc", "-q"], ["gc", "-q", "--aggressive"], ["repack", "-q", "-a", "-d", "--depth=50"]]
)
@pytest.mark.parametrize("searches", [0, 10**9], ids=["table-of-ids", "binary-search"])
def test_every_packed_object_reads_as_git_reads_it(project, gc, searches, monkeypatch):
    # Lookups binary-search the pack index first, then use a table of every id.
    monkeypatch.setattr(expipe_git.git.packs, "_SEARCHES_BEFORE_TABLE", searches)
    path = project_path(project)
    history(project)
    git(path, *gc)
    expected = all_objects(path)
    packs = Packs(str(path / ".git" / "objects" / "pack"))
    assert len(expected) > 300
    verified = git(path, "verify-pack", "-v", *map(str, (path / ".git" / "objects" / "pack").glob("*.idx")))
    deltas = [line for line in verified.splitlines() if len(line.split()) == 7]
    assert len(deltas) > 50, "the packs hold deltas, so chains are read"
    for sha, value in expected.items():
        assert packs.get(sha) == value, sha
    for absent in (b"0" * 40, b"f" * 40, hashlib.sha1(b"absent").hexdigest().encode()):
        assert packs.get(absent) is None


def test_a_project_reads_the_same_before_and_after_gc(project):
    path = project_path(project)
    history(project)
    before = {
        n: (list(project.actions[n].tags), project.actions[n].modules["m"]["k"]) for n in project.actions
    }
    log_before = [c.id for c in project.log()]
    git(path, "gc", "-q", "--aggressive")
    fresh = expipe_git.get_project(path)
    assert {
        n: (list(fresh.actions[n].tags), fresh.actions[n].modules["m"]["k"]) for n in fresh.actions
    } == before
    assert [c.id for c in fresh.log()] == log_before
    fresh.actions["rec-1"].tags.append("after gc")  # writes on top of a packed history
    assert git(path, "status", "--porcelain") == ""


def test_packs_made_after_the_first_read_are_found(project):
    path = project_path(project)
    history(project, rounds=10)
    git(path, "gc", "-q")
    packs = Packs(str(path / ".git" / "objects" / "pack"))
    head = git(path, "rev-parse", "HEAD").strip().encode()
    assert packs.get(head) is not None
    history(project, rounds=10)
    git(path, "repack", "-q")  # a second pack, with the new objects
    new_head = git(path, "rev-parse", "HEAD").strip().encode()
    assert packs.get(new_head) == all_objects(path)[new_head]
    assert packs.get(b"0" * 40) is None


def show_index(idx) -> list[tuple[bytes, int, int]]:
    """(binary id, offset, crc) of a pack index, as git reads it."""
    with open(idx, "rb") as f:
        out = subprocess.run(
            ["git", "show-index"], stdin=f, capture_output=True, text=True, check=True
        ).stdout
    rows = []
    for line in out.splitlines():
        offset, sha, crc = line.split()
        rows.append((bytes.fromhex(sha), int(offset), int(crc.strip("()"), 16)))
    return sorted(rows)


@pytest.mark.parametrize("gc", [["gc", "-q"], ["repack", "-q", "-a", "-d", "--depth=50", "-f"]])
def test_indexing_a_pack_agrees_with_git(project, gc):
    from expipe_git.git.packindex import index_pack

    path = project_path(project)
    history(project)
    git(path, *gc)
    (idx,) = (path / ".git" / "objects" / "pack").glob("*.idx")
    indexed = index_pack(str(idx.with_suffix(".pack")), keep=(1, 2))
    assert indexed.entries == show_index(idx)
    assert indexed.external == set()
    expected = all_objects(path)
    assert indexed.kept == {sha: value for sha, value in expected.items() if value[0] in (1, 2)}


def test_indexing_a_thin_pack_names_its_outside_bases(project, tmp_path):
    from expipe_git.git.packindex import index_pack

    path = project_path(project)
    history(project)
    git(path, "gc", "-q")  # deltas against the history the receiver has come from packed objects
    thin = subprocess.run(
        ["git", "pack-objects", "--thin", "--stdout", "--revs", "-q"],
        cwd=path,
        input=b"HEAD\n^HEAD~20\n",
        capture_output=True,
        check=True,
    ).stdout
    pack = tmp_path / "thin.pack"
    pack.write_bytes(thin)
    expected = all_objects(path)

    def outside(hex_id: bytes) -> tuple[int, bytes]:
        return expected[hex_id]

    indexed = index_pack(str(pack), external_base=outside)
    assert indexed.external, "a thin pack deltas against objects it does not hold"
    sent = set(git(path, "rev-list", "--objects", "--no-object-names", "HEAD", "^HEAD~20").split())
    assert {sha.hex() for sha, _, _ in indexed.entries} == sent
    with pytest.raises(ValueError, match="base"):
        index_pack(str(pack))
    damaged = bytearray(thin)
    damaged[len(damaged) // 2] ^= 0xFF
    pack.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="checksum"):
        index_pack(str(pack), external_base=outside)


def write_pack(path, entries: list[bytes]) -> None:
    """A pack file of packed entries (header, base id, zlib data), as git writes one."""
    body = b"PACK" + (2).to_bytes(4, "big") + len(entries).to_bytes(4, "big") + b"".join(entries)
    path.write_bytes(body + hashlib.sha1(body).digest())


@pytest.mark.parametrize("gc", [["gc", "-q", "--aggressive"], ["repack", "-q", "-a", "-d", "--depth=50"]])
def test_stored_entries_make_a_pack_git_accepts(project, gc, tmp_path):
    """Every stored entry, sent on as is, rebuilds every object: deltas resolve within what is sent."""
    path = project_path(project)
    history(project)
    git(path, *gc)
    expected = all_objects(path)
    packs = Packs(str(path / ".git" / "objects" / "pack"))
    stored = {sha: packs.stored(sha) for sha in expected}
    assert all(entry is not None for entry in stored.values())
    assert sum(entry.base is not None for entry in stored.values()) > 50, "deltas are sent as deltas"
    assert all(entry.base in expected for entry in stored.values() if entry.base is not None)
    receiver = tmp_path / "receiver.git"
    git(tmp_path, "init", "-q", "--bare", str(receiver))
    pack = receiver / "objects" / "pack" / "sent.pack"
    write_pack(pack, [entry.packed for entry in stored.values()])
    git(receiver, "index-pack", "--strict", str(pack))
    assert all_objects(receiver) == expected


def test_a_damaged_entry_is_not_sent_on(project):
    path = project_path(project)
    history(project, rounds=10)
    git(path, "gc", "-q")
    (pack,) = (path / ".git" / "objects" / "pack").glob("*.pack")
    head = git(path, "rev-parse", "HEAD").strip().encode()
    assert Packs(str(pack.parent)).stored(head) is not None
    offsets = {sha.hex().encode(): offset for sha, offset, _ in show_index(pack.with_suffix(".idx"))}
    data = bytearray(pack.read_bytes())
    data[offsets[head] + 8] ^= 0xFF  # inside the commit's zlib stream
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(data))
    assert Packs(str(pack.parent)).stored(head) is None


def test_opposite_deltas_in_two_packs_are_sent_on_without_a_cycle(tmp_path):
    """Two packs each hold A and B, deltified opposite ways: both deltas sent would be a loop."""
    from dulwich.pack import create_delta

    from expipe_git.git.packs import object_header

    a = b"first version of a record\n" * 40
    b = a + b"one more line\n"
    ids = {
        name: hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().encode()
        for name, data in (("a", a), ("b", b))
    }

    def whole(data: bytes) -> bytes:
        return object_header(3, len(data)) + zlib.compress(data)

    def delta(target: bytes, base: bytes, base_name: str) -> bytes:
        raw = b"".join(create_delta(base, target))
        return object_header(7, len(raw)) + bytes.fromhex(ids[base_name].decode()) + zlib.compress(raw)

    repo = tmp_path / "repo.git"
    git(tmp_path, "init", "-q", "--bare", str(repo))
    pack_dir = repo / "objects" / "pack"
    write_pack(pack_dir / "pack-1.pack", [whole(a), delta(b, a, "a")])
    write_pack(pack_dir / "pack-2.pack", [whole(b), delta(a, b, "b")])
    for name in ("pack-1.pack", "pack-2.pack"):
        git(repo, "index-pack", str(pack_dir / name))
    packs = Packs(str(pack_dir))
    stored = [packs.stored(ids["a"]), packs.stored(ids["b"])]
    assert [entry.base for entry in stored].count(None) >= 1, "at least one goes whole"
    receiver = tmp_path / "receiver.git"
    git(tmp_path, "init", "-q", "--bare", str(receiver))
    write_pack(receiver / "objects" / "pack" / "sent.pack", [entry.packed for entry in stored])
    git(receiver, "index-pack", "--strict", str(receiver / "objects" / "pack" / "sent.pack"))
    assert all_objects(receiver) == {ids["a"]: (3, a), ids["b"]: (3, b)}


def test_a_thin_pack_whose_deltas_chain_onto_an_outside_base(tmp_path):
    """outside A <- B (in the pack, a delta of A) <- C (a delta of B): git sends such chains."""
    from dulwich.pack import create_delta

    from expipe_git.git.packindex import index_pack
    from expipe_git.git.packs import object_header

    def sha(kind: bytes, data: bytes) -> bytes:
        return hashlib.sha1(b"%s %d\0" % (kind, len(data)) + data).digest()

    a = b"first version of a folder listing, long enough to delta against\n" * 4
    b = a + b"one more entry\n"
    c = b + b"and another\n"

    def ref_delta(base: bytes, target: bytes) -> bytes:
        delta = b"".join(create_delta(base, target))
        return object_header(7, len(delta)) + sha(b"blob", base) + zlib.compress(delta)

    pack = tmp_path / "chain.pack"
    for order in ([ref_delta(b, c), ref_delta(a, b)], [ref_delta(a, b), ref_delta(b, c)]):
        write_pack(pack, order)
        outside = {sha(b"blob", a).hex().encode(): (3, a)}
        indexed = index_pack(str(pack), keep=(3,), external_base=outside.__getitem__)
        assert indexed.external == {sha(b"blob", a)}
        assert {key.decode() for key in indexed.kept} == {sha(b"blob", b).hex(), sha(b"blob", c).hex()}
        with pytest.raises(
            ValueError, match=f"missing.*{sha(b'blob', a).hex()}|{sha(b'blob', a).hex()} is missing"
        ):
            index_pack(str(pack), external_base={}.__getitem__)


def test_a_pack_this_reader_cannot_decode_is_a_logged_counted_fallback(project, caplog):
    """An index version 1 (old git) is not read here: dulwich reads it, and the fallback is seen.

    It used to be silent, so a decoding bug showed only as slowness.
    """
    action = project.require_action("rec")
    action.tags = ["a", "b"]
    path = project_path(project)
    git(path, "repack", "-a", "-d", "-q")
    pack_dir = path / ".git" / "objects" / "pack"
    (pack,) = pack_dir.glob("*.pack")
    index = pack.with_suffix(".idx")
    os.chmod(index, 0o644)
    index.unlink()
    git(path, "index-pack", "--index-version=1", str(pack))
    assert index.read_bytes()[:4] != b"\xfftOc"  # version 1 has no header
    fresh = expipe_git.get_project(path)
    with caplog.at_level("WARNING", logger="expipe_git.git.packs"):
        assert list(fresh.actions["rec"].tags) == ["a", "b"]  # read all the same, by dulwich
    assert fresh.session.repository.objects.packs.fallbacks >= 1
    assert any(
        "cannot be read here" in r.getMessage() and pack.name in r.getMessage() for r in caplog.records
    )
