"""Commands of a merge: merge, conflicts and resolve (pull and sync merge too: sharing.py)."""

from __future__ import annotations

import argparse

from .. import merge
from ..errors import MergeConflict
from .base import PROG, UsageError, open_project
from .parser import Commands
from .rendering import JSON_NOTE, conflict_json, print_json

# ---------------------------------------------------------------------------
# merge


def check_merge_arguments(args: argparse.Namespace) -> None:
    if (args.continue_merge or args.abort) and args.rev:
        raise UsageError("merge --continue and --abort take no REV")
    if not (args.continue_merge or args.abort or args.rev):
        raise UsageError("merge needs REV (a branch, tag or commit id), or --continue or --abort")


def cmd_merge(args: argparse.Namespace) -> int:
    check_merge_arguments(args)
    project = open_project(args)
    if args.abort:
        project.abort_merge()
        print("merge aborted: the project is as it was before it")
        return 0
    try:
        if args.continue_merge:
            sha = project.continue_merge()
        else:
            side = "ours" if args.ours else "theirs" if args.theirs else "raise"
            sha = project.merge(args.rev, on_conflict=side)
    except MergeConflict as exc:
        for conflict in exc.conflicts:
            print(conflict.describe())
        raise
    print(sha if sha is not None else "already up to date: nothing to merge")
    return 0


def add_merge(commands: Commands) -> None:
    p = commands.add(
        "merge",
        cmd_merge,
        "merge a branch, tag or commit into the project record by record, and print the merge commit; "
        "stops on conflicts without changing anything (see 'conflicts' and 'resolve')",
    )
    p.add_argument("rev", nargs="?", metavar="REV", help="branch (e.g. origin/main), tag or commit id")
    sides = p.add_mutually_exclusive_group()
    sides.add_argument("--ours", action="store_true", help="resolve every conflict with our value")
    sides.add_argument("--theirs", action="store_true", help="resolve every conflict with their value")
    sides.add_argument(
        "--continue",
        dest="continue_merge",
        action="store_true",
        help="finish a stopped merge with the resolutions given",
    )
    sides.add_argument("--abort", action="store_true", help="forget a stopped merge")


# ---------------------------------------------------------------------------
# conflicts


def cmd_conflicts(args: argparse.Namespace) -> int:
    project = open_project(args)
    pending = merge.pending_merge(project)
    found = project.conflicts if pending else []
    if args.json:
        print_json([conflict_json(c) for c in found])
        return 0
    if pending is None:
        print("no merge is stopped on conflicts")
        return 0
    print(
        f"{pending['message']} ({pending['theirs'][:7]}): {len(found)} unresolved, "
        f"{pending['resolved']} resolved"
    )
    for conflict in found:
        print(f"  {conflict.describe()}")
    if found:
        print(f"resolve each with '{PROG} resolve OBJECT KEY --ours|--theirs|--value VALUE'; then")
    print(f"finish with '{PROG} merge --continue' (or give up with '{PROG} merge --abort')")
    return 0


def add_conflicts(commands: Commands) -> None:
    p = commands.add(
        "conflicts",
        cmd_conflicts,
        "list the unresolved conflicts of a stopped merge",
        paged=True,
        epilog=JSON_NOTE,
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {object, key, kind, path, base, ours, theirs, absent}; "
        "absent lists the sides where the key or record does not exist",
    )


# ---------------------------------------------------------------------------
# resolve


def cmd_resolve(args: argparse.Namespace) -> int:
    project = open_project(args)
    conflict = (args.object, args.key)
    if args.value is not None:
        project.resolve(conflict, value=merge.parse_value_text(args.value))
    else:
        project.resolve(conflict, "ours" if args.ours else "theirs")
    left = len(project.conflicts)
    print(f"resolved {args.object} {args.key}".rstrip() + f"; {left} unresolved")
    return 0


def add_resolve(commands: Commands) -> None:
    p = commands.add(
        "resolve", cmd_resolve, "resolve one conflict of a stopped merge; then 'merge --continue'"
    )
    p.add_argument("object", metavar="OBJECT", help="the conflict's object address, e.g. action/rec-1")
    p.add_argument(
        "key",
        nargs="?",
        default="",
        metavar="KEY",
        help="the conflict's key, nested keys joined by '.' (omit for a deleted record)",
    )
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument("--ours", action="store_true", help="keep our value")
    choice.add_argument("--theirs", action="store_true", help="take their value")
    choice.add_argument(
        "--value",
        metavar="VALUE",
        help='a new value: a TOML or JSON literal (3, 2.5, true, null, [1, 2], {"a": 1}), '
        'a quantity such as "3 um" or "[1, 2] mV", or plain text (rig-C)',
    )
