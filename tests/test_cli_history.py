"""The history commands of expipe-git: log, show COMMIT, diff, blame and revert."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import quantities as pq
from conftest import (
    GIT_NAME,
    assert_clean,
    assert_one_error_line,
    commit_count,
    git,
    project_path,
    run,
    run_json,
)


@pytest.fixture
def rec(project):
    action = project.require_action("rec-1")
    action.tags = ["a"]
    module = action.require_module("tracking", contents={"depth": 2 * pq.um, "probe": {"x": 1}})
    module["depth"] = 3 * pq.um
    project.require_action("rec-2").tags = ["other"]
    return project, action, module


def test_log_shows_key_level_changes_with_units(rec, capsys):
    project, _, _ = rec
    code, out, err = run(capsys, "-C", str(project.path), "log")
    assert code == 0, err
    assert "~ action/rec-1/module/tracking depth: 2.0 um -> 3.0 um" in out
    assert "+ action/rec-1 tags: [a]" in out
    assert GIT_NAME in out
    assert "\033[" not in out  # captured output is no terminal: plain text
    lines = [line for line in out.splitlines() if not line.startswith(" ")]
    short = [line.split()[0] for line in lines]
    assert short == [sha[:7] for sha in git(project.path, "log", "--format=%H").split()]


def test_log_of_an_object(rec, capsys):
    project, _, module = rec
    code, out, _ = run(capsys, "-C", str(project.path), "log", "action/rec-1/module/tracking")
    assert code == 0
    headers = [line for line in out.splitlines() if not line.startswith(" ")]
    expected = git(project.path, "log", "--format=%h", "--", module.file).split()
    assert [h.split()[0] for h in headers] == [e[:7] for e in expected]
    assert "rec-2" not in out and "tags" not in out
    data = run_json(capsys, "-C", str(project.path), "log", "action/rec-1", "--limit", "1")
    assert len(data) == 1
    (change,) = data[0]["changes"]
    assert change == {
        "kind": "modified",
        "path": module.file,
        "object": "action/rec-1/module/tracking",
        "key": ["depth"],
        "old": {"value": 2.0, "unit": "um"},
        "new": {"value": 3.0, "unit": "um"},
    }
    assert data[0]["author"] == GIT_NAME and len(data[0]["id"]) == 40
    assert run_json(capsys, "-C", str(project.path), "log", "--author", "nobody") == []
    assert len(run_json(capsys, "-C", str(project.path), "log", "--since", "yesterday")) == commit_count(
        project.path
    )
    assert run_json(capsys, "-C", str(project.path), "log", "--until", "2000-01-01") == []


def test_show_takes_a_commit_or_an_object(rec, capsys):
    project, _, _ = rec
    code, out, _ = run(capsys, "-C", str(project.path), "show", "HEAD~2")
    assert code == 0
    head1 = git(project.path, "rev-parse", "HEAD~2").strip()
    assert out.startswith(f"commit {head1}\n")
    assert "~ action/rec-1/module/tracking depth: 2.0 um -> 3.0 um" in out
    assert "Expipe-Object: action/rec-1/module/tracking" in out
    data = run_json(capsys, "-C", str(project.path), "show", head1[:8])
    assert data["id"] == head1 and data["changes"][0]["key"] == ["depth"]
    code, out, _ = run(capsys, "-C", str(project.path), "show", "action/rec-1")
    assert code == 0 and out.startswith("action 'rec-1'")
    code, _, err = run(capsys, "-C", str(project.path), "show", "no-such-branch")
    assert code == 1
    assert_one_error_line(err, "unknown revision 'no-such-branch'")


def test_diff(rec, capsys):
    project, _, _ = rec
    code, out, _ = run(capsys, "-C", str(project.path), "diff", "HEAD~3")
    assert code == 0
    assert out.splitlines() == [
        "~ action/rec-1/module/tracking depth: 2.0 um -> 3.0 um",
        "+ action/rec-2: created",
        "    registered: " + project.actions["rec-2"].registered.isoformat(),
        "    tags: [other]",
    ]
    assert run_json(capsys, "-C", str(project.path), "diff", "HEAD", "HEAD") == []
    data = run_json(capsys, "-C", str(project.path), "diff", "HEAD", "HEAD~1")
    assert data[0]["old"] == ["other"] and data[0]["new"] is None
    code, out, _ = run(capsys, "-C", str(project.path), "diff", "HEAD", "HEAD")
    assert code == 0 and out == ""


def test_blame(rec, capsys):
    project, _, module = rec
    code, out, _ = run(capsys, "-C", str(project.path), "blame", "action/rec-1/module/tracking")
    assert code == 0
    depth_commit = git(project.path, "log", "-1", "--format=%h", "--", module.file).strip()
    (depth,) = [line for line in out.splitlines() if "depth:" in line]
    assert depth.startswith(depth_commit[:7]) and depth.endswith("depth: 3.0 um")
    data = run_json(capsys, "-C", str(project.path), "blame", "action/rec-1")
    assert {tuple(row["key"]) for row in data} == {("registered",), ("tags",)}
    code, _, err = run(capsys, "-C", str(project.path), "blame", "action/nope")
    assert code == 1
    assert_one_error_line(err, "does not exist")


def test_revert(rec, capsys):
    project, _, module = rec
    path = project_path(project)
    before = commit_count(path)
    depth_commit = git(path, "rev-parse", "HEAD~2").strip()
    code, out, _ = run(capsys, "-C", str(path), "revert", depth_commit)
    assert code == 0 and out.split()[0] == git(path, "rev-parse", "HEAD").strip()
    assert module["depth"] == 2 * pq.um and commit_count(path) == before + 1
    module["depth"] = 5 * pq.um
    code, _, err = run(capsys, "-C", str(path), "revert", depth_commit)
    assert code == 1
    assert_one_error_line(err, "cannot revert", "depth is now")
    assert commit_count(path) == before + 2
    assert_clean(path)


def test_colour_on_a_terminal_and_never_with_no_color(rec):
    project, _, _ = rec
    import pty

    def on_terminal(env: dict) -> str:
        leader, follower = pty.openpty()
        proc = subprocess.run(
            [sys.executable, "-m", "expipe_git", "-C", str(project.path), "log", "-n", "2"],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert proc.returncode == 0, proc.stderr
        return b"".join(chunks).decode()

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["PAGER"] = "cat"  # colours, not the pager (tests/test_cli_write.py)
    assert "\033[33m" in on_terminal(env)
    assert "\033[" not in on_terminal({**env, "NO_COLOR": "1"})
    piped = subprocess.run(
        [sys.executable, "-m", "expipe_git", "-C", str(project.path), "log"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert piped.returncode == 0 and "\033[" not in piped.stdout
    assert "depth: 2.0 um -> 3.0 um" in piped.stdout


def test_bad_input_is_one_line(rec, capsys):
    project, _, _ = rec
    for argv, fragment in [
        (["log", "--since", "the day after"], "cannot read 'the day after' as a time"),
        (["log", "action/bad:name"], "not allowed"),
        (["diff", "HEAD~99"], "has no"),
        (["show", "HEAD~99"], "has no"),
        (["revert", "nope"], "unknown revision"),
    ]:
        code, _, err = run(capsys, "-C", str(project.path), *argv)
        assert code == 1, argv
        assert_one_error_line(err, fragment)
