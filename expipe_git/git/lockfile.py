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
    """Hold the lock on ``path`` for the block, waiting as long as another process holds it.

    A lock file deleted while we waited (someone removed its folder) is a
    lock nobody else sees: the file now at ``path`` is locked instead.
    """
    while True:
        fd = _open(path)
        try:
            _lock(fd, wait=True)
            if _still_named(fd, path):
                break
        except BaseException:
            _release(fd)
            raise
        _release(fd)
    try:
        yield
    finally:
        _release(fd)


def _still_named(fd: int, path: str) -> bool:
    try:
        held, named = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


def process_alive(pid: int) -> bool:
    """Say whether process ``pid`` exists (ours, or another user's)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return _process_alive_windows(pid)
    try:
        os.kill(pid, 0)  # signal 0: only asks whether it exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_alive_windows(pid: int) -> bool:
    # os.kill(pid, 0) on Windows sends CTRL_C_EVENT: ask the kernel instead.
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # type: ignore[attr-defined]  # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


@contextlib.contextmanager
def exclusive_or_skip(path: str) -> Iterator[bool]:
    """Hold the lock on ``path`` for the block if nobody holds it; yield whether it is held."""
    fd = _open(path)
    try:
        yield _lock(fd, wait=False)
    finally:
        _release(fd)


def try_lock(fd: int) -> bool:
    """Take the lock of an open file if nobody holds it; return whether it is held now.

    Closing the descriptor (or :func:`release`) unlocks it. An ``OSError``
    other than "held by another" (a file system without locks) is raised.
    """
    return _lock(fd, wait=False)


def release(fd: int) -> None:
    """Unlock and close a descriptor locked by :func:`try_lock`."""
    _release(fd)


# Where a folder's descriptor takes a lock (POSIX flock); not on Windows.
FOLDER_LOCKS = hasattr(os, "O_DIRECTORY")


def lock_folder(path: str, *, wait: bool) -> int | None:
    """Lock folder ``path`` itself; return its descriptor (closing it unlocks), or None if held.

    Only where :data:`FOLDER_LOCKS` is true. A link is not followed.
    """
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


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
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]  # Windows only
    finally:
        os.close(fd)


def _lock_msvcrt(fd: int, *, wait: bool) -> bool:
    import msvcrt

    # msvcrt's own waiting mode (LK_LOCK) gives up after 10 seconds: poll instead.
    while True:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows only
            return True
        except OSError:
            if not wait:
                return False
        time.sleep(_WINDOWS_POLL_SECONDS)
