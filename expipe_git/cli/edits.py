"""What the commands that write share: reading addresses and typed values, one commit per command.

Each command is one commit, made through the library's public API (several
changes of one command are one transaction), and prints the commit it made
(``<short id> <subject>``), or with ``--json`` an object
``{"commit", "subject", "object"}`` (:func:`report`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

from .. import layout, merge, values
from ..errors import InvalidTypeError, InvalidValueError, NotFoundError
from ..model import Project
from .base import PLURAL, PROG, CliError, address_guesses, user_path
from .rendering import print_json

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
        guesses = address_guesses(project, text)
        if guesses:
            raise CliError(f"{text!r} is not an address; type {' or '.join(guesses)}") from None
        raise
    return obj


def owner_object(text: str, project: Project, what: str) -> tuple[str, ...]:
    """Read the address of an action or entity, which ``what`` (e.g. "messages") belongs to."""
    obj = parse_object(text, project)
    if len(obj) != 2 or obj[0] not in ("action", "entity"):
        raise CliError(f"{what} belong to actions and entities; {text!r} is {layout.describe(obj)}")
    return obj


def handle(project: Project, obj: tuple[str, ...]) -> Any:
    """Return the object at address ``obj`` (an Action, Entity, Module, Template or Message)."""
    if obj == ("project",):
        raise CliError("the project itself cannot be changed this way; give an object's address")
    kind, name = obj[0], obj[1]
    mapping = getattr(project, PLURAL[kind])
    if name not in mapping:
        raise NotFoundError(
            f"{kind} {name!r} does not exist; run '{PROG} list {PLURAL[kind]}' to see what exists"
        )
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
        raise CliError(f"cannot read {text!r}: give KEY=VALUE, e.g. depth='2.9 mm' or location=rig-C")
    return key.strip(), merge.parse_value_text(raw.strip())


def as_list(value: Any, key: str) -> list[str]:
    """A list of text typed as ``a,b`` or as a TOML array."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidTypeError(f'{key}: expected a list of text, e.g. {key}=a,b or {key}=\'["a", "b"]\'')


def template_file(path: pathlib.Path) -> dict:
    """The keys of a template in the TOML file ``path``, which the user named."""
    with user_path(path, "read the template file"):
        text = path.read_text(encoding="utf-8")
    record = values.decode(values.parse(text, what=str(path)), what=str(path))
    if not isinstance(record, dict):
        raise InvalidTypeError(f"{path}: a template is a table of keys")
    return record


# ---------------------------------------------------------------------------
# Steps, applied as one commit per command


def apply(project: Project, subject: str, steps: list[Step]) -> str | None:
    """Run ``steps`` as one commit (one step: its own commit); return the new HEAD, or None."""
    before = project.session.repository.head()
    if len(steps) == 1:
        steps[0]()
    elif steps:
        with project.transaction(subject):
            for step in steps:
                step()
    after = project.session.repository.head()
    return None if after == before or after is None else after.decode()


def report(project: Project, args: argparse.Namespace, obj: tuple[str, ...], sha: str | None) -> int:
    """Print the commit a command made (or that it had nothing to do); return the exit status."""
    address = layout.address(obj)
    commit = None if sha is None else project.get_commit(sha)
    if args.json:
        print_json({"commit": sha, "subject": None if commit is None else commit.subject, "object": address})
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
            raise CliError(unknown_attribute(kind, key, target.name))
        if key == "datetime":
            value = parse_datetime(value)
        elif key in LIST_KEYS:
            value = as_list(value, key)
        elif not isinstance(value, str):
            raise InvalidTypeError(f"{key}: expected text, got {type(value).__name__} ({value!r})")
        steps.append(functools.partial(setattr, target, key, value))
    return steps


def unknown_attribute(kind: str, key: str, name: str) -> str:
    allowed = ", ".join(ATTRIBUTE_KEYS[kind])
    if kind == "message":
        return f"a message has no {key!r}: set one of {allowed}"
    return (
        f"an {kind} has no attribute {key!r}: set one of {allowed} ('{PROG} tag' adds and "
        f"removes tags); keep other values in a module: '{PROG} new module {kind}/{name} NAME', "
        f"then '{PROG} set {kind}/{name}/module/NAME {key}=...'"
    )


def set_key(record: Any, path: tuple[str, ...], value: Any) -> None:
    """Set the dotted key ``path`` of a module or template; missing tables are made."""
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


def record_steps(record: Any, pairs: list[tuple[str, Any]]) -> list[Step]:
    """Steps setting dotted keys (``a.b.c``) of a module or template."""
    steps: list[Step] = []
    for key, value in pairs:
        path = tuple(part.strip() for part in key.split("."))
        if not all(path):
            raise CliError(f"cannot read the key {key!r}: join nested keys with '.', e.g. probe.depth")
        steps.append(functools.partial(set_key, record, path, value))
    return steps


class Deferred:
    """Stands for an object a step before creates; attributes are set on it once it exists."""

    _made: dict[str, Any]

    def __init__(self, made: dict[str, Any], name: str):
        object.__setattr__(self, "_made", made)
        object.__setattr__(self, "name", name)

    def __setattr__(self, key: str, value: Any) -> None:
        setattr(self._made["obj"], key, value)
