"""The ``expipe-git`` commands that write: new, set, tag, message and rm.

Each command is one commit, made through the library's public API (several
changes of one command are one transaction). Each prints the commit it made
(``<short id> <subject>``), or with ``--json`` an object
``{"commit", "subject", "object"}``. :func:`register` adds them to the parser
``cli.build_parser`` makes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import pathlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import cli, layout, merge, values
from .errors import InvalidTypeError, InvalidValueError, NotFoundError

if TYPE_CHECKING:
    from .model import Project

PROG = cli.PROG
ATTRIBUTE_KEYS = {
    "action": ("type", "location", "datetime", "tags", "users", "entities"),
    "entity": ("type", "location", "datetime", "tags", "users"),
    "message": ("text", "user", "datetime"),
}
LIST_KEYS = ("tags", "users", "entities")
Step = Callable[[], Any]


# ---------------------------------------------------------------------------
# Addresses and handles


def parse_object(text: str, project: Project) -> tuple[str, ...]:
    """Read an object address; for a bare name, say which address to type instead."""
    try:
        obj = layout.parse_address(text)
    except InvalidValueError:
        guesses = cli.address_guesses(project, text)
        if guesses:
            raise cli.CliError(f"{text!r} is not an address; type {' or '.join(guesses)}") from None
        raise
    return obj


def owner_object(text: str, project: Project, what: str) -> tuple[str, ...]:
    """Read the address of an action or entity, which ``what`` (e.g. "messages") belongs to."""
    obj = parse_object(text, project)
    if len(obj) != 2 or obj[0] not in ("action", "entity"):
        raise cli.CliError(f"{what} belong to actions and entities; {text!r} is {layout.describe(obj)}")
    return obj


def handle(project: Project, obj: tuple[str, ...]) -> Any:
    """Return the object at address ``obj`` (an Action, Entity, Module, Template or Message)."""
    if obj == ("project",):
        raise cli.CliError("the project itself cannot be changed this way; give an object's address")
    kind, name = obj[0], obj[1]
    plural = {"action": "actions", "entity": "entities", "template": "templates", "module": "modules"}[kind]
    mapping = getattr(project, plural)
    if name not in mapping:
        raise NotFoundError(f"{kind} {name!r} does not exist; run '{PROG} list {plural}' to see what exists")
    owner = mapping[name]
    if len(obj) == 2:
        return owner
    children = owner.modules if obj[2] == "module" else owner.messages
    if obj[3] not in children:
        raise NotFoundError(
            f"{layout.describe(obj)} does not exist; run '{PROG} show {kind}/{name}' to see what it has"
        )
    return children[obj[3]]


# ---------------------------------------------------------------------------
# Values typed on the command line


def parse_datetime(text: Any, key: str = "datetime") -> dt.datetime:
    """Read an ISO 8601 datetime (``2026-11-01T14:00``, ``2026-11-01 14:00:00``)."""
    if isinstance(text, dt.datetime):
        return text
    try:
        return dt.datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidValueError(
            f"{key}: cannot read {text!r} as a date and time; type it as 2026-11-01T14:00 "
            "(ISO 8601, optionally with seconds and a +01:00 offset)"
        ) from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """Split ``KEY=VALUE`` and read the value (a TOML literal, a quantity or plain text)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise cli.CliError(f"cannot read {text!r}: give KEY=VALUE, e.g. depth='2.9 mm' or location=rig-C")
    return key.strip(), merge.parse_value_text(raw.strip())


def _as_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidTypeError(f'{key}: expected a list of text, e.g. {key}=a,b or {key}=\'["a", "b"]\'')


# ---------------------------------------------------------------------------
# Applying changes: one commit per command


def apply(project: Project, subject: str, steps: list[Step]) -> str | None:
    """Run ``steps`` as one commit (one step: its own commit); return the new HEAD, or None."""
    before = project.store.head()
    if len(steps) == 1:
        steps[0]()
    elif steps:
        with project.transaction(subject):
            for step in steps:
                step()
    after = project.store.head()
    return None if after == before or after is None else after.decode()


def report(project: Project, args: argparse.Namespace, obj: tuple[str, ...], sha: str | None) -> int:
    address = layout.address(obj)
    commit = None if sha is None else project.get_commit(sha)
    if args.json:
        cli.print_json(
            {"commit": sha, "subject": None if commit is None else commit.subject, "object": address}
        )
    elif commit is None:
        print(f"nothing to change: {address} is already so")
    else:
        print(f"{commit.id[:7]} {commit.subject}")
    return 0


def attribute_steps(target: Any, kind: str, pairs: list[tuple[str, Any]]) -> list[Step]:
    """Steps setting attributes of an action, entity or message, checked before any is run."""
    steps: list[Step] = []
    for key, value in pairs:
        if key not in ATTRIBUTE_KEYS[kind]:
            raise cli.CliError(_unknown_attribute(kind, key, target.name))
        if key == "datetime":
            value = parse_datetime(value)
        elif key in LIST_KEYS:
            value = _as_list(value, key)
        elif not isinstance(value, str):
            raise InvalidTypeError(f"{key}: expected text, got {type(value).__name__} ({value!r})")
        steps.append(lambda key=key, value=value: setattr(target, key, value))
    return steps


def _unknown_attribute(kind: str, key: str, name: str) -> str:
    allowed = ", ".join(ATTRIBUTE_KEYS[kind])
    if kind == "message":
        return f"a message has no {key!r}: set one of {allowed}"
    return (
        f"an {kind} has no attribute {key!r}: set one of {allowed} ('{PROG} tag' adds and "
        f"removes tags); keep other values in a module: '{PROG} new module {kind}/{name} NAME', "
        f"then '{PROG} set {kind}/{name}/module/NAME {key}=...'"
    )


def record_steps(record: Any, pairs: list[tuple[str, Any]]) -> list[Step]:
    """Steps setting dotted keys (``a.b.c``) of a module or template; missing tables are made."""

    def set_key(path: tuple[str, ...], value: Any) -> None:
        node = record
        for depth, key in enumerate(path[:-1]):
            if key not in node:
                nested: Any = value
                for inner in reversed(path[depth + 1 :]):
                    nested = {inner: nested}
                node[key] = nested
                return
            node = node[key]
            if not isinstance(node, Mapping):
                raise InvalidTypeError(f"{'.'.join(path[: depth + 1])} is a value, not a table of keys")
        node[path[-1]] = value

    steps: list[Step] = []
    for key, value in pairs:
        path = tuple(part.strip() for part in key.split("."))
        if not all(path):
            raise cli.CliError(f"cannot read the key {key!r}: join nested keys with '.', e.g. probe.depth")
        steps.append(lambda path=path, value=value: set_key(path, value))
    return steps


# ---------------------------------------------------------------------------
# Commands


def cmd_new(args: argparse.Namespace) -> int:
    project = cli.open_project(args)
    kind = args.new_kind
    if kind in ("action", "entity"):
        layout.check_name(args.name, kind)
        obj = (kind, args.name)
        pairs = [
            (key, value)
            for key, value in (
                ("type", args.type),
                ("location", args.location),
                ("datetime", args.datetime),
                ("tags", args.tag),
                ("users", args.user),
                ("entities", getattr(args, "entity", None)),
            )
            if value
        ]
        create = project.create_action if kind == "action" else project.create_entity
        made: dict[str, Any] = {}
        # The attribute steps need the object; check every value before anything is written.
        checked = attribute_steps(_Deferred(made, args.name), kind, pairs)
        steps: list[Step] = [lambda: made.setdefault("obj", create(args.name)), *checked]
    elif kind == "module":
        owner_obj = ("project",) if args.owner == "project" else owner_object(args.owner, project, "modules")
        owner = project if owner_obj == ("project",) else handle(project, owner_obj)
        layout.check_name(args.name, "module")
        obj = (*owner_obj, "module", args.name) if owner_obj != ("project",) else ("module", args.name)
        template, contents = args.template, None if args.template else {}
        steps = [lambda: owner.create_module(name=args.name, template=template, contents=contents)]
    else:
        layout.check_name(args.name, "template")
        obj = ("template", args.name)
        contents = _template_file(pathlib.Path(args.file) if args.file else None, args)
        steps = [lambda: project.create_template(args.name, contents)]
    sha = apply(project, layout.commit_message(obj, "create").split("\n")[0], steps)
    return report(project, args, obj, sha)


class _Deferred:
    """Stands for an object a step before creates; attributes are set on it once it exists."""

    def __init__(self, made: dict[str, Any], name: str):
        object.__setattr__(self, "_made", made)
        object.__setattr__(self, "name", name)

    def __setattr__(self, key: str, value: Any) -> None:
        setattr(self._made["obj"], key, value)


def _template_file(path: pathlib.Path | None, args: argparse.Namespace) -> dict:
    if path is None:
        return {}
    path = cli.base_folder(args) / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise cli.CliError(f"cannot read the template file {path}: {exc.strerror or exc}") from None
    record = values.decode(values.parse(text, what=str(path)), what=str(path))
    if not isinstance(record, dict):
        raise InvalidTypeError(f"{path}: a template is a table of keys")
    return record


def cmd_set(args: argparse.Namespace) -> int:
    project = cli.open_project(args)
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


def cmd_tag(args: argparse.Namespace) -> int:
    project = cli.open_project(args)
    if "--json" in args.changes:  # everything after OBJECT is a tag change, but for this flag
        args.changes = [c for c in args.changes if c != "--json"]
        args.json = True
    obj = owner_object(args.object, project, "tags")
    target = handle(project, obj)
    add = [c[1:] if c.startswith("+") else c for c in args.changes if not c.startswith("-")]
    remove = [c[1:] for c in args.changes if c.startswith("-")]
    if not args.changes or not all(add + remove):
        raise cli.CliError(f"give tags to add and remove, e.g. {PROG} tag {args.object} +sleep -awake")
    current = list(target.tags)
    missing = [t for t in remove if t not in current]
    if missing:
        raise cli.CliError(
            f"{layout.describe(obj)} has no tag {missing[0]!r}; "
            f"its tags are: {', '.join(current) or '(none)'}"
        )
    new = [t for t in current if t not in remove] + [t for t in add if t not in current]
    steps: list[Step] = [] if new == current else [lambda: setattr(target, "tags", new)]
    sha = apply(project, "", steps)
    return report(project, args, obj, sha)


def cmd_message(args: argparse.Namespace) -> int:
    project = cli.open_project(args)
    obj = owner_object(args.object, project, "messages")
    target = handle(project, obj)
    when = None if args.datetime is None else parse_datetime(args.datetime)
    made: dict[str, Any] = {}
    sha = apply(
        project, "", [lambda: made.setdefault("m", target.create_message(args.text, args.user, when))]
    )
    return report(project, args, (*obj, "message", made["m"].id), sha)


def cmd_rm(args: argparse.Namespace) -> int:
    project = cli.open_project(args)
    obj = parse_object(args.object, project)
    handle(project, obj)  # a missing object: an error that says how to list what exists
    if len(obj) == 2:
        kind, name = obj
        delete = {
            "action": project.delete_action,
            "entity": project.delete_entity,
            "template": project.delete_template,
            "module": project.delete_module,
        }[kind]
        step: Step = lambda: delete(name)  # noqa: E731
    elif obj[2] == "module":
        owner = handle(project, obj[:2])
        step = lambda: owner.delete_module(obj[3])  # noqa: E731
    else:
        owner = handle(project, obj[:2])
        kept = [message.contents for key, message in owner.messages.items() if key != obj[3]]
        step = lambda: setattr(owner, "messages", kept)  # noqa: E731  (the others are kept as they are)
    sha = apply(project, "", [step])
    code = report(project, args, obj, sha)
    if sha is not None and not args.json:
        print(f"undo with '{PROG} revert {sha[:7]}'")
    return code


# ---------------------------------------------------------------------------
# The parser


def register(add: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Add the write commands with ``add(name, func, help)`` (cli.build_parser's helper)."""

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--json", action="store_true", help="print JSON {commit, subject, object} instead of text"
        )

    p = add("new", cmd_new, "create an action, entity, module or template (one commit)")
    kinds = p.add_subparsers(dest="new_kind", metavar="KIND", required=True)

    def attributes(q: argparse.ArgumentParser, kind: str) -> None:
        q.add_argument("name", metavar="NAME")
        q.add_argument("--type", help="e.g. recording")
        q.add_argument("--location", help="e.g. rig-C")
        q.add_argument("--datetime", metavar="ISO", help="when it happened: 2026-11-01T14:00")
        q.add_argument("--tag", action="append", metavar="TAG", help="a tag (repeat for more)")
        q.add_argument("--user", action="append", metavar="USER", help="a user (repeat for more)")
        if kind == "action":
            q.add_argument("--entity", action="append", metavar="ENTITY", help="an entity (repeat for more)")
        json_flag(q)

    for kind in ("action", "entity"):
        attributes(kinds.add_parser(kind, parents=[common], help=f"a new {kind}: NAME [--type T] …"), kind)
    q = kinds.add_parser("module", parents=[common], help="a new module: OWNER NAME [--template T]")
    q.add_argument("owner", metavar="OWNER", help="action/NAME, entity/NAME, or project for a project module")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--template", metavar="T", help="fill it from template T (default: empty)")
    json_flag(q)
    q = kinds.add_parser("template", parents=[common], help="a new template: NAME [--file F.toml]")
    q.add_argument("name", metavar="NAME")
    q.add_argument("--file", metavar="F.toml", help="a TOML file with the template's keys (default: empty)")
    json_flag(q)

    value_help = (
        "values are TOML literals (3, 2.5, true, [1, 2], 2026-11-01T14:00:00), quantities "
        "('2.9 mm'), or plain text (rig-C); quote text that looks like a number: '\"42\"'"
    )
    p = add(
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
    json_flag(p)

    p = add(
        "tag",
        cmd_tag,
        "add (+TAG or TAG) and remove (-TAG) tags of an action or entity (one commit)",
        usage=f"{PROG} tag OBJECT [+TAG | -TAG | TAG]... [--json]",
    )
    p.add_argument("object", metavar="OBJECT")
    p.add_argument("changes", nargs=argparse.REMAINDER, metavar="+TAG|-TAG")
    json_flag(p)

    p = add("message", cmd_message, "add a message to an action or entity (one commit)")
    p.add_argument("object", metavar="OBJECT")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--user", help="who wrote it (default: you, as on your commits)")
    p.add_argument("--datetime", metavar="ISO", help="when (default: now)")
    json_flag(p)

    p = add(
        "rm",
        cmd_rm,
        "delete an action, entity, module, template or message (one commit; 'revert' undoes it)",
    )
    p.add_argument("object", metavar="OBJECT")
    json_flag(p)
