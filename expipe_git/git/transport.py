"""What :mod:`expipe_git.remote` needs of the wire and of a repository's config and refs.

dulwich's client (the protocols: a folder, http(s), ssh, git://), its pack
writer and its config files, behind names of this package, so that the
policy above (URLs, credentials, merging) imports no dulwich. The errors the
wire raises keep their classes; remote.py words them for the user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from dulwich import client as git_client
from dulwich.config import ConfigFile
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.file import FileLocked
from dulwich.objects import ZERO_SHA
from dulwich.pack import extend_pack, write_pack_data, write_pack_index
from dulwich.repo import Repo

from ..errors import RemoteError
from . import packs
from .format import ID_BYTES
from .objects import CommitInfo, ObjectStore
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
    return repo.objects.has(sha)


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
    """The object reader of ``repo`` as dulwich's ``get_raw`` (hex or binary id; KeyError if missing).

    What completing a thin pack needs of it: the bases a received pack's deltas name.
    """

    def read(sha: bytes) -> tuple[int, bytes]:
        found = repo.objects.find(sha.hex().encode("ascii") if len(sha) == ID_BYTES else sha)
        if found is None:
            raise KeyError(sha)
        return found

    return read


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
    """A repository given as a path (a folder remote): it has no server to ask, so it is read.

    Its objects are read by the reader a :class:`Repository` uses
    (:class:`~expipe_git.git.objects.ObjectStore`, on the remote's objects
    folder); an object missing or damaged there is a RemoteError naming it
    and the remote.
    """

    def __init__(self, path: str):
        self.shown = path
        self.repo = Repo(path)
        dulwich: Any = self.repo  # its refs, and its reader for what ours does not know
        git_dir = self.repo.controldir()
        self.objects = ObjectStore(git_dir, git_dir, dulwich.object_store.get_raw, lost=self._lost)
        self._commits: dict[bytes, CommitInfo] = {}

    def _lost(self, hex_sha: str, problem: str) -> RemoteError:
        return RemoteError(f"git object {hex_sha} in {self.shown} {problem}; run 'git fsck' there")

    def main(self) -> bytes | None:
        """The commit its branch main names, or None."""
        refs: Any = self.repo.refs
        try:
            return refs[BRANCH]
        except KeyError:
            return None

    def has_object(self, sha: bytes) -> bool:
        return self.objects.has(sha)

    def object_type(self, sha: bytes) -> int:
        return self.objects.read(sha)[0]

    def object_contents(self, sha: bytes) -> bytes:
        return self.objects.read(sha)[1]

    def stored_object(self, sha: bytes) -> packs.StoredObject | None:
        return self.objects.stored(sha)

    def read_commit(self, sha: bytes) -> CommitInfo:
        found = self._commits.get(sha)
        if found is None:
            found = self._commits[sha] = CommitInfo.parse(sha, self.object_contents(sha))
        return found

    def commit_tree(self, sha: bytes) -> bytes:
        return self.read_commit(sha).tree

    def close(self) -> None:
        self.objects.packs.close()
        self.repo.close()


@contextlib.contextmanager
def path_repository(path: str) -> Iterator[PathRepository]:
    found = PathRepository(path)
    try:
        yield found
    finally:
        found.close()
