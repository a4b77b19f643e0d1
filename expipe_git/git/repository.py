"""The repository façade: all the layers above :mod:`expipe_git.git` see of git.

Read files at a commit, and commit changes safely. It knows nothing of TOML
or of actions; it stores bytes at paths. The work is done by the modules of
this package (objects, refs, trees, writer, transaction, checkout,
recovery); this class holds one repository's state and says which does what.

A mutation (:meth:`Repository.mutate`, :mod:`expipe_git.git.writer`) runs under one project-wide lock:

1. take the lock (:mod:`expipe_git.lockfile` on ``.git/expipe-git/write-mutex``;
   the kernel releases it when a writer dies, unlike git's ``*.lock`` files;
   the file itself is never removed);
2. clean up after a writer that died: its temporary files, git locks it
   held, and the working-tree update it left half-way (journal);
3. read HEAD and let the caller compute its changes from that state, so a
   mutation always applies to the latest commit and concurrent writers
   compose instead of overwriting each other;
4. refuse if a touched file was edited by hand and not committed;
5. write blobs, the changed trees and a commit; move the branch with
   compare-and-swap (a commit made meanwhile by stock git is retried on top,
   a bounded number of times);
6. update the index entries and working-tree files of the changed paths.
   The change is committed by now, so a failure here is a warning, never an
   error a retry would answer by committing it twice.

Hooks never run and gc never starts: nothing here calls porcelain.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from dulwich.errors import MissingCommitError, NotGitRepository
from dulwich.repo import Repo

from ..errors import CorruptRepositoryError, ExpipeError
from . import checkout, merging, packs, readcache, spares, transaction, writer
from .format import COMMIT, OBJECT_ID, TREE, TYPE_NAMES
from .objects import Changes, CommitInfo, Identity, ObjectStore, commit_links
from .readcache import remember
from .refs import BRANCH, Branch, RefNames
from .snapshot import Snapshot
from .trees import Trees
from .worktree import WorkTree

__all__ = ["BRANCH", "Changes", "CommitInfo", "Identity", "Repository", "Snapshot"]


class Repository:
    """A git repository with a working tree, as expipe_git reads and writes it."""

    def __init__(self, root: str | os.PathLike[str], *, read_only_at: bytes | None = None):
        self.root = os.path.abspath(os.fspath(root))
        try:
            self.repo = Repo(self.root)
        except NotGitRepository as exc:
            raise ExpipeError(f"{self.root} is not a git repository") from exc
        self.git_dir = self.repo.controldir()
        self.state_dir = os.path.join(self.git_dir, spares.STATE_DIR)
        self.index_path = self.repo.index_path()
        self.index_trust = os.path.join(self.state_dir, "index-written")
        self.worktree = WorkTree(self.root, self.state_dir)
        self.pinned = read_only_at
        # dulwich types ids as its own NewTypes of bytes; ours are plain bytes.
        dulwich: Any = self.repo
        self.objects = ObjectStore(self.git_dir, self.state_dir, dulwich.object_store.get_raw)
        self.branch = Branch(self.root, self.git_dir, self.git_identity)
        self.ref_names = RefNames(dulwich.refs, self.objects.read)
        self._cache = readcache.ReadCache(os.path.join(self.state_dir, "read-cache"))
        self.trees = Trees(self.objects.read, self.objects.write, self._cache)
        # At exit (or when this repository is collected): save what was
        # parsed, and close pack files before the interpreter tears down the
        # modules dulwich's __del__ needs (it prints tracebacks otherwise).
        weakref.finalize(self, _close, self.repo, self._cache)
        self._commit_trees: dict[bytes, bytes] = {}
        self._parsed: dict[bytes, object] = {}
        self.commits: dict[bytes, CommitInfo] = {}  # parsed commits, by id
        self.writing = threading.local()  # the transaction of each thread
        self.thread_lock = threading.RLock()

    @property
    def sync_objects(self) -> bool:
        """Whether each loose object is fsynced as it is written (see :class:`ObjectStore`)."""
        return self.objects.sync

    @sync_objects.setter
    def sync_objects(self, value: bool) -> None:
        self.objects.sync = value

    # -- creating ---------------------------------------------------------

    @classmethod
    def init(cls, root: str | os.PathLike[str]) -> Repository:
        """Make ``root`` a git repository on branch main (root must exist)."""
        root = os.fspath(root)
        if not os.path.isdir(os.path.join(root, ".git")):
            repo = Repo.init(root, default_branch=b"main")
            config = repo.get_config()
            # gc is never started behind the user's back: dulwich's repack
            # writes packs without deltas and holds everything in memory.
            config.set((b"gc",), b"auto", b"0")
            config.write_to_path()
            repo.close()
        return cls(root)

    # -- reading ----------------------------------------------------------

    def head(self) -> bytes | None:
        """Return the commit the branch points to, or None before the first."""
        return self.pinned if self.pinned is not None else self.branch.head()

    def snapshot(self, commit: bytes | None = None) -> Snapshot:
        """Return a view of ``commit`` (default: HEAD with this thread's buffered changes)."""
        if commit is None:
            tx = transaction.current(self)
            if tx is not None:
                return Snapshot(self, tx.start, tx.draft)
            commit = self.head()
            snap = Snapshot(self, commit)
            self._cache.root = snap.tree  # what the read cache keeps when saved
            return snap
        return Snapshot(self, commit)

    def commit_tree(self, commit: bytes) -> bytes:
        """Return the root tree of a commit (cached: commits never change)."""
        tree = self._commit_trees.get(commit)
        if tree is None:
            type_num, raw = self.objects.read(commit)
            if type_num != COMMIT or not raw.startswith(b"tree "):
                raise ExpipeError(f"{commit.decode()} is not a commit")
            tree = remember(self._commit_trees, commit, commit_links(raw)[0])
        return tree

    def tree_entries(self, sha: bytes) -> dict[str, tuple[int, bytes]]:
        """Return name -> (mode, sha) of a tree, cached by its id."""
        return self.trees.entries(sha)

    def lookup(self, tree: bytes, path: str) -> tuple[int, bytes] | None:
        return self.trees.lookup(tree, path)

    def predecessor(self, tree: bytes, path: str, prefix: str = "") -> str | None:
        """Return the greatest file path below ``tree`` that sorts before ``path``."""
        return self.trees.predecessor(tree, path, prefix)

    def diff_trees(
        self, old: bytes | None, new: bytes | None, prefix: str = ""
    ) -> dict[str, tuple[bytes | None, bytes | None]]:
        """Return path -> (old blob id, new blob id) of the files that differ."""
        return self.trees.diff(old, new, prefix)

    def read_commit(self, sha: bytes) -> CommitInfo:
        """Return the parsed header and message of a commit (cached)."""
        found = self.commits.get(sha)
        if found is None:
            type_num, raw = self.objects.read(sha)
            if type_num != COMMIT:
                raise ExpipeError(f"{sha.decode()} is not a commit")
            found = remember(self.commits, sha, CommitInfo.parse(sha, raw))
        return found

    def merge_bases(self, one: bytes, two: bytes) -> list[bytes]:
        """Return the best common ancestors of two commits (usually one; none if unrelated)."""
        return merging.merge_bases(self.read_commit, one, two)

    def is_ancestor(self, ancestor: bytes, descendant: bytes) -> bool:
        """Say whether ``ancestor`` is ``descendant`` or in its history."""
        return ancestor == descendant or ancestor in self.merge_bases(ancestor, descendant)

    def object_contents(self, sha: bytes) -> bytes:
        """Return the contents of an object (any kind: blob, tree, commit, tag)."""
        return self.objects.read(sha)[1]

    def stored_object(self, sha: bytes) -> packs.StoredObject | None:
        """Return an object's packed bytes as stored, for a push to send on; None if not packed."""
        return self.objects.stored(sha)

    def parsed(self, sha: bytes, parse: Callable[[bytes], object]) -> object:
        """Return ``parse`` of a blob; blobs never change, so cache by id.

        The cache outlives the process (:mod:`expipe_git.git.readcache`), so every
        caller must pass the same ``parse`` (``values.parse``).
        """
        value = self._parsed.get(sha)
        if value is None:
            value = self._cache.record(sha)
            if value is None:
                value = parse(self.object_contents(sha))
                self._cache.add_record(sha, value)
            remember(self._parsed, sha, value)
        return value

    def subjects(self, limit: int | None = None) -> list[tuple[str, str]]:
        """Return (commit id, subject) of the branch's commits, newest first."""
        head = self.head()
        if head is None:
            return []
        found = []
        try:
            dulwich: Any = self.repo
            for entry in dulwich.get_walker(include=[head], max_entries=limit):
                message = entry.commit.message.decode("utf-8", "replace")
                found.append((entry.commit.id.decode("ascii"), message.split("\n", 1)[0]))
        except (KeyError, MissingCommitError) as exc:  # dulwich's words for a missing object
            missing = getattr(exc, "sha", None) or (exc.args[0] if exc.args else b"?")
            if isinstance(missing, bytes):
                missing = missing.decode("ascii", "replace")
            raise CorruptRepositoryError(
                f"git object {missing} in {self.git_dir} is missing; run 'git fsck' there", missing
            ) from None
        return found

    # -- history (read-only helpers for expipe_git.history) ----------------

    def tree_bytes(self, sha: bytes) -> bytes:
        """Return a tree object's raw entries, without parsing or remembering them.

        History walks compare thousands of old trees once each: keeping them
        in the shared read cache would bloat it with trees nobody reads
        again, and two versions of a big folder differ in a few bytes, so the
        caller parses only around those (:mod:`expipe_git.git.historyindex`).
        """
        type_num, raw = self.objects.read(sha)
        if type_num != TREE:
            raise ExpipeError(f"{sha.decode()} is not a tree")
        return raw

    def resolve_ref(self, name: str) -> bytes | None:
        """Return the commit a ref name means, by git's rules, or None (see :class:`RefNames`)."""
        return self.ref_names.resolve_ref(name)

    def reflog(self, name: str) -> list[tuple[bytes, int]] | None:
        """Return (commit, when it was set) of each value ref ``name`` had, newest first, from its reflog.

        ``HEAD`` is branch main's (expipe_git commits on main only); None
        if there is no such ref. Times are seconds since the epoch.
        """
        full = BRANCH if name in ("HEAD", "@") else self.ref_names.full_name(name)
        if full is None:
            return None
        dulwich: Any = self.repo
        return [(entry.new_sha, entry.timestamp) for entry in dulwich.read_reflog(full)][::-1]

    def peel(self, sha: bytes) -> bytes:
        """Follow annotated tags to the object they name."""
        return self.ref_names.peel(sha)

    def objects_with_prefix(self, prefix: str) -> list[bytes]:
        """Return the ids of the objects whose hex id starts with ``prefix``."""
        try:
            return sorted(set(self.repo.object_store.iter_prefix(prefix.lower().encode("ascii"))))
        except (ValueError, UnicodeEncodeError):
            return []

    def object_type(self, sha: bytes) -> str | None:
        """Return "commit", "tree", "blob" or "tag", or None if the object is missing."""
        found = self.objects.find(sha) if OBJECT_ID.fullmatch(sha) else None  # raises if damaged
        if found is None:
            return None
        kind = TYPE_NAMES.get(found[0])
        return None if kind is None else kind.decode()

    # -- writing ----------------------------------------------------------

    def mutate(
        self,
        build: Callable[[Snapshot], Changes],
        message: str,
        *,
        author: Identity,
        from_worktree: bool = False,
        when: datetime | None = None,
        merge_parent: bytes | None = None,
    ) -> bytes | None:
        """Commit the changes ``build`` computes from the latest commit.

        ``build`` may raise to abort; nothing is written then. Returns the new
        commit id, or None when the changes leave every file as it was.
        ``from_worktree`` says the changes are the working-tree files
        themselves (committing hand edits), so they are not refused as edits.
        ``when`` dates the commit (default: now). ``merge_parent`` makes a
        merge commit whose second parent it is; it is made even when the
        merged tree equals HEAD's, so the other history becomes an ancestor.

        Inside :meth:`transaction` the change is buffered and None returned.
        """
        tx = transaction.current(self)
        if tx is not None:
            if from_worktree or when is not None or merge_parent is not None:
                raise ExpipeError(
                    "committing hand edits or merging cannot be part of a transaction; "
                    "do it before or after the 'with project.transaction()' block"
                )
            transaction.buffer(self, tx, build, message)
            return None

        return writer.mutate(self, build, message, author, from_worktree, when, merge_parent)

    def fast_forward(self, target: bytes, message: str = "fast-forward", *, into_empty: bool = False) -> bool:
        """Move the branch to ``target``, a descendant of HEAD, and check it out (see :mod:`.writer`)."""
        return writer.fast_forward(self, target, message, into_empty=into_empty)

    def transaction(
        self, message: str | None, author: Callable[[], Identity]
    ) -> contextlib.AbstractContextManager[None]:
        """Make every mutation in the block one commit, or none if it raises (see :mod:`.transaction`)."""
        return transaction.transaction(self, message, author)

    @contextlib.contextmanager
    def scratch_objects(self) -> Iterator[Callable[[bytes, bytes], bytes]]:
        """Objects made in memory for the length of the block: read like stored ones, never written.

        Yields ``put(kind, content) -> hex id``. A merge builds its virtual
        merge base this way: trees and a commit nobody should find on disk.
        """
        with self.objects.scratch() as put:
            yield put

    def scratch_commit(
        self, put: Callable[[bytes, bytes], bytes], parents: list[bytes], changes: Changes, message: str
    ) -> bytes:
        """Make with ``put`` (of :meth:`scratch_objects`) a commit: first parent's files, and ``changes``."""
        return transaction.scratch_commit(self, put, parents, changes, message)

    # -- the index and working tree ---------------------------------------

    def rebuild_index(self, written: dict | None = None) -> None:
        """Write the index afresh from HEAD, keeping stat data of clean files."""
        checkout.rebuild_index(self, written)

    def status(self) -> list[tuple[str, str]]:
        """Return (path, "added" | "modified" | "deleted") for uncommitted edits."""
        return checkout.status(self)

    def git_identity(self) -> dict[str, str]:
        """Return the identity keys set in git's configuration (repository, then global).

        Keys: ``user.name``, ``user.email``, ``author.name``, ``author.email``,
        ``committer.name``, ``committer.email``.
        """
        config = self.repo.get_config_stack()
        found = {}
        for section in ("user", "author", "committer"):
            for key in ("name", "email"):
                try:
                    value = config.get((section.encode(),), key.encode()).decode("utf-8", "replace")
                except KeyError:
                    continue
                if value.strip():
                    found[f"{section}.{key}"] = value.strip()
        return found

    def close(self) -> None:
        _close(self.repo, self._cache)


def _close(repo: Repo, cache: readcache.ReadCache) -> None:
    cache.save()
    repo.close()
