"""DataFrames, CSV, notebook HTML (every user string escaped), the Browser, and `expipe-git list` filters."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest
import quantities as pq
from conftest import assert_one_error_line, run

import expipe_git as expipe

EVIL = "<script>alert(1)</script>"
UTC = dt.timezone.utc


@pytest.fixture
def lab(project):
    with project.transaction("lab"):
        one = project.require_action("rec-1")
        one.type = "recording"
        one.tags = ["novel", EVIL]
        one.datetime = dt.datetime(2026, 5, 3, 10, tzinfo=UTC)
        one.entities = ["rat2"]
        one.require_module(
            name="electrophysiology",
            contents={"probe_0": {"depth": 3.5 * pq.um, "channels": 4}, "positions": [1, 2] * pq.mm},
        )
        one.create_message("first " + EVIL, user="alice & bob")
        two = project.require_action("rec-2")
        two.type = "recording"
        two.tags = ["familiar"]
        two.datetime = dt.datetime(2026, 4, 1, 9)
        two.require_module(
            name="electrophysiology", contents={"probe_0": {"depth": 2 * pq.mm, "channels": 8}}
        )
        project.require_action("surgery-1").type = "surgery"
        project.require_entity("rat2").tags = ["female"]
    return project


# ---------------------------------------------------------------------------
# DataFrames


def test_dataframe_of_actions_has_a_row_per_action_and_attribute_columns(lab):
    frame = lab.actions.to_dataframe()
    assert list(frame["name"]) == ["rec-1", "rec-2", "surgery-1"]
    assert list(frame.index) == ["rec-1", "rec-2", "surgery-1"]
    assert list(frame.columns) == ["name", "registered", "datetime", "type", "tags", "entities"]
    assert frame.loc["rec-1", "tags"] == ["novel", EVIL]
    assert (
        frame.loc["rec-2", "entities"] is None
        or frame.loc["rec-2", "entities"] != frame.loc["rec-2", "entities"]
    )
    # datetime as stored: the time zone kept where there is one
    assert frame.loc["rec-1", "datetime"] == dt.datetime(2026, 5, 3, 10, tzinfo=UTC)
    assert frame.loc["rec-1", "datetime"].tzinfo is not None
    assert frame.loc["rec-2", "datetime"] == dt.datetime(2026, 4, 1, 9)


def test_module_keys_are_flattened_with_units_in_column_names(lab):
    frame = lab.actions.where(type="recording").to_dataframe(modules=["electrophysiology"])
    assert list(frame.index) == ["rec-1", "rec-2"]
    assert frame.loc["rec-1", "electrophysiology.probe_0.depth [um]"] == 3.5
    assert frame.loc["rec-2", "electrophysiology.probe_0.depth [mm]"] == 2.0
    assert pd.isna(frame.loc["rec-2", "electrophysiology.probe_0.depth [um]"])
    assert list(frame["electrophysiology.probe_0.channels"]) == [4, 8]
    assert frame.loc["rec-1", "electrophysiology.positions [mm]"] == [1.0, 2.0]
    assert isinstance(frame.loc["rec-1", "electrophysiology.probe_0.depth [um]"], float)


def test_entities_and_empty_results_make_frames_too(lab):
    assert list(lab.entities.to_dataframe()["tags"]) == [["female"]]
    empty = lab.actions.where(tags="nothing").to_dataframe()
    assert len(empty) == 0 and "name" in empty.columns


def test_log_dataframe_has_a_row_per_key_level_change(lab):
    lab.actions["rec-1"].modules["electrophysiology"]["probe_0"]["depth"] = 4 * pq.um
    frame = lab.log(limit=2).to_dataframe()
    assert list(frame.columns) == ["commit", "author", "datetime", "object", "key", "old", "new"]
    latest = frame.iloc[0]
    assert latest["object"] == "action/rec-1/module/electrophysiology"
    assert latest["key"] == "probe_0.depth"
    assert str(latest["old"]) == "3.5 um" and str(latest["new"]) == "4.0 um"
    assert latest["commit"] == lab.get_commit().id
    # a record created whole is a row per key it holds
    created = frame[frame["commit"] == lab.get_commit("HEAD~1").id]
    assert "action/rec-1/module/electrophysiology" in set(created["object"])
    assert {"probe_0.depth", "probe_0.channels", "positions"} <= set(
        created[created["object"] == "action/rec-1/module/electrophysiology"]["key"]
    )


def test_bad_modules_argument_is_refused(lab):
    with pytest.raises(TypeError, match="modules"):
        lab.actions.to_dataframe(modules=3)
    with pytest.raises(ValueError, match="module name"):
        lab.actions.to_dataframe(modules=["../x"])


def test_without_pandas_to_dataframe_says_what_to_install(lab):
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import expipe_git\n"
        f"project = expipe_git.get_project({str(lab.path)!r})\n"
        "for call in (lambda: project.actions.to_dataframe(), lambda: project.log().to_dataframe(),\n"
        "             lambda: project.actions.where(type='recording').to_dataframe()):\n"
        "    try:\n"
        "        call()\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
        "print(project.actions.where(type='recording').to_csv().splitlines()[0])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 4
    for line in lines[:3]:
        assert "pip install 'expipe_git[pandas]'" in line
    assert lines[3].startswith("name,registered,datetime,type,tags")


# ---------------------------------------------------------------------------
# HTML


class Parsed(HTMLParser):
    """The tags and the text of an HTML document."""

    def __init__(self, document: str):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def html_of(document: str) -> Parsed:
    parsed = Parsed(document)
    assert "script" not in parsed.tags, document
    return parsed


def test_every_html_shows_user_strings_as_text(lab):
    action = lab.actions["rec-1"]
    action.modules["electrophysiology"]["probe_0"]["note"] = EVIL
    lab.require_template(
        EVIL.replace("<", "").replace(">", "").replace("/", "").replace("(", ""), {"k": EVIL}
    )
    template = next(iter(lab.templates.values()))
    documents = {
        "project": lab._repr_html_(),
        "action": action._repr_html_(),
        "entity": lab.entities["rat2"]._repr_html_(),
        "module": action.modules["electrophysiology"]._repr_html_(),
        "template": template._repr_html_(),
        "where": lab.actions.where(tags=EVIL)._repr_html_(),
        "actions": lab.actions._repr_html_(),
        "log": lab.log()._repr_html_(),
        "browser": expipe.Browser(lab)._repr_html_(),
    }
    for what, document in documents.items():
        parsed = html_of(document)
        if what not in ("entity", "project"):
            assert EVIL in parsed.all_text, what


def test_action_html_shows_attributes_modules_and_messages(lab):
    text = html_of(lab.actions["rec-1"]._repr_html_()).all_text
    assert "rec-1" in text and "recording" in text
    assert "electrophysiology" in text and "3.5 um" in text and "[1.0, 2.0] mm" in text
    assert "alice & bob" in text and "first " + EVIL in text


def test_project_html_counts_objects_and_shows_last_changes(lab):
    lab.actions["rec-2"].tags.append("late")
    text = html_of(lab._repr_html_()).all_text
    assert "actions3" in text.replace(" ", "") and "entities1" in text.replace(" ", "")
    assert "action 'rec-2': add to tags" in text


def test_log_html_shows_old_and_new_values_with_units(lab):
    lab.actions["rec-1"].modules["electrophysiology"]["probe_0"]["depth"] = 4 * pq.um
    text = html_of(lab.log(limit=1)._repr_html_()).all_text
    assert "action/rec-1/module/electrophysiology probe_0.depth: 3.5 um → 4.0 um" in text


def test_where_html_is_a_table_of_the_found(lab):
    parsed = html_of(lab.actions.where(type="recording")._repr_html_())
    assert parsed.tags.count("tr") == 3  # a header and two rows
    assert "2 actions" in parsed.all_text and "surgery-1" not in parsed.all_text


def test_browser_filters_and_exports_csv(lab):
    browser = expipe.Browser(lab).filter(tags="novel")
    assert browser.to_csv().splitlines()[1].startswith("rec-1,")
    assert len(browser.to_csv().splitlines()) == 2
    document = browser._repr_html_()
    assert 'download="actions.csv"' in document and "data:text/csv" in document
    with pytest.raises(TypeError, match="colour"):
        expipe.Browser(lab, colour="red")


def test_browser_widget_updates_the_table(lab):
    pytest.importorskip("ipywidgets")
    box = expipe.Browser(lab).widget()
    fields = {child.description: child for row in box.children[:2] for child in row.children}
    table = box.children[2]
    assert "surgery-1" in table.value
    fields["type"].value = "recording"
    assert "surgery-1" not in table.value and "rec-2" in table.value
    fields["since"].value = "not a date"
    assert "cannot read" in table.value


# ---------------------------------------------------------------------------
# The command line


def test_cli_list_filters(lab, capsys, monkeypatch):
    monkeypatch.chdir(lab.path)
    code, out, _ = run(capsys, "list", "actions", "--type", "recording", "--since", "2026-05-01")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["rec-1"]
    code, out, _ = run(capsys, "list", "actions", "--any-tag", "novel", "--any-tag", "familiar", "--json")
    assert code == 0 and [row["name"] for row in json.loads(out)] == ["rec-1", "rec-2"]
    code, out, _ = run(capsys, "list", "actions", "--tag", "novel", "--tag", "familiar", "--json")
    assert json.loads(out) == []
    code, out, _ = run(capsys, "list", "actions", "--entity", "rat2", "--until", "2026-05-03", "--json")
    assert [row["name"] for row in json.loads(out)] == ["rec-1"]
    code, out, _ = run(capsys, "list", "entities", "--tag", "female", "--json")
    assert [row["name"] for row in json.loads(out)] == ["rat2"]


def test_cli_list_csv(lab, capsys, monkeypatch):
    monkeypatch.chdir(lab.path)
    code, out, _ = run(
        capsys, "list", "actions", "--type", "recording", "--csv", "--module", "electrophysiology"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["name"] for row in rows] == ["rec-1", "rec-2"]
    assert rows[0]["electrophysiology.probe_0.depth [um]"] == "3.5"
    assert rows[1]["electrophysiology.probe_0.depth [mm]"] == "2.0"
    assert json.loads(rows[0]["tags"]) == ["novel", EVIL]
    assert rows[0]["datetime"] == "2026-05-03T10:00:00+00:00"
    frame = lab.actions.where(type="recording").to_dataframe(modules=["electrophysiology"])
    assert list(csv.DictReader(io.StringIO(out)).fieldnames) == list(frame.columns)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["list", "actions", "--since", "not a date"], ["since", "not a date"]),
        (["list", "templates", "--tag", "x"], ["list actions"]),
        (["list", "actions", "--csv", "--json"], ["--json", "--csv"]),
        (["list", "actions", "--module", "m"], ["--csv"]),
        (["list", "entities", "--entity", "rat1"], ["entities"]),
    ],
)
def test_cli_list_mistakes_are_one_error_line(lab, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(lab.path)
    code, out, err = run(capsys, *argv)
    assert code != 0 and out == ""
    assert_one_error_line(err, *words)


def test_tables_from_the_index_follow_every_change(lab):
    modules = ["electrophysiology"]
    column = "electrophysiology.probe_0.depth [um]"
    before = lab.get_commit().id
    assert lab.actions.to_dataframe(modules=modules).loc["rec-1", column] == 3.5  # read from the index
    lab.actions["rec-1"].modules["electrophysiology"]["probe_0"]["depth"] = 9 * pq.um
    lab.actions["rec-2"].tags = ["renamed"]
    frame = lab.actions.to_dataframe(modules=modules)
    assert frame.loc["rec-1", column] == 9.0 and frame.loc["rec-2", "tags"] == ["renamed"]
    assert expipe.get_project(lab.path).actions.where(type="recording").to_csv(modules).count("9.0") == 1
    old = lab.at(before).actions.to_dataframe(modules=modules)
    assert old.loc["rec-1", column] == 3.5 and old.loc["rec-2", "tags"] == ["familiar"]
    lab.delete_action("rec-2")
    assert list(lab.actions.to_dataframe().index) == ["rec-1", "surgery-1"]


def test_a_long_table_shows_its_first_rows_and_counts_the_rest(project, monkeypatch):
    monkeypatch.setattr(expipe.display, "MAX_ROWS", 2)
    with project.transaction("five"):
        for i in range(5):
            project.require_action(f"rec-{i}")
    parsed = html_of(project.actions._repr_html_())
    assert parsed.tags.count("tr") == 3
    assert "5 actions" in parsed.all_text and "… and 3 more" in parsed.all_text
