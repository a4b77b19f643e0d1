"""Refs: branch main (read through a stat-keyed cache, moved by a bounded compare-and-swap), its
reflog, ref names resolved by git's rules, and the locks git's ``*.lock`` protocol takes.

Branch main is read and moved here rather than by dulwich so that every error takes git's lock
back (dulwich's ``GitFile.close()`` raised from its flush on a full disk before it removed the
lock, leaving the project locked) and an empty ref file is an error, not a missing branch.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TypeVar

from ..errors import CorruptRepositoryError, ProjectBusyError
from . import spares
from .format import ID_HEX, OBJECT_ID, TAG, ZERO_ID
from .objects import utc_offset

BRANCH = b"refs/heads/main"
LOCK_WAIT_SECONDS = 3.0
T = TypeVar("T")

# git itself refuses to update a broken ref ('git update-ref' fails on it),
# but its reflog still names the last commit.
_REF_ADVICE = (
    "run 'git fsck' in {root}; the last line of .git/logs/refs/heads/main names the "
    "branch's last commit (its second field): put that id, alone on one line, in place of the "
    "branch's file"
)


class LockHeld(Exception):
    """Someone else holds a git ``*.lock`` file we need."""


class Branch:
    """Branch main of one repository: its file, packed-refs, its reflog."""

    def __init__(self, root: str, git_dir: str, git_identity: Callable[[], dict[str, str]]):
        self.root = root
        self.git_dir = git_dir
        self.file = os.path.join(git_dir, "refs", "heads", "main")
        self.spares = spares.of(os.path.join(git_dir, spares.STATE_DIR))  # for main.lock
        self.packed_refs = os.path.join(git_dir, "packed-refs")
        self.git_identity = git_identity  # git's configured identity, for the reflog
        self._seen: tuple[tuple, bytes | None] | None = None
        self._identity: tuple[str, str] | None = None  # who moves the branch, for its reflog

    def head(self) -> bytes | None:
        """Return the commit branch main points to, or None before the first."""
        # Every read asks for the branch, so that an old handle sees what
        # another process committed. git replaces a ref file (loose, or
        # packed-refs once it packed them) by rename, so an unchanged
        # (inode, mtime, size) means an unchanged ref.
        key: tuple | None = _stat_key(self.file)
        if key is None:
            packed = _stat_key(self.packed_refs)
            key = None if packed is None else ("packed", *packed)
        if key is not None and self._seen is not None and self._seen[0] == key:
            return self._seen[1]
        sha = self.read()
        self._seen = None if key is None else (key, sha)
        return sha

    def read(self) -> bytes | None:
        """Return the commit id branch main holds (its file, else packed-refs), or None.

        Raises:
            CorruptRepositoryError: the branch's file is empty, unreadable or
                holds something else than a commit id. (dulwich reads an empty
                file as a missing branch: reads showed an empty project, and a
                write took it for a branch stock git had just created.)
        """
        where = f"{self.file} (branch main)"
        try:
            with open(self.file, "rb") as f:
                value = f.read().strip()
        except FileNotFoundError:
            where = f"{self.packed_refs} (the line of branch main)"
            packed = self._packed()
            if packed is None:
                return None  # no commit yet
            value = packed
        except OSError as exc:
            raise CorruptRepositoryError(
                f"cannot read {where}: {exc.strerror}; {_REF_ADVICE.format(root=self.root)}",
                BRANCH.decode(),
            ) from None
        if OBJECT_ID.fullmatch(value):
            return value
        shown = "is empty" if not value else f"holds {value[:60]!r}, not a commit id"
        raise CorruptRepositoryError(
            f"{where} {shown}; {_REF_ADVICE.format(root=self.root)}", BRANCH.decode()
        )

    def _packed(self) -> bytes | None:
        """Return what packed-refs (git pack-refs, git gc) says branch main holds, or None."""
        try:
            with open(self.packed_refs, "rb") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CorruptRepositoryError(
                f"cannot read {self.packed_refs}: {exc.strerror}; {_REF_ADVICE.format(root=self.root)}",
                BRANCH.decode(),
            ) from None
        for line in lines:
            if line.endswith(b" " + BRANCH) and not line.startswith((b"#", b"^")):
                return line[: -len(BRANCH) - 1].strip()
        return None

    def swap(self, old: bytes | None, new: bytes, message: str) -> bool:
        """Move the branch from ``old`` to ``new`` if nobody moved it meanwhile.

        git's protocol, done here rather than by dulwich so that every error
        takes the lock back: ``main.lock`` is created exclusively, the branch
        re-read under it, the new id written and synced, then renamed over
        the branch. (dulwich's ``GitFile.close()`` raised from its flush on a
        full disk before it removed the lock, leaving the project locked.)
        Whether or not it moved, the next :meth:`head` reads the file again.
        """
        subject = message.split("\n", 1)[0]
        lock = self.file + ".lock"

        def swap() -> bool:
            try:
                fd = self.spares.create_exclusive(lock)
            except FileExistsError:
                raise LockHeld from None
            moved = False
            try:
                with os.fdopen(fd, "wb") as f:
                    if self.read() != old:
                        return False
                    f.write(new + b"\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(lock, self.file)
                moved = True
            finally:
                if not moved:
                    with contextlib.suppress(OSError):
                        os.unlink(lock)
            return True

        os.makedirs(os.path.dirname(self.file), exist_ok=True)
        try:
            moved = retry_while_locked(swap, LockHeld, lock)
        finally:
            self._seen = None
        if moved:
            self.append_reflog(old, new, ("commit: " if old else "commit (initial): ") + subject)
        return moved

    def append_reflog(self, old: bytes | None, new: bytes, message: str) -> None:
        """Add the move of the branch to its reflog (``git reflog main``), as git does.

        The branch has moved already: a reflog that cannot be written (a
        full disk) is cut back to its last whole line and the move stands.
        """
        name, email = self.reflog_identity()
        now = datetime.now(timezone.utc).astimezone()
        offset = utc_offset(now) // 60
        sign = "-" if offset < 0 else "+"
        zone = f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
        flat = message.replace("\n", " ")
        who = f"{name} <{email}> {int(now.timestamp())} {zone}"
        line = f"{(old or ZERO_ID).decode()} {new.decode()} {who}\t{flat}\n"
        path = os.path.join(self.git_dir, "logs", *BRANCH.decode().split("/"))
        size = None
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "ab") as f:
                size = f.tell()
                f.write(line.encode("utf-8", "replace"))
        except OSError:
            if size is not None:
                with contextlib.suppress(OSError):
                    os.truncate(path, size)

    def reflog_identity(self) -> tuple[str, str]:
        if self._identity is None:
            # git writes its reflog as the committer: environment, then config.
            config = self.git_identity()
            name = (
                os.environ.get("GIT_COMMITTER_NAME")
                or config.get("committer.name")
                or config.get("user.name")
            )
            email = (
                os.environ.get("GIT_COMMITTER_EMAIL")
                or config.get("committer.email")
                or config.get("user.email")
            )
            self._identity = (name or "expipe_git", email or "")
        return self._identity


class RefNames:
    """Ref names resolved by git's rules, annotated tags peeled."""

    def __init__(self, refs: Mapping[bytes, bytes], read_object: Callable[[bytes], tuple[int, bytes]]):
        self.refs = refs  # dulwich's ref container
        self.read_object = read_object

    def resolve_ref(self, name: str) -> bytes | None:
        """Return the commit a ref name means, by git's rules, or None.

        ``name``, ``refs/<name>``, ``refs/tags/<name>``, ``refs/heads/<name>``,
        ``refs/remotes/<name>`` and ``refs/remotes/<name>/HEAD`` are tried in
        that order (git's order); an annotated tag is peeled to its commit.
        """
        found = self._lookup(name)
        return None if found is None else self.peel(found[1])

    def full_name(self, name: str) -> bytes | None:
        """Return the ref a name means by the rules of :meth:`resolve_ref` (``refs/heads/main``), or None."""
        found = self._lookup(name)
        return None if found is None else found[0]

    def _lookup(self, name: str) -> tuple[bytes, bytes] | None:
        raw = name.encode("utf-8", "surrogateescape")
        for candidate in (
            raw,
            b"refs/" + raw,
            b"refs/tags/" + raw,
            b"refs/heads/" + raw,
            b"refs/remotes/" + raw,
            b"refs/remotes/" + raw + b"/HEAD",
        ):
            if candidate != b"HEAD" and not candidate.startswith(b"refs/"):
                continue
            try:
                return candidate, self.refs[candidate]
            except (KeyError, ValueError):
                continue
        return None

    def peel(self, sha: bytes) -> bytes:
        """Follow annotated tags to the object they name."""
        for _ in range(64):
            type_num, raw = self.read_object(sha)
            if type_num != TAG or not raw.startswith(b"object "):
                return sha
            sha = raw[7 : 7 + ID_HEX]
        return sha


def retry_while_locked(action: Callable[[], T], busy: type[Exception], lock: str) -> T:
    """Run ``action`` until ``lock`` is free, for up to a few seconds.

    git's locks are never removed by age (a ``git commit`` waiting in an
    editor holds ``index.lock`` for minutes), only after a writer of ours
    died (:func:`expipe_git.git.recovery.recover_dead_writer`).
    """
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return action()
        except busy:
            if time.monotonic() > deadline:
                raise ProjectBusyError(
                    f"{lock} is held by another program; wait for it to finish and try again "
                    "(if no git program is running, the file is left over from a crash: delete it)"
                ) from None
            time.sleep(0.01)


def _stat_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
