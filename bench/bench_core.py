#!/usr/bin/env python3
"""Benchmark expipe_git's core operations against the git CLI and expipe 0.6.

    .venv/bin/python bench/bench_core.py                  # N = 1 000 and 10 000 actions
    .venv/bin/python bench/bench_core.py --sizes 10000
    .venv/bin/python bench/bench_core.py --big            # adds N = 100 000 (slow)
    .venv/bin/python bench/bench_core.py --sizes 10000 --profile

For every size N it builds a project of N actions (attributes, one module,
one message each) and measures, with --reps repetitions each:

1. one attribute set (``action.tags = [...]``), one module key write and one
   new message: latency, median and p90, and the bytes each commit adds to
   ``.git/objects``;
2. the same mutations done with the git CLI (write the TOML file, ``git add``,
   ``git commit``) in a copy of the same repository; the two tools alternate
   in blocks of 10, and every operation starts after os.sync();
3. expipe 0.6 from PyPI (in bench/.venv-expipe, created on first run) on the
   same N actions stored its way (YAML files);
4. reading ``tags`` of every action in a fresh process (expipe_git and
   expipe 0.6), and a second, warm pass in the same process (expipe_git).

See bench/README.md; results are in docs/performance.md. Everything runs in a
temporary folder (with its own HOME and git identity) that is removed at the
end, also on Ctrl-C. Raw samples go to bench/out/results.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import pathlib
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent

# Set by load_library(): the run imports a private copy of expipe_git, so that
# edits to the working copy during a long run cannot mix two versions.
expipe_git = layout = values = _message_id = None
LIB_DIR: pathlib.Path | None = None

EXPIPE_VENV = HERE / ".venv-expipe"
EXPIPE_PIN = "expipe==0.6.0"
READER = HERE / "_read_tags.py"
EXPIPE06_OPS = HERE / "_expipe06_ops.py"
OPS = ("attribute", "module", "message")
OP_LABEL = {
    "attribute": "set tags of one action",
    "module": "write one module key",
    "message": "create one message",
}
WARMUP = 2
BLOCK = 10  # expipe_git and git CLI alternate in blocks of this many repetitions
GIT_TIMEOUT = 300
READ_TIMEOUT = 1800
USERS = ("alice", "bob", "carol")
TYPES = ("recording", "surgery", "analysis")
MODULE = {"camera": "top", "fps": 30, "gain": 1.5}
BASE_TIME = dt.datetime(2020, 1, 1, 8, 0, 0)


def log(*args) -> None:
    print(*args, flush=True)


def load_library(tmp: pathlib.Path) -> dict:
    """Copy expipe_git/ into ``tmp`` and import it from there; describe the copy."""
    global expipe_git, layout, values, _message_id, LIB_DIR
    LIB_DIR = tmp / "lib"
    shutil.copytree(
        REPO / "expipe_git", LIB_DIR / "expipe_git", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    digest = hashlib.sha256()
    for path in sorted((LIB_DIR / "expipe_git").rglob("*.py")):
        digest.update(path.relative_to(LIB_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    sys.path.insert(0, str(LIB_DIR))
    import expipe_git as lib
    from expipe_git import layout as lay
    from expipe_git import values as val

    try:
        from expipe_git.objects import message_id_of as mid
    except ImportError:  # a copy from before issue 11 (a before/after measure)
        from expipe_git.objects import _message_id as mid  # type: ignore[attr-defined,no-redef]

    if not pathlib.Path(lib.__file__).is_relative_to(LIB_DIR):
        raise RuntimeError(f"imported expipe_git from {lib.__file__}, not from the copy in {LIB_DIR}")
    expipe_git, layout, values, _message_id = lib, lay, val, mid
    info = {"expipe_git_sources_sha256": digest.hexdigest()[:16]}
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "expipe_git"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        info["expipe_git_revision"] = rev + (" + uncommitted changes in expipe_git/" if dirty else "")
    except OSError:
        pass
    return info


# -- statistics ---------------------------------------------------------------


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "p90": p90(samples), "n": len(samples)}


# -- the environment -------------------------------------------------------------


def isolated_env(tmp: pathlib.Path) -> dict[str, str]:
    """An environment with its own HOME and git identity, no system git config."""
    home = tmp / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Bench Mark\n\temail = bench@example.org\n")
    env = dict(os.environ)
    for var in (
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
        "GIT_CONFIG_GLOBAL",
    ):
        env.pop(var, None)
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C", PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = str(LIB_DIR)
    return env


def ensure_expipe_venv(env: dict[str, str]) -> pathlib.Path | None:
    """Return the python of bench/.venv-expipe, creating it on first use."""
    python = EXPIPE_VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run(
            [str(python), "-c", "import expipe, sys; print(expipe.__version__)"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        if check.returncode == 0:
            return python
        log(f"bench/.venv-expipe is broken ({check.stderr.strip()[-200:]}); recreating it")
        shutil.rmtree(EXPIPE_VENV)
    log(f"creating bench/.venv-expipe with {EXPIPE_PIN} (first run only) ...")
    base = shutil.which("python3") or sys.executable
    try:
        subprocess.run([base, "-m", "venv", str(EXPIPE_VENV)], check=True, timeout=600)
        subprocess.run([str(python), "-m", "pip", "install", "-q", EXPIPE_PIN], check=True, timeout=1200)
    except (subprocess.SubprocessError, OSError) as exc:
        log(f"could not install {EXPIPE_PIN}: {exc}; the expipe 0.6 column stays empty")
        return None
    return python


# -- building the projects ---------------------------------------------------------


def action_names(n: int) -> list[str]:
    return [f"rec-{i:06d}" for i in range(n)]


def action_records(n: int, seed: int) -> list[dict]:
    """The same N actions for both libraries."""
    rng = random.Random(seed)
    records = []
    for i, name in enumerate(action_names(n)):
        when = BASE_TIME + dt.timedelta(minutes=i)
        user = rng.choice(USERS)
        records.append(
            {
                "name": name,
                "attributes": {
                    "registered": when,
                    "type": rng.choice(TYPES),
                    "tags": [f"tag{rng.randrange(20)}", "baseline"],
                    "users": [user],
                    "datetime": when,
                },
                "message": {"text": f"note {i}", "user": user, "datetime": when},
            }
        )
    return records


def git(repo: pathlib.Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def build_expipe_git(root: pathlib.Path, records: list[dict], env: dict[str, str]) -> dict:
    """Create the project with expipe_git, write N actions' files, one git CLI commit."""
    start = time.perf_counter()
    expipe_git.create_project(root)
    module_text = values.dumps(MODULE, what="module")
    for rec in records:
        name = rec["name"]
        files = {
            layout.attributes_path("action", name): values.dumps(rec["attributes"], what=name),
            layout.module_path(("action", name), "tracking"): module_text,
            layout.message_path("action", name, _message_id(rec["message"])): values.dumps(
                rec["message"], what=name
            ),
        }
        for path, text in files.items():
            full = root / path
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text(text, encoding="utf-8")
    written = time.perf_counter()
    git(root, env, "add", "-A")
    git(root, env, "commit", "-q", "-m", f"Import {len(records)} actions")
    committed = time.perf_counter()
    assert_clean(root, env)
    return {"write_s": written - start, "git_add_commit_s": committed - written}


def _yaml_str(value: str) -> str:
    # Enough YAML for the values this benchmark writes (as ruamel's safe dumper does).
    if value.replace("-", "").replace("_", "").replace(" ", "").isalnum() and not value[0].isdigit():
        return value
    return "'" + value.replace("'", "''") + "'"


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join(_yaml_str(i) for i in items) + "]"


def build_expipe06(root: pathlib.Path, records: list[dict]) -> dict:
    """Write an expipe 0.6 project's YAML files directly (the API takes ~2 ms a file)."""
    start = time.perf_counter()
    root.mkdir(parents=True)
    (root / "expipe.yaml").write_text(f"{{database_version: 2, project: {root.name}, type: project}}\n")
    for sub in ("actions", "entities", "templates", "modules"):
        (root / sub).mkdir()
    fmt = "%Y-%m-%dT%H:%M:%S"
    for rec in records:
        a = rec["attributes"]
        folder = root / "actions" / rec["name"]
        (folder / "modules").mkdir(parents=True)
        (folder / "messages").mkdir()
        (folder / "attributes.yaml").write_text(
            f"datetime: '{a['datetime'].strftime(fmt)}'\n"
            f"registered: '{a['registered'].strftime(fmt)}'\n"
            f"tags: {_yaml_list(a['tags'])}\n"
            f"type: {_yaml_str(a['type'])}\n"
            f"users: {_yaml_list(a['users'])}\n"
        )
        (folder / "modules" / "tracking.yaml").write_text("{camera: top, fps: 30, gain: 1.5}\n")
        m = rec["message"]
        key = m["datetime"].strftime("%Y%m%dT%H%M%S")
        (folder / "messages" / f"{key}.yaml").write_text(
            f"{{datetime: '{m['datetime'].strftime(fmt)}', text: {_yaml_str(m['text'])}, "
            f"user: {_yaml_str(m['user'])}}}\n"
        )
    return {"write_s": time.perf_counter() - start}


def assert_clean(root: pathlib.Path, env: dict[str, str]) -> None:
    status = git(root, env, "status", "--porcelain")
    if status.strip():
        raise RuntimeError(f"git status is not clean in {root}:\n{status[:2000]}")


# -- measuring growth -------------------------------------------------------------


def loose_bytes(git_dir: pathlib.Path) -> tuple[int, int]:
    """Return (apparent bytes, disk bytes) of all loose objects (du -b, du)."""
    apparent = disk = 0
    with os.scandir(git_dir / "objects") as it:
        for d in it:
            if len(d.name) != 2 or not d.is_dir():
                continue
            with os.scandir(d.path) as files:
                for f in files:
                    try:
                        st = f.stat()
                    except FileNotFoundError:
                        continue  # packed meanwhile (packing runs after a write)
                    apparent += st.st_size
                    disk += st.st_blocks * 512
    return apparent, disk


# -- the mutations -----------------------------------------------------------------


class Mutations:
    """Times mutations by expipe_git and by the git CLI, each in its own copy of the project.

    Separate copies keep each tool's repository in the state that tool leaves
    it (git's index rewritten by git, or patched by expipe_git), as for a
    person who uses only one of them. Before every operation, outside the
    timer, os.sync() flushes what the previous one wrote, so no operation pays
    for another's writeback.
    """

    TOOLS = ("expipe_git", "git_cli")

    def __init__(self, roots: dict[str, pathlib.Path], env: dict[str, str]):
        self.roots = roots
        self.env = env
        self.project = expipe_git.get_project(roots["expipe_git"])
        self.samples = {
            tool: {op: {"latency_s": [], "growth_bytes": [], "growth_disk_bytes": []} for op in OPS}
            for tool in self.TOOLS
        }
        self.before = {tool: loose_bytes(roots[tool] / ".git") for tool in self.TOOLS}

    def _record(self, tool: str, op: str, elapsed: float, measured: bool) -> None:
        after = loose_bytes(self.roots[tool] / ".git")
        if measured:
            bucket = self.samples[tool][op]
            bucket["latency_s"].append(elapsed)
            bucket["growth_bytes"].append(after[0] - self.before[tool][0])
            bucket["growth_disk_bytes"].append(after[1] - self.before[tool][1])
        self.before[tool] = after

    # expipe_git: handles are fetched outside the timer; the timer covers one
    # public API call, which is one commit.
    def expipe_git(self, op: str, name: str, i: int, measured: bool) -> None:
        action = self.project.actions[name]
        if op == "attribute":

            def run():
                action.tags = [f"bench{i}", "baseline"]
        elif op == "module":
            module = action.modules["tracking"]

            def run():
                module["fps"] = 100 + i
        else:
            when = dt.datetime(2030, 1, 1) + dt.timedelta(seconds=i)

            def run():
                action.create_message(f"bench note {i}", user="bench", datetime=when)

        os.sync()
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        self._record("expipe_git", op, elapsed, measured)

    # git CLI: the new file content is computed outside the timer; the timer
    # covers writing the file, `git add FILE` and `git commit -q -m MSG`.
    def git_cli(self, op: str, name: str, i: int, measured: bool) -> None:
        root = self.roots["git_cli"]
        if op == "attribute":
            path = layout.attributes_path("action", name)
            record = values.loads((root / path).read_bytes(), what=path)
            record["tags"] = [f"cli{i}", "baseline"]
            data = values.dumps(record, what=path).encode()
        elif op == "module":
            path = layout.module_path(("action", name), "tracking")
            record = values.loads((root / path).read_bytes(), what=path)
            record["fps"] = 200 + i
            data = values.dumps(record, what=path).encode()
        else:
            record = {
                "text": f"cli note {i}",
                "user": "bench",
                "datetime": dt.datetime(2031, 1, 1) + dt.timedelta(seconds=i),
            }
            path = layout.message_path("action", name, _message_id(record))
            data = values.dumps(record, what=path).encode()
        full = root / path
        message = f"action {name!r}: {op} (git CLI)"
        os.sync()
        start = time.perf_counter()
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
        subprocess.run(["git", "add", path], cwd=root, env=self.env, check=True, timeout=GIT_TIMEOUT)
        subprocess.run(
            ["git", "commit", "-q", "-m", message], cwd=root, env=self.env, check=True, timeout=GIT_TIMEOUT
        )
        elapsed = time.perf_counter() - start
        self._record("git_cli", op, elapsed, measured)

    def run(self, names: dict[str, dict[str, list[str]]], reps: int) -> None:
        """Alternate blocks of expipe_git and git CLI repetitions, op by op."""
        for op in OPS:
            todo = {tool: list(names[tool][op]) for tool in self.TOOLS}
            counters = {"expipe_git": 0, "git_cli": 0}
            for tool in self.TOOLS:  # warm-up, not recorded
                for _ in range(WARMUP):
                    getattr(self, tool)(op, todo[tool].pop(), counters[tool], measured=False)
                    counters[tool] += 1
            done = 0
            while done < reps:
                block = min(BLOCK, reps - done)
                for tool in self.TOOLS:
                    for _ in range(block):
                        getattr(self, tool)(op, todo[tool].pop(), counters[tool], measured=True)
                        counters[tool] += 1
                done += block


def profile_mutations(root: pathlib.Path, names: list[str], out: pathlib.Path) -> pathlib.Path:
    """cProfile `reps` tag sets by expipe_git; return the stats file."""
    import cProfile

    project = expipe_git.get_project(root)
    actions = [project.actions[n] for n in names]
    actions[0].tags = ["profile-warmup"]
    profiler = cProfile.Profile()
    profiler.enable()
    for i, action in enumerate(actions[1:]):
        action.tags = [f"profile{i}", "baseline"]
    profiler.disable()
    profiler.dump_stats(out)
    return out


def phase_breakdown(root: pathlib.Path, names: list[str]) -> dict[str, float]:
    """Median wall time of each step of Repository.mutate over tag sets, without a profiler.

    cProfile inflates code that makes many small calls (the index scan); this
    wraps the steps with perf_counter instead. Steps absent from the library
    version under test are skipped.
    """
    from expipe_git.git import Repository
    from expipe_git.git import index as gitindex

    current: dict[str, float] = {}
    restore = []

    def wrap(owner, attr: str, label: str) -> None:
        func = getattr(owner, attr, None)
        if func is None:
            return

        def timed(*a, **k):
            start = time.perf_counter()
            try:
                return func(*a, **k)
            finally:
                current[label] = current.get(label, 0.0) + time.perf_counter() - start

        restore.append((owner, attr, func))
        setattr(owner, attr, timed)

    original_mutate = Repository.mutate

    def mutate(self, build, *a, **k):
        def timed_build(snap):
            start = time.perf_counter()
            try:
                return build(snap)
            finally:
                current[BUILD_LABEL] = current.get(BUILD_LABEL, 0.0) + time.perf_counter() - start

        return original_mutate(self, timed_build, *a, **k)

    owners = {
        "Repository": Repository,
        "gitindex": gitindex,
        "IndexFile": getattr(gitindex, "IndexFile", None),
    }
    steps = [(owners[o], attr, label) for o, attr, label in MUTATE_STEPS if owners[o] is not None]
    top_level = [label for owner, attr, label in steps if not label.startswith(" ")]
    totals: dict[str, list[float]] = {}
    try:
        Repository.mutate = mutate
        for owner, attr, label in steps:
            wrap(owner, attr, label)
        project = expipe_git.get_project(root)
        actions = [project.actions[n] for n in names]
        actions[0].tags = ["breakdown-warmup"]
        for i, action in enumerate(actions[1:]):
            current.clear()
            start = time.perf_counter()
            action.tags = [f"breakdown{i}", "baseline"]
            total = time.perf_counter() - start
            accounted = sum(v for k, v in current.items() if k in top_level or k == BUILD_LABEL)
            current[REST_LABEL] = total - accounted
            current[TOTAL_LABEL] = total
            for k, v in current.items():
                totals.setdefault(k, []).append(v)
    finally:
        Repository.mutate = original_mutate
        for owner, attr, func in reversed(restore):
            setattr(owner, attr, func)
    return {k: statistics.median(v) for k, v in totals.items()}


# The steps of Repository.mutate, in the order it runs them, for phase_breakdown().
# Labels that start with spaces run inside an earlier step and are not added
# to the sum; steps a library version lacks are left out.
BUILD_LABEL = "build: read record, change it, encode TOML"
REST_LABEL = "lock, marker, Python glue (rest)"
TOTAL_LABEL = "TOTAL action.tags = [...]"
MUTATE_STEPS = [
    ("Repository", "_recover_dead_writer", "_recover_dead_writer"),
    ("Repository", "_finish_interrupted", "_finish_interrupted (journal check)"),
    ("Repository", "_check_repository_state", "_check_repository_state"),
    ("IndexFile", "__init__", "gitindex.IndexFile(...) (read + parse the index)"),
    ("Repository", "_effective", "_effective (hash new contents)"),
    ("Repository", "_refuse_hand_edits", "_refuse_hand_edits (hash working-tree files)"),
    ("Repository", "_write_commit", "_write_commit (blobs, trees, commit; fsync)"),
    ("Repository", "_journal", "_journal"),
    ("Repository", "_swap_branch", "_swap_branch (ref + reflog)"),
    ("Repository", "_sync_worktree", "_sync_worktree (file + index)"),
    ("gitindex", "patch", "  in it: gitindex.patch"),
    ("IndexFile", "apply", "  in it: IndexFile.apply (splice + write)"),
    ("gitindex", "write_atomic", "    in that: gitindex.write_atomic (write the index)"),
    ("IndexFile", "_load", "  anywhere: IndexFile._load (parse the whole index)"),
    ("Repository", "_clear_journal", "_clear_journal"),
]
BREAKDOWN_ORDER = [
    *(label for _, _, label in MUTATE_STEPS[:4]),
    BUILD_LABEL,
    *(label for _, _, label in MUTATE_STEPS[4:]),
    REST_LABEL,
    TOTAL_LABEL,
]


def print_breakdown(breakdown: dict[str, float], title: str, text_out: pathlib.Path) -> None:
    lines = [f"== {title} (median ms per mutation, wall clock, no profiler)"]
    total = breakdown.get(TOTAL_LABEL, 0.0)
    order = {label: k for k, label in enumerate(BREAKDOWN_ORDER)}
    for label, value in sorted(breakdown.items(), key=lambda kv: order.get(kv[0], len(order) - 2)):
        share = f"{100 * value / total:5.1f}%" if total else ""
        lines.append(f"{label:<55} {value * 1e3:8.2f} ms {share}")
    text = "\n".join(lines)
    text_out.write_text(text + "\n")
    log(text)


def print_profile(stats_file: pathlib.Path, title: str, text_out: pathlib.Path, top: int = 25) -> None:
    import io
    import pstats

    buf = io.StringIO()
    stats = pstats.Stats(str(stats_file), stream=buf)
    stats.strip_dirs()
    buf.write(f"== {title}: by cumulative time\n")
    stats.sort_stats("cumulative").print_stats(top)
    buf.write(f"== {title}: by own time\n")
    stats.sort_stats("tottime").print_stats(top)
    text = "\n".join(line for line in buf.getvalue().splitlines() if line.strip())
    text_out.write_text(text + "\n")
    log(text)


# -- reading -----------------------------------------------------------------------


def read_once(
    python: pathlib.Path,
    lib: str,
    root: pathlib.Path,
    env: dict[str, str],
    passes: int,
    profile: pathlib.Path | None = None,
    breakdown: bool = False,
) -> dict:
    cmd = [str(python), str(READER), lib, str(root), "--passes", str(passes)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    if breakdown:
        cmd.append("--breakdown")
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=READ_TIMEOUT)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{lib} reader failed:\n{result.stderr[-3000:]}")
    lines = result.stdout.strip().splitlines()
    data = json.loads(lines[-1])
    data["wall_s"] = wall
    for line in lines[:-1]:
        if line.startswith('{"breakdown_s"'):
            data.update(json.loads(line))
    return data


# -- one size ------------------------------------------------------------------------


def run_size(n: int, args, tmp: pathlib.Path, env: dict[str, str], e06_python: pathlib.Path | None) -> dict:
    log(f"\n=== N = {n} actions ===")
    work = tmp / f"n{n}"
    work.mkdir()
    records = action_records(n, args.seed)
    result: dict = {"n": n, "setup": {}}

    egit_root = work / "egit"
    result["setup"]["expipe_git"] = build_expipe_git(egit_root, records, env)
    log(f"setup expipe_git: {result['setup']['expipe_git']}")
    e06_root = work / "e06"
    if e06_python is not None:
        result["setup"]["expipe06"] = build_expipe06(e06_root, records)
        log(f"setup expipe 0.6: {result['setup']['expipe06']}")
    del records

    # Reads first, while both projects hold the same data: their digests must agree.
    reads: dict[str, list[dict]] = {"expipe_git": [], "expipe06": []}
    log(f"reading tags of every action, {args.read_reps} fresh processes each ...")
    t0 = time.perf_counter()
    for _ in range(args.read_reps):
        reads["expipe_git"].append(read_once(pathlib.Path(sys.executable), "expipe_git", egit_root, env, 2))
        if e06_python is not None:
            reads["expipe06"].append(read_once(e06_python, "expipe", e06_root, env, 1))
    log(f"  done in {time.perf_counter() - t0:.0f} s")
    for lib, runs in reads.items():
        for run in runs:
            if run["n"] != n:
                raise RuntimeError(f"{lib} read {run['n']} actions, expected {n}")
    digests = {run["digest"] for runs in reads.values() for run in runs}
    if len(digests) != 1:
        raise RuntimeError(f"the libraries read different tags: {digests}")
    result["read"] = {
        lib: {
            "fresh_s": summary([r["passes_s"][0] for r in runs]),
            "warm_s": summary([r["passes_s"][1] for r in runs]) if len(runs[0]["passes_s"]) > 1 else None,
            "import_s": summary([r["import_s"] for r in runs]),
            "process_wall_s": summary([r["wall_s"] for r in runs]),
            "raw": runs,
        }
        for lib, runs in reads.items()
        if runs
    }

    # Mutations: distinct random actions for every repetition of every tool.
    rng = random.Random(args.seed + n)
    per = args.reps + WARMUP
    needed = per * len(OPS) * 3
    pool = rng.sample(action_names(n), needed) if n >= needed else rng.choices(action_names(n), k=needed)
    names: dict[str, dict[str, list[str]]] = {}
    for k, tool in enumerate(("expipe_git", "git_cli", "expipe06")):
        names[tool] = {
            op: [pool[(k * len(OPS) + j) * per + r] for r in range(per)] for j, op in enumerate(OPS)
        }
    log(
        f"mutations: {args.reps} repetitions each, expipe_git and git CLI alternating "
        f"in blocks of {BLOCK} ..."
    )
    t0 = time.perf_counter()
    cli_root = work / "gitcli"
    shutil.copytree(egit_root, cli_root, symlinks=True)
    git(cli_root, env, "update-index", "-q", "--refresh")  # the copy has new inode numbers
    roots = {"expipe_git": egit_root, "git_cli": cli_root}
    mut = Mutations(roots, env)
    mut.run(names, args.reps)
    for root in roots.values():
        assert_clean(root, env)
        git(root, env, "fsck", "--connectivity-only", "--no-progress")
    shutil.rmtree(cli_root)
    log(f"  done in {time.perf_counter() - t0:.0f} s; git status clean, git fsck ok")
    result["mutations"] = {
        tool: {
            op: {key: {**summary(vals), "raw": vals} for key, vals in buckets.items()}
            for op, buckets in ops.items()
        }
        for tool, ops in mut.samples.items()
    }

    if e06_python is not None:
        jobs = tmp / f"jobs-{n}.json"
        jobs.write_text(json.dumps({"warmup": WARMUP, "ops": names["expipe06"]}))
        proc = subprocess.run(
            [str(e06_python), str(EXPIPE06_OPS), str(e06_root), str(jobs)],
            env=env,
            capture_output=True,
            text=True,
            timeout=READ_TIMEOUT,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"expipe 0.6 mutations failed:\n{proc.stderr[-3000:]}")
        e06 = json.loads(proc.stdout.strip().splitlines()[-1])
        result["mutations"]["expipe06"] = {
            op: {"latency_s": {**summary(vals), "raw": vals}} for op, vals in e06.items()
        }

    if args.profile:
        out = HERE / "out"
        out.mkdir(exist_ok=True)
        prof_names = rng.sample(action_names(n), min(n, args.reps + 1))
        breakdown = phase_breakdown(egit_root, rng.sample(action_names(n), min(n, args.reps + 1)))
        result["mutation_breakdown_s"] = breakdown
        print_breakdown(
            breakdown,
            f"expipe_git: where one action.tags = [...] spends its time at N={n}",
            out / f"breakdown-mutation-{n}.txt",
        )
        stats = profile_mutations(egit_root, prof_names, tmp / f"mutate-{n}.prof")
        print_profile(
            stats,
            f"expipe_git: {len(prof_names) - 1} x action.tags = [...] at N={n}",
            out / f"profile-mutation-{n}.txt",
        )
        runs = [
            read_once(pathlib.Path(sys.executable), "expipe_git", egit_root, env, 1, breakdown=True)
            for _ in range(5)
        ]
        labels = list(runs[0]["breakdown_s"])
        read_breakdown = {k: statistics.median(r["breakdown_s"][k] for r in runs) for k in labels}
        result["read_breakdown_s"] = read_breakdown
        total = read_breakdown["TOTAL pass 1"]
        lines = [
            f"== expipe_git: where a fresh-process read of every action's tags spends its time at N={n}"
            " (median of 5 processes, wall clock, no profiler)"
        ]
        lines += [f"{k:<55} {v * 1e3:9.1f} ms {100 * v / total:5.1f}%" for k, v in read_breakdown.items()]
        (out / f"breakdown-read-{n}.txt").write_text("\n".join(lines) + "\n")
        log("\n".join(lines))
        stats = tmp / f"read-{n}.prof"
        read_once(pathlib.Path(sys.executable), "expipe_git", egit_root, env, 1, profile=stats)
        print_profile(
            stats,
            f"expipe_git: fresh-process read of every action's tags at N={n}",
            out / f"profile-read-{n}.txt",
        )

    print_table(result)
    return result


# -- reporting ------------------------------------------------------------------------


def fmt_time(s: dict | None) -> str:
    if not s:
        return "—"
    med, hi = s["median"], s["p90"]
    if med >= 1:
        return f"{med:.2f} s (p90 {hi:.2f})"
    return f"{med * 1e3:.1f} ms (p90 {hi * 1e3:.1f})"


def fmt_bytes(s: dict | None) -> str:
    if not s:
        return "—"
    return f"{s['median'] / 1024:.1f} KiB (p90 {s['p90'] / 1024:.1f})"


def ratio(a: dict | None, b: dict | None) -> str:
    """Median of a over median of b: above 1x, expipe_git (b) is faster."""
    if not a or not b or not b["median"]:
        return "—"
    r = a["median"] / b["median"]
    return f"{r:.1f}x" if r >= 0.95 else f"{r:.2f}x (1/{1 / r:.0f})"


def table_rows(result: dict) -> list[tuple[str, str, str, str, str, str]]:
    mut = result["mutations"]
    e06 = mut.get("expipe06", {})
    rows = []
    for op in OPS:
        g = mut["expipe_git"][op]["latency_s"]
        c = mut["git_cli"][op]["latency_s"]
        o = e06.get(op, {}).get("latency_s")
        rows.append((OP_LABEL[op], fmt_time(g), fmt_time(c), fmt_time(o), ratio(c, g), ratio(o, g)))
    for op in OPS:
        g = mut["expipe_git"][op]["growth_bytes"]
        c = mut["git_cli"][op]["growth_bytes"]
        rows.append((f"growth/commit, {op} (du -b)", fmt_bytes(g), fmt_bytes(c), "—", ratio(c, g), "—"))
    g = mut["expipe_git"]["attribute"]["growth_disk_bytes"]
    c = mut["git_cli"]["attribute"]["growth_disk_bytes"]
    rows.append(
        ("growth/commit, attribute (du, 4 KiB blocks)", fmt_bytes(g), fmt_bytes(c), "—", ratio(c, g), "—")
    )
    read = result["read"]
    g, o = read["expipe_git"], read.get("expipe06")
    rows.append(
        (
            "read all tags, fresh process",
            fmt_time(g["fresh_s"]),
            "—",
            fmt_time(o and o["fresh_s"]),
            "—",
            ratio(o and o["fresh_s"], g["fresh_s"]),
        )
    )
    rows.append(("read all tags, warm (2nd pass)", fmt_time(g["warm_s"]), "—", "—", "—", "—"))
    rows.append(
        (
            "  same, whole process incl. start + import",
            fmt_time(g["process_wall_s"]),
            "—",
            fmt_time(o and o["process_wall_s"]),
            "—",
            ratio(o and o["process_wall_s"], g["process_wall_s"]),
        )
    )
    return rows


HEADER = (
    "operation",
    "expipe_git",
    "git CLI",
    "expipe 0.6",
    "git CLI / expipe_git",
    "expipe 0.6 / expipe_git",
)


def print_table(result: dict) -> None:
    rows = [HEADER, *table_rows(result)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    log(f"\nN = {result['n']} actions: median (p90)")
    for k, row in enumerate(rows):
        log(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if k == 0:
            log("-+-".join("-" * w for w in widths))


def targets(result: dict) -> list[tuple[str, bool, str]]:
    mut = result["mutations"]
    checks = []
    for op in OPS:
        g = mut["expipe_git"][op]["latency_s"]["median"]
        c = mut["git_cli"][op]["latency_s"]["median"]
        checks.append((f"{op}: median <= 20 ms", g <= 0.020, f"{g * 1e3:.1f} ms"))
        checks.append((f"{op}: >= 5x faster than git CLI", c / g >= 5, f"{c / g:.1f}x"))
        grow = mut["expipe_git"][op]["growth_bytes"]["median"]
        checks.append((f"{op}: growth <= 20 KB/commit (du -b)", grow <= 20_000, f"{grow / 1000:.1f} kB"))
    read = result["read"]
    if "expipe06" in read:
        g = read["expipe_git"]["fresh_s"]["median"]
        o = read["expipe06"]["fresh_s"]["median"]
        checks.append(
            (
                "read all tags (fresh process) >= 10x faster than expipe 0.6",
                o / g >= 10,
                f"{o / g:.1f}x ({g * 1e6 / result['n']:.0f} vs {o * 1e6 / result['n']:.0f} us/action)",
            )
        )
    return checks


def print_targets(results: dict) -> None:
    log("\n=== targets (they apply at N = 10 000; other sizes for information) ===")
    for n, result in results["sizes"].items():
        for label, ok, value in targets(result):
            verdict = ("MET   " if ok else "MISSED") if int(n) == 10_000 else "(info)"
            log(f"N={n:>6}  {verdict}  {label}: {value}")


def report(path: str) -> int:
    """Print the tables and targets of a saved results file again."""
    results = json.loads(pathlib.Path(path).read_text())
    log(f"{results['command']}\n{json.dumps(results['machine'])}")
    for result in results["sizes"].values():
        print_table(result)
    print_targets(results)
    return 0


def describe_machine() -> dict:
    info = {
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git": subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip(),
    }
    try:
        import dulwich

        info["dulwich"] = ".".join(map(str, dulwich.__version__))
    except Exception:  # pragma: no cover - informational only
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated numbers of actions")
    parser.add_argument("--big", action="store_true", help="add N = 100000 (slow: builds 300 000 files)")
    parser.add_argument("--reps", type=int, default=30, help="repetitions of each mutation (default 30)")
    parser.add_argument(
        "--read-reps", type=int, default=30, help="fresh-process reads per library (default 30)"
    )
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--no-expipe06", action="store_true", help="skip the expipe 0.6 baseline")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile expipe_git's tag set and fresh read (bench/out/profile-*.txt)",
    )
    parser.add_argument("--tmpdir", help="where to build the projects (default: the system temp folder)")
    parser.add_argument(
        "--json", default=str(HERE / "out" / "results.json"), help="where to write raw results"
    )
    parser.add_argument("--report", metavar="JSON", help="only print the tables of a saved results file")
    args = parser.parse_args(argv)
    if args.report:
        return report(args.report)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.big and 100_000 not in sizes:
        sizes.append(100_000)
    if args.reps < 1 or args.read_reps < 1:
        parser.error("--reps and --read-reps must be positive")

    # SIGTERM/SIGHUP end the run like Ctrl-C, so the finally below cleans up.
    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)

    started = time.perf_counter()
    e06_python = None if args.no_expipe06 else ensure_expipe_venv(dict(os.environ))
    python = os.path.relpath(sys.executable, REPO) if sys.executable.startswith(str(REPO)) else sys.executable
    command = " ".join([python, "bench/bench_core.py", *(sys.argv[1:] if argv is None else argv)])
    results = {
        "machine": describe_machine(),
        "command": command,
        "reps": args.reps,
        "read_reps": args.read_reps,
        "sizes": {},
    }
    saved_env = dict(os.environ)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="expipe-git-bench-", dir=args.tmpdir))
    try:
        results["machine"].update(load_library(tmp))
        log(json.dumps(results["machine"]))
        env = isolated_env(tmp)
        os.environ.clear()
        os.environ.update(env)  # expipe_git in this process sees the same HOME and identity
        if e06_python is not None:
            version = subprocess.run(
                [str(e06_python), "-c", "import expipe; print(expipe.__version__)"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            ).stdout.strip()
            results["machine"]["expipe06"] = version
        for n in sizes:
            results["sizes"][str(n)] = run_size(n, args, tmp, env, e06_python)
            shutil.rmtree(tmp / f"n{n}", ignore_errors=True)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        shutil.rmtree(tmp, ignore_errors=True)
    results["total_s"] = time.perf_counter() - started
    results["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    print_targets(results)
    out = pathlib.Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    log(f"\nraw results: {out}; total time {results['total_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
