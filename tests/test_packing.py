"""A project stays small by itself: loose objects are packed, safely, while others read and write."""

from __future__ import annotations

import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import assert_clean, commit_count, git, run, run_json

import expipe_git
from expipe_git.git import packing, packs, spares


def git_dir(path) -> str:
    return os.path.join(path, ".git")


def counts(path) -> dict[str, int]:
    """``git count-objects -v`` as numbers."""
    out = git(path, "count-objects", "-v")
    return {key: int(value) for key, value in (line.split(": ") for line in out.splitlines())}


def usage(folder) -> tuple[int, int]:
    """(files, bytes) of every file under ``folder``."""
    files = size = 0
    for top, _, names in os.walk(folder):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(top, name))
    return files, size


def longest_delta_chain(path) -> int:
    longest = 0
    for idx in pathlib.Path(git_dir(path), "objects", "pack").glob("*.idx"):
        out = git(path, "verify-pack", "-v", str(idx))
        longest = max([longest, *(int(n) for n in re.findall(r"chain length = (\d+):", out))])
    return longest


def mutate(project, count: int, seed: int, actions: int = 20) -> dict[str, list[str]]:
    """Set the tags of random actions ``count`` times; return what each action holds."""
    rng = random.Random(seed)
    names = [f"rec-{i}" for i in range(actions)]
    for name in names:
        project.require_action(name)
    expected = {}
    for j in range(count):
        name = rng.choice(names)
        expected[name] = [f"tag-{j}", f"seed-{seed}"]
        project.actions[name].tags = expected[name]
    return expected


def test_mutations_keep_git_dir_small_and_valid(tmp_path):
    # With the shipped limit: loose objects stay bounded, .git stays within
    # 1.5x of what git gc leaves and under a few hundred files.
    path = tmp_path / "p"
    project = expipe_git.require_project(path)
    expected = mutate(project, 300, seed=1)
    packing.wait_for_background_packing()
    found = counts(path)
    assert found["count"] < 2 * packing.LOOSE_LIMIT
    assert 1 <= found["packs"] <= 6
    assert found["garbage"] == 0
    assert_clean(path)
    assert longest_delta_chain(path) <= 50
    fresh = expipe_git.get_project(path)
    assert {name: list(fresh.actions[name].tags) for name in expected} == expected
    gc_copy = tmp_path / "gc"
    shutil.copytree(path, gc_copy)
    git(gc_copy, "gc", "-q")
    ours, theirs = usage(git_dir(path)), usage(git_dir(gc_copy))
    assert ours[1] <= 1.5 * theirs[1], (ours, theirs)
    # 256 loose objects by the estimate (from a sample: give it room), what 8
    # writes add between two checks, the packs and the rest of .git.
    assert ours[0] < 450, ours


def test_packing_makes_deltas_of_earlier_versions(tmp_path):
    path = tmp_path / "p"
    project = expipe_git.require_project(path)
    mutate(project, 40, seed=2, actions=3)
    packing.pack_now(git_dir(path), everything=True)
    out = git(
        path, "verify-pack", "-v", *map(str, pathlib.Path(git_dir(path), "objects", "pack").glob("*.idx"))
    )
    deltas = [
        line for line in out.splitlines() if re.match(r"[0-9a-f]{40} (tree|blob) .* [0-9a-f]{40}$", line)
    ]
    assert len(deltas) > 40  # each commit's trees are deltas of the versions before
    assert counts(path)["count"] == 0
    assert_clean(path)


def test_gc_command_packs_everything_into_one(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    mutate(expipe_git.require_project(path), 30, seed=3)
    loose = counts(path)["count"]
    code, out, err = run(capsys, "-C", str(path), "gc")
    assert code == 0, err
    assert out.startswith(f"packed {loose} loose objects; 0 packs before, 1 now; .git/objects: {loose} files")
    assert counts(path)["count"] == 0 and counts(path)["packs"] == 1
    assert_clean(path)
    again = run_json(capsys, "-C", str(path), "gc")
    assert again["loose_packed"] == 0 and again["packs_before"] == again["packs_after"] == 1
    assert again["files_after"] == 2  # the pack and its index


def packed_once(tmp_path, monkeypatch, seed: int):
    """A project (packing left to the test) after 30 mutations and one packing; (path, project)."""
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    project = expipe_git.require_project(path)
    mutate(project, 30, seed=seed)
    packing.pack_now(git_dir(path))
    return path, project


def spare_files(path) -> list[pathlib.Path]:
    folder = pathlib.Path(git_dir(path), "expipe-git", spares.FOLDER)
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.skipif(not spares.ENABLED, reason="spares are made on POSIX systems only")
def test_a_packing_leaves_spare_files_that_the_next_writes_take(tmp_path, monkeypatch):
    # Creating a file is what the packer's removals slow down (ext4 without
    # a journal): the packer makes the next writes' files, they rename one.
    monkeypatch.setattr(packing, "auto", "off")
    old_umask = os.umask(0o002)  # a lab's group-shared project
    try:
        path = tmp_path / "p"
        project = expipe_git.require_project(path)
        expected = mutate(project, 30, seed=24)
        assert spare_files(path) == []  # nothing packed yet: files are created as before
        packing.pack_now(git_dir(path))
        made = spare_files(path)
        assert len(made) == spares.POOL and all(f.stat().st_size == 0 for f in made)
        expected.update(mutate(project, 5, seed=25))
        left = spare_files(path)
        assert set(left) < set(made) and len(made) - len(left) >= 5 * 4  # objects and files of 5 commits
        tracked = [path / name for name in git(path, "ls-files").split()]
        assert {f.stat().st_mode & 0o777 for f in tracked} == {0o664}  # as open() makes them, this umask
        loose = [p for p in pathlib.Path(git_dir(path), "objects").glob("??/*")]
        assert loose and all(p.stat().st_mode & 0o777 == 0o444 for p in loose)
    finally:
        os.umask(old_umask)
    fresh = expipe_git.get_project(path)
    assert {name: list(fresh.actions[name].tags) for name in expected} == expected
    assert_clean(path)
    state = os.listdir(os.path.join(git_dir(path), "expipe-git"))
    assert [name for name in state if name.startswith("write-")] == ["write-mutex"]  # no temporary file


@pytest.mark.skipif(not spares.ENABLED or os.geteuid() != 0, reason="gives spares to another user: root")
def test_a_spare_file_of_another_user_is_left_for_its_owner(tmp_path, monkeypatch):
    path, project = packed_once(tmp_path, monkeypatch, seed=26)
    for spare in spare_files(path):
        os.chown(spare, 12345, 12345)
    before = spare_files(path)
    expected = mutate(project, 3, seed=27)
    assert spare_files(path) == before and all(f.stat().st_uid == 12345 for f in before)
    tracked = [path / name for name in git(path, "ls-files").split()]
    assert {f.stat().st_uid for f in tracked} == {os.geteuid()}
    assert {name: list(expipe_git.get_project(path).actions[name].tags) for name in expected} == expected
    assert_clean(path)


@pytest.mark.skipif(not spares.ENABLED, reason="spares are made on POSIX systems only")
def test_a_held_git_lock_is_never_overwritten_by_a_spare(tmp_path, monkeypatch):
    # git's lock files are made from spares by a hard link, which fails if
    # the lock exists, exactly as the exclusive create did.
    path, project = packed_once(tmp_path, monkeypatch, seed=29)
    head = git(path, "rev-parse", "HEAD")
    lock = pathlib.Path(git_dir(path), "refs", "heads", "main.lock")
    lock.write_text("held by stock git\n")
    before = len(spare_files(path))
    with pytest.raises(expipe_git.ProjectBusyError, match="main.lock is held by another program"):
        project.actions["rec-0"].tags = ["while git holds the branch"]
    assert lock.read_text() == "held by stock git\n"
    assert git(path, "rev-parse", "HEAD") == head
    lock.unlink()
    project.actions["rec-0"].tags = ["after"]
    assert len(spare_files(path)) < before  # the objects, files and locks of one commit took spares
    assert list(expipe_git.get_project(path).actions["rec-0"].tags) == ["after"]
    assert_clean(path)


@pytest.mark.skipif(not spares.ENABLED, reason="spares are made on POSIX systems only")
def test_where_hard_links_are_refused_locks_are_created_as_before(tmp_path, monkeypatch):
    # FAT and some network mounts refuse link(): the spare goes back.
    path, project = packed_once(tmp_path, monkeypatch, seed=30)

    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refused)
    project.actions["rec-0"].tags = ["no links here"]
    monkeypatch.undo()
    state = os.listdir(os.path.join(git_dir(path), "expipe-git"))
    assert not [name for name in state if name.startswith("write-lock-")]
    assert list(expipe_git.get_project(path).actions["rec-0"].tags) == ["no links here"]
    assert_clean(path)


def test_gc_leaves_no_spare_files(tmp_path, capsys, monkeypatch):
    path, _ = packed_once(tmp_path, monkeypatch, seed=28)
    assert len(spare_files(path)) == spares.POOL
    code, _, err = run(capsys, "-C", str(path), "gc")
    assert code == 0, err
    assert spare_files(path) == []
    assert_clean(path)


def test_gc_outside_a_project_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "-C", str(tmp_path), "gc")
    assert code == 1
    assert err.startswith("expipe-git: error: ") and len(err.splitlines()) == 1


def test_small_packs_are_merged_big_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    project = expipe_git.require_project(path)
    sizes = []
    for round_ in range(8):
        mutate(project, 6, seed=10 + round_)
        packing.pack_now(git_dir(path))
        sizes.append(counts(path)["packs"])
    # Each pack is at least twice the size of all smaller ones: few packs.
    assert max(sizes) <= 4, sizes
    assert_clean(path)


def test_a_kept_pack_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    project = expipe_git.require_project(path)
    mutate(project, 5, seed=4)
    packing.pack_now(git_dir(path))
    (kept,) = pathlib.Path(git_dir(path), "objects", "pack").glob("*.pack")
    kept.with_suffix(".keep").write_text("kept by hand\n")
    mutate(project, 5, seed=5)
    packing.pack_now(git_dir(path), everything=True)
    assert kept.exists() and counts(path)["packs"] == 2
    assert_clean(path)


def test_objects_packed_twice_after_a_killed_packing_merge_into_one_copy(tmp_path, monkeypatch):
    # A packer killed after its pack landed and before the loose files went
    # leaves each object twice: the next packing packs them again and the
    # merge keeps one copy of each.
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    mutate(expipe_git.require_project(path), 10, seed=6)
    objects = pathlib.Path(git_dir(path), "objects")
    backup = tmp_path / "loose"
    shutil.copytree(objects, backup, ignore=shutil.ignore_patterns("pack", "info"))
    packing.pack_now(git_dir(path))
    shutil.copytree(backup, objects, dirs_exist_ok=True)
    in_pack = counts(path)["in-pack"]
    packing.pack_now(git_dir(path), everything=True)
    assert counts(path)["count"] == 0 and counts(path)["packs"] == 1
    assert counts(path)["in-pack"] == in_pack
    assert_clean(path)


def test_a_reader_finds_objects_packed_after_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    reader = expipe_git.require_project(path)
    mutate(reader, 5, seed=7)
    packing.pack_now(git_dir(path))  # the reader has packs loaded, and reads loose objects
    assert [list(reader.actions[f"rec-{i}"].tags) for i in range(3)]
    writer = expipe_git.get_project(path)
    expected = mutate(writer, 12, seed=8)
    packing.pack_now(git_dir(path), everything=True)  # the new objects are packed, their files gone
    assert counts(path)["count"] == 0
    assert {name: list(reader.actions[name].tags) for name in expected} == expected


def test_a_pack_renamed_in_within_the_same_folder_time_is_found(tmp_path, monkeypatch):
    # File systems keep a folder's time in ticks of a few ms: a pack renamed
    # in right after a reader listed the folder may leave its time unchanged.
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    mutate(expipe_git.require_project(path), 3, seed=9)
    pack_dir = os.path.join(git_dir(path), "objects", "pack")
    packing.pack_now(git_dir(path))
    reader = packs.Packs(pack_dir)
    head = git(path, "rev-parse", "HEAD").strip().encode()
    assert reader.get(head) is not None
    listed = os.stat(pack_dir).st_mtime_ns
    mutate(expipe_git.get_project(path), 2, seed=10)
    new_head = git(path, "rev-parse", "HEAD").strip().encode()
    packing.pack_now(git_dir(path))
    os.utime(pack_dir, ns=(listed, listed))  # as if in the same tick
    assert reader.get(new_head) is not None


STRESS_WRITER = textwrap.dedent(
    """
    import json, random, sys
    import expipe_git
    path, worker, count, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(seed)
    project = expipe_git.get_project(path)
    for j in range(count):
        name = rng.choice(["shared", "own-" + worker])
        project.actions[name].tags.append(f"w{worker}-{j}")
        print(json.dumps([name, f"w{worker}-{j}"]), flush=True)
    """
)

STRESS_READER = textwrap.dedent(
    """
    import os, sys
    import expipe_git
    path, stop = sys.argv[1], sys.argv[2]
    reads = 0
    seen = {}
    while not os.path.exists(stop) or reads < 3:
        project = expipe_git.get_project(path)  # a fresh handle: nothing cached in memory
        for name in project.actions:
            tags = list(project.actions[name].tags)
            assert set(seen.get(name, [])) <= set(tags), (name, "lost tags")
            seen[name] = tags
        reads += 1
    print(reads)
    """
)

STRESS_PACKER = textwrap.dedent(
    """
    import os, random, sys, time
    from expipe_git.git import packing
    git_dir, stop, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    runs = 0
    while not os.path.exists(stop):
        packing.pack_now(git_dir, everything=rng.random() < 0.3)
        runs += 1
        time.sleep(rng.random() * 0.05)
    print(runs)
    """
)


def test_packing_while_others_write_and_read_loses_nothing(tmp_path):
    seed = int(os.environ.get("EXPIPE_FAULT_SEED", "20261130"))
    path = tmp_path / "p"
    project = expipe_git.require_project(path)
    for name in ("shared", "own-0", "own-1"):
        project.require_action(name)
    stop = tmp_path / "stop"
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent.parent)}

    def start(script: str, *args: str) -> subprocess.Popen:
        command = [sys.executable, "-c", script, *map(str, args)]
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    packer = start(STRESS_PACKER, git_dir(path), stop, seed)
    reader = start(STRESS_READER, path, stop)
    writers = [start(STRESS_WRITER, path, w, 40, seed + w) for w in range(2)]
    acknowledged: dict[str, set[str]] = {}
    try:
        for writer in writers:
            out, err = writer.communicate(timeout=300)
            assert writer.returncode == 0, err
            for line in out.splitlines():
                name, tag = __import__("json").loads(line)
                acknowledged.setdefault(name, set()).add(tag)
    finally:
        stop.write_text("")
    for other in (packer, reader):
        out, err = other.communicate(timeout=300)
        assert other.returncode == 0, err
        assert int(out) >= 1
    packing.wait_for_background_packing()
    fresh = expipe_git.get_project(path)
    for name, tags in acknowledged.items():
        assert tags <= set(fresh.actions[name].tags), name
    assert commit_count(path) == 1 + 3 + 80
    assert_clean(path)


@pytest.mark.parametrize("mode", ["background", "thread", "inline"])
def test_both_ways_of_packing_after_a_write(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(packing, "auto", mode)
    monkeypatch.setattr(packing, "LOOSE_LIMIT", 32)
    path = tmp_path / "p"
    expected = mutate(expipe_git.require_project(path), 30, seed=11)
    deadline = time.monotonic() + 60
    packing.wait_for_background_packing()
    while counts(path)["packs"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counts(path)["packs"] >= 1
    fresh = expipe_git.get_project(path)
    assert {name: list(fresh.actions[name].tags) for name in expected} == expected
    assert_clean(path)


def test_a_reader_forgets_merged_packs_and_reads_from_the_merged_one(tmp_path, monkeypatch):
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    mutate(expipe_git.require_project(path), 3, seed=12)
    pack_dir = pathlib.Path(git_dir(path), "objects", "pack")
    packing.pack_now(git_dir(path))
    first = git(path, "rev-parse", "HEAD").strip().encode()
    reader = packs.Packs(str(pack_dir))
    assert reader.get(first) is not None  # the first pack is loaded
    old = {p.name: p.read_bytes() for p in pack_dir.iterdir()}
    mutate(expipe_git.get_project(path), 3, seed=13)
    packing.pack_now(git_dir(path), everything=True)  # one pack holding both; the first is removed
    for name, data in old.items():  # ... but seen by the reader while it was still there
        (pack_dir / name).write_bytes(data)
    second = git(path, "rev-parse", "HEAD").strip().encode()
    assert reader.get(second) is not None  # loads the merged pack
    for name in old:
        (pack_dir / name).unlink()
    assert reader.get(b"0" * 40) is None  # a miss: the reader looks again and forgets the first pack
    assert reader.get(first) is not None


WRITE_40 = textwrap.dedent(
    """
    import random, sys
    import expipe_git
    from expipe_git.git import packing
    packing.auto = "off"
    project = expipe_git.require_project(sys.argv[1])
    rng = random.Random(int(sys.argv[2]))
    for j in range(40):
        project.require_action(f"rec-{rng.randrange(20)}").tags = [f"tag-{sys.argv[2]}-{j}"]
    """
)


def mapped_removed_packs(path) -> list[str]:
    """Pack files of the project at ``path`` this process has mapped although they were removed (Linux)."""
    pack_dir = os.path.join(git_dir(path), "objects", "pack", "pack-")
    with open("/proc/self/maps") as f:
        return [line.split()[-2] for line in f if pack_dir in line and "(deleted)" in line]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_a_reader_that_looked_up_thousands_of_objects_follows_every_packing(tmp_path, monkeypatch):
    # A long-running writer keeps every packed id in one table (after
    # thousands of lookups; here from the first): each packing adds the new
    # pack and drops the merged ones. No object is read from a wrong cache
    # entry (they were keyed by id(), which a new pack can reuse), and no
    # pack that is gone stays mapped (its disk space would stay taken).
    # The writes run in another process: only this reader maps packs here.
    monkeypatch.setattr(packs, "_SEARCHES_BEFORE_TABLE", 0)
    path = tmp_path / "p"
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent.parent)}
    reader = packs.Packs(str(pathlib.Path(git_dir(path), "objects", "pack")))
    seen: dict[bytes, tuple[int, bytes]] = {}
    for round_ in range(6):
        subprocess.run([sys.executable, "-c", WRITE_40, str(path), str(round_)], env=env, check=True)
        packing.pack_now(git_dir(path), everything=round_ % 3 == 2)
        ids = git(path, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
        assert reader.get(b"0" * 40) is None  # a miss: the reader looks at the pack folder again
        for sha in ids:
            found = reader.get(sha.encode())
            assert found is not None, sha
            assert found == seen.setdefault(sha.encode(), found), sha  # the same, whichever pack holds it
        assert mapped_removed_packs(path) == []
    blob = git(path, "rev-parse", "HEAD:" + git(path, "ls-files").split()[0]).strip()
    assert (
        seen[blob.encode()][1]
        == subprocess.run(["git", "cat-file", "blob", blob], cwd=path, capture_output=True, check=True).stdout
    )
    assert_clean(path)


TRANSACTIONS = textwrap.dedent(
    """
    import random, sys
    import expipe_git
    project = expipe_git.require_project(sys.argv[1])
    with project.transaction("setup"):
        for i in range(60):
            project.require_action(f"rec-{i}")
    rng = random.Random(14)
    for j in range(int(sys.argv[2])):
        with project.transaction(f"session {j}"):
            action = project.actions[f"rec-{rng.randrange(60)}"]
            action.tags = [f"t{j}"]
            action.users = ["rig-A"]
    """
)


def test_the_read_cache_a_process_leaves_stays_small(tmp_path):
    # A process that wrote in transactions parsed every version of the big
    # folders; the cache it leaves holds only the latest.
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent.parent)}
    sizes = []
    for rounds in (100, 300):
        path = tmp_path / f"p{rounds}"
        subprocess.run([sys.executable, "-c", TRANSACTIONS, str(path), str(rounds)], env=env, check=True)
        sizes.append(os.path.getsize(os.path.join(git_dir(path), "expipe-git", "read-cache")))
        assert_clean(path)
    assert sizes[1] < 1.5 * sizes[0], sizes  # three times the writes: not three times the cache
    fresh = expipe_git.get_project(tmp_path / "p300")  # and the cache it left serves reads
    assert sum(len(list(action.tags)) for action in fresh.actions.values()) > 0


MUTATE_AND_EXIT = textwrap.dedent(
    """
    import random, sys
    import expipe_git
    project = expipe_git.require_project(sys.argv[1])
    names = [f"rec-{i}" for i in range(20)]
    for name in names:
        project.require_action(name)
    rng = random.Random(15)
    for j in range(int(sys.argv[2])):
        project.actions[rng.choice(names)].tags = [f"tag-{j}"]
    """
)


def test_a_packer_process_packs_after_the_writing_process_exited(tmp_path):
    # The command line and short scripts: the process that crossed the limit
    # exits at once; its packer goes on, holding the packing lock until done.
    path = tmp_path / "p"
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).parent.parent)}
    subprocess.run([sys.executable, "-c", MUTATE_AND_EXIT, str(path), "150"], env=env, check=True)
    assert packing.wait_for_packing(git_dir(path), timeout=120)
    found = counts(path)
    assert found["packs"] >= 1 and found["garbage"] == 0
    assert found["count"] < 2 * packing.LOOSE_LIMIT, found
    assert usage(git_dir(path))[0] < 450
    assert pathlib.Path(git_dir(path), "expipe-git", "packing.log").read_text() == ""
    assert commit_count(path) == 1 + 20 + 150
    assert_clean(path)


@pytest.mark.skipif(os.name != "posix", reason="a packer process is POSIX only (a thread on Windows)")
def test_a_packer_process_yields_the_cpu_and_the_disk_from_its_start(tmp_path, monkeypatch):
    # Its own start (an interpreter, imports: ~50 ms of CPU) would otherwise
    # compete with the writer's next mutations at full priority.
    monkeypatch.setattr(packing, "auto", "off")
    path = tmp_path / "p"
    mutate(expipe_git.require_project(path), 60, seed=23)
    packer = packing.start_packer(git_dir(path))
    assert packer is not None
    try:
        assert os.getpriority(os.PRIO_PROCESS, packer.pid) == 19
        if sys.platform.startswith("linux") and os.uname().machine == "x86_64":
            import ctypes

            ioprio_get, who_process = 252, 1
            ioprio = ctypes.CDLL(None).syscall(ioprio_get, who_process, packer.pid)
            assert ioprio >> 13 == 3, ioprio  # the idle class
    finally:
        assert packer.wait(timeout=120) == 0
    assert counts(path)["packs"] >= 1
    assert_clean(path)


def test_a_packer_killed_at_any_moment_leaves_nothing_that_breaks_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr(packing, "auto", "off")
    seed = int(os.environ.get("EXPIPE_FAULT_SEED", "20261130"))
    rng = random.Random(seed)
    path = tmp_path / "p"
    expected = mutate(expipe_git.require_project(path), 120, seed=16)
    packing.pack_now(git_dir(path))
    pack_dir = pathlib.Path(git_dir(path), "objects", "pack")
    (first,) = pack_dir.glob("*.pack")
    first_pack = first.read_bytes()  # the packers below may merge it away
    expected.update(mutate(expipe_git.get_project(path), 120, seed=17))
    loose = counts(path)["count"]
    for _ in range(4):
        packer = packing.start_packer(git_dir(path))
        assert packer is not None
        time.sleep(rng.uniform(0.0, 0.5))
        packer.kill()
        packer.wait()
    # As if killed between renaming its pack in and renaming the index in, an hour ago.
    orphan = pack_dir / ("pack-" + "0" * 40 + ".pack")
    orphan.write_bytes(first_pack)
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    report = packing.pack_now(git_dir(path), everything=True)
    assert report is not None and report.packs_after == 1
    found = counts(path)
    # A packer killed between renaming its pack in and its index leaves a
    # pack without index (git renames in the same order): garbage to git,
    # removed once it is an hour old, like the orphan above. Nothing else.
    young = [p for p in pack_dir.glob("*.pack") if not p.with_suffix(".idx").exists()]
    assert orphan not in young
    assert found["count"] == 0 and found["packs"] == 1 and found["garbage"] == len(young), (found, young)
    assert found["in-pack"] >= loose
    assert not [name for name in os.listdir(os.path.join(git_dir(path), "expipe-git")) if "tmp" in name]
    fresh = expipe_git.get_project(path)
    assert {name: list(fresh.actions[name].tags) for name in expected} == expected
    assert_clean(path)
