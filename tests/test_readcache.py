"""The read cache shared between processes: correct, and never trusted blindly."""

from __future__ import annotations

import datetime as dt
import pathlib
import subprocess
import sys

import quantities as pq

import expipe_git
from expipe_git.git import readcache

READ_ALL = """
import sys, expipe_git
project = expipe_git.get_project(sys.argv[1])
print(sorted((n, tuple(project.actions[n].tags), str(project.actions[n].datetime)) for n in project.actions))
print(project.actions["rec-0"].modules["m"]["depth"])
"""


def read_in_fresh_process(path) -> str:
    return subprocess.run(
        [sys.executable, "-c", READ_ALL, str(path)], capture_output=True, text=True, check=True
    ).stdout


def make_project(path, n=600):
    project = expipe_git.require_project(path)

    def build(snap):
        from expipe_git import layout, values

        changes = {}
        for i in range(n):
            record = {
                "registered": dt.datetime(2020, 1, 1, 12, 0, i % 60, 123456),
                "tags": [f"t{i % 5}", f"n{i}"],
                "datetime": dt.datetime(2021, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            }
            changes[layout.attributes_path("action", f"rec-{i}")] = values.dumps(record, what="x").encode()
        return changes

    project.session.commit_as_is(build, "many actions\n")
    project.actions["rec-0"].require_module(name="m", contents={"depth": 2 * pq.um})
    return project


def test_a_fresh_process_reads_the_same_with_and_without_the_cache(tmp_path):
    project = make_project(tmp_path / "p")
    cache = pathlib.Path(project.path) / ".git" / "expipe-git" / "read-cache"
    first = read_in_fresh_process(project.path)
    assert cache.exists()  # the first reader parsed enough to save
    second = read_in_fresh_process(project.path)
    assert first == second
    assert "('rec-1', ('t1', 'n1'), '2021-01-01 00:00:00+02:00')" in first
    assert first.splitlines()[-1] == "2.0 um"


def test_a_damaged_cache_is_ignored_and_rewritten(tmp_path):
    project = make_project(tmp_path / "p")
    expected = read_in_fresh_process(project.path)
    cache = pathlib.Path(project.path) / ".git" / "expipe-git" / "read-cache"
    for garbage in (b"", b"not marshal at all", b"\x00" * 100):
        cache.write_bytes(garbage)
        assert read_in_fresh_process(project.path) == expected


def test_changes_are_read_even_with_a_cache(tmp_path):
    project = make_project(tmp_path / "p")
    read_in_fresh_process(project.path)
    project.actions["rec-1"].tags = ["changed"]
    assert "('rec-1', ('changed',)" in read_in_fresh_process(project.path)


def test_freeze_and_thaw_round_trip_dates_and_times():
    value = {
        "a": [dt.datetime(2020, 1, 1, 1, 2, 3, 4), dt.date(2020, 2, 2), dt.time(1, 2, 3, 5)],
        "b": {"c": dt.datetime(2020, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30)))},
        "d": [1, 2.5, "x", True, float("inf")],
    }
    assert readcache.thaw(readcache.freeze(value)) == value


def test_a_long_writer_leaves_only_the_latest_state_in_the_cache(tmp_path):
    """Every mutation parses new versions of the big folders; saving keeps what HEAD reaches."""
    import marshal

    path = tmp_path / "lab"
    script = f"""
import expipe_git
project = expipe_git.require_project({str(path)!r})
with project.transaction():
    for i in range(300):
        project.require_action(f"rec-{{i}}").tags = ["a"]
for i in range(300):
    project.actions[f"rec-{{i}}"].tags = ["b"]
print(sorted({{t for n in project.actions for t in project.actions[n].tags}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['b']"
    raw = (path / ".git" / "expipe-git" / "read-cache").read_bytes()
    header, rest = raw.split(b"\n", 1)  # a header line, a 20-byte SHA-1, the marshal data
    cached = marshal.loads(rest[20:])
    head_trees = set(
        subprocess.run(
            ["git", "rev-list", "--objects", "--no-object-names", "HEAD^{tree}"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    )
    assert cached["trees"], "the reads of the last loop are cached"
    assert {sha.decode() for sha in cached["trees"]} <= head_trees
    assert {sha.decode() for sha in cached["records"]} <= head_trees
