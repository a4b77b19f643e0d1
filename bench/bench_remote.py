#!/usr/bin/env python3
"""Benchmark clone, pull (fetch + fast-forward) and push against the git CLI.

    .venv/bin/python bench/bench_remote.py                 # 10 000 actions in 10 000 commits, 3 reps
    .venv/bin/python bench/bench_remote.py --actions 2000 --reps 5
    .venv/bin/python bench/bench_remote.py --transports file    # a folder remote, no server

The project is made with ``git fast-import`` in the documented layout (one
commit per new action, as expipe_git makes them), served from a bare
repository by ``git daemon`` and by smart HTTP (``git http-backend`` behind
basic auth; tests/gitservers.py), both on 127.0.0.1. Each operation is timed
for expipe_git and for the git CLI, alternating, in the same run:

- clone: ``expipe_git.clone(url, dir)`` / ``git clone url dir``;
- pull: a clone that is ``--behind`` commits behind fetches them and
  fast-forwards (``project.pull()`` / ``git pull --ff-only``);
- pull, merge: the same clone with as many commits of its own (new actions
  of another name) fetches and merges (``project.pull()`` / ``git pull
  --no-rebase``): a two-parent merge commit, and the new files checked out;
- push: the whole history into a new empty bare repository
  (``project.push()`` / ``git push url main``), and ``--behind`` new commits
  into a repository that has the rest;
- push all, loose: the whole history again, from a clone whose objects are
  all loose files, as an API-written project's are until ``git gc``: both
  tools must compress every object and find deltas themselves.

Medians (and the slowest run) are printed; the ratio is expipe_git / git CLI.
Everything runs in a temporary folder with its own HOME, removed at the end.
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
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

from gitservers import GitDaemon, HttpServer, make_bare  # noqa: E402

import expipe_git  # noqa: E402
from expipe_git import layout  # noqa: E402

USER, PASSWORD = "bench", "bench-password"


def run(*args: str, cwd: pathlib.Path | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fast_import_stream(actions: int, prefix: str = "rec", parent: str | None = None) -> bytes:
    """One commit per new action named ``prefix-NNNNN``; the first creates the project.

    With ``parent``, the commits go on top of that commit instead, and the
    project exists already.
    """
    out = []
    when = 1_700_000_000 if parent is None else 1_800_000_000

    def commit(message: str, files: dict[str, bytes]) -> None:
        nonlocal when, parent
        when += 1
        data = message.encode()
        out.append(b"commit refs/heads/main\n")
        out.append(b"committer Bench <bench@example.org> %d +0000\n" % when)
        out.append(b"data %d\n%s\n" % (len(data), data))
        if parent is not None:
            out.append(b"from %s\n" % parent.encode())
            parent = None
        for path, content in files.items():
            out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(content), content))

    if parent is None:
        config = (
            b'project = "bench"\ntype = "project"\nstorage_format = 1\nregistered = 2024-01-01T08:00:00\n'
        )
        commit("project: create 'bench'", {"expipe.toml": config, ".gitignore": layout.IGNORE_TEXT.encode()})
    for i in range(actions):
        name = f"{prefix}-{i:05d}"
        record = f'registered = 2024-01-01T08:00:00\ntags = ["t{i % 7}"]\ntype = "recording"\n'.encode()
        commit(
            f"action '{name}': create\n\nExpipe-Object: action/{name}\nExpipe-Operation: create\n",
            {layout.attributes_path("action", name): record},
        )
    return b"".join(out)


def build(base: pathlib.Path, actions: int, behind: int) -> tuple[pathlib.Path, str, str]:
    """Make the bare repository; return it, the commit ``behind`` back, and its tip."""
    bare = make_bare(base, "project.git")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, input=fast_import_stream(actions), check=True)
    run("git", "gc", "-q", cwd=bare)
    return bare, rev_parse(bare, f"main~{behind}"), rev_parse(bare, "main")


def diverged_clone(target: pathlib.Path, bare: pathlib.Path, old: str, commits: int) -> pathlib.Path:
    """A clone that is behind at ``old`` and has ``commits`` commits of its own (other actions)."""
    run("git", "clone", "-q", str(bare), str(target))
    stream = fast_import_stream(commits, prefix="local", parent=old)
    subprocess.run(["git", "fast-import", "--quiet", "--force"], cwd=target, input=stream, check=True)
    run("git", "reset", "-q", "--hard", "main", cwd=target)
    run("git", "update-ref", "refs/remotes/origin/main", old, cwd=target)
    run("git", "gc", "-q", cwd=target)
    return target


def loose_clone(target: pathlib.Path, bare: pathlib.Path) -> pathlib.Path:
    """A clone whose objects are all loose files, as every API write leaves them until ``git gc``."""
    run("git", "clone", "-q", str(bare), str(target))
    (pack,) = (target / ".git" / "objects" / "pack").glob("*.pack")
    data = pack.read_bytes()
    for path in pack.parent.iterdir():
        path.unlink()
    subprocess.run(["git", "unpack-objects", "-q"], cwd=target, input=data, check=True)
    return target


def rev_list_count(repo: pathlib.Path, rev: str) -> int:
    return int(
        subprocess.run(["git", "rev-list", "--count", rev], cwd=repo, capture_output=True, text=True).stdout
    )


def rev_parse(repo: pathlib.Path, rev: str) -> str:
    return subprocess.run(["git", "rev-parse", rev], cwd=repo, capture_output=True, text=True).stdout.strip()


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=10_000)
    parser.add_argument("--behind", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--transports", default="git,http")
    args = parser.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-remote-"))
    home = tmp / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.org\n")
    os.environ.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1")
    served = tmp / "served"
    served.mkdir()
    servers = []
    try:
        start = time.perf_counter()
        bare, old, tip = build(served, args.actions, args.behind)
        took = time.perf_counter() - start
        print(f"built {args.actions} actions in {args.actions + 1} commits in {took:.1f} s")
        diverged = diverged_clone(tmp / "diverged", bare, old, args.behind)
        loose = loose_clone(tmp / "loose", bare)
        daemon = GitDaemon(served)
        http = HttpServer(served, USER, PASSWORD)
        servers = [daemon, http]
        results: dict[tuple[str, str], dict[str, list[float]]] = {}
        counter = iter(range(1_000_000))

        def fresh(name: str) -> pathlib.Path:
            return tmp / f"{name}-{next(counter)}"

        def served_url(transport: str, name: str) -> str:
            if transport == "file":
                return str(served / name)
            return daemon.url(name) if transport == "git" else http.url(name)

        for transport in args.transports.split(","):
            if transport == "file":  # a folder remote: read directly, no server
                url = str(served / "project.git")
            elif transport == "git":
                url = daemon.url("project.git")
            else:
                os.environ["EXPIPE_GIT_USERNAME"], os.environ["EXPIPE_GIT_PASSWORD"] = USER, PASSWORD
                (home / ".git-credentials").write_text(f"http://{USER}:{PASSWORD}@127.0.0.1:{http.port}\n")
                run("git", "config", "--global", "credential.helper", "store")
                url = http.url("project.git")

            def record(op: str, tool: str, seconds: float, transport: str = transport) -> None:
                results.setdefault((transport, op), {}).setdefault(tool, []).append(seconds)

            for _ in range(args.reps):
                # clone
                target = fresh("clone-ours")
                record("clone", "expipe_git", timed(lambda t=target, u=url: expipe_git.clone(u, t).close()))
                target = fresh("clone-git")
                record("clone", "git", timed(lambda t=target, u=url: run("git", "clone", "-q", u, str(t))))

                # pull: a clone that is behind fetches and fast-forwards
                for tool in ("expipe_git", "git"):
                    target = fresh(f"pull-{tool}")
                    run("git", "clone", "-q", str(bare), str(target))
                    run("git", "reset", "-q", "--hard", old, cwd=target)
                    run("git", "remote", "set-url", "origin", url, cwd=target)
                    run("git", "update-ref", "refs/remotes/origin/main", old, cwd=target)
                    run("git", "gc", "-q", cwd=target)
                    if tool == "expipe_git":
                        project = expipe_git.get_project(target)
                        record("pull", tool, timed(project.pull))
                        project.close()
                    else:
                        pull = ("git", "pull", "-q", "--ff-only")
                        record("pull", tool, timed(lambda t=target, c=pull: run(*c, cwd=t)))

                # pull with a merge: the clone that is behind has `behind` commits of its own
                for tool in ("expipe_git", "git"):
                    target = fresh(f"merge-{tool}")
                    shutil.copytree(diverged, target, symlinks=True)
                    run("git", "remote", "set-url", "origin", url, cwd=target)
                    if tool == "expipe_git":
                        project = expipe_git.get_project(target)
                        record("pull, merge", tool, timed(project.pull))
                        project.close()
                    else:
                        pull = ("git", "pull", "-q", "--no-rebase", "--no-edit")
                        record("pull, merge", tool, timed(lambda t=target, c=pull: run(*c, cwd=t)))
                    assert (
                        rev_list_count(target, "main") == args.actions + 1 + args.behind + 1
                    )  # and the merge

                # push everything from a clone whose objects are all loose, as an API-written project's are
                for tool in ("expipe_git", "git"):
                    name = f"loose-{tool}-{next(counter)}.git"
                    make_bare(served, name)
                    push_url = served_url(transport, name)
                    if tool == "expipe_git":
                        project = expipe_git.get_project(loose)
                        with_remote = f"to-{name}"
                        project.add_remote(with_remote, push_url)
                        record("push all, loose", tool, timed(lambda p=project, r=with_remote: p.push(r)))
                        project.close()
                    else:
                        push = ("git", "push", "-q", push_url, "main")
                        record("push all, loose", tool, timed(lambda c=push: run(*c, cwd=loose)))

                # push: everything into an empty repository, then `behind` new commits
                source = fresh("push-source")
                run("git", "clone", "-q", str(bare), str(source))
                for tool in ("expipe_git", "git"):
                    name = f"push-{tool}-{next(counter)}.git"
                    make_bare(served, name)
                    push_url = served_url(transport, name)
                    run("git", "reset", "-q", "--hard", old, cwd=source)
                    if tool == "expipe_git":
                        project = expipe_git.get_project(source)
                        with_remote = f"to-{name}"
                        project.add_remote(with_remote, push_url)
                        record("push all", tool, timed(lambda p=project, r=with_remote: p.push(r)))
                        run("git", "reset", "-q", "--hard", tip, cwd=source)
                        record("push new", tool, timed(lambda p=project, r=with_remote: p.push(r)))
                        project.close()
                    else:
                        push = ("git", "push", "-q", push_url, "main")
                        record("push all", tool, timed(lambda c=push, s=source: run(*c, cwd=s)))
                        run("git", "reset", "-q", "--hard", tip, cwd=source)
                        record("push new", tool, timed(lambda c=push, s=source: run(*c, cwd=s)))

        print(
            f"\n{args.actions} actions, {args.actions + 1} commits; pull/push new = {args.behind} commits; "
            f"{args.reps} runs, median (slowest)\n"
        )
        print("| transport | operation | expipe_git | git CLI | expipe_git / git |")
        print("|---|---|---|---|---|")
        for (transport, op), tools in results.items():
            ours, theirs = tools["expipe_git"], tools["git"]
            ratio = statistics.median(ours) / statistics.median(theirs)
            scheme = f"{transport}{':' if transport == 'file' else '://'}"
            print(
                f"| {scheme} | {op} | {statistics.median(ours):.2f} s ({max(ours):.2f}) | "
                f"{statistics.median(theirs):.2f} s ({max(theirs):.2f}) | {ratio:.1f}x |"
            )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
