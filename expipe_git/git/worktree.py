"""The working tree: the files a person sees, beside what git committed.

Writes are atomic (temporary file in ``.git``, then rename), so a reader or a
crash never sees half a file and a killed writer leaves nothing stray in the
working tree. Nothing here knows git's object store or index; the store
passes in what was committed.

Symbolic links are never followed: git stores a link as a link, and a
record read or written through one would be a file outside the project. A
link on the way to a file (the file itself, or a folder above it) makes
:meth:`WorkTree.state`, :meth:`WorkTree.changes` and every write refuse with
an error naming the link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import stat
import threading
from collections.abc import Callable, Iterable

from ..errors import ExpipeError, RepositoryStateError
from . import spares
from .format import object_id

# Windows has no O_NOFOLLOW; links there are refused by the scan (lstat) instead.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def blob_sha(data: bytes) -> bytes:
    """Return the hex id git gives a blob holding ``data``."""
    return object_id(b"blob", data)


def _ignored(path: str) -> bool:
    # The layout ignores exactly the data folders of actions and entities
    # (layout.IGNORE_TEXT); a second parser of .gitignore is not worth it.
    parts = path.split("/")
    return len(parts) == 4 and parts[0] in ("actions", "entities") and parts[3] == "data"


class WorkTree:
    """The files under ``root``; temporary files go to ``tmp_dir``."""

    def __init__(self, root: str, tmp_dir: str):
        self.root = root
        self.tmp_dir = tmp_dir
        self.spares = spares.of(tmp_dir)
        # Folders known to exist: writing many files into one folder then
        # makes it once (a checkout of 20,000 files spent a third of its time
        # in mkdir calls that failed with EEXIST). A folder removed meanwhile
        # is noticed by the write failing, and made again.
        self._folders: set[str] = set()

    def file_sha(self, path: str) -> bytes | None:
        """Return the blob id of a file's content (:meth:`read`), or None if there is no file.

        A symbolic link, or a path through one, counts as no file: it is never read.
        """
        return None if self.link_on_path(path) is not None else self._sha_unless_link(path)

    def _sha_unless_link(self, path: str) -> bytes | None:
        """Return the blob id of a file no folder link leads to; None for none, or a link."""
        try:
            return blob_sha(self.read(path))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # the file itself became a link just now
                return None
            raise

    def link_on_path(self, path: str) -> str | None:
        """Return the first symbolic link on ``path`` (the path itself or a folder above it).

        Every component is looked at each time (a few ``lstat`` calls): a
        folder seen real a moment ago may be a link now.
        """
        at = self.root
        parts = path.split("/")
        for depth, part in enumerate(parts):
            at = os.path.join(at, part)
            try:
                mode = os.lstat(at).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return None
            if stat.S_ISLNK(mode):
                return "/".join(parts[: depth + 1])
        return None

    def refuse_links(self, links: Iterable[str]) -> None:
        """Raise an error naming the symbolic links ``links`` (relative paths), if any."""
        links = sorted(set(links))
        if not links:
            return
        named = []
        for link in links:
            try:
                named.append(f"{link} -> {os.readlink(os.path.join(self.root, link))}")
            except OSError:
                named.append(link)
        one = len(links) == 1
        raise RepositoryStateError(
            f"{self.root} holds {'a symbolic link' if one else 'symbolic links'}: {', '.join(named)}; "
            "expipe_git never follows links in a project (a record read or written through one "
            f"would be outside it): replace {'the link' if one else 'each link'} by the file or "
            "folder it points to, or delete it and restore what was committed there with "
            f"'{shlex.join(['git', 'checkout', '--', *links])}'"
        )

    def read(self, path: str) -> bytes:
        """Return a file's content as it is committed: with LF line endings.

        On Windows, git checks text files out with CRLF line endings
        (``core.autocrlf = true``) and commits them with LF; an editor may
        save a file with CRLF too. Only the line endings differing is not a
        hand edit, and a hand edit is committed with LF, as git does. A file
        with a NUL or a lone CR is what git calls binary: left as it is. A
        link is not followed (``OSError`` ELOOP where the system can tell).
        """
        fd = os.open(os.path.join(self.root, path), os.O_RDONLY | _NOFOLLOW)
        with os.fdopen(fd, "rb") as f:
            data = f.read()
        if b"\r\n" in data and b"\0" not in data and data.count(b"\r") == data.count(b"\r\n"):
            return data.replace(b"\r\n", b"\n")
        return data

    def state(self, path: str, committed: bytes | None) -> str | None:
        """Return None if the file holds ``committed``, else how it differs.

        Raises:
            RepositoryStateError: the path is, or goes through, a symbolic link.
        """
        link = self.link_on_path(path)
        if link is not None:
            self.refuse_links([link])
        sha = self._sha_unless_link(path)
        if sha == committed:
            return None
        if committed is None:
            return "added"
        if sha is None:
            return "deleted"
        return "modified"

    def write(self, path: str, data: bytes, *, new: bool = False) -> os.stat_result:
        """Write a file atomically and return its stat data (for git's index).

        ``new``: the file is expected not to exist (a checkout into an empty
        folder); it is then created in place, which saves a rename per file.
        A file that exists after all is replaced atomically, as usual.
        """
        full = os.path.join(self.root, path)
        folder = os.path.dirname(full)
        if not new and "/" in path:
            # A checkout into an empty folder (new) made every folder itself;
            # a link in place of the file itself is replaced, not followed.
            link = self.link_on_path(path.rsplit("/", 1)[0])
            if link is not None:
                self.refuse_links([link])
        self._make_folder(folder)
        if new:
            try:
                with open(full, "xb") as created:
                    created.write(data)
                return os.stat(full)
            except FileExistsError:
                pass
        tmp = os.path.join(self.tmp_dir, f"write-{os.getpid()}-{threading.get_ident()}")
        self.spares.take(tmp)  # see spares.py
        try:
            f = open(tmp, "wb")
        except FileNotFoundError:
            os.makedirs(self.tmp_dir, exist_ok=True)
            f = open(tmp, "wb")
        with f:
            f.write(data)
        try:
            try:
                os.replace(tmp, full)
            except FileNotFoundError:  # the folder was removed since we made it
                self._folders.discard(folder)
                self._make_folder(folder)
                os.replace(tmp, full)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if exc.errno == errno.EISDIR:
                raise ExpipeError(f"cannot write {full}: a folder is in the way") from exc
            raise
        return os.stat(full)

    def _make_folder(self, folder: str) -> None:
        if folder in self._folders:
            return
        try:
            os.makedirs(folder, exist_ok=True)
        except FileExistsError as exc:
            raise ExpipeError(f"cannot create folder {folder}: a file is in the way") from exc
        self._folders.add(folder)

    def remove(self, path: str) -> None:
        """Delete a file and the folders it leaves empty."""
        link = self.link_on_path(path)
        if link is not None and link != path:
            self.refuse_links([link])  # unlinking through it would delete outside the project
        full = os.path.join(self.root, path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(full)
        folder = os.path.dirname(full)
        while folder != self.root and folder.startswith(self.root):
            try:
                os.rmdir(folder)
            except OSError:
                return
            self._folders.discard(folder)
            folder = os.path.dirname(folder)

    def changes(
        self,
        committed: dict[str, bytes],
        indexed: dict[bytes, tuple[bytes, tuple[int, int, int]]],
        ignored: Callable[[str], bool] | None = None,
    ) -> list[tuple[str, str]]:
        """Return (path, "added" | "modified" | "deleted") for files unlike ``committed``.

        ``indexed`` is git's index (path -> blob id and stat data): a file whose
        stat data is what the index recorded for the committed blob is not
        read again. Ignored data folders are not listed, nor new files and
        folders (given with a trailing ``/``) for which ``ignored`` is true.
        """
        found: dict[str, str] = {}
        untracked, links = self._scan(committed, ignored or (lambda path: False))
        self.refuse_links(links)
        for path, sha in committed.items():
            try:
                st = os.lstat(os.path.join(self.root, path))
            except (FileNotFoundError, NotADirectoryError):
                found[path] = "deleted"
                continue
            known = indexed.get(path.encode("utf-8", "surrogateescape"))
            stat_key = (
                int(st.st_mtime) & 0xFFFFFFFF,
                st.st_mtime_ns % 1_000_000_000,
                st.st_size & 0xFFFFFFFF,
            )
            if known and known[0].hex().encode() == sha and known[1] == stat_key:
                continue  # stat data unchanged since it was indexed: the content is too
            if self._sha_unless_link(path) != sha:  # no link: _scan refused them
                found[path] = "modified"
        for path in untracked:
            found[path] = "added"
        return sorted(found.items())

    def _scan(
        self, committed: dict[str, bytes], ignored: Callable[[str], bool]
    ) -> tuple[list[str], list[str]]:
        """Return (untracked files, symbolic links) under the root; links are not followed.

        ``.git`` and the data folders are skipped, whatever they are, and so are
        new files and folders (asked with a trailing ``/``) that ``ignored`` (git's
        ignore rules) leaves out. A committed path is never ignored, as in git.
        """
        # Ignore rules are asked only about new files, and about folders that
        # hold no committed file (to skip them whole): asking about every
        # action's folder tripled the time of a status. A new file in an
        # ignored folder is still found ignored: the rules look at its folders.
        tracked_folders = {path.rsplit("/", 1)[0] for path in committed if "/" in path}
        for folder in list(tracked_folders):
            while "/" in folder:
                folder = folder.rsplit("/", 1)[0]
                if folder in tracked_folders:
                    break
                tracked_folders.add(folder)
        untracked: list[str] = []
        links: list[str] = []
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                entries = os.scandir(os.path.join(self.root, rel) if rel else self.root)
            except OSError:
                continue  # an unreadable folder holds nothing we could commit (as os.walk)
            with entries:
                for entry in entries:
                    path = f"{rel}/{entry.name}" if rel else entry.name
                    if path == ".git" or _ignored(path):
                        continue
                    is_folder = entry.is_dir(follow_symlinks=False)
                    tracked = path in committed or path in tracked_folders
                    if not tracked and ignored(path + "/" if is_folder else path):
                        continue
                    if entry.is_symlink():
                        links.append(path)
                    elif is_folder:
                        stack.append(path)
                    elif path not in committed:
                        untracked.append(path)
        return untracked, links
