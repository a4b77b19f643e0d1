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
