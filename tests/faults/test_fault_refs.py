"""A damaged branch, a garbage ref, a missing object: a clear error at once, never a hang.

Each fault is made by hand in a real repository, as a crash, a bad copy or a
full disk of another program would leave it; reads and writes must then raise
:class:`expipe_git.CorruptRepositoryError` naming the ref or object and
pointing to ``git fsck``, within a second, and change nothing.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import assert_clean, assert_one_error_line, commit_count, git, run

import expipe_git
from expipe_git import CorruptRepositoryError, ProjectBusyError
from expipe_git.git import writer

# ``python -c WRITE path``: one write through a handle opened before the
# damage is done (it goes on when a line on stdin says the damage is in
# place). Prints the error's type and message, or "ok".
WRITE_AFTER_DAMAGE = textwrap.dedent(
    """
    import sys, expipe_git
    project = expipe_git.get_project(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        project.require_action("after-damage")
    except Exception as exc:
        print(type(exc).__name__, exc, flush=True)
    else:
        print("ok", flush=True)
    """
)


def damage_branch(path: pathlib.Path, how: str) -> None:
    branch = path / ".git" / "refs" / "heads" / "main"
    if how == "empty":  # what a full disk left in the past (an editor, a sync tool)
        branch.write_bytes(b"")
    elif how == "garbage":
        branch.write_bytes(b"garbage\n")
    else:  # unreadable even to root: a folder in its place
        branch.unlink()
        branch.mkdir()


def restore_branch(path: pathlib.Path) -> None:
    """Do what the error says: the reflog's last line names the branch's last commit."""
    last = (path / ".git" / "logs" / "refs" / "heads" / "main").read_text().splitlines()[-1]
    branch = path / ".git" / "refs" / "heads" / "main"
    if branch.is_dir():
        branch.rmdir()
    branch.write_text(last.split()[1] + "\n")


@pytest.mark.parametrize("how", ["empty", "garbage", "folder"])
def test_damaged_branch_is_an_error_naming_it_for_reads_and_writes(project, how, capsys):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    action.tags.append("before")
    head = git(path, "rev-parse", "HEAD").strip()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITE_AFTER_DAMAGE, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline() == "ready\n", writer.stderr.read()
        damage_branch(path, how)
        started = time.monotonic()
        # A write through an open handle: it used to spin forever, holding the lock.
        out, err = writer.communicate("go\n", timeout=20)
        took = time.monotonic() - started
    finally:
        if writer.poll() is None:
            writer.kill()
    assert out.startswith("CorruptRepositoryError"), out + err
    assert "refs/heads/main" in out and "git fsck" in out
    assert took < 5  # a second for the write, the rest for a busy machine starting Python
    started = time.monotonic()
    # Reads: an old handle and a new one (they used to show an empty project).
    with pytest.raises(CorruptRepositoryError, match="refs/heads/main") as raised:
        list(action.tags)
    assert raised.value.name == "refs/heads/main"
    with pytest.raises(CorruptRepositoryError, match="refs/heads/main.*git fsck.*logs/refs/heads/main"):
        expipe_git.get_project(path)
    with pytest.raises(CorruptRepositoryError, match="refs/heads/main"):
        action.tags.append("x")
    assert time.monotonic() - started < 1
    assert not (path / ".git" / "refs" / "heads" / "main.lock").exists()
    # The CLI says it in one line.
    code, _, err = run(capsys, "list", "actions", "-C", str(path))
    assert code != 0
    assert_one_error_line(err, "refs/heads/main", "git fsck")

    # The advice works: point the branch back at its commit, and all is well.
    restore_branch(path)
    assert git(path, "rev-parse", "HEAD").strip() == head
    action.tags.append("after")
    assert action.tags == ["before", "after"]
    assert_clean(path)


def test_branch_moved_by_another_program_at_every_attempt_gives_up(project, monkeypatch):
    """Stock git commits between each read of the branch and each swap: the
    mutation is rebuilt a bounded number of times, then says so (it spun forever)."""
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    original = writer.write_commit
    attempts = []

    def write_commit(repo, snap, updates, message, author, **options):
        attempts.append(1)
        if len(attempts) > 200:
            raise AssertionError("the compare-and-swap loop is not bounded")
        git(path, "commit", "-q", "--allow-empty", "-m", f"stock commit {len(attempts)}")
        return original(repo, snap, updates, message, author, **options)

    monkeypatch.setattr(writer, "write_commit", write_commit)
    before = commit_count(path)
    started = time.monotonic()
    with pytest.raises(ProjectBusyError, match="moved .* times.*nothing was changed"):
        action.tags.append("x")
    assert time.monotonic() - started < 30
    assert commit_count(path) == before + len(attempts)  # only the stock commits
    assert list(action.tags) == []
    monkeypatch.undo()
    action.tags.append("x")
    assert list(action.tags) == ["x"]
    assert_clean(path)
    # Our moves of the branch are in its reflog, which git reads.
    assert "commit: action 'rec': add to tags" in git(path, "reflog", "main")


def delete_object(path: pathlib.Path, sha: str) -> None:
    (path / ".git" / "objects" / sha[:2] / sha[2:]).unlink()
    # The shared read cache may hold the parsed record: it is not the object.
    (path / ".git" / "expipe-git" / "read-cache").unlink(missing_ok=True)


def test_missing_object_is_an_error_naming_it_for_reads_and_writes(project, capsys):
    path = pathlib.Path(project.path)
    project.require_action("rec").tags.append("x")
    project.require_action("other")
    attributes = git(path, "ls-tree", "-r", "--name-only", "HEAD", "actions").split()
    rec_file = next(name for name in attributes if "/rec/" in name)
    blob = git(path, "rev-parse", f"HEAD:{rec_file}").strip()
    delete_object(path, blob)
    head = git(path, "rev-parse", "HEAD").strip()

    fresh = expipe_git.get_project(path)
    assert "rec" in fresh.actions  # the tree is there; the record is not
    with pytest.raises(CorruptRepositoryError, match=f"{blob} .* is missing.*git fsck") as raised:
        list(fresh.actions["rec"].tags)
    assert raised.value.name == blob
    assert not isinstance(raised.value, KeyError)  # "not there" and "damaged" must not mix
    with pytest.raises(CorruptRepositoryError, match=blob):
        fresh.actions["rec"].tags.append("y")
    assert git(path, "rev-parse", "HEAD").strip() == head
    code, _, err = run(capsys, "show", "action/rec", "-C", str(path))
    assert code != 0
    assert_one_error_line(err, blob, "git fsck")
    # What does not need the object still works.
    fresh.actions["other"].tags.append("fine")
    assert list(fresh.actions["other"].tags) == ["fine"]


def test_missing_commit_and_garbage_refs_are_errors_naming_them(project):
    path = pathlib.Path(project.path)
    project.require_action("rec").tags.append("x")
    head = git(path, "rev-parse", "HEAD").strip()
    git(path, "tag", "good")
    # A tag holding garbage, and one naming an object nobody has.
    (path / ".git" / "refs" / "tags" / "garbage").write_text("garbage\n")
    (path / ".git" / "refs" / "tags" / "nowhere").write_text("1" * 40 + "\n")
    with pytest.raises(CorruptRepositoryError, match="'garbage' is not a git object id.*git fsck"):
        project.at("garbage")
    with pytest.raises(CorruptRepositoryError, match="1{40} .* is missing"):
        project.at("nowhere")
    assert list(project.at("good").actions["rec"].tags) == ["x"]
    # An older commit gone: the project reads, its history says what is missing.
    older = git(path, "rev-parse", "HEAD~1").strip()
    delete_object(path, older)
    assert list(expipe_git.get_project(path).actions["rec"].tags) == ["x"]
    with pytest.raises(CorruptRepositoryError, match=f"{older} .* is missing.*git fsck"):
        project.session.repository.subjects()
    # The branch's own commit gone (a bad copy of .git/objects).
    delete_object(path, head)
    with pytest.raises(CorruptRepositoryError, match=f"{head} .* is missing.*git fsck"):
        expipe_git.get_project(path)
    with pytest.raises(CorruptRepositoryError, match=head):
        project.require_action("new")
