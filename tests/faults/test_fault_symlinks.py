"""Fault: symbolic links in a project's working tree.

git stores a link as a link; expipe_git stores only records. A link where a
record or a folder of records should be would make ``commit`` store a file
from outside the project, or an API write land outside it while ``status``
shows nothing. Every case here must be refused with an error naming the link,
in the API and on the command line, with nothing committed and nothing
written outside the project.
"""

from __future__ import annotations

import os
import pathlib
import shutil

import pytest
from conftest import assert_one_error_line, commit_count, run
from faultkit import report

from expipe_git import RepositoryStateError, layout


def _tree(folder: pathlib.Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def lab(project, tmp_path):
    """A project with an action, a module and a message, and a folder outside it."""
    action = project.require_action("rec")
    action.require_module(name="m", contents={"x": 1})
    action.create_message("first")
    project.require_module(name="settings", contents={"a": 1})
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.toml").write_text('x = 42\nsecret = "outside the project"\n')
    return project, outside


def _assert_refused(project, capsys, link: str, outside: pathlib.Path, before: dict[str, bytes]) -> int:
    """status and commit refuse naming ``link`` (API and CLI); returns the refusals seen."""
    root = project.path
    head = commit_count(root)
    refused = 0
    for call in (project.status, lambda: project.commit("commit what the link holds")):
        with pytest.raises(RepositoryStateError, match="symbolic link") as caught:
            call()
        assert link in str(caught.value)
        refused += 1
    for argv in (["status"], ["commit", "-m", "commit what the link holds"]):
        code, out, err = run(capsys, "-C", str(root), *argv)
        assert code == 1, (argv, out, err)
        assert_one_error_line(err, link, "symbolic link")
        refused += 1
    assert commit_count(root) == head
    assert _tree(outside) == before
    return refused


def test_a_symlinked_record_file_is_never_committed(lab, capsys):
    project, outside = lab
    before = _tree(outside)
    link = "modules/linked.toml"
    os.symlink(outside / "secret.toml", project.path / link)
    refused = _assert_refused(project, capsys, link, outside, before)
    report("symlink-file-untracked", refused=refused, committed=0)


def test_a_tracked_record_replaced_by_a_symlink_is_refused_and_never_written_through(lab, capsys):
    project, outside = lab
    link = layout.module_path(("action", "rec"), "m")
    (project.path / link).unlink()
    os.symlink(outside / "secret.toml", project.path / link)
    before = _tree(outside)
    refused = _assert_refused(project, capsys, link, outside, before)
    with pytest.raises(RepositoryStateError, match=link):
        project.actions["rec"].modules["m"]["x"] = 2
    with pytest.raises(RepositoryStateError, match=link):
        project.actions["rec"].delete_module("m")
    assert _tree(outside) == before
    assert os.readlink(project.path / link) == str(outside / "secret.toml")
    report("symlink-file-tracked", refused=refused + 2, landed_outside=0)


@pytest.mark.parametrize("level", ["module folder", "action folder", "shard folder", "project modules"])
def test_a_folder_replaced_by_a_symlink_is_refused_and_nothing_lands_outside(lab, capsys, level):
    """The folder's files moved outside and linked back: git status shows only the link."""
    project, outside = lab
    owner = ("action", "rec")
    folder = {
        "module folder": layout.modules_dir(owner),
        "action folder": layout.object_dir(*owner),
        "shard folder": layout.object_dir(*owner).rsplit("/", 1)[0],
        "project modules": "modules",
    }[level]
    moved = outside / "moved"
    shutil.move(project.path / folder, moved)
    os.symlink(moved, project.path / folder)
    before = _tree(outside)
    refused = _assert_refused(project, capsys, folder, outside, before)
    action = project.actions["rec"]
    messages = layout.messages_dir(*owner)
    settings, another = (layout.module_path(("project",), name) for name in ("settings", "another"))
    writes = [  # (the file it writes, the write)
        (layout.module_path(owner, "m"), lambda: action.modules["m"].__setitem__("x", 2)),
        (layout.module_path(owner, "new"), lambda: action.require_module(name="new", contents={"y": 1})),
        (f"{messages}/", lambda: action.create_message("second")),
        (layout.module_path(owner, "m"), lambda: action.delete_module("m")),
        (layout.attributes_path(*owner), lambda: action.tags.append("through the link")),
        (
            layout.module_path(("project",), "settings"),
            lambda: project.modules["settings"].__setitem__("a", 2),
        ),
        (
            layout.module_path(("project",), "another"),
            lambda: project.require_module(name="another", contents={}),
        ),
    ]
    for path, write in writes:
        head = commit_count(project.path)
        if path.startswith(folder + "/"):
            with pytest.raises(RepositoryStateError, match="symbolic link") as caught:
                write()
            assert folder in str(caught.value)
            assert commit_count(project.path) == head
            refused += 1
        else:  # a write elsewhere in the project goes on as usual
            write()
            assert commit_count(project.path) == head + 1
    assert _tree(outside) == before, "an API write landed outside the project"
    assert (project.path / folder).is_symlink()
    report(f"symlink-{level.replace(' ', '-')}", refused=refused, landed_outside=0)


def test_a_symlinked_data_folder_stays_allowed(lab):
    """Data folders are ignored by git and hold recordings: linking them to a big disk is fine."""
    project, outside = lab
    data = project.path / layout.data_dir("action", "rec")
    recordings = outside / "recordings"
    recordings.mkdir()
    os.symlink(recordings, data)
    assert project.status() == []
    project.actions["rec"].tags.append("linked data")
    assert project.actions["rec"].tags == ["linked data"]
    assert os.path.islink(data)
