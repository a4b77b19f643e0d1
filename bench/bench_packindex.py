#!/usr/bin/env python3
"""Peak memory and time of indexing a received pack (what a clone or fetch does with it).

    .venv/bin/python bench/bench_packindex.py                  # 10 000 actions in 10 001 commits
    .venv/bin/python bench/bench_packindex.py --actions 2000 --reps 5
    .venv/bin/python bench/bench_packindex.py --keep none     # what indexing itself holds

The pack is the one ``git gc`` makes of the project bench_remote.py builds
(one commit per new action, deltas as git finds them). It is indexed as a
fetch indexes it (commits, trees and tags kept for the fetch's check; ``--keep none``
keeps nothing, so the peak is what indexing itself holds);
tracemalloc's peak is the memory Python allocated at the worst moment
(the kept objects, which the caller gets, included), ``ru_maxrss`` the
process's resident peak. Medians of the runs are printed.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from bench_remote import fast_import_stream  # noqa: E402

from expipe_git.git.packindex import index_pack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", choices=["fetch", "none"], default="fetch")
    args = parser.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-packindex-"))
    try:
        os.environ.update(HOME=str(tmp), GIT_CONFIG_NOSYSTEM="1")
        subprocess.run(["git", "init", "-q", "--bare", str(tmp / "p.git")], check=True)
        stream = fast_import_stream(args.actions)
        subprocess.run(["git", "fast-import", "--quiet"], cwd=tmp / "p.git", input=stream, check=True)
        subprocess.run(["git", "gc", "-q"], cwd=tmp / "p.git", check=True)
        (pack,) = (tmp / "p.git" / "objects" / "pack").glob("*.pack")
        peaks, times, objects = [], [], 0
        del stream
        keep = (1, 2, 4) if args.keep == "fetch" else ()
        for _ in range(args.reps):
            start = time.perf_counter()
            index_pack(str(pack), keep=keep)
            times.append(time.perf_counter() - start)
            tracemalloc.start()
            indexed = index_pack(str(pack), keep=keep)
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            objects = len(indexed.entries)
            del indexed
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.actions} actions: pack of {objects} objects, {pack.stat().st_size / 1e6:.1f} MB; "
            f"index_pack (keep {args.keep}) peak {statistics.median(peaks) / 1e6:.1f} MB (tracemalloc), "
            f"{statistics.median(times):.2f} s (untraced); process max RSS {rss:.0f} MB"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
