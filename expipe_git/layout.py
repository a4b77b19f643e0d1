"""The on-disk contract: which object lives in which file, and commit messages.

Pure functions over strings; nothing here touches the disk. The layout is
documented for people in ``docs/storage-format.md``::

    expipe.toml                                   project config
    .gitignore                                    keeps data/ folders out of git
    modules/<module>.toml                         project modules
    templates/<template>.toml                     templates
    actions/<shard>/<action>/attributes.toml      one action's attributes
    actions/<shard>/<action>/modules/<m>.toml     its modules
    actions/<shard>/<action>/messages/<id>.toml   its messages
    actions/<shard>/<action>/data/                its data (ignored by git)
    entities/<shard>/<entity>/...                 entities, as actions

``<shard>`` is the first two hex digits of the SHA-1 of the name: with
256 shard folders a commit rewrites a few small trees instead of one tree
listing every action, so the objects a mutation writes stay small (7.6 KiB at
10,000 actions, 16.5 KiB at 100,000; docs/performance.md). git's index still
grows with the project, and every mutation rewrites it.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidTypeError, InvalidValueError

CONFIG_FILE = "expipe.toml"
IGNORE_FILE = ".gitignore"
STORAGE_FORMAT = 1
SUFFIX = ".toml"

# Kinds of object that own a folder with attributes, modules and messages.
FOLDER_KINDS = {"action": "actions", "entity": "entities"}
KIND_OF_FOLDER = {folder: kind for kind, folder in FOLDER_KINDS.items()}

IGNORE_TEXT = (
    "# Written by expipe_git: data folders hold recordings, not metadata.\n"
    "/actions/*/*/data/\n"
    "/entities/*/*/data/\n"
    "# What operating systems and editors leave beside files.\n"
    ".DS_Store\n"
    "._*\n"
    "Thumbs.db\n"
    "desktop.ini\n"
    "~$*\n"
    ".ipynb_checkpoints/\n"
    "*.swp\n"
    "*~\n"
)

MAX_NAME_BYTES = 200
# Device names Windows opens instead of a file, with any extension. Windows
# counts the superscript digits ¹ ² ³ as digits, and Git for Windows refuses
# COM0 and LPT0 too.
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", "conin$", "conout$"} | {
    f"{dev}{digit}" for dev in ("com", "lpt") for digit in "0123456789\u00b9\u00b2\u00b3"
}
_WINDOWS_FORBIDDEN = set('<>:"|?*\\/')


def check_name(name: object, kind: str) -> str:
    """Return ``name`` if it can name a file on every platform git runs on.

    Raises:
        InvalidTypeError: the name is not a str.
        InvalidValueError: the name is empty, or could escape its folder or
            be mistaken for ``.git`` on some file system.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(f"{kind} name must be a str, got {type(name).__name__} {name!r}")
    if name == "":
        raise InvalidValueError(f"{kind} name cannot be an empty string")
    problem = name_problem(name)
    if problem:
        raise InvalidValueError(f"{kind} name {name!r} is not allowed: {problem}")
    return name


@functools.lru_cache(maxsize=1 << 16)
def name_problem(name: str) -> str | None:
    """Return why ``name`` cannot name an object (a short phrase), or None if it can."""
    if any(ch in _WINDOWS_FORBIDDEN for ch in name):
        return 'it contains a path separator or one of < > : " | ? *'
    if name.startswith("."):
        return "it starts with '.' (hidden files, '..' and '.git' are reserved)"
    for ch in name:
        category = unicodedata.category(ch)
        if category == "Cc":
            return f"it contains the control character {ch!r}"
        if category in ("Cf", "Cs", "Co", "Cn"):
            # Zero-width and other invisible characters let '.g\u200cit'
            # pass for '.git' on file systems that ignore them.
            return f"it contains the invisible or unassigned character U+{ord(ch):04X}"
    if name != unicodedata.normalize("NFC", name):
        return "it is not in Unicode normal form NFC; pass unicodedata.normalize('NFC', name)"
    if name.endswith((" ", ".")):
        return "it ends with a space or '.', which Windows drops"
    stem = name.split(".", 1)[0].strip().lower()
    if stem in _WINDOWS_RESERVED:
        return f"{stem.upper()} is a reserved device name on Windows"
    if name.lower().startswith("git~"):
        return "it is the Windows short name of '.git'"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return f"it is longer than {MAX_NAME_BYTES} bytes in UTF-8"
    return None


@functools.lru_cache(maxsize=1 << 16)
def shard(name: str) -> str:
    """Return the shard folder of an action or entity name."""
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:2]


def object_dir(kind: str, name: str) -> str:
    """Return the folder of an action or entity, e.g. ``actions/f2/rec-1``."""
    return f"{FOLDER_KINDS[kind]}/{shard(name)}/{name}"


def attributes_path(kind: str, name: str) -> str:
    return f"{object_dir(kind, name)}/attributes{SUFFIX}"


def modules_dir(owner: tuple[str, ...]) -> str:
    """Return the folder of the modules of ``("project",)`` or ``(kind, name)``."""
    if owner[0] == "project":
        return "modules"
    return f"{object_dir(*owner)}/modules"


def module_path(owner: tuple[str, ...], module: str) -> str:
    return f"{modules_dir(owner)}/{module}{SUFFIX}"


def messages_dir(kind: str, name: str) -> str:
    return f"{object_dir(kind, name)}/messages"


def message_path(kind: str, name: str, message_id: str) -> str:
    return f"{messages_dir(kind, name)}/{message_id}{SUFFIX}"


def template_path(name: str) -> str:
    return f"templates/{name}{SUFFIX}"


def case_twin(names: Iterable[str], path: str) -> str | None:
    """Return the name among a folder's ``names`` that differs from ``path``'s only in case.

    Windows and macOS file systems ignore case: the two would be one file.
    """
    wanted = path.rpartition("/")[2]
    return next((name for name in names if name != wanted and name.lower() == wanted.lower()), None)


def data_dir(kind: str, name: str) -> str:
    return f"{object_dir(kind, name)}/data"


def strip_suffix(filename: str) -> str | None:
    """Return the stem of a ``.toml`` file name, or None for other files."""
    if filename.endswith(SUFFIX) and len(filename) > len(SUFFIX):
        return filename[: -len(SUFFIX)]
    return None


@dataclass(frozen=True)
class Place:
    """What a repository path belongs to.

    ``obj`` is the object's address as a tuple, e.g. ``("action", "rec-1")``,
    ``("action", "rec-1", "module", "tracking")``, ``("template", "daq")``,
    ``("module", "depth")`` for a project module or ``("project",)`` for the
    config. ``part`` says which file of the object it is: "attributes",
    "module", "message", "template" or "config".
    """

    obj: tuple[str, ...]
    part: str


def place_of(path: str) -> Place | None:
    """Return what ``path`` stores, or None if it is outside the layout."""
    if path == CONFIG_FILE:
        return Place(("project",), "config")
    parts = path.split("/")
    if len(parts) == 2 and parts[0] in ("templates", "modules"):
        stem = strip_suffix(parts[1])
        if stem is None or name_problem(stem):
            return None
        kind = "template" if parts[0] == "templates" else "module"
        return Place((kind, stem), kind)
    if len(parts) < 4 or parts[0] not in KIND_OF_FOLDER:
        return None
    kind = KIND_OF_FOLDER[parts[0]]
    name = parts[2]
    if name_problem(name) or parts[1] != shard(name):
        return None
    if len(parts) == 4 and parts[3] == f"attributes{SUFFIX}":
        return Place((kind, name), "attributes")
    if len(parts) == 5 and parts[3] in ("modules", "messages"):
        stem = strip_suffix(parts[4])
        if stem is None or name_problem(stem):
            return None
        part = parts[3][:-1]
        return Place((kind, name, part, stem), part)
    return None


# The folders of the record layout: inside them, only records in their place belong.
LAYOUT_FOLDERS = ("actions", "entities", "templates", "modules")


def in_layout(path: str) -> bool:
    """Whether ``path`` falls in the record layout: the config, the ignore file, or
    anything under one of :data:`LAYOUT_FOLDERS`.

    The top component is compared without case (``Actions/x`` is ``actions/x``
    on Windows and macOS). Any other path (``README.md``, ``analysis/plot.ipynb``)
    is a project file that is not a record: committed only when named, never
    read as a record.
    """
    top = path.split("/", 1)[0].lower()
    return path.lower() in (CONFIG_FILE, IGNORE_FILE) or top in LAYOUT_FOLDERS


def outside_problem(path: str) -> str | None:
    """Why a path outside the layout cannot be a project file, or None if it can.

    Each of its names follows the rules of object names (:func:`name_problem`):
    no ``.git`` in any disguise, no ``..`` or hidden names, nothing Windows
    cannot hold.
    """
    for name in path.split("/"):
        if name == "":
            return "it has an empty name in it"
        problem = name_problem(name)
        if problem is not None:
            return f"{name!r}: {problem}"
    return None


def part_of_project(path: str) -> bool:
    """Whether a new file ``path`` is the project's: a record in its place, or a ``.toml``
    file in the project's folders (a record in the wrong place, refused with a hint by
    :func:`right_place`). Anything else new (``notes.txt``, ``analysis/plot.ipynb``)
    belongs to the person, and expipe_git leaves it alone until it is named to commit."""
    if path in (CONFIG_FILE, IGNORE_FILE) or place_of(path) is not None:
        return True
    top = path.split("/", 1)[0]
    return path.endswith(SUFFIX) and (top in KIND_OF_FOLDER or top in ("templates", "modules"))


def right_place(path: str) -> str | None:
    """For a record file in the wrong place, the path it belongs at, if it can be told.

    ``actions/rec-5/attributes.toml`` -> ``actions/<shard>/rec-5/attributes.toml``;
    ``actions/00/rec-5/modules/probe.toml`` with the wrong shard -> the right one.
    """
    parts = path.split("/")
    if parts[0] not in KIND_OF_FOLDER or not path.endswith(SUFFIX):
        return None
    kind = KIND_OF_FOLDER[parts[0]]
    for at in range(1, len(parts)):
        rest = parts[at + 1 :]
        name = parts[at]
        if name_problem(name):
            continue
        if rest == [f"attributes{SUFFIX}"]:
            return attributes_path(kind, name)
        if len(rest) == 2 and rest[0] in ("modules", "messages") and strip_suffix(rest[1]):
            return f"{object_dir(kind, name)}/{rest[0]}/{rest[1]}"
    stem = strip_suffix(parts[-1])
    if len(parts) == 2 and stem and not name_problem(stem):  # actions/rec-5.toml
        return attributes_path(kind, stem)
    return None


def describe(obj: tuple[str, ...]) -> str:
    """Return how messages and errors name an object, e.g. ``action 'rec-1'``."""
    if obj == ("project",):
        return "project"
    if len(obj) == 2:
        return f"{obj[0]} {obj[1]!r}"
    return f"{obj[2]} {obj[3]!r} of {obj[0]} {obj[1]!r}"


def address(obj: tuple[str, ...]) -> str:
    """Return the slash-separated address the CLI and trailers use."""
    return "/".join(obj)


def parse_address(text: str) -> tuple[str, ...]:
    """Parse a CLI address such as ``action/rec-1/module/tracking``.

    Raises:
        InvalidValueError: the address names no kind of object we store.
    """
    parts = tuple(text.strip("/").split("/"))
    kinds = ("action", "entity", "template", "module")
    ok = (
        parts == ("project",)
        or (len(parts) == 2 and parts[0] in kinds)
        or (len(parts) == 4 and parts[0] in FOLDER_KINDS and parts[2] in ("module", "message"))
    )
    if not ok:
        raise InvalidValueError(
            f"cannot read object address {text!r}; use e.g. project, action/rec-1, "
            "action/rec-1/module/tracking, action/rec-1/message/ID, entity/rat1, "
            "template/daq or module/name"
        )
    for part in parts[1::2]:
        check_name(part, "object")
    return parts


def commit_message(obj: tuple[str, ...], operation: str, detail: str = "") -> str:
    """Return the message of the commit that applies ``operation`` to ``obj``.

    The subject reads as a sentence for ``git log --oneline``; the trailers
    let programs find the object and operation without parsing prose.
    """
    subject = f"{describe(obj)}: {operation}"
    if detail:
        subject = f"{subject} {detail}"
    return f"{subject}\n\nExpipe-Object: {address(obj)}\nExpipe-Operation: {operation}\n"


def object_path(obj: tuple[str, ...]) -> str:
    """Return the file or folder that holds the object at address ``obj``.

    An action or entity is its whole folder (attributes, modules, messages).
    """
    if obj == ("project",):
        return CONFIG_FILE
    kind, name = obj[0], obj[1]
    if len(obj) == 2:
        if kind in FOLDER_KINDS:
            return object_dir(kind, name)
        if kind == "template":
            return template_path(name)
        return module_path(("project",), name)
    if obj[2] == "module":
        return module_path(obj[:2], obj[3])
    return message_path(kind, name, obj[3])


def record_path(obj: tuple[str, ...]) -> str:
    """Return the file of an object's record (an action's attributes file)."""
    if len(obj) == 2 and obj[0] in FOLDER_KINDS:
        return attributes_path(*obj)
    return object_path(obj)


def key_text(keys: tuple) -> str:
    """Return a key path as messages, conflicts and tables show it: ``probe.depth``; ``""`` for none."""
    return ".".join(str(key) for key in keys)


def key_label(keys: tuple) -> str:
    """A key path as a change or a blame shows it: ``probe.depth``; the whole record is ``(whole record)``."""
    return key_text(keys) or "(whole record)"
