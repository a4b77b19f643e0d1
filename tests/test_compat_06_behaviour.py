"""What the expipe 0.6 patterns rely on, in detail: one commit per mutation, errors, warnings.

tests/test_compat_06.py runs the patterns side by side with expipe 0.6; these
tests check expipe_git alone, with real git.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import warnings

import numpy as np
import pytest
import quantities as pq
from compat06_patterns import FIXTURE_06, SETTINGS_YAML, WHEN
from conftest import assert_clean, commits, git

import expipe_git

expipe06 = pytest.importorskip("expipe", minversion="0.6")

ROOT = pathlib.Path(__file__).resolve().parents[1]


# -- one commit per mutation, and the messages that say so ------------------------


def test_assigning_a_module_is_one_commit(project):
    action = project.require_action("a")
    with commits(project.path, 1):
        action.modules["tracking"] = {"box": {"value": "square"}, "depth": 2 * pq.um}
    with commits(project.path, 1):
        action.modules["tracking"] = {"box": {"value": "round"}}
    with commits(project.path, 1):
        project.templates["daq"] = {"identifier": "daq", "channels": 64}
    entity = project.require_entity("rat1")
    with commits(project.path, 1):
        entity.modules["register"] = {}
    log = git(project.path, "log", "--format=%s", "-5").splitlines()
    assert log == [
        "module 'register' of entity 'rat1': create",
        "entity 'rat1': create",
        "template 'daq': create",
        "module 'tracking' of action 'a': replace",
        "module 'tracking' of action 'a': create",
    ]


def test_assigning_a_module_refuses_bad_contents_before_writing(project):
    action = project.require_action("a")
    with commits(project.path, 0):
        with pytest.raises(TypeError, match="module 'm'"):
            action.modules["m"] = "text"
        with pytest.raises(TypeError, match="module 'm'"):
            action.modules["m"] = {"x": {1, 2}}
        with pytest.raises(ValueError, match="module name"):
            action.modules["../escape"] = {}
    project.delete_action("a")
    with pytest.raises(KeyError, match="action 'a' does not exist"):
        action.modules["m"] = {}


def test_project_config_edits_are_one_commit_each_and_persist(project, isolated_home):
    settings = isolated_home / ".config" / "expipe"
    settings.mkdir(parents=True)
    (settings / "config.yaml").write_text(SETTINGS_YAML)
    expipe_git.config.reload_config()
    try:
        assert project.config["username"] == "Mary"  # the user's settings show through
        with commits(project.path, 1):
            project.config["probe_path"] = "/probes/x.json"
        with commits(project.path, 1):
            project.config.update({"username": "Peter", "possible_tags": ["a", "b"]})
        again = expipe_git.get_project(project.path)
        assert again.config["probe_path"] == "/probes/x.json"
        assert again.config["username"] == "Peter"  # the project's own keys win
        assert "username" not in again.config.stored or again.config.stored["username"] == "Peter"
        assert "storage_format" in again.config.stored and "location" not in again.config.stored
        with commits(project.path, 1):
            del project.config["username"]
        assert project.config["username"] == "Mary"
        with commits(project.path, 0):
            with pytest.raises(KeyError, match="comes from your expipe settings"):
                del project.config["location"]
            with pytest.raises(ValueError, match="storage_format"):
                project.config["storage_format"] = 2
            with pytest.raises(TypeError, match="project config"):
                project.config["x"] = object()
        assert git(project.path, "log", "--format=%s", "-3").splitlines() == [
            "project: delete username from config",
            "project: update username, possible_tags in config",
            "project: set probe_path in config",
        ]
    finally:
        (settings / "config.yaml").unlink()
        expipe_git.config.reload_config()


def test_settings_are_read_as_yaml_and_a_broken_file_is_named(isolated_home):
    settings = isolated_home / ".config" / "expipe"
    settings.mkdir(parents=True)
    (settings / "config.yaml").write_text(SETTINGS_YAML)
    try:
        assert expipe_git.config.reload_config() is expipe_git.settings
        assert expipe_git.settings["plugins"] == ["expipe_plugin_cinpla"]
        assert expipe_git.settings["lab"] == {"name": "CINPLA", "rooms": ["a", "b"]}
        (settings / "config.yaml").write_text("username: [unclosed\n")
        with pytest.warns(UserWarning, match=r"config\.yaml: not valid YAML"):
            expipe_git.config.reload_config()
        assert expipe_git.settings == {}
        with pytest.raises(expipe_git.CorruptFileError, match=r"config\.yaml"):
            expipe_git.config.load_config(settings / "config.yaml")
        (settings / "config.yaml").write_text("!!python/object:os.system {}\n")
        with pytest.raises(expipe_git.CorruptFileError):
            expipe_git.config.load_config(settings / "config.yaml")
    finally:
        (settings / "config.yaml").unlink()
        expipe_git.config.reload_config()


def test_version_is_the_package_version():
    import importlib.metadata

    assert re.fullmatch(r"\d+\.\d+\.\d+", expipe_git.__version__)
    try:
        assert expipe_git.__version__ == importlib.metadata.version("expipe_git")
    except importlib.metadata.PackageNotFoundError:
        pyproject = (ROOT / "pyproject.toml").read_text()
        assert f'version = "{expipe_git.__version__}"' in pyproject


def test_expipe_06_folder_is_refused_with_the_import_command(tmp_path):
    old = tmp_path / "old_project"
    shutil.copytree(FIXTURE_06, old)
    before = sorted(p.relative_to(old) for p in old.rglob("*"))
    for call in (
        lambda: expipe_git.get_project(old),
        lambda: expipe_git.require_project(old),
        lambda: expipe_git.create_project(old, init=True),
    ):
        with pytest.raises(expipe_git.ExpipeError) as caught:
            call()
        assert "expipe-git import" in str(caught.value) and str(old) in str(caught.value)
    with pytest.raises(KeyError, match="inside the expipe 0.6 project"):
        expipe_git.create_project(old / "actions" / "new")
    assert sorted(p.relative_to(old) for p in old.rglob("*")) == before  # nothing was written
    assert not (old / ".git").exists()


def test_cli_init_over_or_inside_an_expipe_06_project_refuses(tmp_path, capsys):
    from conftest import assert_one_error_line, run

    old = tmp_path / "old_project"
    shutil.copytree(FIXTURE_06, old)
    code, _, err = run(capsys, "init", str(old))
    assert code != 0
    assert_one_error_line(err, str(old))
    code, _, err = run(capsys, "init", str(old / "actions" / "new"))
    assert code != 0
    assert_one_error_line(err, "inside the expipe 0.6 project")
    assert not (old / ".git").exists() and not (old / "actions" / "new").exists()


def test_delete_action_keeps_data_with_a_warning_or_removes_it_when_asked(project):
    action = project.require_action("rec-1")
    raw = action.data_path() / "raw.bin"
    raw.write_bytes(b"recording")
    with pytest.warns(UserWarning, match=re.escape(str(action.path / "data"))):
        project.delete_action("rec-1")
    assert raw.read_bytes() == b"recording"
    assert "rec-1" not in project.actions
    assert_clean(project.path)
    again = project.require_action("rec-1")
    assert (again.data_path() / "raw.bin").is_file()  # what the warning said
    project.delete_action("rec-1", remove_data=True)
    assert not again.path.exists()
    # An empty data folder holds nothing to lose: removed without a warning.
    empty = project.require_entity("rat1")
    empty.data_path()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        project.delete_entity("rat1")
    assert not empty.path.exists()
    assert_clean(project.path)


def test_backend_compatibility_object_sets_attributes_in_one_commit_each(project):
    entity = project.require_entity("rat1")
    with commits(project.path, 1):
        entity._backend.attributes.set("species", "Rattus norvegicus")
    with commits(project.path, 1):
        entity._backend.attributes.set("tags", ["a"])
    with commits(project.path, 0):
        with pytest.raises(TypeError):
            entity._backend.attributes.set("tags", "a")
    assert entity._backend.attributes.get() == entity.attributes
    assert "compatibility" in repr(entity._backend)
    module = entity.create_module("m", contents={"a": 1})
    assert module._backend.path == entity.path / "modules" / "m.toml"
    assert module.get("missing") is None  # getting-started.md: module["missing"] is a KeyError, .get is None


def test_message_of_a_second_with_two_messages_asks_for_the_id(project):
    action = project.require_action("a")
    first = action.create_message("one", user="u", datetime=WHEN)
    action.create_message("two", user="u", datetime=WHEN)
    key = WHEN.strftime(expipe_git.datetime_key_format)
    assert key in action.messages
    with pytest.raises(KeyError, match="2 messages in the second") as caught:
        action.messages[key]
    assert first.id in str(caught.value)
    assert action.messages[first.id].text == "one"


def test_message_ids_of_an_imported_project_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = expipe06.require_project("old")
    old.require_action("rec-1").create_message(text="looked fine", user="Peter", datetime=WHEN)
    old_ids = list(old.actions["rec-1"].messages)
    project = expipe_git.import_expipe_project("old", "new")
    messages = project.actions["rec-1"].messages
    assert [messages[old_id].text for old_id in old_ids] == ["looked fine"]


def test_message_blame_names_the_commit_of_each_key(project):
    message = project.require_action("a").create_message("hi", user="u", datetime=WHEN)
    message.text = "hello"
    blame = message.blame()
    assert set(blame) == {("text",), ("user",), ("datetime",)}
    assert blame[("text",)].subject.endswith(": set text")
    assert blame[("user",)].subject.endswith(": create")


def test_readme_value_claims_hold(project):
    """README: numpy arrays come back as lists and numpy scalars as Python numbers; quantities as stored."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "numpy arrays come back as lists and numpy scalars as Python numbers" in readme
    module = project.require_action("a").create_module(
        name="m",
        contents={"arr": np.array([1.5, 2.5]), "f": np.float64(0.5), "i": np.int32(3), "q": [1, 2] * pq.mV},
    )
    contents = module.contents
    assert contents["arr"] == [1.5, 2.5] and type(contents["arr"]) is list
    assert type(contents["f"]) is float and type(contents["i"]) is int
    assert isinstance(contents["q"], pq.Quantity) and contents["q"].dimensionality.string == "mV"
    assert "work on actions, entities, modules, templates and messages" in readme
    message = project.actions["a"].create_message("hi", user="u", datetime=WHEN)
    for obj in (project.actions["a"], module, message):
        assert obj.blame() and obj.history()


def test_assignments_join_a_transaction_and_are_refused_on_a_read_only_view(project):
    action = project.require_action("a")
    with commits(project.path, 1):
        with project.transaction("register session"):
            action.modules["tracking"] = {"box": "square"}
            project.templates["daq"] = {"identifier": "daq"}
            project.config["probe_path"] = "/probes/x.json"
            action._backend.attributes.set("species", "rat")
    assert git(project.path, "log", "-1", "--format=%s").strip() == "register session"
    old = project.at("HEAD~1")
    with commits(project.path, 0):
        for change in (
            lambda: old.actions["a"].modules.__setitem__("m", {}),
            lambda: old.templates.__setitem__("t", {}),
            lambda: old.config.__setitem__("x", 1),
        ):
            with pytest.raises(expipe_git.ReadOnlyError):
                change()
    assert "probe_path" not in old.config.stored and project.config["probe_path"] == "/probes/x.json"
