"""Revisions: the commit that a text such as ``HEAD~2``, ``main@{yesterday}`` or ``10 minutes ago`` names.

What a revision may be is listed in :mod:`expipe_git.history`'s docstring.
Ours, not ``dulwich.objectspec``: measured in the same run it was faster for
every kind of revision (bench/bench_revparse.py, docs/performance.md), and it
reads short ids followed by ``~``/``^``, times, and reflogs, with one-line
errors naming the revision.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .errors import InvalidTypeError, InvalidValueError, NotFoundError
from .git import ID_HEX, Repository
from .timetext import aware, parse_when

_REVISION = re.compile(r"^(?P<base>.*?)(?P<ops>(?:[~^][0-9]*)*)$")
_HEX = re.compile(rf"^[0-9a-fA-F]{{4,{ID_HEX}}}$")  # a full or abbreviated commit id
# Text a revision may be when it names no commit, branch or tag: a time (see parse_when).
_TIME_TEXT = re.compile(
    r"^(\d+\s*(second|minute|hour|day|week)s?\s+ago|(now|today|yesterday)(\s+.+)?"
    r"|\d{4}-\d{2}-\d{2}([ t]\d{1,2}:\d{2}(:\d{2})?)?)$"
)


class Revisions:
    """Resolves revisions in one repository."""

    def __init__(self, store: Repository):
        self.store = store

    def resolve(self, revision: Any) -> bytes:
        """Return the commit id ``revision`` names (see expipe_git.history's docstring).

        Raises:
            NotFoundError: no such commit, ref or commit at that time.
            InvalidValueError: the text is not a revision, or a short id is ambiguous.
        """
        if isinstance(revision, dt.datetime):
            return self._at_time(revision)
        if isinstance(revision, bytes):
            revision = revision.decode("ascii", "replace")
        if not isinstance(revision, str):
            raise InvalidTypeError(
                f"a revision is a commit id, HEAD~n, a branch or tag name, a Commit or a datetime, "
                f"not {type(revision).__name__}"
            )
        text = revision.strip()
        match = _REVISION.match(text)
        base, ops = (match.group("base"), match.group("ops")) if match else (text, "")
        if not base:
            raise InvalidValueError(
                f"{revision!r} is not a revision; try HEAD, HEAD~2, a commit id or a branch"
            )
        sha = self._base(base, revision)
        for op in re.findall(r"[~^][0-9]*", ops):
            number = int(op[1:]) if len(op) > 1 else 1
            if op[0] == "~":
                for _ in range(number):
                    sha = self._parent(sha, 0, revision)
            elif number > 0:
                sha = self._parent(sha, number - 1, revision)
        return sha

    def _parent(self, sha: bytes, index: int, revision: str) -> bytes:
        # The commit header, not the graph: resolving HEAD~1000 diffs no trees.
        parents = self.store.read_commit(sha).parents
        if index >= len(parents):
            which = "parent" if index == 0 else f"parent number {index + 1}"
            raise NotFoundError(
                f"revision {revision!r} does not exist: commit {sha.decode()[:7]} has no {which}"
            )
        return parents[index]

    def _base(self, base: str, revision: str) -> bytes:
        if "@{" in base:
            return self._from_reflog(base, revision)
        if base in ("HEAD", "@"):
            head = self.store.head()
            if head is None:
                raise NotFoundError("the project has no commits yet")
            return head
        if len(base) == ID_HEX and _HEX.match(base):
            sha = base.lower().encode("ascii")
            if self.store.object_type(sha) is None:
                raise NotFoundError(f"no commit {base} in {self.store.root}")
            return self._commit_of(sha, revision)
        named = self.store.resolve_ref(base) if _could_be_ref(base) else None
        if named is not None:
            return self._commit_of(named, revision)
        if _HEX.match(base):
            found = [s for s in self.store.objects_with_prefix(base) if self.store.object_type(s) == "commit"]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                listing = ", ".join(s.decode()[:12] for s in found[:5])
                raise InvalidValueError(
                    f"short commit id {base!r} is ambiguous ({listing}); give more digits"
                )
        if _TIME_TEXT.match(" ".join(base.lower().split())):
            return self._at_time(parse_when(base))
        raise NotFoundError(
            f"unknown revision {revision!r}: not a commit id, branch or tag of {self.store.root} "
            "(use HEAD, HEAD~2, a commit id, a branch or a tag name, or a time: "
            "'10 minutes ago', yesterday, 2026-11-01)"
        )

    def _from_reflog(self, base: str, revision: str) -> bytes:
        """``main@{2}``: the value before the last two moves; ``main@{yesterday}``: the value then."""
        name, _, spec = base.partition("@{")
        name = name or "HEAD"
        if not spec.endswith("}") or not spec[:-1].strip():
            raise InvalidValueError(
                f"{revision!r} is not a revision; try HEAD@{{1}}, main@{{yesterday}} or main@{{2 days ago}}"
            )
        spec = spec[:-1].strip()
        entries = self.store.reflog(name)
        if entries is None:
            raise NotFoundError(
                f"unknown revision {revision!r}: no branch or tag {name!r} in {self.store.root}"
            )
        if spec.isdigit():
            if int(spec) >= len(entries):
                raise NotFoundError(
                    f"revision {revision!r} does not exist: the reflog of {name} holds {len(entries)} entries"
                )
            return self._commit_of(entries[int(spec)][0], revision)
        try:
            moment = parse_when(spec).timestamp()
        except InvalidValueError:
            raise InvalidValueError(
                f"{revision!r} is not a revision: {spec!r} is neither a count of moves nor a time "
                "(try HEAD@{1}, main@{yesterday} or main@{2 days ago})"
            ) from None
        for sha, when in entries:
            if when <= moment:
                return self._commit_of(sha, revision)
        raise NotFoundError(f"revision {revision!r} does not exist: the reflog of {name} starts after {spec}")

    def _commit_of(self, sha: bytes, revision: str) -> bytes:
        sha = self.store.peel(sha)
        if self.store.object_type(sha) != "commit":
            raise InvalidValueError(
                f"revision {revision!r} names a {self.store.object_type(sha)}, not a commit"
            )
        return sha

    def _at_time(self, when: dt.datetime) -> bytes:
        moment = aware(when).timestamp()
        sha = self.store.head()
        while sha is not None:
            info = self.store.read_commit(sha)
            if info.commit_time <= moment:
                return sha
            sha = info.parents[0] if info.parents else None
        raise NotFoundError(f"the project has no commit at or before {aware(when).isoformat()}")


def _could_be_ref(name: str) -> bool:
    """Whether ``name`` could name a ref (git check-ref-format's rules, roughly)."""
    return not (
        ".." in name
        or "@{" in name
        or "//" in name
        or name.startswith(("/", "."))
        or name.endswith(("/", ".", ".lock"))
        or any(ch in name for ch in " ~^:?*[\\")
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)
    )
