"""What of Windows can be tested on Linux: no Unix-only import, the Windows lock path, CRLF, names.

expipe_git runs on Windows acquisition PCs. CI here is Linux, so these tests
run the package in a subprocess where ``fcntl`` (and the other Unix-only
modules of the standard library) cannot be imported, with
``tests/windows_shim/msvcrt.py`` standing in for Windows' ``msvcrt.locking``
(the real one does not exist here): the import path, the lock's Windows
branch and its mutual exclusion between processes are tested; Windows' own
file system is not (README, "Windows").
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from conftest import assert_clean, commit_count, commits, git, project_path, run

import expipe_git
from expipe_git import AlreadyExistsError, layout

SHIM = pathlib.Path(__file__).parent / "windows_shim"
REPO = pathlib.Path(__file__).parent.parent

# Put first in a subprocess: refuses the Unix-only modules, as on Windows.
BLOCK_UNIX_ONLY = textwrap.dedent(
    """
    import importlib.abc, sys
    UNIX_ONLY = {"fcntl", "termios", "pwd", "grp", "resource", "pty", "tty", "posix_ipc"}

    class RefuseUnixOnly(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in UNIX_ONLY:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    for loaded in [m for m in sys.modules if m.split(".")[0] in UNIX_ONLY]:
        del sys.modules[loaded]
    sys.meta_path.insert(0, RefuseUnixOnly())
    import expipe_git, subprocess  # before msvcrt exists: subprocess takes it as the sign of Windows

    import importlib.util
    spec = importlib.util.spec_from_file_location("msvcrt", sys.argv.pop(1))
    sys.modules["msvcrt"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["msvcrt"])
    """
)


def without_fcntl(code: str, *args: str) -> list[str]:
    """The command line of a Python running ``code`` with ``args`` as on Windows (see the module)."""
    return [sys.executable, "-c", BLOCK_UNIX_ONLY + textwrap.dedent(code), str(SHIM / "msvcrt.py"), *args]


def windows_env() -> dict[str, str]:
    # Windows always sets USERNAME; without pwd it is where dulwich's reflog finds a name.
    return {**os.environ, "PYTHONPATH": str(REPO), "USERNAME": "rig-pc"}


def run_without_fcntl(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        without_fcntl(code, *args), capture_output=True, text=True, timeout=120, env=windows_env()
    )


def test_every_module_imports_without_fcntl():
    result = run_without_fcntl(
        """
        import importlib, pkgutil
        import expipe_git
        for info in pkgutil.iter_modules(expipe_git.__path__):
            if info.name != "__main__":
                importlib.import_module("expipe_git." + info.name)
        assert "fcntl" not in sys.modules
        print("imported")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_the_cli_runs_without_fcntl(tmp_path):
    result = run_without_fcntl(
        """
        from expipe_git import cli
        sys.exit(cli.main(["init", sys.argv[1]]))
        """,
        str(tmp_path / "p"),
    )
    assert result.returncode == 0, result.stderr
    assert_clean(tmp_path / "p")


WRITER = """
    import expipe_git
    path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    action = expipe_git.get_project(path).actions["shared"]
    for j in range(count):
        action.tags.append(f"w{worker}-{j}")
    assert "fcntl" not in sys.modules and "msvcrt" in sys.modules
"""


def test_writers_without_fcntl_exclude_each_other(tmp_path):
    # Three processes append to one action's tags at once, each taking the
    # lock through the Windows branch: no append may be lost.
    path = tmp_path / "p"
    expipe_git.require_project(path).require_action("shared")
    writers = [
        subprocess.Popen(
            without_fcntl(WRITER, str(path), str(w), "15"),
            env=windows_env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(3)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
    tags = list(expipe_git.get_project(path).actions["shared"].tags)
    assert sorted(tags) == sorted(f"w{w}-{j}" for w in range(3) for j in range(15))
    assert_clean(path)


# -- CRLF working trees -------------------------------------------------------------


def crlf_checkout(path) -> None:
    """Check the project out again as git for Windows does by default (core.autocrlf = true)."""
    git(path, "config", "core.autocrlf", "true")
    for tracked in git(path, "ls-files").split():
        (pathlib.Path(path) / tracked).unlink()
    git(path, "checkout", "--", ".")


def test_a_crlf_checkout_is_not_a_hand_edit(project, capsys):
    action = project.require_action("rec-1")
    action.tags = ["a"]
    path = project_path(project)
    crlf_checkout(path)
    attributes = path / layout.attributes_path("action", "rec-1")
    assert b"\r\n" in attributes.read_bytes()  # git wrote CRLF
    assert git(path, "status", "--porcelain") == ""
    assert project.status() == []
    code, out, _ = run(capsys, "-C", str(path), "status")
    assert code == 0 and out.startswith("clean")
    with commits(path):  # and an API write is not refused as overwriting an edit
        action.tags.append("b")
    assert list(expipe_git.get_project(path).actions["rec-1"].tags) == ["a", "b"]


def test_a_crlf_hand_edit_parses_and_is_committed_with_lf(project, capsys):
    project.require_action("rec-1").tags = ["a"]
    path = project_path(project)
    crlf_checkout(path)
    attributes = path / layout.attributes_path("action", "rec-1")
    text = attributes.read_bytes()
    attributes.write_bytes(text.replace(b'"a"', b'"edited in Notepad"'))
    assert [edit.path for edit in project.status()] == [layout.attributes_path("action", "rec-1")]
    with commits(path):
        code, _, err = run(capsys, "-C", str(path), "commit", "-m", "hand edit on Windows")
        assert code == 0, err
    assert list(expipe_git.get_project(path).actions["rec-1"].tags) == ["edited in Notepad"]
    committed = subprocess.run(
        ["git", "show", f"HEAD:{layout.attributes_path('action', 'rec-1')}"],
        cwd=path,
        capture_output=True,
        check=True,
    ).stdout
    assert b"\r" not in committed and b"edited in Notepad" in committed
    assert project.status() == []


def test_a_file_with_a_lone_cr_is_left_as_it_is(project):
    # git takes a lone CR for a binary file and converts nothing: neither do we.
    project.require_action("rec-1")
    path = project_path(project)
    attributes = path / layout.attributes_path("action", "rec-1")
    attributes.write_bytes(attributes.read_bytes().replace(b"\n", b"\r\n", 1) + b"# a lone \r here\n")
    assert [edit.state for edit in project.status()] == ["modified"]


# -- names --------------------------------------------------------------------------


def test_names_differing_only_in_case_live_in_different_folders(project):
    # Windows and macOS file systems ignore case: two actions whose names
    # differ only in case must not share a folder. Their folders are sharded
    # by a hash of the exact name.
    for name in ("Rec-1", "rec-1", "REC-1"):
        project.require_action(name).tags = [name]
    folders = {layout.object_dir("action", name).lower() for name in ("Rec-1", "rec-1", "REC-1")}
    assert len(folders) == 3
    fresh = expipe_git.get_project(project.path)
    assert {name: list(fresh.actions[name].tags) for name in ("Rec-1", "rec-1", "REC-1")} == {
        name: [name] for name in ("Rec-1", "rec-1", "REC-1")
    }


def test_a_module_or_template_differing_only_in_case_is_refused(project):
    # They would be one file on Windows and macOS.
    action = project.require_action("rec-1")
    action.require_module(name="Tracking", contents={"fps": 30})
    project.require_module(name="settings", contents={"a": 1})
    project.require_template("Daq", {"rate": 1})
    before = commit_count(project.path)
    with pytest.raises(AlreadyExistsError, match="'Tracking' exists in action 'rec-1'.*only in case"):
        action.create_module(name="tracking", contents={"fps": 60})
    with pytest.raises(AlreadyExistsError, match="'settings'.*only in case"):
        project.require_module(name="SETTINGS", contents={"a": 2})
    with pytest.raises(AlreadyExistsError, match="template 'Daq' exists.*only in case"):
        project.require_template("daq", {"rate": 2})
    assert commit_count(project.path) == before
    assert dict(action.modules["Tracking"].to_dict()) == {"fps": 30}
    assert_clean(project.path)
