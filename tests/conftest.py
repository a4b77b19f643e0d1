"""Fixtures: an isolated HOME and git identity, fresh projects, real git checks."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess

import pytest

import expipe_git
from expipe_git.git import packing

GIT_NAME = "Test Researcher"
GIT_EMAIL = "researcher@example.org"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Give every test its own HOME, git identity and working folder."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(f"[user]\n\tname = {GIT_NAME}\n\temail = {GIT_EMAIL}\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    for var in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "EMAIL",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def project(tmp_path):
    return expipe_git.require_project(tmp_path / "project")


def git(path: str | os.PathLike[str], *args: str, check: bool = True) -> str:
    """Run the real git binary in ``path`` and return its stdout."""
    result = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def assert_clean(path: str | os.PathLike[str]) -> None:
    """Stock git must see a clean, valid repository."""
    # A packer process a command started may outlive it: git fsck would race
    # its removal of loose files.
    assert packing.wait_for_packing(os.path.join(path, ".git"), timeout=120)
    assert git(path, "status", "--porcelain") == ""
    fsck = subprocess.run(
        ["git", "fsck", "--strict", "--no-dangling"], cwd=path, capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stderr
    assert "error" not in fsck.stderr.lower() and "warning" not in fsck.stderr.lower(), fsck.stderr


def commit_count(path: str | os.PathLike[str]) -> int:
    return int(git(path, "rev-list", "--count", "HEAD").strip())


@contextlib.contextmanager
def commits(path: str | os.PathLike[str], expected: int = 1):
    """Assert the block makes exactly ``expected`` new commits and leaves git clean."""
    before = commit_count(path)
    yield
    assert commit_count(path) - before == expected
    assert_clean(path)


def project_path(project) -> pathlib.Path:
    return pathlib.Path(project.path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    from expipe_git import cli

    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str):
    """Run the CLI with --json; it must succeed; return the parsed output."""
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def assert_one_error_line(err: str, *fragments: str) -> None:
    """A CLI error is one line naming what went wrong, never a traceback."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("expipe-git: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], err
