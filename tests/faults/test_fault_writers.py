"""Writers killed with SIGKILL while others keep writing: nothing acknowledged is lost.

Four writer processes mutate one project at once (tags on a shared action,
messages, module keys, and transactions of two changes); a seeded killer
SIGKILLs one of them at a random moment and starts a new one in its place,
again and again. Every writer reports each call that returned
(acknowledged) and every exception it saw. A killed writer never makes
another one fail: the survivors see no error at all, and every acknowledged
change is at HEAD afterwards.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

from conftest import assert_clean, commits
from faultkit import budget, report, rng, setup_shared, state_at_head

import expipe_git

WORKERS = 4

# ``python -c WRITER path worker run``: mutates until killed. Prints "ready",
# then one JSON line per acknowledged call ({"ack": [[kind, item], ...]}) and
# one per exception ({"error": "Type: message"}); kinds index state_at_head.
WRITER = textwrap.dedent(
    """
    import itertools, json, sys
    import expipe_git
    path, worker, run = sys.argv[1], sys.argv[2], sys.argv[3]
    project = expipe_git.get_project(path)
    shared = project.actions["shared"]
    own = project.actions["own-" + worker]
    module = shared.modules["shared"]
    print("ready", flush=True)
    for j in itertools.count():
        name = f"w{worker}r{run}n{j}"
        try:
            if j % 4 == 0:
                shared.tags.append(name)
                done = [[0, name]]
            elif j % 4 == 1:
                own.create_message(name)
                done = [[1, name]]
            elif j % 4 == 2:
                module[name] = j
                done = [[2, name]]
            else:
                with project.transaction("two changes"):
                    shared.tags.append(name + "t")
                    own.create_message(name + "m")
                done = [[0, name + "t"], [1, name + "m"]]
        except Exception as exc:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
            continue
        print(json.dumps({"ack": done}), flush=True)
    """
)


def read_report(path: pathlib.Path) -> tuple[list[tuple[int, str]], list[str]]:
    """Acknowledged items and errors of one writer (a killed one may leave half a line)."""
    acks, errors = [], []
    for line in path.read_text().split("\n")[:-1]:
        if line == "ready":
            continue
        entry = json.loads(line)
        acks += [tuple(pair) for pair in entry.get("ack", [])]
        if "error" in entry:
            errors.append(entry["error"])
    return acks, errors


def test_writers_killed_at_random_lose_nothing_and_disturb_nobody(project, tmp_path):
    path = project.path
    setup_shared(project, WORKERS)
    random = rng("writers_killed")
    kills = budget(60)
    outputs: list[pathlib.Path] = []
    running: dict[int, tuple[subprocess.Popen, pathlib.Path]] = {}

    def start(worker: int, run: int) -> None:
        out = tmp_path / f"writer-{worker}-{run}.out"
        outputs.append(out)
        with open(out, "w") as stdout, open(tmp_path / f"writer-{worker}-{run}.err", "w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(path), str(worker), str(run)], stdout=stdout, stderr=stderr
            )
        running[worker] = (proc, out)

    # Each writer lives a random time after it is ready (importing Python
    # takes longer than a mutation: a kill then would hit no mutation).
    deadlines: dict[int, float] = {}
    done = 0
    try:
        for worker in range(WORKERS):
            start(worker, 0)
        give_up = time.monotonic() + 60 * kills
        while done < kills:
            assert time.monotonic() < give_up, "the writers stopped starting"
            time.sleep(0.005)
            now = time.monotonic()
            for worker, (proc, out) in sorted(running.items()):
                if worker not in deadlines:
                    if out.read_text().startswith("ready"):
                        deadlines[worker] = now + random.uniform(0.0, 0.5)
                elif now >= deadlines[worker]:
                    del deadlines[worker]
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=30)
                    done += 1
                    start(worker, done)
    finally:
        for proc, _ in running.values():
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

    acks, errors = [], []
    for out in outputs:
        mine, theirs = read_report(out)
        acks += mine
        errors += theirs
    found = state_at_head(path)
    lost = [item for kind, item in acks if item not in found[kind]]
    report("writers_killed", kills=kills, acknowledged=len(acks), lost=len(lost), spurious_errors=len(errors))
    # The project works, and after one more change stock git finds it clean.
    with commits(path, 1):
        expipe_git.get_project(path).actions["shared"].tags.append("after the kills")
    assert acks
    assert not lost, f"{len(lost)} acknowledged changes are missing: {lost[:10]}"
    assert not errors, f"{len(errors)} errors in writers nobody killed: {sorted(set(errors))[:10]}"
    git_dir = pathlib.Path(path) / ".git"
    assert (git_dir / "expipe-git" / "write-mutex").exists()
    assert not [name for name in os.listdir(git_dir / "expipe-git") if name.startswith("write-object")]
    assert_clean(path)


def test_recovery_keeps_the_lock_file_and_files_of_live_processes(project, tmp_path):
    """After a dead writer, recovery removed every write-* file: the lock file a
    waiting writer had open (two writers then held "the" lock) and the temporary
    files of live writers."""
    state = pathlib.Path(project.path) / ".git" / "expipe-git"
    action = project.require_action("rec")
    lock_inode = (state / "write-mutex").stat().st_ino
    pid_script = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", pid_script], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited and reaped: provably gone
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (state / "writer").write_text(str(dead_pid))  # the marker a killed writer leaves
        for pid in (dead_pid, live.pid):
            (state / f"write-object-{pid}-1").write_bytes(b"half an object")
            (state / f"write-{pid}-1").write_bytes(b"half a record")
        with commits(project.path, 1):
            action.tags.append("x")
        left = sorted(name for name in os.listdir(state) if name.startswith("write-"))
        assert left == sorted(["write-mutex", f"write-object-{live.pid}-1", f"write-{live.pid}-1"])
        assert (state / "write-mutex").stat().st_ino == lock_inode
    finally:
        live.kill()
        live.wait()
