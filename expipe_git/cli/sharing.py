"""Commands that share a project: clone, remote, fetch, pull, push and sync."""

from __future__ import annotations

import argparse

from ..model import Project, clone
from ..remoteconfig import public_url
from .base import base_folder, open_project, user_path
from .parser import Commands
from .rendering import transfer_progress


def on_conflict(args: argparse.Namespace) -> str:
    return "ours" if args.ours else "theirs" if args.theirs else "raise"


def remote_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("remote", nargs="?", default="origin", metavar="REMOTE", help="default: origin")


def conflict_arguments(p: argparse.ArgumentParser) -> None:
    side = p.add_mutually_exclusive_group()
    side.add_argument("--ours", action="store_true", help="resolve every conflict with our value")
    side.add_argument("--theirs", action="store_true", help="resolve every conflict with theirs")


# ---------------------------------------------------------------------------
# clone and remote


def cmd_clone(args: argparse.Namespace) -> int:
    target = (base_folder(args) / args.dir).absolute()
    with user_path(target, "clone into", only_this_path=True):
        project = clone(args.url, target, progress=transfer_progress())
    count = len(project.actions)
    print(f"Cloned {public_url(args.url)} into {project.path} ({count} action{'s' * (count != 1)})")
    return 0


def add_clone(commands: Commands) -> None:
    p = commands.add(
        "clone",
        cmd_clone,
        "copy a shared project (a path, file://, git://, http(s):// or ssh URL) into a new folder",
    )
    p.add_argument(
        "url", metavar="URL", help="where the project is shared; a password in it is never printed"
    )
    p.add_argument("dir", metavar="DIR", help="new or empty folder for the copy")


def cmd_remote(args: argparse.Namespace) -> int:
    project = open_project(args)
    if args.remote_command == "add":
        project.add_remote(args.name, args.url)
        print(f"Added remote {args.name!r}: {project.remotes[args.name]}")
    elif args.remote_command in ("remove", "rm"):
        project.remove_remote(args.name)
        print(f"Removed remote {args.name!r}")
    else:
        for name, url in project.remotes.items():
            print(f"{name}\t{url}")
    return 0


def add_remote(commands: Commands) -> None:
    p = commands.add("remote", cmd_remote, "list, add or remove remotes (default: list them)")
    p.set_defaults(remote_command="list")
    actions = p.add_subparsers(dest="remote_command", metavar="ACTION")
    r = actions.add_parser("add", parents=[commands.common], help="add a remote: NAME URL")
    r.add_argument("name", metavar="NAME")
    r.add_argument("url", metavar="URL")
    r = actions.add_parser("remove", parents=[commands.common], aliases=["rm"], help="remove a remote: NAME")
    r.add_argument("name", metavar="NAME")
    actions.add_parser(
        "list", parents=[commands.common], help="list remotes and their URLs (without passwords)"
    )


# ---------------------------------------------------------------------------
# fetch, pull, push, sync


def cmd_fetch(args: argparse.Namespace) -> int:
    project = open_project(args)
    sha = project.fetch(args.remote, progress=transfer_progress())
    if sha is None:
        print(f"{args.remote} has no branch main yet")
    else:
        print(f"{args.remote}/main is at {sha[:7]}")
    return 0


def pull(project: Project, args: argparse.Namespace) -> None:
    sha = project.pull(args.remote, on_conflict=on_conflict(args), progress=transfer_progress())
    if sha is None:
        print(f"up to date with {args.remote}/main")
    else:
        print(f"main is now at {sha[:7]} (pulled from {args.remote})")


def push(project: Project, args: argparse.Namespace) -> None:
    sha = project.push(args.remote, progress=transfer_progress())
    if sha is None:
        print(f"{args.remote} has everything already")
    else:
        print(f"pushed main to {args.remote}: {sha[:7]}")


def cmd_pull(args: argparse.Namespace) -> int:
    pull(open_project(args), args)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    push(open_project(args), args)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    project = open_project(args)
    pull(project, args)
    push(project, args)
    return 0


def add_fetch(commands: Commands) -> None:
    remote_argument(commands.add("fetch", cmd_fetch, "fetch the remote's main into refs/remotes/REMOTE/main"))


def add_pull(commands: Commands) -> None:
    p = commands.add("pull", cmd_pull, "fetch, then fast-forward or merge the remote's main into ours")
    remote_argument(p)
    conflict_arguments(p)


def add_push(commands: Commands) -> None:
    p = commands.add("push", cmd_push, "push main to the remote (never forced: pull first if it moved)")
    remote_argument(p)


def add_sync(commands: Commands) -> None:
    p = commands.add("sync", cmd_sync, "pull, then push")
    remote_argument(p)
    conflict_arguments(p)
