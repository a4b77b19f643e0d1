"""What every command shares: the program's name, the CLI's own errors, finding the project, addresses.

A user's mistake must reach :func:`expipe_git.cli.app.main` as an
:class:`~expipe_git.errors.ExpipeError` or a :class:`CliError` (one line, no
traceback); anything else is a bug. So a command turns what the operating
system says about a path the user named into a :class:`CliError` where it
uses that path (:func:`user_path`), and nowhere else.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
from collections.abc import Iterator

from .. import layout
from ..errors import ExpipeError
from ..model import Project, get_project

PROG = "expipe-git"
TRACEBACK_ENV = "EXPIPE_GIT_TRACEBACK"
KINDS = ("actions", "entities", "templates", "modules")
PLURAL = {"action": "actions", "entity": "entities", "template": "templates", "module": "modules"}
ADDRESS_KINDS = ("project", *PLURAL)


class CliError(Exception):
    """A problem the CLI itself found (no project here, a bad path): one line, exit status 1."""

    exit_code = 1


class UsageError(CliError):
    """Arguments that do not go together (as argparse's usage errors): exit status 2."""

    exit_code = 2


def base_folder(args: argparse.Namespace) -> pathlib.Path:
    """The folder -C names, or the current folder."""
    return pathlib.Path(args.project) if getattr(args, "project", None) else pathlib.Path.cwd()


def open_project(args: argparse.Namespace) -> Project:
    """The project at -C (or the current folder), or the nearest one above it."""
    start = base_folder(args).absolute()
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


@contextlib.contextmanager
def user_path(path: str | os.PathLike[str], doing: str, *, only_this_path: bool = False) -> Iterator[None]:
    """Report the file system refusing ``path``, which the user named, as one line.

    ``doing`` says what was tried: "create the project in", "read the template file".
    ``only_this_path``: the block does more than use ``path`` (it makes a
    project there), so only an error about ``path`` or a file in it is the
    user's; any other stays a bug.
    """
    try:
        yield
    except ExpipeError:
        raise  # NotAProjectError is an OSError too, and already says what to do
    except OSError as exc:
        if only_this_path and not is_within(exc.filename, path):
            raise
        raise CliError(f"cannot {doing} {path}: {exc.strerror or exc}") from None


def is_within(filename: object, folder: str | os.PathLike[str]) -> bool:
    """Whether ``filename`` (an OSError's, perhaps None) is ``folder`` or a path inside it."""
    if not isinstance(filename, (str, os.PathLike)):
        return False
    return pathlib.Path(os.path.abspath(filename)).is_relative_to(os.path.abspath(folder))


def is_address(text: str) -> bool:
    """Whether ``text`` is an object address (``action/rec-1``) rather than a revision."""
    return text.strip("/").split("/")[0] in ADDRESS_KINDS


def split_revision_object(text: str) -> tuple[str | None, str]:
    """Split ``REV:OBJECT`` (``HEAD~2:action/rec-1``, ``yesterday 14:00:action/rec-1``)."""
    for at, char in enumerate(text):
        if char == ":" and at and is_address(text[at + 1 :]):
            return text[:at], text[at + 1 :]
    return None, text


def address_guesses(project: Project, text: str) -> list[str]:
    """Addresses of the objects named ``text``, for errors that say what to type instead."""
    if "/" in text or ":" in text:
        return []
    return [f"{kind}/{text}" for kind, plural in PLURAL.items() if text in getattr(project, plural)]
