"""The object layer's seam to the engine: read a record, commit a change.

Every handle (an action, a module, a template...) holds its project, and
through it one :class:`Session`: the repository, the author of its commits,
and the few verbs the object layer needs. The layers above the engine
(records, objects, history, merge, migrate, query, web) call these verbs
instead of the engine's, so a change of the engine touches this module only.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, cast

from . import config as expipe_config
from . import layout, tomltext, values
from .errors import NotFoundError
from .git import Changes, Identity, Repository, Snapshot

# What a change builder gets (the latest commit) and returns (path -> new bytes, None to delete).
Builder = Callable[[Snapshot], Changes]


class Session:
    """One project's repository as the object layer sees it.

    ``repository`` is the engine's façade, for the features built on it
    (history, merge, query); records and handles use the methods.
    """

    def __init__(self, repository: Repository):
        self.repository = repository
        self._author: Identity | None = None

    def snapshot(self) -> Snapshot:
        """Return the latest commit (with the changes of an open transaction)."""
        return self.repository.snapshot()

    def record(self, snap: Snapshot, path: str, what: str) -> Any:
        """Return the decoded record at ``path`` in ``snap``; None if there is none."""
        raw = snap.read_parsed(path, lambda data: values.parse(data, what=f"{what} ({path})"))
        if raw is None:
            return None
        return values.decode(cast(dict, raw), what=f"{what} ({path})")

    def existing(self, snap: Snapshot | None, path: str, obj: tuple[str, ...]) -> Any:
        """Return the record of ``obj`` at ``path``; NotFoundError if it is gone."""
        what = layout.describe(obj)
        record = self.record(snap or self.snapshot(), path, what)
        if record is None:
            raise NotFoundError(f"{what} does not exist (it was deleted)")
        return record

    def identity(self) -> Identity:
        """Return who commits: git's author (and committer, when it differs)."""
        if self._author is None:
            config = self.repository.git_identity()
            author = expipe_config.identity(config, "author")
            committer = expipe_config.identity(config, "committer")
            self._author = Identity(*author, None if committer == author else Identity(*committer))
        return self._author

    def commit(self, obj: tuple[str, ...], operation: str, build: Builder, detail: str = "") -> bytes | None:
        """Commit what ``build`` returns as ``operation`` on ``obj``; return the commit id or None.

        ``build`` runs under the write lock on the latest commit; a record
        file a person laid out keeps its comments and layout.
        """
        message = layout.commit_message(obj, operation, detail)
        return self.repository.mutate(self._keeping_layout(build), message, author=self.identity())

    def commit_as_is(self, build: Builder, message: str, *, from_worktree: bool = False) -> bytes | None:
        """Commit what ``build`` returns, byte for byte, with ``message``; return the commit id or None."""
        return self.repository.mutate(build, message, author=self.identity(), from_worktree=from_worktree)

    @contextlib.contextmanager
    def transaction(self, message: str | None = None) -> Iterator[None]:
        """Make every commit in the block one commit; if the block raises, none."""
        with self.repository.transaction(message, self.identity):
            yield

    def _keeping_layout(self, build: Builder) -> Builder:
        store = self.repository

        def keep(snap: Snapshot) -> Changes:
            changes = build(snap)
            for path, data in changes.items():
                old_sha = None if data is None else snap.blob_id(path)
                if old_sha is None or not path.endswith(layout.SUFFIX):
                    continue
                old = store.object_contents(old_sha)
                if old == data:
                    continue
                assert data is not None
                old_raw = store.parsed(old_sha, functools.partial(values.parse, what=path))
                changes[path] = tomltext.keep_layout(
                    old.decode("utf-8"), cast(dict, old_raw), data.decode()
                ).encode()
            return changes

        return keep
