"""The ``expipe-git`` command line (``python -m expipe_git``).

The modules, lowest first (each imports only the ones above it):

- ``base``: the program's name, the CLI's own errors, finding the project, addresses;
- ``rendering``, ``pager``: how output looks (text, JSON, colour, progress) and paging it;
- ``parser``: the top-level parser and where commands register;
- ``edits``: what the commands that write share (typed values, one commit per command);
- the commands by area: ``reading``, ``writing``, ``history``, ``merging``, ``sharing``, ``maintenance``;
- ``app``: every command's registration, :func:`main`, and errors to exit statuses.
"""

from .app import BUG_EXIT, build_parser, main
from .base import PROG, TRACEBACK_ENV, CliError, UsageError
from .maintenance import IMPORT_DIFFERS

__all__ = [
    "BUG_EXIT",
    "IMPORT_DIFFERS",
    "PROG",
    "TRACEBACK_ENV",
    "CliError",
    "UsageError",
    "build_parser",
    "main",
]
