"""The commands that write (new, set, tag, message, rm), revisions as times, and the pager."""

from __future__ import annotations

import datetime as dt
import os
import pty
import select
import subprocess
import sys
import time

import pytest
import quantities as pq
from conftest import GIT_NAME, assert_one_error_line, commits, git, project_path, run, run_json

import expipe_git


def cli(capsys, project, *argv: str) -> str:
    """Run a command on ``project`` that must succeed; return its stdout."""
    code, out, err = run(capsys, "-C", str(project.path), *argv)
    assert code == 0, err
    return out


def cli_json(capsys, project, *argv: str):
    return run_json(capsys, "-C", str(project.path), *argv)


def test_new_action_with_every_attribute_is_one_commit(capsys, project):
    with commits(project.path, 1):
        out = cli(
            capsys,
            project,
            "new",
            "action",
            "rec-1",
            "--type",
            "recording",
            "--location",
            "rig-C",
            "--datetime",
            "2026-11-01T14:00",
            "--tag",
            "sleep",
            "--tag",
            "novel arena",
            "--user",
            "Mary",
            "--entity",
            "rat1",
        )
    assert out.split(" ", 1)[1] == "action 'rec-1': create\n"
    assert out.split(" ", 1)[0] == git(project.path, "rev-parse", "--short=7", "HEAD").strip()
    action = project.actions["rec-1"]
    assert (action.type, action.location) == ("recording", "rig-C")
    assert action.datetime == dt.datetime(2026, 11, 1, 14, 0)
    assert list(action.tags) == ["sleep", "novel arena"]
    assert (list(action.users), list(action.entities)) == (["Mary"], ["rat1"])


def test_new_entity_template_and_modules_as_json(capsys, project, tmp_path):
    with commits(project.path, 1):
        made = cli_json(capsys, project, "new", "entity", "rat1", "--type", "subject")
    assert made == {
        "commit": git(project.path, "rev-parse", "HEAD").strip(),
        "subject": "entity 'rat1': create",
        "object": "entity/rat1",
    }
    template_file = tmp_path / "daq.toml"
    template_file.write_text(
        'identifier = "daq"\ngain = { "$type" = "quantity", value = 2.0, unit = "mV" }\nchannels = 4\n'
    )
    with commits(project.path, 1):
        cli(capsys, project, "new", "template", "daq", "--file", str(template_file))
    assert project.templates["daq"]["channels"] == 4
    with commits(project.path, 1):
        made = cli_json(capsys, project, "new", "module", "entity/rat1", "hardware", "--template", "daq")
    assert made["object"] == "entity/rat1/module/hardware"
    assert project.entities["rat1"].modules["hardware"]["gain"] == 2.0 * pq.mV
    with commits(project.path, 1):
        cli(capsys, project, "new", "module", "project", "settings")
    assert project.modules["settings"].contents == {}


def test_new_refuses_what_exists_and_writes_nothing(capsys, project):
    project.require_action("rec-1")
    with commits(project.path, 0):
        code, _, err = run(capsys, "-C", str(project.path), "new", "action", "rec-1", "--tag", "x")
    assert code == 1
    assert_one_error_line(err, "rec-1", "already exists")
    with commits(project.path, 0):  # a bad value is found before the action is created
        code, _, err = run(capsys, "-C", str(project.path), "new", "action", "rec-2", "--datetime", "soon")
    assert code == 1
    assert_one_error_line(err, "datetime", "2026-11-01T14:00")
    assert "rec-2" not in project.actions


def test_set_attributes_and_module_keys_one_commit_per_command(capsys, project):
    action = project.require_action("rec-1")
    action.require_module("ephys", contents={"depth": 1 * pq.mm})
    with commits(project.path, 1):
        out = cli(capsys, project, "set", "action/rec-1", "location=rig-C", "type=recording", "tags=a,b")
    assert "action 'rec-1': set location, type, tags" in out
    assert (action.location, action.type, list(action.tags)) == ("rig-C", "recording", ["a", "b"])
    with commits(project.path, 1):
        cli(
            capsys,
            project,
            "set",
            "action/rec-1/module/ephys",
            "depth=2.9 mm",
            "probe.shank.count=4",
            "ok=true",
        )
    module = action.modules["ephys"]
    assert module["depth"] == 2.9 * pq.mm
    assert module["probe"]["shank"]["count"] == 4 and module["ok"] is True
    with commits(project.path, 0):
        out = cli(capsys, project, "set", "action/rec-1", "location=rig-C")
    assert out == "nothing to change: action/rec-1 is already so\n"


def test_set_errors_say_what_to_type(capsys, project):
    project.require_action("rec-1")
    with commits(project.path, 0):
        code, _, err = run(capsys, "-C", str(project.path), "set", "rec-1", "type=x")
    assert code == 1
    assert_one_error_line(err, "type action/rec-1")
    with commits(project.path, 0):
        code, _, err = run(capsys, "-C", str(project.path), "set", "action/rec-1", "type=x", "depth=3")
    assert_one_error_line(err, "no attribute 'depth'", "new module action/rec-1 NAME")
    code, _, err = run(capsys, "-C", str(project.path), "set", "action/rec-1", "location")
    assert_one_error_line(err, "KEY=VALUE")
    code, _, err = run(capsys, "-C", str(project.path), "set", "action/rec-1", "location=3 nonsenseunit")
    assert_one_error_line(err, "cannot read the value", "must be quoted")
    assert project.actions["rec-1"].type is None


def test_tag_adds_and_removes_in_one_commit(capsys, project):
    action = project.require_action("rec-1")
    action.tags = ["awake", "old"]
    with commits(project.path, 1):
        made = cli_json(capsys, project, "tag", "action/rec-1", "+sleep", "-old", "novel")
    assert made["subject"] == "action 'rec-1': set tags"
    assert list(action.tags) == ["awake", "sleep", "novel"]
    with commits(project.path, 0):
        code, _, err = run(capsys, "-C", str(project.path), "tag", "action/rec-1", "-missing")
    assert code == 1
    assert_one_error_line(err, "no tag 'missing'", "awake, sleep, novel")
    code, _, err = run(capsys, "-C", str(project.path), "tag", "template/x", "+a")
    assert_one_error_line(err, "tags belong to actions and entities")


def test_message_defaults_to_the_commit_author(capsys, project):
    project.require_action("rec-1")
    with commits(project.path, 1):
        made = cli_json(capsys, project, "message", "action/rec-1", "electrode drifted")
    (message,) = project.actions["rec-1"].messages.values()
    assert made["object"] == f"action/rec-1/message/{message.id}"
    assert (message.text, message.user) == ("electrode drifted", GIT_NAME)
    assert git(project.path, "log", "-1", "--format=%an") == GIT_NAME + "\n"
    cli(capsys, project, "message", "action/rec-1", "second", "--user", "Mary")
    assert sorted(m.user for m in project.actions["rec-1"].messages.values()) == sorted([GIT_NAME, "Mary"])


def test_rm_deletes_in_one_commit_and_says_how_to_undo(capsys, project):
    action = project.require_action("rec-1")
    action.require_module("ephys", contents={"a": 1})
    project.require_template("daq", {"gain": 1})
    with commits(project.path, 1):
        out = cli(capsys, project, "rm", "action/rec-1/module/ephys")
    sha = git(project.path, "rev-parse", "--short=7", "HEAD").strip()
    assert out == f"{sha} module 'ephys' of action 'rec-1': delete\nundo with 'expipe-git revert {sha}'\n"
    assert "ephys" not in action.modules
    with commits(project.path, 1):
        cli(capsys, project, "rm", "template/daq")
    with commits(project.path, 1):
        cli(capsys, project, "rm", "action/rec-1")
    assert list(project.actions) == [] and list(project.templates) == []
    entity = project.require_entity("rat1")
    first = entity.create_message("keep me", user="Mary")
    second = entity.create_message("delete me", user="Mary")
    with commits(project.path, 1):
        cli(capsys, project, "rm", f"entity/rat1/message/{second.id}")
    assert list(entity.messages) == [first.id] and entity.messages[first.id].text == "keep me"
    code, _, err = run(capsys, "-C", str(project.path), "rm", "entity/nobody")
    assert code == 1
    assert_one_error_line(err, "entity 'nobody' does not exist", "list entities")


def test_show_an_object_as_it_was_at_a_revision(capsys, project):
    action = project.require_action("rec-1")
    action.location = "rig-A"
    action.location = "rig-B"
    out = cli(capsys, project, "show", "HEAD~1:action/rec-1")
    assert "location: rig-A" in out and "rig-B" not in out
    old = cli_json(capsys, project, "show", "HEAD~2:action/rec-1")
    assert "location" not in old["attributes"]
    code, _, err = run(capsys, "-C", str(project.path), "show", "rec-1")
    assert_one_error_line(err, "type action/rec-1")


def test_times_are_revisions(capsys, project):
    action = project.require_action("rec-1")
    time.sleep(2.2)  # commit times have whole seconds
    action.tags = ["later"]
    assert list(project.at("2 seconds ago").actions["rec-1"].tags) == []
    assert list(project.at("now").actions["rec-1"].tags) == ["later"]
    (change,) = cli_json(capsys, project, "diff", "2 seconds ago")
    assert (change["object"], change["key"], change["new"]) == ("action/rec-1", ["tags"], ["later"])
    with pytest.raises(expipe_git.NotFoundError, match="no commit at or before"):
        project.at("2000-01-01")
    with pytest.raises(expipe_git.NotFoundError, match="'10 minutes ago'"):
        project.at("no-such-branch")


def test_log_oneline_and_log_of_a_path_status_prints(capsys, project):
    action = project.require_action("rec-1")
    action.type = "recording"
    project.require_action("rec-2")
    out = cli(capsys, project, "log", "--oneline")
    lines = out.splitlines()
    assert lines[0].split(" ", 1)[1] == "action 'rec-2': create"
    assert len(lines) == 4 and all(len(line.split(" ", 1)[0]) == 7 for line in lines)
    path = project_path(project) / expipe_git.layout.attributes_path("action", "rec-1")
    path.write_text(path.read_text().replace("recording", "sleep"))
    (edited,) = cli_json(capsys, project, "status")["files"]
    out = cli(capsys, project, "log", "--oneline", edited["path"])
    assert [line.split(" ", 1)[1] for line in out.splitlines()] == [
        "action 'rec-1': set type",
        "action 'rec-1': create",
    ]
    code, _, err = run(capsys, "-C", str(project.path), "log", "notes.txt")
    assert_one_error_line(err, "neither an object address", "status")


def _run_on_terminal(argv: list[str], env: dict[str, str], cwd) -> str:
    """Run the CLI with stdout on a pseudo-terminal; return what reached the terminal."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "expipe_git", *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed: everything was read
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=60)
    os.close(leader)
    assert process.returncode == 0, process.stderr.read()
    return b"".join(chunks).decode()


@pytest.mark.parametrize("variable", ["PAGER", "GIT_PAGER"])
def test_a_pager_only_on_a_terminal(project, tmp_path, variable):
    project.require_action("rec-1")
    marker = tmp_path / "paged"
    pager = tmp_path / "my pager"
    pager.write_text(f"#!/bin/sh\necho paged >> '{marker}'\nexec cat\n")
    pager.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("PAGER", "GIT_PAGER")}
    env[variable] = f"'{pager}'"
    if variable == "GIT_PAGER":
        env["PAGER"] = "false"  # GIT_PAGER wins over PAGER, as in git
    shown = _run_on_terminal(["log", "--oneline"], env, project.path)
    assert "action 'rec-1': create" in shown
    assert marker.read_text() == "paged\n"
    piped = subprocess.run(
        [sys.executable, "-m", "expipe_git", "log", "--oneline"],
        cwd=project.path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "action 'rec-1': create" in piped.stdout
    assert marker.read_text() == "paged\n"  # not run again: stdout was a pipe
    env[variable] = "cat"
    _run_on_terminal(["log"], env, project.path)
    assert marker.read_text() == "paged\n"
