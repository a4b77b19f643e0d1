#!/usr/bin/env python3
"""The first history call on a project whose history was written through the API.

    .venv/bin/python bench/bench_history_api.py     # 1 000 actions, 10 000 commits (about 3 minutes)

bench_history.py builds its 10 000 commits with git fast-import, so its first
history call has to diff every commit once (*cold*). A project written
through expipe_git does not: each mutation records the files it changed in
the history index as it commits. This script writes the history through the
API (one transaction for the actions, then one commit per change, each
changing one module key or the tags of a random action), then, in fresh
processes, times the first ``action.history()`` and
``project.log(path=module)``, beside ``git log --format=%H -- <path>``, and
checks they list the same commits. The timer starts after the imports,
like bench_history.py's *fresh handle*. It also reports what the recording
costs a mutation: the median time of ``Repository._index_history`` beside the
median mutation.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import quantities as pq  # noqa: E402

import expipe_git  # noqa: E402
from expipe_git import layout  # noqa: E402
from expipe_git.git import writer  # noqa: E402

FIRST_CALL = """
import sys, time
import expipe_git
start = time.perf_counter()  # after the imports, as bench_history.py's "fresh handle"
project = expipe_git.get_project(sys.argv[1])
if sys.argv[2] == "history":
    found = [c.id for c in project.actions[sys.argv[3]].history()]
else:
    found = [c.id for c in project.log(path=sys.argv[3])]
print(time.perf_counter() - start)
print(" ".join(found))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, HOME=tmp, GIT_CONFIG_NOSYSTEM="1")
        os.environ.update(HOME=tmp, GIT_CONFIG_NOSYSTEM="1")
        subprocess.run(["git", "config", "--global", "user.name", "Bench"], check=True, env=env)
        subprocess.run(["git", "config", "--global", "user.email", "b@example.org"], check=True, env=env)
        root = pathlib.Path(tmp) / "lab"
        project = expipe_git.require_project(root)
        names = [f"rec-{i:04d}" for i in range(args.actions)]
        with project.transaction("actions"):
            for name in names:
                project.require_action(name).create_module("tracking", contents={"depth": 1 * pq.um})
        record_times: list[float] = []
        original = writer.index_history

        def timed_index(self, *a):
            start = time.perf_counter()
            original(self, *a)
            record_times.append(time.perf_counter() - start)

        writer.index_history = timed_index
        rng = random.Random(1)
        mutation_times = []
        start_all = time.perf_counter()
        for i in range(args.commits - 2):
            action = project.actions[rng.choice(names)]
            start = time.perf_counter()
            if rng.random() < 0.8:
                action.modules["tracking"]["depth"] = i * pq.um
            else:
                action.tags = [f"t{i}"]
            mutation_times.append(time.perf_counter() - start)
        writer.index_history = original
        project.close()
        print(f"wrote {args.commits} commits through the API in {time.perf_counter() - start_all:.0f} s")
        target = names[0]
        module = layout.module_path(("action", target), "tracking")
        folder = layout.object_dir("action", target)
        for label, kind, arg, git_path in (
            ("action.history()", "history", target, folder),
            ("project.log(path=module)", "log", module, module),
        ):
            ours, theirs = [], []
            for _ in range(args.reps):
                out = subprocess.run(
                    [sys.executable, "-c", FIRST_CALL, str(root), kind, arg],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                ).stdout.splitlines()
                ours.append(float(out[0]))
                start = time.perf_counter()
                listed = subprocess.run(
                    ["git", "log", "--format=%H", "--", git_path],
                    cwd=root,
                    capture_output=True,
                    text=True,
                    check=True,
                    env=env,
                ).stdout.split()
                theirs.append(time.perf_counter() - start)
                assert out[1].split() == listed if len(out) > 1 else listed == [], (label, len(listed))
            a, b = statistics.median(ours), statistics.median(theirs)
            print(
                f"{label:28s} first call in a fresh process: {a * 1000:6.0f} ms   git log: {b * 1000:6.0f} ms"
                f"   ({len(listed)} commits)"
            )
        print(
            f"a mutation: median {statistics.median(mutation_times) * 1000:.1f} ms, of which recording "
            f"its files in the history index {statistics.median(record_times) * 1e6:.0f} us"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
