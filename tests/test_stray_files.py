"""Files that are not the project's: git's ignore rules, status, commit PATH, records in the wrong place."""

from __future__ import annotations

import pytest
from conftest import assert_clean, assert_one_error_line, commit_count, git, run, run_json

import expipe_git
from expipe_git import layout

JUNK = [".DS_Store", "Thumbs.db", "desktop.ini", "~$notes.docx", ".ipynb_checkpoints/a.ipynb", "x.toml.swp"]


def write(project, path: str, text: str = "x") -> None:
    full = project.path / path
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_text(text)


def edit_type(project, name: str, value: str) -> str:
    path = layout.attributes_path("action", name)
    full = project.path / path
    full.write_text(full.read_text() + f'type = "{value}"\n')
    return path


def test_os_and_editor_junk_is_ignored_in_a_new_project(project):
    project.require_action("rec-1")
    folder = layout.object_dir("action", "rec-1")
    for junk in JUNK:
        write(project, junk)
        write(project, f"{folder}/{junk}")
    assert project.status() == []
    assert git(project.path, "status", "--porcelain") == ""  # stock git agrees


def test_gitignore_info_exclude_and_excludes_file_are_honoured(project, isolated_home):
    write(project, ".gitignore", (project.path / ".gitignore").read_text() + "/analysis/\n")
    write(project, ".git/info/exclude", "*.log\n")
    (isolated_home / "global-ignore").write_text("scratch*\n")
    git(project.path, "config", "--global", "core.excludesFile", str(isolated_home / "global-ignore"))
    for path in ("analysis/plot.ipynb", "acq.log", "scratch.txt", "notes.txt"):
        write(project, path)
    reopened = expipe_git.get_project(project.path)
    assert [(s.path, s.state) for s in reopened.status()] == [
        (".gitignore", "modified"),
        ("notes.txt", "untracked"),
    ]
    assert git(project.path, "status", "--porcelain", "--untracked-files=all").split() == [
        "M",
        ".gitignore",
        "??",
        "notes.txt",
    ]


def test_commit_leaves_files_that_are_not_the_projects_alone(project, capsys):
    project.require_action("rec-1")
    write(project, "README.md", "# my notes")
    write(project, "analysis/plot.ipynb", "{}")
    edited = edit_type(project, "rec-1", "sleep")
    code, out, _ = run(capsys, "-C", str(project.path), "status")
    assert out.splitlines() == [
        f"M {edited}",
        "not part of the project ('expipe-git commit' leaves them alone; .gitignore can hide them):",
        "? README.md",
        "? analysis/plot.ipynb",
    ]
    sha = project.commit("sleep")
    assert sha is not None
    assert git(project.path, "show", "--name-only", "--format=", sha).split() == [edited]
    assert project.actions["rec-1"].type == "sleep"
    assert [(s.path, s.state) for s in project.status()] == [
        ("README.md", "untracked"),
        ("analysis/plot.ipynb", "untracked"),
    ]
    assert (project.path / "README.md").read_text() == "# my notes"
    assert git(project.path, "status", "--porcelain").split() == ["??", "README.md", "??", "analysis/"]


def test_commit_paths_commits_only_those(project, capsys):
    project.require_action("rec-1")
    project.require_action("rec-2")
    first = edit_type(project, "rec-1", "one")
    second = edit_type(project, "rec-2", "two")
    before = commit_count(project.path)
    code, out, err = run(capsys, "-C", str(project.path), "commit", "-m", "only rec-1", first)
    assert code == 0, err
    assert commit_count(project.path) == before + 1
    assert git(project.path, "show", "--name-only", "--format=", "HEAD").split() == [first]
    assert [(s.path, s.state) for s in project.status()] == [(second, "modified")]
    folder = layout.object_dir("action", "rec-2")
    assert project.commit("rec-2", [project.path / folder]) is not None  # a folder, absolute
    assert project.status() == []
    assert_clean(project.path)
    with pytest.raises(expipe_git.InvalidValueError, match="has no uncommitted edit"):
        project.commit("nothing", [first])


def test_a_record_made_by_hand_in_the_wrong_place_names_the_right_one(project, capsys):
    write(project, "actions/rec-5/attributes.toml", 'type = "recording"\n')
    (edit,) = run_json(capsys, "-C", str(project.path), "status")["files"]
    assert edit == {"path": "actions/rec-5/attributes.toml", "state": "added"}
    right = layout.attributes_path("action", "rec-5")
    code, _, err = run(capsys, "-C", str(project.path), "commit", "-m", "rec-5")
    assert code == 1
    assert_one_error_line(err, "actions/rec-5/attributes.toml", f"move it to {right}")
    wrong_shard = "actions/00/rec-5/modules/probe.toml"
    assert layout.right_place(wrong_shard) == f"{layout.object_dir('action', 'rec-5')}/modules/probe.toml"
    (project.path / "actions/rec-5/attributes.toml").unlink()
    write(project, right, 'type = "recording"\n')
    assert project.commit("rec-5") is not None
    assert project.actions["rec-5"].type == "recording"
    assert_clean(project.path)
