"""expipe_git: expipe's experiment metadata, kept in git.

A drop-in for expipe 0.6 (``import expipe_git as expipe``) in which every
project is a git repository and every change is one commit.
"""

from . import core, errors
from .display import Browser
from .errors import (
    AlreadyExistsError,
    CorruptFileError,
    ExpipeError,
    InvalidTypeError,
    InvalidValueError,
    MergeConflict,
    NotAProjectError,
    NotFoundError,
    ProjectBusyError,
    PushRejectedError,
    ReadOnlyError,
    RemoteError,
    RepositoryStateError,
    RevertConflictError,
    UncommittedChangesError,
    UnsafeRemoteError,
)
from .history import Change, Commit
from .migrate import ImportReport, import_expipe_project, verify_import
from .model import FileStatus, Project, clone, create_project, get_project, require_project
from .objects import Action, Entity, Message, PropertyList, datetime_format, datetime_key_format
from .records import Module, Template
from .settings import settings

__version__ = "0.1.0"

__all__ = [
    "Action",
    "AlreadyExistsError",
    "Browser",
    "Change",
    "Commit",
    "CorruptFileError",
    "Entity",
    "ExpipeError",
    "FileStatus",
    "ImportReport",
    "InvalidTypeError",
    "InvalidValueError",
    "MergeConflict",
    "Message",
    "Module",
    "NotAProjectError",
    "NotFoundError",
    "Project",
    "ProjectBusyError",
    "PropertyList",
    "PushRejectedError",
    "ReadOnlyError",
    "RemoteError",
    "RepositoryStateError",
    "RevertConflictError",
    "Template",
    "UncommittedChangesError",
    "UnsafeRemoteError",
    "clone",
    "core",
    "create_project",
    "datetime_format",
    "datetime_key_format",
    "errors",
    "get_project",
    "import_expipe_project",
    "require_project",
    "settings",
    "verify_import",
]
