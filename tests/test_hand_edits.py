"""Hand edits: commit checks what reads check, diff of hand edits, a person's layout survives API writes."""

from __future__ import annotations

import datetime as dt

import pytest
import quantities as pq
from conftest import assert_clean, commit_count, run, run_json

import expipe_git
from expipe_git import layout, values


def edit(project, path: str, change) -> None:
    full = project.path / path
    full.write_text(change(full.read_text()))


@pytest.mark.parametrize(
    ("line", "key", "fragment"),
    [
        ('datetime = "yesterday"', "datetime", "not a date and time"),
        ('registered = "last week"', "registered", "not a date and time"),
        ('data = "raw.bin"', "data", "table of names"),
        ("tags = [1, 2]", "tags", "list of strings"),
    ],
)
def test_commit_refuses_what_a_read_would_refuse_naming_file_line_and_key(project, line, key, fragment):
    project.require_action("rec-1")
    path = layout.attributes_path("action", "rec-1")
    edit(
        project,
        path,
        lambda text: "# notes\n" + "\n".join(t for t in text.splitlines() if key not in t) + f"\n{line}\n",
    )
    before = commit_count(project.path)
    with pytest.raises(expipe_git.CorruptFileError) as caught:
        project.commit("bad")
    message = str(caught.value)
    assert message.startswith(f"{path}, line ") and f": {key} " in message and fragment in message
    number = int(message.split(", line ")[1].split(" ")[0])
    assert (project.path / path).read_text().splitlines()[number - 1] == line
    assert caught.value.path == path
    assert commit_count(project.path) == before


def test_commit_refuses_a_config_no_later_open_could_read(project):
    edit(project, "expipe.toml", lambda text: text.replace("storage_format = 1", 'storage_format = "one"'))
    with pytest.raises(
        expipe_git.CorruptFileError, match=r"expipe.toml, line \d+ \(project\): storage_format"
    ):
        project.commit("bad config")
    assert expipe_git.get_project(project.path).id == "project"


def test_an_iso_datetime_as_text_is_accepted_as_reads_accept_it(project):
    action = project.require_action("rec-1")
    edit(
        project, layout.attributes_path("action", "rec-1"), lambda t: t + 'datetime = "2020-12-18T19:59:03"\n'
    )
    assert project.commit("expipe 0.6 style") is not None
    assert action.datetime == dt.datetime(2020, 12, 18, 19, 59, 3)


def test_commit_refuses_a_message_without_its_user(project):
    message = project.require_action("rec-1").create_message("hello", user="Mary")
    path = layout.message_path("action", "rec-1", message.id)
    edit(
        project, path, lambda text: "\n".join(t for t in text.splitlines() if not t.startswith("user")) + "\n"
    )
    with pytest.raises(expipe_git.CorruptFileError, match=r"user is missing: add user = \"Mary\""):
        project.commit("drop user")


def test_diff_without_revisions_shows_hand_edits_key_by_key(project, capsys):
    action = project.require_action("rec-1")
    action.type = "sleep"
    action.require_module("ephys", contents={"depth": 2 * pq.um, "probe": {"n": 4}})
    edit(project, layout.attributes_path("action", "rec-1"), lambda t: t.replace('"sleep"', '"awake"'))
    module_path = layout.module_path(("action", "rec-1"), "ephys")
    edit(project, module_path, lambda t: t.replace("value = 2.0", "value = 2.5").replace("n = 4", "n = 8"))
    (project.path / "notes.txt").write_text("not the project's")
    changes = [(c.address, c.key, c.old, c.new) for c in project.diff()]
    assert changes[0] == ("action/rec-1", ("type",), "sleep", "awake")
    assert changes[1][:2] == ("action/rec-1/module/ephys", ("depth",)) and changes[1][3] == 2.5 * pq.um
    assert changes[2] == ("action/rec-1/module/ephys", ("probe", "n"), 4, 8)
    assert len(changes) == 3
    code, out, err = run(capsys, "-C", str(project.path), "diff")
    assert code == 0, err
    assert out.splitlines() == [
        "~ action/rec-1 type: sleep -> awake",
        "~ action/rec-1/module/ephys depth: 2.0 um -> 2.5 um",
        "~ action/rec-1/module/ephys probe.n: 4 -> 8",
    ]
    (row, *_) = run_json(capsys, "-C", str(project.path), "diff")
    assert row == {
        "kind": "modified",
        "path": layout.attributes_path("action", "rec-1"),
        "object": "action/rec-1",
        "key": ["type"],
        "old": "sleep",
        "new": "awake",
    }
    assert action.type == "sleep"  # reads see the last commit, not the edit


COMMENTED = """\
# Probe settings, checked by Mary on Monday
depth = { "$type" = "quantity", value = 2.0, unit = "um" }   # from the atlas
notes   = "keep me"

[probe]
# four wires
n = 4
name = "tetrode"
"""


def test_a_persons_comments_and_layout_survive_api_writes(project):
    module = project.require_action("rec-1").require_module("ephys", contents={"depth": 1 * pq.um})
    path = project.path / layout.module_path(("action", "rec-1"), "ephys")
    path.write_text(COMMENTED)
    project.commit("comment the probe settings")
    module["depth"] = 3 * pq.um
    module["probe"]["n"] = 8
    module["gain"] = 2.5
    text = path.read_text()
    assert text == (
        COMMENTED.replace("value = 2.0", "value = 3.0")
        .replace("n = 4", "n = 8")
        .replace('notes   = "keep me"\n', 'notes   = "keep me"\ngain = 2.5\n')
    )
    assert module.contents == {
        "depth": 3 * pq.um,
        "notes": "keep me",
        "gain": 2.5,
        "probe": {"n": 8, "name": "tetrode"},
    }
    del module["notes"]
    assert "# from the atlas" in path.read_text() and "notes" not in path.read_text()
    assert_clean(project.path)


def test_files_in_the_emitters_form_are_written_by_the_emitter(project):
    action = project.require_action("rec-1")
    action.tags = ["a"]
    path = project.path / layout.attributes_path("action", "rec-1")
    assert path.read_text() == values.dumps(action.attributes, what="x")
    path.write_text("# the main recording\n" + path.read_text())
    project.commit("a comment")
    action.tags.append("b")
    action.location = "rig-C"
    assert path.read_text().startswith("# the main recording\n")
    assert list(action.tags) == ["a", "b"] and action.location == "rig-C"
    assert_clean(project.path)
