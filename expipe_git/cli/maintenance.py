"""Commands around the records: gc, serve, import (from expipe 0.6) and tour."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any

from .. import layout
from ..git import packing
from ..migrate import import_expipe_project, verify_import
from ..model import Project, get_project
from .base import CliError, base_folder, open_project, user_path
from .parser import Commands, json_flag
from .rendering import error, print_json, progress_bar

IMPORT_DIFFERS = 3  # exit status: imported, but verification found differences

# ---------------------------------------------------------------------------
# gc: pack the project's objects now


def cmd_gc(args: argparse.Namespace) -> int:
    project = open_project(args)
    git_dir = os.path.join(project.path, ".git")
    before = packing.objects_usage(git_dir)
    report = packing.pack_now(git_dir, everything=True)
    after = packing.objects_usage(git_dir)
    assert report is not None  # pack_now waits for a packing running elsewhere
    if args.json:
        print_json(
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


def add_gc(commands: Commands) -> None:
    p = commands.add(
        "gc",
        cmd_gc,
        "pack every loose object and all packs into one pack now (expipe_git also packs by itself "
        "as objects accumulate); safe while other processes read and write",
    )
    json_flag(p)


# ---------------------------------------------------------------------------
# serve: the local web view (expipe_git.web, an optional extra)


def cmd_serve(args: argparse.Namespace) -> int:
    from .. import web  # the optional extra: only this command needs it

    if args.dir is not None:
        args.project = str(base_folder(args) / args.dir) if getattr(args, "project", None) else args.dir
    project = open_project(args)
    app = web.load_app()  # before anything is printed: a missing extra is one error line
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a port number: use 1-65535, or 0 for a free port")
    try:
        app.serve(project, args.host, args.port, announce=lambda line: print(line, flush=True))
    except OSError as exc:
        # The address is the user's: web.app.bind words the system refusing it (in use, not
        # this machine's) for people. Any other OSError is a bug.
        if not str(exc).startswith("cannot listen on "):
            raise
        raise CliError(str(exc)) from None
    return 0


def add_serve(commands: Commands) -> None:
    p = commands.add(
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


# ---------------------------------------------------------------------------
# import from expipe 0.6


def import_status(report: Any) -> int:
    """The exit status of an import: 0, or IMPORT_DIFFERS (and an error line) when values differ."""
    if not report.ok:
        error(
            f"{len(report.differences)} value(s) differ between {report.source} and the imported project "
            f"(listed above); the project is at {report.destination}"
        )
        return IMPORT_DIFFERS
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    base = base_folder(args)
    progress = progress_bar(sys.stderr) if sys.stderr.isatty() else None
    if args.verify_only:
        target = (base / args.destination).absolute()
        if not (target / layout.CONFIG_FILE).is_file():
            raise CliError(f"{target} is not an expipe_git project; --verify-only compares an earlier import")
        with get_project(target) as project:
            report = verify_import(base / args.source, project, progress=progress)
        print(report)
        return import_status(report)
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
    report = getattr(project, "import_report")  # noqa: B009  (migrate adds it to this project only)
    print(report)
    return import_status(report)


def add_import(commands: Commands) -> None:
    p = commands.add(
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


# ---------------------------------------------------------------------------
# tour: the getting-started walkthrough


def history_lines(project: Project, limit: int | None = None) -> list[str]:
    """One line per commit, newest first: short id and subject."""
    return [f"{sha[:7]} {subject}" for sha, subject in project.session.repository.subjects(limit)]


def cmd_tour(args: argparse.Namespace) -> int:
    from .. import tour  # it runs the docs' walkthrough: only this command needs it

    folder = (base_folder(args) / args.dir).absolute()
    with user_path(folder, "create the folder"):
        folder.mkdir(parents=True, exist_ok=True)
    path = tour.run(folder, write=print)
    project = get_project(path)
    print(f"History of the project at {project.path}, newest first:")
    for line in history_lines(project):
        print(line)
    return 0


def add_tour(commands: Commands) -> None:
    p = commands.add(
        "tour",
        cmd_tour,
        "run the getting-started walkthrough in DIR (a project 'test' is made "
        "there), then print the project's history",
    )
    p.add_argument("dir", metavar="DIR", help="folder to run the walkthrough in (created if missing)")
