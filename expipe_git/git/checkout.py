"""The working tree and git's index follow each commit; files edited by hand are not overwritten.

Called by the writer once a commit landed (and by crash recovery), with the
changed paths only: a commit costs the size of its change, not of the project.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from dulwich.ignore import IgnoreFilterManager

from ..errors import ProjectBusyError, UncommittedChangesError
from . import index as gitindex
from .objects import Changes
from .refs import retry_while_locked
from .snapshot import Snapshot
from .worktree import blob_sha

if TYPE_CHECKING:  # the façade calls down into this module; it only annotates
    from .repository import Repository


def effective_changes(
    repo: Repository, snap: Snapshot, changes: Changes
) -> dict[str, tuple[bytes | None, bytes | None]]:
    """Return path -> (new sha, data) for changes that change something."""
    updates: dict[str, tuple[bytes | None, bytes | None]] = {}
    for path, data in changes.items():
        old = snap.blob_id(path)
        if data is None:
            if old is not None:
                updates[path] = (None, None)
            continue
        sha = blob_sha(data)
        if sha != old:
            updates[path] = (sha, data)
    return updates


def refuse_hand_edits(repo: Repository, snap: Snapshot, updates: dict) -> None:
    edited = []
    for path, (new_sha, _) in updates.items():
        state = repo.worktree.state(path, snap.blob_id(path))
        if state is None:
            continue
        if state == "added" and new_sha is not None and repo.worktree.file_sha(path) == new_sha:
            continue  # the file already holds what we are about to commit
        if state == "deleted" and new_sha is None:
            continue
        edited.append(path)
    if edited:
        listing = ", ".join(edited)
        raise UncommittedChangesError(
            f"{listing} {'was' if len(edited) == 1 else 'were'} edited by hand and not "
            "committed; commit the edit (project.commit(message, [FILE]) or "
            "'expipe-git commit -m MESSAGE FILE'), or restore the file ('git checkout -- FILE') "
            "or move a new one away, before changing it through expipe_git",
            edited,
        )


def sync_worktree(
    repo: Repository,
    updates: dict,
    index: gitindex.IndexFile | None = None,
    before: Snapshot | None = None,
    *,
    into_empty: bool = False,
) -> bool:
    """Make the working tree and the index match the new commit.

    Returns False if git held the index for too long: the commit stands,
    and the journal lets the next mutation finish the index.
    ``into_empty``: the working tree is a new, empty folder (a clone), so
    files are written in place, without a temporary file each.
    """
    entries: dict[bytes, gitindex.Entry | None] = {}
    for path, (sha, data) in updates.items():
        name = path.encode("utf-8", "surrogateescape")
        if data is None:
            repo.worktree.remove(path)
            entries[name] = None
        else:
            st = repo.worktree.write(path, data, new=into_empty)
            entries[name] = gitindex.Entry(name, bytes.fromhex(sha.decode()), st)
    index = index or gitindex.IndexFile(repo.index_path, repo.index_trust)

    def predecessor(path: bytes) -> bytes | None:
        found = before.predecessor(path.decode("utf-8", "surrogateescape")) if before else None
        return None if found is None else found.encode("utf-8", "surrogateescape")

    def apply() -> None:
        if not index.apply(entries, predecessor):
            rebuild_index(repo, written=entries)

    try:
        retry_while_locked(apply, gitindex.IndexBusyError, repo.index_path + ".lock")
    except (ProjectBusyError, ValueError):
        return False
    return True


def rebuild_index(repo: Repository, written: dict[bytes, gitindex.Entry | None] | None = None) -> None:
    """Write the index afresh from HEAD, keeping stat data of clean files.

    ``written``: entries of files this mutation just wrote, whose stat
    data is known (a checkout of a whole project would read every file
    back otherwise).
    """
    snap = Snapshot(repo, repo.head())
    entries = []
    written = written or {}
    for path, sha in snap.walk():
        name = path.encode("utf-8", "surrogateescape")
        known = written.get(name)
        if known is not None and known.sha == bytes.fromhex(sha.decode()):
            entries.append(known)
            continue
        full = os.path.join(repo.root, path)
        st = None
        with contextlib.suppress(OSError):
            if repo.worktree.file_sha(path) == sha:
                st = os.stat(full)
        entries.append(
            gitindex.Entry(path.encode("utf-8", "surrogateescape"), bytes.fromhex(sha.decode()), st)
        )
    gitindex.write(repo.index_path, entries, repo.index_trust)


def status(repo: Repository) -> list[tuple[str, str]]:
    """Return (path, "added" | "modified" | "deleted") for uncommitted edits."""
    committed = dict(Snapshot(repo, repo.head()).walk())
    # git's ignore rules: .gitignore files, .git/info/exclude, core.excludesFile.
    rules = IgnoreFilterManager.from_repo(repo.repo)
    return repo.worktree.changes(
        committed, gitindex.read_paths(repo.index_path) or {}, lambda path: rules.is_ignored(path) is True
    )
