"""Merge bases: our walk (expipe_git.git.merging) against dulwich.graph, in the same run.

Builds (with ``git fast-import``) a history of ``--commits`` commits, then a
criss-cross (two branches merged into each other at once), then ``--after``
commits on each side, so that the two tips have two merge bases. Times our
walk (``merging.merge_bases``, what ``Repository.merge_bases`` runs) and
``dulwich.graph.find_merge_base`` cold (a new handle each time: what a pull
or push pays) and warm (the same handle again), for the two tips and for a
tip and a commit 10 behind it (the question a push asks), and checks both
give git's answer (``git merge-base --all``).

    python bench/bench_mergebase.py [--commits 5400] [--after 50] [--reps 5]
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from dulwich.graph import find_merge_base  # noqa: E402
from dulwich.repo import Repo  # noqa: E402

from expipe_git.git import Repository, merging  # noqa: E402


def build(path: pathlib.Path, commits: int, after: int) -> tuple[bytes, bytes]:
    """Make the history; return the two tips (hex ids)."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    lines: list[str] = []
    mark = 0
    when = 1_700_000_000

    def commit(branch: str, parents: list[int], text: str) -> int:
        nonlocal mark, when
        mark += 1
        when += 60
        data = text.encode()
        lines.append(f"commit refs/heads/{branch}\nmark :{mark}\n")
        lines.append(f"committer B <b@example.org> {when} +0000\ndata 2\nc\n")
        if parents:
            lines.append(f"from :{parents[0]}\n")
        lines.extend(f"merge :{p}\n" for p in parents[1:])
        lines.append(f"M 100644 inline file-{branch}.txt\ndata {len(data)}\n{text}\n")
        return mark

    last = commit("main", [], "0")
    for i in range(1, commits):
        last = commit("main", [last], str(i))
    one = commit("one", [last], "one")
    two = commit("two", [last], "two")
    one_merge = commit("one", [one, two], "one merged")
    two_merge = commit("two", [two, one], "two merged")
    for i in range(after):
        one_merge = commit("one", [one_merge], f"one {i}")
        two_merge = commit("two", [two_merge], f"two {i}")
    stream = "".join(lines).encode()
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=stream, check=True)
    subprocess.run(["git", "-C", str(path), "repack", "-a", "-d", "-q"], check=True)

    def tip(name: str) -> bytes:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", name], capture_output=True, check=True)
        return out.stdout.strip()

    return tip("one"), tip("two")


def timed(action, reps: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(reps):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=5400)
    parser.add_argument("--after", type=int, default=50)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mergebase-") as tmp:
        path = pathlib.Path(tmp) / "repo"
        one, two = build(path, args.commits, args.after)
        behind = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "main~10"], capture_output=True, check=True
        ).stdout.strip()
        print(f"{args.commits + 2 * args.after + 4} commits; median of {args.reps} (ms)")
        print("| pair | ours, cold | dulwich, cold | ours, warm | dulwich, warm | both agree with git |")
        print("|---|---|---|---|---|---|")
        pairs = {
            "two tips after a criss-cross (two merge bases)": (one, two),
            "a tip and a commit 10 behind it (is-ancestor: a push)": (one, behind),
        }
        for name, (a, b) in pairs.items():
            print(compare(path, name, a, b, args.reps))
    return 0


def compare(path: pathlib.Path, name: str, one: bytes, two: bytes, reps: int) -> str:
    """One row: our walk and dulwich's, cold (a new handle) and warm, and whether both agree with git."""
    out = subprocess.run(
        ["git", "-C", str(path), "merge-base", "--all", one, two], capture_output=True, check=True
    )
    truth = sorted(out.stdout.split())

    def ours_cold():
        repo = Repository(path)
        try:
            return sorted(merging.merge_bases(repo.read_commit, one, two))
        finally:
            repo.close()

    def dulwich_cold():
        with Repo(str(path)) as repo:
            return sorted(find_merge_base(repo, [one, two]))

    warm_ours = Repository(path)
    warm_dulwich = Repo(str(path))
    try:
        results = [
            timed(ours_cold, reps),
            timed(dulwich_cold, reps),
            timed(lambda: sorted(merging.merge_bases(warm_ours.read_commit, one, two)), reps),
            timed(lambda: sorted(find_merge_base(warm_dulwich, [one, two])), reps),
        ]
    finally:
        warm_ours.close()
        warm_dulwich.close()
    agree = all(found == truth for _, found in results)
    return f"| {name} | " + " | ".join(f"{ms:.1f}" for ms, _ in results) + f" | {agree} |"


if __name__ == "__main__":
    sys.exit(main())
