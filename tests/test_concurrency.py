"""Concurrent writers, killed writers, stale git locks, stock git and the journal.

Every mutation is one commit made under a project-wide flock on top of the
latest commit, so concurrent writers (processes or threads) compose; a writer
killed at any moment leaves a project the next mutation repairs.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import assert_clean, commit_count, commits, git
from faults.faultkit import setup_shared, state_at_head

import expipe_git
from expipe_git import ProjectBusyError, layout
from expipe_git.git import writer

# ---------------------------------------------------------------------------
# Helpers

# A writer process: ``python -c WORKER path worker count go_file``. It makes
# ``count`` mutations of three kinds, cycling: a tag on the shared action, a
# message on its own action, a key of the shared module. It prints each one
# as a JSON line, flushed, once the call has returned (acknowledged).
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import expipe_git
    path, worker, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    project = expipe_git.get_project(path)
    shared = project.actions["shared"]
    own = project.actions["own-" + worker]
    module = shared.modules["shared"]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    for j in range(count):
        kind = j % 3
        if kind == 0:
            item = f"w{worker}-t{j}"
            shared.tags.append(item)
        elif kind == 1:
            item = f"w{worker}-m{j}"
            own.create_message(item)
        else:
            item = f"w{worker}_k{j}"
            module[item] = j
        print(json.dumps([kind, item]), flush=True)
    """
)

# A writer looping forever until killed; ProjectBusyError (a lock left by the
# previous, killed writer) is not an acknowledgement and is retried.
KILLED_WORKER = textwrap.dedent(
    """
    import json, sys, itertools
    import expipe_git
    from expipe_git import ProjectBusyError
    path, run = sys.argv[1], sys.argv[2]
    project = expipe_git.get_project(path)
    shared = project.actions["shared"]
    own = project.actions["own-0"]
    module = shared.modules["shared"]
    print("ready", flush=True)
    for j in itertools.count():
        kind = j % 3
        try:
            if kind == 0:
                item = f"r{run}-t{j}"
                shared.tags.append(item)
            elif kind == 1:
                item = f"r{run}-m{j}"
                own.create_message(item)
            else:
                item = f"r{run}_k{j}"
                module[item] = j
        except ProjectBusyError:
            continue
        print(json.dumps([kind, item]), flush=True)
    """
)


def assert_all_present(path, acknowledged: list[tuple[int, str]]) -> None:
    tags, texts, keys = state_at_head(path)
    found = (tags, texts, keys)
    missing = [(kind, item) for kind, item in acknowledged if item not in found[kind]]
    assert not missing, f"{len(missing)} acknowledged mutations are missing at HEAD: {missing[:10]}"


def parse_acks(stdout: str) -> list[tuple[int, str]]:
    """Acknowledged items: complete JSON lines (a killed writer may leave half a line)."""
    acks = []
    lines = stdout.split("\n")
    for line in lines[:-1]:  # the last piece has no newline: incomplete or empty
        if line and line != "ready":
            kind, item = json.loads(line)
            acks.append((kind, item))
    return acks


def mutate_until_not_busy(action, tag: str, timeout: float = 15.0) -> None:
    """A killed writer may leave a fresh git lock: ProjectBusyError until it is 5 s old."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action.tags.append(tag)
            return
        except ProjectBusyError:
            if time.monotonic() > deadline:
                raise


# ---------------------------------------------------------------------------
# Concurrent writers


def test_processes_writing_at_once_lose_nothing(project, tmp_path):
    workers, count = 4, 50
    path = project.path
    setup_shared(project, workers)
    before = commit_count(path)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(i), str(count), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline() == "ready\n", proc.stderr.read()
        go.touch()  # all start mutating at once
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    acks = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        acks += parse_acks(out)
    assert len(acks) == workers * count

    assert_all_present(path, acks)
    tags, texts, keys = state_at_head(path)
    assert len(tags) == len([a for a in acks if a[0] == 0])
    assert len(texts) == len([a for a in acks if a[0] == 1])
    assert keys == {"start"} | {item for kind, item in acks if kind == 2}
    # Each worker's own tags kept their order (appends compose, never reorder).
    shared_tags = list(project.actions["shared"].tags)
    for i in range(workers):
        mine = [t for t in shared_tags if t.startswith(f"w{i}-")]
        assert mine == sorted(mine, key=lambda t: int(t.split("-t")[1]))
    assert commit_count(path) == before + workers * count
    # History is linear: every commit has exactly one parent.
    assert git(path, "rev-list", "--min-parents=2", "HEAD") == ""
    assert_clean(path)


@pytest.mark.parametrize("handles", ["own", "shared"])
def test_threads_writing_at_once_lose_nothing(project, handles):
    workers, count = 4, 20
    path = project.path
    setup_shared(project, workers)
    before = commit_count(path)
    barrier = threading.Barrier(workers + 1)
    errors: list[BaseException] = []
    acks: list[tuple[int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(i: int) -> None:
        try:
            proj = expipe_git.get_project(path) if handles == "own" else project
            shared = proj.actions["shared"]
            own = proj.actions[f"own-{i}"]
            module = shared.modules["shared"]
            barrier.wait()
            for j in range(count):
                kind = j % 3
                if kind == 0:
                    item = f"w{i}-t{j}"
                    shared.tags.append(item)
                elif kind == 1:
                    item = f"w{i}-m{j}"
                    own.create_message(item)
                else:
                    item = f"w{i}_k{j}"
                    module[item] = j
                with lock:
                    acks.append((kind, item))
        except BaseException as exc:  # noqa: B902 - reported below
            errors.append(exc)

    def reader() -> None:
        # Reads see the latest commit and never go back in time.
        try:
            proj = expipe_git.get_project(path) if handles == "own" else project
            shared = proj.actions["shared"]
            seen = 0
            barrier.wait()
            while not stop.is_set():
                n = len(shared.tags)
                assert n >= seen
                seen = n
        except BaseException as exc:  # noqa: B902
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(workers)]
    read_thread = threading.Thread(target=reader)
    for t in [*threads, read_thread]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    stop.set()
    read_thread.join(timeout=10)
    assert not errors, errors
    assert len(acks) == workers * count
    assert_all_present(path, acks)
    assert commit_count(path) == before + workers * count
    assert_clean(path)


def test_old_handles_read_the_latest_commit(project):
    path = project.path
    action = project.require_action("rec")
    module = action.require_module(name="tracking", contents={"x": 1, "nested": {"y": 1}})
    nested = module["nested"]
    message = action.create_message("first")
    tags = action.tags

    other = expipe_git.get_project(path)
    other.actions["rec"].tags.append("from-other-handle")
    other.actions["rec"].modules["tracking"]["x"] = 2
    assert list(tags) == ["from-other-handle"]
    assert action.tags == ["from-other-handle"]
    assert module["x"] == 2

    # ... and what another process wrote.
    script = textwrap.dedent(
        """
        import sys, expipe_git
        p = expipe_git.get_project(sys.argv[1])
        a = p.actions["rec"]
        a.tags.append("from-process")
        a.modules["tracking"]["nested"]["y"] = 3
        a.messages[sys.argv[2]].text = "edited elsewhere"
        a.type = "recording"
        """
    )
    subprocess.run([sys.executable, "-c", script, str(path), message.id], check=True)
    assert list(tags) == ["from-other-handle", "from-process"]
    assert nested["y"] == 3
    assert module.contents == {"x": 2, "nested": {"y": 3}}
    assert message.text == "edited elsewhere"
    assert action.type == "recording"
    # A write through the old handle applies to the latest commit, keeping both.
    action.tags.append("from-old-handle")
    assert other.actions["rec"].tags == ["from-other-handle", "from-process", "from-old-handle"]
    assert_clean(path)


def test_old_handle_of_a_deleted_action_says_so(project):
    action = project.require_action("rec")
    expipe_git.get_project(project.path).delete_action("rec")
    with pytest.raises(expipe_git.NotFoundError):
        action.tags.append("x")
    with pytest.raises(expipe_git.NotFoundError):
        _ = action.attributes
    assert_clean(project.path)


# ---------------------------------------------------------------------------
# A writer killed at random moments


def test_writer_killed_at_random_moments_loses_no_acknowledged_mutation(project):
    path = project.path
    setup_shared(project, 1)
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    acks: list[tuple[int, str]] = []
    for run in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_WORKER, str(path), str(run)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout.readline() == "ready\n", proc.stderr.read()
            time.sleep(rng.uniform(0.05, 0.5))
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL, err
        acks += parse_acks(out)
    assert acks, f"no writer acknowledged anything (seed {seed})"

    # The project still works: a new mutation succeeds (after a lock left by
    # the last writer, if any, went stale) ...
    shared = expipe_git.get_project(path).actions["shared"]
    mutate_until_not_busy(shared, "after-kill-1")
    # ... and after one more mutation stock git sees a clean, valid repository.
    with commits(path, 1):
        shared.tags.append("after-kill-2")
    assert_all_present(path, acks)
    assert {"after-kill-1", "after-kill-2"} <= set(shared.tags)
    git_dir = pathlib.Path(path) / ".git"
    assert not (git_dir / "expipe-git" / "journal.json").exists()
    assert not (git_dir / "index.lock").exists()
    assert not (git_dir / "refs" / "heads" / "main.lock").exists()


def test_lock_of_a_loose_object_left_by_a_killed_writer_does_not_block_forever(project):
    from expipe_git import values
    from expipe_git.git.worktree import blob_sha

    action = project.require_action("rec")
    record = action.attributes
    record["tags"] = ["x"]
    sha = blob_sha(values.dumps(record, what="action 'rec'").encode()).decode()
    lock = pathlib.Path(project.path) / ".git" / "objects" / sha[:2] / (sha[2:] + ".lock")
    lock.parent.mkdir(exist_ok=True)
    lock.touch()
    old = time.time() - 3600
    os.utime(lock, (old, old))
    action.tags.append("x")  # the blob this writes is the one whose lock was left
    assert action.tags == ["x"]


# ---------------------------------------------------------------------------
# Git's own lock files


def _age(path: pathlib.Path, seconds: float) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


@pytest.mark.parametrize("lock", ["refs/heads/main.lock", "index.lock"])
def test_git_lock_left_by_a_dead_writer_of_ours_is_removed(project, lock):
    action = project.require_action("rec")
    git_dir = pathlib.Path(project.path) / ".git"
    (git_dir / "expipe-git" / "writer").write_text("999999999")  # the marker a killed writer leaves
    lock_file = git_dir / lock
    lock_file.write_text("left by a killed writer\n")
    _age(lock_file, 10)
    started = time.monotonic()
    with commits(project.path, 1):
        action.tags.append("x")
    assert time.monotonic() - started < 1.5
    assert not lock_file.exists()
    assert action.tags == ["x"]


def test_old_branch_lock_of_git_is_not_removed_by_age(project):
    # Without a dead writer of ours, a lock belongs to git, however old:
    # a 'git commit' waiting in an editor holds its locks for minutes.
    action = project.require_action("rec")
    lock_file = pathlib.Path(project.path) / ".git" / "refs" / "heads" / "main.lock"
    lock_file.write_text("held by git\n")
    _age(lock_file, 600)
    with pytest.raises(ProjectBusyError, match="main.lock is held by another program"):
        action.tags.append("x")
    assert lock_file.exists() and action.tags == []


def test_fresh_branch_lock_makes_mutation_raise_busy_and_changes_nothing(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    head = git(path, "rev-parse", "HEAD")
    lock_file = path / ".git" / "refs" / "heads" / "main.lock"
    lock_file.write_text("held by stock git\n")
    started = time.monotonic()
    with pytest.raises(ProjectBusyError):
        action.tags.append("x")
    assert 1.5 < time.monotonic() - started < 10  # it waited, then gave up
    assert lock_file.read_text() == "held by stock git\n"  # someone else's lock is left alone
    assert git(path, "rev-parse", "HEAD") == head
    assert action.tags == []
    lock_file.unlink()
    assert_clean(path)
    with commits(path, 1):
        action.tags.append("x")
    assert action.tags == ["x"]


def test_held_index_lock_defers_the_index_update_but_the_commit_stands(project):
    """The branch moves before the index is written: if git holds the index,
    the mutation warns instead of raising (it did land), and the journal lets
    the next mutation finish the working tree and index."""
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    before = commit_count(path)
    lock_file = path / ".git" / "index.lock"
    lock_file.write_text("held by stock git\n")
    with pytest.warns(UserWarning, match="committed, but git's index was busy"):
        action.tags.append("x")
    assert lock_file.read_text() == "held by stock git\n"
    assert commit_count(path) == before + 1
    assert action.tags == ["x"]
    assert (path / ".git" / "expipe-git" / "journal.json").exists()
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=path, capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stderr
    # While git still holds the index, the next change refuses before it
    # commits: the journal of the last one must be finished first.
    with pytest.raises(ProjectBusyError, match="index.lock"):
        action.tags.append("z")
    assert commit_count(path) == before + 1
    lock_file.unlink()
    with commits(path, 1):
        action.tags.append("y")
    assert action.tags == ["x", "y"]
    assert not (path / ".git" / "expipe-git" / "journal.json").exists()


@pytest.mark.parametrize("lock", ["refs/heads/main.lock", "index.lock"])
def test_mutation_waits_for_a_fresh_lock_released_meanwhile(project, lock):
    action = project.require_action("rec")
    lock_file = pathlib.Path(project.path) / ".git" / lock
    lock_file.write_text("held by stock git for a moment\n")
    releaser = threading.Timer(0.3, lock_file.unlink)
    releaser.start()
    try:
        with commits(project.path, 1):
            action.tags.append("x")
    finally:
        releaser.join()
    assert action.tags == ["x"]


# ---------------------------------------------------------------------------
# Commits made with stock git


def test_stock_git_commits_between_mutations_are_kept(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    module = action.require_module(name="tracking", contents={"x": 1})
    module_file = path / layout.module_path(("action", "rec"), "tracking")

    module_file.write_text('x = 10\ny = "by hand"\n')
    git(path, "commit", "-q", "-am", "hand edit")
    hand = git(path, "rev-parse", "HEAD").strip()
    git(path, "commit", "-q", "--allow-empty", "-m", "empty stock commit")
    empty = git(path, "rev-parse", "HEAD").strip()

    assert module["x"] == 10 and module["y"] == "by hand"  # the API reads it
    with commits(path, 1):
        module["z"] = 3  # and mutates on top of it
    assert module.contents == {"x": 10, "y": "by hand", "z": 3}
    assert git(path, "rev-parse", "HEAD~1").strip() == empty
    assert git(path, "rev-parse", "HEAD~2").strip() == hand
    assert git(path, "log", "--format=%s", "-3").splitlines() == [
        "module 'tracking' of action 'rec': set z",
        "empty stock commit",
        "hand edit",
    ]


def test_stock_git_commit_racing_a_mutation_is_kept(project, monkeypatch):
    """Stock git moves the branch between our read of HEAD and our compare-and-swap:
    the swap fails and the mutation is rebuilt on top of the stock commit."""
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    with open(path / ".gitignore", "a") as f:
        f.write("# stock\n")
    original = writer.write_commit
    raced = []

    def write_commit(repo, snap, updates, message, author, **options):
        if not raced:
            raced.append(True)
            git(path, "commit", "-q", "-am", "stock commit meanwhile")
        return original(repo, snap, updates, message, author, **options)

    monkeypatch.setattr(writer, "write_commit", write_commit)
    with commits(path, 2):
        action.tags.append("x")
    assert git(path, "log", "--format=%s", "-2").splitlines() == [
        "action 'rec': add to tags",
        "stock commit meanwhile",
    ]
    assert git(path, "show", "HEAD:.gitignore").endswith("# stock\n")
    assert action.tags == ["x"]


def test_old_handle_survives_stock_git_gc_and_pack_refs(project):
    """git gc moves every loose object into a pack and the branch into packed-refs."""
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    module = action.require_module(name="tracking", contents={"x": 1})
    action.tags.append("x")
    git(path, "gc", "-q", "--prune=now")
    assert "count: 0" in git(path, "count-objects", "-v")
    assert not (path / ".git" / "refs" / "heads" / "main").exists()
    assert module["x"] == 1
    assert expipe_git.get_project(path).actions["rec"].modules["tracking"]["x"] == 1
    with commits(path, 2):
        module["x"] = 2
        action.tags.append("y")
    assert action.tags == ["x", "y"] and module["x"] == 2


def test_mutation_with_another_branch_checked_out_leaves_that_branch_alone(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    git(path, "checkout", "-q", "-b", "side")
    try:
        action.tags.append("x")
    except expipe_git.ExpipeError:
        pass  # refusing would be fine too
    assert git(path, "status", "--porcelain") == ""


# ---------------------------------------------------------------------------
# The journal: finishing the working tree of a writer that died


# Dies (os._exit: no cleanup runs, as with SIGKILL) at ``where`` during one mutation.
DYING_WRITER = textwrap.dedent(
    """
    import os, sys
    import expipe_git
    from expipe_git.git import index as gitindex
    from expipe_git.git import checkout
    path, where, op = sys.argv[1:4]

    def die(*args, **kwargs):
        os._exit(17)

    if where == "before-worktree":
        checkout.sync_worktree = die
    else:  # after the files are written, before the index is patched
        gitindex.IndexFile.apply = die
    action = expipe_git.get_project(path).actions["rec"]
    if op == "modify":
        action.tags.append("x")
    elif op == "add":
        action.create_message("hello")
    elif op == "delete":
        action.delete_module("old")
    """
)


def run_dying_writer(path, where: str, op: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DYING_WRITER, str(path), where, op], capture_output=True, text=True
    )
    assert proc.returncode == 17, proc.stderr


@pytest.mark.parametrize("where", ["before-worktree", "before-index"])
@pytest.mark.parametrize("op", ["modify", "add", "delete"])
def test_journal_finishes_the_working_tree_of_a_dead_writer(project, where, op):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    action.require_module(name="old", contents={"a": 1})
    before = commit_count(path)
    run_dying_writer(path, where, op)
    journal = path / ".git" / "expipe-git" / "journal.json"
    assert journal.exists()
    assert commit_count(path) == before + 1  # the branch moved ...
    assert git(path, "status", "--porcelain") != ""  # ... the working tree or index did not

    with commits(path, 1):
        project.require_module(name="unrelated", contents={"b": 1})
    assert not journal.exists()
    # Every file of HEAD is in the working tree with HEAD's content.
    for line in git(path, "ls-tree", "-r", "--name-only", "-z", "HEAD").split("\0"):
        if line:
            assert (path / line).read_bytes() == git(path, "show", f"HEAD:{line}").encode()
    if op == "modify":
        assert action.tags == ["x"]
    elif op == "add":
        assert [m.text for m in action.messages.values()] == ["hello"]
        assert len(list((path / layout.messages_dir("action", "rec")).iterdir())) == 1
    else:
        assert "old" not in action.modules
        assert not (path / layout.module_path(("action", "rec"), "old")).exists()


def test_journal_recovery_does_not_overwrite_a_hand_edit(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    attributes = path / layout.attributes_path("action", "rec")
    run_dying_writer(path, "before-worktree", "modify")
    # Meanwhile a person edits the very file the dead writer had not yet updated.
    hand = attributes.read_text() + 'location = "edited by hand"\n'
    attributes.write_text(hand)

    project.require_module(name="unrelated", contents={"b": 1})
    assert attributes.read_text() == hand  # recovery left the person's edit alone
    assert not (path / ".git" / "expipe-git" / "journal.json").exists()
    assert action.tags == ["x"]  # HEAD has the dead writer's commit
    assert [s.path for s in project.status()] == [layout.attributes_path("action", "rec")]
    with pytest.raises(expipe_git.UncommittedChangesError):
        action.tags.append("y")
    # Committing the hand edit (on top of the dead writer's commit) makes all clean.
    project.commit("location by hand")
    assert action.location == "edited by hand"
    assert action.tags == []  # the hand edit was made to the file without the tag
    assert_clean(path)


def test_journal_that_does_not_match_head_is_discarded(project):
    """A writer that died before moving the branch: the journal names a commit
    HEAD is not at, so nothing is touched."""
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    journal = path / ".git" / "expipe-git" / "journal.json"
    attributes = layout.attributes_path("action", "rec")
    journal.write_text(json.dumps({"old": None, "new": "0" * 40, "paths": {attributes: [None, "1" * 40]}}))
    with commits(path, 1):
        action.tags.append("x")
    assert not journal.exists()


def test_corrupt_journal_is_discarded(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    journal = path / ".git" / "expipe-git" / "journal.json"
    journal.write_text('{"old": "half a jour')
    with commits(path, 1):
        action.tags.append("x")
    assert not journal.exists()
