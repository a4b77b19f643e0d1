"""The modules of expipe_git use each other's public names only.

A private name (``_x``) used from another module is a seam that wants a public
name; these tests read the source of every module of the package (the git
layer, the object layer, the features, cli/ and web/) with :mod:`ast` and list
every such use.
"""

import ast
import pathlib

import pytest

import expipe_git
import expipe_git.layout
import expipe_git.model

PACKAGE = pathlib.Path(expipe_git.__file__).parent

EVERY_MODULE = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))

PROJECT_PRIVATE = {
    name
    for name, value in vars(expipe_git.model.Project).items()
    if name.startswith("_") and not name.startswith("__") and callable(value)
} | {"_commit", "_snap", "_record", "_identity", "_existing", "_handle", "_store"}


def _imported_from(node: ast.ImportFrom, relative: str, package: pathlib.Path) -> pathlib.Path | None:
    """The folder or module path an ``import from`` of the package names, or None if it is not ours."""
    if node.level:
        base = (package / relative).parent
        for _ in range(node.level - 1):
            base = base.parent
    elif (node.module or "").split(".")[0] == package.name:
        base = package.parent
    else:
        return None
    return base.joinpath(*node.module.split(".")) if node.module else base


def _package_modules(tree: ast.Module, relative: str, package: pathlib.Path) -> set[str]:
    """Names bound to modules of the package here (``from . import history``, ``import expipe_git.x``)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _imported_from(node, relative, package)
            for alias in node.names if source is not None else ():
                if (source / f"{alias.name}.py").exists() or (source / alias.name).is_dir():
                    bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package.name:
                    bound.add(alias.asname or alias.name.split(".")[0])
    return bound


def private_uses(relative: str, package: pathlib.Path = PACKAGE) -> list[str]:
    """Return each use in ``relative`` of another module's private name, as "line: text"."""
    tree = ast.parse((package / relative).read_text(encoding="utf-8"))
    modules = _package_modules(tree, relative, package)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _imported_from(node, relative, package) is not None:
            found += [
                f"{node.lineno}: from {node.module} import {a.name}"
                for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")
            ]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in modules:
                found.append(f"{node.lineno}: {owner.id}.{node.attr}")
            elif isinstance(owner, ast.Attribute) and ast.unparse(owner).split(".")[0] in modules:
                found.append(f"{node.lineno}: {ast.unparse(node)}")  # expipe_git.layout._x
            elif (
                relative != "model.py"
                and node.attr in PROJECT_PRIVATE
                and ast.unparse(owner).endswith("project")
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("relative", EVERY_MODULE)
def test_no_private_name_of_another_module_is_used(relative):
    assert private_uses(relative) == []


def test_the_check_sees_a_private_use(tmp_path):
    # The check itself can fail: a module reaching into another's private name is listed.
    package = tmp_path / "expipe_git"
    (package / "git").mkdir(parents=True)
    for name in ("layout.py", "git/packs.py", "git/__init__.py"):
        (package / name).write_text("")
    source = "from . import layout\nfrom .objects import _hidden\n\n\ndef f(project):\n"
    source += "    layout._name_problem('x')\n    project._commit(1)\n"
    (package / "bad.py").write_text(source)
    assert private_uses("bad.py", package) == [
        "2: from objects import _hidden",
        "6: layout._name_problem",
        "7: project._commit",
    ]
    # In a subpackage: relative imports from the level above, absolute imports.
    source = "from .. import layout\nfrom . import packs\nimport expipe_git.layout\n"
    source += "from expipe_git.git.packs import _inflate\n\n"
    source += "layout._shard('x')\npacks._inflate(1)\nexpipe_git.layout._shard('y')\n"
    (package / "git" / "inner.py").write_text(source)
    assert private_uses("git/inner.py", package) == [
        "4: from expipe_git.git.packs import _inflate",
        "6: layout._shard",
        "7: packs._inflate",
        "8: expipe_git.layout._shard",
    ]


def test_the_object_layer_reaches_the_engine_through_the_session(project):
    session = project.session
    assert session.commit(("project",), "touch", lambda snap: {}) is None  # nothing to commit
    action = project.create_action("rec-1")
    snap = session.snapshot()
    path = expipe_git.layout.attributes_path("action", "rec-1")
    assert session.existing(snap, path, ("action", "rec-1")) == action.attributes
    assert session.identity() == session.identity()


def test_no_module_over_600_lines_and_no_function_over_60():
    """Issue 11's bounds on the package's shape: a module owns one thing, a function does one step."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        name = str(path.relative_to(PACKAGE))
        if source.count("\n") > 600:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    too_long.append(f"{name}: {node.name}() {length} lines")
    assert too_long == []
