"""Commands about the past: log, diff, blame and revert (``show COMMIT`` is in reading.py)."""

from __future__ import annotations

import argparse
import pathlib

from .. import history, layout
from ..model import Project
from .base import PROG, CliError, is_address, open_project
from .parser import REVISION_HELP, Commands, json_flag
from .rendering import (
    JSON_NOTE,
    change_json,
    change_lines,
    commit_json,
    paint,
    print_json,
    use_color,
    value_text,
)

# ---------------------------------------------------------------------------
# log


def under(change: history.Change, prefix: str | None) -> bool:
    """Whether ``change`` is of the file or folder ``prefix`` (None: of anything)."""
    return prefix is None or change.path == prefix or change.path.startswith(prefix + "/")


def log_path(project: Project, text: str) -> str:
    """A file or folder path as ``status`` prints it (from the project folder) or from here."""
    here = pathlib.Path(text).absolute()
    if here.exists() and here.is_relative_to(project.path):
        return here.relative_to(project.path).as_posix().strip("/") or "."
    path = pathlib.PurePosixPath(text.replace("\\", "/")).as_posix().strip("/")
    # A file no longer there (a README.md deleted since) is followed if it has a history.
    if (
        not (project.path / path).exists()
        and not layout.in_layout(path)
        and not project.log(path=path, limit=1)
    ):
        raise CliError(
            f"{text!r} is neither an object address (action/rec-1, entity/rat1, template/daq, "
            f"module/NAME) nor a file of the project; '{PROG} status' and '{PROG} list' show both"
        )
    return path


def log_filter(project: Project, text: str | None) -> tuple[tuple[str, ...] | str | None, str | None]:
    """What ``log OBJECT|PATH`` follows (an address or a path), and the path prefix of its changes."""
    if text is None:
        return None, None
    if is_address(text):
        obj = layout.parse_address(text)
        return obj, history.object_path(obj)
    path = log_path(project, text)
    return (None, None) if path == "." else (path, path)


def cmd_log(args: argparse.Namespace) -> int:
    project = open_project(args)
    obj, prefix = log_filter(project, args.object)
    options = {"since": args.since, "until": args.until, "author": args.author, "limit": args.limit}
    if args.json:
        commits = project.log(path=obj, **options)
        print_json([commit_json(c, [x for x in c.changes if under(x, prefix)]) for c in commits])
        return 0
    color = use_color()
    for commit in history.iter_log(project, path=obj, **options):  # printed as found
        if args.oneline:
            print(f"{paint(commit.id[:7], 'commit', color)} {commit.subject}")
            continue
        when = commit.datetime.strftime("%Y-%m-%d %H:%M:%S %z")
        print(f"{paint(commit.id[:7], 'commit', color)} {when} {commit.author}  {commit.subject}")
        for change in commit.changes:
            if under(change, prefix):
                print("\n".join("    " + line for line in change_lines(change, color)))
    return 0


def add_log(commands: Commands) -> None:
    p = commands.add(
        "log",
        cmd_log,
        "list commits newest first, each with its key-level changes (of OBJECT, if given)",
        paged=True,
        epilog=JSON_NOTE,
    )
    p.add_argument(
        "object",
        nargs="?",
        metavar="OBJECT|PATH",
        help="only commits that changed this object, or this file or folder (as 'status' prints it)",
    )
    p.add_argument("--oneline", action="store_true", help="one line per commit: short id and subject")
    p.add_argument("--since", help="only commits at or after: 2026-11-01, 'yesterday 14:00', '3 days ago'")
    p.add_argument("--until", help="only commits at or before (same forms as --since)")
    p.add_argument("--author", help="only commits whose 'Name <email>' matches this regular expression")
    p.add_argument("--limit", "-n", type=int, metavar="N", help="at most N commits")
    json_flag(p)


# ---------------------------------------------------------------------------
# diff


def cmd_diff(args: argparse.Namespace) -> int:
    project = open_project(args)
    if args.a is None and args.b != "HEAD":
        raise CliError(f"give A too: '{PROG} diff A B' compares two revisions")
    changes = project.diff(args.a, args.b)
    if args.json:
        print_json([change_json(c) for c in changes])
        return 0
    color = use_color()
    for change in changes:
        print("\n".join(change_lines(change, color)))
    return 0


def add_diff(commands: Commands) -> None:
    p = commands.add(
        "diff",
        cmd_diff,
        "list the key-level changes from revision A to revision B; with no A, those of the hand edits "
        "(files changed and not committed) against the last commit",
        paged=True,
        epilog=JSON_NOTE,
    )
    p.add_argument("a", metavar="A", nargs="?", help=REVISION_HELP)
    p.add_argument("b", metavar="B", nargs="?", default="HEAD", help="(default: HEAD)")
    json_flag(p)


# ---------------------------------------------------------------------------
# blame


def cmd_blame(args: argparse.Namespace) -> int:
    obj = layout.parse_address(args.object)
    project = open_project(args)
    rows = history.blame_rows(project, obj)
    if args.json:
        print_json(
            [
                {"key": list(key), "value": value, "commit": commit_json(commit, [])}
                for key, value, commit in rows
            ]
        )
        return 0
    color = use_color()
    width = max((len(commit.author) for _, _, commit in rows), default=0)
    for key, value, commit in rows:
        when = commit.datetime.strftime("%Y-%m-%d %H:%M")
        label = layout.key_label(key)
        print(
            f"{paint(commit.id[:7], 'commit', color)} {when} {commit.author.ljust(width)}  "
            f"{label}: {value_text(value)}"
        )
    return 0


def add_blame(commands: Commands) -> None:
    p = commands.add(
        "blame",
        cmd_blame,
        "show, for each key of a module, template or action/entity's attributes, the commit that set it",
        paged=True,
        epilog=JSON_NOTE,
    )
    p.add_argument("object", metavar="OBJECT", help="an address such as action/rec-1/module/tracking")
    json_flag(p)


# ---------------------------------------------------------------------------
# revert


def cmd_revert(args: argparse.Namespace) -> int:
    project = open_project(args)
    commit = project.revert(args.commit)
    if commit is None:
        print("nothing to revert: the commit changed nothing")
    else:
        print(f"{commit.id} {commit.subject}")
    return 0


def add_revert(commands: Commands) -> None:
    p = commands.add(
        "revert",
        cmd_revert,
        "undo a commit's changes key by key in one new commit, and print its id; refused, with "
        "nothing written, if a later commit changed the same keys",
    )
    p.add_argument("commit", metavar="COMMIT", help=REVISION_HELP)
