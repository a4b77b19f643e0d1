"""Fault suite: pushes and pulls killed (SIGKILL) at random moments, and at the worst one.

A push to a folder remote writes into the shared repository from the pushing
process itself; a killed pusher must never block the others (nor itself),
and no error may send the user the wrong way. A killed pull must leave a
project that pulls and pushes again. Every push that returned (acknowledged)
must be in the shared history at the end, which ``git fsck`` finds clean.

The worst moments are hit exactly: the child process SIGKILLs itself while
it holds a git lock file (``refs/heads/main.lock`` in the remote,
``refs/remotes/origin/main.lock`` in the project), written and not yet
renamed; the random moments come from a seeded generator (faultkit).
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from conftest import assert_clean, git
from faultkit import budget, report, rng
from gitservers import GitDaemon, make_bare

import expipe_git

ROOT = pathlib.Path(__file__).resolve().parents[2]

# A child that pushes, or pulls, in a loop; "ack <commit>" after each push that returned.
# With DIE_AT set it SIGKILLs itself when dulwich is about to move a lock file ending so.
CHILD = r"""
import os, signal, sys
die_at = os.environ.get("DIE_AT")
if die_at:
    from dulwich import file as dulwich_file
    close = dulwich_file._GitFile.close
    def dying_close(self):
        name = os.fsdecode(self._lockfilename)
        if name.endswith(die_at):
            os.kill(os.getpid(), signal.SIGKILL)
        return close(self)
    dulwich_file._GitFile.close = dying_close
import expipe_git
project = expipe_git.require_project(sys.argv[1])
what, name = sys.argv[2], sys.argv[3]
print("ready", flush=True)
for i in range(int(sys.argv[4])):
    if what == "push":
        project.require_action(f"{name}-{i}").tags = [name]
        try:
            pushed = project.push()
        except expipe_git.PushRejectedError as exc:
            print("rejected", str(exc).replace("\n", " "), flush=True)
            project.pull()
            continue
        print("ack", pushed, flush=True)
    else:  # a commit of our own, then a pull: a fetch, a merge commit, a checkout
        project.require_action(f"{name}-{i}").tags = [name]
        project.pull()
        print("pulled", flush=True)
"""


def child(
    project: pathlib.Path, what: str, name: str, rounds: int, die_at: str | None = None
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if die_at:
        env["DIE_AT"] = die_at
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(project), what, name, str(rounds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def shared(
    tmp_path: pathlib.Path, url: str | None = None
) -> tuple[pathlib.Path, expipe_git.Project, expipe_git.Project]:
    """A shared repository ``lab.git`` in ``tmp_path`` (reached at ``url``), and two clones of it."""
    bare = make_bare(tmp_path, "lab.git")
    alice = expipe_git.require_project(tmp_path / "alice")
    alice.require_action("rec-0").tags = ["start"]
    alice.add_remote("origin", url or str(bare))
    alice.push()
    bob = expipe_git.clone(url or str(bare), tmp_path / "bob")
    return bare, alice, bob


def push_again(project: expipe_git.Project, name: str) -> str:
    """A push from ``project`` after a pull: it must work, with no error on the way.

    Over git:// a killed pusher's push may still land a moment later (git's
    server outlives its client): "pull first" is then right, and followed.
    """
    project.require_action(name).tags = ["after"]
    for attempt in range(3):
        project.pull()
        try:
            pushed = project.push()
        except expipe_git.PushRejectedError as exc:
            if "pull first" not in str(exc) or attempt == 2:
                raise
            continue
        assert pushed is not None
        return pushed
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    "die_at",
    [
        os.path.join("lab.git", "refs", "heads", "main.lock"),
        os.path.join(".git", "refs", "remotes", "origin", "main.lock"),
    ],
    ids=["remote main.lock", "own origin/main.lock"],
)
def test_a_push_killed_holding_a_lock_blocks_nobody(tmp_path, die_at):
    bare, alice, bob = shared(tmp_path)
    alice.require_action("rec-1").tags = ["before the kill"]
    proc = child(pathlib.Path(alice.path), "push", "killed", 1, die_at=die_at)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert list(pathlib.Path(tmp_path).rglob("main.lock")), "the child died before it held the lock"

    started = time.monotonic()
    push_again(bob, "rec-bob")  # another clone
    push_again(alice, "rec-alice")  # and the one that was killed
    assert time.monotonic() - started < 30
    assert not list(pathlib.Path(tmp_path).rglob("main.lock"))
    for project in (alice, bob):
        project.pull()
        assert {"rec-0", "rec-bob", "rec-alice"} <= set(project.actions)
        assert_clean(project.path)
    git(bare, "fsck", "--strict", "--no-dangling")


def test_a_live_git_lock_in_the_remote_is_never_broken(tmp_path):
    bare, alice, bob = shared(tmp_path)
    lock = bare / "refs" / "heads" / "main.lock"
    lock.write_text("")  # as a git push that is running holds it
    alice.require_action("rec-1")
    with pytest.raises(expipe_git.PushRejectedError) as caught:
        alice.push()
    said = str(caught.value)
    assert "main.lock" in said and "pull" not in said
    assert lock.exists()
    lock.unlink()
    assert alice.push() is not None


def test_a_git_lock_taken_just_after_a_dead_pusher_is_kept(tmp_path):
    """A dead pusher's record names main.lock, but the main.lock there now is a live git's: it stays."""
    import threading

    bare, alice, bob = shared(tmp_path)
    lock = bare / "refs" / "heads" / "main.lock"
    (bare / "expipe-git-push").write_text("999999\nrefs/heads/main.lock\n")  # what a killed pusher leaves
    lock.write_text("")  # a git push that took the lock a moment ago
    seen = []

    def git_finishes() -> None:
        time.sleep(0.5)
        seen.append(lock.exists())
        lock.unlink()

    finisher = threading.Thread(target=git_finishes)
    finisher.start()
    alice.require_action("rec-1")
    assert alice.push() is not None
    finisher.join()
    assert seen == [True]
    assert (bare / "expipe-git-push").read_text() == ""


def test_a_planted_record_in_the_shared_repository_removes_nothing_else(tmp_path):
    """The push mutex of a folder remote is writable by all who push: it may name only ref locks."""
    bare, alice, bob = shared(tmp_path)
    victim = tmp_path / "thesis.lock"
    victim.write_text("years of work")
    os.utime(victim, (0, 0))
    inside = bare / "config"
    planted = [str(victim), "../thesis.lock", "refs/../config", "config", str(inside)]
    (bare / "expipe-git-push").write_text("\n".join(["999999", *planted]) + "\n")
    alice.require_action("rec-1")
    assert alice.push() is not None
    assert victim.read_text() == "years of work" and inside.exists()


def reaches(bare: pathlib.Path, tip: str, commit: str) -> bool:
    done = subprocess.run(["git", "merge-base", "--is-ancestor", commit, tip], cwd=bare, capture_output=True)
    return done.returncode == 0


def _kill_loop(tmp_path: pathlib.Path, what: str, rounds: int, name: str, url: str | None = None) -> dict:
    """Start a pushing (or pulling) child, kill it at a random moment, then push from elsewhere; repeat."""
    random = rng(name)
    bare, alice, bob = shared(tmp_path, url)
    acknowledged: list[str] = []
    spurious: list[str] = []
    kills = 0
    # A pull's one run lasts a moment that depends on the machine: kill within the
    # last run measured to end by itself (a push child runs until killed).
    window = 1.2 if what == "push" else 0.6
    for round_ in range(rounds):
        if what == "pull":
            push_again(alice, f"alice-{round_}")  # something new to pull
        proc = child(pathlib.Path(bob.path), what, f"bob{round_}", 50 if what == "push" else 1)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
        ready = time.monotonic()
        time.sleep(random.uniform(0.0, window))
        if proc.poll() is not None:
            window = max(0.05, 0.9 * (time.monotonic() - ready))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        kills += proc.returncode == -signal.SIGKILL
        for line in out.splitlines():
            if line.startswith("ack "):
                acknowledged.append(line.split()[1])
            elif line.startswith("rejected") and "pull first" not in line:
                spurious.append(line)
        if err.strip() and proc.returncode != -signal.SIGKILL:
            spurious.append(err.strip().splitlines()[-1])
        try:  # after every kill: the others push, and so does the killed project
            acknowledged.append(push_again(alice, f"alice-after-{round_}"))
            acknowledged.append(push_again(bob, f"bob-after-{round_}"))
        except Exception as exc:  # any error here is one the user should not have seen
            spurious.append(f"{type(exc).__name__}: {exc}")
    final = git(bare, "rev-parse", "refs/heads/main").strip()
    lost = [sha for sha in acknowledged if not reaches(bare, final, sha)]
    git(bare, "fsck", "--strict", "--no-dangling")
    for project in (alice, bob):
        try:
            project.pull()
        except Exception as exc:
            spurious.append(f"{type(exc).__name__}: {exc}")
        assert_clean(project.path)
    figures = {
        "kills": kills,
        "acknowledged": len(acknowledged),
        "lost": len(lost),
        "spurious": len(spurious),
    }
    report(name, **figures)
    assert not lost and not spurious, (figures, spurious[:5])
    return figures


def test_pushes_killed_at_random_moments(tmp_path):
    _kill_loop(tmp_path, "push", budget(12), "kill loop: push to a folder remote")


def test_pushes_over_git_daemon_killed_at_random_moments(tmp_path):
    daemon = GitDaemon(tmp_path)
    try:
        _kill_loop(tmp_path, "push", budget(6), "kill loop: push over git://", daemon.url("lab.git"))
    finally:
        daemon.stop()


def test_pulls_killed_at_random_moments(tmp_path):
    _kill_loop(tmp_path, "pull", budget(8), "kill loop: pull from a folder remote")
