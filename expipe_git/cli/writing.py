"""Commands that write: init, commit (hand edits), and new, set, tag, message and rm (one commit each)."""

from __future__ import annotations

import argparse
import pathlib
from typing import Any

from .. import layout
from ..model import Project, create_project
from .base import PROG, CliError, base_folder, open_project, user_path
from .edits import (
    ATTRIBUTE_KEYS,
    Deferred,
    Step,
    apply,
    attribute_steps,
    handle,
    owner_object,
    parse_assignment,
    parse_datetime,
    parse_object,
    record_steps,
    report,
    template_file,
)
from .parser import Commands, json_flag

# ---------------------------------------------------------------------------
# init and commit


def cmd_init(args: argparse.Namespace) -> int:
    base = base_folder(args)
    target = (base / args.path if args.path else base).absolute()
    if (target / layout.CONFIG_FILE).is_file():
        raise CliError(f"{target} is already an expipe_git project; nothing to do")
    if target.exists():
        if not target.is_dir():
            raise CliError(f"{target} is a file; choose a new or empty folder")
        if any(target.iterdir()):
            raise CliError(f"{target} is not empty; choose a new or empty folder for the project")
    with user_path(target, "create a project in", only_this_path=True):
        project = create_project(target, name=args.name, init=True)
    print(f"Created expipe_git project {project.id!r} in {project.path}")
    return 0


def add_init(commands: Commands) -> None:
    p = commands.add(
        "init", cmd_init, "create a project (a git repository) and print where", aliases=["create"]
    )
    p.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="new or empty folder for the project (default: the current folder)",
    )
    p.add_argument("--name", help="the project's name (default: the folder's name)")


def commit_path(project: Project, text: str) -> pathlib.Path | str:
    """A path from the current folder or, as ``status`` prints it, from the project folder."""
    here = pathlib.Path(text).absolute()
    # A README.md in the folder `-C` was given from is not the project's.
    if here.is_relative_to(project.path) and (here.exists() or not (project.path / text).exists()):
        return here
    return text


def cmd_commit(args: argparse.Namespace) -> int:
    project = open_project(args)
    message = "\n\n".join(part.strip("\n") for part in args.message)
    paths = [commit_path(project, path) for path in args.paths] or None
    sha = project.commit(message, paths)
    print("nothing to commit: no hand edits since the last commit" if sha is None else sha)
    return 0


def add_commit(commands: Commands) -> None:
    p = commands.add(
        "commit",
        cmd_commit,
        "check every hand edit parses, then commit them all as one commit and print its id",
    )
    p.add_argument(
        "-m",
        "--message",
        action="append",
        required=True,
        metavar="MESSAGE",
        help="the commit message; given more than once, each is a paragraph",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="commit only the edits of these files or folders, new files that are not records "
        "(README.md, analysis/plot.ipynb) included (default: every edit of the project's files; "
        "a new file that is not a record waits until it is named)",
    )


# ---------------------------------------------------------------------------
# new


def new_record_steps(project: Project, args: argparse.Namespace) -> tuple[tuple[str, ...], list[Step]]:
    """``new action`` and ``new entity``: create it, then set the attributes given."""
    kind = args.new_kind
    layout.check_name(args.name, kind)
    given = {
        "type": args.type,
        "location": args.location,
        "datetime": args.datetime,
        "tags": args.tag,
        "users": args.user,
        "entities": getattr(args, "entity", None),
    }
    pairs = [(key, value) for key, value in given.items() if value]
    create = project.create_action if kind == "action" else project.create_entity
    made: dict[str, Any] = {}
    # The attribute steps need the object; check every value before anything is written.
    checked = attribute_steps(Deferred(made, args.name), kind, pairs)
    return (kind, args.name), [lambda: made.setdefault("obj", create(args.name)), *checked]


def new_module_steps(project: Project, args: argparse.Namespace) -> tuple[tuple[str, ...], list[Step]]:
    """``new module OWNER NAME``: a module of an action, an entity or the project."""
    owner_obj = ("project",) if args.owner == "project" else owner_object(args.owner, project, "modules")
    owner = project if owner_obj == ("project",) else handle(project, owner_obj)
    layout.check_name(args.name, "module")
    obj = (*owner_obj, "module", args.name) if owner_obj != ("project",) else ("module", args.name)
    template = args.template
    contents: dict[str, Any] | None = None if template else {}
    return obj, [lambda: owner.create_module(name=args.name, template=template, contents=contents)]


def cmd_new(args: argparse.Namespace) -> int:
    project = open_project(args)
    if args.new_kind in ("action", "entity"):
        obj, steps = new_record_steps(project, args)
    elif args.new_kind == "module":
        obj, steps = new_module_steps(project, args)
    else:
        layout.check_name(args.name, "template")
        obj = ("template", args.name)
        contents: dict[str, Any] = template_file(base_folder(args) / args.file) if args.file else {}
        steps = [lambda: project.create_template(args.name, contents)]
    sha = apply(project, layout.commit_message(obj, "create").split("\n")[0], steps)
    return report(project, args, obj, sha)


def json_result_flag(p: argparse.ArgumentParser) -> None:
    json_flag(p, "print JSON {commit, subject, object} instead of text")


def attribute_options(q: argparse.ArgumentParser, kind: str) -> None:
    q.add_argument("name", metavar="NAME")
    q.add_argument("--type", help="e.g. recording")
    q.add_argument("--location", help="e.g. rig-C")
    q.add_argument("--datetime", metavar="ISO", help="when it happened: 2026-11-01T14:00")
    q.add_argument("--tag", action="append", metavar="TAG", help="a tag (repeat for more)")
    q.add_argument("--user", action="append", metavar="USER", help="a user (repeat for more)")
    if kind == "action":
        q.add_argument("--entity", action="append", metavar="ENTITY", help="an entity (repeat for more)")
    json_result_flag(q)


def add_new(commands: Commands) -> None:
    p = commands.add("new", cmd_new, "create an action, entity, module or template (one commit)")
    kinds = p.add_subparsers(dest="new_kind", metavar="KIND", required=True)
    common = [commands.common]
    for kind in ("action", "entity"):
        attribute_options(
            kinds.add_parser(kind, parents=common, help=f"a new {kind}: NAME [--type T] …"), kind
        )
    q = kinds.add_parser("module", parents=common, help="a new module: OWNER NAME [--template T]")
    q.add_argument("owner", metavar="OWNER", help="action/NAME, entity/NAME, or project for a project module")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--template", metavar="T", help="fill it from template T (default: empty)")
    json_result_flag(q)
    q = kinds.add_parser("template", parents=common, help="a new template: NAME [--file F.toml]")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--file", metavar="F.toml", help="a TOML file with the template's keys (default: empty)")
    json_result_flag(q)


# ---------------------------------------------------------------------------
# set and tag


def cmd_set(args: argparse.Namespace) -> int:
    project = open_project(args)
    obj = parse_object(args.object, project)
    target = handle(project, obj)
    pairs = [parse_assignment(text) for text in args.assignments]
    kind = obj[2] if len(obj) == 4 else obj[0]
    if kind in ATTRIBUTE_KEYS:
        steps = attribute_steps(target, kind, pairs)
    else:
        steps = record_steps(target, pairs)
    keys = ", ".join(key for key, _ in pairs)
    sha = apply(project, layout.commit_message(obj, f"set {keys}").split("\n")[0], steps)
    return report(project, args, obj, sha)


def add_set(commands: Commands) -> None:
    value_help = (
        "values are TOML literals (3, 2.5, true, [1, 2], 2026-11-01T14:00:00), quantities "
        "('2.9 mm'), or plain text (rig-C); quote text that looks like a number: '\"42\"'"
    )
    p = commands.add(
        "set",
        cmd_set,
        "set attributes of an action, entity or message, or keys of a module or template (one commit)",
        epilog=value_help,
    )
    p.add_argument(
        "object", metavar="OBJECT", help="an address: action/rec-1, action/rec-1/module/tracking …"
    )
    p.add_argument(
        "assignments",
        nargs="+",
        metavar="KEY=VALUE",
        help="for actions/entities: type, location, datetime, tags, users, entities; "
        "for modules and templates: any key, nested keys joined by '.' (probe.depth='2.9 mm')",
    )
    json_result_flag(p)


def cmd_tag(args: argparse.Namespace) -> int:
    project = open_project(args)
    if "--json" in args.changes:  # everything after OBJECT is a tag change, but for this flag
        args.changes = [c for c in args.changes if c != "--json"]
        args.json = True
    obj = owner_object(args.object, project, "tags")
    target = handle(project, obj)
    add = [c[1:] if c.startswith("+") else c for c in args.changes if not c.startswith("-")]
    remove = [c[1:] for c in args.changes if c.startswith("-")]
    if not args.changes or not all(add + remove):
        raise CliError(f"give tags to add and remove, e.g. {PROG} tag {args.object} +sleep -awake")
    current = list(target.tags)
    missing = [t for t in remove if t not in current]
    if missing:
        raise CliError(
            f"{layout.describe(obj)} has no tag {missing[0]!r}; "
            f"its tags are: {', '.join(current) or '(none)'}"
        )
    new = [t for t in current if t not in remove] + [t for t in add if t not in current]
    steps: list[Step] = [] if new == current else [lambda: setattr(target, "tags", new)]
    sha = apply(project, "", steps)
    return report(project, args, obj, sha)


def add_tag(commands: Commands) -> None:
    p = commands.add(
        "tag",
        cmd_tag,
        "add (+TAG or TAG) and remove (-TAG) tags of an action or entity (one commit)",
        usage=f"{PROG} tag OBJECT [+TAG | -TAG | TAG]... [--json]",
    )
    p.add_argument("object", metavar="OBJECT")
    p.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG")
    json_result_flag(p)


# ---------------------------------------------------------------------------
# message and rm


def cmd_message(args: argparse.Namespace) -> int:
    project = open_project(args)
    obj = owner_object(args.object, project, "messages")
    target = handle(project, obj)
    when = None if args.datetime is None else parse_datetime(args.datetime)
    made: dict[str, Any] = {}
    sha = apply(
        project, "", [lambda: made.setdefault("m", target.create_message(args.text, args.user, when))]
    )
    return report(project, args, (*obj, "message", made["m"].id), sha)


def add_message(commands: Commands) -> None:
    p = commands.add("message", cmd_message, "add a message to an action or entity (one commit)")
    p.add_argument("object", metavar="OBJECT")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--user", help="who wrote it (default: you, as on your commits)")
    p.add_argument("--datetime", metavar="ISO", help="when (default: now)")
    json_result_flag(p)


def removal_step(project: Project, obj: tuple[str, ...]) -> Step:
    """The step deleting the object at ``obj`` (which exists)."""
    if len(obj) == 2:
        kind, name = obj
        delete = {
            "action": project.delete_action,
            "entity": project.delete_entity,
            "template": project.delete_template,
            "module": project.delete_module,
        }[kind]
        return lambda: delete(name)
    owner = handle(project, obj[:2])
    if obj[2] == "module":
        return lambda: owner.delete_module(obj[3])
    kept = [message.contents for key, message in owner.messages.items() if key != obj[3]]
    return lambda: setattr(owner, "messages", kept)  # the other messages are kept as they are


def cmd_rm(args: argparse.Namespace) -> int:
    project = open_project(args)
    obj = parse_object(args.object, project)
    handle(project, obj)  # a missing object: an error that says how to list what exists
    sha = apply(project, "", [removal_step(project, obj)])
    code = report(project, args, obj, sha)
    if sha is not None and not args.json:
        print(f"undo with '{PROG} revert {sha[:7]}'")
    return code


def add_rm(commands: Commands) -> None:
    p = commands.add(
        "rm", cmd_rm, "delete an action, entity, module, template or message (one commit; 'revert' undoes it)"
    )
    p.add_argument("object", metavar="OBJECT")
    json_result_flag(p)
