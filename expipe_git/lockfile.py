"""A lock between processes on one file, that the operating system drops when its holder dies.

It is ``fcntl.flock`` where ``fcntl`` exists (Linux, macOS), else (Windows)
``msvcrt.locking`` on the file's first byte. Both are released by the kernel when the process
ends, however it ends, so a killed writer never leaves a project locked
(git's ``*.lock`` files are not: they stay until someone removes them). The
platform module is imported when a lock is first taken, not when expipe_git
is imported: ``fcntl`` does not exist on Windows.

The lock file must not be named ``*.lock``: git tools take such files for
their own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

_WINDOWS_POLL_SECONDS = 0.01
_flock_works = False  # set when the first lock is taken with flock


@contextlib.contextmanager
def exclusive(path: str) -> Iterator[None]:
    """Hold the lock on ``path`` for the block, waiting as long as another process holds it."""
    fd = _open(path)
    try:
        _lock(fd, wait=True)
        yield
    finally:
        _release(fd)


@contextlib.contextmanager
def exclusive_or_skip(path: str) -> Iterator[bool]:
    """Hold the lock on ``path`` for the block if nobody holds it; yield whether it is held."""
    fd = _open(path)
    try:
        yield _lock(fd, wait=False)
    finally:
        _release(fd)


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _lock(fd: int, *, wait: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        return _lock_msvcrt(fd, wait=wait)
    global _flock_works
    _flock_works = True
    if wait:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _release(fd: int) -> None:
    # Closing the file releases a flock; on Windows closing a locked file does
    # not reliably unlock it right away, so it is unlocked first.
    try:
        if not _flock_works:
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            with contextlib.suppress(OSError):  # not held (a try that was refused)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.close(fd)


def _lock_msvcrt(fd: int, *, wait: bool) -> bool:
    import msvcrt

    # msvcrt's own waiting mode (LK_LOCK) gives up after 10 seconds: poll instead.
    while True:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            if not wait:
                return False
        time.sleep(_WINDOWS_POLL_SECONDS)
