"""A stand-in for Windows' ``msvcrt.locking``, for tests that run expipe_git on Linux without ``fcntl``.

It locks the same byte range with POSIX record locks (``os.lockf``), which
exclude other processes as ``msvcrt.locking`` does. Only the lock calls
:mod:`expipe_git.git.lockfile` makes are provided.
"""

import os

LK_UNLCK = 0
LK_LOCK = 1
LK_NBLCK = 2


def locking(fd: int, mode: int, nbytes: int) -> None:
    if mode == LK_UNLCK:
        os.lockf(fd, os.F_ULOCK, nbytes)
    elif mode == LK_NBLCK:
        os.lockf(fd, os.F_TLOCK, nbytes)  # raises OSError when another process holds it, as msvcrt does
    else:
        raise ValueError(f"mode {mode} is not used by expipe_git")
