"""Fault: a damaged read cache (``.git/expipe-git/read-cache``).

The cache holds parsed trees and records by object id, shared between
processes. A flipped bit on disk, a torn copy or an edit must never be served
as a record — and so never committed by the next mutation that reads it. Each
round flips one seeded byte at a seeded offset (header, checksum or data) and
checks what a reader gets, what a mutation then commits, and that the cache
is rebuilt.
"""

from __future__ import annotations

import datetime as dt
import pathlib

from conftest import assert_clean, git
from faultkit import budget, report, rng

import expipe_git
from expipe_git import layout, values
from expipe_git.git import readcache


def _project_with_cache(path: pathlib.Path, actions: int = 600):
    """A project of ``actions`` actions and the read cache a full read leaves."""
    project = expipe_git.require_project(path)

    def build(snap):
        changes = {}
        for i in range(actions):
            record = {
                "registered": dt.datetime(2020, 1, 1, 12, 0, i % 60, 123456),
                "tags": [f"t{i % 5}", f"n{i}"],
            }
            changes[layout.attributes_path("action", f"rec-{i}")] = values.dumps(record, what="x").encode()
        return changes

    project.session.commit_as_is(build, "many actions\n")
    reader = expipe_git.get_project(path)
    expected = {name: list(reader.actions[name].tags) for name in reader.actions}
    reader.session.repository.close()
    cache = path / ".git" / "expipe-git" / "read-cache"
    assert cache.exists()
    return project, expected, cache


def _object_ids(path) -> tuple[list[bytes], list[bytes]]:
    """Return (tree ids, blob ids) HEAD reaches, as git lists them."""
    trees, blobs = [], []
    for line in git(path, "ls-tree", "-r", "-t", "HEAD").splitlines():
        _, kind, sha = line.split("\t", 1)[0].split()
        (trees if kind == "tree" else blobs).append(sha.encode())
    return trees, blobs


def _flip(data: bytes, offset: int, mask: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]


def test_no_flipped_byte_of_the_read_cache_is_ever_served(tmp_path):
    """A cache with one byte changed anywhere serves nothing it did not store."""
    project, _, cache = _project_with_cache(tmp_path / "p")
    clean = cache.read_bytes()
    trees, blobs = _object_ids(project.path)
    truth = readcache.ReadCache(str(cache))
    want_trees = {sha: truth.tree(sha) for sha in trees}
    want_records = {sha: truth.record(sha) for sha in blobs}
    assert sum(v is not None for v in want_records.values()) > 500  # the cache holds the records
    random = rng("read-cache-flips")
    # The header and checksum, then seeded offsets over the whole file.
    offsets = [*range(0, 48, 3), *(random.randrange(len(clean)) for _ in range(budget(400)))]
    served = 0
    for offset in offsets:
        cache.write_bytes(_flip(clean, offset, random.randrange(1, 256)))
        damaged = readcache.ReadCache(str(cache))
        wrong = sum(damaged.tree(sha) not in (None, want) for sha, want in want_trees.items()) + sum(
            damaged.record(sha) not in (None, want) for sha, want in want_records.items()
        )
        served += wrong > 0
    report("read-cache-flips", flips=len(offsets), served_damaged=served)
    assert served == 0


def test_a_damaged_cache_is_neither_served_nor_committed_and_is_rebuilt(tmp_path):
    project, expected, cache = _project_with_cache(tmp_path / "p")
    random = rng("read-cache-rounds")
    rounds = budget(25)
    served = errors = not_rebuilt = 0
    for i in range(rounds):
        clean = cache.read_bytes()
        damaged = _flip(clean, random.randrange(len(clean)), random.randrange(1, 256))
        cache.write_bytes(damaged)
        reader = expipe_git.get_project(project.path)
        name = random.choice(sorted(expected))
        try:
            served += {n: list(reader.actions[n].tags) for n in reader.actions} != expected
            # A mutation reads the record it changes: through the cache, if it were served.
            reader.actions[name].tags.append(f"round-{i}")
            expected[name].append(f"round-{i}")
        except Exception:  # a damaged cache must not break a read either
            errors += 1
        reader.session.repository.close()
        not_rebuilt += cache.read_bytes() == damaged
    cache.unlink()  # what git holds, read without any cache
    fresh = expipe_git.get_project(project.path)
    committed_damaged = sum(list(fresh.actions[n].tags) != tags for n, tags in expected.items())
    report(
        "read-cache-rounds",
        flips=rounds,
        acknowledged=rounds - errors,
        served_damaged=served,
        errors=errors,
        committed_damaged=committed_damaged,
        not_rebuilt=not_rebuilt,
    )
    assert (served, errors, committed_damaged, not_rebuilt) == (0, 0, 0, 0)
    assert_clean(project.path)
