"""The expipe 0.6 API on git: projects, actions, entities, modules, templates, messages."""

from __future__ import annotations

import collections
import datetime as dt
import zoneinfo

import numpy as np
import pytest
import quantities as pq
from conftest import GIT_EMAIL, GIT_NAME, assert_clean, commit_count, commits, git

import expipe_git
import expipe_git as expipe

# -- projects ----------------------------------------------------------------


def test_require_project_creates_a_git_repository_on_main(tmp_path):
    project = expipe.require_project(tmp_path / "lab")
    assert project.id == "lab"
    assert project.config["project"] == "lab"
    assert project.config["storage_format"] == 1
    assert git(project.path, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert git(project.path, "log", "--format=%s").strip() == "project: create 'lab'"
    assert_clean(project.path)


def test_project_name_can_differ_from_folder(tmp_path):
    project = expipe.create_project(tmp_path / "folder", name="my-study")
    assert project.id == "my-study"
    assert expipe.get_project(tmp_path / "folder").id == "my-study"


def test_get_missing_project_raises_key_error(tmp_path):
    with pytest.raises(KeyError, match="no expipe_git project"):
        expipe.get_project(tmp_path / "nothing")


def test_project_inside_project_raises_key_error(project):
    with pytest.raises(KeyError, match="inside the project"):
        expipe.create_project(project.path / "inner")


def test_existing_folder_that_is_no_project_raises_file_exists_error(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(FileExistsError, match="not an expipe_git project"):
        expipe.require_project(tmp_path / "plain")
    with pytest.raises(FileExistsError):
        expipe.create_project(tmp_path / "plain")
    project = expipe.create_project(tmp_path / "plain", init=True)
    assert project.id == "plain"


def test_newer_storage_format_is_refused_clearly(project):
    config = project.path / "expipe.toml"
    config.write_text(config.read_text().replace("storage_format = 1", "storage_format = 2"))
    git(project.path, "commit", "-qam", "from the future")
    with pytest.raises(ValueError, match="storage format 2.*upgrade expipe_git"):
        expipe.get_project(project.path)


def test_require_project_returns_existing(project):
    project.require_action("a")
    again = expipe.require_project(project.path)
    assert list(again.actions) == ["a"]


# -- object maps ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["action", "entity"])
def test_object_maps_are_sorted_mappings(project, kind):
    require = getattr(project, f"require_{kind}")
    for name in ["zeta", "alpha", "rec.2019.v1", "mid"]:
        require(name)
    objects = getattr(project, "actions" if kind == "action" else "entities")
    assert list(objects) == ["alpha", "mid", "rec.2019.v1", "zeta"]
    assert list(objects.keys()) == ["alpha", "mid", "rec.2019.v1", "zeta"]
    assert len(objects) == 4
    assert "alpha" in objects and "nope" not in objects
    assert objects["rec.2019.v1"].id == "rec.2019.v1"
    assert [o.id for o in objects.values()] == list(objects)
    assert [name for name, _ in objects.items()] == list(objects)


@pytest.mark.parametrize("kind", ["action", "entity", "template", "module"])
def test_create_require_delete_errors(project, kind):
    create = getattr(project, f"create_{kind}")
    require = getattr(project, f"require_{kind}")
    delete = getattr(project, f"delete_{kind}")
    args = {"module": {"contents": {"a": 1}}, "template": {"contents": {"a": 1}}}.get(kind, {})
    create("x", **args)
    with pytest.raises(KeyError, match="already exists"):
        create("x", **args)
    assert require("x", **args).id == "x"
    delete("x")
    with pytest.raises(KeyError, match="does not exist"):
        delete("x")
    with pytest.raises(TypeError):
        create(None, **args)
    with pytest.raises(ValueError, match="empty"):
        create("", **args)
    assert_clean(project.path)


def test_missing_object_raises_key_error(project):
    with pytest.raises(KeyError, match="action 'ghost' does not exist"):
        project.actions["ghost"]
    with pytest.raises(KeyError):
        project.templates["ghost"]
    with pytest.raises(KeyError):
        project.modules["ghost"]


def test_delete_action_removes_its_folder(project):
    action = project.require_action("rec")
    action.require_module(name="m", contents={"a": 1})
    action.create_message("note")
    with commits(project.path, 1):
        project.delete_action("rec")
    assert "rec" not in project.actions
    assert git(project.path, "ls-files").strip() in (".gitignore\nexpipe.toml", "")
    assert not (project.path / "actions").exists()


# -- attributes -------------------------------------------------------------------


def test_every_setter_is_one_commit_with_a_readable_message(project):
    action = project.require_action("rec-1")
    for attribute, value in [
        ("type", "Recording"),
        ("location", "lab 2"),
        ("datetime", dt.datetime(2026, 1, 2, 3, 4, 5, 678901)),
        ("users", ["Peter"]),
        ("tags", ["a", "b"]),
        ("entities", ["rat1"]),
    ]:
        with commits(project.path, 1):
            setattr(action, attribute, value)
        assert git(project.path, "log", "-1", "--format=%s").strip() == f"action 'rec-1': set {attribute}"
        trailers = git(project.path, "log", "-1", "--format=%(trailers:only,unfold)")
        assert "Expipe-Object: action/rec-1" in trailers
        assert f"Expipe-Operation: set {attribute}" in trailers


def test_author_comes_from_git_config(project):
    project.require_action("a")
    assert git(project.path, "log", "-1", "--format=%an <%ae>").strip() == f"{GIT_NAME} <{GIT_EMAIL}>"
    assert git(project.path, "log", "-1", "--format=%aI").strip()[-6] in "+-"


def test_type_and_location_must_be_str(project):
    action = project.require_action("a")
    before = commit_count(project.path)
    for attribute in ("type", "location"):
        with pytest.raises(TypeError):
            setattr(action, attribute, 3)
    with pytest.raises(TypeError):
        action.datetime = "2020-01-01"
    assert commit_count(project.path) == before


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(2020, 12, 18, 19, 59, 3),
        dt.datetime(2020, 12, 18, 19, 59, 3, 123456),
        dt.datetime(2020, 12, 18, 19, 59, 3, 5, tzinfo=dt.timezone.utc),
        dt.datetime(2020, 12, 18, 19, 59, 3, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
        dt.datetime(2020, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Oslo")),
    ],
)
def test_datetime_round_trips_exactly(project, when):
    action = project.require_action("a")
    action.datetime = when
    got = expipe.get_project(project.path).actions["a"].datetime
    assert got == when
    assert got.utcoffset() == when.utcoffset()
    assert (got.tzinfo is None) == (when.tzinfo is None)
    if isinstance(when.tzinfo, zoneinfo.ZoneInfo):
        assert got.tzinfo == when.tzinfo


def test_list_attributes_have_set_semantics_and_keep_order(project):
    action = project.require_action("a")
    action.tags = ["b", "a", "b", "c"]
    assert list(action.tags) == ["b", "a", "c"]
    tags = action.tags
    tags.append("d")
    tags.append("e")  # expipe lost the first of two appends on one object
    assert list(action.tags) == ["b", "a", "c", "d", "e"]
    action.tags.extend(["a", "f"])
    assert list(action.tags) == ["b", "a", "c", "d", "e", "f"]
    action.tags.remove("a")
    assert action.tags == ["b", "c", "d", "e", "f"]
    assert "c" in action.tags and len(action.tags) == 5 and action.tags[0] == "b"
    with pytest.raises(ValueError):
        action.tags.remove("zzz")


def test_list_attributes_reject_non_str(project):
    action = project.require_action("a")
    for attribute in ("users", "tags", "entities"):
        with pytest.raises(TypeError):
            setattr(action, attribute, ["ok", 1])
        with pytest.raises(TypeError):
            setattr(action, attribute, "not a list")
        with pytest.raises(TypeError):
            getattr(action, attribute).append(3)
    assert action.tags == []


def test_subjects_is_the_stored_entities_list(project):
    action = project.require_action("a")
    action.subjects = ["rat1"]
    assert list(action.entities) == ["rat1"]
    action.entities.append("rat2")
    assert list(action.subjects) == ["rat1", "rat2"]
    assert project.actions["a"].attributes["entities"] == ["rat1", "rat2"]


def test_old_handle_sees_latest_committed_value(project):
    old = project.require_action("a")
    other = expipe.get_project(project.path).actions["a"]
    other.tags = ["new"]
    assert list(old.tags) == ["new"]


def test_setting_the_same_value_makes_no_commit(project):
    action = project.require_action("a")
    action.location = "here"
    with commits(project.path, 0):
        action.location = "here"


def test_attributes_and_registered(project):
    action = project.require_action("a")
    action.type = "Surgery"
    assert action.attributes["type"] == "Surgery"
    assert isinstance(action.registered, dt.datetime)


def test_entities_have_attributes_modules_and_messages(project):
    rat = project.require_entity("rat1")
    rat.type = "Subject"
    rat.tags = ["male"]
    rat.require_module(name="info", contents={"weight": 300 * pq.g})
    rat.create_message("arrived")
    again = expipe.get_project(project.path).entities["rat1"]
    assert again.type == "Subject" and list(again.tags) == ["male"]
    assert again.modules["info"]["weight"] == 300 * pq.g
    assert [m.text for m in again.messages.values()] == ["arrived"]
    assert_clean(project.path)


# -- data -------------------------------------------------------------------------


def test_data_entries_and_paths_are_never_committed(project):
    action = project.require_action("a")
    action.data["main"] = "main.exdir"
    assert dict(action.data) == {"main": "main.exdir"}
    path = action.data_path("main")
    assert path == action.data_path() / "main.exdir"
    path.mkdir()
    (path / "huge.bin").write_bytes(b"\0" * 1000)
    assert_clean(project.path)  # ignored by git
    assert "huge.bin" not in git(project.path, "ls-files")
    del action.data["main"]
    assert dict(action.data) == {}
    with pytest.raises(KeyError):
        action.data_path("main")


# -- modules ------------------------------------------------------------------------


def test_module_contents_types(project):
    action = project.require_action("a")
    assert action.require_module(name="d", contents={"x": 1}).contents == {"x": 1}
    assert action.require_module(name="l", contents=[1, 2, 3]).contents == [1, 2, 3]
    assert action.require_module(name="n", contents=np.arange(3)).contents == [0, 1, 2]
    for bad in ("text", 3, None):
        with pytest.raises(TypeError):
            action.create_module(name="bad", contents=bad)
    assert "bad" not in action.modules


def test_module_values_are_lossless(project):
    contents = {
        "depth": 2 * pq.um,
        "array": np.array([1.0, 2.0]) * pq.mV,
        "uncertain": pq.UncertainQuantity(3.0, pq.s, 0.1),
        "list_of_q": [1 * pq.Hz, 2 * pq.Hz],
        "plain": {"value": 1000, "unit": "um", "definition": "depth"},
        "ints": {0: "mecr", 1: "ca1"},
        "strkeys": {"0": "mecr"},
        "nan": float("nan"),
        "inf": float("inf"),
        "none": None,
        "big": 2**70,
        "np": np.float32(1.5),
        "when": dt.datetime(2020, 1, 1, 1, 1, 1, 1),
        "day": dt.date(2020, 1, 1),
    }
    project.require_module(name="m", contents=contents)
    got = expipe.get_project(project.path).modules["m"].contents
    assert got["depth"] == 2 * pq.um and str(got["depth"]) == "2.0 um"
    assert isinstance(got["depth"], pq.Quantity)
    assert (got["array"] == np.array([1.0, 2.0]) * pq.mV).all()
    assert isinstance(got["uncertain"], pq.UncertainQuantity)
    assert float(got["uncertain"].uncertainty.magnitude) == 0.1
    assert got["list_of_q"][1] == 2 * pq.Hz
    assert got["plain"] == {"value": 1000, "unit": "um", "definition": "depth"}
    assert got["ints"] == {0: "mecr", 1: "ca1"} and list(got["ints"])[0] == 0
    assert got["strkeys"] == {"0": "mecr"}
    assert np.isnan(got["nan"]) and got["inf"] == float("inf")
    assert got["none"] is None and got["big"] == 2**70
    assert got["np"] == 1.5 and got["when"] == contents["when"] and got["day"] == contents["day"]


def test_unstorable_values_are_refused_before_anything_is_written(project):
    action = project.require_action("a")
    before = commit_count(project.path)
    with pytest.raises(TypeError, match=r"\['probe'\]"):
        action.require_module(name="m", contents={"probe": {1, 2}})
    module = action.require_module(name="ok", contents={"a": 1})
    with pytest.raises(TypeError):
        module["b"] = object()
    assert commit_count(project.path) == before + 1
    assert module.contents == {"a": 1}
    assert_clean(project.path)


def test_module_mapping_and_nested_write_through(project):
    action = project.require_action("a")
    module = action.require_module(name="probe", contents={"a": {"b": 1}, "c": 2})
    assert set(module) == {"a", "c"} and len(module) == 2 and "a" in module
    with commits(project.path, 1):
        module["a"]["b"] = 5
    assert git(project.path, "log", "-1", "--format=%s").strip() == ("module 'probe' of action 'a': set a.b")
    with commits(project.path, 1):
        module["d"] = 3 * pq.mm
    with commits(project.path, 1):
        del module["c"]
    with commits(project.path, 1):
        module.update({"e": 1, "f": 2})
    old_handle = action.modules["probe"]
    fresh = expipe.get_project(project.path).actions["a"].modules["probe"]
    fresh["a"]["b"] = 6
    assert old_handle["a"]["b"] == 6
    assert old_handle.to_dict() == collections.OrderedDict(
        [("a", {"b": 6}), ("d", 3 * pq.mm), ("e", 1), ("f", 2)]
    )


def test_to_dict_is_an_ordered_dict_of_plain_values(project):
    module = project.require_module(name="m", contents={"box_shape": {"value": "square"}})
    assert repr(module.to_dict()) == "OrderedDict([('box_shape', {'value': 'square'})])"


def test_require_module_returns_existing_without_changing_its_values(project):
    action = project.require_action("a")
    action.require_module(name="m", contents={"a": 1})
    with commits(project.path, 0):
        assert action.require_module(name="m", contents={"a": 2}).contents == {"a": 1}
    with commits(project.path, 1):
        module = action.require_module(name="m", contents={"a": 2, "b": 3})
    assert module.contents == {"a": 1, "b": 3}  # missing keys added, existing ones kept
    assert git(project.path, "log", "-1", "--format=%s").strip() == "module 'm' of action 'a': add b"
    with pytest.raises(KeyError, match="does not exist"):
        action.require_module(name="missing")


# -- templates --------------------------------------------------------------------


def test_module_from_template_holds_only_the_template_fields(project):
    fields = {"channel_count": {"definition": "channels", "value": "64"}}
    template = project.require_template("hardware_daq", fields)
    assert template.identifier == "hardware_daq"
    assert template.contents["identifier"] == "hardware_daq"
    action = project.require_action("a")
    daq = action.require_module(template="hardware_daq")
    assert daq.name == "hardware_daq"
    assert daq.to_dict() == collections.OrderedDict(fields)
    named = action.require_module("tracking", template="hardware_daq")
    assert named.name == "tracking" and named.contents == fields


def test_template_identifier_names_the_module(project):
    project.require_template("t", {"identifier": "ident", "x": {"value": 1}})
    module = project.require_action("a").require_module(template="t")
    assert module.name == "ident" and module.contents == {"x": {"value": 1}}


def test_missing_template(project):
    action = project.require_action("a")
    with pytest.raises(KeyError, match="template 'nope'"):
        action.create_module("tracking", template="nope")
    with pytest.raises(KeyError, match="template 'nope'"):
        action.require_module(template="nope")  # no name to give the module
    with pytest.warns(UserWarning, match="template 'nope' does not exist.*starts empty"):
        module = action.require_module("tracking", template="nope")
    assert module.contents == {}
    # The getting-started document's next step fills it in.
    action.require_module(name="tracking", contents={"box_shape": {"value": "square"}})
    assert repr(module.to_dict()) == "OrderedDict([('box_shape', {'value': 'square'})])"


# -- messages ----------------------------------------------------------------------


def test_messages(project):
    action = project.require_action("a")
    t0 = dt.datetime(2020, 1, 1, 12, 0, 0)
    late = action.create_message("late", user="Mary", datetime=t0 + dt.timedelta(hours=1))
    early = action.create_message("early", datetime=t0)
    assert early.user == GIT_NAME
    assert [m.text for m in action.messages.values()] == ["early", "late"]
    assert list(action.messages) == [early.id, late.id]
    with commits(project.path, 1):
        late.text = "later"
    late.user = "Peter"
    late.datetime = t0 - dt.timedelta(hours=1)
    assert [m.text for m in action.messages.values()] == ["later", "early"]
    assert action.messages[late.id].contents == {
        "text": "later",
        "user": "Peter",
        "datetime": t0 - dt.timedelta(hours=1),
    }


def test_two_messages_in_one_second_are_both_kept(project):
    action = project.require_action("a")
    when = dt.datetime(2020, 1, 1, 12, 0, 0)
    action.create_message("one", user="P", datetime=when)
    action.create_message("two", user="P", datetime=when)
    assert sorted(m.text for m in action.messages.values()) == ["one", "two"]
    with pytest.raises(KeyError, match="has this message already"):
        action.create_message("two", user="P", datetime=when)


def test_message_type_errors(project):
    action = project.require_action("a")
    before = commit_count(project.path)
    with pytest.raises(TypeError):
        action.create_message(3)
    with pytest.raises(TypeError):
        action.create_message("x", user=3)
    with pytest.raises(TypeError):
        action.create_message("x", datetime="2020-01-01")
    assert commit_count(project.path) == before


def test_set_messages_replaces_all_in_one_commit(project):
    action = project.require_action("a")
    action.create_message("old")
    when = dt.datetime(2021, 5, 5, 5, 5, 5)
    with commits(project.path, 1):
        action.messages = [
            {"message": "hello", "user": "Peter", "datetime": when},
            {"text": "world", "user": "Mary", "datetime": when + dt.timedelta(seconds=1)},
        ]
    assert [(m.text, m.user) for m in action.messages.values()] == [("hello", "Peter"), ("world", "Mary")]
    with commits(project.path, 1):
        action.delete_messages()
    assert len(action.messages) == 0


# -- git ------------------------------------------------------------------------------


def test_commits_made_with_stock_git_are_read_and_kept(project):
    action = project.require_action("a")
    action.location = "here"
    [attributes] = list(project.path.glob("actions/*/a/attributes.toml"))
    attributes.write_text(attributes.read_text().replace('"here"', '"there"'))
    git(project.path, "commit", "-qam", "edit by hand")
    assert action.location == "there"
    action.tags = ["x"]
    assert action.location == "there"
    assert git(project.path, "log", "--format=%s", "-2").splitlines() == [
        "action 'a': set tags",
        "edit by hand",
    ]
    assert_clean(project.path)


def test_hand_edit_is_never_overwritten(project):
    action = project.require_action("a")
    action.location = "here"
    [attributes] = list(project.path.glob("actions/*/a/attributes.toml"))
    edited = attributes.read_text() + "# my note\n"
    attributes.write_text(edited)
    before = commit_count(project.path)
    with pytest.raises(expipe_git.UncommittedChangesError, match="attributes.toml"):
        action.location = "elsewhere"
    assert attributes.read_text() == edited
    assert commit_count(project.path) == before
    rel = attributes.relative_to(project.path).as_posix()
    assert project.status() == [(rel, "modified")]
    project.commit("add a note")
    assert project.status() == []
    assert_clean(project.path)
    action.location = "elsewhere"  # works again once the edit is committed
    assert action.location == "elsewhere"


def test_commit_refuses_invalid_hand_edits(project):
    module = project.require_module(name="m", contents={"a": 1})
    [path] = list(project.path.glob("modules/m.toml"))
    path.write_text("a = [unclosed\n")
    before = commit_count(project.path)
    with pytest.raises(ValueError, match="modules/m.toml"):
        project.commit("broken")
    assert commit_count(project.path) == before
    (project.path / "stray.txt").write_text("x")
    (project.path / "modules" / "notes.txt").write_text("x")
    path.write_text("a = 2\n")
    with pytest.raises(ValueError, match=r"modules/notes.txt is not a record .*, and modules/ holds only"):
        project.commit("stray", ["stray.txt", "modules/notes.txt"])  # a file in a record folder is refused
    assert commit_count(project.path) == before
    (project.path / "modules" / "notes.txt").unlink()
    project.commit("fix")  # a new file that is not a record is left alone unless named
    assert module["a"] == 2
    assert git(project.path, "status", "--porcelain") == "?? stray.txt\n"
    project.commit("my notes", ["stray.txt"])  # named, it is committed
    assert git(project.path, "show", "--name-only", "--format=", "HEAD").split() == ["stray.txt"]
    assert (project.path / "stray.txt").read_text() == "x"
    assert_clean(project.path)


def test_commit_refuses_hand_edits_that_orphan_records(project):
    action = project.require_action("a")
    action.require_module(name="m", contents={"x": 1})
    [attributes] = list(project.path.glob("actions/*/a/attributes.toml"))
    attributes.unlink()
    before = commit_count(project.path)
    with pytest.raises(ValueError, match="modules/m.toml of action 'a' remains"):
        project.commit("half a deletion")
    git(project.path, "checkout", "--", attributes.relative_to(project.path).as_posix())
    stray = project.path / expipe_git.layout.module_path(("action", "ghost"), "m")
    stray.parent.mkdir(parents=True)
    stray.write_text("x = 1\n")
    with pytest.raises(ValueError, match="has no"):
        project.commit("orphan")
    assert commit_count(project.path) == before
    import shutil

    shutil.rmtree(stray.parents[1])
    shutil.rmtree(attributes.parent)
    project.commit("delete action a by hand")
    assert list(project.actions) == []
    assert_clean(project.path)


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "a\\b",
        "..",
        ".",
        ".git",
        ".GIT",
        ".hidden",
        "GIT~1",
        "git~1",
        ".g\u200cit",
        "a\u200bb",
        "nul\0",
        "tab\t",
        "new\nline",
        "con",
        "COM1",
        "lpt9.txt",
        "x" * 300,
        "trailing.",
        "trailing ",
        "a:b",
        "what?",
    ],
)
def test_hostile_names_are_refused_before_touching_disk(project, name):
    before = commit_count(project.path)
    with pytest.raises(ValueError):
        project.require_action(name)
    with pytest.raises(ValueError):
        project.require_template(name, {})
    with pytest.raises(ValueError):
        project.require_module(name=name, contents={})
    assert commit_count(project.path) == before
    assert_clean(project.path)


@pytest.mark.parametrize(
    "name",
    ["CONIN$", "conout$", "CONOUT$.toml", "COM\u00b9", "LPT\u00b2", "com\u00b3.txt", "COM0", "lpt0.log"],
)
def test_windows_console_and_superscript_device_names_are_refused(project, name):
    """Git for Windows refuses these as it refuses CON and COM1: a checkout there would fail."""
    before = commit_count(project.path)
    with pytest.raises(ValueError, match="reserved device name on Windows"):
        project.require_action(name)
    with pytest.raises(ValueError, match="reserved device name on Windows"):
        project.require_action("rec").require_module(name=name, contents={})
    assert commit_count(project.path) == before + 1  # the action 'rec' only


@pytest.mark.parametrize("name", ["COM10", "conin", "CONOUTS", "lpt", "com\u2074", "console$"])
def test_names_that_only_look_like_device_names_are_allowed(project, name):
    project.require_action(name)
    assert name in expipe.get_project(project.path).actions


def test_names_with_dots_work(project):
    action = project.require_action("rec.2019.v1")
    action.require_module(name="probe.v2", contents={"a": 1})
    assert list(expipe.get_project(project.path).actions) == ["rec.2019.v1"]
    assert list(action.modules) == ["probe.v2"]


def test_public_names():
    for name in [
        "Project",
        "Action",
        "Entity",
        "Module",
        "Template",
        "Message",
        "PropertyList",
        "datetime_format",
        "datetime_key_format",
        "require_project",
        "create_project",
        "get_project",
    ]:
        assert hasattr(expipe_git, name)
        assert hasattr(expipe_git.core, name)
    assert expipe_git.__all__ == sorted(expipe_git.__all__)


def test_hooks_never_run(project):
    hooks = project.path / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    marker = project.path.parent / "hook-ran"
    for name in ("pre-commit", "commit-msg", "post-commit", "reference-transaction"):
        hook = hooks / name
        hook.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
        hook.chmod(0o755)
    with commits(project.path, 2):
        action = project.require_action("a")
        action.tags = ["x"]
    assert not marker.exists()


def test_state_folder_can_be_deleted(project):
    import shutil

    action = project.require_action("a")
    action.tags = ["x"]
    shutil.rmtree(project.path / ".git" / "expipe-git")
    assert list(expipe.get_project(project.path).actions["a"].tags) == ["x"]
    with commits(project.path, 1):
        action.tags.append("y")
    assert list(action.tags) == ["x", "y"]
