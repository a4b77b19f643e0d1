"""Importing expipe 0.6 projects: made with the real expipe 0.6, checked with both libraries and git."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import pathlib
import pty
import select
import shutil
import subprocess
import sys
import textwrap

import expipe
import numpy as np
import pytest
import quantities as pq
from conftest import GIT_EMAIL, GIT_NAME, assert_clean, commit_count, git

import expipe_git
from expipe_git import cli, layout

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "expipe-0.6-old-project"
EXPIPE_GIT = pathlib.Path(sys.executable).parent / "expipe-git"


# ---------------------------------------------------------------------------
# Helpers


def make_expipe_project(path: pathlib.Path) -> pathlib.Path:
    """Make a project with expipe 0.6's own API, exercising what users store."""
    project = expipe.require_project(str(path))
    project.require_template(
        "hardware_daq",
        {"identifier": "daq", "gain": {"value": 2.0, "unit": "V", "definition": "amplifier gain"}},
    )
    project.require_module(name="settings", contents={"lab": "IBV", "temperature": 21.5 * pq.degC})
    rat = project.require_entity("rat1")
    rat.tags = ["male"]
    rat.create_message("arrived", user="Mary", datetime=dt.datetime(2019, 1, 1, 9, 0, 0))
    rat.require_module(name="weight", contents={"weight": 300 * pq.g})

    action = project.require_action("rec-1")
    action.type = "Recording"
    action.location = "room 2"
    action.datetime = dt.datetime(2020, 1, 2, 3, 4, 5)
    action.tags = ["place cell"]
    action.tags.append("familiar")
    action.users = ["Peter"]
    action.entities = ["rat1"]
    action.require_module(
        name="ephys",
        contents={
            "depth": 2.5 * pq.um,
            "gains": np.array([1.0, 2.0, 4.0]) * pq.mV,
            "position": pq.UncertainQuantity(2.0, "mm", 0.1),
            "channels": {0: "CA1", 1: "CA3"},
            "probe": {"shank": {"length": 5 * pq.mm}},
            "zero": {"0": "a string key stays a string"},
            "threshold": float("nan"),
            "count": 12,
            "ok": True,
        },
    )
    action.require_module(name="events", contents=[1, 2, 3])
    action.create_message("first note", user="Peter", datetime=dt.datetime(2020, 1, 2, 10, 0, 0))
    action.create_message("second note", user="Mary", datetime=dt.datetime(2020, 1, 3, 11, 30, 0))
    data_folder = pathlib.Path(action.data_path())
    (data_folder / "main.exdir").mkdir()
    (data_folder / "main.exdir" / "attributes.yaml").write_text("x: 1\n")
    (data_folder / "notes.txt").write_text("unlisted data also comes along\n")
    action.data["main"] = "main.exdir"

    other = project.require_action("rec.2019.v1")
    other.tags = ["dots in the name"]
    return path


def files_state(path: pathlib.Path) -> dict[str, tuple]:
    """Every file and folder below ``path``: kind, content hash and mtime."""
    state = {}
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            full = pathlib.Path(folder, name)
            st = full.lstat()
            digest = hashlib.sha256(full.read_bytes()).hexdigest() if full.is_file() else None
            state[str(full.relative_to(path))] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return state


def siblings(path: pathlib.Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def write(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def same_value(a, b) -> bool:
    if isinstance(a, pq.Quantity) or isinstance(b, pq.Quantity):
        return (
            type(a) is type(b)
            and a.dimensionality == b.dimensionality
            and np.array_equal(a.magnitude, b.magnitude, equal_nan=True)
        )
    if isinstance(a, dict) or isinstance(b, dict):
        return dict(a).keys() == dict(b).keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def compare_with_expipe(source: pathlib.Path, imported: expipe_git.Project) -> None:
    """Read both projects through their libraries' public APIs and compare."""
    old = expipe.get_project(str(source))
    # expipe 0.6 lists 'rec.2019.v1' as 'rec.2019' (it takes the folder's stem): list folders.
    names = {kind: sorted(p.name for p in (source / kind).iterdir()) for kind in ("actions", "entities")}
    assert names["actions"] == sorted(imported.actions)
    assert names["entities"] == sorted(imported.entities)
    assert sorted(old.templates) == sorted(imported.templates)
    assert sorted(old.modules) == sorted(imported.modules)
    for name in old.modules:
        assert same_value(old.modules[name].contents, imported.modules[name].contents)
    for kind in ("actions", "entities"):
        for name in names[kind]:
            a, b = getattr(old, kind)[name], getattr(imported, kind)[name]
            assert a.type == b.type and a.location == b.location
            assert a.datetime == b.datetime
            assert sorted(a.tags) == sorted(b.tags) and sorted(a.users) == sorted(b.users)
            if kind == "actions":
                assert sorted(a.entities) == sorted(b.entities)
                for key in a.attributes.get("data") or {}:  # expipe 0.6's a.data fails without one
                    assert os.path.samefile(a.data_path(key), b.data_path(key))
            for module in a.modules:
                assert same_value(a.modules[module].contents, b.modules[module].contents), module
            old_messages = sorted((m.text, m.user, m.datetime) for m in a.messages.values())
            new_messages = sorted((m.text, m.user, m.datetime) for m in b.messages.values())
            assert old_messages == new_messages


# ---------------------------------------------------------------------------
# A project made by expipe 0.6


@pytest.fixture
def source(tmp_path, capsys):
    path = make_expipe_project(tmp_path / "old")
    capsys.readouterr()  # expipe 0.6 prints the config it writes
    return path


def test_import_brings_everything_and_changes_nothing(source, tmp_path):
    before = files_state(source)
    project = expipe_git.import_expipe_project(source, tmp_path / "new")
    assert files_state(source) == before
    report = project.import_report
    assert report.verified and report.ok, str(report)
    assert report.differences == []
    assert report.values_compared > 30
    compare_with_expipe(source, project)

    ephys = project.actions["rec-1"].modules["ephys"]
    assert ephys["depth"] == 2.5 * pq.um and isinstance(ephys["depth"], pq.Quantity)
    assert isinstance(ephys["position"], pq.UncertainQuantity)
    assert float(ephys["position"].uncertainty.magnitude) == 0.1
    assert list(ephys["gains"].magnitude) == [1.0, 2.0, 4.0]
    assert ephys["channels"].to_dict() == {0: "CA1", 1: "CA3"}
    assert ephys["zero"].to_dict() == {"0": "a string key stays a string"}
    assert ephys["probe"]["shank"]["length"] == 5 * pq.mm
    assert math.isnan(ephys["threshold"])
    assert project.actions["rec-1"].modules["events"].contents == [1, 2, 3]
    # expipe 0.6 read this as a Quantity and dropped "definition"; it stays a dict.
    assert project.templates["hardware_daq"]["gain"].to_dict() == {
        "value": 2.0,
        "unit": "V",
        "definition": "amplifier gain",
    }
    assert project.templates["hardware_daq"].identifier == "daq"
    assert isinstance(project.actions["rec-1"].registered, dt.datetime)
    # expipe 0.6 stored tags in set order; the import keeps the file's order.
    tags = expipe.get_project(str(source)).actions["rec-1"].attributes["tags"]
    assert list(project.actions["rec-1"].tags) == tags
    assert "rec.2019.v1" in project.actions
    assert_clean(project.path)


def test_one_commit_per_object_by_the_importing_user_dated_by_registered(source, tmp_path):
    project = expipe_git.import_expipe_project(source, tmp_path / "new")
    log = git(
        project.path, "log", "--reverse", "--format=%an <%ae>|%ad|%s", "--date=format:%Y-%m-%dT%H:%M:%S"
    )
    lines = [line.split("|") for line in log.splitlines()]
    subjects = [subject for _, _, subject in lines]
    assert subjects == [
        "project: import from expipe 0.6",
        "template 'hardware_daq': import from expipe 0.6",
        "module 'settings': import from expipe 0.6",
        "entity 'rat1': import from expipe 0.6",
        "action 'rec-1': import from expipe 0.6",
        "action 'rec.2019.v1': import from expipe 0.6",
    ]
    assert {author for author, _, _ in lines} == {f"{GIT_NAME} <{GIT_EMAIL}>"}
    registered = expipe.get_project(str(source)).actions["rec-1"].attributes["registered"]
    assert lines[4][1] == registered  # expipe's '%Y-%m-%dT%H:%M:%S' text
    trailers = git(project.path, "log", "-1", "--format=%(trailers)")
    assert "Expipe-Object: action/rec.2019.v1" in trailers
    # One object's history is that one commit.
    folder = layout.object_dir("action", "rec-1")
    assert (
        git(project.path, "log", "--format=%s", "--", folder).strip()
        == "action 'rec-1': import from expipe 0.6"
    )


def test_single_commit_holds_the_same_files(source, tmp_path):
    per_object = expipe_git.import_expipe_project(source, tmp_path / "a")
    single = expipe_git.import_expipe_project(source, tmp_path / "b", single_commit=True)
    assert commit_count(single.path) == 1
    assert single.import_report.commits == 1 and single.import_report.ok
    assert git(single.path, "log", "--format=%s").startswith("project: import from expipe 0.6 (")
    tree = "git ls-tree -r HEAD".split()[1:]
    # Same files, except the config's registered time is not in expipe 0.6's expipe.yaml anyway.
    assert git(per_object.path, *tree) == git(single.path, *tree)
    assert_clean(single.path)


def test_data_is_linked_copied_or_hard_linked_and_never_committed(source, tmp_path):
    source_main = source / "actions" / "rec-1" / "data" / "main.exdir" / "attributes.yaml"
    for mode in ("reference", "copy", "hardlink"):
        project = expipe_git.import_expipe_project(source, tmp_path / mode, data=mode)
        action = project.actions["rec-1"]
        assert action.data["main"] == "main.exdir"
        imported_main = action.data_path("main") / "attributes.yaml"
        assert imported_main.read_text() == "x: 1\n"
        assert (action.data_path() / "notes.txt").read_text().startswith("unlisted")
        if mode == "reference":
            assert action.data_path("main").is_symlink()
            assert action.data_path("main").resolve() == (source_main.parent).resolve()
        elif mode == "copy":
            assert not os.path.samefile(imported_main, source_main)
        else:
            assert os.path.samefile(imported_main, source_main)
        assert "data/" not in git(project.path, "ls-files")
        assert_clean(project.path)


def test_progress_is_reported(source, tmp_path):
    calls = []
    expipe_git.import_expipe_project(
        source, tmp_path / "new", progress=lambda done, total, what: calls.append((done, total, what))
    )
    imported = [c for c in calls if c[2].startswith("importing")]
    verified = [c for c in calls if c[2].startswith("verifying")]
    assert [c[0] for c in imported] == list(range(1, 7)) and {c[1] for c in imported} == {6}
    assert imported[-1][2] == "importing action 'rec.2019.v1'"
    assert len(verified) == 6


def test_verify_import_finds_later_changes(source, tmp_path):
    project = expipe_git.import_expipe_project(source, tmp_path / "new", verify=False)
    assert not project.import_report.verified
    assert "Not verified" in str(project.import_report)
    assert expipe_git.verify_import(source, project).ok
    project.actions["rec-1"].modules["ephys"]["depth"] = 3 * pq.um
    project.actions["rec-1"].tags.append("added later")
    project.delete_template("hardware_daq")
    report = expipe_git.verify_import(source, project)
    assert not report.ok
    text = "\n".join(report.differences)
    assert "module 'ephys' of action 'rec-1'['depth']" in text
    assert "tags" in text
    assert "templates: missing ['hardware_daq']" in text
    assert str(report).startswith(f"Compared {source} with {project.path}")


# ---------------------------------------------------------------------------
# The real project in tests/fixtures (made on Windows by expipe 0.6)


def test_real_old_project(tmp_path):
    before = files_state(FIXTURE)
    project = expipe_git.import_expipe_project(FIXTURE, tmp_path / "new")
    assert files_state(FIXTURE) == before
    assert project.import_report.ok, str(project.import_report)
    assert project.config["project"] == "old_project" and project.config["database_version"] == 2
    action = project.actions["001-181220-2"]
    depth = action.modules["depth"]["CA2L"]["probe_0"]
    assert isinstance(depth, pq.Quantity) and depth == 2.9 * pq.mm
    assert action.modules["channel_group_location"][0] == "CA2L"
    assert action.modules["channel_group_location"][4] == "CA2R"
    assert len(action.tags) == 18 and "trial_id_t1" in action.tags
    assert action.datetime == dt.datetime(2020, 12, 18, 19, 59, 3)
    assert list(action.users) == ["sarah"] and list(action.entities) == ["001"]
    # The Windows path relative to the project root resolves to the action's data folder.
    assert action.data["main"] == "main.exdir"
    assert action.data_path("main") == project.path / layout.data_dir("action", "001-181220-2") / "main.exdir"
    notes = "\n".join(project.import_report.notes)
    assert "SOURCE.md" in notes and "relative to the project root" in notes
    compare_with_expipe_fixture(project)
    date = git(project.path, "log", "--format=%ad", "--date=format:%Y-%m-%dT%H:%M:%S", "--", "actions/")
    assert "2020-12-18T22:23:46" in date.split()
    assert_clean(project.path)


def compare_with_expipe_fixture(project):
    old = expipe.get_project(str(FIXTURE), "old_project")
    for name in old.actions:
        for module in old.actions[name].modules:
            assert same_value(
                old.actions[name].modules[module].contents, project.actions[name].modules[module].contents
            )


def test_real_old_project_with_its_data(tmp_path):
    source = tmp_path / "old_project"
    shutil.copytree(FIXTURE, source)
    recording = source / "actions" / "001-181220-2" / "data" / "main.exdir"
    recording.mkdir(parents=True)
    (recording / "attributes.yaml").write_text("sample_rate: 30000\n")
    project = expipe_git.import_expipe_project(source, tmp_path / "new")
    assert project.import_report.ok, str(project.import_report)
    main = project.actions["001-181220-2"].data_path("main")
    assert (main / "attributes.yaml").read_text() == "sample_rate: 30000\n"
    assert main.resolve() == recording.resolve()


# ---------------------------------------------------------------------------
# expipe 0.6's quirks


def quirky_project(root: pathlib.Path) -> pathlib.Path:
    """A project written by hand the ways old expipe versions and people wrote them."""
    write(
        root / "expipe.yaml", "{database_version: 2, type: project, owner: {name: lab}}\n"
    )  # no project key
    write(
        root / "actions" / "flow" / "attributes.yaml",
        "{registered: '2019-05-01T10:00:00', tags: [a, b, a, 7], extra: {value: 1, unit: ms, note: hi}}\n",
    )
    write(
        root / "actions" / "flow" / "modules" / "values.yaml",
        """\
        nan: .nan
        inf: -.inf
        block:
          value: [1, 2]
          unit: s
        flow: {value: 1.5, unit: Hz, uncertainty: 0.5}
        listed: [{value: 1, unit: mm}]
        bad_unit: {value: 1, unit: not_a_unit}
        stamp: 2020-01-01T10:00:00
        """,
    )
    write(root / "actions" / "flow" / "modules" / "empty.yaml", "")
    write(root / "actions" / "flow" / "modules" / "depth.v2.yaml", "value: 1\nunit: mm\n")
    # The time comes from the contents, not the file name.
    write(
        root / "actions" / "flow" / "messages" / "19990101T000000.yaml",
        "text: late note\nuser: Ann\ndatetime: '2021-06-01T12:00:00'\n",
    )
    write(root / "actions" / "flow" / "messages" / "notes.txt", "stray\n")
    write(root / "actions" / "flow" / "thumbs.db", "stray")
    write(root / "actions" / "no-registered" / "attributes.yaml", "type: Surgery\n")
    write(root / "actions" / "not-an-action" / "readme.txt", "stray folder\n")
    write(root / "actions" / ".DS_Store", "stray")
    write(root / "analysis.ipynb", "{}")
    write(
        root / "actions" / "data-paths" / "attributes.yaml",
        "registered: '2019-05-02T10:00:00'\n"
        "data:\n"
        "  inside: sub\\file.txt\n"
        "  outside: shared/calibration.csv\n"
        "  missing: nowhere.bin\n"
        "  climb: ..\\..\\..\\shared\\calibration.csv\n",
    )
    write(root / "actions" / "data-paths" / "data" / "sub" / "file.txt", "inside\n")
    write(root / "shared" / "calibration.csv", "1,2\n")
    return root


def test_quirks_are_handled(tmp_path):
    source = quirky_project(tmp_path / "quirky")
    before = files_state(source)
    project = expipe_git.import_expipe_project(source, tmp_path / "new")
    assert files_state(source) == before
    report = project.import_report
    assert report.ok, str(report)
    assert project.id == "new"  # no project key: named after its folder
    assert project.config["owner"] == {"name": "lab"}  # expipe.yaml is read without quantities

    flow = project.actions["flow"]
    assert list(flow.tags) == ["a", "b", "7"]
    assert flow.registered == dt.datetime(2019, 5, 1, 10, 0, 0)
    assert flow.attributes["extra"] == {"value": 1, "unit": "ms", "note": "hi"}
    values = flow.modules["values"]
    assert math.isnan(values["nan"]) and values["inf"] == -math.inf
    assert list(values["block"].magnitude) == [1, 2] and values["block"].dimensionality.string == "s"
    assert isinstance(values["flow"], pq.UncertainQuantity)
    assert values["listed"] == [{"value": 1, "unit": "mm"}]  # expipe did not look into lists
    assert values["bad_unit"].to_dict() == {"value": 1, "unit": "not_a_unit"}
    assert values["stamp"] == dt.datetime(2020, 1, 1, 10, 0, 0)
    assert flow.modules["empty"].contents == {}
    assert flow.modules["depth.v2"].contents == {"value": 1, "unit": "mm"}
    [message] = flow.messages.values()
    assert message.datetime == dt.datetime(2021, 6, 1, 12, 0, 0) and message.user == "Ann"

    assert project.actions["no-registered"].registered is None
    assert project.actions["no-registered"].type == "Surgery"

    paths = project.actions["data-paths"]
    assert paths.data["inside"] == "sub/file.txt"
    assert paths.data_path("inside").read_text() == "inside\n"
    assert paths.data["outside"] == "calibration.csv"
    assert paths.data_path("outside").read_text() == "1,2\n"
    assert paths.data["missing"] == "nowhere.bin"
    assert paths.data["climb"] == "calibration.csv"  # the new layout has shard folders: linked instead
    assert paths.data_path("climb").read_text() == "1,2\n"

    notes = "\n".join(report.notes)
    for stray in ("analysis.ipynb", "actions/.DS_Store", "actions/not-an-action/", "actions/flow/thumbs.db"):
        assert stray in notes
    assert "actions/flow/messages/notes.txt" in notes
    assert "names no project" in notes
    assert "tags listed an item twice" in notes
    assert "'missing' 'nowhere.bin' is not in the source" in notes
    assert sorted(project.actions) == ["data-paths", "flow", "no-registered"]
    assert_clean(project.path)


def test_git_repository_source_is_noted_and_untouched(source, tmp_path):
    git(source, "init", "-q")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "the lab's own history")
    before = files_state(source)
    project = expipe_git.import_expipe_project(source, tmp_path / "new")
    assert files_state(source) == before
    assert any("is itself a git repository" in note for note in project.import_report.notes)
    assert project.import_report.ok
    assert commit_count(project.path) == 6


# ---------------------------------------------------------------------------
# Failures leave nothing behind


def assert_failed_cleanly(destination: pathlib.Path, parent_before: list[str]) -> None:
    assert not destination.exists()
    assert siblings(destination) == parent_before


def test_broken_yaml_names_the_file_and_leaves_no_destination(source, tmp_path):
    broken = source / "actions" / "rec-1" / "modules" / "ephys.yaml"
    broken.write_text("depth: [1, 2\n")
    destination = tmp_path / "out" / "new"
    destination.parent.mkdir()
    with pytest.raises(expipe_git.CorruptFileError) as caught:
        expipe_git.import_expipe_project(source, destination)
    assert str(broken) in str(caught.value) and "line 2" in str(caught.value)
    assert caught.value.path == str(broken)
    assert_failed_cleanly(destination, [])


def test_yaml_tags_are_never_executed(tmp_path):
    marker = tmp_path / "ran"
    source = tmp_path / "old"
    write(source / "expipe.yaml", "project: old\n")
    write(
        source / "actions" / "evil" / "attributes.yaml",
        f"x: !!python/object/apply:os.system ['touch {marker}']\n",
    )
    with pytest.raises(expipe_git.CorruptFileError, match="attributes.yaml: not valid YAML"):
        expipe_git.import_expipe_project(source, tmp_path / "new")
    assert not marker.exists()
    assert not (tmp_path / "new").exists()


def test_not_an_expipe_project(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(expipe_git.NotFoundError, match=r"empty/expipe.yaml does not exist"):
        expipe_git.import_expipe_project(tmp_path / "empty", tmp_path / "new")
    with pytest.raises(expipe_git.NotFoundError, match="is not a folder"):
        expipe_git.import_expipe_project(tmp_path / "missing", tmp_path / "new")
    already = expipe_git.create_project(tmp_path / "git-project")
    with pytest.raises(expipe_git.NotFoundError, match="expipe_git project already"):
        expipe_git.import_expipe_project(already.path, tmp_path / "new")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("name", ["rec:1", "trailing.", "CON"])
def test_a_name_expipe_git_cannot_store_fails_clearly(tmp_path, name):
    source = tmp_path / "old"
    write(source / "expipe.yaml", "project: old\n")
    write(source / "actions" / "fine" / "attributes.yaml", "type: Recording\n")
    write(source / "actions" / name / "attributes.yaml", "type: Recording\n")
    with pytest.raises(expipe_git.InvalidValueError, match=r"cannot be imported: action name") as caught:
        expipe_git.import_expipe_project(source, tmp_path / "new")
    assert str(source / "actions" / name) in str(caught.value)
    assert_failed_cleanly(tmp_path / "new", ["old"])


def test_a_value_toml_cannot_hold_fails_naming_the_file(tmp_path):
    source = tmp_path / "old"
    write(source / "expipe.yaml", "project: old\n")
    write(source / "actions" / "a" / "modules" / "m.yaml", "? [1, 2]\n: tuple key\n")
    write(source / "actions" / "a" / "attributes.yaml", "type: Recording\n")
    with pytest.raises(expipe_git.InvalidTypeError, match=r"actions/a/modules/m.yaml"):
        expipe_git.import_expipe_project(source, tmp_path / "new")
    assert_failed_cleanly(tmp_path / "new", ["old"])


def test_a_message_without_a_time_fails_naming_the_file(tmp_path):
    source = tmp_path / "old"
    write(source / "expipe.yaml", "project: old\n")
    write(source / "actions" / "a" / "attributes.yaml", "type: Recording\n")
    write(source / "actions" / "a" / "messages" / "20200101T000000.yaml", "text: hi\nuser: Ann\n")
    with pytest.raises(expipe_git.CorruptFileError, match=r"20200101T000000.yaml: not a message"):
        expipe_git.import_expipe_project(source, tmp_path / "new")
    assert_failed_cleanly(tmp_path / "new", ["old"])


def test_destination_must_be_new_and_outside_the_source(source, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(expipe_git.AlreadyExistsError, match="exists already"):
        expipe_git.import_expipe_project(source, tmp_path / "taken")
    with pytest.raises(expipe_git.InvalidValueError, match="inside the source"):
        expipe_git.import_expipe_project(source, source / "converted")
    assert not (source / "converted").exists()
    outer = expipe_git.create_project(tmp_path / "outer")
    with pytest.raises(expipe_git.AlreadyExistsError, match="inside the expipe_git project"):
        expipe_git.import_expipe_project(source, outer.path / "inner")
    with pytest.raises(expipe_git.InvalidValueError, match="data must be one of"):
        expipe_git.import_expipe_project(source, tmp_path / "new", data="move")


# ---------------------------------------------------------------------------
# The command line


def test_cli_import_prints_the_report(source, tmp_path, capsys):
    status = cli.main(["import", str(source), str(tmp_path / "new"), "--single-commit", "--copy-data"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert err == ""  # no terminal: no progress bar
    assert out.startswith(f"Imported {source} into {tmp_path / 'new'}")
    assert "1 commit; data copied" in out
    assert "0 differences" in out
    assert commit_count(tmp_path / "new") == 1


def test_cli_exit_codes(source, tmp_path, capsys):
    (source / "templates" / "hardware_daq.yaml").write_text("identifier: [unclosed\n")
    assert cli.main(["import", str(source), str(tmp_path / "new")]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("expipe-git: error: ") and "hardware_daq.yaml: not valid YAML" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "new").exists()

    assert cli.main(["import", str(source), str(tmp_path / "new"), "--copy-data", "--hardlink-data"]) == 2
    capsys.readouterr()

    (source / "templates" / "hardware_daq.yaml").write_text("identifier: daq\n")
    assert cli.main(["import", str(source), str(tmp_path / "new"), "--no-verify"]) == 0
    assert "Not verified" in capsys.readouterr().out
    assert cli.main(["import", str(source), str(tmp_path / "new"), "--verify-only"]) == 0
    assert "Compared" in capsys.readouterr().out

    expipe_git.get_project(tmp_path / "new").actions["rec-1"].modules["ephys"]["count"] = 13
    assert cli.main(["import", str(source), str(tmp_path / "new"), "--verify-only"]) == cli.IMPORT_DIFFERS
    out, err = capsys.readouterr()
    assert "! module 'ephys' of action 'rec-1'['count']: source 12, imported 13" in out
    assert "1 value(s) differ" in err

    assert cli.main(["import", str(source), str(tmp_path / "nowhere"), "--verify-only"]) == 1
    assert "--verify-only compares an earlier import" in capsys.readouterr().err


def run_on_terminal(args: list[str], cwd: pathlib.Path) -> tuple[int, str]:
    """Run expipe-git with stderr on a pseudo-terminal; return (status, what it drew there)."""
    main, follower = pty.openpty()
    process = subprocess.Popen(
        [str(EXPIPE_GIT), *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        if not select.select([main], [], [], 120)[0]:
            process.kill()
            raise AssertionError("expipe-git import drew nothing for 120 s")
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return process.wait(timeout=120), b"".join(chunks).decode()


def test_cli_progress_bar_only_on_a_terminal(source, tmp_path):
    status, drawn = run_on_terminal(["import", str(source), "new"], tmp_path)
    assert status == 0, drawn
    assert "[" in drawn and "6/6 importing action 'rec.2019.v1'" in drawn and "6/6 verifying" in drawn
    assert "\r" in drawn
    result = subprocess.run(
        [str(EXPIPE_GIT), "import", str(source), "again"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr == ""
    assert "Verified:" in result.stdout


def test_many_notes_of_one_kind_are_summed_up(tmp_path):
    source = tmp_path / "old"
    write(source / "expipe.yaml", "project: old\n")
    for i in range(8):
        write(
            source / "actions" / f"rec-{i}" / "attributes.yaml",
            f"data: {{main: actions\\rec-{i}\\data\\m.bin}}\n",
        )
    report = expipe_git.import_expipe_project(source, tmp_path / "new").import_report
    assert report.ok, str(report)
    assert len(report.notes) == 4
    assert report.notes[-1] == "... and 5 more: data entries rewritten (it was relative to the project root)"
