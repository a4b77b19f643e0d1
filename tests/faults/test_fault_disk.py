"""A full disk and a folder we may not write: no lock left behind, no error after landing.

The project lives on a small tmpfs mounted by the test (root only; CI runs
as root), filled to a few pages short of full before each change, so the
change fails at a different step each round. Whatever step fails:

- an error means nothing was committed (else a retry commits twice): once
  the branch has moved, the call returns and a warning names the commit;
- no ``*.lock`` of git's is left, so once space is freed the next change
  works (a lock left by dulwich's full-disk flush used to block it for good).
"""

from __future__ import annotations

import errno
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

import pytest
from conftest import GIT_EMAIL, GIT_NAME, assert_clean, commit_count, git
from faultkit import budget, report, rng, setup_shared, state_at_head

import expipe_git


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)  # a pack file still open


def fill(disk: pathlib.Path, leave: int) -> pathlib.Path:
    """Fill ``disk`` but ``leave`` bytes (rounded to its pages); return the filler to delete."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    try:  # unbuffered: a flush at close would raise ENOSPC outside the write
        with open(filler, "wb", buffering=0) as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    except OSError as exc:  # the disk filled meanwhile (a background packing): it is full, as wanted
        if exc.errno != errno.ENOSPC:
            raise
    return filler


def test_full_disk_leaves_no_lock_and_never_raises_after_landing(small_disk):
    path = small_disk / "project"
    project = expipe_git.require_project(path)
    setup_shared(project, 1)
    random = rng("full_disk")
    shared = project.actions["shared"]
    own = project.actions["own-0"]
    module = shared.modules["shared"]
    rounds = budget(48)
    acks: list[tuple[int, str]] = []
    refused: list[tuple[int, str]] = []
    kept: list[OSError] = []
    failures = landed_but_raised = warned = stuck = 0
    for i in range(rounds):
        head = git(path, "rev-parse", "HEAD").strip()
        # Page by page (tmpfs counts pages), so that the disk fills up at
        # each step of a change in turn: objects, journal, branch, files.
        filler = fill(small_disk, (i % 16) * 4096)
        kind, name = random.randrange(4), f"round{i}"
        if kind == 1:
            name += "-" + "x" * random.randrange(4000, 12000)  # a file of several pages
        items = [(kind, name)] if kind < 3 else [(0, name + "t"), (1, name + "m")]
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if kind == 0:
                    shared.tags.append(name)
                elif kind == 1:
                    own.create_message(name)
                elif kind == 2:
                    module[name] = [float(x) for x in range(random.randrange(1, 200))]
                else:
                    with project.transaction("two changes"):
                        shared.tags.append(name + "t")
                        own.create_message(name + "m")
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
            kept.append(exc)  # as an interactive session keeps the last error (and its frames)
            failures += 1
            refused += items
            if git(path, "rev-parse", "HEAD").strip() != head:
                landed_but_raised += 1
        else:
            acks += items
            warned += any("committed, but" in str(w.message) for w in caught)
        finally:
            filler.unlink()
        git_dir = path / ".git"
        assert not (git_dir / "refs" / "heads" / "main.lock").exists(), f"round {i}"
        assert not (git_dir / "index.lock").exists(), f"round {i}"
        # With space again, the next change works at once.
        try:
            shared.tags.append(f"after{i}")
        except expipe_git.ExpipeError:
            stuck += 1
            raise
    found = state_at_head(path)
    lost = [item for kind, item in acks if item not in found[kind]]
    duplicated_or_ghost = [item for kind, item in refused if item in found[kind]]
    report(
        "full_disk",
        rounds=rounds,
        failures=failures,
        acknowledged=len(acks),
        warned=warned,
        lost=len(lost),
        landed_but_raised=landed_but_raised,
        stuck=stuck,
    )
    assert failures, "the disk was never full enough to fail a change"
    assert not lost
    assert landed_but_raised == 0 and not duplicated_or_ghost
    assert_clean(path)


# ``python -c WRITE path``, run as an unprivileged user: one new message on
# action 'rec', whose folder that user may not write to.
WRITE_AS_USER = textwrap.dedent(
    """
    import sys, warnings
    import expipe_git
    warnings.simplefilter("always")
    action = expipe_git.get_project(sys.argv[1]).actions["rec"]
    action.create_message("landed once")
    print("returned", flush=True)
    """
)


@pytest.fixture
def unprivileged(tmp_path):
    """(folder, run): a folder owned by user nobody, and a runner of Python as nobody.

    Root reads and writes whatever the permission bits say, so the fault is
    made by running the writer as nobody (``setpriv``) on files it owns.
    """
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run a writer as user nobody (CI runs as root)")
    # The tests' own git runs as root on nobody's repository.
    with open(pathlib.Path(os.environ["HOME"]) / ".gitconfig", "a") as config:
        config.write("[safe]\n\tdirectory = *\n")
    folder = pathlib.Path(tempfile.mkdtemp(prefix="expipe-unprivileged-"))
    folder.chmod(0o755)
    home = folder / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[user]\n\tname = {GIT_NAME}\n\temail = {GIT_EMAIL}\n")

    def run(script: str, *args: str) -> subprocess.CompletedProcess:
        subprocess.run(["chown", "-R", "65534:65534", str(folder)], check=True)
        env = {**os.environ, "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        return subprocess.run(
            [*command, sys.executable, "-c", script, *args], capture_output=True, text=True, env=env
        )

    try:
        yield folder, run
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_folder_not_writable_after_commit_is_a_warning_naming_the_commit(unprivileged):
    """The branch moves, then the new message's file cannot be written: the call
    returns with a warning naming the commit (it raised, and a retry stored the
    message twice); the next change, once the folder is writable, finishes it."""
    folder, run = unprivileged
    path = folder / "project"
    project = expipe_git.require_project(path)
    action = project.require_action("rec")
    record_folder = (path / git(path, "ls-files", "actions")).parent
    before = commit_count(path)
    record_folder.chmod(0o555)  # nobody (its owner) may not add a file to it
    done = run(WRITE_AS_USER, str(path))
    assert done.returncode == 0, done.stderr
    assert "returned" in done.stdout
    commit = git(path, "rev-parse", "HEAD").strip()
    assert "committed, but the working tree or git's index could not be updated" in done.stderr
    assert f"saved as commit {commit}" in done.stderr and "do not repeat it" in done.stderr
    assert commit_count(path) == before + 1
    assert [m.text for m in action.messages.values()] == ["landed once"]
    record_folder.chmod(0o755)
    run(
        "import sys, expipe_git; expipe_git.get_project(sys.argv[1]).actions['rec'].tags.append('x')",
        str(path),
    )
    assert [m.text for m in action.messages.values()] == ["landed once"]
    assert_clean(path)


def test_unreadable_object_is_an_error_naming_it(unprivileged):
    """A loose object its reader may not open (mode 000, read as user nobody)."""
    folder, run = unprivileged
    path = folder / "project"
    project = expipe_git.require_project(path)
    project.require_action("rec").tags.append("x")
    rec_file = git(path, "ls-files", "actions").strip()
    blob = git(path, "rev-parse", f"HEAD:{rec_file}").strip()
    (path / ".git" / "expipe-git" / "read-cache").unlink(missing_ok=True)
    script = "import sys, expipe_git; print(list(expipe_git.get_project(sys.argv[1]).actions['rec'].tags))"
    obj = path / ".git" / "objects" / blob[:2] / blob[2:]
    obj.chmod(0)  # chown keeps modes: nobody owns it and may not read it
    done = run(script, str(path))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("expipe_git.errors.CorruptRepositoryError: cannot read git object " + blob), last
    assert "Permission denied" in last and "git fsck" in last
