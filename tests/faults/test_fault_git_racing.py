"""Fault: stock ``git add`` staging files while expipe_git commits in the same project.

Both rewrite git's index. git takes ``index.lock``, reads the index, writes the
new one into the lock file and renames it over the index. A writer that read
the index before taking the lock writes back the entries it read and drops
what git staged in between. Here a thread runs the real ``git add`` on one new
file after another (as a person's script would) while the API mutates the
project without pause; at the end every file git said it staged must still be
staged, and every mutation must be in HEAD.
"""

from __future__ import annotations

import subprocess
import time

from conftest import assert_clean, git
from faultkit import budget, report, rng

import expipe_git

# A person's script staging one new file after another with stock git.
_ADD_LOOP = """
i=0
while [ "$i" -lt "$1" ]; do
    f="notes/$2-$i.txt"
    echo "staged by git add, run $i" > "$f"
    if git add "$f" 2>>"$3"; then echo "staged $f"; else echo "refused $f"; fi
    i=$((i + 1))
done
"""


def _race(project, adds: int, name: str) -> dict:
    """Mutate through the API while ``adds`` runs of ``git add`` stage files; return the figures."""
    random = rng(name)
    root = project.path
    (root / "notes").mkdir(exist_ok=True)
    action = project.require_action("racing")
    module = action.require_module("counts", contents={"n": 0})
    tags: list[str] = []
    last_n = 0
    errors = root / ".git" / f"{name}-git-errors"
    adder = subprocess.Popen(
        ["sh", "-c", _ADD_LOOP, "sh", str(adds), name, str(errors)],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    mutations = 0
    while adder.poll() is None:
        # A seeded pause now and then shifts the two loops against each other.
        time.sleep(random.choice((0, 0, 0.001, 0.003)))
        if random.random() < 0.5:
            action.tags.append(f"t{mutations}")
            tags.append(f"t{mutations}")
        else:
            module["n"] = last_n = mutations
        mutations += 1
    outcomes = [line.split() for line in adder.communicate()[0].splitlines()]
    staged = [path for outcome, path in outcomes if outcome == "staged"]
    refused = len(outcomes) - len(staged)
    # git refuses at once when index.lock is taken; the person runs it again.
    if refused:
        assert "index.lock" in errors.read_text()
    in_index = set(git(root, "diff", "--cached", "--name-only", "HEAD").split())
    reopened = expipe_git.get_project(root).actions["racing"]
    return {
        "git_adds": adds,
        "staged": len(staged),
        "git_refused": refused,
        "lost": sum(path not in in_index for path in staged),
        "acknowledged": mutations,
        "lost_mutations": len(set(tags) - set(reopened.tags)) + (reopened.modules["counts"]["n"] != last_n),
    }


def _check(project, name: str, figures: dict) -> None:
    report(name, **figures)
    assert figures["lost"] == 0, figures
    assert figures["lost_mutations"] == 0, figures
    git(project.path, "add", "notes")  # what git refused to add, too
    git(project.path, "commit", "-q", "-m", "what git add staged")
    assert_clean(project.path)


def test_git_add_racing_mutations_loses_no_staged_entry(project):
    figures = _race(project, budget(100), "git-add-small-index")
    _check(project, "git-add-small-index", figures)


def test_git_add_racing_mutations_with_5000_entry_index(project):
    """An index git wrote is walked entry by entry before it is patched: a wide window."""
    bulk = project.path / "bulk"
    bulk.mkdir()
    for i in range(5000):
        (bulk / f"f{i:04d}.txt").write_text(f"{i}\n")
    git(project.path, "add", "bulk")
    figures = _race(project, budget(200), "git-add-5000-index")
    _check(project, "git-add-5000-index", figures)
