"""The ``expipe-git`` command: every command's registration, and the one place errors become exit statuses.

Errors expipe_git raises on purpose (:class:`~expipe_git.errors.ExpipeError`)
and the CLI's own (:class:`~expipe_git.cli.base.CliError`) become one line on
stderr, ``expipe-git: error: <message>``, and their exit status (1; 2 for
usage errors, argparse's convention). Any other exception is a bug: its
traceback, a line saying so and where to report it, and exit status 70
(``EX_SOFTWARE``). Ctrl-C exits 130; a reader that goes away (``| head``) 141.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable

from ..errors import ExpipeError
from . import history, maintenance, merging, pager, reading, sharing, writing
from .base import PROG, TRACEBACK_ENV, CliError
from .parser import Commands, new_parser
from .rendering import error

BUG_EXIT = 70  # EX_SOFTWARE (sysexits.h): an internal software error
INTERRUPTED_EXIT = 130
BROKEN_PIPE_EXIT = 141
REPORT_TO = "expipe_git's issue tracker (with the command you ran and the traceback above)"

# Every command, in the order `expipe-git --help` lists them.
REGISTRATIONS: tuple[Callable[[Commands], None], ...] = (
    writing.add_init,
    reading.add_status,
    reading.add_list,
    reading.add_show,
    writing.add_commit,
    maintenance.add_tour,
    history.add_log,
    history.add_diff,
    history.add_blame,
    history.add_revert,
    maintenance.add_import,
    sharing.add_clone,
    sharing.add_remote,
    sharing.add_fetch,
    sharing.add_pull,
    sharing.add_push,
    sharing.add_sync,
    merging.add_merge,
    merging.add_conflicts,
    merging.add_resolve,
    maintenance.add_gc,
    maintenance.add_serve,
    writing.add_new,
    writing.add_set,
    writing.add_tag,
    writing.add_message,
    writing.add_rm,
)


def build_parser() -> argparse.ArgumentParser:
    parser, commands = new_parser()
    for register in REGISTRATIONS:
        register(commands)
    return parser


def one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def report_bug(exc: Exception) -> int:
    """A bug: show where it happened, say it is ours, return BUG_EXIT."""
    traceback.print_exception(exc, file=sys.stderr)
    error(
        f"internal error ({type(exc).__name__}): this is a bug in expipe_git, not a mistake of yours; "
        f"please report it to {REPORT_TO}"
    )
    return BUG_EXIT


def quiet_stdout() -> None:
    """After a broken pipe: send what is left (Python flushes stdout at exit) nowhere."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def run(args: argparse.Namespace) -> int:
    """Run the command ``args`` names; its errors become exit statuses."""
    try:
        with pager.paged(args.paged):
            return args.func(args)
        return 0  # the person quit the pager before the end
    except BrokenPipeError:  # the reader went away (`expipe-git list | head`): stop quietly
        quiet_stdout()
        return BROKEN_PIPE_EXIT
    except (ExpipeError, CliError) as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        error(one_line(exc))
        return exc.exit_code if isinstance(exc, CliError) else 1
    except Exception as exc:
        return report_bug(exc)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version and usage errors
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        return run(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
