"""Record-level three-way merges, checked with the real git binary.

Divergent histories are made the way people make them: ``git clone`` a
project, change both copies through expipe_git (or with git by hand), and
``git fetch`` one into the other.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import subprocess
import sys

import pytest
import quantities as pq
import tomllib
from conftest import assert_clean, git, project_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import expipe_git
from expipe_git import merge as merging
from expipe_git.cli import main


def fork(project, tmp_path, name="theirs"):
    """Clone ``project`` with stock git and open the clone."""
    target = tmp_path / name
    git(tmp_path, "clone", "-q", str(project_path(project)), str(target))
    return expipe_git.get_project(target)


def fetch(project, other) -> str:
    """Fetch ``other``'s main into ``project`` as remote branch ``theirs/main``."""
    git(project_path(project), "fetch", "-q", str(project_path(other)), "+main:refs/remotes/theirs/main")
    return "theirs/main"


def head(project) -> str:
    return git(project_path(project), "rev-parse", "HEAD").strip()


def parents(project, rev="HEAD") -> list[str]:
    return git(project_path(project), "log", "-1", "--format=%P", rev).split()


def message_of(project, rev="HEAD") -> str:
    return git(project_path(project), "log", "-1", "--format=%B", rev)


def snapshot_files(project) -> dict:
    """HEAD, index bytes and every working-tree file, to prove nothing changed."""
    root = project_path(project)
    files = {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }
    return {"head": head(project), "index": (root / ".git" / "index").read_bytes(), "files": files}


@pytest.fixture
def ours(project):
    action = project.require_action("rec-1")
    action.tags = ["x", "y", "z"]
    action.users = ["Peter"]
    action.type = "Recording"
    action.require_module("ephys", contents={"depth": 2 * pq.um, "probe": {"channels": 32, "shank": 1}})
    return project


# ---------------------------------------------------------------------------
# What merges without conflict


def test_fast_forward_when_ours_has_not_moved(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    theirs.require_action("rec-2")
    target = head(theirs)
    assert ours.merge(fetch(ours, theirs)) == target
    assert head(ours) == target and "rec-2" in ours.actions
    assert ours.merge("theirs/main") is None  # already merged
    assert_clean(project_path(ours))


def test_merging_what_is_already_in_our_history_does_nothing(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    ours.require_action("rec-2")
    before = head(ours)
    assert ours.merge(fetch(ours, theirs)) is None
    assert head(ours) == before


def test_different_files_and_different_keys_of_one_record_merge(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    ours.actions["rec-1"].location = "lab 1"
    ours.actions["rec-1"].modules["ephys"]["depth"] = 3 * pq.um
    ours.actions["rec-1"].modules["ephys"]["probe"]["channels"] = 64
    theirs.actions["rec-1"].type = "Surgery"
    theirs.actions["rec-1"].modules["ephys"]["probe"]["shank"] = 2
    theirs.actions["rec-1"].modules["ephys"]["new"] = {"a": 1}
    theirs.require_action("rec-2").tags = ["t"]
    theirs.require_template("daq", {"rate": 30000})
    before = head(ours)
    sha = ours.merge(fetch(ours, theirs))
    assert sha == head(ours)
    assert parents(ours) == [before, head(theirs)]
    action = ours.actions["rec-1"]
    assert (action.location, action.type) == ("lab 1", "Surgery")
    module = action.modules["ephys"].contents
    assert module["depth"] == 3 * pq.um
    assert module["probe"] == {"channels": 64, "shank": 2}
    assert module["new"] == {"a": 1}
    assert list(ours.actions["rec-2"].tags) == ["t"]
    assert ours.templates["daq"]["rate"] == 30000
    path = project_path(ours)
    assert_clean(path)
    subjects = git(path, "log", "--format=%s").splitlines()
    assert subjects[0] == "merge theirs/main"
    assert "action 'rec-2': create" in subjects
    assert "Expipe-Operation: merge" in git(path, "log", "-1", "--format=%(trailers)")


def test_tags_users_and_entities_merge_as_sets(ours, tmp_path):
    ours.actions["rec-1"].entities = ["rat1", "rat2"]
    theirs = fork(ours, tmp_path)
    mine, other = ours.actions["rec-1"], theirs.actions["rec-1"]
    mine.tags.remove("y")
    mine.tags.append("o")
    other.tags.remove("z")
    other.tags.extend(["t", "o"])
    mine.users.append("Mary")
    other.users = []
    other.entities.append("rat3")
    mine.entities.remove("rat1")
    ours.merge(fetch(ours, theirs))
    assert list(mine.tags) == ["x", "o", "t"]  # ours' order, then theirs' additions
    assert list(mine.users) == ["Mary"]  # Peter removed by theirs, Mary added by ours
    assert list(mine.entities) == ["rat2", "rat3"]
    assert_clean(project_path(ours))


def test_the_same_change_on_both_sides_is_not_a_conflict(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    theirs.require_action("theirs-only")  # else both sides could make the very same commits
    for project in (ours, theirs):
        project.actions["rec-1"].type = "Surgery"
        project.actions["rec-1"].modules["ephys"]["depth"] = 5 * pq.um
        project.actions["rec-1"].modules["ephys"]["probe"]["x"] = float("nan")
    ours.require_action("other")
    assert ours.merge(fetch(ours, theirs)) == head(ours)
    assert ours.actions["rec-1"].type == "Surgery"
    assert len(parents(ours)) == 2


def test_messages_from_both_sides_are_kept(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    when = dt.datetime(2024, 5, 1, 12, 0, 0)
    ours.actions["rec-1"].create_message("ours", user="Peter", datetime=when)
    theirs.actions["rec-1"].create_message("theirs", user="Mary", datetime=when)
    ours.merge(fetch(ours, theirs))
    texts = sorted(m["text"] for m in ours.actions["rec-1"].messages.to_list())
    assert texts == ["ours", "theirs"]


def test_a_message_id_added_on_both_sides_with_different_text_is_renamed_not_lost(ours, tmp_path):
    when = dt.datetime(2024, 5, 1, 12, 0, 0)
    theirs = fork(ours, tmp_path)
    theirs.require_action("theirs-only")  # else both sides could make the very same commit
    ours.actions["rec-1"].create_message("note", user="Peter", datetime=when)
    message = theirs.actions["rec-1"].create_message("note", user="Peter", datetime=when)
    message.text = "note, corrected"  # the id stays; the contents now differ
    ours.merge(fetch(ours, theirs))
    messages = ours.actions["rec-1"].messages
    texts = sorted(m["text"] for m in messages.to_list())
    assert texts == ["note", "note, corrected"]
    ids = list(messages)
    assert message.id in ids and len(ids) == 2
    other = next(i for i in ids if i != message.id)
    assert other.startswith("20240501T120000-")
    assert f"theirs is kept as {other}" in message_of(ours)
    assert_clean(project_path(ours))


def test_an_object_created_on_both_sides_merges_and_keeps_the_earlier_registration(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    theirs.require_action("rec-9").tags = ["theirs"]
    earlier = theirs.actions["rec-9"].registered
    ours.require_action("rec-9").tags = ["ours"]
    ours.actions["rec-9"].location = "here"
    ours.merge(fetch(ours, theirs))
    action = ours.actions["rec-9"]
    assert list(action.tags) == ["ours", "theirs"]
    assert action.location == "here"
    assert action.registered == earlier


def test_int_keys_added_on_both_sides_merge(ours, tmp_path):
    module = ours.actions["rec-1"].require_module("bins", contents={0: "a"})
    theirs = fork(ours, tmp_path)
    module[1] = "b"
    theirs.actions["rec-1"].modules["bins"][2] = "c"
    ours.merge(fetch(ours, theirs))
    assert module.contents == {0: "a", 1: "b", 2: "c"}


def test_a_branch_edited_by_hand_with_stock_git_merges(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    root = project_path(theirs)
    attributes = next(root.glob("actions/*/rec-1/attributes.toml"))
    text = attributes.read_text().replace('type = "Recording"', 'type = "Edited in vim"')
    assert text != attributes.read_text()
    attributes.write_text(text + '# a comment the editor left\nnotes = "by hand"\n')
    git(root, "commit", "-q", "-am", "hand edit")
    ours.actions["rec-1"].tags.append("api")
    ours.merge(fetch(ours, theirs))
    action = ours.actions["rec-1"]
    assert action.type == "Edited in vim"
    assert action.attributes["notes"] == "by hand"
    assert list(action.tags) == ["x", "y", "z", "api"]
    assert_clean(project_path(ours))


def test_a_merge_equal_to_a_hand_edited_file_keeps_that_file_byte_for_byte(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    root = project_path(theirs)
    attributes = next(root.glob("actions/*/rec-1/attributes.toml"))
    text = attributes.read_text().replace('type = "Recording"', 'type = "Surgery"  # changed on paper too')
    attributes.write_text(text + 'notes = "by hand"\n')
    git(root, "commit", "-q", "-am", "hand edit")
    ours.actions["rec-1"].type = "Surgery"
    ours.merge(fetch(ours, theirs))
    merged = next(project_path(ours).glob("actions/*/rec-1/attributes.toml"))
    assert merged.read_text() == attributes.read_text()
    assert_clean(project_path(ours))


# ---------------------------------------------------------------------------
# Conflicts


def _diverge_on_type_and_depth(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    ours.actions["rec-1"].type = "Ours"
    ours.actions["rec-1"].modules["ephys"]["depth"] = 3 * pq.um
    theirs.actions["rec-1"].type = "Theirs"
    theirs.actions["rec-1"].modules["ephys"]["depth"] = 4 * pq.um
    theirs.actions["rec-1"].location = "theirs' room"  # merges cleanly
    return theirs, fetch(ours, theirs)


def test_a_conflict_raises_and_changes_nothing(ours, tmp_path):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    before = snapshot_files(ours)
    with pytest.raises(expipe_git.MergeConflict) as caught:
        ours.merge(rev)
    assert snapshot_files(ours) == before
    assert_clean(project_path(ours))
    found = {(c.object, c.key): c for c in caught.value.conflicts}
    assert set(found) == {("action/rec-1", "type"), ("action/rec-1/module/ephys", "depth")}
    kind = found[("action/rec-1", "type")]
    assert (kind.base, kind.ours, kind.theirs, kind.kind) == ("Recording", "Ours", "Theirs", "value")
    assert kind.path.endswith("/rec-1/attributes.toml")
    depth = found[("action/rec-1/module/ephys", "depth")]
    assert isinstance(depth.ours, pq.Quantity) and depth.theirs == 4 * pq.um and depth.base == 2 * pq.um
    assert "action/rec-1 type" in str(caught.value) and "resolve" in str(caught.value)
    assert isinstance(caught.value, expipe_git.ExpipeError)
    assert {(c.object, c.key) for c in ours.conflicts} == set(found)
    assert (project_path(ours) / ".git" / "expipe-git" / "merge.json").is_file()
    # Other work goes on while the merge waits.
    ours.require_action("meanwhile")
    assert len(ours.conflicts) == 2


@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_on_conflict_takes_one_side_and_says_so(ours, tmp_path, side):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    ours.merge(rev, on_conflict=side)
    action = ours.actions["rec-1"]
    assert action.type == ("Ours" if side == "ours" else "Theirs")
    assert action.modules["ephys"]["depth"] == (3 if side == "ours" else 4) * pq.um
    assert action.location == "theirs' room"
    text = message_of(ours)
    assert f"action/rec-1 type: base 'Recording', ours 'Ours', theirs 'Theirs': took {side}" in text
    assert "action/rec-1/module/ephys depth" in text
    assert len(parents(ours)) == 2
    assert ours.conflicts == []
    assert_clean(project_path(ours))


def test_conflicts_resolved_one_by_one(ours, tmp_path):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    with pytest.raises(expipe_git.MergeConflict):
        ours.merge(rev)
    first = next(c for c in ours.conflicts if c.key == "type")
    ours.resolve(first, "theirs")
    assert [c.key for c in ours.conflicts] == ["depth"]
    before = snapshot_files(ours)
    with pytest.raises(expipe_git.MergeConflict) as caught:
        ours.continue_merge()
    assert [c.key for c in caught.value.conflicts] == ["depth"]
    assert snapshot_files(ours) == before
    ours.resolve(("action/rec-1/module/ephys", "depth"), value=3.5 * pq.um)
    assert ours.conflicts == []
    sha = ours.continue_merge()
    assert sha == head(ours) and len(parents(ours)) == 2
    action = ours.actions["rec-1"]
    assert action.type == "Theirs"
    assert action.modules["ephys"]["depth"] == 3.5 * pq.um
    assert "set to 3.5 um" in message_of(ours)
    assert not (project_path(ours) / ".git" / "expipe-git" / "merge.json").exists()
    assert_clean(project_path(ours))


def test_a_resolution_can_be_changed_and_bad_ones_are_refused(ours, tmp_path):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    with pytest.raises(expipe_git.MergeConflict):
        ours.merge(rev)
    with pytest.raises(expipe_git.NotFoundError, match="no conflict at action/rec-1 'location'"):
        ours.resolve(("action/rec-1", "location"), "ours")
    with pytest.raises(expipe_git.InvalidValueError, match="either a side"):
        ours.resolve(("action/rec-1", "type"), "ours", value="x")
    with pytest.raises(expipe_git.InvalidValueError, match="'ours' or 'theirs'"):
        ours.resolve(("action/rec-1", "type"), "mine")
    with pytest.raises(expipe_git.InvalidTypeError):
        ours.resolve(("action/rec-1", "type"), value={1, 2})
    with pytest.raises(expipe_git.CorruptFileError, match="type must be a string"):
        ours.resolve(("action/rec-1", "type"), value=5)
    ours.resolve(("action/rec-1", "type"), "ours")
    ours.resolve(("action/rec-1", "type"), value="Both")
    ours.resolve(("action/rec-1/module/ephys", "depth"), "ours")
    ours.continue_merge()
    assert ours.actions["rec-1"].type == "Both"


def test_abort_forgets_the_merge(ours, tmp_path):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    with pytest.raises(expipe_git.MergeConflict):
        ours.merge(rev)
    ours.resolve(("action/rec-1", "type"), "theirs")
    before = snapshot_files(ours)
    ours.abort_merge()
    assert snapshot_files(ours) == before
    assert ours.conflicts == []
    with pytest.raises(expipe_git.RepositoryStateError, match="nothing to abort"):
        ours.abort_merge()
    with pytest.raises(expipe_git.RepositoryStateError, match="nothing to continue"):
        ours.continue_merge()
    with pytest.raises(expipe_git.MergeConflict):  # the old resolution is gone
        ours.merge(rev)


def test_a_second_merge_waits_for_the_stopped_one(ours, tmp_path):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    with pytest.raises(expipe_git.MergeConflict):
        ours.merge(rev)
    theirs.require_action("later")
    with pytest.raises(expipe_git.RepositoryStateError, match="continue it"):
        ours.merge(fetch(ours, theirs))


def test_a_record_deleted_on_one_side_and_changed_on_the_other_conflicts(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    ours.actions["rec-1"].delete_module("ephys")
    theirs.actions["rec-1"].modules["ephys"]["depth"] = 9 * pq.um
    rev = fetch(ours, theirs)
    with pytest.raises(expipe_git.MergeConflict) as caught:
        ours.merge(rev)
    (conflict,) = caught.value.conflicts
    assert (conflict.object, conflict.key, conflict.kind) == ("action/rec-1/module/ephys", "", "deleted")
    assert conflict.ours is merging.ABSENT and conflict.theirs["depth"] == 9 * pq.um
    assert "deleted in ours" in conflict.describe()
    with pytest.raises(expipe_git.InvalidValueError, match="'ours' or 'theirs'"):
        ours.resolve(conflict, value={"depth": 1})
    ours.resolve(conflict, "theirs")
    ours.continue_merge()
    assert ours.actions["rec-1"].modules["ephys"]["depth"] == 9 * pq.um
    assert_clean(project_path(ours))


@pytest.mark.parametrize("side", ["ours", "theirs"])
def test_an_action_deleted_on_one_side_and_changed_on_the_other_is_one_conflict(ours, tmp_path, side):
    ours.actions["rec-1"].create_message("hello", user="Peter")
    theirs = fork(ours, tmp_path)
    theirs.delete_action("rec-1")
    ours.actions["rec-1"].require_module("new", contents={"a": 1})  # a file theirs never saw
    with pytest.raises(expipe_git.MergeConflict) as caught:
        ours.merge(fetch(ours, theirs))
    (conflict,) = caught.value.conflicts
    assert (conflict.object, conflict.key, conflict.kind) == ("action/rec-1", "", "deleted")
    assert conflict.theirs is merging.ABSENT
    ours.merge("theirs/main", on_conflict=side)
    if side == "ours":
        assert sorted(ours.actions["rec-1"].modules) == ["ephys", "new"]
    else:
        assert "rec-1" not in ours.actions
        assert not list(project_path(ours).glob("actions/*/rec-1"))
    assert_clean(project_path(ours))


def test_an_action_deleted_on_both_sides_or_deleted_beside_a_deletion_merges(ours, tmp_path):
    ours.require_action("rec-2").require_module("m", contents={"a": 1})
    theirs = fork(ours, tmp_path)
    ours.delete_action("rec-1")
    theirs.delete_action("rec-1")
    ours.delete_action("rec-2")
    theirs.actions["rec-2"].delete_module("m")
    theirs.require_action("rec-3")
    ours.merge(fetch(ours, theirs))
    assert list(ours.actions) == ["rec-3"]
    assert_clean(project_path(ours))


def test_a_message_deleted_on_one_side_and_edited_on_the_other_conflicts(ours, tmp_path):
    message = ours.actions["rec-1"].create_message("first", user="Peter")
    theirs = fork(ours, tmp_path)
    theirs.actions["rec-1"].messages[message.id].text = "first, edited"
    ours.actions["rec-1"].delete_messages()
    with pytest.raises(expipe_git.MergeConflict) as caught:
        ours.merge(fetch(ours, theirs))
    (conflict,) = caught.value.conflicts
    assert conflict.object == f"action/rec-1/message/{message.id}" and conflict.kind == "deleted"
    assert conflict.theirs["text"] == "first, edited"
    ours.merge("theirs/main", on_conflict="theirs")
    assert [m["text"] for m in ours.actions["rec-1"].messages.to_list()] == ["first, edited"]


def test_the_merge_lands_on_top_of_commits_made_meanwhile(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    for i in range(20):
        theirs.actions["rec-1"].modules["ephys"][f"theirs{i}"] = i
    ours.require_action("busy")
    rev = fetch(ours, theirs)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, expipe_git\n"
            "action = expipe_git.get_project(sys.argv[1]).actions['busy']\n"
            "for i in range(30):\n"
            "    action.tags.append(f'tag{i}')\n",
            str(project_path(ours)),
        ],
    )
    try:
        ours.merge(rev)
    finally:
        assert writer.wait(timeout=120) == 0
    assert list(ours.actions["busy"].tags) == [f"tag{i}" for i in range(30)]
    assert ours.actions["rec-1"].modules["ephys"]["theirs19"] == 19
    path = project_path(ours)
    is_ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", head(theirs), "HEAD"], cwd=path)
    assert is_ancestor.returncode == 0
    assert_clean(path)


def test_fast_forward_refuses_a_head_that_is_not_an_ancestor(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    theirs.require_action("rec-2")
    fetch(ours, theirs)
    ours.require_action("mine")
    before = head(ours)
    assert not ours.session.repository.fast_forward(head(theirs).encode())
    assert head(ours) == before and "mine" in ours.actions


def test_an_invalid_record_from_the_other_side_is_refused_before_anything_changes(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    root = project_path(theirs)
    attributes = next(root.glob("actions/*/rec-1/attributes.toml"))
    attributes.write_text(attributes.read_text().replace('tags = ["x", "y", "z"]', "tags = 5"))
    git(root, "commit", "-q", "-am", "break the tags")
    ours.require_action("mine")
    before = snapshot_files(ours)
    with pytest.raises(expipe_git.CorruptFileError, match="tags must be a list of strings"):
        ours.merge(fetch(ours, theirs))
    assert snapshot_files(ours) == before


def test_a_hand_edit_in_the_way_is_refused(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    theirs.actions["rec-1"].type = "Theirs"
    ours.require_action("mine")
    attributes = next(project_path(ours).glob("actions/*/rec-1/attributes.toml"))
    attributes.write_text(attributes.read_text() + 'note = "unsaved"\n')
    with pytest.raises(expipe_git.UncommittedChangesError):
        ours.merge(fetch(ours, theirs))
    assert "unsaved" in attributes.read_text()
    assert ours.session.repository.head().decode() == git(project_path(ours), "rev-parse", "HEAD").strip()
    assert len(parents(ours)) == 1


def test_unknown_revisions_and_bad_arguments(ours, tmp_path):
    with pytest.raises(expipe_git.NotFoundError, match="unknown revision 'nope'"):
        ours.merge("nope")
    with pytest.raises(expipe_git.InvalidValueError, match="on_conflict"):
        ours.merge("main", on_conflict="mine")
    with pytest.raises(expipe_git.NotFoundError, match="fetch it first"):
        merging.merge_into(ours, b"0" * 40, message="merge")


def test_merging_by_short_commit_id_and_tag(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    theirs.require_action("rec-2")
    fetch(ours, theirs)
    sha = head(theirs)
    git(project_path(ours), "tag", "-a", "-m", "annotated", "v1", sha)
    ours.require_action("mine")
    assert ours.merge("v1") is not None
    assert "rec-2" in ours.actions
    assert ours.merge(sha[:10]) is None


# ---------------------------------------------------------------------------
# Merge bases agree with git


def test_merge_bases_agree_with_git_merge_base(project):
    path = project_path(project)
    project.require_action("a")
    git(path, "branch", "side")
    project.require_action("b")
    git(path, "checkout", "-q", "side")
    git(path, "commit", "-q", "--allow-empty", "-m", "side 1")
    git(path, "checkout", "-q", "main")
    # criss-cross: each side merges the other's tip
    main_tip, side_tip = git(path, "rev-parse", "main", "side").split()
    git(path, "merge", "-q", "--no-edit", side_tip)
    git(path, "checkout", "-q", "side")
    git(path, "merge", "-q", "--no-edit", main_tip)
    git(path, "checkout", "-q", "main")
    project.require_action("c")
    store = project.session.repository
    for one, two in [("main", "side"), ("main", "main~2"), ("side", "main~1"), ("main~1", "side~1")]:
        a, b = (git(path, "rev-parse", r).strip().encode() for r in (one, two))
        expected = sorted(git(path, "merge-base", "--all", one, two).split())
        assert sorted(sha.decode() for sha in store.merge_bases(a, b)) == expected, (one, two)  # once each
    main, older, side = (git(path, "rev-parse", r).strip().encode() for r in ("main", "main~2", "side"))
    assert store.is_ancestor(older, main) and not store.is_ancestor(main, side)


# ---------------------------------------------------------------------------
# Property: disjoint edits never lose a change

KEYS = [f"k{i}" for i in range(8)]
EDIT = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.none(), st.just("DELETE"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    start=st.dictionaries(st.sampled_from(KEYS), st.integers(0, 3), min_size=1),
)
def test_disjoint_key_edits_on_both_sides_are_all_kept(tmp_path_factory, data, start):
    tmp = tmp_path_factory.mktemp("prop")
    project = expipe_git.require_project(tmp / "p")
    module = project.require_module("m", contents=start)
    base = head(project)
    mine = data.draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4), label="ours")
    others = data.draw(
        st.lists(st.sampled_from([k for k in KEYS if k not in mine]), unique=True, max_size=4), label="theirs"
    )
    expected = dict(start)

    def apply(keys):
        for key in keys:
            value = data.draw(EDIT, label=key)
            if value == "DELETE":
                if key in module:
                    del module[key]
                expected.pop(key, None)
            else:
                module[key] = value
                expected[key] = value

    apply(others)
    their_commit = head(project)
    git(project_path(project), "reset", "-q", "--hard", base)
    apply(mine)
    project.merge(their_commit)
    assert module.contents == expected
    assert_clean(project_path(project))


TAGS = st.lists(st.sampled_from("abcdefg"), unique=True, max_size=6)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=TAGS, mine=TAGS, others=TAGS)
def test_tags_merge_keeps_every_addition_and_every_removal(tmp_path_factory, base, mine, others):
    project = expipe_git.require_project(tmp_path_factory.mktemp("tags") / "p")
    action = project.require_action("a")
    action.tags = base
    project.require_action("b")  # so that neither side is an ancestor of the other
    start = head(project)
    action.tags = others
    their_commit = head(project)
    git(project_path(project), "reset", "-q", "--hard", start)
    action.tags = mine
    project.merge(their_commit)
    merged = list(action.tags)
    added = (set(mine) | set(others)) - set(base)
    removed = (set(base) - set(mine)) | (set(base) - set(others))
    assert set(merged) == (set(base) | added) - removed
    if mine != base and others != base:  # a side that changed nothing leaves the other's order
        assert merged[: len([t for t in mine if t in merged])] == [t for t in mine if t in merged]


# ---------------------------------------------------------------------------
# The command line


def run_cli(path, *args, capsys):
    code = main(["-C", str(path), *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_cli_merge_with_a_side(ours, tmp_path, capsys):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    code, out, err = run_cli(project_path(ours), "merge", rev, "--theirs", capsys=capsys)
    assert code == 0, err
    assert out.strip() == head(ours)
    assert ours.actions["rec-1"].type == "Theirs"


def test_cli_conflicts_resolve_continue(ours, tmp_path, capsys):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    path = project_path(ours)
    code, out, err = run_cli(path, "merge", rev, capsys=capsys)
    assert code == 1
    assert "action/rec-1 type: base 'Recording', ours 'Ours', theirs 'Theirs'" in out
    assert err.startswith("expipe-git: error: merge theirs/main: 2 conflicts")
    code, out, _ = run_cli(path, "conflicts", "--json", capsys=capsys)
    listed = json.loads(out)
    assert code == 0
    assert {"object": "action/rec-1", "key": "type", "kind": "value"}.items() <= listed[0].items()
    assert listed[0]["base"] == "Recording" and listed[1]["ours"] == {"value": 3.0, "unit": "um"}
    code, out, _ = run_cli(path, "resolve", "action/rec-1", "type", "--value", '"Agreed"', capsys=capsys)
    assert code == 0
    code, out, _ = run_cli(path, "conflicts", capsys=capsys)
    assert "1 unresolved" in out and "action/rec-1/module/ephys depth" in out
    code, out, err = run_cli(path, "merge", "--continue", capsys=capsys)
    assert code == 1 and "1 conflict" in err
    code, _, err = run_cli(
        path, "resolve", "action/rec-1/module/ephys", "depth", "--value", "3.25 um", capsys=capsys
    )
    assert code == 0, err
    code, out, err = run_cli(path, "merge", "--continue", capsys=capsys)
    assert code == 0, err
    assert ours.actions["rec-1"].type == "Agreed"
    assert ours.actions["rec-1"].modules["ephys"]["depth"] == 3.25 * pq.um
    code, out, _ = run_cli(path, "conflicts", capsys=capsys)
    assert "no merge is stopped" in out
    assert json.loads(run_cli(path, "conflicts", "--json", capsys=capsys)[1]) == []
    assert_clean(path)


def test_cli_abort_and_usage_errors(ours, tmp_path, capsys):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    path = project_path(ours)
    assert run_cli(path, "merge", rev, capsys=capsys)[0] == 1
    code, out, err = run_cli(path, "resolve", "action/rec-1", "type", "--value", "[Recording", capsys=capsys)
    assert code == 1 and "cannot read the value '[Recording'" in err
    code, out, err = run_cli(path, "resolve", "action/rec-1", "type", "--value", "rig-C", capsys=capsys)
    assert code == 0, err  # plain text needs no quotes
    code, out, err = run_cli(path, "resolve", "action/rec-1", "type", capsys=capsys)
    assert code == 2
    code, out, err = run_cli(path, "merge", "--abort", capsys=capsys)
    assert code == 0 and ours.conflicts == []
    code, out, err = run_cli(path, "merge", capsys=capsys)
    assert code == 2 and "REV" in err
    code, out, err = run_cli(path, "merge", "--abort", capsys=capsys)
    assert code == 1 and "nothing to abort" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("2.5", 2.5),
        ('"text"', "text"),
        ("true", True),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ('{"a": 1}', {"a": 1}),
        ("{ a = 1 }", {"a": 1}),
        ("2024-01-02T03:04:05", dt.datetime(2024, 1, 2, 3, 4, 5)),
    ],
)
def test_values_typed_on_the_command_line(text, expected):
    assert merging.parse_value_text(text) == expected


def test_quantities_typed_on_the_command_line():
    assert merging.parse_value_text("3 um") == 3 * pq.um
    assert (merging.parse_value_text("[1, 2] mV") == [1, 2] * pq.mV).all()
    assert merging.parse_value_text("rig-C") == "rig-C"  # plain text needs no quotes
    assert merging.parse_value_text("room 2") == "room 2"
    for bad in ("3 nonsenseunit", "[1, 2", ""):
        with pytest.raises(expipe_git.InvalidValueError, match="cannot read the value"):
            merging.parse_value_text(bad)


def test_cli_runs_as_a_program_without_traceback(ours, tmp_path):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "expipe_git", "merge", rev],
        cwd=project_path(ours),
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert pathlib.Path(project_path(ours), ".git", "expipe-git", "merge.json").is_file()


def test_merging_a_revision_expression(ours, tmp_path):
    theirs = fork(ours, tmp_path)
    theirs.require_action("rec-2")
    theirs.require_action("rec-3")
    fetch(ours, theirs)
    ours.require_action("mine")
    git(project_path(ours), "branch", "-f", "theirs-tip", head(theirs))
    assert ours.merge("theirs-tip~1") is not None
    assert "rec-2" in ours.actions and "rec-3" not in ours.actions
    assert_clean(project_path(ours))


def criss_cross(ours, tmp_path):
    """Two people each merge the other's first change, then go on: the next merge has two bases.

    Ours sets ``depth`` and later undoes it; theirs sets ``shank`` twice.
    Returns theirs, and the merge bases git finds for the last merge.
    """
    module = lambda project: project.actions["rec-1"].modules["ephys"]  # noqa: E731
    theirs = fork(ours, tmp_path)
    module(ours)["depth"] = 3 * pq.um  # A1
    module(theirs)["probe"]["shank"] = 2  # B1
    a1, b1 = head(ours), head(theirs)
    git(project_path(theirs), "fetch", "-q", str(project_path(ours)), f"+{a1}:refs/remotes/ours/a1")
    theirs.merge(a1)  # theirs: B1 + A1
    fetch(ours, theirs)
    ours.merge(b1)  # ours: A1 + B1, made independently: the histories cross
    module(ours)["depth"] = 2 * pq.um  # ours undoes A1's change
    module(theirs)["probe"]["shank"] = 3
    fetch(ours, theirs)
    bases = git(project_path(ours), "merge-base", "--all", "HEAD", "theirs/main").split()
    return theirs, sorted(bases), sorted([a1, b1])


@pytest.mark.parametrize("first", ["ours", "theirs"])
def test_a_criss_cross_merge_keeps_a_change_undone_since_and_raises_no_false_conflict(ours, tmp_path, first):
    """git merges the two bases into a virtual one first; so does expipe_git, whichever side merges."""
    theirs, bases, expected_bases = criss_cross(ours, tmp_path)
    assert bases == expected_bases
    if first == "theirs":  # the same histories, merged the other way round
        ours, theirs = theirs, ours
        fetch(ours, theirs)
    ours.merge("theirs/main")
    assert len(parents(ours)) == 2
    merged = ours.actions["rec-1"].modules["ephys"]
    assert merged["depth"] == 2 * pq.um  # the undo wins over the base's 3 um, as in git
    assert merged["probe"]["shank"] == 3
    assert_clean(project_path(ours))
    check = tmp_path / "git-merge"  # stock git's recursive merge agrees
    git(tmp_path, "clone", "-q", str(project_path(ours)), str(check))
    git(check, "checkout", "-q", "HEAD^1")
    git(check, "merge", "-q", "--no-edit", "HEAD@{1}^2")
    ephys = tomllib.loads(next(check.glob("actions/*/rec-1/modules/ephys.toml")).read_text())
    assert (ephys["depth"]["value"], ephys["probe"]["shank"]) == (2.0, 3)


def test_bases_that_disagree_leave_the_conflict_to_the_real_merge(ours, tmp_path):
    """The first changes set one key differently and each side kept its own: a conflict from the old value."""
    module = lambda project: project.actions["rec-1"].modules["ephys"]  # noqa: E731
    theirs = fork(ours, tmp_path)
    module(ours)["probe"]["shank"] = 2
    module(theirs)["probe"]["shank"] = 3
    a1, b1 = head(ours), head(theirs)
    git(project_path(theirs), "fetch", "-q", str(project_path(ours)), f"+{a1}:refs/remotes/ours/a1")
    theirs.merge(a1, on_conflict="ours")  # theirs keeps 3
    fetch(ours, theirs)
    ours.merge(b1, on_conflict="ours")  # ours keeps 2
    module(ours)["depth"] = 5 * pq.um
    theirs.actions["rec-1"].tags.append("later")
    fetch(ours, theirs)
    assert len(git(project_path(ours), "merge-base", "--all", "HEAD", "theirs/main").split()) == 2
    with pytest.raises(expipe_git.MergeConflict) as raised:
        ours.merge("theirs/main")
    (conflict,) = raised.value.conflicts
    assert (conflict.key, conflict.base, conflict.ours, conflict.theirs) == ("probe.shank", 1, 2, 3)
    ours.merge("theirs/main", on_conflict="theirs")
    assert module(ours)["probe"]["shank"] == 3 and module(ours)["depth"] == 5 * pq.um
    assert "later" in ours.actions["rec-1"].tags
    assert_clean(project_path(ours))
    dangling = git(project_path(ours), "fsck", "--dangling", "--no-reflogs")
    assert "commit" not in dangling  # the virtual base never reached the disk


def test_three_merge_bases_fold_into_one_virtual_base(ours, tmp_path):
    """Two octopus merges of the same three branches, in different orders: three bases, as git finds."""
    theirs = fork(ours, tmp_path)
    root = project_path(theirs)
    ephys = next(root.glob("actions/*/rec-1/modules/ephys.toml"))
    attributes = ephys.parent.parent / "attributes.toml"
    c0 = head(theirs)

    def branch(name: str, start: str, edit) -> None:
        git(root, "checkout", "-q", "-B", name, start)
        edit()
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", name)

    def replace(path: pathlib.Path, old: str, new: str) -> None:
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new))

    branch("x1", c0, lambda: replace(ephys, "value = 2.0", "value = 4.0"))
    branch("x2", c0, lambda: replace(attributes, '"Recording"', '"Surgery"'))
    branch("x3", c0, lambda: (ephys.parent / "extra.toml").write_text("a = 1\n"))
    git(root, "checkout", "-q", "-B", "a", "x1")
    git(root, "merge", "-q", "--no-edit", "x2", "x3")
    octopus = git(root, "commit-tree", "-p", "x3", "-p", "x2", "-p", "x1", "-m", "the other way", "a^{tree}")
    branch("a", "a", lambda: replace(ephys, "channels = 32", "channels = 64"))
    branch("b", octopus.strip(), lambda: (ephys.parent / "other.toml").write_text("b = 2\n"))
    assert len(git(root, "merge-base", "--all", "a", "b").split()) == 3

    git(project_path(ours), "fetch", "-q", str(root), "+a:refs/remotes/theirs/a", "+b:refs/remotes/theirs/b")
    ours.merge("theirs/a")  # a fast-forward
    b = git(project_path(ours), "rev-parse", "theirs/b").strip().encode()
    assert len(ours.session.repository.merge_bases(head(ours).encode(), b)) == 3
    ours.merge("theirs/b")
    action = ours.actions["rec-1"]
    assert action.type == "Surgery"
    assert action.modules["ephys"]["depth"] == 4 * pq.um
    assert action.modules["ephys"]["probe"]["channels"] == 64
    assert (action.modules["extra"]["a"], action.modules["other"]["b"]) == (1, 2)
    assert_clean(project_path(ours))
    git(root, "checkout", "-q", "a")
    git(root, "merge", "-q", "--no-edit", "b")  # stock git agrees, file by file
    for path in ("modules/ephys.toml", "modules/extra.toml", "modules/other.toml"):
        ours_file = next(project_path(ours).glob(f"actions/*/rec-1/{path}"))
        assert tomllib.loads(ours_file.read_text()) == tomllib.loads((ephys.parent.parent / path).read_text())


def test_status_shows_a_merge_stopped_on_conflicts(ours, tmp_path, capsys):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    path = project_path(ours)
    assert run_cli(path, "merge", rev, capsys=capsys)[0] == 1
    code, out, _ = run_cli(path, "status", capsys=capsys)
    assert code == 0 and "clean" not in out
    assert out.startswith("a merge of ")
    assert "(merge theirs/main) is stopped: 2 conflicts unresolved, 0 resolved" in out
    assert "expipe-git conflicts" in out and "merge --abort" in out
    assert run_cli(path, "merge", "--abort", capsys=capsys)[0] == 0
    assert run_cli(path, "status", capsys=capsys)[1] == "clean: no hand edits since the last commit\n"


def test_status_json_shows_a_merge_stopped_on_conflicts(ours, tmp_path, capsys):
    theirs, rev = _diverge_on_type_and_depth(ours, tmp_path)
    path = project_path(ours)
    their_head = git(path, "rev-parse", rev).strip()

    def status() -> dict:
        code, out, err = run_cli(path, "status", "--json", capsys=capsys)
        assert code == 0, err
        return json.loads(out)

    assert status() == {"files": [], "merge": {"stopped": False}}
    assert run_cli(path, "merge", rev, capsys=capsys)[0] == 1
    (path / "notes.txt").write_text("mine")
    stopped = status()
    assert stopped["files"] == [{"path": "notes.txt", "state": "untracked"}]
    merge_state = stopped["merge"]
    assert {k: merge_state[k] for k in ("stopped", "theirs", "message", "unresolved", "resolved")} == {
        "stopped": True,
        "theirs": their_head,
        "message": "merge theirs/main",
        "unresolved": 2,
        "resolved": 0,
    }
    conflicts = json.loads(run_cli(path, "conflicts", "--json", capsys=capsys)[1])
    assert merge_state["conflicts"] == conflicts and len(conflicts) == 2  # as 'conflicts --json' lists them
    assert {"object": "action/rec-1", "key": "type", "ours": "Ours", "theirs": "Theirs"}.items() <= conflicts[
        0
    ].items()
    assert (
        "expipe-git conflicts" in merge_state["what to do"] and "merge --abort" in merge_state["what to do"]
    )
    program = subprocess.run(  # the program itself says the same
        [sys.executable, "-m", "expipe_git", "-C", str(path), "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(pathlib.Path(expipe_git.__file__).parents[1])},
    )
    assert json.loads(program.stdout) == stopped
    assert run_cli(path, "resolve", "action/rec-1", "type", "--ours", capsys=capsys)[0] == 0
    assert (status()["merge"]["unresolved"], status()["merge"]["resolved"]) == (1, 1)
    assert run_cli(path, "merge", "--abort", capsys=capsys)[0] == 0
    assert status()["merge"] == {"stopped": False}
