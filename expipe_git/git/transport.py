"""What :mod:`expipe_git.remote` needs of the wire and of a repository's config and refs.

dulwich's client (the protocols: a folder, http(s), ssh, git://), its pack
writer and its config files, behind names of this package, so that the
policy above (URLs, credentials, merging) imports no dulwich. The errors the
wire raises keep their classes; remote.py words them for the user.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from dulwich import client as git_client
from dulwich.config import ConfigFile
from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    GitProtocolError,
    HangupException,
    NotGitRepository,
)
from dulwich.file import FileLocked
from dulwich.objects import ZERO_SHA
from dulwich.pack import extend_pack, write_pack_data, write_pack_index
from dulwich.repo import Repo

from ..errors import RemoteError
from . import packs
from .objects import CommitInfo
from .refs import BRANCH
from .repository import Repository

# What the wire raises, for remote.py to word.
Unauthorized = git_client.HTTPUnauthorized
NotARepository = NotGitRepository
RefLocked = FileLocked  # a ref's ``.lock`` file held by another program; ``lockfilename`` names it
ConnectionLost = (HangupException, GitProtocolError)
StrangeHostname = git_client.StrangeHostname
Client = git_client.GitClient
Config = ConfigFile
NO_COMMIT = ZERO_SHA  # what a server advertises for a ref that does not exist


def local_client() -> Client:
    return git_client.LocalGitClient()


def client_for(
    url: str, operation: str, username: str | None, password: str | None, ssh_command: str | None
) -> tuple[Client, str]:
    """The client for a URL, and the path on the server to give it."""
    found: Any = git_client.get_transport_and_path(
        url, operation=operation, username=username, password=password, ssh_command=ssh_command
    )
    return found


def config(repo: Repository) -> Config:
    """The repository's own ``.git/config``, to read and change (``write_to_path`` saves it)."""
    return repo.repo.get_config()


def config_values(repo: Repository, section: tuple[bytes, ...], key: bytes) -> list[bytes]:
    """Every value of ``key`` in the repository's config, then the user's and the system's."""
    try:
        return list(repo.repo.get_config_stack().get_multivar(section, key))
    except KeyError:
        return []


def has_object(repo: Repository, sha: bytes) -> bool:
    known: Any = repo.repo.object_store
    return sha in known


def ref(repo: Repository, name: bytes) -> bytes | None:
    """The object a ref names (tags peeled), or None if there is no such ref."""
    refs: Any = repo.repo.refs
    return refs.get_peeled(name) if name in refs else None


def set_ref(repo: Repository, name: bytes, old: bytes | None, new: bytes, message: bytes) -> None:
    """Move ref ``name`` from ``old`` (None: whatever it holds) to ``new``; raises :data:`RefLocked`."""
    refs: Any = repo.repo.refs
    refs.set_if_equals(name, old, new, message=message)


def remove_refs(repo: Repository, prefix: bytes) -> None:
    """Remove every ref whose name starts with ``prefix``."""
    refs: Any = repo.repo.refs
    for name in list(refs.keys()):
        if name.startswith(prefix):
            refs.remove_if_equals(name, None)


def ref_ids(repo: Repository) -> set[bytes]:
    """The ids every ref of the repository names."""
    return set(repo.repo.refs.as_dict().values())


def fetch_pack(
    client: Client,
    path: str,
    repo: Repository,
    determine_wants: Callable[..., list[bytes]],
    write: Callable[[bytes], object],
    progress: Callable[[bytes], None],
) -> None:
    """Ask the server for what ``determine_wants`` names, telling it what ``repo`` has; write the pack."""
    wants: Any = determine_wants
    writer: Any = write
    client.fetch_pack(path, wants, repo.repo.get_graph_walker(), writer, progress=progress)


def send_pack(
    client: Client,
    path: str,
    update_refs: Callable[[dict], dict],
    generate: Callable[..., tuple],
    progress: Callable[[bytes], None],
) -> Any:
    """Offer the server new values of its refs (``update_refs``) and the objects ``generate`` packs.

    Returns dulwich's result: ``ref_status`` says, per ref, why the server refused it.
    """
    sender: Any = client
    return sender.send_pack(path, update_refs, generate, progress=progress)


def write_pack(repo: Repository, out: BinaryIO, objects: Iterator[Any], count: int) -> None:
    """Write a pack of ``count`` objects (dulwich's unpacked objects) to ``out``."""
    write_pack_data(out.write, objects, repo.repo.object_format, num_records=count)


def get_raw(repo: Repository) -> Callable[[bytes], tuple[int, bytes]]:
    """dulwich's object reader of ``repo``: what completing a thin pack needs of it."""
    store: Any = repo.repo.object_store
    return store.get_raw


def complete_thin_pack(repo: Repository, path: str, external: set[bytes]) -> tuple[bytes, list]:
    """Copy into the pack at ``path`` the bases its deltas name outside it, as git does.

    Returns the pack's new checksum and the index entries of the objects added.
    """
    bases: Any = external
    with open(path, "r+b") as f:
        checksum, extra = extend_pack(f, bases, get_raw(repo), object_format=repo.repo.object_format)
    return checksum, list(extra)


def write_index(path: str, entries: list, checksum: bytes) -> None:
    """Write git's ``.idx`` of a pack."""
    with open(path, "wb") as f:
        write_pack_index(f, entries, checksum)


class PathRepository:
    """A repository given as a path (a folder remote): it has no server to ask, so it is read."""

    def __init__(self, path: str):
        self.shown = path
        self.repo = Repo(path)
        self._packs = packs.Packs(str(self.repo.object_store.pack_dir))
        self._commits: dict[bytes, CommitInfo] = {}

    def main(self) -> bytes | None:
        """The commit its branch main names, or None."""
        refs: Any = self.repo.refs
        try:
            return refs[BRANCH]
        except KeyError:
            return None

    def has_object(self, sha: bytes) -> bool:
        known: Any = self.repo.object_store
        return sha in known

    def object_type(self, sha: bytes) -> int:
        known: Any = self.repo.object_store
        try:
            return known.get_raw(sha)[0]
        except KeyError:
            raise RemoteError(
                f"git object {sha.decode()} in {self.shown} is missing; run 'git fsck' there"
            ) from None

    def read_blob(self, sha: bytes) -> bytes:
        packed = self._packs.get(sha)
        if packed is not None:
            return packed[1]
        known: Any = self.repo.object_store
        try:
            return known.get_raw(sha)[1]
        except KeyError:
            problem = "is missing"
        except (zlib.error, ValueError, ChecksumMismatch, ApplyDeltaError) as exc:
            problem = f"is damaged ({exc})"
        # Raised here, not in the handler: the caught error's frames hold views
        # of the pack's memory map, and closing the repository would then fail.
        raise RemoteError(f"git object {sha.decode()} in {self.shown} {problem}; run 'git fsck' there")

    def stored_object(self, sha: bytes) -> packs.StoredObject | None:
        return self._packs.stored(sha)

    def read_commit(self, sha: bytes) -> CommitInfo:
        found = self._commits.get(sha)
        if found is None:
            found = self._commits[sha] = CommitInfo.parse(sha, self.read_blob(sha))
        return found

    def commit_tree(self, sha: bytes) -> bytes:
        return self.read_commit(sha).tree

    def close(self) -> None:
        self.repo.close()


@contextlib.contextmanager
def path_repository(path: str) -> Iterator[PathRepository]:
    found = PathRepository(path)
    try:
        yield found
    finally:
        found.close()
