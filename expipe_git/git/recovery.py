"""The write lock, and crash recovery: what a writer killed mid-mutation left is cleaned up or finished.

A writer marks itself (``.git/expipe-git/writer``) and journals the paths of
a commit (``journal.json``) before moving the branch; the next writer, under
the lock, finds the marker of a dead one and removes git locks and temporary
files it held, and brings the working tree and index to the commit the
journal names.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..errors import ProjectBusyError, RepositoryStateError
from . import checkout, lockfile, packing, spares
from .format import id_text
from .refs import BRANCH
from .snapshot import Snapshot

if TYPE_CHECKING:  # the façade calls down into this module; it only annotates
    from .repository import Repository

_DEAD_WRITER_LOCK_SECONDS = 1.0
# Temporary files of a write: write-object-PID-THREAD (objects), write-PID-THREAD (working tree).
_TEMP_FILE = re.compile(r"write-(?:object-|lock-)?(\d+)-\d+")
# Files git keeps while an operation of the user's is unfinished.
_IN_PROGRESS = [
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
    ("rebase-merge", "rebase"),
    ("rebase-apply", "rebase or git am"),
    ("BISECT_LOG", "bisect"),
]


@contextlib.contextmanager
def write_lock(repo: Repository) -> Iterator[None]:
    os.makedirs(repo.state_dir, exist_ok=True)
    with lockfile.exclusive(os.path.join(repo.state_dir, "write-mutex")):
        yield
    packing.after_write(repo.git_dir, repo.objects.loose_written)  # packs if many loose objects, unlocked


@contextlib.contextmanager
def writer_marker(repo: Repository) -> Iterator[None]:
    """Mark a mutation in progress; a marker found later means its writer died."""
    marker = os.path.join(repo.state_dir, "writer")
    spares.of(repo.state_dir).take(marker)  # a file made by the packer, if there is one
    with open(marker, "w") as f:
        f.write(str(os.getpid()))
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)


def recover_dead_writer(repo: Repository) -> None:
    """Clean up after a writer of ours that was killed mid-mutation.

    We hold the project lock, so a marker left behind belongs to a dead
    writer, and git lock files it may have held are removed — only those
    older than a moment, so a git command that just started keeps its own.
    The lock file itself is never removed: a writer waiting on it would
    then hold a lock nobody else sees. Temporary files go only when the
    process named in them is gone.
    """
    remove_temp_files_of_dead_writers(repo)
    marker = os.path.join(repo.state_dir, "writer")
    if not os.path.exists(marker):
        return
    for lock in (repo.branch.file + ".lock", repo.index_path + ".lock"):
        # A lock of the dead writer's is at most moments old; give a git
        # command that took it just now that moment to finish.
        while 0 <= _age(lock) < _DEAD_WRITER_LOCK_SECONDS:
            time.sleep(0.05)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(marker)


def remove_temp_files_of_dead_writers(repo: Repository) -> None:
    """Remove the temporary files (``write-object-PID-…``, ``write-PID-…``) of dead processes."""
    for name in os.listdir(repo.state_dir):
        found = _TEMP_FILE.fullmatch(name)
        if found and not lockfile.process_alive(int(found.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(repo.state_dir, name))


def journal_path(repo: Repository) -> str:
    return os.path.join(repo.state_dir, "journal.json")


def journal(repo: Repository, entry: dict) -> None:
    # Written in place, not renamed: the branch moves only after this
    # returns, so a journal torn by a crash belongs to a commit that never
    # landed, and recovery discards it as unreadable.
    spares.of(repo.state_dir).take(journal_path(repo))  # see writer_marker
    with open(journal_path(repo), "w") as f:
        json.dump(entry, f)


def clear_journal(repo: Repository) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal_path(repo))


def finish_interrupted(repo: Repository) -> None:
    """Complete the working-tree update of a writer killed mid-way.

    A file is brought to HEAD only if it still holds the content from
    before or after that commit; anything else is a person's edit.
    """
    try:
        with open(journal_path(repo)) as f:
            entry = json.load(f)
    except FileNotFoundError:
        return
    except ValueError:
        entry = None
    if entry is not None and id_text(repo.head()) == entry["new"]:
        snap = Snapshot(repo, repo.head())
        updates = {}
        for path, (old, new) in entry["paths"].items():
            current = repo.worktree.file_sha(path)
            # Missing is unfinished only for a file the commit added (or
            # removed); a modified file missing was deleted by a person.
            unfinished = (old is None or new is None) if current is None else current.decode() in (old, new)
            if unfinished:
                sha = snap.blob_id(path)
                updates[path] = (sha, None if sha is None else repo.object_contents(sha))
        if not checkout.sync_worktree(repo, updates):
            raise ProjectBusyError(
                f"{repo.index_path}.lock is held by another program, and the last change "
                "still has to be written to git's index; wait for git to finish and try again"
            )
    clear_journal(repo)


def check_repository_state(repo: Repository) -> None:
    """Refuse to commit where git is in the middle of something of the user's."""
    try:
        with open(os.path.join(repo.git_dir, "HEAD"), "rb") as f:
            head = f.read().strip()
    except FileNotFoundError:
        head = b""
    if head != b"ref: " + BRANCH:
        checked_out = head[len(b"ref: refs/heads/") :].decode() if head.startswith(b"ref: ") else None
        what = f"branch {checked_out!r} checked out" if checked_out else "a detached HEAD"
        raise RepositoryStateError(
            f"{repo.root} has {what}; expipe_git records on branch main: run 'git switch main' there first"
        )
    for name, doing in _IN_PROGRESS:
        if os.path.exists(os.path.join(repo.git_dir, name)):
            raise RepositoryStateError(
                f"{repo.root} is in the middle of a {doing}; finish it (or abort it) with git first"
            )


def _age(path: str) -> float:
    """Seconds since ``path`` was modified; -1 if it does not exist."""
    try:
        return time.time() - os.stat(path).st_mtime
    except FileNotFoundError:
        return -1.0
