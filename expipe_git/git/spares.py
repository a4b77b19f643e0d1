"""Empty files made ahead of time, so that a mutation renames one instead of creating a file.

A mutation writes every loose object and working-tree file to a temporary
file in ``.git/expipe-git`` and renames it into place: 7-8 new files (inodes)
a mutation, and packing removes the loose ones again. On ext4 without a
journal (virtual machines' disks often are made so) the kernel's inode
allocator skips every inode freed in the last 12 hours, one by one
(``recently_deleted()`` in fs/ext4/ialloc.c, checked only when there is no
journal): each removal makes every later file creation in that part of the
disk slower, and mutations were 35-47 % slower with packing than without
(docs/performance.md, "Where the cost was"). So the packer, which frees
those inodes, also makes the next ones: after it removes the loose files it has packed, it fills
``.git/expipe-git/spare/`` with empty files (:func:`refill`), and a writer
takes one by renaming it to its temporary name (:meth:`Spares.take`), which
allocates nothing: loose objects, working-tree files, the writer's marker
and journal, and git's lock files (``index.lock``, ``main.lock``: hard-linked
from a spare, which fails if the lock exists, as an exclusive create does).
No reader has ever opened a spare, so reusing it is safe; a loose object
that packing removed is never reused.

Each object written turns a spare into a loose file, and the packer makes
only as many as keep spares and loose objects together within :data:`POOL`
files. With no spare left (no packing yet, another writer took them,
Windows) a writer creates its file as before. Spares are made with the packer's umask, as ``open()`` would,
and a spare this process may not write (made by another user) is left for
its owner; ``expipe-git gc`` removes them all (:func:`remove_all`).
"""

from __future__ import annotations

import contextlib
import os
import threading

STATE_DIR = "expipe-git"  # under .git: expipe_git's own state, the spares' folder among it
FOLDER = "spare"  # under .git/expipe-git
POOL = 256  # spares a packer leaves: a packing's worth of writes (packing.LOOSE_LIMIT objects)
ENABLED = os.name == "posix"  # measured on Linux only: Windows creates its files as before


class Spares:
    """The spare files of one state folder (``.git/expipe-git``), as one process takes them."""

    def __init__(self, state_dir: str):
        self.folder = os.path.join(state_dir, FOLDER)
        self._names: list[str] = []
        self._listed: int | None = None  # the folder's time when it was last listed
        self._foreign: set[str] = set()  # spares of other users, left for them

    def take(self, path: str) -> bool:
        """Move a spare file to ``path`` (a temporary name of this process); False if there is none.

        Another process may take the same spare first: the rename then
        fails and the next one is tried. The folder is listed again only
        when its time changed since the last listing (a stat: what a
        project that is never packed pays a write), at most once a call.
        """
        if not ENABLED:
            return False
        for _ in range(2):  # the names listed before, then those of a new listing
            while self._names:
                name = self._names.pop()
                spare = os.path.join(self.folder, name)
                try:
                    os.rename(spare, path)
                except OSError:
                    continue  # taken by another writer
                if os.stat(path).st_uid == os.geteuid():
                    return True
                # Another user's (a project shared by a group): its mode may
                # not let us write, and our file would be theirs. Give it back.
                self._foreign.add(name)
                with contextlib.suppress(OSError):
                    os.rename(path, spare)
            if not self._list_again():
                return False
        return False

    def _list_again(self) -> bool:
        """List the spares not known to be another user's, if the folder changed; whether there are any."""
        try:
            changed = os.stat(self.folder).st_mtime_ns
            if changed == self._listed:
                return False
            self._listed = changed
            self._names = [name for name in os.listdir(self.folder) if name not in self._foreign]
        except OSError:
            return False
        return bool(self._names)

    def create_exclusive(self, path: str) -> int:
        """Open a new file at ``path`` for writing, failing if one is there: git's lock files.

        As ``os.open(path, O_WRONLY | O_CREAT | O_EXCL)`` (raises
        FileExistsError alike), from a spare where there is one: it is
        claimed under a private name, hard-linked to ``path`` (which fails
        if ``path`` exists, as the exclusive create does) and the private
        name removed. Where hard links are refused (FAT, some network
        mounts) the file is created as before.
        """
        private = os.path.join(
            os.path.dirname(self.folder), f"write-lock-{os.getpid()}-{threading.get_ident()}"
        )
        if self.take(private):
            try:
                os.link(private, path)
            except FileExistsError:
                self._give_back(private)
                raise
            except OSError:
                self._give_back(private)
            else:
                os.unlink(private)
                return os.open(path, os.O_WRONLY | os.O_TRUNC)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def _give_back(self, private: str) -> None:
        try:
            os.rename(private, os.path.join(self.folder, os.urandom(8).hex()))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(private)


_of_folder: dict[str, Spares] = {}


def of(state_dir: str) -> Spares:
    """The one :class:`Spares` of this process for a state folder (one listing serves every writer)."""
    found = _of_folder.get(state_dir)
    if found is None:
        found = _of_folder.setdefault(state_dir, Spares(state_dir))
    return found


def refill(state_dir: str, pool: int = POOL) -> int:
    """Make empty spare files until there are ``pool`` (none if 0 or less); return how many were made."""
    if not ENABLED:
        return 0
    folder = os.path.join(state_dir, FOLDER)
    os.makedirs(folder, exist_ok=True)
    made = 0
    for _ in range(pool - len(os.listdir(folder))):
        name = os.path.join(folder, os.urandom(8).hex())
        with contextlib.suppress(FileExistsError):
            os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            made += 1
    return made


def remove_all(state_dir: str) -> None:
    """Remove every spare file (``expipe-git gc``: a project as small as can be)."""
    folder = os.path.join(state_dir, FOLDER)
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, name))
