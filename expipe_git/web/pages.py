"""What each page shows, read from one snapshot of the project through the public API.

Every function takes ``view``: the project as it is at one commit
(``project.at(commit)``), so everything a page shows comes from the same
commit even while another program writes to the project. The functions
return plain data for the templates; formatting is :mod:`.display`'s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import history, layout
from ..errors import CorruptFileError, ExpipeError, InvalidValueError, NotFoundError
from ..model import Project
from . import display, timeline
from .table import ActionRow

HISTORY_PAGE_SIZE = 100
LOG_PAGE_SIZE = 100
# A bulk import changes every record in one commit; a page of all of them helps nobody.
COMMIT_CHANGES_SHOWN = 2000
RECENT = 12
# What a history page can blame: blame() works on records with keys.
_BLAMED_PARTS = {2, 4}


# ---------------------------------------------------------------------------
# Reading objects


def find(view: Project, obj: tuple[str, ...]) -> Any:
    """Return the API object at address ``obj``.

    Raises:
        NotFoundError: it does not exist in this snapshot.
    """
    kind = obj[0]
    if kind in layout.FOLDER_KINDS:
        owner = getattr(view, layout.FOLDER_KINDS[kind])[obj[1]]
        if len(obj) == 2:
            return owner
        return owner.modules[obj[3]] if obj[2] == "module" else owner.messages[obj[3]]
    if kind == "template":
        return view.templates[obj[1]]
    if kind == "module":
        return view.modules[obj[1]]
    raise NotFoundError(f"{layout.describe(obj)} has no page; the project is shown on the home page")


def _strings(value: Any) -> tuple[str, ...]:
    """A stored list of names as a tuple of text (a hand edit may have stored anything)."""
    if isinstance(value, (list, tuple)):
        return tuple(str(item) for item in value)
    return () if value is None else (str(value),)


def _when(value: Any) -> dt.datetime | None:
    return value if isinstance(value, dt.datetime) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def action_row(name: str, attributes: dict) -> ActionRow:
    return ActionRow(
        name=name,
        datetime=_when(attributes.get("datetime")),
        registered=_when(attributes.get("registered")),
        type=_text(attributes.get("type")),
        location=_text(attributes.get("location")),
        users=_strings(attributes.get("users")),
        entities=_strings(attributes.get("entities")),
        tags=_strings(attributes.get("tags")),
    )


def action_rows(view: Project, names: Iterable[str] | None = None) -> dict[str, ActionRow]:
    """Name -> row of every action (or of ``names``, skipping those that do not exist)."""
    actions = view.actions
    rows = {}
    for name in actions if names is None else names:
        try:
            rows[name] = action_row(name, actions[name].attributes)
        except NotFoundError:
            continue
        except CorruptFileError as exc:  # one broken file must not hide the other actions
            rows[name] = ActionRow(name, None, None, None, None, (), (), (), problem=str(exc))
    return rows


def changed_actions(project: Project, old: str, new: str) -> set[str]:
    """Names of the actions whose attributes differ between two commits."""
    return {
        change.object[1]
        for change in project.diff(old, new)
        if change.object is not None and change.object[0] == "action" and len(change.object) == 2
    }


# ---------------------------------------------------------------------------
# Pieces shared by pages


@dataclasses.dataclass(frozen=True)
class ChangeView:
    kind: str
    address: str | None
    obj: tuple[str, ...] | None
    key: str
    old: display.Shown
    new: display.Shown
    path: str


def change_view(change: history.Change) -> ChangeView:
    return ChangeView(
        kind=change.kind,
        address=change.address,
        obj=change.object,
        key=layout.key_label(change.key),
        old=display.show(change.old),
        new=display.show(change.new),
        path=change.path,
    )


@dataclasses.dataclass(frozen=True)
class CommitView:
    id: str
    short: str
    subject: str
    body: str
    author: str
    email: str
    when: str
    parents: tuple[str, ...]
    changes: tuple[ChangeView, ...]


def commit_view(
    commit: history.Commit, only: tuple[str, ...] | None = None, with_changes: bool = True
) -> CommitView:
    """A commit for a page; ``only`` keeps the changes of that object (and what it holds)."""
    changes: Sequence[history.Change] = ()
    if with_changes:  # only one object's: read only its files (a bulk import changed thousands)
        changes = commit.changes if only is None else commit.changes_of(only)
    subject, _, body = commit.message.partition("\n")
    return CommitView(
        id=commit.id,
        short=commit.id[:7],
        subject=subject,
        body=body.strip("\n"),
        author=commit.author,
        email=commit.author_email,
        when=display.when_text(commit.datetime),
        parents=commit.parents,
        changes=tuple(change_view(c) for c in changes),
    )


def pages_of(total: int, size: int, page: int) -> tuple[int, int, int]:
    """Return (page, last page, first index) with page clamped to what exists (1-based)."""
    last = max(1, (total + size - 1) // size)
    page = min(max(page, 1), last)
    return page, last, (page - 1) * size


def _events(commits: Sequence[history.Commit]) -> list[timeline.Event]:
    return [timeline.Event(c.datetime, c.author, c.id) for c in commits]


# ---------------------------------------------------------------------------
# Pages


def home(view: Project, link: Callable[[str], str], now: Project | None = None) -> dict:
    """The project: counts, recent activity and the activity timeline.

    ``now``: when ``view`` is an older state, the project at HEAD; the
    timeline then shows the whole history, with the day of ``view`` shaded,
    so that a click can travel on.
    """
    commits = view.log()
    events = _events(commits)
    drawn = events if now is None else _events(now.log())
    marked = None if now is None else commits[0].id if commits else None
    return {
        "name": view.id,
        "path": str(view.path),
        "counts": {
            "actions": len(view.actions),
            "entities": len(view.entities),
            "templates": len(view.templates),
            "modules": len(view.modules),
        },
        "commit_count": len(commits),
        "recent": [commit_view(c, with_changes=False) for c in commits[:RECENT]],
        "timeline": timeline.draw(drawn, link, marked=marked),
        "authors_drawn": timeline.legend(drawn),
        # By date, not by order: commits made elsewhere may be dated out of order.
        "first": display.when_text(min(e.when for e in events)) if events else "—",
        "last": display.when_text(max(e.when for e in events)) if events else "—",
        "config": display.show({k: v for k, v in view.config.items() if k != "storage_format"}),
    }


def listing(view: Project, kind: str) -> dict:
    """Entities, templates or project modules, with what a person wants to see of each."""
    rows = []
    if kind == "entities":
        for name in view.entities:
            attributes = view.entities[name].attributes
            rows.append(
                {
                    "name": name,
                    "address": f"entity/{name}",
                    "type": attributes.get("type"),
                    "tags": ", ".join(_strings(attributes.get("tags"))),
                    "registered": display.when_text(_when(attributes.get("registered"))),
                }
            )
    elif kind == "templates":
        for name in view.templates:
            template = view.templates[name]
            contents = template.contents
            rows.append(
                {
                    "name": name,
                    "address": f"template/{name}",
                    "identifier": template.identifier,
                    "keys": len(contents) if isinstance(contents, dict) else 0,
                }
            )
    else:
        for name in view.modules:
            contents = view.modules[name].contents
            rows.append(
                {
                    "name": name,
                    "address": f"module/{name}",
                    "keys": len(contents) if isinstance(contents, dict) else 0,
                }
            )
    return {"kind": kind, "rows": rows}


def object_page(view: Project, obj: tuple[str, ...], rows: dict[str, ActionRow]) -> dict:
    """An action, entity, module, template or message as it is in ``view``."""
    found = find(view, obj)
    page: dict[str, Any] = {
        "obj": obj,
        "address": layout.address(obj),
        "title": layout.describe(obj),
        "kind": obj[2] if len(obj) == 4 else obj[0],
        "name": obj[-1],
    }
    if len(obj) == 2 and obj[0] in layout.FOLDER_KINDS:
        attributes = dict(found.attributes)
        page["fields"] = [
            ("type", display.show(attributes.pop("type", None))),
            ("location", display.show(attributes.pop("location", None))),
            ("datetime", display.show(attributes.pop("datetime", None))),
            ("registered", display.show(attributes.pop("registered", None))),
        ]
        page["users"] = _strings(attributes.pop("users", None))
        page["tags"] = _strings(attributes.pop("tags", None))
        page["entities"] = _strings(attributes.pop("entities", None))
        page["other"] = display.show(attributes) if attributes else None
        page["modules"] = [(name, display.show(found.modules[name].contents)) for name in found.modules]
        messages = found.messages
        page["messages"] = [
            _message(obj, message_id, messages[message_id].contents) for message_id in messages
        ]
        if obj[0] == "entity":
            page["used_by"] = sorted(name for name, row in rows.items() if obj[1] in row.entities)
        return page
    if len(obj) == 4 and obj[2] == "message":
        page["message"] = _message(obj[:2], obj[3], found.contents)
        return page
    page["contents"] = display.show(found.contents)
    if obj[0] == "template":
        page["identifier"] = found.identifier
    return page


def _message(owner: tuple[str, ...], message_id: str, contents: dict) -> dict:
    extra = {k: v for k, v in contents.items() if k not in ("text", "user", "datetime")}
    return {
        "id": message_id,
        "address": layout.address((*owner, "message", message_id)),
        "user": contents.get("user"),
        "when": display.when_text(_when(contents.get("datetime"))),
        "text": str(contents.get("text", "")),
        "extra": display.show(extra) if extra else None,
    }


def history_page(view: Project, obj: tuple[str, ...], page: int, link: Callable[[str], str]) -> dict:
    """The commits that changed an object (newest first, a page of them) and who set each key.

    Works for an object deleted since: its history stays readable.

    Raises:
        NotFoundError: no commit ever touched that address.
    """
    commits = view.log(path=obj)
    if not commits:
        raise NotFoundError(f"no commit changed {layout.describe(obj)}")
    page, last, start = pages_of(len(commits), HISTORY_PAGE_SIZE, page)
    try:
        find(view, obj)
        exists = True
    except NotFoundError:
        exists = False
    blame = []
    if exists and len(obj) in _BLAMED_PARTS and "message" not in obj:
        for key, value, commit in history.blame_rows(view, obj):
            blame.append(
                (layout.key_label(key), display.show(value), commit_view(commit, with_changes=False))
            )
    return {
        "obj": obj,
        "address": layout.address(obj),
        "title": layout.describe(obj),
        "exists": exists,
        "total": len(commits),
        "page": page,
        "last_page": last,
        "commits": [commit_view(c, only=obj) for c in commits[start : start + HISTORY_PAGE_SIZE]],
        "blame": blame,
        "timeline": timeline.draw(_events(commits), link, label="changes"),
    }


def log_page(view: Project, page: int) -> dict:
    """Every commit of the project, newest first, a page at a time."""
    commits = view.log()
    page, last, start = pages_of(len(commits), LOG_PAGE_SIZE, page)
    return {
        "total": len(commits),
        "page": page,
        "last_page": last,
        "commits": [commit_view(c, with_changes=False) for c in commits[start : start + LOG_PAGE_SIZE]],
    }


def commit_page(project: Project, revision: str) -> dict:
    """A commit: subject, author, date, message and every key-level change, by object."""
    try:
        commit = project.get_commit(revision)
    except InvalidValueError as exc:
        raise NotFoundError(str(exc)) from None
    changes = commit.changes
    groups: dict[str | None, list[ChangeView]] = {}
    for change in changes[:COMMIT_CHANGES_SHOWN]:
        groups.setdefault(change.address or change.path, []).append(change_view(change))
    return {
        "commit": commit_view(commit, with_changes=False),
        "groups": list(groups.items()),
        "total": len(changes),
        "hidden": max(0, len(changes) - COMMIT_CHANGES_SHOWN),
    }


def resolve_at(project: Project, text: str) -> str:
    """Return the commit id ``?at=`` names: a revision, or a date (the newest commit then).

    Raises:
        NotFoundError: no such revision, or no commit at or before that date.
    """
    try:
        return project.get_commit(text).id
    except (NotFoundError, InvalidValueError) as exc:
        try:
            when = history.parse_when(text)
        except (ValueError, OverflowError, ExpipeError):
            raise NotFoundError(
                f"{text!r} is not a revision or a date: use a commit id, HEAD~2, a branch, "
                f"or a date such as 2026-11-01 ({exc})"
            ) from None
        return project.get_commit(when).id
