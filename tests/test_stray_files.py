"""Files that are not records: git's ignore rules, status, commit PATH, project files that are
not records (committed when named, then diffed, logged and merged as files), records in the wrong place."""

from __future__ import annotations

import subprocess

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
        "not part of the project ('expipe-git commit' leaves them alone, 'expipe-git commit PATH' adds them; "
        ".gitignore can hide them):",
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


def cli(capsys, project, *argv: str) -> str:
    code, out, err = run(capsys, "-C", str(project.path), *argv)
    assert code == 0, err
    return out


def test_files_that_are_not_records_are_committed_when_named_then_are_project_files(project, capsys):
    project.require_action("rec-1")
    write(project, "README.md", "# rat lab\n")
    write(project, "analysis/plot.ipynb", '{"cells": []}\n')
    write(project, "analysis/params.toml", "depth = 3\n")
    write(project, "notes/todo.txt", "order rats\n")
    write(project, "templates/notes.txt", "not a template\n")
    assert cli(capsys, project, "status").splitlines()[1:] == [
        "? README.md",
        "? analysis/params.toml",
        "? analysis/plot.ipynb",
        "? notes/todo.txt",
        "? templates/notes.txt  (only records belong in templates/)",
    ]
    (project.path / "templates" / "notes.txt").unlink()
    before = commit_count(project.path)
    sha = cli(
        capsys, project, "commit", "-m", "the lab's README and plot", "README.md", "analysis/plot.ipynb"
    )
    assert commit_count(project.path) == before + 1
    assert git(project.path, "show", "--name-only", "--format=", sha.strip()).split() == [
        "README.md",
        "analysis/plot.ipynb",
    ]
    assert cli(capsys, project, "status").splitlines()[1:] == ["? analysis/params.toml", "? notes/todo.txt"]
    assert project.commit("params", [project.path / "analysis" / "params.toml"]) is not None  # the API too
    assert cli(capsys, project, "commit", "-m", "left alone") == (
        "nothing to commit: no hand edits since the last commit\n"
    )  # without a PATH, a new file that is no record waits until it is named
    assert git(project.path, "status", "--porcelain") == "?? notes/\n"

    # Reads of records ignore project files: they are no actions, modules or templates.
    reopened = expipe_git.get_project(project.path)
    assert list(reopened.actions) == ["rec-1"]
    assert list(reopened.modules) == [] and list(reopened.templates) == [] and list(reopened.entities) == []
    assert [row["name"] for row in run_json(capsys, "-C", str(project.path), "list", "actions")] == ["rec-1"]

    # Edited, a committed project file is listed as modified, and a plain commit commits it.
    write(project, "README.md", "# rat lab\nrats: 12\n")
    (project.path / "analysis" / "params.toml").unlink()
    assert cli(capsys, project, "status").splitlines()[:2] == ["M README.md", "D analysis/params.toml"]
    assert run_json(capsys, "-C", str(project.path), "status")["files"] == [
        {"path": "README.md", "state": "modified"},
        {"path": "analysis/params.toml", "state": "deleted"},
        {"path": "notes/todo.txt", "state": "untracked"},
    ]
    assert cli(capsys, project, "diff").splitlines() == [  # one change of the file, its lines; not key by key
        "~ README.md: changed",
        "    @@ -1 +1,2 @@",
        "     # rat lab",
        "    +rats: 12",
        "- analysis/params.toml: deleted",
    ]
    cli(capsys, project, "commit", "-m", "twelve rats")
    assert git(project.path, "show", "--name-status", "--format=", "HEAD").split() == [
        "M",
        "README.md",
        "D",
        "analysis/params.toml",
    ]
    assert (project.path / "notes" / "todo.txt").read_text() == "order rats\n"

    # History: log, diff and show name the file.
    logged = [c.message.splitlines()[0] for c in project.log(path="README.md")]
    assert logged == ["twelve rats", "the lab's README and plot"]
    assert [
        line.split(" ", 1)[1] for line in cli(capsys, project, "log", "--oneline", "README.md").splitlines()
    ] == logged
    (change,) = [c for c in project.diff("HEAD~1", "HEAD") if c.path == "README.md"]
    assert (change.kind, change.object, change.key) == ("modified", None, ())
    assert (change.old, change.new) == ("# rat lab\n", "# rat lab\nrats: 12\n")
    (removed,) = [c for c in project.diff("HEAD~1", "HEAD") if c.path == "analysis/params.toml"]
    assert (removed.kind, removed.old) == ("removed", "depth = 3\n")  # a .toml outside the folders is text

    # API writes keep the project files.
    project.actions["rec-1"].tags = ["place cell"]
    assert git(project.path, "ls-files").split().count("README.md") == 1
    assert (project.path / "README.md").read_text() == "# rat lab\nrats: 12\n"
    (project.path / "notes" / "todo.txt").unlink()
    (project.path / "notes").rmdir()
    assert_clean(project.path)
    (project.path / "README.md").unlink()
    cli(capsys, project, "commit", "-m", "no README")
    logged = cli(capsys, project, "log", "--oneline", "README.md").splitlines()  # followed once gone too
    assert [line.split(" ", 1)[1] for line in logged] == [
        "no README",
        "twelve rats",
        "the lab's README and plot",
    ]
    assert_clean(project.path)


def test_a_project_file_whose_name_differs_only_in_case_is_refused(project, capsys):
    write(project, "README.md", "a")
    project.commit("readme", ["README.md"])
    write(project, "readme.md", "b")
    before = commit_count(project.path)
    code, _, err = run(capsys, "-C", str(project.path), "commit", "-m", "twin", "readme.md")
    assert code == 1
    assert_one_error_line(err, "readme.md differs only in case from README.md", "rename one")
    (project.path / "readme.md").unlink()
    write(project, "Analysis/a.txt", "a")
    write(project, "analysis/b.txt", "b")
    with pytest.raises(expipe_git.CorruptFileError, match="differs only in case"):
        project.commit("two folders", ["Analysis", "analysis"])
    assert commit_count(project.path) == before
    (project.path / "README.md").unlink()
    write(project, "readme.md", "b")
    assert project.commit("renamed by case", ["README.md", "readme.md"]) is not None  # a rename is no twin
    assert git(project.path, "ls-files", "*.md").split() == ["readme.md"]


def fork(project, tmp_path):
    """Clone ``project`` with stock git and open the clone."""
    git(tmp_path, "clone", "-q", str(project.path), str(tmp_path / "theirs"))
    return expipe_git.get_project(tmp_path / "theirs")


def fetch(project, other) -> str:
    git(project.path, "fetch", "-q", str(other.path), "+main:refs/remotes/theirs/main")
    return "theirs/main"


def test_merging_histories_that_both_changed_a_project_file(project, tmp_path, capsys):
    project.require_action("rec-1")
    write(project, "README.md", "# lab\n")
    write(project, "analysis/shared.txt", "base\n")
    project.commit("readme", ["README.md", "analysis/shared.txt"])
    theirs = fork(project, tmp_path)
    write(project, "README.md", "# lab\nours\n")
    project.commit("ours")
    write(theirs, "README.md", "# lab\ntheirs\n")
    write(theirs, "analysis/shared.txt", "theirs\n")  # changed on one side only: merges
    write(theirs, "analysis/plot.ipynb", "{}\n")
    theirs.commit("theirs", ["README.md", "analysis"])
    theirs.actions["rec-1"].tags = ["theirs"]
    rev = fetch(project, theirs)
    head = git(project.path, "rev-parse", "HEAD")

    with pytest.raises(expipe_git.MergeConflict) as caught:
        project.merge(rev)
    (conflict,) = caught.value.conflicts
    assert (conflict.object, conflict.key, conflict.kind, conflict.path) == (
        "README.md",
        "",
        "file",
        "README.md",
    )
    assert (conflict.base, conflict.ours, conflict.theirs) == ("# lab\n", "# lab\nours\n", "# lab\ntheirs\n")
    assert git(project.path, "rev-parse", "HEAD") == head
    assert_clean(project.path)
    stopped = run_json(capsys, "-C", str(project.path), "status")["merge"]
    assert (stopped["stopped"], [c["object"] for c in stopped["conflicts"]]) == (True, ["README.md"])
    assert "README.md: base '# lab\\n', ours '# lab\\nours\\n'" in cli(capsys, project, "conflicts")

    code, _, err = run(capsys, "-C", str(project.path), "resolve", "README.md", "--value", "x")
    assert code == 1
    assert_one_error_line(
        err, "README.md", "resolve it with 'ours' or 'theirs'", "a file that is not a record"
    )
    cli(capsys, project, "resolve", "README.md", "--theirs")
    sha = cli(capsys, project, "merge", "--continue").strip()
    assert git(project.path, "log", "-1", "--format=%P", sha).split()[0] == head.strip()
    assert (project.path / "README.md").read_text() == "# lab\ntheirs\n"
    assert (project.path / "analysis" / "shared.txt").read_text() == "theirs\n"
    assert (project.path / "analysis" / "plot.ipynb").read_text() == "{}\n"
    assert project.actions["rec-1"].tags == ["theirs"]
    assert_clean(project.path)


def test_merging_histories_that_add_case_twins_is_refused_before_anything_changes(project, tmp_path):
    theirs = fork(project, tmp_path)
    write(project, "README.md", "ours\n")
    project.commit("ours", ["README.md"])
    write(theirs, "readme.md", "theirs\n")
    theirs.commit("theirs", ["readme.md"])
    rev = fetch(project, theirs)
    head = git(project.path, "rev-parse", "HEAD")
    with pytest.raises(expipe_git.CorruptFileError, match="readme.md differs only in case from README.md"):
        project.merge(rev)
    assert git(project.path, "rev-parse", "HEAD") == head
    assert_clean(project.path)


def test_a_pull_never_overwrites_a_persons_file_with_a_project_file(project, tmp_path):
    theirs = fork(project, tmp_path)
    write(theirs, "README.md", "theirs\n")
    theirs.commit("their README", ["README.md"])
    write(project, "README.md", "mine, not committed\n")
    rev = fetch(project, theirs)
    with pytest.raises(
        expipe_git.UncommittedChangesError, match="README.md .*'expipe-git commit -m MESSAGE FILE'"
    ):
        project.merge(rev)
    assert (project.path / "README.md").read_text() == "mine, not committed\n"
    (project.path / "README.md").unlink()
    project.merge(rev)
    write(theirs, "README.md", "theirs, again\n")
    theirs.commit("their README again")
    write(project, "README.md", "my edit\n")
    with pytest.raises(expipe_git.UncommittedChangesError, match="README.md"):
        project.merge(fetch(project, theirs))
    assert (project.path / "README.md").read_text() == "my edit\n"


def test_a_project_file_deleted_on_one_side_and_changed_on_the_other_conflicts(project, tmp_path, capsys):
    write(project, "README.md", "base\n")
    project.commit("readme", ["README.md"])
    theirs = fork(project, tmp_path)
    (project.path / "README.md").unlink()
    project.commit("no README")
    write(theirs, "README.md", "theirs\n")
    theirs.commit("their README")
    rev = fetch(project, theirs)
    with pytest.raises(expipe_git.MergeConflict) as caught:
        project.merge(rev)
    (conflict,) = caught.value.conflicts
    assert (conflict.object, conflict.kind, conflict.ours, conflict.theirs) == (
        "README.md",
        "deleted",
        expipe_git.merge.ABSENT,
        "theirs\n",
    )
    assert "README.md: deleted in ours, changed in the other" in cli(capsys, project, "conflicts")
    cli(capsys, project, "resolve", "README.md", "--theirs")
    cli(capsys, project, "merge", "--continue")
    assert (project.path / "README.md").read_text() == "theirs\n"
    assert_clean(project.path)


def test_a_binary_project_file_is_committed_byte_for_byte(project, capsys):
    figure = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\r\n" + bytes(range(256))
    (project.path / "analysis").mkdir()
    (project.path / "analysis" / "fig.png").write_bytes(figure)
    project.commit("a figure", ["analysis/fig.png"])
    shown = subprocess.run(
        ["git", "show", "HEAD:analysis/fig.png"], cwd=project.path, capture_output=True, check=True
    )
    assert shown.stdout == figure
    assert project.status() == []
    (project.path / "analysis" / "fig.png").write_bytes(figure + b"\x00more")
    code, out, err = run(capsys, "-C", str(project.path), "diff")
    assert (code, out) == (
        0,
        "~ analysis/fig.png: changed\n    (a binary file: its lines are not shown)\n",
    ), err
    project.commit("more figure")
    assert_clean(project.path)


def test_revert_of_a_commit_of_project_files(project, capsys):
    write(project, "README.md", "# lab\n")
    added = project.commit("readme", ["README.md"])
    write(project, "README.md", "# lab\nmore\n")
    edited = project.commit("more")
    project.revert(edited)
    assert (project.path / "README.md").read_text() == "# lab\n"
    code, _, err = run(capsys, "-C", str(project.path), "revert", added)
    assert code == 0, err
    assert not (project.path / "README.md").exists()
    assert_clean(project.path)
