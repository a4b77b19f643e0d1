"""Ref updates that a killed process never leaves locked.

git guards a ref with a lock file (``refs/heads/main.lock``) that it renames
over the ref. A process killed between creating and renaming it (a SIGKILL,
a closed laptop) leaves it behind, and every later update of that ref fails
until someone deletes it. A push to a git server is safe from this: the
server's own ``receive-pack`` writes the refs, and it outlives a killed
client. A push to a folder remote, a fetch and a clone write refs from our
own process, so they do what follows.

While a process of ours updates refs it holds an ``flock`` on a mutex file
and has written into it the lock files it may create; it empties the file
when done. The kernel releases the flock of a process that dies, so the
next one to take it and find the file not empty knows that the last holder
died mid-update, and removes the lock files it listed. Each is removed only
once it is older than a moment: git holds a ref lock for milliseconds, so
a git command that took one just now keeps it, and a live lock is never
broken. A mutex that cannot be opened or locked (a read-only folder, a file
system without locks) leaves the update as git's own: no recovery.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence

from . import lockfile

DEAD_LOCK_SECONDS = 1.0  # a dead updater's lock is at least this old before it is removed
WAIT_SECONDS = 60.0  # how long to wait for another updater (a push sending its objects)


@contextlib.contextmanager
def updating(
    git_dir: str, mutex: str, lock_files: Sequence[str], busy: Callable[[], Exception]
) -> Iterator[None]:
    """Hold ``mutex`` while refs are updated; first clean up after a holder that died.

    ``git_dir``: the repository (``.git``, or a bare one); ``mutex``: the
    mutex file's path in it; ``lock_files``: the git lock files this update
    may create, as paths in it (``refs/heads/main.lock``), recorded so that
    they are removed if this process dies holding them; ``busy()``: the
    error raised when another updater holds the mutex for too long.
    """
    try:
        fd = os.open(os.path.join(git_dir, mutex), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        if not _lock(fd, busy):
            yield
            return
        try:
            left = os.pread(fd, 65536, 0).decode("utf-8", "replace").splitlines()[1:]
            for lock in left:
                # The file may be shared (a folder remote): remove nothing but a ref's lock.
                if _REF_LOCK.fullmatch(lock):
                    _remove_when_old(os.path.join(git_dir, *lock.split("/")))
            os.ftruncate(fd, 0)
            os.pwrite(fd, "\n".join([str(os.getpid()), *lock_files]).encode() + b"\n", 0)
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing releases the flock


_REF_LOCK = re.compile(r"refs(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)+\.lock")


def _lock(fd: int, busy: Callable[[], Exception]) -> bool:
    """Take the flock, waiting for another updater; False if this file system has none."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            if lockfile.try_lock(fd):
                return True
        except OSError:
            return False
        if time.monotonic() > deadline:
            raise busy()
        time.sleep(0.02)


def _remove_when_old(lock: str) -> None:
    while True:
        try:
            age = time.time() - os.stat(lock).st_mtime
        except FileNotFoundError:
            return
        if not 0 <= age < DEAD_LOCK_SECONDS:
            break
        time.sleep(0.05)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(lock)
