"""project.transaction(): many mutations, one commit; an exception, no commit."""

from __future__ import annotations

import threading

import pytest
import quantities as pq
from conftest import assert_clean, commit_count, commits, git, project_path

import expipe_git
from expipe_git.errors import ExpipeError, NotFoundError, UncommittedChangesError


def test_every_change_in_the_block_is_one_commit(project):
    path = project_path(project)
    with commits(path, 1):
        with project.transaction("register session 1"):
            action = project.require_action("rec-1")
            action.tags = ["a"]
            action.tags.append("b")
            module = action.create_module("probe", contents={"depth": 2 * pq.um})
            module["depth"] = 3 * pq.um
            action.create_message("implanted", user="ana")
            project.require_entity("rat-1").users = ["ana"]
            # Reads inside the block see the changes made so far.
            assert list(project.actions["rec-1"].tags) == ["a", "b"]
            assert project.actions["rec-1"].modules["probe"]["depth"] == 3 * pq.um
    message = git(path, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == "register session 1"
    assert "- action 'rec-1': add to tags" in message
    assert "- module 'probe' of action 'rec-1': set depth" in message
    fresh = expipe_git.get_project(path)
    assert list(fresh.actions["rec-1"].tags) == ["a", "b"]
    assert fresh.actions["rec-1"].modules["probe"]["depth"] == 3 * pq.um
    assert [m.text for m in fresh.actions["rec-1"].messages.values()] == ["implanted"]
    assert list(fresh.entities["rat-1"].users) == ["ana"]


def test_a_single_change_keeps_its_own_message(project):
    path = project_path(project)
    project.require_action("rec-1")
    with commits(path, 1):
        with project.transaction():
            project.actions["rec-1"].tags = ["x"]
    assert git(path, "log", "-1", "--format=%s").strip() == "action 'rec-1': set tags"


def test_an_exception_commits_nothing_and_memory_shows_the_state_before(project):
    path = project_path(project)
    action = project.require_action("rec-1")
    action.tags = ["before"]
    head = git(path, "rev-parse", "HEAD")
    with pytest.raises(RuntimeError, match="boom"):
        with project.transaction():
            action.tags = ["during"]
            project.require_action("rec-2")
            action.create_module("m", contents={"k": 1})
            assert list(action.tags) == ["during"]
            raise RuntimeError("boom")
    assert git(path, "rev-parse", "HEAD") == head
    assert list(action.tags) == ["before"]
    assert "rec-2" not in project.actions and "m" not in action.modules
    assert not list(path.glob("actions/*/rec-2"))  # nothing written to disk
    assert_clean(path)


def test_an_empty_block_makes_no_commit(project):
    path = project_path(project)
    project.require_action("rec-1").tags = ["x"]
    with commits(path, 0):
        with project.transaction("nothing"):
            project.require_action("rec-1")  # exists: no change
            project.actions["rec-1"].tags = ["x"]  # same value: no change


def test_a_nested_block_folds_into_the_outer_one(project):
    path = project_path(project)
    with commits(path, 1):
        with project.transaction("outer"):
            project.require_action("a")
            with project.transaction("inner"):
                project.require_action("b")
            assert "b" in project.actions
    assert git(path, "log", "-1", "--format=%s").strip() == "outer"


def test_a_failed_nested_block_drops_only_its_own_changes(project):
    path = project_path(project)
    with commits(path, 1):
        with project.transaction("outer"):
            project.require_action("a").tags = ["kept"]
            with pytest.raises(KeyError):
                with project.transaction():
                    project.require_action("b")
                    project.actions["a"].tags = ["dropped"]
                    project.actions["missing"]
            assert "b" not in project.actions
            project.require_action("c")
    assert sorted(project.actions) == ["a", "c"]
    assert list(project.actions["a"].tags) == ["kept"]


def test_changes_committed_meanwhile_by_another_writer_are_kept(project, tmp_path):
    path = project_path(project)
    project.require_action("rec-1").tags = ["first"]
    other = expipe_git.get_project(path)
    with commits(path, 3):  # two by the other handle, one by the block
        with project.transaction("mine"):
            project.actions["rec-1"].tags.append("mine")
            project.require_action("rec-2")
            # Another handle (another script) commits while the block runs.
            other.actions["rec-1"].tags.append("theirs")
            other.require_action("rec-3")
    # The block's changes were applied again on top of the other commit.
    assert list(project.actions["rec-1"].tags) == ["first", "theirs", "mine"]
    assert sorted(project.actions) == ["rec-1", "rec-2", "rec-3"]
    assert git(path, "log", "-1", "--format=%s").strip() == "mine"


def test_a_change_that_no_longer_applies_commits_nothing(project):
    path = project_path(project)
    project.require_action("rec-1")
    other = expipe_git.get_project(path)
    before = commit_count(path)
    with pytest.raises(NotFoundError, match="rec-1"):
        with project.transaction():
            project.require_action("rec-2")
            project.actions["rec-1"].tags = ["x"]
            other.delete_action("rec-1")
    assert commit_count(path) == before + 1  # only the other handle's delete
    assert "rec-2" not in project.actions
    assert_clean(path)


def test_a_hand_edited_file_refuses_the_whole_block(project):
    path = project_path(project)
    action = project.require_action("rec-1")
    project.require_action("rec-2")
    attributes = next(path.glob("actions/*/rec-1/attributes.toml"))
    attributes.write_text(attributes.read_text() + "# my note\n")
    head = git(path, "rev-parse", "HEAD")
    with pytest.raises(UncommittedChangesError, match="rec-1"):
        with project.transaction():
            project.actions["rec-2"].tags = ["fine"]
            action.tags = ["x"]
    assert git(path, "rev-parse", "HEAD") == head
    assert attributes.read_text().endswith("# my note\n")
    assert list(project.actions["rec-2"].tags) == []


def test_committing_hand_edits_is_refused_inside_a_block(project):
    with pytest.raises(ExpipeError, match="transaction"):
        with project.transaction():
            project.commit("hand edits")


def test_other_threads_do_not_see_an_unfinished_block(project):
    project.require_action("rec-1")
    seen = []
    with project.transaction():
        project.actions["rec-1"].tags = ["inside"]
        thread = threading.Thread(target=lambda: seen.append(list(project.actions["rec-1"].tags)))
        thread.start()
        thread.join()
    assert seen == [[]]
    assert list(project.actions["rec-1"].tags) == ["inside"]


def test_delete_and_recreate_inside_a_block(project):
    path = project_path(project)
    project.require_action("rec-1").tags = ["old"]
    with commits(path, 1):
        with project.transaction():
            project.delete_action("rec-1")
            assert "rec-1" not in project.actions
            project.create_action("rec-1").tags = ["new"]
    assert list(project.actions["rec-1"].tags) == ["new"]


def test_a_read_only_view_refuses_a_transaction(project):
    from expipe_git.git import Repository

    project.require_action("rec-1")
    pinned = expipe_git.Project(
        project.path, store=Repository(project.path, read_only_at=project.session.repository.head())
    )
    with pytest.raises(ExpipeError, match="read-only"):
        with pinned.transaction():
            pass
