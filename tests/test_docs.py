"""Every example in the README and docs/ runs, and prints what it shows."""

from __future__ import annotations

import doctest
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


# getting-started.md shows this warning on purpose (the document's missing template).
@pytest.mark.filterwarnings("ignore:template 'tracking' does not exist:UserWarning")
@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_examples_in_document(document, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(
        str(document),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
        report=True,
    )
    assert result.failed == 0


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = ".venv/bin/python -m pytest -q"
    assert test_command in readme and test_command in ci
    assert "pip install -q -e '.[test]'" in readme and "pip install -q -e '.[test]'" in ci


def test_imports_point_one_way_down_the_code_map():
    """The README's code map says imports point one way, down its list: check every module's imports."""
    import ast
    import re

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Code map", 1)[1].split("\n## ", 1)[0]
    rank = {}
    for row, line in enumerate(line for line in table.splitlines() if line.startswith("| `")):
        for name in re.findall(r"`((?:\w+/)?\w+)\.py`", line.split("|")[1]):  # subpackage modules: web/app.py
            rank[name] = row
    package = ROOT / "expipe_git"
    files = [*package.glob("*.py"), *package.glob("*/*.py")]
    mapped = {path.relative_to(package).with_suffix("").as_posix() for path in files}
    mapped = {name for name in mapped if name.rsplit("/", 1)[-1] not in ("__init__", "__main__")}
    mapped -= {"core", "settings"}
    assert mapped <= set(rank), f"modules missing from the code map: {sorted(mapped - set(rank))}"
    upward = []
    for name, row in rank.items():
        tree = ast.parse((package / f"{name}.py").read_text())
        for node in tree.body:  # module level only: imports inside functions and TYPE_CHECKING are not
            imported = _imported_modules(package, name, node)
            upward += [f"{name} imports {other}" for other in imported if rank.get(other, -1) > row]
    assert upward == []


def _imported_modules(package: pathlib.Path, name: str, node: object) -> list[str]:
    """The package's modules an import statement names, as code-map names (``git/repository``).

    Relative (``from .git import trees``, ``from .. import layout``) and absolute
    (``from expipe_git.git.trees import TreeDiff``, ``import expipe_git.layout``) alike.
    """
    import ast

    if isinstance(node, ast.Import):
        dotted = [alias.name.split(".") for alias in node.names]
        return ["/".join(parts[1:]) for parts in dotted if parts[0] == "expipe_git" and len(parts) > 1]
    if not isinstance(node, ast.ImportFrom):
        return []
    module = (node.module or "").split(".") if node.module else []
    if node.level == 0:
        if module[0] != "expipe_git":
            return []
        path = module[1:]
    else:
        folder = name.split("/")[:-1]
        path = folder[: len(folder) - (node.level - 1)] + module
    if package.joinpath(*path).is_dir():  # `from .git import trees`: the names are modules
        found = ["/".join([*path, alias.name]) for alias in node.names]
        return [m for m in found if (package / f"{m}.py").exists()] or ["/".join(path)]
    return ["/".join(path)]


def test_only_the_git_layer_imports_dulwich():
    """dulwich is imported by expipe_git/git/ and nowhere else in the package."""
    import ast

    package = ROOT / "expipe_git"
    outside = []
    for path in package.rglob("*.py"):
        if path.relative_to(package).parts[0] == "git":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            outside += [f"{path.relative_to(package)}: {n}" for n in names if n.split(".")[0] == "dulwich"]
    assert outside == []
