"""Commands that look at a project: status, list and show."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .. import layout, merge
from ..errors import InvalidValueError, NotFoundError
from ..model import Project
from .base import (
    KINDS,
    PLURAL,
    PROG,
    CliError,
    address_guesses,
    is_address,
    open_project,
    split_revision_object,
)
from .parser import Commands, json_flag, kind_name
from .rendering import (
    JSON_NOTE,
    commit_json,
    commit_lines,
    conflict_json,
    dash,
    print_json,
    record_lines,
    table_lines,
    use_color,
)

# ---------------------------------------------------------------------------
# status

STATUS_LETTER = {"modified": "M", "added": "A", "deleted": "D"}


MERGE_TODO = (
    f"'{PROG} conflicts' lists them, '{PROG} merge --continue' or '{PROG} merge --abort' ends the merge"
)


def merge_json(project: Project, pending: dict | None) -> dict:
    """A stopped merge as `status --json` shows it; ``{"stopped": false}`` when there is none."""
    if pending is None:
        return {"stopped": False}
    conflicts = project.conflicts
    return {
        "stopped": True,
        "theirs": pending["theirs"],
        "message": pending["message"],
        "unresolved": len(conflicts),
        "resolved": pending["resolved"],
        "conflicts": [conflict_json(c) for c in conflicts],
        "what to do": MERGE_TODO,
    }


def status_note(path: str) -> str:
    """What `status` adds to a file that is not part of the project and that `commit PATH` would refuse."""
    if not layout.in_layout(path):
        return ""
    top, slash, _ = path.partition("/")
    return f"  (only records belong in {top}/)" if slash else "  (expipe_git's name, in another case)"


def cmd_status(args: argparse.Namespace) -> int:
    project = open_project(args)
    edits = project.status()
    pending = merge.pending_merge(project)
    if args.json:
        files = [{"path": e.path, "state": e.state} for e in edits]
        print_json({"files": files, "merge": merge_json(project, pending)})
        return 0
    if pending is not None:
        left = len(project.conflicts)
        print(
            f"a merge of {pending['theirs'][:7]} ({pending['message']}) is stopped: {left} conflict"
            f"{'s' * (left != 1)} unresolved, {pending['resolved']} resolved; {MERGE_TODO}"
        )
    if not edits and pending is None:
        print("clean: no hand edits since the last commit")
    else:
        for edit in edits:
            if edit.state != "untracked":
                print(f"{STATUS_LETTER.get(edit.state, '?')} {edit.path}")
        outside = [edit.path for edit in edits if edit.state == "untracked"]
        if outside:
            print(
                f"not part of the project ('{PROG} commit' leaves them alone, '{PROG} commit PATH' "
                "adds them; .gitignore can hide them):"
            )
            for path in outside:  # 'commit PATH' refuses what is in a record folder and no record
                print(f"? {path}{status_note(path)}")
    return 0


def add_status(commands: Commands) -> None:
    p = commands.add(
        "status",
        cmd_status,
        "list files edited by hand and not committed (M modified, A added, D deleted), then "
        "files that are not part of the project (?)",
    )
    json_flag(
        p,
        'print JSON {"files": [{path, state}], "merge": {"stopped": ...}}; a stopped merge adds '
        "theirs, message, unresolved, resolved, conflicts (as 'conflicts --json') and \"what to do\"",
    )


# ---------------------------------------------------------------------------
# list

# `list` filters: option -> keyword of project.actions.where(...)
LIST_FILTERS = {
    "tag": "tags",
    "any_tag": "any_tags",
    "type": "type",
    "location": "location",
    "user": "users",
    "entity": "entities",
    "since": "since",
    "until": "until",
}


def list_criteria(args: argparse.Namespace) -> dict:
    """Return the where() criteria the filter options of `list` give."""
    criteria = {key: getattr(args, option) for option, key in LIST_FILTERS.items()}
    criteria = {key: value for key, value in criteria.items() if value is not None}
    if (criteria or args.csv or args.module) and args.kind not in ("actions", "entities"):
        raise CliError("filters, --module and --csv apply to 'list actions' or 'list entities'")
    if args.csv and args.json:
        raise CliError("choose one of --json and --csv")
    if args.entity and args.kind == "entities":
        raise CliError("--entity finds actions by their entities; entities have none")
    if args.module and not args.csv:
        raise CliError("--module adds module columns to --csv; add --csv")
    return criteria


def summary(obj: Any, kind: str) -> dict:
    """One action or entity as a row of `list`."""
    attributes = obj.attributes
    row = {
        "name": obj.name,
        "address": f"{kind}/{obj.name}",
        "type": attributes.get("type"),
        "datetime": attributes.get("datetime"),
        "location": attributes.get("location"),
        "tags": list(attributes.get("tags") or []),
        "users": list(attributes.get("users") or []),
    }
    if kind == "action":
        row["entities"] = list(attributes.get("entities") or [])
    return row


def cmd_list(args: argparse.Namespace) -> int:
    project = open_project(args)
    criteria = list_criteria(args)
    if args.kind is None:
        names = {kind: list(getattr(project, kind)) for kind in KINDS}
        if args.json:
            print_json(names)
            return 0
        for kind in KINDS:
            print(f"{kind}: {len(names[kind])}")
            for name in names[kind]:
                print(f"  {name}")
        return 0
    mapping = getattr(project, args.kind)
    if args.kind in ("actions", "entities") and (criteria or args.csv):
        mapping = mapping.where(**criteria)
        if args.csv:
            sys.stdout.write(mapping.to_csv(args.module))
            return 0
    singular = {plural: kind for kind, plural in PLURAL.items()}[args.kind]
    if args.kind in ("actions", "entities"):
        rows = [summary(mapping[name], singular) for name in mapping]
        if args.json:
            print_json(rows)
            return 0
        table = [(r["name"], dash(r["type"]), dash(r["datetime"]), ", ".join(r["tags"]) or "-") for r in rows]
        for line in table_lines(table):
            print(line)
        return 0
    if args.json:
        print_json([{"name": name, "address": f"{singular}/{name}"} for name in mapping])
    else:
        for name in mapping:
            print(name)
    return 0


def add_list(commands: Commands) -> None:
    p = commands.add(
        "list",
        cmd_list,
        "list actions, entities, templates or modules (default: all, counted)",
        paged=True,
        epilog=JSON_NOTE,
    )
    p.add_argument(
        "kind", nargs="?", type=kind_name, choices=KINDS, metavar="KIND", help="one of: " + ", ".join(KINDS)
    )
    json_flag(p)
    filters = p.add_argument_group(
        "filters (actions and entities; all must hold; repeat --tag, --user, --entity for all of several)"
    )
    filters.add_argument("--tag", action="append", metavar="TAG", help="has this tag")
    filters.add_argument("--any-tag", action="append", metavar="TAG", help="has at least one of these tags")
    filters.add_argument("--type", metavar="TYPE", help="of this type")
    filters.add_argument("--location", metavar="LOCATION", help="at this location")
    filters.add_argument("--user", action="append", metavar="USER", help="with this user")
    filters.add_argument("--entity", action="append", metavar="ENTITY", help="(actions) with this entity")
    filters.add_argument(
        "--since", metavar="DATE", help="datetime on or after DATE (e.g. 2026-05-01, '3 days ago')"
    )
    filters.add_argument(
        "--until", metavar="DATE", help="datetime on or before DATE (a bare date: through that day)"
    )
    p.add_argument(
        "--csv", action="store_true", help="print a CSV table, one row per object, its attributes as columns"
    )
    p.add_argument(
        "--module", action="append", metavar="MODULE", help="with --csv: add this module's keys as columns"
    )


# ---------------------------------------------------------------------------
# show OBJECT


def with_hint(lookup: Callable[[], Any], hint: str) -> Any:
    """Run ``lookup``; a missing object's error also says ``hint``."""
    try:
        return lookup()
    except NotFoundError as exc:
        raise NotFoundError(f"{exc}; {hint}") from None


def record_view(
    address: str, kind: str, name: str, title: str, contents: Any, owner: str | None = None
) -> tuple[dict, list[str]]:
    """(JSON data, plain lines) of a module or template."""
    data = {"address": address, "kind": kind, "name": name}
    if owner is not None:
        data["owner"] = owner
    data["contents"] = contents
    body = record_lines(contents) if contents not in ({}, []) else ["(empty)"]
    return data, [title, *body]


def project_view(project: Project) -> tuple[dict, list[str]]:
    counts = {kind: len(getattr(project, kind)) for kind in KINDS}
    data = {
        "address": "project",
        "kind": "project",
        "name": project.id,
        "path": str(project.path),
        "config": project.config.stored,
        "counts": counts,
    }
    lines = [f"project {project.id!r} in {project.path}", *record_lines(project.config.stored)]
    lines += [f"{kind}: {count}" for kind, count in counts.items()]
    return data, lines


def owner_view(owner: Any, obj: tuple[str, ...]) -> tuple[dict, list[str]]:
    """(JSON data, plain lines) of an action or entity: attributes, modules, messages."""
    attributes = owner.attributes
    modules = list(owner.modules)
    message_map = owner.messages
    messages = [message_map[m] for m in message_map]
    data = {
        "address": layout.address(obj),
        "kind": obj[0],
        "name": obj[1],
        "attributes": attributes,
        "modules": modules,
        "message_count": len(messages),
        "messages": [m.id for m in messages],
    }
    lines = [layout.describe(obj), *record_lines(attributes)]
    lines.append(f"modules ({len(modules)}): {', '.join(modules) if modules else '-'}")
    lines.append(f"messages: {len(messages)}")
    for message in messages:
        contents = message.contents
        first = (str(contents.get("text", "")).splitlines() or [""])[0]
        lines.append(f"  {message.id}  {contents.get('user')}: {first}")
    return data, lines


def child_view(owner: Any, obj: tuple[str, ...]) -> tuple[dict, list[str]]:
    """(JSON data, plain lines) of a module or message of an action or entity."""
    kind, name, child, key = obj
    address, title = layout.address(obj), layout.describe(obj)
    hint = f"run '{PROG} show {kind}/{name}' to see its modules and messages"
    if child == "module":
        module = with_hint(lambda: owner.modules[key], hint)
        return record_view(address, "module", key, title, module.contents, owner=f"{kind}/{name}")
    message = with_hint(lambda: owner.messages[key], hint)
    contents = message.contents
    data = {"address": address, "kind": "message", "id": message.id, "owner": f"{kind}/{name}", **contents}
    return data, [title, *record_lines(contents)]


def describe_object(project: Project, obj: tuple[str, ...]) -> tuple[dict, list[str]]:
    """Return (JSON data, plain lines) for the object at address ``obj``."""
    if obj == ("project",):
        return project_view(project)
    kind, name = obj[0], obj[1]
    listing = f"run '{PROG} list {PLURAL[kind]}' to see what exists"
    found = with_hint(lambda: getattr(project, PLURAL[kind])[name], listing)
    if kind in layout.FOLDER_KINDS:
        return owner_view(found, obj) if len(obj) == 2 else child_view(found, obj)
    owner = None if kind == "template" else "project"
    return record_view(layout.address(obj), kind, name, layout.describe(obj), found.contents, owner=owner)


def show_commit(args: argparse.Namespace) -> int:
    """``show`` given a revision: the commit and its key-level changes."""
    project = open_project(args)
    try:
        commit = project.get_commit(args.object)
    except (NotFoundError, InvalidValueError) as exc:
        guesses = address_guesses(project, args.object)
        if guesses:
            raise CliError(f"{args.object!r} is not an address; type {' or '.join(guesses)}") from None
        raise CliError(
            f"cannot read object address or revision {args.object!r}: an address starts with "
            "project, action/, entity/, template/ or module/ (e.g. action/rec-1/module/tracking); "
            f"as a revision: {exc}"
        ) from None
    if args.json:
        print_json(commit_json(commit, commit.changes))
    else:
        print("\n".join(commit_lines(commit, use_color())))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    revision, address = split_revision_object(args.object)
    if not is_address(address):
        return show_commit(args)
    obj = layout.parse_address(address)
    project = open_project(args)
    if revision is not None:
        project = project.at(revision)
    data, lines = describe_object(project, obj)
    if args.json:
        print_json(data)
    else:
        print("\n".join(lines))
    return 0


def add_show(commands: Commands) -> None:
    p = commands.add(
        "show",
        cmd_show,
        "show an action, entity, module, template or message, or a commit and its key-level changes",
        paged=True,
        epilog=JSON_NOTE,
    )
    p.add_argument(
        "object",
        metavar="OBJECT|COMMIT",
        help="an address: action/rec-1, action/rec-1/module/tracking, "
        "action/rec-1/message/ID, entity/rat1, template/daq, module/NAME or project; "
        "REV:ADDRESS shows it as it was at a revision (HEAD~2:action/rec-1); "
        "anything else is a revision: a commit id, HEAD~2, a branch, a tag or a time ('yesterday')",
    )
    json_flag(p, "print JSON instead of text (see below)")
