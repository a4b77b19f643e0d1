"""The ``expipe-git`` command: look at a project and commit hand edits.

Every command reads or writes through the library, never through the git
binary. Errors the library raises on purpose become one line on stderr,
``expipe-git: error: <message>``, and exit status 1; usage errors exit 2
(argparse's convention) and Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import pathlib
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from . import __version__, history, layout, pager
from .errors import ExpipeError, InvalidValueError, NotFoundError
from .model import Project, create_project, get_project

PROG = "expipe-git"
KINDS = ("actions", "entities", "templates", "modules")
_KIND_ALIASES = {"action": "actions", "entity": "entities", "template": "templates", "module": "modules"}
TRACEBACK_ENV = "EXPIPE_GIT_TRACEBACK"

JSON_NOTE = (
    "JSON output: datetimes, dates and times are ISO 8601 strings; a Quantity is "
    '{"value": ..., "unit": "um"} (plus "uncertainty" for an UncertainQuantity), '
    "its value a number or nested lists; numpy arrays are lists and numpy scalars numbers; "
    'NaN and infinities, which JSON cannot hold, are the strings "NaN", "Infinity" and '
    '"-Infinity" (float() reads them back); None is null; integer keys become strings.'
)


class CliError(Exception):
    """A problem the CLI itself found (no project here, a bad path)."""


# ---------------------------------------------------------------------------
# Finding the project


def _base(args: argparse.Namespace) -> pathlib.Path:
    """The folder -C names, or the current folder."""
    return pathlib.Path(args.project) if getattr(args, "project", None) else pathlib.Path.cwd()


def _open_project(args: argparse.Namespace) -> Project:
    start = _base(args).absolute()
    if not start.exists():
        raise CliError(f"{start} does not exist; pass -C with the folder of an expipe_git project")
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if (candidate / layout.CONFIG_FILE).is_file():
            return get_project(candidate)
    raise CliError(
        f"no expipe_git project in {folder} or any folder above it; "
        f"run '{PROG} init' to create one, or pass -C with the project folder"
    )


# ---------------------------------------------------------------------------
# Values for people and for JSON


def _quantity_type() -> type | None:
    quantities = sys.modules.get("quantities")
    return None if quantities is None else quantities.Quantity


def _jsonable(value: Any) -> Any:
    """Turn a stored value into plain JSON data (see JSON_NOTE)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    quantity = _quantity_type()
    if quantity is not None and isinstance(value, quantity):
        out = {"value": _jsonable(value.magnitude.tolist()), "unit": value.dimensionality.string}
        uncertainty = getattr(value, "uncertainty", None)
        if uncertainty is not None:
            out["uncertainty"] = _jsonable(getattr(uncertainty, "magnitude", uncertainty).tolist())
        return out
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic)):
        return _jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _print_json(data: Any) -> None:
    print(json.dumps(_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False))


def _scalar_text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    quantity = _quantity_type()
    if quantity is not None and isinstance(value, quantity):
        return " ".join(str(value).split())  # an array quantity's str may wrap
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        return " ".join(str(value).split())
    return str(value)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (Mapping, list, tuple))


def _render(value: Any, indent: str = "") -> list[str]:
    """Lines showing a record to a person, nested by indentation."""
    if isinstance(value, Mapping):
        lines = []
        for key, item in value.items():
            lines.extend(_render_item(f"{indent}{key}:", item, indent))
        return lines
    if isinstance(value, (list, tuple)):
        if all(_is_scalar(v) for v in value):
            return [indent + _list_text(value)]
        lines = []
        for item in value:
            lines.extend(_render_item(f"{indent}-", item, indent))
        return lines
    return [indent + line for line in _scalar_text(value).splitlines() or [""]]


def _render_item(label: str, item: Any, indent: str) -> list[str]:
    inner = indent + "  "
    if isinstance(item, Mapping):
        return [label] + (_render(item, inner) if item else [inner + "{}"])
    if isinstance(item, (list, tuple)) and not all(_is_scalar(v) for v in item):
        return [label, *_render(item, inner)]
    if isinstance(item, (list, tuple)):
        return [f"{label} {_list_text(item)}"]
    text = _scalar_text(item)
    if "\n" in text:
        return [f"{label} |", *(inner + line for line in text.splitlines())]
    return [f"{label} {text}"]


def _list_text(items: Any) -> str:
    return ", ".join(_scalar_text(v) for v in items) if items else "[]"


# ---------------------------------------------------------------------------
# Commands


def cmd_init(args: argparse.Namespace) -> int:
    base = _base(args)
    target = (base / args.path if args.path else base).absolute()
    if (target / layout.CONFIG_FILE).is_file():
        raise CliError(f"{target} is already an expipe_git project; nothing to do")
    if target.exists():
        if not target.is_dir():
            raise CliError(f"{target} is a file; choose a new or empty folder")
        if any(target.iterdir()):
            raise CliError(f"{target} is not empty; choose a new or empty folder for the project")
    project = create_project(target, name=args.name, init=True)
    print(f"Created expipe_git project {project.id!r} in {project.path}")
    return 0


_STATUS_LETTER = {"modified": "M", "added": "A", "deleted": "D"}


def cmd_status(args: argparse.Namespace) -> int:
    from . import merge

    project = _open_project(args)
    edits = project.status()
    pending = None if args.json else merge.pending_merge(project)
    if pending is not None:
        left = len(project.conflicts)
        print(
            f"a merge of {pending['theirs'][:7]} ({pending['message']}) is stopped: {left} conflict"
            f"{'s' * (left != 1)} unresolved, {pending['resolved']} resolved; '{PROG} conflicts' lists "
            f"them, '{PROG} merge --continue' or '{PROG} merge --abort' ends the merge"
        )
    if args.json:
        _print_json([{"path": e.path, "state": e.state} for e in edits])
    elif not edits and pending is None:
        print("clean: no hand edits since the last commit")
    else:
        for edit in edits:
            if edit.state != "untracked":
                print(f"{_STATUS_LETTER.get(edit.state, '?')} {edit.path}")
        outside = [edit.path for edit in edits if edit.state == "untracked"]
        if outside:
            print(f"not part of the project ('{PROG} commit' leaves them alone; .gitignore can hide them):")
            print("\n".join(f"? {path}" for path in outside))
    return 0


def _summary(obj: Any, kind: str) -> dict:
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


def _dash(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


# `list` filters: option -> keyword of project.actions.where(...)
_LIST_FILTERS = {
    "tag": "tags",
    "any_tag": "any_tags",
    "type": "type",
    "location": "location",
    "user": "users",
    "entity": "entities",
    "since": "since",
    "until": "until",
}


def _list_criteria(args: argparse.Namespace) -> dict:
    """Return the where() criteria the filter options of `list` give."""
    criteria = {key: getattr(args, option) for option, key in _LIST_FILTERS.items()}
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


def cmd_list(args: argparse.Namespace) -> int:
    project = _open_project(args)
    criteria = _list_criteria(args)
    if args.kind in ("actions", "entities") and (criteria or args.csv):
        found = getattr(project, args.kind).where(**criteria)
        if args.csv:
            sys.stdout.write(found.to_csv(args.module))
            return 0
        mapping: Any = found
    else:
        mapping = None
    if args.kind is None:
        names = {kind: list(getattr(project, kind)) for kind in KINDS}
        if args.json:
            _print_json(names)
            return 0
        for kind in KINDS:
            print(f"{kind}: {len(names[kind])}")
            for name in names[kind]:
                print(f"  {name}")
        return 0
    if mapping is None:
        mapping = getattr(project, args.kind)
    singular = {v: k for k, v in _KIND_ALIASES.items()}[args.kind]
    if args.kind in ("actions", "entities"):
        rows = [_summary(mapping[name], singular) for name in mapping]
        if args.json:
            _print_json(rows)
            return 0
        table = [
            (r["name"], _dash(r["type"]), _dash(r["datetime"]), ", ".join(r["tags"]) or "-") for r in rows
        ]
        widths = [max((len(row[i]) for row in table), default=0) for i in range(3)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
            print("  ".join([*cells, row[3]]))
        return 0
    names = list(mapping)
    if args.json:
        _print_json([{"name": name, "address": f"{singular}/{name}"} for name in names])
    else:
        for name in names:
            print(name)
    return 0


def _not_found_hint(lookup: Callable[[], Any], hint: str) -> Any:
    try:
        return lookup()
    except NotFoundError as exc:
        raise NotFoundError(f"{exc}; {hint}") from None


def _describe_object(project: Project, obj: tuple[str, ...]) -> tuple[dict, list[str]]:
    """Return (JSON data, plain lines) for the object at address ``obj``."""
    address = layout.address(obj)
    title = layout.describe(obj)
    if obj == ("project",):
        counts = {kind: len(getattr(project, kind)) for kind in KINDS}
        data = {
            "address": address,
            "kind": "project",
            "name": project.id,
            "path": str(project.path),
            "config": project.config.stored,
            "counts": counts,
        }
        lines = [f"project {project.id!r} in {project.path}", *_render(project.config.stored)]
        lines += [f"{kind}: {count}" for kind, count in counts.items()]
        return data, lines
    kind, name = obj[0], obj[1]
    if kind in layout.FOLDER_KINDS:
        folder = layout.FOLDER_KINDS[kind]
        owner = _not_found_hint(
            lambda: getattr(project, folder)[name], f"run '{PROG} list {folder}' to see what exists"
        )
        if len(obj) == 2:
            attributes = owner.attributes
            modules = list(owner.modules)
            message_map = owner.messages
            messages = [message_map[m] for m in message_map]
            data = {
                "address": address,
                "kind": kind,
                "name": name,
                "attributes": attributes,
                "modules": modules,
                "message_count": len(messages),
                "messages": [m.id for m in messages],
            }
            lines = [title, *_render(attributes)]
            lines.append(f"modules ({len(modules)}): {', '.join(modules) if modules else '-'}")
            lines.append(f"messages: {len(messages)}")
            for message in messages:
                contents = message.contents
                first = (str(contents.get("text", "")).splitlines() or [""])[0]
                lines.append(f"  {message.id}  {contents.get('user')}: {first}")
            return data, lines
        hint = f"run '{PROG} show {kind}/{name}' to see its modules and messages"
        if obj[2] == "module":
            module = _not_found_hint(lambda: owner.modules[obj[3]], hint)
            return _record_view(address, "module", obj[3], title, module.contents, owner=f"{kind}/{name}")
        message = _not_found_hint(lambda: owner.messages[obj[3]], hint)
        contents = message.contents
        data = {
            "address": address,
            "kind": "message",
            "id": message.id,
            "owner": f"{kind}/{name}",
            **contents,
        }
        return data, [title, *_render(contents)]
    if kind == "template":
        template = _not_found_hint(
            lambda: project.templates[name], f"run '{PROG} list templates' to see what exists"
        )
        return _record_view(address, "template", name, title, template.contents)
    module = _not_found_hint(lambda: project.modules[name], f"run '{PROG} list modules' to see what exists")
    return _record_view(address, "module", name, title, module.contents, owner="project")


def _record_view(
    address: str, kind: str, name: str, title: str, contents: Any, owner: str | None = None
) -> tuple[dict, list[str]]:
    data = {"address": address, "kind": kind, "name": name}
    if owner is not None:
        data["owner"] = owner
    data["contents"] = contents
    body = _render(contents) if contents not in ({}, []) else ["(empty)"]
    return data, [title, *body]


def _split_revision_object(text: str) -> tuple[str | None, str]:
    """Split ``REV:OBJECT`` (``HEAD~2:action/rec-1``, ``yesterday 14:00:action/rec-1``)."""
    for at, char in enumerate(text):
        if char == ":" and at and _is_address(text[at + 1 :]):
            return text[:at], text[at + 1 :]
    return None, text


def cmd_show(args: argparse.Namespace) -> int:
    revision, address = _split_revision_object(args.object)
    if not _is_address(address):
        return cmd_show_commit(args)
    obj = layout.parse_address(address)
    project = _open_project(args)
    if revision is not None:
        project = project.at(revision)
    data, lines = _describe_object(project, obj)
    if args.json:
        _print_json(data)
    else:
        print("\n".join(lines))
    return 0


def _commit_path(project: Project, text: str) -> pathlib.Path | str:
    """A path from the current folder or, as ``status`` prints it, from the project folder."""
    here = pathlib.Path(text).absolute()
    if here.exists() or (not (project.path / text).exists() and here.is_relative_to(project.path)):
        return here
    return text


def cmd_commit(args: argparse.Namespace) -> int:
    project = _open_project(args)
    message = "\n\n".join(part.strip("\n") for part in args.message)
    paths = [_commit_path(project, path) for path in args.paths] or None
    sha = project.commit(message, paths)
    if sha is None:
        print("nothing to commit: no hand edits since the last commit")
    else:
        print(sha)
    return 0


def _history_lines(project: Project, limit: int | None = None) -> list[str]:
    """One line per commit, newest first: short id and subject."""
    return [f"{sha[:7]} {subject}" for sha, subject in project.store.subjects(limit)]


def cmd_tour(args: argparse.Namespace) -> int:
    from . import tour

    base = _base(args)
    folder = (base / args.dir).absolute()
    path = tour.run(folder, write=print)
    project = get_project(path)
    print(f"History of the project at {project.path}, newest first:")
    for line in _history_lines(project):
        print(line)
    return 0


# -- import from expipe 0.6 ---------------------------------------------------

IMPORT_DIFFERS = 3  # exit status: imported, but verification found differences


def _progress_bar(stream: Any, width: int = 30) -> Callable[[int, int, str], None]:
    """Return a progress callback drawing one line on a terminal, redrawn in place."""
    shown = {"line": ""}

    def draw(done: int, total: int, what: str) -> None:
        filled = width * done // total if total else width
        line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {what}"
        columns = shutil.get_terminal_size((100, 20)).columns - 1
        line = line[:columns]
        stream.write("\r" + line + " " * max(0, len(shown["line"]) - len(line)))
        if done >= total:
            stream.write("\n")
            line = ""
        stream.flush()
        shown["line"] = line

    return draw


def cmd_import(args: argparse.Namespace) -> int:
    from .migrate import import_expipe_project, verify_import

    base = _base(args)
    progress = _progress_bar(sys.stderr) if sys.stderr.isatty() else None
    if args.verify_only:
        target = (base / args.destination).absolute()
        if not (target / layout.CONFIG_FILE).is_file():
            raise CliError(f"{target} is not an expipe_git project; --verify-only compares an earlier import")
        with get_project(target) as project:
            report = verify_import(base / args.source, project, progress=progress)
        print(report)
        return _import_status(report)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # differences are reported below, with the exit status
        project = import_expipe_project(
            base / args.source,
            base / args.destination,
            single_commit=args.single_commit,
            verify=not args.no_verify,
            data=args.data,
            progress=progress,
        )
    report = project.import_report
    print(report)
    return _import_status(report)


def _import_status(report: Any) -> int:
    if not report.ok:
        _error(
            f"{len(report.differences)} value(s) differ between {report.source} and the imported project "
            f"(listed above); the project is at {report.destination}"
        )
        return IMPORT_DIFFERS
    return 0


# ---------------------------------------------------------------------------
# Remotes: clone, remote, fetch, pull, push, sync


def _progress() -> Callable[[str], None] | None:
    """Show transfer progress on stderr, and only when a person watches it."""
    if not sys.stderr.isatty():
        return None

    def show(text: str) -> None:
        sys.stderr.write(text)
        sys.stderr.flush()

    return show


def _on_conflict(args: argparse.Namespace) -> str:
    return "ours" if args.ours else "theirs" if args.theirs else "raise"


def cmd_clone(args: argparse.Namespace) -> int:
    from .model import clone
    from .remote import public_url

    target = (_base(args) / args.dir).absolute()
    project = clone(args.url, target, progress=_progress())
    count = len(project.actions)
    print(f"Cloned {public_url(args.url)} into {project.path} ({count} action{'s' * (count != 1)})")
    return 0


def cmd_remote(args: argparse.Namespace) -> int:
    project = _open_project(args)
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


def cmd_fetch(args: argparse.Namespace) -> int:
    project = _open_project(args)
    sha = project.fetch(args.remote, progress=_progress())
    if sha is None:
        print(f"{args.remote} has no branch main yet")
    else:
        print(f"{args.remote}/main is at {sha[:7]}")
    return 0


def _pull(project: Project, args: argparse.Namespace) -> None:
    sha = project.pull(args.remote, on_conflict=_on_conflict(args), progress=_progress())
    if sha is None:
        print(f"up to date with {args.remote}/main")
    else:
        print(f"main is now at {sha[:7]} (pulled from {args.remote})")


def _push(project: Project, args: argparse.Namespace) -> None:
    sha = project.push(args.remote, progress=_progress())
    if sha is None:
        print(f"{args.remote} has everything already")
    else:
        print(f"pushed main to {args.remote}: {sha[:7]}")


def cmd_pull(args: argparse.Namespace) -> int:
    _pull(_open_project(args), args)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    _push(_open_project(args), args)
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    project = _open_project(args)
    _pull(project, args)
    _push(project, args)
    return 0


# ---------------------------------------------------------------------------
# Merging (expipe_git.merge)


def _conflict_json(conflict: Any) -> dict:
    from . import merge

    row = {"object": conflict.object, "key": conflict.key, "kind": conflict.kind, "path": conflict.path}
    sides = {"base": conflict.base, "ours": conflict.ours, "theirs": conflict.theirs}
    row.update({side: None if value is merge.ABSENT else value for side, value in sides.items()})
    row["absent"] = [side for side, value in sides.items() if value is merge.ABSENT]
    return row


def cmd_merge(args: argparse.Namespace) -> int:
    from .errors import MergeConflict

    project = _open_project(args)
    if args.continue_merge or args.abort:
        if args.rev:
            _error("merge --continue and --abort take no REV")
            return 2
        if args.abort:
            project.abort_merge()
            print("merge aborted: the project is as it was before it")
            return 0
    elif not args.rev:
        _error("merge needs REV (a branch, tag or commit id), or --continue or --abort")
        return 2
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


def cmd_conflicts(args: argparse.Namespace) -> int:
    from . import merge

    project = _open_project(args)
    pending = merge.pending_merge(project)
    found = project.conflicts if pending else []
    if args.json:
        _print_json([_conflict_json(c) for c in found])
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


def cmd_resolve(args: argparse.Namespace) -> int:
    from . import merge

    project = _open_project(args)
    conflict = (args.object, args.key)
    if args.value is not None:
        project.resolve(conflict, value=merge.parse_value_text(args.value))
    else:
        project.resolve(conflict, "ours" if args.ours else "theirs")
    left = len(project.conflicts)
    print(f"resolved {args.object} {args.key}".rstrip() + f"; {left} unresolved")
    return 0


# ---------------------------------------------------------------------------
# History: log, show COMMIT, diff, blame, revert

_ADDRESS_KINDS = ("project", "action", "entity", "template", "module")
_SIGN = {"added": "+", "removed": "-", "modified": "~"}
_COLOR = {"added": "32", "removed": "31", "modified": "33", "commit": "33"}


def _is_address(text: str) -> bool:
    """Whether ``show`` was given an object address rather than a revision."""
    return text.strip("/").split("/")[0] in _ADDRESS_KINDS


def _use_color() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _paint(text: str, what: str, color: bool) -> str:
    return f"\033[{_COLOR[what]}m{text}\033[0m" if color else text


def _value_text(value: Any) -> str:
    """A stored value on one line, units included: ``2.0 um``, ``[a, b]``, ``{x: 1}``."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_value_text(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    return _scalar_text(value).replace("\n", "\\n")


def _key_text(key: tuple) -> str:
    return ".".join(str(part) for part in key)


def _change_lines(change: history.Change, color: bool) -> list[str]:
    where = change.address or change.path
    sign = _SIGN[change.kind]
    if change.key == ():
        if change.kind == "added":
            lines = [f"{sign} {where}: created"]
            if isinstance(change.new, Mapping):
                lines += [f"    {_key_text(k)}: {_value_text(v)}" for k, v in history.leaves(change.new) if k]
        elif change.kind == "removed":
            lines = [f"{sign} {where}: deleted"]
        else:
            lines = [f"{sign} {where}: {_value_text(change.old)} -> {_value_text(change.new)}"]
    elif change.kind == "added":
        lines = [f"{sign} {where} {_key_text(change.key)}: {_value_text(change.new)}"]
    elif change.kind == "removed":
        lines = [f"{sign} {where} {_key_text(change.key)}: {_value_text(change.old)}"]
    else:
        lines = [
            f"{sign} {where} {_key_text(change.key)}: {_value_text(change.old)} -> {_value_text(change.new)}"
        ]
    return [_paint(lines[0], change.kind, color), *lines[1:]]


def _change_json(change: history.Change) -> dict:
    return {
        "kind": change.kind,
        "path": change.path,
        "object": change.address,
        "key": list(change.key),
        "old": change.old,
        "new": change.new,
    }


def _commit_json(commit: history.Commit, changes: list[history.Change]) -> dict:
    return {
        "id": commit.id,
        "author": commit.author,
        "author_email": commit.author_email,
        "datetime": commit.datetime,
        "message": commit.message,
        "parents": list(commit.parents),
        "changes": [_change_json(c) for c in changes],
    }


def _under(change: history.Change, prefix: str | None) -> bool:
    return prefix is None or change.path == prefix or change.path.startswith(prefix + "/")


def _log_path(project: Project, text: str) -> str:
    """A file or folder path as ``status`` prints it (from the project folder) or from here."""
    here = pathlib.Path(text).absolute()
    if here.exists() and here.is_relative_to(project.path):
        return here.relative_to(project.path).as_posix().strip("/") or "."
    path = pathlib.PurePosixPath(text.replace("\\", "/")).as_posix().strip("/")
    top = path.split("/")[0]
    in_layout = top in (layout.CONFIG_FILE, "templates", "modules", *layout.KIND_OF_FOLDER)
    if not (project.path / path).exists() and not in_layout:
        raise CliError(
            f"{text!r} is neither an object address (action/rec-1, entity/rat1, template/daq, "
            f"module/NAME) nor a file of the project; '{PROG} status' and '{PROG} list' show both"
        )
    return path


def cmd_log(args: argparse.Namespace) -> int:
    project = _open_project(args)
    if args.object is None or _is_address(args.object):
        obj = None if args.object is None else layout.parse_address(args.object)
        prefix = None if obj is None else history.object_path(obj)
    else:
        obj = prefix = _log_path(project, args.object)
        if obj == ".":
            obj = prefix = None
    options = {"since": args.since, "until": args.until, "author": args.author, "limit": args.limit}
    if args.json:
        commits = project.log(path=obj, **options)
        _print_json([_commit_json(c, [x for x in c.changes if _under(x, prefix)]) for c in commits])
        return 0
    commits = history.iter_log(project, path=obj, **options)  # printed as found
    color = _use_color()
    for commit in commits:
        if args.oneline:
            print(f"{_paint(commit.id[:7], 'commit', color)} {commit.subject}")
            continue
        when = commit.datetime.strftime("%Y-%m-%d %H:%M:%S %z")
        print(f"{_paint(commit.id[:7], 'commit', color)} {when} {commit.author}  {commit.subject}")
        for change in commit.changes:
            if _under(change, prefix):
                print("\n".join("    " + line for line in _change_lines(change, color)))
    return 0


def address_guesses(project: Project, text: str) -> list[str]:
    """Addresses of the objects named ``text``, for errors that say what to type instead."""
    if "/" in text or ":" in text:
        return []
    return [f"{kind}/{text}" for kind in _ADDRESS_KINDS[1:] if text in getattr(project, _KIND_ALIASES[kind])]


def cmd_show_commit(args: argparse.Namespace) -> int:
    project = _open_project(args)
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
        _print_json(_commit_json(commit, commit.changes))
        return 0
    color = _use_color()
    print(_paint(f"commit {commit.id}", "commit", color))
    if len(commit.parents) > 1:
        print("Merge: " + " ".join(p[:7] for p in commit.parents))
    print(f"Author: {commit.author} <{commit.author_email}>")
    print(f"Date:   {commit.datetime.strftime('%Y-%m-%d %H:%M:%S %z')}")
    print()
    print("\n".join("    " + line if line else "" for line in commit.message.rstrip("\n").split("\n")))
    if commit.changes:
        print()
    for change in commit.changes:
        print("\n".join(_change_lines(change, color)))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    project = _open_project(args)
    if args.a is None and args.b != "HEAD":
        raise CliError(f"give A too: '{PROG} diff A B' compares two revisions")
    changes = project.diff(args.a, args.b)
    if args.json:
        _print_json([_change_json(c) for c in changes])
        return 0
    color = _use_color()
    for change in changes:
        print("\n".join(_change_lines(change, color)))
    return 0


def cmd_blame(args: argparse.Namespace) -> int:
    obj = layout.parse_address(args.object)
    project = _open_project(args)
    rows = history.blame_rows(project, obj)
    if args.json:
        _print_json(
            [
                {"key": list(key), "value": value, "commit": _commit_json(commit, [])}
                for key, value, commit in rows
            ]
        )
        return 0
    color = _use_color()
    width = max((len(commit.author) for _, _, commit in rows), default=0)
    for key, value, commit in rows:
        when = commit.datetime.strftime("%Y-%m-%d %H:%M")
        label = _key_text(key) if key else "(whole record)"
        print(
            f"{_paint(commit.id[:7], 'commit', color)} {when} {commit.author.ljust(width)}  "
            f"{label}: {_value_text(value)}"
        )
    return 0


def cmd_revert(args: argparse.Namespace) -> int:
    project = _open_project(args)
    commit = project.revert(args.commit)
    if commit is None:
        print("nothing to revert: the commit changed nothing")
    else:
        print(f"{commit.id} {commit.subject}")
    return 0


# ---------------------------------------------------------------------------
# serve: the local web view (expipe_git.web, an optional extra)


def cmd_serve(args: argparse.Namespace) -> int:
    from . import web

    if args.dir is not None:
        args.project = str(_base(args) / args.dir) if getattr(args, "project", None) else args.dir
    project = _open_project(args)
    app = web.load_app()  # before anything is printed: a missing extra is one error line
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a port number: use 1-65535, or 0 for a free port")
    app.serve(project, args.host, args.port, announce=lambda line: print(line, flush=True))
    return 0


def add_serve_parser(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "serve",
        cmd_serve,
        "serve a read-only web view of the project's records and history on this machine",
        epilog="Needs the web extra: pip install 'expipe_git[web]'. Only GET requests are answered; "
        "nothing a browser does changes the project.",
    )
    p.add_argument(
        "dir", nargs="?", metavar="DIR", help="the project folder (default: as -C, or the current one)"
    )
    p.add_argument(
        "--port", type=int, default=8000, help="the port to listen on (default: 8000; 0 picks a free one)"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1, this machine only; "
        "0.0.0.0 opens it to the network)",
    )


# Shared with cli_write.py (the commands that write) under public names

open_project = _open_project
print_json = _print_json
base_folder = _base


# ---------------------------------------------------------------------------
# The parser and main


def _kind(text: str) -> str:
    return _KIND_ALIASES.get(text, text)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-C",
        "--project",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="the project folder (default: the current folder or the nearest folder above it "
        "holding expipe.toml); for init and tour, the folder relative paths start from",
    )
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="expipe projects kept in git: every change is one commit.",
        epilog=f"Errors print one line and exit with status 1 (2 for usage errors). "
        f"Set {TRACEBACK_ENV}=1 to see the Python traceback of an error.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable, help_text: str, **kwargs: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text, **kwargs)
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "create a project (a git repository) and print where", aliases=["create"])
    p.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help="new or empty folder for the project (default: the current folder)",
    )
    p.add_argument("--name", help="the project's name (default: the folder's name)")

    p = add(
        "status",
        cmd_status,
        "list files edited by hand and not committed (M modified, A added, D deleted), then "
        "files that are not part of the project (?)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of {path, state}")

    p = add(
        "list",
        cmd_list,
        "list actions, entities, templates or modules (default: all, counted)",
        epilog=JSON_NOTE,
    )
    p.add_argument(
        "kind", nargs="?", type=_kind, choices=KINDS, metavar="KIND", help="one of: " + ", ".join(KINDS)
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
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

    p = add(
        "show",
        cmd_show,
        "show an action, entity, module, template or message, or a commit and its key-level changes",
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
    p.add_argument("--json", action="store_true", help="print JSON instead of text (see below)")

    p = add(
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
        help="commit only the edits of these files or folders (default: every edit of the project's files)",
    )

    p = add(
        "tour",
        cmd_tour,
        "run the getting-started walkthrough in DIR (a project 'test' is made "
        "there), then print the project's history",
    )
    p.add_argument("dir", metavar="DIR", help="folder to run the walkthrough in (created if missing)")

    revision_help = (
        "a commit id (or 4+ leading hex digits), HEAD, HEAD~2, HEAD^, a branch or a tag, "
        "or a time: '10 minutes ago', yesterday, 2026-11-01"
    )
    p = add(
        "log",
        cmd_log,
        "list commits newest first, each with its key-level changes (of OBJECT, if given)",
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
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = add(
        "diff",
        cmd_diff,
        "list the key-level changes from revision A to revision B; with no A, those of the hand edits "
        "(files changed and not committed) against the last commit",
        epilog=JSON_NOTE,
    )
    p.add_argument("a", metavar="A", nargs="?", help=revision_help)
    p.add_argument("b", metavar="B", nargs="?", default="HEAD", help="(default: HEAD)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = add(
        "blame",
        cmd_blame,
        "show, for each key of a module, template or action/entity's attributes, the commit that set it",
        epilog=JSON_NOTE,
    )
    p.add_argument("object", metavar="OBJECT", help="an address such as action/rec-1/module/tracking")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    p = add(
        "revert",
        cmd_revert,
        "undo a commit's changes key by key in one new commit, and print its id; refused, with "
        "nothing written, if a later commit changed the same keys",
    )
    p.add_argument("commit", metavar="COMMIT", help=revision_help)
    p = add(
        "import",
        cmd_import,
        "import an expipe 0.6 project (a folder of YAML files) into a new expipe_git project, "
        "then compare every value with the source",
        epilog=f"The source is only read. DEST must not exist; it appears only if the import "
        f"succeeds. Exit status: 0 imported and verified, 1 an error (nothing written), "
        f"{IMPORT_DIFFERS} imported but some values differ (listed). See docs/migration.md.",
    )
    p.add_argument("source", metavar="SOURCE", help="the expipe 0.6 project folder (holding expipe.yaml)")
    p.add_argument("destination", metavar="DEST", help="the new project's folder (must not exist)")
    p.add_argument(
        "--single-commit",
        action="store_true",
        help="make one commit of everything (default: one commit per object, dated by its registered time)",
    )
    p.add_argument("--no-verify", action="store_true", help="skip comparing the result with the source")
    p.add_argument(
        "--verify-only",
        action="store_true",
        help="import nothing: compare DEST, made by an earlier import, with SOURCE again",
    )
    data = p.add_mutually_exclusive_group()
    data.add_argument(
        "--copy-data",
        dest="data",
        action="store_const",
        const="copy",
        default="reference",
        help="copy each data/ folder (default: link to the source's files)",
    )
    data.add_argument(
        "--hardlink-data",
        dest="data",
        action="store_const",
        const="hardlink",
        help="hard-link the files of each data/ folder (same file system only)",
    )

    p = add(
        "clone",
        cmd_clone,
        "copy a shared project (a path, file://, git://, http(s):// or ssh URL) into a new folder",
    )
    p.add_argument(
        "url", metavar="URL", help="where the project is shared; a password in it is never printed"
    )
    p.add_argument("dir", metavar="DIR", help="new or empty folder for the copy")

    p = add("remote", cmd_remote, "list, add or remove remotes (default: list them)")
    p.set_defaults(remote_command="list")
    remote_sub = p.add_subparsers(dest="remote_command", metavar="ACTION")
    r = remote_sub.add_parser("add", parents=[common], help="add a remote: NAME URL")
    r.add_argument("name", metavar="NAME")
    r.add_argument("url", metavar="URL")
    r = remote_sub.add_parser("remove", parents=[common], aliases=["rm"], help="remove a remote: NAME")
    r.add_argument("name", metavar="NAME")
    remote_sub.add_parser("list", parents=[common], help="list remotes and their URLs (without passwords)")

    def remote_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("remote", nargs="?", default="origin", metavar="REMOTE", help="default: origin")

    def conflict_args(p: argparse.ArgumentParser) -> None:
        side = p.add_mutually_exclusive_group()
        side.add_argument("--ours", action="store_true", help="resolve every conflict with our value")
        side.add_argument("--theirs", action="store_true", help="resolve every conflict with theirs")

    remote_arg(add("fetch", cmd_fetch, "fetch the remote's main into refs/remotes/REMOTE/main"))
    p = add("pull", cmd_pull, "fetch, then fast-forward or merge the remote's main into ours")
    remote_arg(p)
    conflict_args(p)
    remote_arg(add("push", cmd_push, "push main to the remote (never forced: pull first if it moved)"))
    p = add("sync", cmd_sync, "pull, then push")
    remote_arg(p)
    conflict_args(p)

    p = add(
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

    p = add("conflicts", cmd_conflicts, "list the unresolved conflicts of a stopped merge", epilog=JSON_NOTE)
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list of {object, key, kind, path, base, ours, theirs, absent}; "
        "absent lists the sides where the key or record does not exist",
    )

    p = add(
        "resolve",
        cmd_resolve,
        "resolve one conflict of a stopped merge; then 'merge --continue'",
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
    _add_gc_command(add)

    add_serve_parser(add)

    from . import cli_write  # it builds on this module's helpers

    cli_write.register(add, common)
    return parser


# -- gc: pack the project's objects now ---------------------------------------------


def cmd_gc(args: argparse.Namespace) -> int:
    from .git import packing

    project = _open_project(args)
    git_dir = os.path.join(project.path, ".git")
    before = packing.objects_usage(git_dir)
    report = packing.pack_now(git_dir, everything=True)
    after = packing.objects_usage(git_dir)
    assert report is not None  # pack_now waits for a packing running elsewhere
    if args.json:
        _print_json(
            {
                "loose_packed": report.loose_packed,
                "packs_before": report.packs_before,
                "packs_after": report.packs_after,
                "files_before": before[0],
                "bytes_before": before[1],
                "files_after": after[0],
                "bytes_after": after[1],
            }
        )
    else:
        print(
            f"packed {report.loose_packed} loose objects; {report.packs_before} packs before, "
            f"{report.packs_after} now; .git/objects: {before[0]} files, {before[1] / 1024:.0f} KiB "
            f"-> {after[0]} files, {after[1] / 1024:.0f} KiB"
        )
    return 0


def _add_gc_command(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "gc",
        cmd_gc,
        "pack every loose object and all packs into one pack now (expipe_git also packs by itself "
        "as objects accumulate); safe while other processes read and write",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and not isinstance(exc, ExpipeError):
        text = f"not found: {exc.args[0]}" if len(exc.args) == 1 else str(exc)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


# Commands whose output may be long: shown through a pager on a terminal (pager.py).
PAGED_COMMANDS = frozenset({cmd_log, cmd_show, cmd_diff, cmd_blame, cmd_list, cmd_conflicts})


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version and usage errors
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        try:
            with pager.paged(args.func in PAGED_COMMANDS):
                return args.func(args)
            return 0  # the person quit the pager before the end
        except BrokenPipeError:
            # The reader went away (`expipe-git list | head`): stop quietly.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            return 141
        except (ExpipeError, CliError, KeyError, TypeError, ValueError, OSError) as exc:
            if os.environ.get(TRACEBACK_ENV):
                raise
            _error(_one_line(exc))
            return 1
        except Exception as exc:  # a bug: still one line, with how to see more
            if os.environ.get(TRACEBACK_ENV):
                raise
            _error(
                f"internal error ({type(exc).__name__}: {_one_line(exc)}); this is a bug in "
                f"expipe_git: run again with {TRACEBACK_ENV}=1 and report the traceback"
            )
            return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
