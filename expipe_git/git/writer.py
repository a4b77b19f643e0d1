"""Mutations: one commit made from the latest one, landed by compare-and-swap, then checked out.

See :mod:`expipe_git.git.repository` for the steps of a mutation; this module
holds them. :mod:`expipe_git.git.transaction` buffers several into one.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..errors import ExpipeError, ProjectBusyError, ReadOnlyError, RepositoryStateError
from . import checkout, historyindex, recovery
from . import index as gitindex
from .format import id_text
from .objects import Changes, CommitInfo, Identity, commit_object, utc_offset
from .snapshot import Snapshot

if TYPE_CHECKING:  # the façade calls down into this module; it only annotates
    from .repository import Repository

# How often a mutation is rebuilt because the branch moved between reading it
# and swapping it. Only a program that commits without our lock moves it
# (stock git), so more than a few in a row means something keeps doing so.
SWAP_ATTEMPTS = 20


def mutate(
    repo: Repository,
    build: Callable[[Snapshot], Changes],
    message: str,
    author: Identity,
    from_worktree: bool = False,
    when: datetime | None = None,
    merge_parent: bytes | None = None,
) -> bytes | None:
    """Commit the changes ``build`` computes from the latest commit (see :meth:`Repository.mutate`)."""

    def prepare(snap: Snapshot) -> tuple[dict, bytes] | None:
        updates = checkout.effective_changes(repo, snap, build(snap))
        if not updates and merge_parent is None:
            return None
        if not from_worktree:
            checkout.refuse_hand_edits(repo, snap, updates)
        commit = write_commit(repo, snap, updates, message, author, when=when, merge_parent=merge_parent)
        return updates, commit

    return land(repo, prepare, message)


def fast_forward(
    repo: Repository, target: bytes, message: str = "fast-forward", *, into_empty: bool = False
) -> bool:
    """Move the branch to ``target``, a descendant of HEAD, and check it out.

    Files that differ between the two and were edited by hand are
    refused, as in :meth:`mutate`. Returns False if HEAD already is
    ``target``, or is not an ancestor of it (checked under the lock, so a
    commit that landed meanwhile is never thrown away).
    """

    def prepare(snap: Snapshot) -> tuple[dict, bytes] | None:
        if snap.commit == target or (snap.commit is not None and not repo.is_ancestor(snap.commit, target)):
            return None
        changed = repo.diff_trees(snap.tree, repo.commit_tree(target))
        updates = {
            path: (new, None if new is None else repo.object_contents(new))
            for path, (_, new) in changed.items()
        }
        checkout.refuse_hand_edits(repo, snap, updates)
        return updates, target

    return land(repo, prepare, message, into_empty=into_empty) is not None


def land(
    repo: Repository,
    prepare: Callable[[Snapshot], tuple[dict, bytes] | None],
    message: str,
    *,
    into_empty: bool = False,
) -> bytes | None:
    """Move the branch to the commit ``prepare`` makes from HEAD; check it out.

    ``prepare(snapshot)`` returns (path -> (new blob id, bytes), commit)
    or None for nothing to do. It runs again if stock git moved the
    branch meanwhile.
    """
    if repo.pinned is not None:
        raise ReadOnlyError("this is a read-only view of an old state of the project")
    with repo.thread_lock, recovery.write_lock(repo):
        recovery.recover_dead_writer(repo)
        index: gitindex.IndexFile | None = None
        # Marked from here: finishing a dead writer's journal takes git's
        # index lock too, and a writer killed doing it leaves that lock.
        with recovery.writer_marker(repo):
            recovery.finish_interrupted(repo)
            recovery.check_repository_state(repo)
            for _ in range(SWAP_ATTEMPTS):
                head = repo.head()
                snap = Snapshot(repo, head)
                prepared = prepare(snap)
                if prepared is None:
                    return None
                updates, commit = prepared
                if index is None:
                    # Read only when there is something to commit (require_*
                    # of an existing object commits nothing): it is megabytes.
                    index = gitindex.IndexFile(repo.index_path, repo.index_trust)
                    if index.problem:
                        raise RepositoryStateError(f"{repo.root}: {index.problem}")
                # (path, blob before, blob after) of every changed file
                files = [(p, snap.blob_id(p), sha) for p, (sha, _) in updates.items()]
                recovery.journal(repo, _journal_entry(head, commit, files))
                if repo.branch.swap(head, commit, message):
                    break
                # Stock git moved the branch without our lock; rebuild on top.
                recovery.clear_journal(repo)
            else:
                raise ProjectBusyError(
                    f"branch main of {repo.root} moved {SWAP_ATTEMPTS} times while this change "
                    "was being made (a program other than expipe_git keeps committing there); "
                    "nothing was changed: try again when it has finished"
                )
            # The change is committed: from here on nothing raises, or a
            # retry would make it twice. What is left undone, the journal
            # lets the next mutation finish.
            after_landing(repo, commit, head, files, updates, index, snap, into_empty=into_empty)
        return commit


def _journal_entry(head: bytes | None, commit: bytes, files: list) -> dict:
    """What recovery needs to finish a checkout: the move of the branch, and each path's blobs."""
    return {
        "old": id_text(head),
        "new": commit.decode(),
        "paths": {path: [id_text(old), id_text(new)] for path, old, new in files},
    }


def after_landing(
    repo: Repository,
    commit: bytes,
    head: bytes | None,
    files: list,
    updates: dict,
    index: gitindex.IndexFile,
    snap: Snapshot,
    *,
    into_empty: bool,
) -> None:
    """Record the new commit's changes, update the working tree and index; warn on failure."""
    with contextlib.suppress(OSError):
        # Only the history index: without it the commit is diffed when history needs it.
        index_history(repo, commit, head, files)
    try:
        if checkout.sync_worktree(repo, updates, index, snap, into_empty=into_empty):
            recovery.clear_journal(repo)
            return
        problem = f"git's index was busy ({repo.index_path}.lock)"
    except (OSError, ExpipeError) as exc:
        problem = f"the working tree or git's index could not be updated ({exc})"
    warnings.warn(
        f"committed, but {problem}; the change is saved as commit {commit.decode()} "
        "(do not repeat it) and the next change made through expipe_git finishes the update",
        stacklevel=5,
    )


def index_history(repo: Repository, commit: bytes, parent: bytes | None, files: list) -> None:
    """Record which files a new commit changed against ``parent``, for history walks.

    A merge commit, or a fast-forward to commits made elsewhere, is
    left to be diffed when history first needs it.
    """
    info = repo.read_commit(commit)  # parsed when it was written
    if info.parents != ((parent,) if parent else ()):
        return
    historyindex.of(repo).record(commit, parent, info.commit_time, files)


def write_commit(
    repo: Repository,
    snap: Snapshot,
    updates: dict,
    message: str,
    author: Identity,
    *,
    when: datetime | None = None,
    merge_parent: bytes | None = None,
    tree: bytes | None = None,
) -> bytes:
    """Write the blobs of ``updates``, the new trees and the commit.

    ``tree``, if given, is the finished root tree (already on disk).
    """
    if tree is None:
        for _, data in updates.values():
            if data is not None:
                repo.objects.write(b"blob", data)
        tree = repo.trees.build(snap.tree, {p: sha for p, (sha, _) in updates.items()})
    parents = [snap.commit] if snap.commit else []
    if merge_parent is not None:
        parents.append(merge_parent)
    if when is not None and when.tzinfo is None:
        when = when.astimezone()  # a naive time is local time
    now = when if when is not None else datetime.now(timezone.utc).astimezone()
    signed = (int(now.timestamp()), utc_offset(now))
    raw = commit_object(
        tree,
        parents,
        (author.git_form(), *signed),
        ((author.committer or author).git_form(), *signed),
        message,
    )
    sha = repo.objects.write(b"commit", raw)
    # The history index reads the new commit's header right after it
    # lands: keep it parsed instead of reading the object back.
    repo.commits[sha] = CommitInfo.parse(sha, raw)
    return sha
