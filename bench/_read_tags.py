"""Read ``tags`` of every action of a project, in a fresh process.

Run by bench_core.py, once per repetition, with either library's interpreter:

    python _read_tags.py expipe_git|expipe PATH [--passes 2] [--profile FILE]

Prints one JSON line: import time, the time of each pass (pass 1 runs from
before ``get_project`` to after the loop; later passes reuse the project, so
they are "warm"), the number of actions and a digest of what was read (the
benchmark checks both libraries read the same tags).

Only the standard library is imported besides the library under test.
"""

import argparse
import hashlib
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("lib", choices=["expipe_git", "expipe"])
    parser.add_argument("path")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--profile", help="write cProfile stats of pass 1 to this file")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="expipe_git only: time the leaf steps of pass 1 (see _instrument)",
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    if args.lib == "expipe_git":
        import expipe_git as expipe
    else:
        import expipe
    import_s = time.perf_counter() - t0

    breakdown = _instrument(expipe) if args.breakdown else None

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()

    passes = []
    project = None
    tags = {}
    for i in range(args.passes):
        if profiler is not None and i == 0:
            profiler.enable()
        start = time.perf_counter()
        if project is None:
            project = expipe.get_project(args.path)
        # list(): expipe_git's PropertyList reads lazily; expipe 0.6's reads
        # when created. list() makes both hand back the values.
        tags = {name: list(project.actions[name].tags) for name in project.actions}
        passes.append(time.perf_counter() - start)
        if breakdown is not None and i == 0:
            pass1 = dict(breakdown)
        if profiler is not None and i == 0:
            profiler.disable()
            profiler.dump_stats(args.profile)

    if breakdown is not None:
        report = dict(pass1)
        report["rest: handles, Snapshot/lookup glue"] = passes[0] - sum(pass1.values())
        report["TOTAL pass 1"] = passes[0]
        print(json.dumps({"breakdown_s": report}))
    digest = hashlib.sha1(json.dumps(sorted(tags.items())).encode()).hexdigest()
    print(json.dumps({"import_s": import_s, "passes_s": passes, "n": len(tags), "digest": digest}))


def _instrument(expipe):
    """Wrap the leaf steps of an expipe_git read with timers; return the live totals.

    The wrapped functions never call each other, so their times add up. The
    caller copies the totals after pass 1. Steps missing from the library
    version under test are skipped.
    """
    from expipe_git import layout, values
    from expipe_git.git import Repository

    totals = {}

    def wrap(owner, attr, label):
        func = getattr(owner, attr, None)
        if func is None:
            return
        totals[label] = 0.0

        def timed(*a, **k):
            start = time.perf_counter()
            try:
                return func(*a, **k)
            finally:
                totals[label] += time.perf_counter() - start

        setattr(owner, attr, timed)

    wrap(Repository, "head", "Repository.head (stat/read the branch ref)")
    wrap(Repository, "commit_tree", "Repository.commit_tree (read the commit)")
    wrap(Repository, "tree_entries", "Repository.tree_entries (read + parse trees; cached)")
    wrap(Repository, "object_contents", "Repository.object_contents (read + inflate a blob)")
    wrap(values, "parse", "values.parse (tomllib)")
    wrap(values, "decode", "values.decode (tagged values -> Python)")
    wrap(layout, "_name_problem", "layout.name_problem (name checks)")
    wrap(layout, "shard", "layout.shard (sha1 of the name)")
    return totals


if __name__ == "__main__":
    main()
