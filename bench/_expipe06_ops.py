"""Mutation latencies of expipe 0.6 (PyPI), run in bench/.venv-expipe.

    python _expipe06_ops.py PATH JOBS.json

JOBS.json holds {"warmup": k, "ops": {"attribute": [names], "module": [...],
"message": [...]}}: one action name per repetition, the first ``warmup`` of
each list unmeasured. Prints one JSON line {op: [seconds, ...]}.
The same operations as bench_core.py times on expipe_git:
``action.tags = [...]``, ``module["fps"] = value`` and ``create_message``.
"""

import datetime as dt
import json
import os
import sys
import time


def main() -> None:
    path, jobs_file = sys.argv[1], sys.argv[2]
    with open(jobs_file) as f:
        jobs = json.load(f)
    import expipe

    project = expipe.get_project(path)
    warmup = jobs["warmup"]
    out = {}
    for op, names in jobs["ops"].items():
        samples = []
        for i, name in enumerate(names):
            action = project.actions[name]
            if op == "attribute":

                def run(action=action, i=i):
                    action.tags = [f"bench{i}", "baseline"]
            elif op == "module":
                module = action.modules["tracking"]

                def run(module=module, i=i):
                    module["fps"] = 100 + i
            elif op == "message":
                when = dt.datetime(2030, 1, 1) + dt.timedelta(seconds=i)

                def run(action=action, i=i, when=when):
                    action.create_message(f"bench note {i}", user="bench", datetime=when)
            else:
                raise SystemExit(f"unknown op {op}")
            os.sync()  # as bench_core.py does before every operation
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            if i >= warmup:
                samples.append(elapsed)
        out[op] = samples
    print(json.dumps(out))


if __name__ == "__main__":
    main()
