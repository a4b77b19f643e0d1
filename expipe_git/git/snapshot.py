"""A read view of the files of one commit, or of a transaction's draft."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the repository hands snapshots out; they only call back into it
    from .repository import Repository
    from .transaction import Draft


class Snapshot:
    """A read view of the files of one commit (or of an empty repository).

    With a ``draft``, reads see the draft's files instead: inside a
    transaction, the changes buffered so far on top of ``commit``.
    """

    def __init__(self, store: Repository, commit: bytes | None, draft: Draft | None = None):
        self.store = store
        self.commit = commit
        self._draft = draft
        self._tree = store.commit_tree(commit) if commit and draft is None else None

    @property
    def tree(self) -> bytes | None:
        return self._tree if self._draft is None else self._draft.tree()

    def entry(self, path: str) -> tuple[int, bytes] | None:
        """Return (mode, sha) of ``path``, or None if it does not exist."""
        if self._draft is not None:
            return self._draft.entry(path)
        if self._tree is None:
            return None
        return self.store.lookup(self._tree, path)

    def blob_id(self, path: str) -> bytes | None:
        found = self.entry(path)
        if found is None or stat.S_ISDIR(found[0]):
            return None
        return found[1]

    def read_parsed(self, path: str, parse: Callable[[bytes], object]) -> object | None:
        """Return ``parse(bytes)`` of a file, cached by its blob id."""
        sha = self.blob_id(path)
        return None if sha is None else self.store.parsed(sha, parse)

    def listdir(self, path: str) -> dict[str, tuple[int, bytes]]:
        """Return name -> (mode, sha) of a folder; empty if it does not exist."""
        if self.tree is None:
            return {}
        if path in ("", "/"):
            return self.store.tree_entries(self.tree)
        found = self.entry(path)
        if found is None or not stat.S_ISDIR(found[0]):
            return {}
        return self.store.tree_entries(found[1])

    def predecessor(self, path: str) -> str | None:
        """Return the file that sorts right before ``path`` in git's index order.

        The index sorts full paths as bytes; a folder ``d`` sorts as ``d/``.
        """
        if self.tree is None:
            return None
        return self.store.predecessor(self.tree, path)

    def walk(self, path: str = "") -> Iterator[tuple[str, bytes]]:
        """Yield (path, blob sha) of every file below ``path``."""
        for name, (mode, sha) in self.listdir(path).items():
            full = f"{path}/{name}" if path else name
            if stat.S_ISDIR(mode):
                yield from self.walk(full)
            else:
                yield full, sha
