"""Tests of the expipe-git command line, in-process and through ``python -m expipe_git``."""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
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

import expipe_git
from expipe_git import cli, layout
from expipe_git.cli import reading
from expipe_git.cli.maintenance import history_lines
from expipe_git.errors import NotFoundError


def run_sub(*argv: str, cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "expipe_git", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture
def rec(project):
    """An action with attributes, a Quantity module and a message."""
    action = project.require_action("rec-1")
    action.tags = ["place cell", "familiar environment"]
    action.type = "Recording"
    action.datetime = dt.datetime(2024, 3, 1, 10, 30, 5)
    action.users = ["Peter"]
    action.require_module(
        "electrophysiology",
        contents={
            "depth": 2 * pq.um,
            "gains": [1.5, 2.5] * pq.mV,
            "trace": np.array([1.0, np.nan, np.inf]),
            "channels": {0: "left", 1: "right"},
            "probe": {"name": "tetrode", "count": 4},
            "missing": None,
        },
    )
    action.create_message("first note\nsecond line", user="Mary", datetime=dt.datetime(2024, 3, 1, 11, 0))
    return action


# ---------------------------------------------------------------------------
# --version, usage, the real entry point


def test_version_in_process(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"expipe-git {expipe_git.__version__}"


def test_version_through_python_m():
    result = run_sub("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"expipe-git {expipe_git.__version__}"


def test_no_command_is_a_usage_error(capsys):
    code, out, err = run(capsys)
    assert code == 2
    assert "usage: expipe-git" in err
    assert "Traceback" not in err


def test_help_exits_zero(capsys):
    code, out, _ = run(capsys, "show", "--help")
    assert code == 0
    assert "action/rec-1/module/tracking" in out
    assert '"NaN"' in out  # the JSON conventions are documented


# ---------------------------------------------------------------------------
# init


def test_init_creates_a_clean_git_repository(tmp_path, capsys):
    target = tmp_path / "exp"
    code, out, err = run(capsys, "init", str(target), "--name", "my-experiment")
    assert code == 0, err
    assert str(target) in out
    assert (target / "expipe.toml").is_file()
    assert_clean(target)
    assert commit_count(target) == 1
    assert expipe_git.get_project(target).id == "my-experiment"
    assert git(target, "log", "-1", "--format=%an").strip() == GIT_NAME


def test_init_without_path_uses_the_current_folder(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "here"
    folder.mkdir()
    monkeypatch.chdir(folder)
    code, out, err = run(capsys, "create")  # the alias
    assert code == 0, err
    assert expipe_git.get_project(folder).id == "here"
    assert_clean(folder)


def test_init_path_is_relative_to_dash_c(tmp_path, capsys):
    code, _, err = run(capsys, "-C", str(tmp_path), "init", "sub")
    assert code == 0, err
    assert (tmp_path / "sub" / "expipe.toml").is_file()


def test_init_refuses_an_existing_project(project, capsys):
    before = commit_count(project.path)
    code, out, err = run(capsys, "init", str(project.path))
    assert code == 1
    assert_one_error_line(err, "already an expipe_git project")
    assert commit_count(project.path) == before


def test_init_refuses_a_non_empty_folder(tmp_path, capsys):
    folder = tmp_path / "full"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "init", str(folder))
    assert code == 1
    assert_one_error_line(err, "not empty")
    assert not (folder / ".git").exists()


def test_init_inside_a_project_is_refused(project, capsys):
    code, _, err = run(capsys, "init", str(project.path / "inner"))
    assert code == 1
    assert_one_error_line(err, "inside the project")


def test_init_with_a_bad_name_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "init", str(tmp_path / "x"), "--name", "a/b")
    assert code == 1
    assert_one_error_line(err, "not allowed")


# ---------------------------------------------------------------------------
# finding the project


def test_no_project_here_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "status")
    assert code == 1
    assert out == ""
    assert_one_error_line(err, "no expipe_git project", "expipe-git init", "-C")


def test_project_is_found_from_a_subfolder(rec, capsys, monkeypatch):
    sub = project_path(rec.project) / "actions"
    monkeypatch.chdir(sub)
    code, out, err = run(capsys, "list", "actions")
    assert code == 0, err
    assert out.startswith("rec-1 ")


def test_dash_c_may_follow_the_command(rec, capsys):
    code, out, err = run(capsys, "list", "actions", "-C", str(rec.project.path))
    assert code == 0, err
    assert "rec-1" in out


def test_dash_c_missing_folder(tmp_path, capsys):
    code, _, err = run(capsys, "-C", str(tmp_path / "nowhere"), "status")
    assert code == 1
    assert_one_error_line(err, "does not exist")


# ---------------------------------------------------------------------------
# status and commit


def test_status_commit_round_trip(rec, capsys):
    project = rec.project
    root = project_path(project)
    code, out, _ = run(capsys, "-C", str(root), "status")
    assert code == 0
    assert "clean" in out

    path = layout.attributes_path("action", "rec-1")
    with open(root / path, "a", encoding="utf-8") as f:
        f.write('location = "room 2"\n')
    code, out, _ = run(capsys, "-C", str(root), "status")
    assert code == 0
    assert out.splitlines() == [f"M {path}"]
    assert run_json(capsys, "-C", str(root), "status") == {
        "files": [{"path": path, "state": "modified"}],
        "merge": {"stopped": False},
    }

    before = commit_count(root)
    code, out, err = run(capsys, "-C", str(root), "commit", "-m", "Set the room by hand")
    assert code == 0, err
    assert out.strip() == git(root, "rev-parse", "HEAD").strip()
    assert commit_count(root) == before + 1
    assert git(root, "log", "-1", "--format=%s").strip() == "Set the room by hand"
    assert_clean(root)
    code, out, _ = run(capsys, "-C", str(root), "status")
    assert "clean" in out
    assert rec.location == "room 2"


def test_status_lists_added_and_deleted(rec, capsys):
    root = project_path(rec.project)
    (root / "modules").mkdir()
    (root / "modules" / "depth.toml").write_text("value = 3\n")
    (root / layout.module_path(("action", "rec-1"), "electrophysiology")).unlink()
    code, out, _ = run(capsys, "-C", str(root), "status")
    assert code == 0
    assert sorted(out.splitlines()) == sorted(
        [
            "A modules/depth.toml",
            f"D {layout.module_path(('action', 'rec-1'), 'electrophysiology')}",
        ]
    )
    code, out, err = run(capsys, "-C", str(root), "commit", "-m", "Move depth", "-m", "A second paragraph.")
    assert code == 0, err
    assert git(root, "log", "-1", "--format=%B").startswith("Move depth\n\nA second paragraph.\n")
    assert_clean(root)
    assert list(rec.modules) == []
    assert rec.project.modules["depth"]["value"] == 3


def test_commit_with_nothing_to_commit(project, capsys):
    before = commit_count(project.path)
    code, out, _ = run(capsys, "-C", str(project.path), "commit", "-m", "nothing")
    assert code == 0
    assert "nothing to commit" in out
    assert commit_count(project.path) == before


def test_commit_of_invalid_toml_commits_nothing(rec, capsys):
    root = project_path(rec.project)
    path = layout.attributes_path("action", "rec-1")
    (root / path).write_text('type = "Recording\n')  # unterminated string
    before = commit_count(root)
    head = git(root, "rev-parse", "HEAD")
    code, out, err = run(capsys, "-C", str(root), "commit", "-m", "broken")
    assert code == 1
    assert out == ""
    assert_one_error_line(err, path)
    assert commit_count(root) == before
    assert git(root, "rev-parse", "HEAD") == head
    assert rec.type == "Recording"  # the committed value is untouched


def test_commit_of_a_file_outside_the_layout(project, capsys):
    (project.path / "stray.txt").write_text("hello")
    code, out, err = run(capsys, "-C", str(project.path), "commit", "-m", "stray")
    assert (code, out) == (0, "nothing to commit: no hand edits since the last commit\n")
    for bad, why in [
        ("templates/stray.txt", "templates/ holds only records"),
        ("CON.txt", "reserved device name on Windows"),
        ("analysis/.hidden", "starts with '.'"),
        ("Expipe.toml", "its name is taken by expipe_git"),
    ]:
        (project.path / bad).parent.mkdir(exist_ok=True)
        (project.path / bad).write_text("x")
        code, _, err = run(capsys, "-C", str(project.path), "commit", "-m", "stray", bad, "stray.txt")
        assert code == 1  # named, a file a clone or pull would refuse is refused, and nothing is committed
        assert_one_error_line(err, bad, why)
        (project.path / bad).unlink()
    assert commit_count(project.path) == 1
    code, out, err = run(capsys, "-C", str(project.path), "commit", "-m", "stray", "stray.txt")
    assert code == 0, err  # named, a file outside the record folders is committed
    assert git(project.path, "show", "--name-only", "--format=", "HEAD").split() == ["stray.txt"]
    assert_clean(project.path)


def test_commit_needs_a_message(project, capsys):
    code, _, err = run(capsys, "-C", str(project.path), "commit")
    assert code == 2
    assert "-m" in err


def test_commit_with_a_blank_message(project, capsys):
    (project.path / "modules").mkdir()
    (project.path / "modules" / "m.toml").write_text("a = 1\n")
    code, _, err = run(capsys, "-C", str(project.path), "commit", "-m", "  ")
    assert code == 1
    assert_one_error_line(err, "message")


# ---------------------------------------------------------------------------
# list


def test_list_summary(rec, capsys):
    project = rec.project
    project.require_entity("rat1")
    project.require_template("daq", {"channel_count": {"value": 64}})
    code, out, err = run(capsys, "-C", str(project.path), "list")
    assert code == 0, err
    assert out.splitlines() == [
        "actions: 1",
        "  rec-1",
        "entities: 1",
        "  rat1",
        "templates: 1",
        "  daq",
        "modules: 0",
    ]
    assert run_json(capsys, "-C", str(project.path), "list") == {
        "actions": ["rec-1"],
        "entities": ["rat1"],
        "templates": ["daq"],
        "modules": [],
    }


def test_list_actions_one_line_each(rec, capsys):
    project = rec.project
    project.require_action("bare")
    code, out, _ = run(capsys, "-C", str(project.path), "list", "actions")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].split() == ["bare", "-", "-", "-"]
    assert lines[1].split("  ")[0] == "rec-1"
    for part in ("Recording", "2024-03-01T10:30:05", "place cell, familiar environment"):
        assert part in lines[1]
    rows = run_json(capsys, "-C", str(project.path), "list", "action")  # singular works too
    assert [r["name"] for r in rows] == ["bare", "rec-1"]
    assert rows[1]["tags"] == ["place cell", "familiar environment"]
    assert rows[1]["datetime"] == "2024-03-01T10:30:05"
    assert rows[1]["address"] == "action/rec-1"


def test_list_templates_and_modules(project, capsys):
    project.require_template("daq", {"x": 1})
    project.require_module("depth", contents={"value": 1})
    code, out, _ = run(capsys, "-C", str(project.path), "list", "templates")
    assert (code, out) == (0, "daq\n")
    assert run_json(capsys, "-C", str(project.path), "list", "modules") == [
        {"name": "depth", "address": "module/depth"}
    ]


def test_list_unknown_kind_is_a_usage_error(project, capsys):
    code, _, err = run(capsys, "-C", str(project.path), "list", "subjects")
    assert code == 2
    assert "invalid choice" in err


# ---------------------------------------------------------------------------
# show


def test_show_action_json_round_trips(rec, capsys):
    data = run_json(capsys, "-C", str(rec.project.path), "show", "action/rec-1")
    assert data["address"] == "action/rec-1"
    assert data["kind"] == "action"
    assert data["attributes"]["tags"] == list(rec.tags) == ["place cell", "familiar environment"]
    assert data["attributes"]["type"] == "Recording"
    assert data["attributes"]["users"] == ["Peter"]
    assert dt.datetime.fromisoformat(data["attributes"]["datetime"]) == rec.datetime
    assert dt.datetime.fromisoformat(data["attributes"]["registered"]) == rec.registered
    assert data["modules"] == ["electrophysiology"]
    assert data["message_count"] == 1
    assert data["messages"] == list(rec.messages)


def test_show_module_json_converts_values(rec, capsys):
    data = run_json(capsys, "-C", str(rec.project.path), "show", "action/rec-1/module/electrophysiology")
    assert data["owner"] == "action/rec-1"
    contents = data["contents"]
    module = rec.modules["electrophysiology"]
    assert contents["depth"] == {"value": 2.0, "unit": "um"}
    assert pq.Quantity(contents["depth"]["value"], contents["depth"]["unit"]) == module["depth"]
    assert contents["gains"] == {"value": [1.5, 2.5], "unit": "mV"}
    assert contents["trace"] == [1.0, "NaN", "Infinity"]
    assert [float(x) for x in contents["trace"]][2] == float("inf")
    assert contents["channels"] == {"0": "left", "1": "right"}
    assert contents["probe"] == {"name": "tetrode", "count": 4}
    assert contents["missing"] is None


def test_show_json_is_strict_json(rec, capsys):
    code, out, _ = run(
        capsys, "-C", str(rec.project.path), "show", "action/rec-1/module/electrophysiology", "--json"
    )
    assert code == 0

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    json.loads(out, parse_constant=refuse)


def test_show_uncertain_quantity_and_aware_datetime(project, capsys):
    when = dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    project.require_module(
        "pos",
        contents={
            "x": pq.UncertainQuantity(2.0, pq.mm, 0.1),
            "when": when,
            "day": dt.date(2024, 3, 1),
        },
    )
    data = run_json(capsys, "-C", str(project.path), "show", "module/pos")
    assert data["owner"] == "project"
    assert data["contents"]["x"] == {"value": 2.0, "unit": "mm", "uncertainty": 0.1}
    assert dt.datetime.fromisoformat(data["contents"]["when"]) == when
    assert data["contents"]["when"].endswith("+01:00")
    assert data["contents"]["day"] == "2024-03-01"


def test_show_action_plain(rec, capsys):
    code, out, err = run(capsys, "-C", str(rec.project.path), "show", "action/rec-1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "action 'rec-1'"
    assert "tags: place cell, familiar environment" in lines
    assert "type: Recording" in lines
    assert "datetime: 2024-03-01T10:30:05" in lines
    assert "modules (1): electrophysiology" in lines
    assert "messages: 1" in lines
    message_id = list(rec.messages)[0]
    assert f"  {message_id}  Mary: first note" in lines


def test_show_module_plain(rec, capsys):
    code, out, _ = run(capsys, "-C", str(rec.project.path), "show", "action/rec-1/module/electrophysiology")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "module 'electrophysiology' of action 'rec-1'"
    assert "depth: 2.0 um" in lines
    assert "gains: [1.5 2.5] mV" in lines
    assert "probe:" in lines and "  name: tetrode" in lines and "  count: 4" in lines
    assert "channels:" in lines and "  0: left" in lines


def test_show_template_and_message(rec, capsys):
    project = rec.project
    project.require_template("daq", {"channel_count": {"definition": "inputs", "value": "64"}})
    code, out, _ = run(capsys, "-C", str(project.path), "show", "template/daq")
    assert code == 0
    assert out.splitlines()[:4] == ["template 'daq'", "channel_count:", "  definition: inputs", "  value: 64"]
    data = run_json(capsys, "-C", str(project.path), "show", "template/daq")
    assert data["contents"]["channel_count"] == {"definition": "inputs", "value": "64"}
    assert data["contents"]["identifier"] == "daq"

    message_id = list(rec.messages)[0]
    address = f"action/rec-1/message/{message_id}"
    data = run_json(capsys, "-C", str(project.path), "show", address)
    assert data == {
        "address": address,
        "kind": "message",
        "id": message_id,
        "owner": "action/rec-1",
        "text": "first note\nsecond line",
        "user": "Mary",
        "datetime": "2024-03-01T11:00:00",
    }
    code, out, _ = run(capsys, "-C", str(project.path), "show", address)
    assert out.splitlines() == [
        f"message {message_id!r} of action 'rec-1'",
        "text: |",
        "  first note",
        "  second line",
        "user: Mary",
        "datetime: 2024-03-01T11:00:00",
    ]


def test_show_entity_and_project(project, capsys):
    rat = project.require_entity("rat1")
    rat.tags = ["male"]
    data = run_json(capsys, "-C", str(project.path), "show", "entity/rat1")
    assert data["kind"] == "entity"
    assert data["attributes"]["tags"] == ["male"]
    assert data["modules"] == [] and data["message_count"] == 0
    data = run_json(capsys, "-C", str(project.path), "show", "project")
    assert data["name"] == project.id
    assert data["counts"] == {"actions": 0, "entities": 1, "templates": 0, "modules": 0}


@pytest.mark.parametrize(
    ("address", "fragments"),
    [
        ("action/nope", ("action 'nope' does not exist", "expipe-git list actions")),
        ("entity/nope", ("entity 'nope' does not exist", "expipe-git list entities")),
        ("template/nope", ("template 'nope' does not exist", "expipe-git list templates")),
        ("module/nope", ("module 'nope' does not exist", "expipe-git list modules")),
        ("action/rec-1/module/nope", ("module 'nope' does not exist", "expipe-git show action/rec-1")),
        ("action/rec-1/message/nope", ("no message 'nope'", "expipe-git show action/rec-1")),
        ("rat/1", ("cannot read object address",)),
        ("action/../x", ("cannot read object address",)),
        ("action/.git", ("not allowed",)),
    ],
)
def test_show_unknown_object_is_one_line(rec, capsys, address, fragments):
    code, out, err = run(capsys, "-C", str(rec.project.path), "show", address)
    assert code == 1
    assert out == ""
    assert_one_error_line(err, *fragments)


# ---------------------------------------------------------------------------
# tour


TOUR_OUTPUT = (
    "2.0 um",
    "OrderedDict([('box_shape', {'value': 'square'})])",
    "odict_keys(['channel_count'])",
)


def _check_tour_output(out: str, folder: pathlib.Path) -> None:
    for expected in TOUR_OUTPUT:
        assert expected in out.splitlines(), expected
    root = folder / "test"
    assert_clean(root)
    log = git(root, "log", "--format=%H %s").splitlines()
    assert len(log) > 10
    expected = [f"{line[:7]} {line[41:]}" for line in log]
    lines = out.rstrip("\n").splitlines()
    assert lines[-len(expected) :] == expected
    assert lines[-len(expected) - 1] == f"History of the project at {root}, newest first:"
    assert lines[-1].endswith("project: create 'test'")
    assert "action 'something': set messages" in lines[-len(expected)]


def test_tour_in_process(tmp_path, capsys):
    folder = tmp_path / "tour"
    code, out, err = run(capsys, "tour", str(folder))
    assert code == 0, err
    assert out.startswith("# Create a new project with the require_project function\n")
    _check_tour_output(out, folder)


def test_tour_through_python_m(tmp_path):
    result = run_sub("tour", "tour", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    _check_tour_output(result.stdout, tmp_path / "tour")


def test_tour_inside_a_project_fails_in_one_line(project, capsys):
    code, _, err = run(capsys, "tour", str(project.path / "walk"))
    assert code == 1
    assert_one_error_line(err, "inside the project")


def test_history_lines_match_git(rec):
    lines = history_lines(rec.project)
    log = git(rec.project.path, "log", "--format=%H %s").splitlines()
    assert lines == [f"{line[:7]} {line[41:]}" for line in log]
    assert history_lines(rec.project, limit=2) == lines[:2]


# ---------------------------------------------------------------------------
# errors through the real entry point, interrupts, bugs


def test_errors_through_python_m(rec, tmp_path):
    result = run_sub("-C", str(rec.project.path), "show", "action/nope")
    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_error_line(result.stderr, "action 'nope' does not exist")

    result = run_sub("status", cwd=tmp_path)
    assert result.returncode == 1
    assert_one_error_line(result.stderr, "no expipe_git project")

    result = run_sub("list", "nonsense", cwd=rec.project.path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_show_and_commit_through_python_m(rec):
    root = project_path(rec.project)
    result = run_sub("show", "action/rec-1/module/electrophysiology", "--json", cwd=root)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["contents"]["depth"] == {"value": 2.0, "unit": "um"}

    path = layout.attributes_path("action", "rec-1")
    text = (root / path).read_text().replace('"Recording"', '"Surgery"')
    (root / path).write_text(text)
    result = run_sub("status", cwd=root)
    assert result.stdout.splitlines() == [f"M {path}"]
    result = run_sub("commit", "-m", "Call it surgery", cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == git(root, "rev-parse", "HEAD").strip()
    assert git(root, "log", "-1", "--format=%s").strip() == "Call it surgery"
    assert_clean(root)
    assert rec.type == "Surgery"


def test_ctrl_c_exits_130(project, capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(reading, "cmd_status", interrupted)
    code, _, err = run(capsys, "-C", str(project.path), "status")
    assert code == 130
    assert err == "expipe-git: interrupted\n"


def test_a_bug_shows_its_traceback_and_exits_70(project, capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(reading, "cmd_status", broken)
    code, _, err = run(capsys, "-C", str(project.path), "status")
    assert code == cli.BUG_EXIT == 70
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    assert err.splitlines()[-1].startswith("expipe-git: error: internal error (RuntimeError): this is a bug")
    assert "report it" in err


def test_a_plain_key_error_is_a_bug_not_a_missing_object(project, capsys, monkeypatch):
    def missing(args):
        raise KeyError("depth")

    monkeypatch.setattr(reading, "cmd_status", missing)
    code, _, err = run(capsys, "-C", str(project.path), "status")
    assert code == 70
    assert "KeyError: 'depth'" in err and "not found" not in err and "bug" in err


def test_an_expipe_error_is_one_line_or_its_traceback_on_request(project, capsys, monkeypatch):
    code, _, err = run(capsys, "-C", str(project.path), "show", "action/nope")
    assert code == 1
    assert_one_error_line(err, "nope", "list actions")
    monkeypatch.setenv(cli.TRACEBACK_ENV, "1")
    with pytest.raises(NotFoundError):
        cli.main(["-C", str(project.path), "show", "action/nope"])


def test_broken_pipe_is_quiet(project, capsys, monkeypatch):
    def closed(args):
        raise BrokenPipeError

    monkeypatch.setattr(reading, "cmd_status", closed)
    code, _, err = run(capsys, "-C", str(project.path), "status")
    assert code == 141
    assert err == ""
