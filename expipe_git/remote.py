"""Remotes: clone, fetch, push and pull over a path, git://, http(s):// and ssh.

This is the policy (URLs, credentials, what may come in, merging); the wire
is :mod:`expipe_git.git.transport` (dulwich's client, never its porcelain,
which starts auto-gc and moves HEAD without compare-and-swap). Remote-tracking
refs are moved through it; the branch and the working tree only through
:meth:`Repository.fast_forward` and :meth:`Repository.mutate` (via the merge).

Fetching is quarantined, as ``git receive-pack`` does it: the pack the server
sends is written and indexed in a temporary object folder that reads our
objects as an alternate, every object new to us is checked there (git's
``transfer.fsckObjects`` checks and the layout: :mod:`expipe_git.git.fetchcheck`),
and only then is the pack moved into ``.git/objects/pack`` and
``refs/remotes/<remote>/main`` moved. Refs this process writes (a folder
remote's ``main``, our remote-tracking refs) are moved so that a process
killed meanwhile blocks nobody (:mod:`expipe_git.git.reflocks`).

Credentials never reach ``.git/config``, an error, a progress line or a
commit: a URL is stored and shown without its user name and password (see
:func:`public_url`), and one whose secret could not be kept out (an ssh
password, a query, a password with ``/``, ``?`` or ``#`` not
percent-encoded) is refused without being quoted; a password given in a URL is kept in
``.git/expipe-git/credentials`` (mode 0600, git's credential-store format),
which the project's config names as that host's ``credential.helper = store
--file=…`` so that stock git finds it too.
For http(s) a password is looked up in that order: the URL given to this call,
``EXPIPE_GIT_USERNAME``/``EXPIPE_GIT_PASSWORD``, that file, then git's
credential-store files (``~/.git-credentials``,
``$XDG_CONFIG_HOME/git/credentials``, and the ``--file`` of a
``credential.helper = store`` setting). Credential helpers that are programs
are not run: that would be a git subprocess.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from . import layout, merge
from .errors import (
    ExpipeError,
    InvalidValueError,
    ProjectBusyError,
    PushRejectedError,
    RemoteError,
    UnsafeRemoteError,
)
from .git import BRANCH, Repository, fetchcheck, outgoing, packindex, reflocks, transport
from .remoteconfig import (
    PASSWORD_ENV,
    USERNAME_ENV,
    Location,
    add_remote,
    location_of,
    parse_location,
    remotes,
    scrub,
    ssh_command,
    tracking_ref,
    with_credentials,
)

if TYPE_CHECKING:
    from .model import Project

REFS_MUTEX = "refs-mutex"  # in .git/expipe-git/: held while a remote-tracking ref moves (reflocks)
PUSH_MUTEX = "expipe-git-push"  # in a folder remote: held while a push is received there (reflocks)
_REF_DELTA_TYPE = 7

Progress = Callable[[str], None]


class _Transfer:
    """One conversation with a remote: its client, and errors told safely."""

    def __init__(self, location: Location, progress: Progress | None, operation: str):
        self.location = location
        self.operation = operation
        self.server_said: list[str] = []
        self._progress = progress
        if location.kind == "local":
            if not os.path.isdir(location.public):
                raise RemoteError(f"{location.public} does not exist; a remote path must be a git repository")
            self.client: transport.Client = transport.local_client()
            self.path = location.public
            return
        try:
            self.client, self.path = transport.client_for(
                location.public,
                operation,
                username=location.username if location.kind == "http" else None,
                password=location.password if location.kind == "http" else None,
                ssh_command=ssh_command() if location.kind == "ssh" else None,
            )
        except (ValueError, transport.StrangeHostname) as exc:
            raise RemoteError(f"cannot reach {location.public}: {self.safe(str(exc))}") from None

    def safe(self, text: str) -> str:
        return scrub(text, self.location.secrets())

    def progress(self, data: bytes) -> None:
        text = self.safe(data.decode("utf-8", "replace"))
        for line in re.split(r"[\r\n]+", text):
            if line.strip() and not re.match(r"^(Counting|Compressing|Enumerating|Total|Writing)", line):
                self.server_said.append(line.strip())
        del self.server_said[:-10]
        if self._progress is not None:
            self._progress(text)

    def say(self, text: str) -> None:
        if self._progress is not None:
            self._progress(text)

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn what dulwich and the network raise into a RemoteError without secrets."""
        where = self.location.public
        try:
            yield
        except ExpipeError:
            raise
        except transport.Unauthorized:
            hint = (
                "the user name or password was refused"
                if self.location.password is not None
                else f"give them in the URL once, set {USERNAME_ENV} and {PASSWORD_ENV}, "
                "or put them in ~/.git-credentials"
            )
            raise RemoteError(f"{where} asks for a user name and password: {hint}") from None
        except transport.NotARepository:
            raise RemoteError(f"{where} is not a git repository") from None
        except transport.RefLocked as exc:
            # A folder remote's ref locked by a git command running there (a
            # lock left by a push of ours that was killed is removed first).
            raise PushRejectedError(
                f"{where}: {os.fsdecode(exc.lockfilename)} is held by another program, a git command "
                "running there; try again in a moment (if none is running, a crash left the file: delete it)"
            ) from None
        except (*transport.ConnectionLost, OSError) as exc:
            said = "; ".join(self.server_said[-3:])
            detail = self.safe(str(exc) or type(exc).__name__)
            extra = f" (the server said: {said})" if said else ""
            raise RemoteError(f"could not {self.operation} {where}: {detail}{extra}") from None
        except Exception as exc:
            # urllib3 and ssh failures have no common base class; still one line, no secrets.
            if type(exc).__module__.split(".")[0] not in ("urllib3", "dulwich", "socket", "ssl"):
                raise
            detail = self.safe(str(exc) or type(exc).__name__)
            raise RemoteError(f"could not {self.operation} {where}: {detail}") from None


# ---------------------------------------------------------------------------
# Fetch: quarantine, check, then move in


def fetch(store: Repository, remote: str = "origin", *, progress: Progress | None = None) -> bytes | None:
    """Fetch ``main`` of ``remote`` into ``refs/remotes/<remote>/main``.

    Returns the commit fetched, or None if the remote has no branch main.

    Raises:
        NotFoundError: no remote of that name.
        RemoteError: the remote cannot be reached or read.
        UnsafeRemoteError: the remote's history holds something unsafe; nothing changed.
    """
    location = location_of(store, remote)
    tip = _fetch_main(store, location, progress)
    if tip is not None:
        ref = tracking_ref(remote)
        with _tracking_refs(store, remote):
            old = transport.ref(store, ref)
            if old != tip:
                try:
                    transport.set_ref(store, ref, old, tip, b"fetch: " + location.public.encode())
                except transport.RefLocked as exc:
                    raise ProjectBusyError(
                        f"{os.fsdecode(exc.lockfilename)} is held by another program (a git fetch?); "
                        "wait for it to finish and try again (if none is running, a crash left it: delete it)"
                    ) from None
    return tip


def _tracking_refs(store: Repository, remote: str) -> contextlib.AbstractContextManager[None]:
    """Update ``refs/remotes/<remote>/main`` so that a process killed meanwhile blocks nobody."""
    lock = tracking_ref(remote).decode() + ".lock"
    os.makedirs(store.state_dir, exist_ok=True)
    return reflocks.updating(
        store.git_dir,
        os.path.relpath(os.path.join(store.state_dir, REFS_MUTEX), store.git_dir),
        [lock],
        lambda: ProjectBusyError(f"another fetch or push of {store.root} is updating {lock}; try again"),
    )


def _fetch_main(store: Repository, location: Location, progress: Progress | None) -> bytes | None:
    transfer = _Transfer(location, progress, "fetch from")
    wanted: dict[str, bytes | None] = {}

    def determine_wants(refs: dict, depth: int | None = None) -> list[bytes]:
        tip = refs.get(BRANCH)
        wanted["tip"] = None if tip in (None, transport.NO_COMMIT) else tip
        if wanted["tip"] is None or transport.has_object(store, wanted["tip"]):
            return []
        return [wanted["tip"]]

    os.makedirs(store.state_dir, exist_ok=True)
    _remove_stale_quarantines(store.state_dir)
    quarantine = tempfile.mkdtemp(prefix="fetch-", dir=store.state_dir)
    try:
        incoming = os.path.join(quarantine, "incoming.pack")
        with open(incoming, "wb") as f, transfer.errors():
            if location.kind == "local":
                wanted["tip"] = _pack_from_path(store, location.public, f)
            else:
                transport.fetch_pack(
                    transfer.client, transfer.path, store, determine_wants, f.write, transfer.progress
                )
        tip = wanted.get("tip")
        if tip is None:
            return None
        if transport.has_object(store, tip):
            # Nothing new came, but a main naming one of our trees or blobs is still refused.
            fetchcheck.HistoryCheck(store, {}, set(), location.public, transfer.say).check_tip(tip)
            return tip
        if os.path.getsize(incoming) == 0:
            raise RemoteError(f"{location.public} did not send commit {tip.decode()} of its main")
        received = _index_pack(store, incoming, transfer)
        check = fetchcheck.HistoryCheck(store, received.kept, received.objects, location.public, transfer.say)
        check.check_history(tip)
        received.move_into(os.path.join(store.git_dir, "objects", "pack"))
        check.index_history()
        return tip
    finally:
        shutil.rmtree(quarantine, ignore_errors=True)


def _remove_stale_quarantines(state_dir: str) -> None:
    """Remove what fetches killed mid-way left (a day old: a running fetch keeps its own)."""
    for name in os.listdir(state_dir):
        full = os.path.join(state_dir, name)
        with contextlib.suppress(OSError):
            if name.startswith("fetch-") and time.time() - os.stat(full).st_mtime > 86400:
                shutil.rmtree(full, ignore_errors=True)


def _pack_from_path(store: Repository, path: str, out: BinaryIO) -> bytes | None:
    """Write the pack a server would send for main of the repository at ``path``; return main.

    dulwich's LocalGitClient walks every tree of every commit and sends no
    deltas (23 s for a 10 000-commit project); this is the walk push uses.
    """
    with transport.path_repository(path) as theirs:
        tip = theirs.main()
        if tip is None:
            return None
        if transport.has_object(store, tip):
            return tip
        kind = theirs.object_type(tip)
        if kind != fetchcheck.COMMIT_TYPE:
            raise UnsafeRemoteError(
                f"refused {path}: its main names a {fetchcheck.TYPE_NAMES.get(kind, 'foreign object')}, "
                "not a commit; nothing was changed. Fix the remote's main with git"
            )
        shared = {sha for sha in transport.ref_ids(store) if theirs.has_object(sha)}
        try:
            count, objects = outgoing.objects_to_send(theirs, [tip], shared, shown=path)
        except (KeyError, IndexError, ValueError, UnicodeDecodeError):
            # A commit our walk cannot read (no tree line, a parent that is no commit):
            # what git's fsck refuses, said as the check of a server's pack says it.
            raise UnsafeRemoteError(
                f"refused {path}: its history holds a commit that is not valid in git; nothing was "
                "changed. Fix the remote's history with git ('git fsck' there names what is wrong)"
            ) from None
        transport.write_pack(store, out, objects, count)
        return tip


@dataclass
class _Received:
    """A pack in quarantine: indexed, its commits and trees at hand, not yet ours."""

    pack: str
    index: str
    name: str
    kept: dict[bytes, tuple[int, bytes]]
    objects: set[bytes]  # binary ids

    def move_into(self, pack_dir: str) -> None:
        """Move the pack in, its index last: git and dulwich look for the index."""
        target = os.path.join(pack_dir, self.name)
        if not os.path.exists(target + ".idx"):
            os.replace(self.pack, target + ".pack")
            os.replace(self.index, target + ".idx")


def _index_pack(store: Repository, path: str, transfer: _Transfer) -> _Received:
    """Index the pack at ``path`` in one pass over it, keeping its commits and trees.

    :func:`expipe_git.git.packindex.index_pack` reads each object once (dulwich's
    ``PackIndexer`` took three times as long, and its ``add_pack`` inflates
    every object twice more); the commits, trees and tags it keeps are all
    the check needs (what else the pack holds is blobs).
    """
    try:
        indexed = packindex.index_pack(
            path,
            keep=(fetchcheck.COMMIT_TYPE, fetchcheck.TREE_TYPE, fetchcheck.TAG_TYPE),
            external_base=transport.get_raw(store),
        )
        entries, checksum = indexed.entries, indexed.checksum
        if indexed.external:  # a thin pack: copy in the bases it deltas against, as git does
            checksum, extra = transport.complete_thin_pack(store, path, indexed.external)
            entries = sorted(entries + extra)
    except (ValueError, zlib.error) as exc:
        raise RemoteError(
            f"{transfer.location.public} sent a damaged pack ({exc}); nothing was changed"
        ) from None
    index = path[: -len(".pack")] + ".idx"
    transport.write_index(index, entries, checksum)
    return _Received(path, index, f"pack-{checksum.hex()}", indexed.kept, {e[0] for e in entries})


# ---------------------------------------------------------------------------
# Push and pull


def _pushable_head(store: Repository, location: Location) -> bytes:
    head = store.head()
    if head is None:
        raise RemoteError("the project has no commits to push")
    if location.kind == "local" and os.path.exists(os.path.join(location.public, ".git")):
        raise RemoteError(
            f"{location.public} has a working tree, which a push would leave out of date; push to a bare "
            "repository (make one with 'git init --bare PATH')"
        )
    return head


def push(store: Repository, remote: str = "origin", *, progress: Progress | None = None) -> bytes | None:
    """Send main to ``remote`` if that is a fast-forward there; never force.

    Returns the commit pushed, or None if the remote had it already.

    Raises:
        PushRejectedError: the remote has commits we lack (pull first), or
            the server refused the update (a hook, a protected branch, a push
            that won a race).
        RemoteError: the remote cannot be reached.
    """
    location = location_of(store, remote)
    head = _pushable_head(store, location)
    transfer = _Transfer(location, progress, "push to")
    state: dict[str, object] = {}

    def update_refs(refs: dict) -> dict:
        theirs = refs.get(BRANCH)
        theirs = None if theirs == transport.NO_COMMIT else theirs
        state["theirs"] = theirs
        if theirs == head:
            return {}
        known = theirs is None or transport.has_object(store, theirs)
        kind = store.object_type(theirs) if theirs is not None and known else "commit"
        if kind != "commit":
            raise UnsafeRemoteError(
                f"refused {location.public}: its main names a {kind}, not a commit; nothing was sent. "
                "Fix the remote's main with git"
            )
        if not known or (theirs is not None and not store.is_ancestor(theirs, head)):
            state["behind"] = True
            return {}
        return {BRANCH: head}

    def generate(have: set, want: set, ofs_delta: bool = False, progress: object = None) -> tuple:
        known = {sha for sha in have if transport.has_object(store, sha)}
        count, objects = outgoing.objects_to_send(store, list(want), known, transfer.say)
        transfer.say(f"Sending {count} objects\n")
        return count, objects

    with transfer.errors(), _receiving(location):
        result = transport.send_pack(transfer.client, transfer.path, update_refs, generate, transfer.progress)
    if state.get("behind"):
        raise PushRejectedError(
            f"{location.public} has commits this project does not have; pull first "
            f"(project.pull({remote!r}) or 'expipe-git pull {remote}'), then push again"
        )
    if state.get("theirs") == head:
        _set_tracking(store, remote, head)
        return None
    refused = (result.ref_status or {}).get(BRANCH)
    if refused is not None:
        said = "; ".join(transfer.server_said[-3:])
        extra = f" (the server said: {said})" if said else ""
        raise PushRejectedError(
            f"{location.public} refused the push to main: {transfer.safe(str(refused))}{extra}; "
            "if someone pushed meanwhile, pull and push again"
        )
    _set_tracking(store, remote, head)
    return head


def _receiving(location: Location) -> contextlib.AbstractContextManager[None]:
    """Receive a push into a folder remote so that a pusher killed meanwhile blocks nobody.

    A git server receives a push in its own process; into a folder, this
    process writes the objects and moves ``main`` itself.
    """
    if location.kind != "local":
        return contextlib.nullcontext()
    return reflocks.updating(
        location.public,
        PUSH_MUTEX,
        ["refs/heads/main.lock"],
        lambda: PushRejectedError(
            f"{location.public}: another push into it has been running for over a minute; try again later"
        ),
    )


def _set_tracking(store: Repository, remote: str, commit: bytes) -> None:
    with _tracking_refs(store, remote), contextlib.suppress(transport.RefLocked):
        # The push landed; if a git command holds the ref, its next fetch sets it.
        transport.set_ref(store, tracking_ref(remote), None, commit, b"push")


def pull(
    project: Project, remote: str = "origin", *, on_conflict: str = "raise", progress: Progress | None = None
) -> bytes | None:
    """Fetch ``remote`` and bring its main into ours; return the new HEAD or None.

    A fast-forward when our main is in the remote's history; otherwise a
    merge commit of the two, record by record (:func:`expipe_git.merge.merge_into`).

    Raises:
        MergeConflict: a record changed differently on both sides and
            ``on_conflict`` is "raise"; HEAD, the index and the files are as
            they were, the fetched commit is in ``refs/remotes/<remote>/main``.
    """
    if on_conflict not in ("raise", "ours", "theirs"):
        raise InvalidValueError(f"on_conflict must be 'raise', 'ours' or 'theirs', not {on_conflict!r}")

    store = project.session.repository
    theirs = fetch(store, remote, progress=progress)
    if theirs is None:
        raise RemoteError(
            f"{remotes(store).get(remote)} has no branch main yet; push this project there first"
        )
    return merge.merge_into(project, theirs, on_conflict=on_conflict, message=f"merge {remote}/main")


# ---------------------------------------------------------------------------
# Clone


def clone(url: str, path: str | os.PathLike[str], *, progress: Progress | None = None) -> str:
    """Clone the project at ``url`` into the new folder ``path``; return its root.

    A clone that fails leaves nothing behind.
    """
    location = parse_location(url)
    root = os.path.abspath(os.fspath(path))
    existed = os.path.exists(root)
    if existed and (not os.path.isdir(root) or os.listdir(root)):
        raise ExpipeError(f"{root} exists and is not an empty folder; clone into a new folder")
    store = None
    try:
        os.makedirs(root, exist_ok=True)
        store = Repository.init(root)
        add_remote(store, "origin", url)
        location = with_credentials(store, location)
        tip = _fetch_main(store, location, progress)
        if tip is None:
            raise RemoteError(
                f"{location.public} has no branch main: nothing to clone (to share a new project, "
                "add this URL as a remote of it and push)"
            )
        if store.lookup(store.commit_tree(tip), layout.CONFIG_FILE) is None:
            raise RemoteError(f"{location.public} is a git repository but not an expipe_git project")
        with _tracking_refs(store, "origin"):
            transport.set_ref(store, tracking_ref("origin"), None, tip, b"clone")
        if progress is not None:
            progress("Checking out files...\r")
        store.fast_forward(tip, f"clone: from {location.public}", into_empty=True)
        if progress is not None:
            progress("Checking out files, done.\n")
        config = transport.config(store)
        config.set((b"branch", b"main"), b"remote", b"origin")
        config.set((b"branch", b"main"), b"merge", BRANCH)
        config.write_to_path()
        return root
    except BaseException:
        if store is not None:
            store.close()
        if existed:
            for name in os.listdir(root):
                full = os.path.join(root, name)
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(full)
        else:
            shutil.rmtree(root, ignore_errors=True)
        raise
