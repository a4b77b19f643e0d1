"""HTML for notebooks: projects, objects, records, tables and logs, and the actions browser.

Every ``_repr_html_`` of the package is made here. Everything a person
stored (names, tags, keys, values, commit messages) goes through
:func:`html.escape`, so a tag ``<script>alert(1)</script>`` shows as text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import history, layout, tables

MAX_ROWS = 200  # rows a table shows; the rest are counted
_STYLE = "border-collapse:collapse;text-align:left"


def text(value: Any) -> str:
    """Return a value as readable text: a quantity with its unit, a datetime in ISO 8601."""
    if hasattr(value, "dimensionality") and hasattr(value, "magnitude"):
        magnitude = value.magnitude
        number = magnitude.item() if getattr(magnitude, "ndim", 1) == 0 else magnitude.tolist()
        return f"{number} {value.dimensionality.string}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ", ".join(text(item) for item in value)
    if value is None:
        return ""
    return str(value)


def esc(value: Any) -> str:
    return html.escape(text(value), quote=True)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], *, escaped: bool = False) -> str:
    """Return an HTML table; cells are escaped unless ``escaped`` says they are HTML already."""
    cell = (lambda v: v) if escaped else esc
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table style="{_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def nested(contents: Any) -> str:
    """Return a record's keys and values as nested HTML lists (a value with its unit)."""
    if isinstance(contents, Mapping) and contents:
        items = "".join(f"<li><b>{esc(key)}</b>: {nested(value)}</li>" for key, value in contents.items())
        return f"<ul>{items}</ul>"
    if isinstance(contents, Mapping):
        return "<i>(empty)</i>"
    return esc(contents)


def record_html(title: str, contents: Any) -> str:
    """HTML of a module or template: its title and nested keys."""
    return f"<div><h4>{esc(title)}</h4>{nested(contents)}</div>"


def object_html(obj: Any) -> str:
    """HTML of an action or entity: attributes, modules and messages."""
    kind = type(obj).__name__.lower()
    attributes = obj.attributes
    parts = [f"<div><h3>{esc(kind)} {esc(obj.name)}</h3>"]
    parts.append(_table(["attribute", "value"], [(key, value) for key, value in attributes.items()]))
    modules = obj.modules
    if len(modules):
        parts.append("<h4>modules</h4>")
        for name, module in modules.items():
            parts.append(f"<details><summary>{esc(name)}</summary>{nested(module.contents)}</details>")
    messages = obj.messages
    if len(messages):
        parts.append("<h4>messages</h4>")
        rows = [(m.datetime, m.user, m.text) for m in messages.values()]
        parts.append(_table(["datetime", "user", "text"], rows))
    parts.append("</div>")
    return "".join(parts)


def rows_html(columns: Sequence[str], rows: list[dict], title: str, total: int | None = None) -> str:
    """HTML of table rows (from :mod:`expipe_git.tables`), the first MAX_ROWS of ``total``."""
    shown = [[row.get(column) for column in columns] for row in rows[:MAX_ROWS]]
    more = (len(rows) if total is None else total) - len(shown)
    note = f"<p>… and {more} more</p>" if more > 0 else ""
    return f"<div><p>{esc(title)}</p>{_table(columns, shown)}{note}</div>"


def change_texts(change: history.Change) -> list[str]:
    """Return a line per key a change touches: ``object key: old → new``, values with units."""
    where = change.address or change.path
    lines = []
    for key, old, new in tables.key_changes(change):
        if old is None and change.kind == "added":
            what = f"{text(new)} (added)"
        elif new is None and change.kind == "removed":
            what = f"{text(old)} (removed)"
        else:
            what = f"{text(old)} → {text(new)}"
        lines.append(f"{where} {key or '(whole record)'}: {what}")
    return lines


def log_html(commits: Sequence[history.Commit], limit: int = MAX_ROWS) -> str:
    """HTML of commits, newest first, each with its key-level changes (old → new, with units)."""
    rows = []
    for commit in commits[:limit]:
        changes = "".join(
            f"<li>{html.escape(line)}</li>" for change in commit.changes for line in change_texts(change)
        )
        rows.append(
            (
                f"<code>{esc(commit.id[:7])}</code>",
                esc(commit.datetime),
                esc(commit.author),
                f"{esc(commit.subject)}<ul>{changes}</ul>",
            )
        )
    more = len(commits) - len(rows)
    note = f"<p>… and {more} more commits</p>" if more > 0 else ""
    return f"<div>{_table(['commit', 'date', 'author', 'change'], rows, escaped=True)}{note}</div>"


def project_html(project: Any, last: int = 5) -> str:
    """HTML of a project: where it is, how many objects of each kind, and the last changes."""
    counts = [
        ("actions", len(project.actions)),
        ("entities", len(project.entities)),
        ("templates", len(project.templates)),
        ("modules", len(project.modules)),
    ]
    commits = project.log(limit=last)
    recent = [(c.id[:7], c.datetime, c.author, c.subject) for c in commits]
    return (
        f"<div><h3>project {esc(project.id)}</h3><p>{esc(project.path)}</p>"
        f"{_table(['kind', 'count'], counts)}<h4>last changes</h4>"
        f"{_table(['commit', 'date', 'author', 'subject'], recent)}</div>"
    )


def csv_link(csv: str, filename: str = "actions.csv") -> str:
    """An HTML link that downloads ``csv`` (a data: URL, so it works without a server)."""
    data = base64.b64encode(csv.encode("utf-8")).decode("ascii")
    return (
        f'<a download="{html.escape(filename, quote=True)}" '
        f'href="data:text/csv;charset=utf-8;base64,{data}">download CSV</a>'
    )


# ---------------------------------------------------------------------------
# The browser


FILTERS = ("tags", "any_tags", "type", "location", "users", "entities", "since", "until")


class Browser:
    """The actions of a project as a filterable table, with CSV export, for notebooks.

    ``Browser(project)`` shows every action; ``Browser(project, tags="x",
    since="2026-05-01")`` or ``browser.filter(...)`` those meeting the
    criteria of ``project.actions.where``. In Jupyter with ipywidgets
    installed, ``browser.widget()`` (shown by displaying the browser) gives
    fields for each criterion; without ipywidgets the browser shows as an
    HTML table with a CSV download link.
    """

    def __init__(self, project: Any, *, modules: Sequence[str] = (), **criteria: Any):
        self.project = project
        self.modules = tables.check_modules(modules)
        project.actions.where(**criteria)  # checks the criteria now, before anything is shown
        self.criteria = criteria

    def filter(self, **criteria: Any) -> Browser:
        """Return a browser of the actions meeting ``criteria`` (keyword arguments of ``where``)."""
        return Browser(self.project, modules=self.modules, **criteria)

    def rows(self) -> tuple[list[str], list[dict]]:
        return self.project.actions.where(**self.criteria).rows(self.modules)

    def to_csv(self) -> str:
        return tables.csv_text(*self.rows())

    def _repr_html_(self) -> str:
        columns, rows = self.rows()
        described = ", ".join(f"{key}={value!r}" for key, value in self.criteria.items()) or "all actions"
        title = f"{len(rows)} actions of project {self.project.id} ({described})"
        return rows_html(columns, rows, title) + csv_link(tables.csv_text(columns, rows))

    def widget(self) -> Any:
        """Return an ipywidgets box: a field per criterion, the table and a CSV link."""
        import ipywidgets

        fields = {name: ipywidgets.Text(description=name, placeholder=_HINTS[name]) for name in FILTERS}
        for name, value in self.criteria.items():
            if name in fields:
                fields[name].value = value if isinstance(value, str) else ", ".join(map(str, value))
        table = ipywidgets.HTML()

        def update(_change: Any = None) -> None:
            criteria: dict[str, Any] = {}
            for name, field in fields.items():
                value = field.value.strip()
                if value:
                    many = name in ("tags", "any_tags", "users", "entities")
                    criteria[name] = [v.strip() for v in value.split(",") if v.strip()] if many else value
            try:
                table.value = self.filter(**criteria)._repr_html_()
            except (TypeError, ValueError) as exc:
                table.value = f"<p style='color:#a00'>{html.escape(str(exc))}</p>"

        for field in fields.values():
            field.observe(update, names="value")
        update()
        return ipywidgets.VBox(
            [ipywidgets.HBox(list(fields.values())[:4]), ipywidgets.HBox(list(fields.values())[4:]), table]
        )

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        try:
            display(self.widget())
        except ImportError:
            display(HTML(self._repr_html_()))

    def __repr__(self) -> str:
        return f"<expipe_git Browser of project {self.project.id!r} {self.criteria!r}>"


_HINTS = {
    "tags": "a, b (all of)",
    "any_tags": "a, b (any of)",
    "type": "recording",
    "location": "",
    "users": "",
    "entities": "",
    "since": "2026-05-01",
    "until": "2026-05-31",
}


def kind_title(kind: str, count: int) -> str:
    return f"{count} {layout.FOLDER_KINDS.get(kind, kind)}"
