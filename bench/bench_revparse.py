#!/usr/bin/env python3
"""Revision parsing: expipe_git's resolver against ``dulwich.objectspec``, in the same run.

    .venv/bin/python bench/bench_revparse.py                   # 10 000 actions, 7 reps
    .venv/bin/python bench/bench_revparse.py --actions 2000 --reps 11

The project is bench_remote.py's (one commit per new action, made by ``git
fast-import`` and packed by ``git gc``), plus a side branch of 5 commits
merged into main, and an annotated tag. Each revision is resolved to a
commit id by

- ours: :meth:`expipe_git.history` ``history_of(repository).resolve``, what
  ``project.at``, ``project.get_commit``, ``diff`` and the command line use;
- dulwich: ``objectspec.parse_commit`` (refs, full and short ids, tags
  peeled), and for a revision with ``~`` or ``^`` first
  ``objectspec.parse_object``, which follows those but knows no short id
  (so ``abc1234~2`` is not resolved by dulwich at all).

Both answers are checked against ``git rev-parse``. "cold" opens a new
handle for each resolution (a fresh process asking once: the command line,
a script's first ``project.at``; opening it is not timed); "warm"
resolves again on one handle. Medians in milliseconds.
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
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from bench_remote import fast_import_stream  # noqa: E402
from dulwich import objectspec  # noqa: E402
from dulwich.repo import Repo  # noqa: E402

from expipe_git import history  # noqa: E402
from expipe_git.git import Repository  # noqa: E402


def git(path: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout


def build(path: pathlib.Path, actions: int) -> None:
    git(path.parent, "init", "-q", "-b", "main", str(path))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=fast_import_stream(actions), check=True)
    git(path, "checkout", "-q", "main")
    git(path, "checkout", "-q", "-b", "side", "main~3")
    for i in range(5):
        git(path, "commit", "-q", "--allow-empty", "-m", f"side {i}")
    git(path, "checkout", "-q", "main")
    git(path, "merge", "-q", "--no-edit", "side")
    git(path, "tag", "-a", "-m", "a tag", "v1", "main~500")
    git(path, "gc", "-q")


def ours(repository: Repository, revision: str) -> bytes:
    return history.history_of(repository).resolve(revision)


def dulwichs(repo: Repo, revision: str) -> bytes:
    # parse_object follows ~ and ^ but knows no short ids; parse_commit knows them but no ~ or ^.
    if "~" in revision or "^" in revision:
        return objectspec.parse_commit(repo, objectspec.parse_object(repo, revision)).id
    return objectspec.parse_commit(repo, revision).id


def timed_ms(action) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-revparse-"))
    os.environ.update(
        HOME=str(tmp), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="b@example.org"
    )
    os.environ.update(GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="b@example.org")
    try:
        path = tmp / "project"
        build(path, args.actions)
        head = git(path, "rev-parse", "HEAD").strip()
        revisions = [
            "HEAD",
            "HEAD~1",
            "HEAD^",
            "HEAD^2",
            "HEAD~1000",
            "main",
            "main~10",
            "side~2",
            "v1",
            head,
            head[:7],
            git(path, "rev-parse", "HEAD~2000").strip()[:10],
        ]
        print(f"{args.actions + 7} commits; {args.reps} runs each, median ms\n")
        print("| revision | ours cold | dulwich cold | ours warm | dulwich warm |")
        print("|---|---|---|---|---|")
        for revision in revisions:
            expected = git(path, "rev-parse", f"{revision}^{{commit}}").strip().encode()
            cold: dict[str, list[float]] = {"ours": [], "dulwich": []}
            for _ in range(args.reps):  # interleaved: whatever else the machine does hits both
                repository = Repository(path)
                cold["ours"].append(timed_ms(lambda r=repository, v=revision: ours(r, v)))
                repository.close()
                repo = Repo(str(path))
                cold["dulwich"].append(timed_ms(lambda r=repo, v=revision: dulwichs(r, v)))
                repo.close()
            repository, repo = Repository(path), Repo(str(path))
            assert ours(repository, revision) == expected, revision
            assert dulwichs(repo, revision) == expected, revision
            warm = {
                "ours": [timed_ms(lambda r=repository, v=revision: ours(r, v)) for _ in range(args.reps)],
                "dulwich": [timed_ms(lambda r=repo, v=revision: dulwichs(r, v)) for _ in range(args.reps)],
            }
            repository.close()
            repo.close()
            shown = revision if len(revision) < 40 else revision[:12] + "… (full id)"
            cold_ms = [statistics.median(cold[who]) for who in ("ours", "dulwich")]
            warm_ms = [statistics.median(warm[who]) for who in ("ours", "dulwich")]
            print(
                f"| `{shown}` | {cold_ms[0]:.2f} | {cold_ms[1]:.2f} | {warm_ms[0]:.3f} | {warm_ms[1]:.3f} |"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
