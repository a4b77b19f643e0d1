"""Long command output through a pager, as git does it: only on a terminal.

The pager is ``GIT_PAGER``, else ``PAGER``, else ``less -FRX`` (quit at
once if it fits on one screen, keep colours, leave the text on the screen).
An empty value or ``cat`` means no pager; so does output that is not a
terminal (a pipe, a file), or a pager program that is not installed.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator

DEFAULT = "less -FRX"


def pager_command() -> str | None:
    """Return the pager to run for standard output, or None for none."""
    if not sys.stdout.isatty():
        return None
    text = os.environ.get("GIT_PAGER")
    if text is None:
        text = os.environ.get("PAGER", DEFAULT)
    text = text.strip()
    if not text or text == "cat":
        return None
    try:
        program = shlex.split(text)[0]
    except (ValueError, IndexError):
        return None
    return text if shutil.which(program) else None


class _PagerStream(io.TextIOWrapper):
    # The pager shows the text on the terminal (and `less -R` keeps colours),
    # so commands colour their output as they would on the terminal itself.
    def isatty(self) -> bool:
        return True


@contextlib.contextmanager
def paged(enabled: bool = True) -> Iterator[None]:
    """Send what the block prints to ``sys.stdout`` through the pager, if there is one.

    Quitting the pager early ends the block's output quietly.
    """
    command = pager_command() if enabled else None
    if command is None:
        yield
        return
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    try:
        process = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        yield
        return
    assert process.stdin is not None  # stdin=PIPE
    terminal = sys.stdout
    stream = _PagerStream(process.stdin, encoding=terminal.encoding or "utf-8", errors="replace")
    sys.stdout = stream
    try:
        yield
        stream.flush()
    except BrokenPipeError:
        pass  # the person quit the pager: nothing more to show
    finally:
        sys.stdout = terminal
        with contextlib.suppress(BrokenPipeError, OSError, ValueError):
            stream.close()
        while True:
            try:
                process.wait()
                break
            except KeyboardInterrupt:  # Ctrl-C belongs to the pager (less keeps running)
                continue
