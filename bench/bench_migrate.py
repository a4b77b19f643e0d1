#!/usr/bin/env python3
"""Benchmark ``expipe-git import`` on a generated expipe 0.6 project.

    .venv/bin/python bench/bench_migrate.py                 # 1 000 actions, 3 repetitions
    .venv/bin/python bench/bench_migrate.py --actions 200 --reps 1

The source holds N actions (attributes with tags, users, an entity and a data
entry; one module with scalar, array and uncertain quantities and int keys;
one message each), 10 entities, 3 templates and a project module, written as
expipe 0.6 writes them (ruamel.yaml, safe dumper). Measured, median of --reps
runs, each into a new folder, after os.sync():

- expipe_git: ``import_expipe_project(..., verify=False)`` one commit per
  object, the same with ``single_commit=True``, and ``verify_import`` alone;
- the git CLI doing the same commits by hand: for each commit of the
  per-object import, write its files (contents computed beforehand, taken from
  that import) then ``git add`` and ``git commit``; and once for all files;
- parsing every source file with ruamel.yaml alone (what any importer pays).

Everything runs in a temporary folder with its own HOME and git identity,
removed at the end. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent


def log(*args: object) -> None:
    print(*args, flush=True)


def write_source(root: pathlib.Path, n: int) -> int:
    """Write an expipe 0.6 project of ``n`` actions; return the number of files."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    files = 0

    def dump(path: pathlib.Path, data: object) -> None:
        nonlocal files
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            yaml.dump(data, f)
        files += 1

    dump(root / "expipe.yaml", {"database_version": 2, "type": "project", "project": root.name})
    base = dt.datetime(2019, 1, 1, 8, 0, 0)
    for t in range(3):
        dump(
            root / "templates" / f"template_{t}.yaml",
            {
                "identifier": f"module_{t}",
                "registered": base.strftime("%Y-%m-%dT%H:%M:%S"),
                "gain": {"value": 1.5, "unit": "V", "definition": "amplifier gain"},
            },
        )
    dump(root / "modules" / "settings.yaml", {"lab": "IBV", "temperature": {"value": 21.5, "unit": "degC"}})
    for e in range(10):
        when = (base + dt.timedelta(days=e)).strftime("%Y-%m-%dT%H:%M:%S")
        dump(root / "entities" / f"rat{e}" / "attributes.yaml", {"registered": when, "tags": ["male"]})
    for i in range(n):
        name = f"rec-{i:06d}"
        when = (base + dt.timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S")
        folder = root / "actions" / name
        dump(
            folder / "attributes.yaml",
            {
                "registered": when,
                "datetime": when,
                "type": "Recording",
                "tags": [f"tag{i % 20}", "baseline"],
                "users": ["alice"],
                "entities": [f"rat{i % 10}"],
                "location": "room 2",
                "data": {"main": f"actions\\{name}\\data\\main.exdir"},
            },
        )
        dump(
            folder / "modules" / "tracking.yaml",
            {
                "fps": {"value": 30.0, "unit": "Hz"},
                "position": {"value": [1.0, 2.0, 3.0], "unit": "mm"},
                "depth": {"value": 2.9, "unit": "mm", "uncertainty": 0.1},
                "channels": {0: "CA1", 1: "CA1", 2: "CA3", 3: "CA3"},
                "camera": "top",
            },
        )
        dump(
            folder / "messages" / f"{(base + dt.timedelta(minutes=i)):%Y%m%dT%H%M%S}.yaml",
            {"text": f"note {i}", "user": "alice", "datetime": when},
        )
    return files


def git(root: pathlib.Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {root}: {result.stderr}")
    return result.stdout


def commits_of(root: pathlib.Path) -> list[tuple[str, list[str]]]:
    """(message, files) of each commit of a repository, oldest first."""
    found = []
    for sha in git(root, "rev-list", "--reverse", "HEAD").split():
        message = git(root, "log", "-1", "--format=%B", sha)
        paths = git(root, "diff-tree", "--root", "--no-commit-id", "-r", "--name-only", sha).split("\n")
        found.append((message, [p for p in paths if p]))
    return found


def git_cli_commits(
    template: pathlib.Path, target: pathlib.Path, commits: list[tuple[str, list[str]]]
) -> float:
    """Make ``commits`` with the git CLI in a new repository; return the seconds taken."""
    contents = {path: (template / path).read_bytes() for _, paths in commits for path in paths}
    target.mkdir()
    git(target, "init", "-q", "-b", "main")
    os.sync()
    start = time.perf_counter()
    for message, paths in commits:
        for path in paths:
            full = target / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(contents[path])
        git(target, "add", "--", *paths)
        git(target, "commit", "-q", "--no-verify", "-m", message)
    elapsed = time.perf_counter() - start
    if git(target, "status", "--porcelain"):
        raise RuntimeError(f"git status is not clean in {target}")
    return elapsed


def fmt(samples: list[float]) -> str:
    return f"{statistics.median(samples):.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=1000, help="actions in the source (default 1000)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each measurement (default 3)")
    parser.add_argument("--tmpdir", help="where to build the projects (default: the system temp folder)")
    args = parser.parse_args(argv)

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="expipe-git-bench-migrate-", dir=args.tmpdir))
    try:
        home = tmp / "home"
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = Bench Mark\n\temail = bench@example.org\n")
        for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
            os.environ.pop(var, None)
        os.environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
        sys.path.insert(0, str(REPO))
        import expipe_git
        from expipe_git import expipe06

        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        log(f"expipe_git {rev} from {pathlib.Path(expipe_git.__file__).parent}")
        log(f"python {platform.python_version()}, {git(tmp, '--version').strip()}, {os.cpu_count()} CPUs")

        source = tmp / "old-project"
        files = write_source(source, args.actions)
        log(f"source: {args.actions} actions, 10 entities, 3 templates, 1 project module; {files} YAML files")

        samples: dict[str, list[float]] = {
            "parse": [],
            "per_object": [],
            "single": [],
            "verify": [],
            "git_per_object": [],
            "git_single": [],
        }
        commits = []
        for rep in range(args.reps):
            reader = expipe06.Source(source)
            os.sync()
            start = time.perf_counter()
            for path in sorted(source.rglob("*.yaml")):
                reader.load(path)
            samples["parse"].append(time.perf_counter() - start)

            os.sync()
            start = time.perf_counter()
            project = expipe_git.import_expipe_project(source, tmp / f"per-object-{rep}", verify=False)
            samples["per_object"].append(time.perf_counter() - start)
            commits = commits_of(project.path)

            os.sync()
            start = time.perf_counter()
            report = expipe_git.verify_import(source, project)
            samples["verify"].append(time.perf_counter() - start)
            if not report.ok:
                raise RuntimeError(f"verification found differences:\n{report}")

            os.sync()
            start = time.perf_counter()
            expipe_git.import_expipe_project(source, tmp / f"single-{rep}", verify=False, single_commit=True)
            samples["single"].append(time.perf_counter() - start)

            samples["git_per_object"].append(
                git_cli_commits(project.path, tmp / f"git-per-object-{rep}", commits)
            )
            everything = [("import", [path for _, paths in commits for path in paths])]
            samples["git_single"].append(git_cli_commits(project.path, tmp / f"git-single-{rep}", everything))
            log(
                f"repetition {rep + 1}/{args.reps}: "
                + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in samples.items())
            )

        ours_per = statistics.median(samples["per_object"])
        ours_single = statistics.median(samples["single"])
        git_per = statistics.median(samples["git_per_object"])
        git_single = statistics.median(samples["git_single"])
        log("")
        log(f"Import of {args.actions} actions ({len(commits)} commits per object), median of {args.reps}:")
        log("| what | expipe_git | git CLI, same commits | git CLI / expipe_git |")
        log("|---|---|---|---|")
        log(
            f"| one commit per object | {fmt(samples['per_object'])} | {fmt(samples['git_per_object'])} "
            f"| {git_per / ours_per:.1f}x |"
        )
        log(
            f"| one commit (--single-commit) | {fmt(samples['single'])} | {fmt(samples['git_single'])} "
            f"| {git_single / ours_single:.1f}x |"
        )
        log(f"| verification (verify_import) | {fmt(samples['verify'])} | — | — |")
        log(f"| parsing the YAML alone (ruamel.yaml) | {fmt(samples['parse'])} | — | — |")
        log(
            f"per object: {ours_per / len(commits) * 1e3:.1f} ms (expipe_git), "
            f"{git_per / len(commits) * 1e3:.1f} ms (git CLI)"
        )
        given = " ".join(sys.argv[1:] if argv is None else argv)
        log(f"command: .venv/bin/python bench/bench_migrate.py {given}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
