"""The object layer and the features above the engine use each other's public names only.

A private name (``_x``) used from another module is a seam that wants a public
name; these tests read the source with :mod:`ast` and list every such use.
"""

import ast
import pathlib

import pytest

import expipe_git
import expipe_git.layout
import expipe_git.model

PACKAGE = pathlib.Path(expipe_git.__file__).parent

# The object layer and the features on the engine (issue 11: helper R3's part).
OBJECT_LAYER = [
    "session.py",
    "model.py",
    "maps.py",
    "objects.py",
    "messages.py",
    "records.py",
    "checks.py",
    "history.py",
    "changes.py",
    "timetext.py",
    "merge.py",
    "recordmerge.py",
    "valuetext.py",
    "migrate.py",
    "importcheck.py",
    "values.py",
    "decoding.py",
    "tomltext.py",
    "config.py",
    "expipe06.py",
    "query.py",
    "queryindex.py",
    "criteria.py",
    "tables.py",
    "display.py",
    "tour.py",
    *sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "web").glob("*.py")),
]

PROJECT_PRIVATE = {
    name
    for name, value in vars(expipe_git.model.Project).items()
    if name.startswith("_") and not name.startswith("__") and callable(value)
} | {"_commit", "_snap", "_record", "_identity", "_existing", "_handle", "_store"}


def _package_modules(tree: ast.Module, package: pathlib.Path) -> set[str]:
    """Names bound to modules of expipe_git here (``from . import history``)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("expipe_git")):
            for alias in node.names:
                if (package / f"{alias.name}.py").exists() or (package / alias.name).is_dir():
                    bound.add(alias.asname or alias.name)
    return bound


def private_uses(relative: str, package: pathlib.Path = PACKAGE) -> list[str]:
    """Return each use in ``relative`` of another module's private name, as "line: text"."""
    tree = ast.parse((package / relative).read_text(encoding="utf-8"))
    modules = _package_modules(tree, package)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("expipe_git")):
            found += [
                f"{node.lineno}: from {node.module} import {a.name}"
                for a in node.names
                if a.name.startswith("_")
            ]
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in modules:
                found.append(f"{node.lineno}: {owner.id}.{node.attr}")
            elif (
                relative != "model.py"
                and node.attr in PROJECT_PRIVATE
                and ast.unparse(owner).endswith("project")
            ):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("relative", OBJECT_LAYER)
def test_no_private_name_of_another_module_is_used(relative):
    assert private_uses(relative) == []


def test_the_check_sees_a_private_use(tmp_path):
    # The check itself can fail: a module reaching into another's private name is listed.
    (tmp_path / "layout.py").write_text("")
    source = "from . import layout\nfrom .objects import _hidden\n\n\ndef f(project):\n"
    source += "    layout._name_problem('x')\n    project._commit(1)\n"
    (tmp_path / "bad.py").write_text(source)
    assert private_uses("bad.py", tmp_path) == [
        "2: from objects import _hidden",
        "6: layout._name_problem",
        "7: project._commit",
    ]


def test_the_object_layer_reaches_the_engine_through_the_session(project):
    session = project.session
    assert session.commit(("project",), "touch", lambda snap: {}) is None  # nothing to commit
    action = project.create_action("rec-1")
    snap = session.snapshot()
    path = expipe_git.layout.attributes_path("action", "rec-1")
    assert session.existing(snap, path, ("action", "rec-1")) == action.attributes
    assert session.identity() == session.identity()
