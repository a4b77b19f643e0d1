#!/usr/bin/env python3
"""Bulk registration inside one transaction vs one commit per mutation vs the git CLI.

    .venv/bin/python bench/bench_transaction.py              # 10 000 existing actions
    .venv/bin/python bench/bench_transaction.py --existing 1000 --new 500 --reps 3

On a project that already holds ``--existing`` actions, a script registers
``--new`` actions, each with three mutations (create, set tags, create a
module of three keys):

- expipe_git, one commit per mutation (the default without a transaction),
  timed on the first ``--single`` actions only (it is slow by design) and
  reported per mutation;
- expipe_git, all of them in ``with project.transaction():`` (one commit);
- the git CLI making the same single commit: the script writes the same
  files, then ``git add`` and ``git commit`` (file writing included).

Each is repeated ``--reps`` times on fresh copies of the same project;
medians are printed. Everything runs in a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import expipe_git  # noqa: E402
from expipe_git import layout  # noqa: E402


def register(project, names):
    for name in names:
        action = project.require_action(name)
        action.tags = ["bulk", "import"]
        action.create_module("tracking", contents={"fps": 30, "camera": "top", "arena": "box"})


def git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def git_cli_bulk(root: pathlib.Path, names: list[str]) -> None:
    """The same files written by a script and committed with the git CLI."""
    attributes = (root / layout.attributes_path("action", "seed")).read_text()
    module = (root / layout.module_path(("action", "seed"), "tracking")).read_bytes()
    for name in names:
        folder = root / layout.object_dir("action", name)
        (folder / "modules").mkdir(parents=True)
        (folder / "attributes.toml").write_text(attributes.replace('"seed"', f'"{name}"'))
        (folder / "modules" / "tracking.toml").write_bytes(module)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", f"register {len(names)} actions")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--existing", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--single", type=int, default=50, help="actions timed one commit per mutation")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        os.environ.update(HOME=str(tmp), GIT_CONFIG_NOSYSTEM="1")
        git(tmp, "config", "--global", "user.name", "Bench")
        git(tmp, "config", "--global", "user.email", "bench@example.org")
        base = tmp / "base"
        project = expipe_git.require_project(base)
        start = time.perf_counter()
        with project.transaction(f"{args.existing} actions"):
            register(project, [f"old-{i:06d}" for i in range(args.existing)])
            register(project, ["seed"])
        print(f"built {args.existing} actions in one transaction: {time.perf_counter() - start:.1f} s")
        names = [f"new-{i:06d}" for i in range(args.new)]
        results: dict[str, list[float]] = {"single": [], "transaction": [], "git": []}
        for rep in range(args.reps):
            for kind in results:
                root = tmp / f"{kind}-{rep}"
                shutil.copytree(base, root, symlinks=True)
                project = expipe_git.get_project(root)
                os.sync()
                start = time.perf_counter()
                if kind == "single":
                    register(project, names[: args.single])
                elif kind == "transaction":
                    with project.transaction(f"register {len(names)} actions"):
                        register(project, names)
                else:
                    git_cli_bulk(root, names)
                elapsed = time.perf_counter() - start
                count = 3 * (args.single if kind == "single" else len(names))
                results[kind].append(elapsed / count)
                status = subprocess.run(
                    ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
                )
                assert status.stdout == "", status.stdout
                project.close()
                shutil.rmtree(root)
        single, tx, cli = (statistics.median(results[k]) * 1000 for k in ("single", "transaction", "git"))
        print(
            f"\n{args.new} new actions x 3 mutations on {args.existing} existing actions, "
            f"median of {args.reps} (ms per mutation):"
        )
        print(f"  expipe_git, one commit per mutation: {single:8.3f}")
        print(f"  expipe_git, one transaction:         {tx:8.3f}   ({single / tx:.0f}x faster)")
        print(f"  git CLI, files + add + one commit:   {cli:8.3f}   (transaction / git = {tx / cli:.2f})")
        whole = 3 * args.new / 1000
        print(f"  whole transaction: {tx * whole:.2f} s; git CLI: {cli * whole:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
