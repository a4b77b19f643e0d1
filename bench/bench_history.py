#!/usr/bin/env python3
"""Benchmark expipe_git's history operations against the git CLI on the same repository.

    .venv/bin/python bench/bench_history.py                 # 1 000 actions, 10 000 commits, packed
    .venv/bin/python bench/bench_history.py --loose         # loose objects, as the API writes them

The project is built with ``git fast-import`` (10 000 commits through the API
would take two minutes): one commit creates the N actions (attributes and a
``tracking`` module with a Quantity ``depth`` and a nested ``probe``), then
each further commit changes one key of one random action's module (80 %) or
its tags (20 %), with the file contents written by ``expipe_git.values.dumps``
at ``expipe_git.layout`` paths, one second apart. ``git status`` is checked
clean afterwards.

Measured, each beside the git command that answers the same question, run as a
user would (a subprocess):

- ``action.history()`` / ``git log --format=%H -- <action folder>``;
- ``project.log(path=module)`` / ``git log --format=%H -- <module file>``;
- ``project.diff("HEAD~1000", "HEAD")`` / ``git diff HEAD~1000 HEAD``;
- ``module.blame()`` / ``git blame <module file>``.

expipe_git is timed in three states: *cold* (no ``history-cache`` file: the
first history call on a repository diffs every commit once), *fresh handle*
(a new ``get_project`` each repetition, the cache file on disk: what a new
process sees) and *warm* (the same handle again). Every result is checked
against git's (the same commit ids). Medians and p90 of --reps repetitions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import pathlib
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import quantities as pq  # noqa: E402

import expipe_git  # noqa: E402
from expipe_git import layout, values  # noqa: E402
from expipe_git.git import historyindex  # noqa: E402

BASE = dt.datetime(2026, 1, 1, 8, 0, 0, tzinfo=dt.timezone.utc)


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def git(repo: pathlib.Path, env: dict, *args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=repo, env=env, input=stdin, capture_output=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.decode()[-500:]}")
    return result.stdout.decode()


def isolated_env(tmp: pathlib.Path) -> dict:
    home = tmp / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Bench Mark\n\temail = bench@example.org\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    return env


def build(root: pathlib.Path, env: dict, actions: int, commits: int, seed: int) -> float:
    """Create the project and its history with git fast-import; return the seconds it took."""
    start = time.perf_counter()
    os.environ.update({k: env[k] for k in ("HOME", "GIT_CONFIG_NOSYSTEM")})
    expipe_git.create_project(root).close()
    rng = random.Random(seed)
    names = [f"rec-{i:04d}" for i in range(actions)]
    attributes = {n: {"registered": BASE.replace(tzinfo=None), "tags": ["baseline"]} for n in names}
    modules = {n: {"depth": 2.0 * pq.um, "probe": {"x": 1, "y": 2}, "gain": 1.5} for n in names}
    out: list[bytes] = []
    mark = 0

    def blob(data: bytes) -> bytes:
        return b"data %d\n%s\n" % (len(data), data)

    def commit(message: str, files: dict[str, bytes], when: int) -> None:
        nonlocal mark
        mark += 1
        out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.append(b"author Bench Mark <bench@example.org> %d +0000\n" % when)
        out.append(b"committer Bench Mark <bench@example.org> %d +0000\n" % when)
        out.append(blob(message.encode()))
        if mark == 1:
            out.append(b"from refs/heads/main^0\n")
        for path, data in files.items():
            out.append(b"M 100644 inline %s\n" % path.encode() + blob(data))

    when = int(BASE.timestamp())
    first = {}
    for n in names:
        first[layout.attributes_path("action", n)] = values.dumps(attributes[n], what=n).encode()
        first[layout.module_path(("action", n), "tracking")] = values.dumps(modules[n], what=n).encode()
    commit("import actions", first, when)
    for i in range(commits - 2):
        when += 1
        name = rng.choice(names)
        if rng.random() < 0.8:
            key = rng.choice(["depth", "probe.x", "gain"])
            if key == "depth":
                modules[name]["depth"] = round(rng.uniform(1, 9), 2) * pq.um
            elif key == "gain":
                modules[name]["gain"] = round(rng.uniform(0, 3), 3)
            else:
                modules[name]["probe"]["x"] = i
            obj = ("action", name, "module", "tracking")
            path = layout.module_path(("action", name), "tracking")
            data = values.dumps(modules[name], what=name).encode()
        else:
            attributes[name]["tags"] = ["baseline", f"t{i}"]
            obj, key = ("action", name), "tags"
            path = layout.attributes_path("action", name)
            data = values.dumps(attributes[name], what=name).encode()
        commit(layout.commit_message(obj, f"set {key}"), {path: data}, when)
    out.append(b"done\n")
    git(root, env, "fast-import", "--quiet", "--done", stdin=b"".join(out))
    git(root, env, "reset", "-q", "--hard")
    if git(root, env, "status", "--porcelain"):
        raise RuntimeError("git status is not clean after the build")
    return time.perf_counter() - start


def unpack(root: pathlib.Path, env: dict) -> None:
    """Turn the fast-import pack into loose objects, as expipe_git writes them."""
    pack_dir = root / ".git" / "objects" / "pack"
    held = root.parent / "packs"
    held.mkdir()
    for path in pack_dir.glob("*.pack"):
        idx = path.with_suffix(".idx")
        shutil.move(path, held / path.name)
        shutil.move(idx, held / idx.name)
        git(root, env, "unpack-objects", "-q", stdin=(held / path.name).read_bytes())


def timed(call, *call_args) -> tuple[float, object]:
    start = time.perf_counter()
    result = call(*call_args)
    return time.perf_counter() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--cold-reps", type=int, default=3)
    parser.add_argument("--span", type=int, default=1000, help="commits between the two sides of the diff")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--loose", action="store_true", help="unpack the objects (as the API writes them)")
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--json", default=str(HERE / "out" / "history.json"))
    args = parser.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-history-", dir=args.tmpdir))
    try:
        env = isolated_env(tmp)
        root = tmp / "project"
        print(f"building {args.actions} actions, {args.commits} commits ...", flush=True)
        seconds = build(root, env, args.actions, args.commits, args.seed)
        print(f"  built in {seconds:.1f} s", flush=True)
        if args.loose:
            unpack(root, env)
            print("  objects unpacked (loose)", flush=True)
        rows = run_all(root, env, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(rows, args)
    pathlib.Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def run_all(root: pathlib.Path, env: dict, args) -> list[dict]:
    rng = random.Random(args.seed + 1)
    name = f"rec-{rng.randrange(args.actions):04d}"
    folder = layout.object_dir("action", name)
    module_file = layout.module_path(("action", name), "tracking")
    cache = root / ".git" / "expipe-git" / "history-cache"
    rows = []

    def git_time(*git_args: str) -> tuple[float, str]:
        return timed(lambda: git(root, env, *git_args))

    def ids(commits) -> list[str]:
        return [c.id for c in commits]

    def fresh():
        return expipe_git.get_project(root)

    cases = [
        (
            "action.history()",
            lambda p: p.actions[name].history(),
            ("log", "--format=%H", "--", folder),
            lambda ours, theirs: ids(ours) == theirs.split(),
        ),
        (
            "project.log(path=module)",
            lambda p: p.log(path=p.actions[name].modules["tracking"]),
            ("log", "--format=%H", "--", module_file),
            lambda ours, theirs: ids(ours) == theirs.split(),
        ),
        (
            f"project.diff('HEAD~{args.span}', 'HEAD')",
            lambda p: p.diff(f"HEAD~{args.span}", "HEAD"),
            ("diff", f"HEAD~{args.span}", "HEAD"),
            lambda ours, theirs: len({c.path for c in ours}) == theirs.count("\ndiff --git ") + 1,
        ),
        (
            "module.blame()",
            lambda p: p.actions[name].modules["tracking"].blame(),
            ("blame", module_file),
            lambda ours, theirs: bool(ours),
        ),
    ]
    for label, ours, git_args, agree in cases:
        cold, handle, warm, baseline = [], [], [], []
        for _ in range(args.cold_reps):
            cache.unlink(missing_ok=True)
            project = fresh()
            seconds, result = timed(ours, project)
            historyindex.of(project.session.repository).save(force=True)
            project.close()
            cold.append(seconds)
        for _ in range(args.reps):
            project = fresh()
            seconds, result = timed(ours, project)
            handle.append(seconds)
            warm.append(timed(ours, project)[0])
            project.close()
            seconds, out = git_time(*git_args)
            baseline.append(seconds)
            if not agree(result, out):
                raise RuntimeError(f"{label}: expipe_git and git disagree")
        row = {
            "operation": label,
            "git": git_args,
            "cold": cold,
            "fresh_handle": handle,
            "warm": warm,
            "git_cli": baseline,
            "result_size": len(result),
        }
        print(
            f"  {label}: fresh handle {statistics.median(handle) * 1000:.1f} ms, "
            f"git {statistics.median(baseline) * 1000:.1f} ms",
            flush=True,
        )
        rows.append(row)
    # The whole command line, process start and imports included.
    cli, baseline = [], []
    for _ in range(max(3, args.reps // 3)):
        cli.append(
            timed(
                lambda: subprocess.run(
                    [sys.executable, "-m", "expipe_git", "-C", str(root), "log", f"action/{name}", "--json"],
                    env={**env, "PYTHONPATH": str(REPO)},
                    capture_output=True,
                    check=True,
                    timeout=600,
                )
            )[0]
        )
        baseline.append(git_time("log", "-p", "--", folder)[0])
    rows.append(
        {
            "operation": f"expipe-git log action/{name} --json (whole process)",
            "git": ("log", "-p", "--", folder),
            "cold": [],
            "fresh_handle": cli,
            "warm": [],
            "git_cli": baseline,
            "result_size": 0,
        }
    )
    return rows


def ms(samples: list[float]) -> str:
    if not samples:
        return "—"
    return f"{statistics.median(samples) * 1000:.1f} ms ({p90(samples) * 1000:.1f})"


def print_table(rows: list[dict], args) -> None:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    print()
    print(
        f"expipe_git {rev.stdout.strip()}, {args.actions} actions, {args.commits} commits, "
        f"{'loose' if args.loose else 'packed'} objects; Python {platform.python_version()}, "
        f"{subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip()}"
    )
    print()
    print(
        "| operation | git command | cold (no cache file) | fresh handle | warm | git CLI | "
        "git / fresh handle |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        ratio = statistics.median(row["git_cli"]) / statistics.median(row["fresh_handle"])
        print(
            f"| {row['operation']} | `git {' '.join(row['git'])}` | {ms(row['cold'])} | "
            f"{ms(row['fresh_handle'])} | {ms(row['warm'])} | {ms(row['git_cli'])} | {ratio:.2f}x |"
        )


if __name__ == "__main__":
    sys.exit(main())
