#!/usr/bin/env python3
"""Compare two revisions of expipe_git, operation by operation, in one run.

    .venv/bin/python bench/bench_ab.py --before 0c72ffa --after HEAD
    .venv/bin/python bench/bench_ab.py --before 0c72ffa --after HEAD --rounds 16 --actions 2000

On a shared machine a benchmark's absolute times swing by 2x between runs, so
two runs made minutes apart cannot show a 10 % difference. This script makes
the comparison inside one run: each revision's ``expipe_git/`` is exported
(``git archive``) into a folder of its own, each gets an identical copy of
the same projects, and every operation runs in a fresh process of one
revision, then of the other (ABBA order from round to round), so that both
see the same load. Each process times ``--ops`` calls of its operation (wall
and CPU time of the calling process) and the report gives, per operation:
the median of each revision, and the median of the per-round ratios
after / before (a round's two processes ran seconds apart). A ratio of 1.10
or more is a slowdown of 10 %.

The operations are those of bench_core.py (a tag set, a module key write, a
new message, a fresh process reading every action's tags), bench_history.py
(an action's history, the log of one module's path, a diff across 200
commits, a module's blame, each on a fresh handle) and bench_remote.py over
a folder remote (clone, a fast-forward pull of 10 commits, a push of 10).
Packing loose objects is off in these processes (bench_packing.py measures
it): a packing lands on one side's calls or the other's at random.
Everything runs under a temporary folder (own HOME and git identity),
removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent

OPERATIONS = ["tags", "module", "message", "read_tags", "history", "log_path", "diff", "blame", "remote"]

# The child process: PYTHONPATH names one revision's tree. It prints one JSON
# line: {operation: [[wall, cpu], ...]}.
WORKER = textwrap.dedent(
    """
    import json, random, sys, time
    t0 = time.perf_counter(); c0 = time.process_time()
    import expipe_git
    try:  # packing is bench_packing.py's business: here it would land on one side's calls at random
        import expipe_git.git.packing as packing
    except ImportError:
        import expipe_git.packing as packing
    packing.auto = "off"
    op, path, ops, seed, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    rng = random.Random(seed)
    out = {}

    def timed(name, call):
        w = time.perf_counter(); c = time.process_time()
        call()
        out.setdefault(name, []).append([time.perf_counter() - w, time.process_time() - c])

    if op == "read_tags":
        project = expipe_git.get_project(path)
        for action in project.actions.values():
            list(action.tags)
        out["read_tags"] = [[time.perf_counter() - t0, time.process_time() - c0]]
    elif op in ("tags", "module", "message"):
        project = expipe_git.get_project(path)
        names = sorted(project.actions)
        for i in range(ops + 2):
            action = project.actions[rng.choice(names)]
            if op == "tags":
                call = lambda: setattr(action, "tags", [f"t{rng.random()}", "x"])
            elif op == "module":
                module = action.modules["tracking"]
                call = lambda: module.__setitem__("fps", rng.random())
            else:
                call = lambda: action.create_message(f"note {rng.random()}", user="bench")
            if i < 2:
                call()  # warm-up
            else:
                timed(op, call)
    elif op in ("history", "log_path", "diff", "blame"):
        for i in range(ops):
            project = expipe_git.get_project(path)
            action = project.actions["rec-000007"]
            if op == "history":
                timed(op, lambda: action.history())
            elif op == "log_path":
                timed(op, lambda: project.log(path=action.modules["tracking"]))
            elif op == "diff":
                timed(op, lambda: project.diff("HEAD~200", "HEAD"))
            else:
                timed(op, lambda: action.modules["tracking"].blame())
    elif op == "remote":
        import shutil
        # path: a bare repository; extra: a folder holding "other", a clone of it.
        other = expipe_git.get_project(f"{extra}/other")
        names = sorted(other.actions)
        for i in range(ops):
            target = f"{extra}/clone-{i}"
            timed("clone", lambda: expipe_git.clone(path, target))
            other.pull()
            for j in range(10):
                other.actions[rng.choice(names)].tags = [f"s{rng.random()}"]
            other.push()
            mine = expipe_git.get_project(target)
            timed("pull", lambda: mine.pull())
            for j in range(10):
                mine.actions[rng.choice(names)].tags = [f"m{rng.random()}"]
            timed("push", lambda: mine.push())
            shutil.rmtree(target)
    print(json.dumps(out))
    """
)


def export(revision: str, into: pathlib.Path) -> str:
    """Export ``expipe_git/`` at ``revision`` into ``into``; return the commit id."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", revision], check=True, capture_output=True, text=True
    ).stdout.strip()
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", sha, "expipe_git"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return sha


def build_project(tree: pathlib.Path, path: pathlib.Path, actions: int, commits: int, env: dict) -> None:
    """A project of ``actions`` actions (one transaction) and ``commits`` more commits."""
    script = textwrap.dedent(
        f"""
        import random, expipe_git
        rng = random.Random(1)
        project = expipe_git.create_project({str(path)!r})
        with project.transaction("bench: {actions} actions"):
            for i in range({actions}):
                action = project.create_action(f"rec-{{i:06d}}")
                action.type = "recording"
                action.tags = ["a", "b"]
                action.users = ["bench"]
                action.create_module(name="tracking", contents={{"fps": 30, "camera": "c1", "led": 2}})
                action.create_message("first note", user="bench")
        names = [f"rec-{{i:06d}}" for i in range(10)]
        for i in range({commits}):
            action = project.actions[rng.choice(names)]
            if i % 2:
                action.tags = [f"t{{i}}"]
            else:
                action.modules["tracking"]["fps"] = i
        """
    )
    subprocess.run([sys.executable, "-c", script], env={**env, "PYTHONPATH": str(tree)}, cwd=tree, check=True)


def run_worker(
    tree: pathlib.Path, op: str, project: pathlib.Path, ops: int, seed: int, scratch: pathlib.Path, env: dict
) -> dict:
    if op == "remote":
        project = scratch / "remote.git"
    done = subprocess.run(
        [sys.executable, "-c", WORKER, op, str(project), str(ops), str(seed), str(scratch)],
        env={**env, "PYTHONPATH": str(tree)},
        cwd=tree,  # python -c puts the current folder first on sys.path
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode:
        raise SystemExit(f"{op} failed in {tree}:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="a revision of this repository")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=600, help="commits made after the actions")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--ops", type=int, default=10, help="calls timed in each process")
    parser.add_argument("--only", nargs="*", choices=OPERATIONS, default=OPERATIONS)
    parser.add_argument("--json", help="where to save the raw samples")
    args = parser.parse_args()

    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-ab-"))
    try:
        home = root / "home"
        home.mkdir()
        env = {
            **os.environ,
            "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.org",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.org",
        }
        trees = {}
        for side, revision in (("before", args.before), ("after", args.after)):
            trees[side] = (root / side, export(revision, root / side))
        build_project(trees["after"][0], root / "built", args.actions, args.commits, env)
        projects = {}
        for side in trees:
            projects[side] = root / f"project-{side}"
            shutil.copytree(root / "built", projects[side], symlinks=True)
            shutil.rmtree(
                projects[side] / ".git" / "expipe-git", ignore_errors=True
            )  # caches: each builds its own
            scratch = root / f"scratch-{side}"
            scratch.mkdir()
            subprocess.run(
                ["git", "clone", "-q", "--bare", str(projects[side]), str(scratch / "remote.git")], check=True
            )
            subprocess.run(
                ["git", "clone", "-q", str(scratch / "remote.git"), str(scratch / "other")],
                check=True,
                env=env,
            )
        print(
            f"before {trees['before'][1]}, after {trees['after'][1]}; {args.actions} actions, "
            f"{args.commits} more commits; {args.rounds} rounds of {args.ops} calls; "
            f"load {os.getloadavg()[0]:.1f}"
        )
        samples: dict[str, dict[str, list[list[list[float]]]]] = {"before": {}, "after": {}}
        for round_ in range(args.rounds):
            order = ["before", "after"] if round_ % 2 == 0 else ["after", "before"]
            for op in args.only:
                for side in order:
                    found = run_worker(
                        trees[side][0],
                        op,
                        projects[side],
                        args.ops,
                        1000 * round_ + 7,
                        root / f"scratch-{side}",
                        env,
                    )
                    for name, values in found.items():
                        samples[side].setdefault(name, []).append(values)
            print(f"round {round_ + 1}/{args.rounds} done, load {os.getloadavg()[0]:.1f}", flush=True)
        report(samples, trees["before"][1], trees["after"][1])
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(samples))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def report(samples: dict, before: str, after: str) -> None:
    print(
        f"\n| operation | before {before}: wall, cpu | after {after}: wall, cpu "
        "| after/before: wall, cpu (median of rounds) |"
    )
    print("|---|---|---|---|")
    for name in samples["before"]:
        rounds_before, rounds_after = samples["before"][name], samples["after"][name]
        medians = {}
        for side, rounds in (("before", rounds_before), ("after", rounds_after)):
            every = [s for values in rounds for s in values]
            medians[side] = (statistics.median(s[0] for s in every), statistics.median(s[1] for s in every))
        ratios = [
            (
                statistics.median(s[0] for s in a) / statistics.median(s[0] for s in b),
                statistics.median(s[1] for s in a) / max(statistics.median(s[1] for s in b), 1e-9),
            )
            for a, b in zip(rounds_after, rounds_before, strict=True)
        ]
        print(
            f"| {name} | {ms(medians['before'][0])}, {ms(medians['before'][1])} "
            f"| {ms(medians['after'][0])}, {ms(medians['after'][1])} "
            f"| {statistics.median(r[0] for r in ratios):.2f}x, "
            f"{statistics.median(r[1] for r in ratios):.2f}x |"
        )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


if __name__ == "__main__":
    main()
