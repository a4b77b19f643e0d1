"""Merge bases: our walk (expipe_git.git.merging) against dulwich.graph, in the same run.

Builds (with ``git fast-import``) a history of ``--commits`` commits, then a
criss-cross (two branches merged into each other at once), then ``--after``
commits on each side, so that the two tips have two merge bases. Times
our walk (``merging.merge_bases``), ``Repository.merge_bases`` (which now
asks dulwich for commits on disk) and ``dulwich.graph.find_merge_base`` cold (a new
handle each time: what a pull pays) and warm (the same handle again), and
checks both give git's answer (``git merge-base --all``).

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
        out = subprocess.run(
            ["git", "-C", str(path), "merge-base", "--all", one, two], capture_output=True, check=True
        )
        truth = sorted(out.stdout.split())
        assert len(truth) == 2, truth

        def walk_cold():
            repo = Repository(path)
            try:
                return sorted(merging.merge_bases(repo.read_commit, one, two))
            finally:
                repo.close()

        def repository_cold():
            repo = Repository(path)
            try:
                return sorted(repo.merge_bases(one, two))
            finally:
                repo.close()

        def dulwich_cold():
            with Repo(str(path)) as repo:
                return sorted(find_merge_base(repo, [one, two]))

        warm_ours = Repository(path)
        warm_dulwich = Repo(str(path))
        results = {
            "our walk, cold": timed(walk_cold, args.reps),
            "Repository.merge_bases, cold": timed(repository_cold, args.reps),
            "dulwich.graph, cold": timed(dulwich_cold, args.reps),
            "our walk, warm": timed(
                lambda: sorted(merging.merge_bases(warm_ours.read_commit, one, two)), args.reps
            ),
            "Repository.merge_bases, warm": timed(lambda: sorted(warm_ours.merge_bases(one, two)), args.reps),
            "dulwich.graph, warm": timed(
                lambda: sorted(find_merge_base(warm_dulwich, [one, two])), args.reps
            ),
        }
        warm_ours.close()
        warm_dulwich.close()
        print(f"{args.commits + 2 * args.after + 4} commits, two merge bases; median of {args.reps}")
        print("| merge base | ms | agrees with git |")
        print("|---|---|---|")
        for name, (ms, found) in results.items():
            print(f"| {name} | {ms:.1f} | {found == truth} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
