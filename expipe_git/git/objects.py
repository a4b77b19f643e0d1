"""Git objects: the one reader (packed, loose, in memory), the loose-object writer, the commit parser.

Objects are read directly: dulwich looks through its packs and rescans the
pack folder first, which made reading every action of a 10k-action project
3x slower. What the readers here do not know (an old pack index version, an
alternate object store) goes through the ``fallback`` the repository gives.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
import zlib
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime

from dulwich.errors import ApplyDeltaError, ChecksumMismatch

from ..errors import CorruptRepositoryError
from . import packs, spares
from .format import HASH, ID_HEX, OBJECT_ID, TYPE_NUMBERS, object_id, raw_object

# A change: path -> new bytes, or None to delete the file.
Changes = dict[str, "bytes | None"]
# Objects that exist only in memory, by id: (type number, contents).
InMemory = MutableMapping[bytes, "tuple[int, bytes]"]


@dataclass(frozen=True)
class Identity:
    """Who a commit is by; ``committer``, if given, who committed it (GIT_COMMITTER_*)."""

    name: str
    email: str
    committer: Identity | None = None

    def git_form(self) -> bytes:
        return f"{self.name} <{self.email}>".encode()


@dataclass(frozen=True)
class CommitInfo:
    """A commit's header fields and message, as stored."""

    id: bytes
    tree: bytes
    parents: tuple[bytes, ...]
    author: str  # "Name <email>"
    author_time: int  # seconds since the epoch
    author_offset: int  # seconds east of UTC
    committer: str
    commit_time: int
    commit_offset: int
    message: str

    @classmethod
    def parse(cls, sha: bytes, raw: bytes) -> CommitInfo:
        header, _, message = raw.partition(b"\n\n")
        fields: dict[bytes, list[bytes]] = {}
        last = b""
        for line in header.split(b"\n"):
            if line.startswith(b" ") and last:
                fields[last][-1] += b"\n" + line[1:]  # continuation (gpgsig, mergetag)
                continue
            key, _, value = line.partition(b" ")
            fields.setdefault(key, []).append(value)
            last = key
        author, author_time, author_offset = _signature(fields.get(b"author", [b""])[0])
        committer, commit_time, commit_offset = _signature(fields.get(b"committer", [b""])[0])
        encoding = fields.get(b"encoding", [b"utf-8"])[0].decode("ascii", "replace")
        try:
            text = message.decode(encoding, "replace")
        except LookupError:
            text = message.decode("utf-8", "replace")
        return cls(
            id=sha,
            tree=fields[b"tree"][0],
            parents=tuple(fields.get(b"parent", [])),
            author=author,
            author_time=author_time,
            author_offset=author_offset,
            committer=committer,
            commit_time=commit_time,
            commit_offset=commit_offset,
            message=text,
        )


class ObjectStore:
    """The objects of one repository: read from packs, loose files or memory; written loose."""

    # Each loose object is fsynced before the branch can point at it. A bulk
    # writer filling a folder nobody uses yet (the importer) turns this off
    # and syncs once before renaming the folder into place.
    sync = True

    def __init__(
        self,
        git_dir: str,
        temp_dir: str,
        fallback: Callable[[bytes], tuple[int, bytes]],
        lost: Callable[[str, str], Exception] | None = None,
    ):
        self.git_dir = git_dir
        self.objects_dir = os.path.join(git_dir, "objects")
        self._fanout = os.path.join(self.objects_dir, "")  # + "ab" + sep + the rest: a loose object's file
        self.temp_dir = temp_dir  # where a loose object is written before it is renamed into place
        self.spares = spares.of(temp_dir)
        self.packs = packs.Packs(os.path.join(self.objects_dir, "pack"))
        self.fallback = fallback  # dulwich's reader, for what ours does not know
        self.loose_written = 0  # loose objects this store wrote (packing's estimate counts on it)
        self._local = threading.local()  # the in-memory objects of each thread
        # The error for an object that is missing or damaged: (hex id, "is missing" or
        # "is damaged (why)") -> the exception; a remote read as a folder names itself.
        self.lost = lost or self._lost_here

    @property
    def in_memory(self) -> InMemory | None:
        """This thread's objects that exist only in memory (a transaction's, a merge's scratch)."""
        return getattr(self._local, "objects", None)

    @in_memory.setter
    def in_memory(self, objects: InMemory | None) -> None:
        self._local.objects = objects

    @contextlib.contextmanager
    def scratch(self) -> Iterator[Callable[[bytes, bytes], bytes]]:
        """Objects made in memory for the length of the block, read like stored ones; yields ``put``."""
        outer = self.in_memory
        scratch: dict[bytes, tuple[int, bytes]] = {}
        self.in_memory = scratch if outer is None else collections.ChainMap(scratch, outer)
        try:
            yield lambda kind, content: keep(scratch, kind, content)
        finally:
            self.in_memory = outer

    def stored(self, sha: bytes) -> packs.StoredObject | None:
        """Return an object's packed bytes as stored, for a push to send on; None if not packed."""
        return self.packs.stored(sha)

    def read(self, sha: bytes) -> tuple[int, bytes]:
        """Return (type number, contents) of an object; raise :attr:`lost`'s error if there is none."""
        # An id names one content wherever it is: packed is the common case, asked first.
        found = self.packs.get(sha, look_again=False) or self._elsewhere(sha)
        if found is None:
            raise self.lost(sha.decode("ascii", "replace"), "is missing")
        return found

    def has(self, sha: bytes) -> bool:
        """Whether the object is here (packed, loose or in memory)."""
        return self.find(sha) is not None

    def find(self, sha: bytes) -> tuple[int, bytes] | None:
        """Return (type number, contents) of an object, or None if there is no such object.

        Raises :attr:`lost`'s error if it is damaged, CorruptRepositoryError
        if ``sha`` is no object id or its file cannot be read.
        """
        return self.packs.get(sha, look_again=False) or self._elsewhere(sha)

    def _elsewhere(self, sha: bytes) -> tuple[int, bytes] | None:
        """:meth:`find` once the packs loaded have not got it: memory, loose, packs added since, dulwich.

        A walk over a loose history comes here for every commit and tree, so
        the loose file is read and inflated in this frame.
        """
        in_memory = getattr(self._local, "objects", None)
        if in_memory and sha in in_memory:
            return in_memory[sha]
        hex_sha = sha.decode("ascii", "replace")
        path = self._fanout + hex_sha[:2] + os.sep + hex_sha[2:]
        try:
            with open(path, "rb") as f:
                compressed = f.read()
        except FileNotFoundError:
            if not OBJECT_ID.fullmatch(sha):
                raise CorruptRepositoryError(
                    f"{sha[:60]!r} is not a git object id (read from a ref or tree in "
                    f"{self.git_dir}); run 'git fsck' there",
                    hex_sha,
                ) from None
        except OSError as exc:
            raise CorruptRepositoryError(
                f"cannot read git object {hex_sha} ({path}): {exc.strerror}; "
                f"check who may read {self.git_dir}, then run 'git fsck' there",
                hex_sha,
            ) from exc
        else:
            try:
                kind, body, _ = parse_loose(compressed)
            except (zlib.error, ValueError, KeyError) as exc:
                raise self.lost(hex_sha, f"is damaged ({exc})") from exc
            return kind, body
        packed = self.packs.get(sha)
        if packed is not None:
            return packed
        try:
            return self.fallback(sha)
        except KeyError:
            return None
        except (zlib.error, ValueError, ChecksumMismatch, ApplyDeltaError) as exc:
            problem = f"is damaged ({exc})"  # packs.py gave up on it too: the pack is damaged
        # Raised here, not in the handler: the caught error's frames hold
        # views of the pack's memory map, and closing the store would fail.
        raise self.lost(hex_sha, problem)

    def _lost_here(self, hex_sha: str, problem: str) -> Exception:
        return CorruptRepositoryError(
            f"git object {hex_sha} in {self.git_dir} {problem}; run 'git fsck' there "
            "(a copy of the project, a clone or a backup may still have it)",
            hex_sha,
        )

    def write(self, kind: bytes, content: bytes) -> bytes:
        """Store a loose object and return its hex id.

        Written to a temporary file in ``.git/expipe-git``, fsynced, then
        renamed into place, so a reader or a crash never sees half an object
        and the branch never points at one that is not on disk. (dulwich's
        own writer takes ``<object>.lock`` files that a killed writer leaves
        behind, blocking that object for good.)
        """
        raw = raw_object(kind, content)
        sha = HASH(raw).hexdigest()
        folder = os.path.join(self.objects_dir, sha[:2])
        path = os.path.join(folder, sha[2:])
        if os.path.exists(path):
            return sha.encode("ascii")
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(self.temp_dir, f"write-object-{os.getpid()}-{threading.get_ident()}")
        self.spares.take(tmp)  # a file made ahead by the packer, if there is one: see spares.py
        try:
            with open(tmp, "wb") as f:
                f.write(zlib.compress(raw, 1))
                f.flush()
                if self.sync:
                    os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, path)
            self.loose_written += 1
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # a full disk must not keep half an object
            raise
        return sha.encode("ascii")


def parse_loose(compressed: bytes) -> tuple[int, bytes, bytes]:
    """Return (type number, contents, what was hashed) of a loose object file's bytes.

    Raises ``zlib.error``, ``ValueError`` (the size in its header is wrong)
    or ``KeyError`` (an unknown type) for a damaged one.
    """
    raw = zlib.decompress(compressed)
    header, body = raw.split(b"\0", 1)
    kind, size = header.split(b" ")
    if int(size) != len(body):
        raise ValueError("size mismatch")
    return TYPE_NUMBERS[kind], body, raw


def loose_path(objects_dir: str, sha: bytes) -> str:
    """Where the loose object ``sha`` (hex) is, under ``.git/objects``."""
    hex_sha = sha.decode("ascii")
    return os.path.join(objects_dir, hex_sha[:2], hex_sha[2:])


def loose_ids(objects_dir: str) -> set[bytes]:
    """List the ids of the loose objects under ``.git/objects`` (not temporary files)."""
    found: set[bytes] = set()
    for folder in range(256):
        name = f"{folder:02x}"
        try:
            listed = os.listdir(os.path.join(objects_dir, name))
        except FileNotFoundError:
            continue
        for rest in listed:
            if len(rest) == ID_HEX - 2 and all(c in "0123456789abcdef" for c in rest):
                found.add((name + rest).encode("ascii"))
    return found


def read_loose(objects_dir: str, sha: bytes) -> tuple[int, bytes] | None:
    """Return (type number, contents) of a loose object that hashes to its name; None if gone or damaged.

    For a packer, which must not copy a damaged object into a pack (``git
    fsck`` is left to name it); readers use :meth:`ObjectStore.read`.
    """
    try:
        with open(loose_path(objects_dir, sha), "rb") as f:
            kind, body, raw = parse_loose(f.read())
    except (OSError, zlib.error, ValueError, KeyError):
        return None
    return (kind, body) if HASH(raw).hexdigest().encode("ascii") == sha else None


def loose_type(objects_dir: str, sha: bytes) -> int | None:
    """Return the type number of a loose object, reading only its header; None if unreadable."""
    try:
        with open(loose_path(objects_dir, sha), "rb") as f:
            head = zlib.decompressobj().decompress(f.read(64), 16)
        return TYPE_NUMBERS.get(head.partition(b" ")[0])
    except (OSError, zlib.error):
        return None


def utc_offset(when: datetime) -> int:
    """Seconds east of UTC of an aware datetime."""
    offset = when.utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def commit_object(
    tree: bytes,
    parents: list[bytes],
    author: tuple[bytes, int, int],
    committer: tuple[bytes, int, int],
    message: str,
) -> bytes:
    """A commit's contents as git writes them; ``author``, ``committer``: (``Name <email>``, time, offset)."""

    def signature(role: bytes, who: tuple[bytes, int, int]) -> bytes:
        name, seconds, offset = who
        sign = b"-" if offset < 0 else b"+"
        minutes = abs(offset) // 60
        return b"%s %s %d %s%02d%02d" % (role, name, seconds, sign, minutes // 60, minutes % 60)

    lines = [b"tree " + tree, *(b"parent " + parent for parent in parents)]
    lines += [signature(b"author", author), signature(b"committer", committer), b"encoding UTF-8"]
    return b"\n".join(lines) + b"\n\n" + message.encode("utf-8")


def keep(objects: InMemory, kind: bytes, content: bytes) -> bytes:
    """Add an object to ``objects`` (in memory) and return its id."""
    sha = object_id(kind, content)
    objects[sha] = (TYPE_NUMBERS[kind], content)
    return sha


def _signature(value: bytes) -> tuple[str, int, int]:
    """Split ``Name <email> 1700000000 +0100`` into (identity, time, offset)."""
    person, _, when = value.rpartition(b"> ")
    try:
        seconds, zone = when.split(b" ")
        sign = -1 if zone.startswith(b"-") else 1
        offset = sign * (int(zone[-4:-2]) * 3600 + int(zone[-2:]) * 60)
        return (person + b">").decode("utf-8", "replace"), int(seconds), offset
    except ValueError:
        return value.decode("utf-8", "replace"), 0, 0


# -- the links of a commit ------------------------------------------------------

_TREE_LINE = len(b"tree ") + ID_HEX + 1
_PARENT_LINE = len(b"parent ") + ID_HEX + 1


def commit_links(raw: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """Return the tree and the parents (hex ids) of a commit's contents.

    Fast: git and expipe_git write ``tree`` first, then the ``parent``
    lines, so only those are read. A commit laid out otherwise goes through
    :meth:`CommitInfo.parse`. Raises ``ValueError`` for a commit without a
    tree.
    """
    if raw.startswith(b"tree ") and raw[_TREE_LINE - 1 : _TREE_LINE] == b"\n":
        parents = []
        at = _TREE_LINE
        while raw.startswith(b"parent ", at) and raw[at + _PARENT_LINE - 1 : at + _PARENT_LINE] == b"\n":
            parents.append(raw[at + 7 : at + _PARENT_LINE - 1])
            at += _PARENT_LINE
        if not raw.startswith((b"parent ", b"tree "), at):  # else a line of another length: parse all
            return raw[5 : _TREE_LINE - 1], tuple(parents)
    try:
        info = CommitInfo.parse(b"", raw)
    except KeyError:
        raise ValueError("a commit without a tree") from None
    return info.tree, info.parents
