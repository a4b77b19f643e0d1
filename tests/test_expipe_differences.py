"""Where expipe 0.6 fails the getting-started document and expipe_git does not.

Each case runs the same code against the real expipe 0.6 from PyPI and against
expipe_git, so the table in docs/getting-started.md stays true.
"""

from __future__ import annotations

import datetime as dt

import pytest

import expipe_git

expipe06 = pytest.importorskip("expipe", minversion="0.6")


def _setup(library, tmp_path, monkeypatch):
    tmp_path.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)
    project = library.require_project("test")
    return project, project.require_action("something")


def make_tracking_module(project, action):
    project.require_template("tracking", {"box_shape": {"value": "square"}})
    return action.require_module("tracking", template="tracking").contents


def template_without_identifier(project, action):
    return project.require_template("hardware_daq", {"channel_count": {"value": "64"}}).contents


def module_to_dict(project, action):
    return action.require_module(name="tracking", contents={"box_shape": {"value": "square"}}).to_dict()


def set_messages(project, action):
    action.messages = [{"message": "hello", "user": "Peter", "datetime": dt.datetime(2020, 1, 1)}]
    return len(action.messages)


def two_appends_on_one_tags_object(project, action):
    action.tags = []
    tags = action.tags
    tags.append("a")
    tags.append("b")
    return sorted(action.tags)


def two_messages_in_one_second(project, action):
    when = dt.datetime(2020, 1, 1, 12)
    action.create_message("one", user="P", datetime=when)
    action.create_message("two", user="P", datetime=when)
    return len(action.messages)


def name_with_dots(project, action):
    project.require_action("rec.2019.v1")
    return "rec.2019.v1" in list(project.actions)


def plain_value_unit_dict(project, action):
    contents = {"d": {"value": 1000, "unit": "um", "definition": "depth"}}
    return dict(action.require_module(name="pd", contents=contents)["d"])


CASES = [
    (make_tracking_module, ValueError, {"box_shape": {"value": "square"}}),
    (template_without_identifier, ValueError, None),
    (module_to_dict, AttributeError, None),
    (set_messages, AttributeError, 1),
    (two_messages_in_one_second, KeyError, 2),
    (plain_value_unit_dict, TypeError, {"value": 1000, "unit": "um", "definition": "depth"}),
]


@pytest.mark.parametrize("case, expipe_error, expected", CASES, ids=[c[0].__name__ for c in CASES])
def test_expipe_06_fails_where_expipe_git_works(case, expipe_error, expected, tmp_path, monkeypatch):
    with pytest.raises(expipe_error):
        case(*_setup(expipe06, tmp_path / "expipe", monkeypatch))
    result = case(*_setup(expipe_git, tmp_path / "expipe_git", monkeypatch))
    if expected is not None:
        assert result == expected


@pytest.mark.parametrize(
    "case, expipe_result, our_result",
    [(two_appends_on_one_tags_object, ["b"], ["a", "b"]), (name_with_dots, False, True)],
    ids=["two_appends_on_one_tags_object", "name_with_dots"],
)
def test_expipe_06_loses_data_where_expipe_git_keeps_it(
    case, expipe_result, our_result, tmp_path, monkeypatch
):
    assert case(*_setup(expipe06, tmp_path / "expipe", monkeypatch)) == expipe_result
    assert case(*_setup(expipe_git, tmp_path / "expipe_git", monkeypatch)) == our_result


def test_expipe_06_require_module_with_name_ignores_the_template(tmp_path, monkeypatch):
    project, action = _setup(expipe06, tmp_path, monkeypatch)
    project.require_template("tracking", {"identifier": "tracking", "box_shape": {"value": "square"}})
    with pytest.raises(TypeError):
        action.require_module("tracking", template="tracking")
