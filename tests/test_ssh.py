"""Remotes over a real OpenSSH server on 127.0.0.1 (tests/sshserver.py): ssh:// and scp-style."""

from __future__ import annotations

import fcntl
import os
import pathlib
import pty
import signal
import subprocess
import sys
import termios
import time

import pytest
from conftest import assert_clean, assert_one_error_line, git
from gitservers import make_bare
from sshserver import HOST_ALIAS, SSHD, SshServer

import expipe_git

pytestmark = pytest.mark.skipif(not os.path.exists(SSHD), reason="openssh-server is not installed")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = SshServer(tmp_path_factory.mktemp("ssh") / "ssh server")
    yield server
    server.stop()


@pytest.fixture
def shared(sshd, tmp_path, monkeypatch):
    """A new bare repository in a folder with a space; ssh is pointed at the test's server."""
    monkeypatch.setenv("GIT_SSH_COMMAND", sshd.client_command())
    monkeypatch.delenv("GIT_SSH", raising=False)
    return make_bare(tmp_path / "lab share", "project.git")


def urls(sshd: SshServer, bare: pathlib.Path) -> dict[str, str]:
    return {
        "ssh": f"ssh://{HOST_ALIAS}{bare}",
        "ssh-port": f"ssh://{sshd.user}@127.0.0.1:{sshd.port}{bare}",
        "scp": f"{HOST_ALIAS}:{bare}",
    }


def remote_head(bare: pathlib.Path) -> str:
    return git(bare, "rev-parse", "refs/heads/main").strip()


@pytest.mark.parametrize("kind", ["ssh", "ssh-port", "scp"])
def test_push_clone_pull_over_real_ssh(sshd, shared, tmp_path, kind):
    url = urls(sshd, shared)[kind]
    alice = expipe_git.require_project(tmp_path / "alice")
    alice.require_action("rec-1").tags = ["place cell"]
    alice.add_remote("origin", url)
    alice.push()
    assert remote_head(shared) == git(alice.path, "rev-parse", "HEAD").strip()
    bob = expipe_git.clone(url, tmp_path / "bob")
    assert list(bob.actions["rec-1"].tags) == ["place cell"]
    bob.actions["rec-1"].tags.append("novel arena")
    bob.push()
    alice.require_entity("rat1")
    alice.pull()  # a merge: both sides changed
    assert list(alice.actions["rec-1"].tags) == ["place cell", "novel arena"]
    assert "rat1" in alice.entities
    alice.push()
    assert remote_head(shared) == git(alice.path, "rev-parse", "HEAD").strip()
    for project in (alice, bob):
        assert_clean(project.path)
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=shared, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_a_push_the_server_refuses(sshd, shared, tmp_path):
    url = urls(sshd, shared)["scp"]
    alice = expipe_git.require_project(tmp_path / "alice")
    alice.add_remote("origin", url)
    alice.push()
    before = remote_head(shared)
    hook = shared / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: ask the lab manager' >&2\nexit 1\n")
    hook.chmod(0o755)
    alice.require_action("rec-2")
    with pytest.raises(expipe_git.PushRejectedError, match="protected"):
        alice.push()
    assert remote_head(shared) == before


def test_a_wrong_key_is_a_clear_error(sshd, shared, tmp_path, monkeypatch):
    url = urls(sshd, shared)["ssh"]
    alice = expipe_git.require_project(tmp_path / "alice")
    alice.add_remote("origin", url)
    alice.push()
    monkeypatch.setenv("GIT_SSH_COMMAND", sshd.client_command(key=sshd.wrong_key))
    with pytest.raises(expipe_git.RemoteError, match="Permission denied"):
        expipe_git.clone(url, tmp_path / "bob")
    assert not (tmp_path / "bob").exists()
    done = subprocess.run(
        [sys.executable, "-m", "expipe_git", "-C", str(alice.path), "push"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 1
    assert_one_error_line(done.stderr, "could not push", "Permission denied (publickey)")


def test_no_terminal_means_no_prompt_an_unknown_host_fails_at_once(sshd, shared, tmp_path):
    """ssh asks on the controlling terminal; with stdin no terminal, it must not (BatchMode)."""
    url = urls(sshd, shared)["ssh"]
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    env = dict(os.environ, GIT_SSH_COMMAND=sshd.client_command(known_hosts=empty, batch=False))
    leader, follower = pty.openpty()

    def take_terminal() -> None:  # the child's controlling terminal is the pty
        fcntl.ioctl(follower, termios.TIOCSCTTY, 0)

    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "expipe_git", "clone", url, str(tmp_path / "bob")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        preexec_fn=take_terminal,
        pass_fds=(follower,),
    )
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the CLI and the ssh it waits on
        process.communicate()
        pytest.fail("ssh waited for an answer on the terminal")
    finally:
        os.close(follower)
        os.close(leader)
    assert process.returncode == 1
    assert_one_error_line(err, "could not fetch", "Host key verification failed")
    assert time.monotonic() - start < 30
    assert not (tmp_path / "bob").exists()
