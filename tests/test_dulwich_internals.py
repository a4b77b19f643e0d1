"""What expipe_git.git.dulwichpack relies on in dulwich's internals, checked on every run.

A dulwich upgrade that changes one of these fails here, with the name of
what changed; a push then takes dulwich's public API (the module checks the
same at its first use), which the last tests force and check with git.
See the module's docstring.
"""

from __future__ import annotations

import io
import logging
import pathlib
import subprocess
import zlib

import pytest
from conftest import git
from dulwich.object_format import SHA1
from dulwich.pack import UnpackedObject, write_pack_data
from gitservers import GitDaemon, make_bare

import expipe_git
from expipe_git.git import dulwichpack
from expipe_git.git.dulwichpack import RELIED_ON_SLOTS, PackRecord, pack_records
from expipe_git.git.format import object_id
from expipe_git.git.packs import object_header


def test_unpacked_object_has_the_slots_a_pack_record_sets():
    """PackRecord skips UnpackedObject's constructor and sets these five slots itself."""
    slots = set(UnpackedObject.__slots__)
    assert {"pack_type_num", "delta_base", "decomp_chunks", "comp_chunks", "_sha"} == RELIED_ON_SLOTS
    assert RELIED_ON_SLOTS <= slots
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


def test_the_check_at_first_use_finds_the_installed_dulwich_as_relied_on():
    """The same points, as dulwichpack checks them before a push: all hold, so pushes take the fast way."""
    assert dulwichpack.internals_problem() is None


@pytest.fixture
def push_through_public_api(monkeypatch, caplog):
    """Pushes as they go when dulwich is not as relied on (a newer dulwich cannot be installed here)."""
    monkeypatch.setattr(dulwichpack, "internals_problem", lambda: "comp_chunks are not written as they are")
    caplog.set_level(logging.WARNING, logger="expipe_git.git.dulwichpack")
    return caplog


@pytest.mark.parametrize("kind", ["folder", "git"])
def test_a_push_through_dulwichs_public_api_is_one_git_accepts(tmp_path, push_through_public_api, kind):
    served = tmp_path / "served"
    served.mkdir()
    bare = make_bare(served, "lab.git")
    daemon = GitDaemon(served) if kind == "git" else None
    try:
        project = expipe_git.require_project(tmp_path / "alice")
        for i in range(30):  # big enough folders that trees go as deltas of their previous version
            project.require_action(f"rec-{i:02d}").tags = [f"t{i}"]
        git(project.path, "gc", "-q")  # some objects packed (sent as the pack stores them, deltas too) ...
        for i in range(5):
            project.actions["rec-01"].tags.append(f"later {i}")  # ... and some loose
        project.add_remote("origin", str(bare) if daemon is None else daemon.url("lab.git"))
        before = dulwichpack.fallbacks
        project.push()
        assert dulwichpack.fallbacks == before + 1
        (warning,) = [r for r in push_through_public_api.records if r.name == "expipe_git.git.dulwichpack"]
        assert "dulwich 1." in warning.getMessage() and "public API" in warning.getMessage()
        fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bare, capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert git(bare, "rev-parse", "main").strip() == git(project.path, "rev-parse", "HEAD").strip()
        clone = expipe_git.clone(str(bare), tmp_path / "bob")
        assert list(clone.actions["rec-01"].tags) == ["t1", *(f"later {i}" for i in range(5))]
        assert pathlib.Path(clone.path, "expipe.toml").exists()
    finally:
        if daemon is not None:
            daemon.stop()
