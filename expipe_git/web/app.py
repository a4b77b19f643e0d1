"""The web view's Starlette application, its routes, and the server that runs it.

Every request reads one snapshot: the commit HEAD names when the request
arrives (or the commit ``?at=`` names), opened read-only with
``project.at(commit)``. Snapshots are kept per commit id, so the caches of
a busy snapshot (parsed records, the actions table) serve every request until
HEAD moves. Only GET and HEAD are answered; every other method is refused
before any route runs.
"""

from __future__ import annotations

import collections
import csv
import importlib.resources
import io
import logging
import socket
import sys
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from typing import Any

import jinja2
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import layout
from ..errors import ExpipeError, InvalidTypeError, InvalidValueError, NotFoundError
from ..model import Project
from . import display, pages, table

READ_METHODS = ("GET", "HEAD")
# The only files served from the package: name -> media type. No path from a request reaches the disk.
STATIC_FILES = {"style.css": "text/css; charset=utf-8"}
_KEPT_VIEWS = 8
_KEPT_TABLES = 3
_log = logging.getLogger("expipe_git.web")


class Snapshots:
    """The project's read-only views by commit id, and the actions table of each."""

    def __init__(self, project: Project):
        self.project = project
        self.lock = threading.Lock()  # one request reads at a time: the store is not made for threads
        self._views: collections.OrderedDict[str, Project] = collections.OrderedDict()
        self._tables: collections.OrderedDict[str, dict[str, table.ActionRow]] = collections.OrderedDict()

    def head(self) -> str:
        return self.project.get_commit("HEAD").id

    def view(self, commit_id: str) -> Project:
        view = self._views.get(commit_id)
        if view is None:
            view = self._views[commit_id] = self.project.at(commit_id)
            while len(self._views) > _KEPT_VIEWS:
                self._views.popitem(last=False)[1].close()
        self._views.move_to_end(commit_id)
        return view

    def action_table(self, commit_id: str) -> dict[str, table.ActionRow]:
        """Name -> row of every action at a commit; built from the last table by what changed since."""
        rows = self._tables.get(commit_id)
        if rows is None:
            view = self.view(commit_id)
            if self._tables:
                base_id, base = next(reversed(self._tables.items()))
                changed = pages.changed_actions(self.project, base_id, commit_id)
                fresh = pages.action_rows(view, changed)
                rows = {name: row for name, row in base.items() if name not in changed}
                rows.update(fresh)
            else:
                rows = pages.action_rows(view)
            self._tables[commit_id] = rows
            while len(self._tables) > _KEPT_TABLES:
                self._tables.popitem(last=False)
        self._tables.move_to_end(commit_id)
        return rows


class Context:
    """One request: the snapshot it reads and how its links are written."""

    def __init__(self, snapshots: Snapshots, request: Request):
        self.request = request
        self.snapshots = snapshots
        self.project = snapshots.project
        at = request.query_params.get("at", "").strip()
        self.at = at or None
        self.commit_id = pages.resolve_at(self.project, at) if at else snapshots.head()
        self.view = snapshots.view(self.commit_id)

    def url(self, path: str, *, keep_at: bool = True, **params: Any) -> str:
        """A link inside the site; ``?at=`` is kept so that time travel lasts while you browse."""
        items = [(key.rstrip("_"), value) for key, value in params.items() if value not in (None, "")]
        if keep_at and self.at and "at" not in params:
            items.append(("at", self.at))
        return path + ("?" + urllib.parse.urlencode(items, doseq=True) if items else "")

    def object_url(self, obj: tuple[str, ...] | str, suffix: str = "", **params: Any) -> str:
        address = obj if isinstance(obj, str) else layout.address(obj)
        quoted = "/".join(urllib.parse.quote(part, safe="") for part in address.split("/"))
        return self.url(f"/{quoted}{suffix}", **params)

    def commit_url(self, commit_id: str) -> str:
        return f"/commit/{commit_id}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("expipe_git.web", "templates"),
        autoescape=True,  # every string a page shows is escaped, whatever the template
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["intcomma"] = lambda n: f"{n:,}"
    return env


# What a filtered actions page shows: the criteria, the rows chosen (sorted), and every row by name.
_Chosen = tuple[table.Criteria, list[table.ActionRow], dict[str, table.ActionRow]]


class _Site:
    """The pages of one project's web view: each page is a method taking a :class:`Context`."""

    def __init__(self, project: Project, snapshots: Snapshots):
        self.snapshots = snapshots
        self.templates = _environment()
        self.project_name = project.id

    def render(self, ctx: Context | None, name: str, status_code: int = 200, **data: Any) -> HTMLResponse:
        at_commit = None
        if ctx is not None and ctx.at:
            at_commit = pages.commit_view(ctx.view.get_commit(ctx.commit_id), with_changes=False)
        html = self.templates.get_template(name).render(
            ctx=ctx, project_name=self.project_name, at_commit=at_commit, **data
        )
        return HTMLResponse(html, status_code=status_code)

    def error_page(self, status: int, title: str, message: str) -> HTMLResponse:
        return self.render(None, "error.html", status, status=status, title=title, message=message)

    def page(self, handler: Callable[[Context], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            start = time.perf_counter()
            with self.snapshots.lock:
                try:
                    ctx = Context(self.snapshots, request)
                    response = handler(ctx)
                    response.headers["X-Expipe-Commit"] = ctx.commit_id  # the snapshot this page shows
                except (NotFoundError, InvalidTypeError) as exc:
                    response = self.error_page(404, "Not found", str(exc))
                except InvalidValueError as exc:
                    response = self.error_page(400, "Cannot show this", str(exc))
                except ExpipeError as exc:
                    response = self.error_page(500, "The project cannot be read", str(exc))
                except Exception:  # a bug: say so on the page, the traceback goes to the server's log
                    traceback.print_exc(file=sys.stderr)
                    response = self.error_page(
                        500,
                        "Internal error",
                        "This is a bug in expipe_git; the server's output has the details.",
                    )
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
            return response

        return endpoint

    def home(self, ctx: Context) -> Response:
        # Back in time, the picture still shows every day up to now, so that a click can travel on.
        now = ctx.snapshots.view(ctx.snapshots.head()) if ctx.at else None
        data = pages.home(ctx.view, lambda commit_id: ctx.url("/", keep_at=False, at=commit_id), now)
        return self.render(ctx, "home.html", home=data)

    def chosen_rows(
        self, ctx: Context
    ) -> tuple[table.Criteria, list[table.ActionRow], dict[str, table.ActionRow]]:
        params = ctx.request.query_params
        criteria = table.Criteria.from_query(params)
        rows = ctx.snapshots.action_table(ctx.commit_id)
        chosen = table.select_actions(ctx.view, rows, criteria)
        return criteria, table.sort_rows(chosen, params.get("sort", "name")), rows

    def actions(self, ctx: Context) -> Response:
        criteria, chosen, rows = self.chosen_rows(ctx)
        number, last, start = pages.pages_of(len(chosen), table.PAGE_SIZE, _int(ctx.request, "page", 1))
        return self.render(
            ctx,
            "actions.html",
            criteria=criteria,
            filter_params=dict(criteria.query_items()),
            sort=ctx.request.query_params.get("sort", "name"),
            rows=chosen[start : start + table.PAGE_SIZE],
            matched=len(chosen),
            total=len(rows),
            page=number,
            last_page=last,
            first_shown=start + 1,
            choices=table.choices(list(rows.values())),
            when=display.when_text,
        )

    def actions_csv(self, ctx: Context) -> Response:
        _, chosen, _ = self.chosen_rows(ctx)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["name", "datetime", "type", "location", "users", "entities", "tags", "registered"])
        for row in chosen:
            writer.writerow(
                [
                    row.name,
                    row.datetime.isoformat() if row.datetime else "",
                    row.type or "",
                    row.location or "",
                    "; ".join(row.users),
                    "; ".join(row.entities),
                    "; ".join(row.tags),
                    row.registered.isoformat() if row.registered else "",
                ]
            )
        filename = urllib.parse.quote(f"{self.project_name}-actions.csv", safe="")
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
        )

    def listing(self, ctx: Context) -> Response:
        kind = ctx.request.url.path.strip("/")
        return self.render(ctx, "listing.html", listing=pages.listing(ctx.view, kind))

    def project_log(self, ctx: Context) -> Response:
        return self.render(ctx, "log.html", log=pages.log_page(ctx.view, _int(ctx.request, "page", 1)))

    def commit(self, ctx: Context) -> Response:
        revision = ctx.request.path_params["revision"]
        return self.render(ctx, "commit.html", **pages.commit_page(ctx.view, revision))

    def object_or_history(self, ctx: Context) -> Response:
        parts = ctx.request.path_params["address"].strip("/").split("/")
        # An address has 1, 2 or 4 parts; "/history" after one asks for its history.
        wants_history = parts[-1] == "history" and (len(parts) in (3, 5) or parts == ["project", "history"])
        if wants_history:
            parts = parts[:-1]
        try:
            obj = layout.parse_address("/".join(parts))
        except InvalidValueError:
            raise NotFoundError(f"there is no page /{'/'.join(parts)}") from None
        if wants_history:
            data = pages.history_page(
                ctx.view,
                obj,
                _int(ctx.request, "page", 1),
                lambda commit_id: ctx.object_url(obj, keep_at=False, at=commit_id),
            )
            return self.render(ctx, "history.html", history=data)
        if obj == ("project",):
            return self.home(ctx)
        rows = ctx.snapshots.action_table(ctx.commit_id) if obj[0] == "entity" and len(obj) == 2 else {}
        return self.render(ctx, "object.html", page=pages.object_page(ctx.view, obj, rows))

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC_FILES:
            raise HTTPException(404)
        body = importlib.resources.files("expipe_git.web").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=3600"})

    async def not_found(self, request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return _refused()
        return self.error_page(404, "Not found", f"there is no page {request.url.path}")


def create_app(project: Project, snapshots: Snapshots | None = None) -> Starlette:
    """Return the ASGI application serving ``project`` read-only."""
    site = _Site(project, snapshots or Snapshots(project))
    routes = [
        Route("/", site.page(site.home), methods=list(READ_METHODS)),
        Route("/actions", site.page(site.actions), methods=list(READ_METHODS)),
        Route("/actions.csv", site.page(site.actions_csv), methods=list(READ_METHODS)),
        Route("/entities", site.page(site.listing), methods=list(READ_METHODS)),
        Route("/templates", site.page(site.listing), methods=list(READ_METHODS)),
        Route("/modules", site.page(site.listing), methods=list(READ_METHODS)),
        Route("/history", site.page(site.project_log), methods=list(READ_METHODS)),
        Route("/commit/{revision}", site.page(site.commit), methods=list(READ_METHODS)),
        Route("/static/{name}", site.static, methods=list(READ_METHODS)),
        Route("/{address:path}", site.page(site.object_or_history), methods=list(READ_METHODS)),
    ]
    app = Starlette(routes=routes, exception_handlers={404: site.not_found, 405: site.not_found})
    return ReadOnly(app)  # type: ignore[return-value]


def _int(request: Request, key: str, default: int) -> int:
    try:
        return int(request.query_params.get(key, default))
    except ValueError:
        return default


def _refused() -> PlainTextResponse:
    return PlainTextResponse(
        "405 Method Not Allowed: this view is read-only; change the project with expipe_git or expipe-git.\n",
        status_code=405,
        headers={"Allow": ", ".join(READ_METHODS)},
    )


class ReadOnly:
    """Refuse every request that is not GET or HEAD before the application sees it."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in READ_METHODS:
            await _refused()(scope, receive, send)
            return
        if scope["type"] not in ("http", "lifespan"):
            return  # websockets: nothing here speaks them
        await self.app(scope, receive, send)


# ---------------------------------------------------------------------------
# Running the server


def bind(host: str, port: int) -> socket.socket:
    """Open a listening socket (port 0: a free one).

    Raises:
        OSError: the address cannot be used; the message says which and what to do.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        hint = "; pass --port N (0 picks a free port)" if exc.errno in (98, 48, 13) else ""
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    if host in ("0.0.0.0", "[::]"):
        host = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return f"http://{host}:{port}/"


def _server(project: Project) -> uvicorn.Server:
    snapshots = Snapshots(project)
    config = uvicorn.Config(
        create_app(project, snapshots), log_level="warning", access_log=False, lifespan="off"
    )
    # Read the actions table, index the history and where()'s criteria while the person
    # opens the page: the first read of a big project is the slow one (docs/performance.md).
    threading.Thread(target=_warm_up, args=(snapshots,), daemon=True).start()
    return uvicorn.Server(config)


def _warm_up(snapshots: Snapshots) -> None:
    with snapshots.lock:
        try:
            head = snapshots.head()
            view = snapshots.view(head)
            view.log()
            snapshots.action_table(head)
            view.actions.where()  # builds where()'s index, which the first filter would wait for
        except Exception:  # the page that needs it will meet the same problem and show it
            _log.debug("warming up failed", exc_info=True)


def serve(project: Project, host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve ``project`` until Ctrl-C (or SIGTERM); announce the address first."""
    sock = bind(host, port)
    server = _server(project)
    announce(f"Serving project {project.id!r} (read-only) at {url_of(sock)}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"Listening on {host}: other machines on the network can read this project.")
    announce("Press Ctrl-C to stop.")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn stopped cleanly, then re-raised the signal it caught
    finally:
        sock.close()
    announce("Stopped.")


class ServerThread:
    """The server on a thread of this process (for benchmarks): ``url``, then ``stop()``."""

    def __init__(self, project: Project, host: str = "127.0.0.1", port: int = 0):
        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        self._server = _server(project)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        while not self._server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
