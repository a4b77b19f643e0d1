#!/usr/bin/env python3
"""Benchmark the pages of ``expipe-git serve`` on a large project.

    .venv/bin/pip install -q -e '.[web]'
    .venv/bin/python bench/bench_web.py                  # 10 000 actions, 1 000 commits of one object
    .venv/bin/python bench/bench_web.py --keep /tmp/big  # also leave the project there to look at

The project is built with ``git fast-import`` (10 000 actions through the API
would take minutes): one commit creates N actions (attributes with type,
location, tags, users, entities and datetime; a ``tracking`` module with
quantities; one message each), then each further commit changes one key of the
same action's module (``rec-000042``, 1 000 commits in all), by one of three
authors, spread over 60 days. ``git status`` is checked clean afterwards.

The server runs in this process (uvicorn on 127.0.0.1, a free port) and is
asked over HTTP. Every page reports the time the server spent building it in a
``Server-Timing`` header (``app;dur=<ms>``); the table shows that server time
and the whole round trip as the client saw it. The first request of each page
is reported apart ("first"): it fills the caches of a new snapshot. The server
reads the actions table and indexes the history as it starts; the benchmark
asks its first question at once, so the first requests wait for that work
(the cold cost). Last, one commit is made through the API before each of four
requests, each of which then reads a new snapshot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import quantities as pq  # noqa: E402

import expipe_git  # noqa: E402
from expipe_git import layout, values  # noqa: E402

BASE = dt.datetime(2026, 9, 1, 8, 0, 0)
USERS = ("alice", "bob", "carol")
AUTHORS = ("Alice Smith <alice@lab.org>", "Bob Jones <bob@lab.org>", "Carol Wu <carol@lab.org>")
TYPES = ("recording", "surgery", "analysis")
LOCATIONS = ("room 1", "room 2", "rig A")
TARGET = "rec-000042"


def git(root: pathlib.Path, env: dict, *args: str, stdin: bytes | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=root, env=env, input=stdin, capture_output=True, check=True)
    return result.stdout.decode()


def isolated_env(tmp: pathlib.Path) -> dict:
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", LC_ALL="C")
    return env


def build(root: pathlib.Path, env: dict, actions: int, commits: int, seed: int) -> float:
    """Create the project and its history with git fast-import; return the seconds it took."""
    start = time.perf_counter()
    os.environ.update({k: env[k] for k in ("HOME", "GIT_CONFIG_NOSYSTEM")})
    expipe_git.create_project(root).close()
    rng = random.Random(seed)
    out: list[bytes] = []
    mark = 0

    def blob(data: bytes) -> bytes:
        return b"data %d\n%s\n" % (len(data), data)

    def commit(message: str, files: dict[str, bytes], when: dt.datetime, author: str) -> None:
        nonlocal mark
        mark += 1
        stamp = int(when.replace(tzinfo=dt.timezone.utc).timestamp())
        out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.append(b"author %s %d +0000\n" % (author.encode(), stamp))
        out.append(b"committer %s %d +0000\n" % (author.encode(), stamp))
        out.append(blob(message.encode()))
        if mark == 1:
            out.append(b"from refs/heads/main^0\n")
        for path, data in files.items():
            out.append(b"M 100644 inline %s\n" % path.encode() + blob(data))

    files: dict[str, bytes] = {}
    for i in range(20):
        files[layout.attributes_path("entity", f"rat{i}")] = values.dumps(
            {"registered": BASE, "type": "subject", "tags": ["rat"]}, what="entity"
        ).encode()
    module = {"depth": 2.0 * pq.um, "fps": 30, "gain": 1.5, "probe": {"x": 1, "y": 2}}
    for i in range(actions):
        name = f"rec-{i:06d}"
        when = BASE + dt.timedelta(minutes=i)
        user = rng.choice(USERS)
        attributes = {
            "registered": when,
            "type": rng.choice(TYPES),
            "location": rng.choice(LOCATIONS),
            "tags": [f"tag{rng.randrange(20)}", "baseline"],
            "users": [user],
            "entities": [f"rat{rng.randrange(20)}"],
            "datetime": when,
        }
        files[layout.attributes_path("action", name)] = values.dumps(attributes, what=name).encode()
        files[layout.module_path(("action", name), "tracking")] = values.dumps(module, what=name).encode()
        message = {"text": f"note {i}", "user": user, "datetime": when}
        message_id = when.strftime("%Y%m%dT%H%M%S") + f"-{i:08x}"
        files[layout.message_path("action", name, message_id)] = values.dumps(message, what=name).encode()
    commit(f"import {actions} actions", files, BASE, AUTHORS[0])
    target = dict(module, probe=dict(module["probe"]))
    path = layout.module_path(("action", TARGET), "tracking")
    for i in range(commits - 1):
        when = BASE + dt.timedelta(days=60 * (i + 1) / commits, seconds=i)
        key = rng.choice(["depth", "gain", "probe.x"])
        if key == "depth":
            target["depth"] = round(rng.uniform(1, 9), 2) * pq.um
        elif key == "gain":
            target["gain"] = round(rng.uniform(0, 3), 3)
        else:
            target["probe"]["x"] = i
        message = layout.commit_message(("action", TARGET, "module", "tracking"), f"set {key}")
        data = values.dumps(target, what=TARGET).encode()
        commit(message, {path: data}, when, AUTHORS[rng.randrange(len(AUTHORS))])
    out.append(b"done\n")
    git(root, env, "fast-import", "--quiet", "--done", stdin=b"".join(out))
    git(root, env, "reset", "-q", "--hard")
    if git(root, env, "status", "--porcelain"):
        raise RuntimeError("git status is not clean after the build")
    return time.perf_counter() - start


def ask(url: str) -> tuple[float, float, int]:
    """Return (server ms, round-trip ms, bytes) of one GET."""
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
        timing = response.headers.get("Server-Timing", "")
    total = (time.perf_counter() - start) * 1000
    found = re.search(r"dur=([0-9.]+)", timing)
    if not found:
        raise RuntimeError(f"{url} sent no Server-Timing header")
    return float(found.group(1)), total, len(body)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--commits", type=int, default=1000, help="commits of the one object followed")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tmpdir", default=None)
    parser.add_argument("--keep", metavar="DIR", help="copy the built project to DIR")
    args = parser.parse_args()

    from expipe_git.web import app as web_app

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-web-", dir=args.tmpdir))
    try:
        env = isolated_env(tmp)
        root = tmp / "project"
        print(f"building {args.actions} actions, {args.commits} commits of {TARGET} ...", flush=True)
        print(f"  built in {build(root, env, args.actions, args.commits, args.seed):.1f} s", flush=True)
        if args.keep:
            shutil.copytree(root, args.keep)
        server = web_app.ServerThread(expipe_git.get_project(root), "127.0.0.1", 0)
        try:
            pages = {
                "home": "/",
                "actions (first 50 of all, by name)": "/actions",
                "actions sorted by date, newest first": "/actions?sort=-datetime",
                "actions filtered by tag": "/actions?tags=tag3",
                "actions, last page": f"/actions?page={args.actions // 50}",
                "actions CSV (all rows)": "/actions.csv",
                f"history of action {TARGET} ({args.commits} commits)": f"/action/{TARGET}/history",
                "history of its module": f"/action/{TARGET}/module/tracking/history",
                f"action {TARGET}": f"/action/{TARGET}",
                f"action at HEAD~{args.commits // 2}": f"/action/{TARGET}?at=HEAD~{args.commits // 2}",
                "history of action rec-000007 (its one commit: the import)": "/action/rec-000007/history",
            }
            import_commit = expipe_git.get_project(root).log()[-2].id
            print(f"\n{'page':<48} {'first':>9} {'server median (p90)':>22} {'round trip':>11} {'size':>9}")
            for label, path in pages.items():
                first, _, _ = ask(server.url + path.lstrip("/"))
                samples = [ask(server.url + path.lstrip("/")) for _ in range(args.reps)]
                server_ms = sorted(s[0] for s in samples)
                p90 = server_ms[min(len(server_ms) - 1, int(0.9 * len(server_ms)))]
                trip = statistics.median(s[1] for s in samples)
                print(
                    f"{label:<48} {first:>7.0f}ms {statistics.median(server_ms):>12.0f} ms ({p90:>4.0f})"
                    f" {trip:>8.0f} ms {samples[0][2] / 1024:>6.0f} KB",
                    flush=True,
                )
            # The import commit changed 30,000 records: a few samples are enough.
            label = f"commit page of the import ({3 * args.actions:,} records)"
            samples = [ask(f"{server.url}commit/{import_commit}") for _ in range(3)]
            again = statistics.median(s[0] for s in samples[1:])
            print(f"{label:<48} {samples[0][0]:>7.0f}ms {again:>12.0f} ms")
            # A commit moves HEAD: the next request reads a new snapshot. Its actions table is the
            # last one updated by what changed (project.diff), not read again.
            writer = expipe_git.get_project(root)
            print(f"\n{'after one commit (a new snapshot)':<48} {'first':>9}")
            after = (
                ("actions", "/actions"),
                ("actions filtered by tag", "/actions?tags=tag3"),
                ("home", "/"),
                ("action", f"/action/{TARGET}"),
            )
            for i, (label, path) in enumerate(after):
                writer.actions[f"rec-{i:06d}"].tags = ["changed", f"round {i}"]
                first, _, _ = ask(server.url + path.lstrip("/"))
                print(f"{label:<48} {first:>7.0f}ms", flush=True)
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
