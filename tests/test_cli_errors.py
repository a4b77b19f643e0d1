"""The command line's errors: a user's mistake is one line, a bug its traceback and exit status 70.

Run as a person runs it (``python -m expipe_git`` in a subprocess). The bug is
injected with a ``sitecustomize`` module, which Python imports at start-up,
so the command and the library run unchanged around it.
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from conftest import assert_one_error_line, commit_count

from expipe_git import cli

CLI_PACKAGE = pathlib.Path(cli.__file__).parent
# The layers of the cli package, lowest first; a module imports only from layers below its own.
HELPERS = ("base", "rendering", "pager", "parser", "edits")
COMMANDS = ("reading", "writing", "history", "merging", "sharing", "maintenance")
TOP = ("app",)


def expipe_git(*argv: str, cwd: pathlib.Path, bug: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m expipe_git argv``; ``bug``: code a sitecustomize runs first to break something."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(cwd / "site"), *sys.path]))}
    env.pop("EXPIPE_GIT_TRACEBACK", None)
    if bug is not None:
        (cwd / "site").mkdir(exist_ok=True)
        (cwd / "site" / "sitecustomize.py").write_text(textwrap.dedent(bug))
    return subprocess.run(
        [sys.executable, "-m", "expipe_git", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def lab(tmp_path):
    """A project with one action, made through the CLI."""
    assert expipe_git("init", "lab", cwd=tmp_path).returncode == 0
    assert expipe_git("-C", "lab", "new", "action", "rec-1", cwd=tmp_path).returncode == 0
    return tmp_path


# ---------------------------------------------------------------------------
# A bug: the traceback, "bug", where to report it, exit status 70

KEY_ERROR_IN_THE_LIBRARY = """
    import expipe_git.model

    def status(self):
        raise KeyError("depth")  # the kind of error cli.py once reported as "not found: depth"

    expipe_git.model.Project.status = status
"""

OS_ERROR_IN_THE_LIBRARY = """
    import expipe_git.model

    def create_action(self, name):
        open("/nonexistent-folder-of-a-bug/file")

    expipe_git.model.Project.create_action = create_action
"""


@pytest.mark.parametrize(
    ("bug", "argv", "exception"),
    [
        (KEY_ERROR_IN_THE_LIBRARY, ("status",), "KeyError: 'depth'"),
        (OS_ERROR_IN_THE_LIBRARY, ("new", "action", "rec-2"), "FileNotFoundError"),
    ],
)
def test_a_bug_prints_its_traceback_says_so_and_exits_70(lab, bug, argv, exception):
    result = expipe_git("-C", "lab", *argv, cwd=lab, bug=bug)
    assert result.returncode == 70, result.stderr
    assert result.stderr.startswith("Traceback (most recent call last):"), result.stderr
    assert exception in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("expipe-git: error: internal error (")
    assert "this is a bug in expipe_git" in last and "report it to expipe_git's issue tracker" in last
    assert "not found" not in last
    assert result.stdout == ""


def test_a_bug_while_the_traceback_variable_is_set_is_still_exit_70(lab):
    env_bug = KEY_ERROR_IN_THE_LIBRARY + "\n    import os; os.environ['EXPIPE_GIT_TRACEBACK'] = '1'\n"
    result = expipe_git("-C", "lab", "status", cwd=lab, bug=env_bug)
    assert result.returncode == 70 and "KeyError: 'depth'" in result.stderr


# ---------------------------------------------------------------------------
# A user's mistake: one line, no traceback, exit status 1 (2 for usage)


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (("show", "action/nope"), ("action 'nope' does not exist", "list actions")),
        (("set", "action/rec-1", "datetime=last tuesday"), ("datetime", "2026-11-01T14:00")),
        (("set", "action/rec-1", "weight=3"), ("no attribute 'weight'",)),
        (("log", "--since", "the other day"), ("cannot read 'the other day' as a time",)),
        (("diff", "no-such-branch"), ("no-such-branch",)),
        (
            ("new", "template", "daq", "--file", "missing.toml"),
            ("cannot read the template file", "missing.toml"),
        ),
        (("commit", "-m", "x", "/nowhere/else"), ("/nowhere/else",)),
        (("fetch", "lab2"), ("no remote 'lab2'",)),
    ],
)
def test_a_user_mistake_is_one_line_and_exit_1(lab, argv, fragments):
    before = commit_count(lab / "lab")
    result = expipe_git("-C", "lab", *argv, cwd=lab)
    assert result.returncode == 1, result.stderr
    assert_one_error_line(result.stderr, *fragments)
    assert commit_count(lab / "lab") == before


def test_a_path_the_system_refuses_is_one_line(lab):
    (lab / "a-file").write_text("not a folder")
    for argv in (("init", "a-file/lab"), ("clone", "lab", "a-file/copy"), ("tour", "a-file/walk")):
        result = expipe_git(*argv, cwd=lab)
        assert result.returncode == 1, result.stderr
        assert_one_error_line(result.stderr, "a-file", "Not a directory")


def test_a_busy_project_is_one_line(lab):
    lock = lab / "lab" / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("")  # as another git program writing the branch now
    result = expipe_git("-C", "lab", "set", "action/rec-1", "type=recording", cwd=lab)
    assert result.returncode == 1, result.stderr
    assert_one_error_line(result.stderr, "main.lock", "held by another program")


def test_arguments_that_do_not_go_together_exit_2(lab):
    result = expipe_git("-C", "lab", "merge", "--abort", "main", cwd=lab)
    assert result.returncode == 2
    assert_one_error_line(result.stderr, "--continue and --abort take no REV")


# ---------------------------------------------------------------------------
# The package's shape: imports one way, small modules and functions


def cli_imports(name: str) -> set[str]:
    """The modules of the cli package ``name`` imports at module level."""
    tree = ast.parse((CLI_PACKAGE / f"{name}.py").read_text())
    found = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("expipe_git.cli."):
            found.add((node.module or "").split(".")[2])
    return found


def test_cli_imports_point_one_way_down():
    modules = {path.stem for path in CLI_PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(HELPERS + COMMANDS + TOP), "a new module of the cli package: give it a layer here"
    upward = []
    for name in modules:
        if name in HELPERS:
            allowed = set(HELPERS[: HELPERS.index(name)])
        elif name in COMMANDS:
            allowed = set(HELPERS)  # never another command module: each area stands alone
        else:
            allowed = set(HELPERS + COMMANDS)
        upward += [f"cli/{name} imports cli/{other}" for other in cli_imports(name) - allowed]
    assert upward == []


def test_nothing_below_the_cli_imports_it():
    package = CLI_PACKAGE.parent
    users = []
    for path in package.rglob("*.py"):
        if CLI_PACKAGE in path.parents or path.name == "__main__.py":
            continue
        text = path.read_text()
        if "from .cli" in text or "expipe_git.cli" in text or "from . import cli" in text:
            users.append(str(path.relative_to(package)))
    assert users == []


def test_cli_modules_and_functions_are_small():
    too_big = []
    for path in CLI_PACKAGE.glob("*.py"):
        text = path.read_text()
        if len(text.splitlines()) > 600:
            too_big.append(f"{path.name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_big.append(f"{path.name}:{node.lineno} {node.name}: {length} lines")
    assert too_big == []


def test_the_entry_point_and_python_m_run_main():
    import importlib
    import re

    pyproject = (CLI_PACKAGE.parent.parent / "pyproject.toml").read_text()
    module, function = re.search(r'^expipe-git = "([\w.]+):(\w+)"$', pyproject, re.MULTILINE).groups()
    assert getattr(importlib.import_module(module), function) is cli.main
    main_module = (CLI_PACKAGE.parent / "__main__.py").read_text()
    assert "from .cli import main" in main_module
