"""The getting-started document, run with ``import expipe_git as expipe``."""

from __future__ import annotations

import pathlib

from conftest import assert_clean, git

from expipe_git import tour

SEED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "seed" / "getting_started.txt"

# What the document shows each print statement printing, in order.
EXPECTED_PRINTS = [
    "2.0 um",
    "OrderedDict([('box_shape', {'value': 'square'})])",
    "odict_keys(['channel_count'])",
    "odict_values([{'definition': 'The number of input channels of the DAQ-device.', 'value': '64'}])",
]


def test_walkthrough_prints_what_the_document_shows(tmp_path):
    lines: list[str] = []
    tour.run(tmp_path, write=lines.append)
    printed = [
        line for line in lines if line and not line.startswith((">>> ", "... ", "# ", "<getting started>"))
    ]
    assert printed == EXPECTED_PRINTS
    # The document asks for a 'tracking' template it never made: a warning, not an error.
    assert any("UserWarning: template 'tracking' does not exist" in line for line in lines)


def test_walkthrough_output_appears_in_the_document():
    # Guards EXPECTED_PRINTS against drifting from the user's own text.
    if not SEED.exists():  # the spec lives beside the repository, not in it
        return
    text = SEED.read_text()
    for line in EXPECTED_PRINTS:
        if line != "odict_keys(['channel_count'])":  # the seed's copy dropped this line
            assert line in text


def test_walkthrough_leaves_a_clean_repository_with_one_commit_per_step(tmp_path):
    project_path = tour.run(tmp_path, write=lambda line: None)
    assert_clean(project_path)
    subjects = git(project_path, "log", "--format=%s").splitlines()
    assert subjects[-1] == "project: create 'test'"
    assert "action 'something': set tags" in subjects
    assert "action 'something': set entities" in subjects  # action.subjects = [...]
    assert "module 'electrophysiology' of action 'something': create" in subjects
    assert "module 'tracking' of action 'something': add box_shape" in subjects
    assert subjects[0] == "action 'something': set messages"
    # Each mutation is exactly one commit: 14 mutations in the walkthrough.
    assert len(subjects) == 14


def test_walkthrough_state_is_read_back(tmp_path):
    import expipe_git as expipe

    tour.run(tmp_path, write=lambda line: None)
    project = expipe.get_project(tmp_path / "test")
    action = project.actions["something"]
    assert list(action.tags) == ["place cell", "familiar environment"]
    assert list(action.subjects) == ["rat1"] == list(action.entities)
    assert list(action.users) == ["Peter", "Mary"]
    assert action.location == "here" and action.type == "Recording"
    assert list(action.modules) == ["electrophysiology", "hardware_daq", "tracking"]
    [message] = action.messages.values()
    assert (message.text, message.user) == ("hello", "Peter")
