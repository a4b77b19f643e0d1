"""Transactions: mutations buffered in memory (a draft tree) until the block ends, then one commit."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from dulwich.objects import parse_tree

from ..errors import ReadOnlyError
from . import checkout, writer
from .format import BLOB, EMPTY_TREE, FILE_MODE, ID_BYTES
from .objects import Changes, Identity, keep
from .snapshot import Snapshot

if TYPE_CHECKING:  # the façade calls down into this module; it only annotates
    from .repository import Repository


class Draft:
    """A tree being changed in memory: the files of a transaction so far.

    Changes wait in ``pending`` and are folded into ``tree`` only when a
    folder they touch is read, so a run of mutations rewrites the root tree
    once, not once per mutation.
    """

    def __init__(self, store: Repository, tree: bytes | None, put: Callable[[bytes, bytes], bytes]):
        self.store = store
        self.base = tree  # the tree with every change before ``pending``
        self.pending: dict[str, bytes | None] = {}
        self.folders: set[str] = set()
        self.put = put

    def change(self, changes: dict[str, bytes | None]) -> None:
        for path, sha in changes.items():
            self.pending[path] = sha
            folder = path.rpartition("/")[0]
            while folder and folder not in self.folders:
                self.folders.add(folder)
                folder = folder.rpartition("/")[0]

    def tree(self) -> bytes | None:
        if self.pending:
            tree = self.store.trees.build(self.base, self.pending, put=self.put)
            self.base = None if tree == EMPTY_TREE else tree
            self.pending, self.folders = {}, set()
        return self.base

    def entry(self, path: str) -> tuple[int, bytes] | None:
        if path in self.pending:
            sha = self.pending[path]
            return None if sha is None else (FILE_MODE, sha)
        tree = self.tree() if path in self.folders else self.base
        return None if tree is None else self.store.lookup(tree, path)


class Transaction:
    """Mutations buffered in memory until the outermost block ends.

    Each mutation's ``build`` is applied at once to an in-memory draft, so
    reads inside the block see it; nothing touches the disk. At the end the
    draft becomes one commit. If another writer committed meanwhile, the
    builds are replayed in order on top of its commit, as a single mutation
    would be.
    """

    def __init__(self, store: Repository, start: bytes | None):
        self.start = start
        self.objects: dict[bytes, tuple[int, bytes]] = {}
        self.draft = Draft(store, store.commit_tree(start) if start else None, self.put)
        self.builds: list[Callable[[Snapshot], Changes]] = []
        self.subjects: list[str] = []
        self.message: str | None = None

    def put(self, kind: bytes, content: bytes) -> bytes:
        return keep(self.objects, kind, content)


def current(repo: Repository) -> Transaction | None:
    """The transaction of this thread, if one is open."""
    return getattr(repo.writing, "tx", None)


@contextlib.contextmanager
def transaction(repo: Repository, message: str | None, author: Callable[[], Identity]) -> Iterator[None]:
    """Make every mutation in the block one commit, or none if it raises.

    A nested block folds into the outer one; if it raises, only its own
    changes are dropped (a savepoint), and the exception goes on.
    ``author`` is called once, when there is something to commit.
    """
    tx = current(repo)
    if tx is not None:
        # Objects stay: they are named by their contents, and only those
        # the final tree reaches are written.
        savepoint = (tx.draft.tree(), len(tx.builds))
        if tx.message is None:
            tx.message = message
        try:
            yield
        except BaseException:
            tx.draft.base, count = savepoint
            tx.draft.pending, tx.draft.folders = {}, set()
            del tx.builds[count:], tx.subjects[count:]
            raise
        return
    if repo.pinned is not None:
        raise ReadOnlyError("this is a read-only view of an old state of the project")
    start = repo.head()
    tx = Transaction(repo, start)
    tx.message = message
    repo.writing.tx, repo.objects.in_memory = tx, tx.objects
    try:
        yield
        repo.writing.tx = None
        if tx.builds:
            commit_transaction(repo, tx, author())
    finally:
        repo.writing.tx = repo.objects.in_memory = None


def scratch_commit(
    repo: Repository,
    put: Callable[[bytes, bytes], bytes],
    parents: list[bytes],
    changes: Changes,
    message: str,
) -> bytes:
    """Make with ``put`` (of :meth:`scratch_objects`) a commit: first parent's files, and ``changes``."""
    blobs = {path: None if data is None else put(b"blob", data) for path, data in changes.items()}
    tree = repo.trees.build(repo.commit_tree(parents[0]), blobs, put=put)
    if tree == EMPTY_TREE:
        put(b"tree", b"")  # never stored on disk, but this commit's tree must be readable
    when = max(repo.read_commit(parent).commit_time for parent in parents)
    header = [b"tree " + tree, *(b"parent " + parent for parent in parents)]
    header += [b"author expipe_git <> %d +0000" % when, b"committer expipe_git <> %d +0000" % when]
    return put(b"commit", b"\n".join(header) + b"\n\n" + message.encode() + b"\n")


def buffer(repo: Repository, tx: Transaction, build: Callable[[Snapshot], Changes], message: str) -> None:
    changes = {p: sha for p, (sha, _) in stage(repo, Snapshot(repo, tx.start, tx.draft), build, tx).items()}
    if changes:
        tx.draft.change(changes)
        tx.builds.append(build)
        tx.subjects.append(message.split("\n", 1)[0])


def stage(repo: Repository, snap: Snapshot, build: Callable[[Snapshot], Changes], tx: Transaction) -> dict:
    """Run ``build`` on ``snap``; keep the new blobs in the transaction's memory."""
    updates = checkout.effective_changes(repo, snap, build(snap))
    for sha, data in updates.values():
        if sha is not None and data is not None:
            tx.objects[sha] = (BLOB, data)
    return updates


def commit_transaction(repo: Repository, tx: Transaction, author: Identity) -> bytes | None:
    message = transaction_message(tx.message, tx.subjects)

    def prepare(snap: Snapshot) -> tuple[dict, bytes] | None:
        draft = tx.draft
        if snap.commit != tx.start:
            # Another writer committed since the block began: replay.
            draft = Draft(repo, snap.tree, tx.put)
            for build in tx.builds:
                staged = stage(repo, Snapshot(repo, snap.commit, draft), build, tx)
                draft.change({p: sha for p, (sha, _) in staged.items()})
        tree = draft.tree()
        changed = repo.diff_trees(snap.tree, tree)
        if not changed:
            return None
        updates = {
            path: (new, None if new is None else repo.object_contents(new))
            for path, (_, new) in changed.items()
        }
        checkout.refuse_hand_edits(repo, snap, updates)
        persist(repo, tx, tree)
        if tree is None:  # everything was deleted
            tree = repo.objects.write(b"tree", b"")
        return updates, writer.write_commit(repo, snap, {}, message, author, tree=tree)

    return writer.land(repo, prepare, message)


def persist(repo: Repository, tx: Transaction, tree: bytes | None) -> None:
    """Write to disk the objects of ``tree`` that exist only in memory."""
    if tree is None or tree not in tx.objects:
        return
    type_num, content = tx.objects[tree]
    for _, mode, sha in parse_tree(content, ID_BYTES):
        if sha in tx.objects:
            if stat.S_ISDIR(mode):
                persist(repo, tx, sha)
            else:
                repo.objects.write(b"blob", tx.objects[sha][1])
    repo.objects.write(b"tree", content)


def transaction_message(message: str | None, subjects: list[str]) -> str:
    """The commit message of a transaction: its message, then what it did."""
    if message is None and len(subjects) == 1:
        return subjects[0] + "\n\nExpipe-Operation: transaction\n"
    subject = message.strip() if message else f"{len(subjects)} changes"
    shown = subjects[:100]
    lines = [f"- {line}" for line in shown]
    if len(subjects) > len(shown):
        lines.append(f"- and {len(subjects) - len(shown)} more")
    return subject + "\n\n" + "\n".join(lines) + "\n\nExpipe-Operation: transaction\n"
