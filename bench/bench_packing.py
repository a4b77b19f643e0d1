"""What packing loose objects costs a mutation, and what it saves on disk.

Projects are built alike (``--actions`` actions, in one transaction), one
per way of packing after a write (``expipe_git.git.packing.auto``, chosen
with ``--modes``):

- ``off``: nothing packs — the library as it was before packing existed
  (the call after the write lock returns at once);
- ``control``: a second project exactly like ``off`` (an A/A test): how far
  two identical projects differ in one run is the noise any other way's
  difference must stand out of;
- ``background``: past ``LOOSE_LIMIT`` loose objects, a detached packer
  process (niced) packs, outside the write lock (what ships);
- ``thread``: the same packing in a thread of the writing process (what
  shipped before);
- ``inline``: the same packing in the writing call, after its commit landed.

Then ``--mutations`` tag sets (each on a random action, one commit each)
are timed one call at a time, the projects taking turns in rounds of
``--round`` (each round starting with the next one) so that the machine's
load falls alike on all of them (the packers started in a turn are waited
for before the next project's turn).
The file system of ``--tmpdir`` is named first (type, mount options, and
for ext4 whether it has a journal: without one, the kernel's inode
allocator skips every inode freed in the last 12 hours, so packing's
removals slow every later file creation; docs/performance.md).
Median, p99 and max per way; the median over rounds of each round's median
against ``off``'s in the same round (paired: robust to the machine's load
changing during the run); each way's p99 over ``off``'s with a 95 %
bootstrap interval (``control``'s is the noise); the calls made while a
packer ran against the others; then, for each project, the files and bytes of ``.git`` against a
copy of it after ``git gc`` (files: ``find .git -type f``; bytes: their
sizes, as ``du -b``), and ``expipe-git gc`` on the unpacked one.
Last, the cost of taking and releasing the write lock (``lockfile``), and of
``filelock`` if it is installed.

    .venv/bin/python bench/bench_packing.py                       # 200 actions, 1,000 mutations
    .venv/bin/python bench/bench_packing.py --mutations 2400 --round 40 --tmpdir /mnt/journaled
    .venv/bin/python bench/bench_packing.py --modes off,background,thread,inline
    .venv/bin/python bench/bench_packing.py --actions 10000 --mutations 1000

Prints the revision and the numbers; never asserts timings.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import expipe_git  # noqa: E402
from expipe_git.git import lockfile, packing  # noqa: E402

MODES = ("off", "control", "background", "thread", "inline")
BOOTSTRAP_DRAWS = 2000


def usage(folder: str) -> tuple[int, int]:
    files = size = 0
    for top, _, names in os.walk(folder):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(top, name))
    return files, size


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def p99_interval(samples: list[float], base: list[float], rng: random.Random) -> tuple[float, float, float]:
    """p99 of ``samples`` over p99 of ``base``, and a 95 % bootstrap interval of that ratio."""
    ratios = sorted(
        quantile(rng.choices(samples, k=len(samples)), 0.99) / quantile(rng.choices(base, k=len(base)), 0.99)
        for _ in range(BOOTSTRAP_DRAWS)
    )
    return quantile(samples, 0.99) / quantile(base, 0.99), quantile(ratios, 0.025), quantile(ratios, 0.975)


def file_system(path: str) -> str:
    """Name the file system ``path`` is on: type, options, and for ext4 whether it journals."""
    best = ("", "?", "?", "?")
    with open("/proc/self/mountinfo") as f:  # Linux; elsewhere the caller says "unknown"
        for line in f:
            fields = line.split()
            mount_point, options = fields[4], fields[5]
            dash = fields.index("-")
            fs_type, device, super_options = fields[dash + 1], fields[dash + 2], fields[dash + 3]
            inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) > len(best[0]):
                best = (mount_point, fs_type, device, options + "," + super_options)
    mount_point, fs_type, device, options = best
    described = f"{fs_type} on {device} at {mount_point} ({options})"
    if fs_type == "ext4":
        name = os.path.basename(device)
        journals = os.listdir("/proc/fs/jbd2") if os.path.isdir("/proc/fs/jbd2") else []
        journaled = any(entry.startswith(name + "-") for entry in journals)
        described += ", journal" if journaled else ", NO JOURNAL"
    return described


def build(path: str, actions: int) -> list:
    project = expipe_git.require_project(path)
    with project.transaction("setup"):
        for i in range(actions):
            project.require_action(f"rec-{i:06d}")
    return [project.actions[f"rec-{i:06d}"] for i in range(actions)]


def lock_cost(tmp: str, reps: int = 2000) -> dict[str, float]:
    path = os.path.join(tmp, "write-mutex")
    costs = {}
    start = time.perf_counter()
    for _ in range(reps):
        with lockfile.exclusive(path):
            pass
    costs["expipe_git.lockfile (flock)"] = (time.perf_counter() - start) / reps
    try:
        import filelock
    except ImportError:
        return costs
    lock = filelock.FileLock(path + "-filelock")
    start = time.perf_counter()
    for _ in range(reps):
        with lock:
            pass
    costs[f"filelock {filelock.__version__}"] = (time.perf_counter() - start) / reps
    return costs


def small_projects(tmp: str, seed: int) -> None:
    """.git against git gc at small sizes, where loose objects are most of it."""
    print("\nsmall projects (background packing) | .git files | bytes | git gc'd bytes | ratio")
    packing.auto = "background"
    for actions, changes in [(1, 0), (5, 10), (5, 40), (20, 100), (50, 300)]:
        path = os.path.join(tmp, f"small-{actions}-{changes}")
        project = expipe_git.require_project(path)
        handles = [project.require_action(f"rec-{i}") for i in range(actions)]
        rng = random.Random(seed)
        for j in range(changes):
            rng.choice(handles).tags = [f"tag-{j}"]
        packing.wait_for_background_packing()
        shutil.copytree(path, path + "-gc")
        subprocess.run(["git", "gc", "-q"], cwd=path + "-gc", check=True)
        ours, theirs = usage(os.path.join(path, ".git")), usage(os.path.join(path + "-gc", ".git"))
        print(
            f"{actions} actions, {changes} tag sets | {ours[0]} | {ours[1]:,} | {theirs[1]:,} "
            f"| {ours[1] / theirs[1]:.2f}x"
        )
    packing.auto = "off"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=200)
    parser.add_argument("--mutations", type=int, default=1000)
    parser.add_argument(
        "--round", type=int, default=50, help="mutations per project before the next takes a turn"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", default="off,control,background,thread", help=f"some of {','.join(MODES)}")
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--small", action="store_true", help="only .git against git gc at small sizes")
    args = parser.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print(
        f"expipe_git {rev.stdout.strip()}; {args.actions} actions, {args.mutations} mutations; "
        f"LOOSE_LIMIT {packing.LOOSE_LIMIT}; load {os.getloadavg()[0]:.1f}"
    )
    tmp = tempfile.mkdtemp(prefix="bench-packing-", dir=args.tmpdir)
    try:
        print(f"file system: {file_system(tmp) if os.path.exists('/proc/self/mountinfo') else 'unknown'}")
        if args.small:
            small_projects(tmp, args.seed)
            return
        modes = args.modes.split(",")
        if not set(modes) <= set(MODES) or "off" not in modes:
            parser.error(f"--modes: some of {','.join(MODES)}, with off")
        handles = {mode: build(os.path.join(tmp, mode), args.actions) for mode in modes}
        rng = random.Random(args.seed)
        samples: dict[str, list[float]] = {mode: [] for mode in modes}
        round_medians: dict[str, list[float]] = {mode: [] for mode in modes}
        during: dict[str, list[float]] = {mode: [] for mode in modes}  # a packer ran as the call began
        outside: dict[str, list[float]] = {mode: [] for mode in modes}
        done = 0
        while done < args.mutations:
            step = min(args.round, args.mutations - done)
            turn = (done // args.round) % len(modes)  # each takes its turn first, second, ...
            for mode in modes[turn:] + modes[:turn]:
                packing.auto = "off" if mode == "control" else mode
                actions = handles[mode]
                git_dir = os.path.join(tmp, mode, ".git")
                for j in range(done, done + step):
                    action = actions[rng.randrange(len(actions))]
                    packer_runs = mode not in ("off", "control") and not packing.wait_for_packing(
                        git_dir, timeout=0
                    )
                    start = time.perf_counter()
                    action.tags = [f"tag-{j}"]
                    took = time.perf_counter() - start
                    samples[mode].append(took)
                    (during if packer_runs else outside)[mode].append(took)
                round_medians[mode].append(statistics.median(samples[mode][-step:]))
                packing.wait_for_background_packing()
            done += step
        packing.auto = "off"
        print(f"\nmutation (action.tags = [...]) | median | p99 | max   (load now {os.getloadavg()[0]:.1f})")
        for mode in modes:
            s = samples[mode]
            print(
                f"{mode:10} | {statistics.median(s) * 1e3:.2f} ms | {quantile(s, 0.99) * 1e3:.2f} ms "
                f"| {max(s) * 1e3:.1f} ms"
            )
        print("\npaired: each round's median over off's in the same round | median of the ratios")
        for mode in (mode for mode in modes if mode != "off"):
            ratios = [a / b for a, b in zip(round_medians[mode], round_medians["off"], strict=True)]
            print(f"{mode:10} | {statistics.median(ratios):.3f} (rounds {len(ratios)})")
        print("\np99 over off's | ratio | 95 % bootstrap interval")
        boot = random.Random(args.seed)
        for mode in (mode for mode in modes if mode != "off"):
            ratio, low, high = p99_interval(samples[mode], samples["off"], boot)
            print(f"{mode:10} | {ratio:.3f} | {low:.3f}-{high:.3f}")
        print("\nthe same, while a packer ran | median | p99 | count ; while none ran | median | p99")
        for mode in (mode for mode in modes if mode not in ("off", "control")):
            if during[mode] and outside[mode]:
                a, b = during[mode], outside[mode]
                print(
                    f"{mode:10} | {statistics.median(a) * 1e3:.2f} ms | {quantile(a, 0.99) * 1e3:.2f} ms "
                    f"| {len(a)} ; {statistics.median(b) * 1e3:.2f} ms | {quantile(b, 0.99) * 1e3:.2f} ms"
                )
        print("\n.git | files | bytes | git gc'd copy: files | bytes | ratio (bytes)")
        for mode in modes:
            git_dir = os.path.join(tmp, mode, ".git")
            copy = os.path.join(tmp, mode + "-gc")
            shutil.copytree(os.path.join(tmp, mode), copy)
            subprocess.run(["git", "gc", "-q"], cwd=copy, check=True)
            ours, theirs = usage(git_dir), usage(os.path.join(copy, ".git"))
            print(
                f"{mode:10} | {ours[0]} | {ours[1]:,} | {theirs[0]} | {theirs[1]:,} "
                f"| {ours[1] / theirs[1]:.2f}x"
            )
        start = time.perf_counter()
        report = packing.pack_now(os.path.join(tmp, "off", ".git"), everything=True)
        took = time.perf_counter() - start
        ours = usage(os.path.join(tmp, "off", ".git"))
        print(
            f"\nexpipe-git gc on 'off': {took:.2f} s, {report}; .git now {ours[0]} files, {ours[1]:,} bytes"
        )
        print("\nwrite lock, take and release:")
        for name, cost in lock_cost(tmp).items():
            print(f"  {name}: {cost * 1e6:.1f} us")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
