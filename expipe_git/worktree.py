"""The working tree: the files a person sees, beside what git committed.

Writes are atomic (temporary file in ``.git``, then rename), so a reader or a
crash never sees half a file and a killed writer leaves nothing stray in the
working tree. Nothing here knows git's object store or index; the store
passes in what was committed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
from collections.abc import Iterator

from .errors import ExpipeError


def blob_sha(data: bytes) -> bytes:
    """Return the hex id git gives a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().encode("ascii")


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
        # Folders known to exist: writing many files into one folder then
        # makes it once (a checkout of 20,000 files spent a third of its time
        # in mkdir calls that failed with EEXIST). A folder removed meanwhile
        # is noticed by the write failing, and made again.
        self._folders: set[str] = set()

    def file_sha(self, path: str) -> bytes | None:
        """Return the blob id of a file's content (:meth:`read`), or None if there is no file."""
        try:
            return blob_sha(self.read(path))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def read(self, path: str) -> bytes:
        """Return a file's content as it is committed: with LF line endings.

        On Windows, git checks text files out with CRLF line endings
        (``core.autocrlf = true``) and commits them with LF; an editor may
        save a file with CRLF too. Only the line endings differing is not a
        hand edit, and a hand edit is committed with LF, as git does. A file
        with a NUL or a lone CR is what git calls binary: left as it is.
        """
        with open(os.path.join(self.root, path), "rb") as f:
            data = f.read()
        if b"\r\n" in data and b"\0" not in data and data.count(b"\r") == data.count(b"\r\n"):
            return data.replace(b"\r\n", b"\n")
        return data

    def state(self, path: str, committed: bytes | None) -> str | None:
        """Return None if the file holds ``committed``, else how it differs."""
        sha = self.file_sha(path)
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
        self._make_folder(folder)
        if new:
            try:
                with open(full, "xb") as created:
                    created.write(data)
                return os.stat(full)
            except FileExistsError:
                pass
        tmp = os.path.join(self.tmp_dir, f"write-{os.getpid()}-{threading.get_ident()}")
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
    ) -> list[tuple[str, str]]:
        """Return (path, "added" | "modified" | "deleted") for files unlike ``committed``.

        ``indexed`` is git's index (path -> blob id and stat data): a file whose
        stat data is what the index recorded for the committed blob is not
        read again. Ignored data folders are not listed.
        """
        found: dict[str, str] = {}
        for path, sha in committed.items():
            try:
                st = os.stat(os.path.join(self.root, path))
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
            if self.file_sha(path) != sha:
                found[path] = "modified"
        for path in self._untracked(committed):
            found[path] = "added"
        return sorted(found.items())

    def _untracked(self, committed: dict[str, bytes]) -> Iterator[str]:
        for folder, dirs, files in os.walk(self.root):
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            rel = "" if rel == "." else rel
            dirs[:] = sorted(
                d
                for d in dirs
                if not (rel == "" and d == ".git") and not _ignored(f"{rel}/{d}" if rel else d)
            )
            for name in sorted(files):
                path = f"{rel}/{name}" if rel else name
                if path not in committed:
                    yield path
