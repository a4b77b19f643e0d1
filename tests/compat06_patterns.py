"""The expipe 0.6 script patterns that run the same on expipe 0.6 and on expipe_git.

Taken from real lab code: the CINPLA acquisition plugin (expipe-plugin-cinpla:
registration scripts, widgets, its tests), its old-project conversion script
and expipe 0.6's own tests. Each takes the library (``expipe`` or
``expipe_git``) and returns plain values; tests/test_compat_06.py runs each on
both and compares. The comments say where a pattern comes from.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import shutil

import numpy as np
import quantities as pq

FIXTURE_06 = pathlib.Path(__file__).resolve().parent / "fixtures" / "expipe-0.6-old-project"
WHEN = dt.datetime(2017, 6, 1, 21, 42, 20)
# The user's expipe settings file each library's HOME holds.
SETTINGS_YAML = """\
username: Mary
email: mary@lab.org
location: ibv
probe_path: /probes/tetrode.json
plugins: [expipe_plugin_cinpla]
lab:
  name: CINPLA
  rooms: [a, b]
"""


def lab(expipe):
    return expipe.require_project("lab")


def without_git_identity():
    # A rig set up for expipe 0.6 alone: no git identity, so expipe's username names
    # the user (with one, git's identity comes first; see message_user_with_a_git_identity).
    (pathlib.Path.home() / ".gitconfig").unlink(missing_ok=True)


def config_username_and_location(expipe):
    # plugin, every registration: user = user or project.config.get("username")
    project = lab(expipe)
    return project.config.get("username"), project.config.get("location"), project.config.get("probe_path")


def config_nested_settings_and_lists(expipe):
    # plugins and nested sections are YAML, not flat lines
    return lab(expipe).config["plugins"], lab(expipe).config["lab"]


def config_database_version(expipe):
    return lab(expipe).config["database_version"]


def config_edit_then_read_on_the_same_project(expipe):
    # plugin tests/conftest.py: project.config["username"] = USER_NAME; project.config.get("username")
    project = expipe.create_project(path="lab", name="lab")
    project.config["username"] = "Peter"
    project.config["possible_tags"] = ["a", "b"]
    return project.config.get("username"), project.config.get("possible_tags")


def config_missing_key(expipe):
    # widgets/curation.py: project.config.get("custom_qms")
    return lab(expipe).config.get("custom_qms"), "custom_qms" in lab(expipe).config


def settings_at_import(expipe):
    # core.create_message: user or expipe.settings.get("username")
    return expipe.settings.get("username"), expipe.settings["lab"]["rooms"]


def settings_edited_in_memory(expipe):
    # a script that sets the user for what follows: expipe.settings["username"] = ...
    expipe.settings["username"] = "Peter"
    without_git_identity()
    project = lab(expipe)
    return project.require_action("a").create_message(text="hi", datetime=WHEN).user, project.config[
        "username"
    ]


def config_functions(expipe):
    # expipe-plugin-cinpla tools/imports.py: expipe.config._load_local_config(Path.cwd())
    project = lab(expipe)
    (project.path / "sub").mkdir()
    root, _ = expipe.config._load_local_config(project.path / "sub")
    outside, config = expipe.config._load_local_config(project.path.parent)
    return (
        root == project.path,
        outside,
        config,
        expipe.config._is_in_project(project.path),
        expipe.config._merge_config({"plugins": ["a"], "x": 1}, {"x": 2}, {"plugins": ["b"]}),
        expipe.config._load_config_by_name(None)["username"],
    )


def config_dump_and_reload(expipe):
    # expipe's `expipe config global --add ...`: load, update, dump, reload
    config = expipe.config._load_config_by_name(None)
    config.update({"location": "room 2"})
    expipe.config._dump_config_by_name(None, config)
    expipe.config.reload_config()
    return expipe.config.settings["location"], expipe.config.settings["plugins"]


def assign_action_module(expipe):
    # plugin register_surgery: action.modules[key] = {}; then nested assignments
    action = lab(expipe).require_action("rat1-surgery")
    action.modules["implant"] = {}
    action.modules["implant"]["probe_0"] = {}
    action.modules["implant"]["probe_0"]["position"] = pq.Quantity([1.0, 2.0, 3.0], "mm")
    action.modules["implant"]["probe_0"]["angle"] = pq.Quantity(15.0, "deg")
    module = lab(expipe).actions["rat1-surgery"].modules["implant"]
    return module.contents, "probe_0" in action.modules["implant"]


def assign_replaces_a_module(expipe):
    action = lab(expipe).require_action("a")
    action.modules["tracking"] = {"box": "square", "old": 1}
    action.modules["tracking"] = {"box": "round"}
    return action.modules["tracking"].contents, list(action.modules)


def assign_entity_and_project_modules(expipe):
    # plugin register_entity: entity.modules["register"] = {}; register_surgery: modules[key]["weight"] = q
    project = lab(expipe)
    entity = project.require_entity("rat1")
    if "register" not in entity.modules:
        entity.modules["register"] = {}
    entity.modules["register"]["weight"] = pq.Quantity(300, "g")
    project.modules["settings"] = {"lab": "IBV"}
    return entity.modules["register"].contents, project.modules["settings"].contents


def nested_contents(expipe):
    # plugin utils.get_depth_from_adjustment: adjusts[date]["depth"].contents
    action = lab(expipe).require_action("rat1-adjustment")
    action.create_module(
        name="000_adjustment",
        contents={"depth": {"CA1": {"probe_0": 2.5 * pq.mm}}, "date": "2020-01-01T10:00:00"},
    )
    module = action.modules["000_adjustment"]
    return module["depth"].contents, module.contents["depth"], module["depth"]["CA1"].contents


def module_contents_types(expipe):
    # expipe 0.6 tests: arrays come back as lists, quantities as quantities, int keys as ints
    action = lab(expipe).require_action("a")
    action.modules["m"] = {"quan": [1, 2] * pq.s, "arr": np.array([1, 2]), 1: "one"}
    contents = action.modules["m"].contents
    return (
        type(contents["arr"]).__name__,
        isinstance(contents["quan"], pq.Quantity),
        action.modules["m"][1],
        contents,
    )


def module_from_list_and_array(expipe):
    action = lab(expipe).require_action("a")
    action.create_module("listed", contents=["list I am", 1])
    action.create_module("arrayed", contents=np.array(["species", "1"]))
    return action.modules["listed"].contents, action.modules["arrayed"].contents


def deep_set_on_project_module(expipe):
    # expipe 0.6 tests: project.modules[m]["species"]["value"] = "mouse"
    project = lab(expipe)
    module = project.create_module("species", contents={"species": {"value": "rat"}})
    project.modules["species"]["species"]["value"] = "mouse"
    return module["species"]["value"], module["species"] == {"value": "mouse"}


def iterate_modules_items(expipe):
    # plugin utils.get_depth_from_surgery: for key, module in surgery.modules.items(): module.items()
    action = lab(expipe).require_action("rat1-surgery-implantation")
    action.modules["mec"] = {"probe_0": {"position": pq.Quantity([1.0, 2.0, 3.0], "mm")}}
    found = {}
    for key, module in action.modules.items():
        for probe_key, probe in module.items():
            found[(key, probe_key)] = probe["position"]
    return found


def assign_template(expipe):
    project = lab(expipe)
    project.templates["daq"] = {"identifier": "daq", "channels": {"value": 64}}
    project.templates["daq"] = {"identifier": "daq", "channels": {"value": 32}}
    module = project.require_action("a").create_module(template="daq")
    return project.templates["daq"].contents, module["channels"], module.id


def module_from_template_by_name(expipe):
    # plugin utils.register_templates: action.create_module(template=template)
    project = lab(expipe)
    project.create_template("tracking", {"identifier": "tracking", "box": {"value": "square"}})
    action = project.create_action("a")
    action.create_module(template="tracking")
    with_name = action.create_module("tracking-2", template="tracking")
    return action.modules["tracking"]["box"], with_name.id, with_name["box"]["value"]


def delete_module_then_create(expipe):
    # plugin utils.register_depth: if "depth" in action.modules and overwrite: delete, create
    action = lab(expipe).require_action("a")
    action.create_module(name="depth", contents={"x": 1})
    if "depth" in action.modules:
        action.delete_module("depth")
    action.create_module(name="depth", contents={"x": 2})
    return action.modules["depth"].contents


def create_module_twice(expipe):
    action = lab(expipe).require_action("a")
    action.create_module(name="depth", contents={"x": 1})
    action.create_module(name="depth", contents={"x": 2})


def action_path(expipe):
    # plugin tests: action.path / "data" / "main.nwb"; conversion: old_actions[id].path / "data"
    action = lab(expipe).require_action("rec-1")
    return action.path / "data" == action.data_path(), action.path.is_dir(), action.path.name


def entity_path(expipe):
    entity = lab(expipe).require_entity("rat1")
    return entity.path.is_dir(), entity.path.name


def backend_path_and_attributes(expipe):
    # plugin: action._backend.path; entity._backend.attributes.set("species", species)
    project = lab(expipe)
    entity = project.require_entity("rat1")
    entity._backend.attributes.set("species", "Rattus norvegicus")
    entity._backend.attributes.set("sex", "M")
    action = project.require_action("rec-1")
    return (
        entity.attributes["species"],
        project.entities["rat1"].attributes["sex"],
        entity._backend.attributes.get("species"),
        action._backend.path == action.path,
        project._backend.path == project.path,
        "species" not in project.require_entity("rat2").attributes,
    )


def module_backend_path(expipe):
    # expipe 0.6 tests: project_module._backend.path == project.modules[name]._backend.path
    project = lab(expipe)
    module = project.create_module("m", contents={"species": {"value": "rat"}})
    action_module = project.require_action("a").create_module("m", contents={"x": 1})
    return (
        module._backend.path == project.modules["m"]._backend.path,
        action_module._backend.path == project.actions["a"].modules["m"]._backend.path,
        module._backend.path.is_file(),
        module._backend.path.parent.name,
        action_module._backend.path.parent.parent == project.actions["a"].path,
    )


def data_entries(expipe):
    # plugin utils._make_data_path: action.data["main"] = ...; action.data_path("main")
    action = lab(expipe).require_action("rec-1")
    action.data["main"] = "main.nwb"
    return (
        action.data["main"],
        "main" in action.data,
        action.data_path("main") == action.data_path() / "main.nwb",
        action.data.contents,
    )


def message_by_datetime_key(expipe):
    # expipe 0.6 tests: entity.messages[datetime.strftime(time, expipe.core.datetime_key_format)]
    action = lab(expipe).require_action("a")
    action.create_message(text="looked fine", user="Peter", datetime=WHEN)
    key = WHEN.strftime(expipe.core.datetime_key_format)
    message = action.messages[key]
    return key in action.messages, message.text, message.user, message.datetime, len(action.messages)


def message_default_user_is_the_settings_username(expipe):
    without_git_identity()
    message = lab(expipe).require_action("a").create_message(text="hi", datetime=WHEN)
    return message.user, message.contents["text"]


def message_edit(expipe):
    message = lab(expipe).require_action("a").create_message(text="hi", user="u1", datetime=WHEN)
    message.text = "updated text"
    message.user = "new user"
    message.datetime = WHEN.replace(year=2019)
    return message.text, message.user, message.datetime


def same_message_twice(expipe):
    action = lab(expipe).require_action("a")
    action.create_message(text="hi", user="u", datetime=WHEN)
    action.create_message(text="hi", user="u", datetime=WHEN)


def message_wrong_types(expipe):
    lab(expipe).require_action("a").create_message(text=1, user="u", datetime=WHEN)


def delete_messages(expipe):
    action = lab(expipe).require_action("a")
    action.create_message(text="one", user="u", datetime=WHEN)
    action.create_message(text="two", user="u", datetime=WHEN + dt.timedelta(minutes=10))
    action.delete_messages()
    return len(action.messages), WHEN.strftime(expipe.core.datetime_key_format) in action.messages


def missing_message(expipe):
    lab(expipe).require_action("a").messages["20170601T214220"]


def create_existing_action(expipe):
    # plugin: try: project.create_action(id) except KeyError: overwrite or print
    project = lab(expipe)
    project.create_action("rec-1")
    project.create_action("rec-1")


def overwrite_action(expipe):
    # plugin: except KeyError: project.delete_action(id); action = project.create_action(id)
    project = lab(expipe)
    action = project.create_action("rec-1")
    action.tags = ["old"]
    action.create_module(name="m", contents={"a": 1})
    try:
        action = project.create_action("rec-1")
    except KeyError:
        project.delete_action("rec-1")
        action = project.create_action("rec-1")
    return list(action.tags), list(action.modules), len(action.messages)


def overwrite_entity(expipe):
    project = lab(expipe)
    project.create_entity("rat1").tags = ["old"]
    project.delete_entity("rat1")
    return list(project.create_entity("rat1").tags), "rat1" in project.entities


def missing_action(expipe):
    # plugin register_adjustment: try: project.actions[id] except KeyError: create
    lab(expipe).actions["nope"]


def missing_entity(expipe):
    lab(expipe).entities["nope"]


def delete_missing_action(expipe):
    lab(expipe).delete_action("nope")


def name_of_wrong_type(expipe):
    lab(expipe).actions[None]


def attributes_round_trip(expipe):
    # plugin register_openephys_recording
    action = lab(expipe).require_action("rat1-010203-1")
    action.datetime = WHEN
    action.type = "Recording"
    action.tags.extend(["open-ephys"])
    action.tags.extend(["t1", "t2"])
    action.entities = ["rat1"]
    action.users = ["Mary"]
    action.users.append("Peter")
    action.location = "ibv"
    attributes = action.attributes
    return (
        action.datetime,
        action.type,
        sorted(action.tags),
        list(action.entities),
        sorted(action.users),
        action.location,
        attributes["users"][0] in ("Mary", "Peter"),
        len(action.entities),
    )


def attribute_type_errors(expipe):
    action = lab(expipe).require_action("a")
    errors = []
    for attribute, value in (("users", "str"), ("tags", [1]), ("type", 3), ("location", ["x"])):
        try:
            setattr(action, attribute, value)
        except TypeError:
            errors.append(attribute)
    try:
        action.datetime = "2020-01-01"
    except TypeError:
        errors.append("datetime")
    try:
        action.tags.append(1)
    except TypeError:
        errors.append("append")
    return errors


def property_list_is_expipe_core_property_list(expipe):
    action = lab(expipe).require_action("a")
    action.users = ["sub1", "sub2"]
    users = action.users
    return isinstance(users, expipe.core.PropertyList), users.dtype, users.unique, "sub1" in users


def core_names(expipe):
    project = lab(expipe)
    action = project.require_action("a")
    return (
        expipe.core.datetime_format,
        expipe.core.datetime_key_format,
        isinstance(action, expipe.core.Action),
        isinstance(project, expipe.core.Project),
        isinstance(project.require_entity("e"), expipe.core.Entity),
        isinstance(project.actions, expipe.core.Actions),
        isinstance(project.entities, expipe.core.Entities),
        isinstance(action.modules, expipe.core.Modules),
        isinstance(project.templates, expipe.core.Templates),
        isinstance(action.messages, expipe.core.Messages),
    )


def map_owner(expipe):
    project = lab(expipe)
    action = project.require_action("a")
    return (
        project.actions.object.path == project.path,
        action.modules.object.id,
        action.messages.object.id,
        project.modules.object.path == project.path,
    )


def get_missing_project(expipe):
    expipe.get_project("nothing-here")


def require_project_over_a_folder(expipe):
    pathlib.Path("plain-folder").mkdir()
    expipe.require_project("plain-folder")


def create_project_inside_a_project(expipe):
    lab(expipe)
    expipe.create_project(pathlib.Path("lab") / "inner")


def create_project_inside_an_expipe_06_project(expipe):
    shutil.copytree(FIXTURE_06, "old_project")
    expipe.create_project(pathlib.Path("old_project") / "inner")


def reopen_project(expipe):
    project = lab(expipe)
    project.require_action("a").tags = ["x"]
    again = expipe.get_project(project.path)
    return again.id, list(again.actions), list(again.actions["a"].tags), again.path == project.path


SAME = [
    config_username_and_location,
    config_nested_settings_and_lists,
    config_database_version,
    config_edit_then_read_on_the_same_project,
    config_missing_key,
    settings_at_import,
    settings_edited_in_memory,
    config_functions,
    config_dump_and_reload,
    assign_action_module,
    assign_replaces_a_module,
    assign_entity_and_project_modules,
    nested_contents,
    module_contents_types,
    module_from_list_and_array,
    deep_set_on_project_module,
    iterate_modules_items,
    assign_template,
    module_from_template_by_name,
    delete_module_then_create,
    create_module_twice,
    action_path,
    entity_path,
    backend_path_and_attributes,
    module_backend_path,
    data_entries,
    message_by_datetime_key,
    message_default_user_is_the_settings_username,
    message_edit,
    same_message_twice,
    message_wrong_types,
    delete_messages,
    missing_message,
    create_existing_action,
    overwrite_action,
    overwrite_entity,
    missing_action,
    missing_entity,
    delete_missing_action,
    name_of_wrong_type,
    attributes_round_trip,
    attribute_type_errors,
    property_list_is_expipe_core_property_list,
    core_names,
    map_owner,
    get_missing_project,
    require_project_over_a_folder,
    create_project_inside_a_project,
    create_project_inside_an_expipe_06_project,
    reopen_project,
]
