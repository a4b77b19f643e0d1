"""The exception tree of expipe_git.

Every error is also the builtin exception that expipe 0.6 raised in the same
situation, so scripts written for expipe keep catching what they caught::

    ExpipeError
    ├── NotFoundError(KeyError)            a project, object or template is missing
    ├── AlreadyExistsError(KeyError)       create_* on a name that is taken
    ├── InvalidTypeError(TypeError)        a value or name of the wrong type
    ├── InvalidValueError(ValueError)      a value TOML cannot hold, a bad name
    ├── CorruptFileError(ValueError)       a stored file that does not parse
    ├── NotAProjectError(FileExistsError)  a path that exists but is no project
    ├── UncommittedChangesError            a hand edit would be overwritten
    ├── ReadOnlyError                      a mutation on a read-only view
    ├── RepositoryStateError               git is mid-merge, on another branch, …
    ├── RevertConflictError                a revert would undo a later commit's change
    ├── ProjectBusyError                   the project's write lock was not free
    ├── CorruptRepositoryError             a git object is missing or damaged, a ref is unreadable
    ├── MergeConflict                      a merge found a record changed differently on both sides
    └── RemoteError                        a remote cannot be reached, read or updated
        ├── PushRejectedError              a push was refused: pull first, or the server said no
        └── UnsafeRemoteError              a remote's history holds unsafe or foreign files

This module imports nothing of ours.
"""

from __future__ import annotations


class ExpipeError(Exception):
    """Base class of every error expipe_git raises on purpose."""

    def __str__(self) -> str:
        # KeyError's __str__ shows repr(arg), quoting the whole message; a
        # message is meant to be read, so show it as it is.
        return str(self.args[0]) if self.args else ""


class NotFoundError(ExpipeError, KeyError):
    """A project, object, module, template or message does not exist."""


class AlreadyExistsError(ExpipeError, KeyError):
    """An object with that name exists already."""


class InvalidTypeError(ExpipeError, TypeError):
    """A value or name has a type that cannot be stored."""


class InvalidValueError(ExpipeError, ValueError):
    """A value or name cannot be stored as given."""


class CorruptFileError(ExpipeError, ValueError):
    """A file in the project does not parse; ``path`` names it."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


class NotAProjectError(ExpipeError, FileExistsError):
    """A path exists but holds no expipe_git project."""


class UncommittedChangesError(ExpipeError):
    """A file edited by hand and not committed would be overwritten."""

    def __init__(self, message: str, paths: list[str] | None = None):
        super().__init__(message)
        self.paths = list(paths or [])


class ReadOnlyError(ExpipeError):
    """A mutation was attempted on a read-only view of a project."""


class RepositoryStateError(ExpipeError):
    """git is in a state expipe_git must not commit in: another branch, a merge, …"""


class ProjectBusyError(ExpipeError):
    """Another writer held the project for longer than we were willing to wait."""


class CorruptRepositoryError(ExpipeError):
    """A git object is missing or damaged, or a ref is empty or unreadable; ``name`` says which.

    Not a KeyError on purpose: code that treats a KeyError as "no such
    action" must not mistake a damaged repository for a missing object.
    """

    def __init__(self, message: str, name: str | None = None):
        super().__init__(message)
        self.name = name


class RevertConflictError(ExpipeError):
    """Later commits changed keys a revert would set back; ``conflicts`` lists them."""

    def __init__(self, message: str, conflicts: list[str] | None = None):
        super().__init__(message)
        self.conflicts = list(conflicts or [])


class MergeConflict(ExpipeError):
    """A merge found values changed differently on both sides; nothing was changed.

    ``conflicts`` lists them (:class:`expipe_git.merge.Conflict`: object,
    key, base, ours, theirs, path).
    """

    def __init__(self, message: str, conflicts: list | None = None):
        super().__init__(message)
        self.conflicts = list(conflicts or [])


class RemoteError(ExpipeError):
    """A remote cannot be reached, read or updated; the message never holds a password."""


class PushRejectedError(RemoteError):
    """A push was refused: the remote has commits we lack, or the server declined it."""


class UnsafeRemoteError(RemoteError):
    """A remote's history holds symlinks, submodules, ``.git``, unsafe names or stray files."""
