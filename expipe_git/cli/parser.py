"""Building the argument parser: the top-level parser and the helper each command registers itself with.

A command module has one ``add_<command>(commands)`` function per command;
:mod:`expipe_git.cli.app` lists them in the order ``--help`` shows them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .. import __version__
from .base import PLURAL, PROG, TRACEBACK_ENV

Command = Callable[[argparse.Namespace], int]

REVISION_HELP = (
    "a commit id (or 4+ leading hex digits), HEAD, HEAD~2, HEAD^, a branch or a tag, "
    "main@{2} or main@{yesterday} (by its reflog), or a time: '10 minutes ago', yesterday, 2026-11-01"
)


class Commands:
    """Where commands register: ``add(name, func, help)`` makes the subcommand's parser."""

    def __init__(self, subparsers: Any, common: argparse.ArgumentParser):
        self._subparsers = subparsers
        self.common = common  # the options every (sub)command takes: give it as a parent

    def add(
        self, name: str, func: Command, help_text: str, *, paged: bool = False, **kwargs: Any
    ) -> argparse.ArgumentParser:
        """Add the command ``name`` run by ``func``; ``paged``: long output, shown through a pager."""
        p = self._subparsers.add_parser(
            name, parents=[self.common], help=help_text, description=help_text, **kwargs
        )
        p.set_defaults(func=func, paged=paged)
        return p


def new_parser() -> tuple[argparse.ArgumentParser, Commands]:
    """The top-level parser, with no commands yet, and where to add them."""
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
        f"Set {TRACEBACK_ENV}=1 to see the Python traceback of an error. A bug in expipe_git "
        "prints its traceback and exits with status 70.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    return parser, Commands(sub, common)


def json_flag(p: argparse.ArgumentParser, help_text: str = "print JSON instead of text") -> None:
    p.add_argument("--json", action="store_true", help=help_text)


def kind_name(text: str) -> str:
    """An argparse type: ``action`` means ``actions`` (and so on)."""
    return PLURAL.get(text, text)
