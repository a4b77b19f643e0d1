#!/usr/bin/env python3
"""Benchmark merging two branches of a big project: expipe_git beside ``git merge``.

    .venv/bin/python bench/bench_merge.py                      # 10 000 actions, 1 000 changes a side
    .venv/bin/python bench/bench_merge.py --actions 2000 --changes 200 --reps 3

A project of --actions actions (attributes and one module each) is built and
committed with the git CLI (as bench_core.py does: the API would take minutes
to make it). Then two branches each change --changes records in one commit:

* ``files``: ours sets ``tags`` in the attributes of actions 0..K-1, theirs
  sets a key of the module of the same actions: different files, which git
  merges at tree level;
* ``keys``: ours sets ``tags``, theirs sets ``location``, in the same
  attributes files: expipe_git merges the keys; git merges the lines (or
  reports conflicts, which are counted and printed).

For each case, --reps times, alternating, on the same repository reset to
ours between runs (``git reset --hard``; expipe_git's read cache deleted, so
every run parses what it reads):

* expipe_git in process: ``project.merge("theirs")`` on a freshly opened project;
* expipe_git as a program: ``python -m expipe_git merge theirs``;
* git CLI: ``git merge -q --no-edit theirs``.

Medians and p90 are printed; ratios are ratios of medians. Everything runs
in a temporary folder with its own HOME, removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import expipe_git  # noqa: E402
from expipe_git import layout, values  # noqa: E402

BASE_TIME = dt.datetime(2020, 1, 1, 8, 0, 0)


def log(*args) -> None:
    print(*args, flush=True)


def git(path: pathlib.Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr}")
    return result


def name(i: int) -> str:
    return f"rec-{i:06d}"


def attributes(i: int, **changes) -> dict:
    record = {
        "registered": BASE_TIME + dt.timedelta(minutes=i),
        "type": "recording",
        "tags": ["a", "b"],
        "users": ["alice"],
        "datetime": BASE_TIME + dt.timedelta(minutes=i),
    }
    record.update(changes)
    return record


def module(i: int, **changes) -> dict:
    return {"camera": "top", "fps": 30, "gain": 1.5, **changes}


def write(root: pathlib.Path, path: str, record: dict) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(values.dumps(record, what=path))


def build(root: pathlib.Path, actions: int, changes: int) -> str:
    """Make the project, branch ``theirs`` and main (ours) for both cases; return ours per case."""
    expipe_git.create_project(root)
    for i in range(actions):
        write(root, layout.attributes_path("action", name(i)), attributes(i))
        write(root, layout.module_path(("action", name(i)), "tracking"), module(i))
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"{actions} actions")
    base = git(root, "rev-parse", "HEAD").stdout.strip()
    heads = {}
    for case in ("files", "keys"):
        git(root, "checkout", "-q", "-B", f"theirs-{case}", base)
        for i in range(changes):
            if case == "files":
                write(root, layout.module_path(("action", name(i)), "tracking"), module(i, fps=60))
            else:
                write(root, layout.attributes_path("action", name(i)), attributes(i, location="room 2"))
        git(root, "commit", "-q", "-am", f"theirs: {case}")
        git(root, "checkout", "-q", "-B", f"ours-{case}", base)
        for i in range(changes):
            write(root, layout.attributes_path("action", name(i)), attributes(i, tags=["a", "b", "ours"]))
        git(root, "commit", "-q", "-am", f"ours: {case}")
        heads[case] = git(root, "rev-parse", "HEAD").stdout.strip()
    git(root, "checkout", "-q", "-B", "main", heads["files"])
    return heads


def reset(root: pathlib.Path, ours: str) -> None:
    git(root, "merge", "--abort", check=False)
    git(root, "reset", "-q", "--hard", ours)
    cache = root / ".git" / "expipe-git" / "read-cache"
    if cache.is_dir():
        shutil.rmtree(cache)
    elif cache.exists():
        cache.unlink()
    os.sync()


def run_in_process(root: pathlib.Path, theirs: str) -> float:
    project = expipe_git.get_project(root)
    start = time.perf_counter()
    project.merge(theirs)
    elapsed = time.perf_counter() - start
    project.close()
    return elapsed


def run_program(root: pathlib.Path, theirs: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "expipe_git", "merge", theirs], cwd=root, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"expipe-git merge failed: {result.stderr}")
    return elapsed


def run_git(root: pathlib.Path, theirs: str) -> tuple[float, int]:
    start = time.perf_counter()
    result = git(root, "merge", "-q", "--no-edit", theirs, check=False)
    elapsed = time.perf_counter() - start
    conflicts = len(git(root, "diff", "--name-only", "--diff-filter=U").stdout.split())
    if result.returncode != 0 and not conflicts:
        raise RuntimeError(f"git merge failed: {result.stderr}")
    return elapsed, conflicts


def check(root: pathlib.Path, case: str, changes: int) -> None:
    project = expipe_git.get_project(root)
    parents = git(root, "log", "-1", "--format=%P").stdout.split()
    assert len(parents) == 2, parents
    for i in (0, changes - 1):
        action = project.actions[name(i)]
        assert list(action.tags) == ["a", "b", "ours"]
        if case == "files":
            assert action.modules["tracking"]["fps"] == 60
        else:
            assert action.location == "room 2"
    assert git(root, "status", "--porcelain").stdout == ""


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def show(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f} ms (p90 {p90(samples) * 1000:.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-merge-", dir=args.tmpdir))
    try:
        home = tmp / "home"
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.org\n")
        os.environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
        root = tmp / "project"
        revision = git(REPO, "rev-parse", "--short", "HEAD").stdout.strip()
        versions = f"git {git(REPO, 'version').stdout.split()[-1]}, Python {sys.version.split()[0]}"
        log(f"expipe_git {revision}, {versions}")
        log(f"building {args.actions} actions, {args.changes} changed records a side ...")
        start = time.perf_counter()
        ours = build(root, args.actions, args.changes)
        log(f"  built in {time.perf_counter() - start:.1f} s")
        for case in ("files", "keys"):
            theirs = f"theirs-{case}"
            results: dict[str, list[float]] = {"in process": [], "program": [], "git": []}
            git_conflicts = 0
            for rep in range(args.reps):
                for tool in (
                    ("in process", "program", "git") if rep % 2 == 0 else ("git", "program", "in process")
                ):
                    reset(root, ours[case])
                    if tool == "in process":
                        results[tool].append(run_in_process(root, theirs))
                        check(root, case, args.changes)
                    elif tool == "program":
                        results[tool].append(run_program(root, theirs))
                        check(root, case, args.changes)
                    else:
                        elapsed, git_conflicts = run_git(root, theirs)
                        results[tool].append(elapsed)
            reset(root, ours[case])
            git_median = statistics.median(results["git"])
            log(f"\ncase {case!r}: {args.changes} records changed a side, {args.reps} runs each")
            for tool, samples in results.items():
                ratio = statistics.median(samples) / git_median
                log(f"  {tool:<11} {show(samples):<24} {ratio:.2f}x git")
            log(f"  git merge left {git_conflicts} files in conflict")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
