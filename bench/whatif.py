#!/usr/bin/env python3
"""What-if experiment behind the read suggestion in docs/performance.md.

    .venv/bin/python bench/whatif.py [--n 10000] [--reps 6]

Builds one project of N actions the way bench_core.py does, then times a
fresh-process read of every action's tags (as bench_core.py does):

* with the library as is (loose objects, as the setup commit leaves them);
* with a persistent content-addressed cache, which the library does not
  have: the parsed trees and TOML records of a previous process, keyed by
  git object id (so never stale), loaded before the read. Pickle is used
  here only to measure; a real cache should use a format that cannot run
  code (marshal of plain values, or JSON with tagged datetimes);
* with the library as is on a packed repository (after ``git repack -ad``).

The modes alternate, so drift hits all alike. About a minute at N = 10 000;
cleans up after itself. The library is not changed.
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
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


# -- read -------------------------------------------------------------------------


def child(mode: str, path: str, cache: str) -> None:
    """One fresh-process read of every action's tags, in one of the what-if modes."""
    import expipe_git

    start = time.perf_counter()
    project = expipe_git.get_project(path)
    if mode == "persistent cache (load + read)":
        import pickle

        with open(cache, "rb") as f:
            trees, parsed = pickle.load(f)
        project.store._trees.update(trees)
        project.store._parsed.update(parsed)
    tags = {name: list(project.actions[name].tags) for name in project.actions}
    elapsed = time.perf_counter() - start
    if mode == "write cache":
        import pickle

        with open(cache, "wb") as f:
            pickle.dump((project.store._trees, project.store._parsed), f, protocol=5)
    print(json.dumps({"s": elapsed, "n": len(tags)}))


def read_experiment(root: pathlib.Path, env: dict[str, str], reps: int) -> dict[str, float]:
    cache = str(root.parent / "read-cache.pkl")
    packed = root.parent / "packed"
    shutil.copytree(root, packed, symlinks=True)
    subprocess.run(["git", "repack", "-adq"], cwd=packed, env=env, check=True)

    def run(mode: str, path: pathlib.Path) -> float:
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(path), cache],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])["s"]

    run("write cache", root)
    modes = [
        ("library as is (loose objects)", root),
        ("persistent cache (load + read)", root),
        ("library as is, packed repository", packed),
    ]
    samples: dict[str, list[float]] = {label: [] for label, _ in modes}
    for _ in range(reps):  # interleaved, so drift hits every mode alike
        for label, path in modes:
            samples[label].append(run(label if "as is" not in label else "plain", path))
    out = {label: statistics.median(s) for label, s in samples.items()}
    out["cache file bytes"] = os.path.getsize(cache)
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=6, help="fresh processes per mode")
    args = parser.parse_args()

    import bench_core as bc

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="expipe-git-whatif-"))
    saved = dict(os.environ)
    try:
        info = bc.load_library(tmp)
        env = bc.isolated_env(tmp)
        os.environ.clear()
        os.environ.update(env)
        root = tmp / "egit"
        bc.build_expipe_git(root, bc.action_records(args.n, 20240601), env)
        print(json.dumps({"n": args.n, **info}))
        print(f"== read: fresh-process read of every action's tags (median s of {args.reps})")
        for label, value in read_experiment(root, env, args.reps).items():
            print(f"{label:<55} {value:10.3f}" if isinstance(value, float) else f"{label:<55} {value:10d}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
