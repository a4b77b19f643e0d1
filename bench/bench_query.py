#!/usr/bin/env python3
"""Benchmark ``project.actions.where(...)`` and ``.to_dataframe()`` on a project of 100,000 actions.

    .venv/bin/python bench/bench_query.py                    # 100 000 actions, 10 000 with a module
    .venv/bin/python bench/bench_query.py --actions 20000    # smaller, quicker

The project is built with ``git fast-import`` in one commit on top of the
project's creation commit (100,000 commits through the API would take
hours): each action has ``registered``, ``type``, ``location``, two
``tags`` of 50, a ``user``, an ``entity`` and a ``datetime`` spread over two
years; one in ten has an ``electrophysiology`` module (a quantity, a nested
probe). File contents are written from templates and a sample is checked
equal to ``expipe_git.values.dumps``; ``git status`` is checked clean.

Measured, each in a fresh process (``python -c``), timed inside it from
before ``get_project`` to the answer in hand, so including opening the
project (the interpreter's start and the imports are reported apart):

- building the index: the first ``where`` on the project (once);
- a selective query, one tag and a one-month date range (about 0.4 %),
  ``--reps`` times, and the same answer from the Python loop over
  ``project.actions`` (``--loop-reps`` times; slow), checked equal;
- ``where(type="recording").to_dataframe(modules=["electrophysiology"])``
  (the 10 % with a module);
- a mutation (``action.tags.append``), ``2 × --mutations`` times in one
  process, alternately with the index's files moved away and in place
  (a mutation does no work for the index: the next query checks the
  change); then a query right after each of ``--mutations`` mutations;
- the index's size on disk.

Medians and p90. Generated data lives in a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import pathlib
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
from expipe_git import layout, query, values  # noqa: E402

START = dt.datetime(2025, 1, 1, 8, 0, 0)
TAGS = [f"tag-{i:02d}" for i in range(50)]
TYPES = ["recording"] * 1 + ["surgery", "analysis", "perfusion"] * 3
SELECTIVE = {"tags": "tag-07", "since": "2025-06-01", "until": "2025-06-30"}


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def git(repo: pathlib.Path, env: dict, *args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=repo, env=env, input=stdin, capture_output=True, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.decode()[-500:]}")
    return result.stdout.decode()


def isolated_env(tmp: pathlib.Path) -> dict:
    home = tmp / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Bench Mark\n\temail = bench@example.org\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", PYTHONPATH=str(REPO))
    return env


def attributes_text(rng: random.Random, i: int) -> tuple[bytes, bool]:
    when = START + dt.timedelta(seconds=rng.randrange(2 * 365 * 86400))
    tags = rng.sample(TAGS, 2)
    with_module = i % 10 == 0
    kind = "recording" if with_module else rng.choice(TYPES[1:])
    text = (
        f"registered = {START.isoformat()}\n"
        f'type = "{kind}"\n'
        f'location = "room {rng.randrange(20)}"\n'
        f'tags = ["{tags[0]}", "{tags[1]}"]\n'
        f'users = ["user {rng.randrange(10)}"]\n'
        f'entities = ["rat {rng.randrange(500)}"]\n'
        f"datetime = {when.isoformat()}\n"
    )
    return text.encode(), with_module


def module_text(rng: random.Random) -> bytes:
    depth = rng.randrange(100, 3000)
    return (
        f'depth = {{ "$type" = "quantity", value = {depth}.0, unit = "um" }}\n'
        f'sampling_rate = {{ "$type" = "quantity", value = 30000.0, unit = "Hz" }}\n'
        f'probe = {{ name = "tetrode {rng.randrange(8)}", channels = 4 }}\n'
        f"gain = {rng.choice([1.0, 2.0, 4.0])}\n"
    ).encode()


def build(root: pathlib.Path, env: dict, actions: int, seed: int) -> float:
    """Create the project with one fast-import commit of every action; return the seconds it took."""
    start = time.perf_counter()
    os.environ.update({k: env[k] for k in ("HOME", "GIT_CONFIG_NOSYSTEM")})
    expipe_git.create_project(root).close()
    rng = random.Random(seed)
    out = [
        b"commit refs/heads/main\n",
        b"author Bench Mark <bench@example.org> 1767254400 +0000\n",
        b"committer Bench Mark <bench@example.org> 1767254400 +0000\n",
        b"data 15\nimport actions\n",
        b"from refs/heads/main^0\n",
    ]
    sample = None
    for i in range(actions):
        name = f"rec-{i:06d}"
        data, with_module = attributes_text(rng, i)
        out.append(
            b"M 100644 inline %s\ndata %d\n%s\n"
            % (layout.attributes_path("action", name).encode(), len(data), data)
        )
        if with_module:
            module = module_text(rng)
            path = layout.module_path(("action", name), "electrophysiology")
            out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(module), module))
            sample = sample or (data, module)
    out.append(b"done\n")
    git(root, env, "fast-import", "--quiet", "--done", stdin=b"".join(out))
    git(root, env, "reset", "-q", "--hard")
    if git(root, env, "status", "--porcelain"):
        raise RuntimeError("git status is not clean after the build")
    # The templates write what the library would.
    attributes, module = (values.loads(text, what="sample") for text in sample)
    assert values.dumps(attributes, what="sample").encode() == sample[0], "attributes template drifted"
    assert isinstance(module["depth"], pq.Quantity), "module template drifted"
    return time.perf_counter() - start


def in_fresh_process(env: dict, root: pathlib.Path, body: str) -> dict:
    """Run ``body`` in a new interpreter; it sets ``result`` (a dict); return it with the timings."""
    code = (
        "import time, json\n"
        "t0 = time.perf_counter()\n"
        "import expipe_git\n"
        "t1 = time.perf_counter()\n"
        f"project = expipe_git.get_project({str(root)!r})\n"
        f"{body}\n"
        "t2 = time.perf_counter()\n"
        "result.update(imports=t1 - t0, seconds=t2 - t1)\n"
        "print(json.dumps(result))\n"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    import json

    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    return result


WHERE = f"names = list(project.actions.where(**{SELECTIVE!r}))\nresult = {{'names': names}}"
LOOP = """
import datetime as dt
since, until = dt.datetime(2025, 6, 1), dt.datetime(2025, 7, 1)
names = []
for name, action in project.actions.items():
    if "tag-07" in action.tags and action.datetime is not None and since <= action.datetime < until:
        names.append(name)
result = {'names': names}
"""
FRAME = """
started = time.perf_counter()
import pandas
pandas_import = time.perf_counter() - started
frame = project.actions.where(type="recording").to_dataframe(modules=["electrophysiology"])
result = {'rows': len(frame), 'columns': list(frame.columns), 'pandas_import': pandas_import}
"""


def index_bytes(root: pathlib.Path) -> int:
    state = root / ".git" / "expipe-git"
    return sum(p.stat().st_size for p in state.glob(query.INDEX_FILE + "*"))


def summary(samples: list[float]) -> str:
    median, high = statistics.median(samples) * 1000, p90(samples) * 1000
    return f"median {median:8.1f} ms   p90 {high:8.1f} ms   (n={len(samples)})"


def index_files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted((root / ".git" / "expipe-git").glob(query.INDEX_FILE + "*"))


def mutations(root: pathlib.Path, count: int, seed: int, actions: int) -> tuple[list, list]:
    """Time ``tags.append`` with the index on disk and without it, alternately (so load hits both alike)."""
    project = expipe_git.get_project(root)
    rng = random.Random(seed)
    handles = [project.actions[f"rec-{rng.randrange(actions):06d}"] for _ in range(2 * count + 4)]
    away = root.parent / "index-away"
    away.mkdir(exist_ok=True)
    without, with_index = [], []
    for i, action in enumerate(handles):
        keep = i % 2 == 1
        for path in index_files(root) if not keep else sorted(away.iterdir()):
            path.rename((away if not keep else root / ".git" / "expipe-git") / path.name)
        start = time.perf_counter()
        action.tags.append(f"bench-{seed}-{i}")
        elapsed = time.perf_counter() - start
        if i >= 4:  # the first are warm-ups
            (with_index if keep else without).append(elapsed)
    for path in sorted(away.iterdir()):
        path.rename(root / ".git" / "expipe-git" / path.name)
    project.close()
    return without, with_index


def queries_after_mutations(root: pathlib.Path, count: int, actions: int) -> list[float]:
    project = expipe_git.get_project(root)
    rng = random.Random(3)
    times = []
    for i in range(count):
        action = project.actions[f"rec-{rng.randrange(actions):06d}"]
        action.tags.append(f"after-{i}")
        start = time.perf_counter()
        found = list(project.actions.where(tags=f"after-{i}"))
        times.append(time.perf_counter() - start)
        assert found == [action.name], found
    project.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--loop-reps", type=int, default=2)
    parser.add_argument("--mutations", type=int, default=30)
    parser.add_argument("--frame-reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tmpdir", default=None)
    args = parser.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-query-", dir=args.tmpdir))
    try:
        env = isolated_env(tmp)
        root = tmp / "project"
        print(f"building {args.actions:,} actions ...", flush=True)
        print(f"  built in {build(root, env, args.actions, args.seed):.1f} s", flush=True)

        first = in_fresh_process(env, root, WHERE)
        print(
            f"first query, building the index: {first['seconds']:.2f} s; {len(first['names'])} found",
            flush=True,
        )
        print(f"index size: {index_bytes(root) / 1e6:.1f} MB", flush=True)

        queries = [in_fresh_process(env, root, WHERE) for _ in range(args.reps)]
        assert all(q["names"] == first["names"] for q in queries)
        print(f"selective query {SELECTIVE}, fresh process, opening included:", flush=True)
        print("  " + summary([q["seconds"] for q in queries]), flush=True)
        print(f"  (interpreter + imports: {summary([q['imports'] for q in queries])})", flush=True)
        print(f"  (whole process: {summary([q['process'] for q in queries])})", flush=True)

        loops = [in_fresh_process(env, root, LOOP) for _ in range(args.loop_reps)]
        assert all(loop["names"] == first["names"] for loop in loops), "the loop disagrees with where()"
        loop_median = statistics.median(q["seconds"] for q in loops)
        query_median = statistics.median(q["seconds"] for q in queries)
        print(f"Python loop, fresh process: {summary([q['seconds'] for q in loops])}", flush=True)
        print(f"  where() is {loop_median / query_median:.0f}x faster", flush=True)

        frames = [in_fresh_process(env, root, FRAME) for _ in range(args.frame_reps)]
        print(
            f"to_dataframe of {frames[0]['rows']:,} actions with one module "
            f"({len(frames[0]['columns'])} columns), fresh process:",
            flush=True,
        )
        print("  " + summary([f["seconds"] for f in frames]), flush=True)
        print(
            "  without importing pandas: " + summary([f["seconds"] - f["pandas_import"] for f in frames]),
            flush=True,
        )

        without, with_index = mutations(root, args.mutations, 2, args.actions)
        print("a mutation (tags.append), without the index on disk and with it, alternately:", flush=True)
        print("  without: " + summary(without), flush=True)
        print("  with:    " + summary(with_index), flush=True)
        ratio = statistics.median(with_index) / statistics.median(without)
        print(f"  with / without: {ratio:.2f}", flush=True)
        then = queries_after_mutations(root, args.mutations, args.actions)
        print("a query right after each mutation (the change checked in Python), same process:", flush=True)
        print("  " + summary(then), flush=True)
        print(f"index size at the end: {index_bytes(root) / 1e6:.1f} MB", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
