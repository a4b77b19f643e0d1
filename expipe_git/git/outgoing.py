"""What a push sends: the objects of the commits a remote lacks, packed.

Two costs decide how fast a first push of a long history is, and git's
``pack-objects`` avoids both; so does this module:

- Finding the objects. Each new commit's tree is compared with its first
  parent's (:class:`expipe_git.git.trees.TreeDiff`), so only the folders it
  changed are opened; dulwich's own walk opens every tree of every commit
  (23 s for a 10,000-commit project).
- Packing them. An object already in a pack file goes out as the pack
  stores it (:meth:`expipe_git.packs.Packs.stored`): a whole object as is, a
  delta as is when its base goes too. Nothing is inflated, deltified or
  compressed again. What is loose (every API write leaves loose objects
  until ``git gc``), or a delta of something not sent, is packed here: a
  tree as a delta of its previous version when that version is sent, since
  most commits change one entry of a big folder.

The count of objects is known once the walk is done, and a pack starts
with it; the objects are then packed one by one while they are sent, so the
server reads the first ones while later ones are being packed.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import NamedTuple, Protocol

from dulwich.pack import UnpackedObject, create_delta

from ..errors import RemoteError
from .dulwichpack import pack_records
from .format import TREE_MODE
from .objects import CommitInfo, commit_links
from .packs import StoredObject, object_header
from .trees import TreeDiff

_COMMIT, _TREE, _BLOB, _REF_DELTA = 1, 2, 3, 7
_SUBMODULE_MODE = 0o160000
_DELTA_MIN_SIZE = 256  # smaller trees go whole: a delta's header and base id would eat the gain


class ObjectSource(Protocol):
    """A repository to read from: a :class:`~expipe_git.git.Repository`, or a bare one given by path."""

    def object_contents(self, sha: bytes) -> bytes: ...  # any object's contents, by hex id

    def read_commit(self, sha: bytes) -> CommitInfo: ...

    def commit_tree(self, sha: bytes) -> bytes: ...

    def stored_object(self, sha: bytes) -> StoredObject | None: ...


def objects_to_send(
    source: ObjectSource,
    wanted: list[bytes],
    remote_has: set[bytes],
    say: Callable[[str], None] | None = None,
    shown: str | None = None,
) -> tuple[int, Iterator[UnpackedObject]]:
    """Return how many objects the remote lacks, and those objects packed, in the order made.

    ``wanted``: the commits to send; ``remote_has``: commits the remote has;
    ``say``: shown progress of the walk (a line ending in ``\r``, then ``\n``);
    ``shown``: the repository as errors name it, when it is not ours.
    The objects are given as dulwich's pack writer takes them: each one
    already packed, one chunk (header, delta base id, zlib data), so it is
    written as is.
    """
    trees = TreeDiff(  # not strict: what git only warns about is the server's to judge
        source.object_contents,
        lambda sha: RemoteError(
            f"tree {sha.decode()} is damaged; run 'git fsck'"
            if shown is None
            else f"tree {sha.decode()} in {shown} is damaged or not a tree; nothing was changed. "
            "Run 'git fsck' there"
        ),
        strict=False,
    )
    commits = new_commits(source, wanted, remote_has)
    order, commit_raw = _walk(source, trees, commits, say or (lambda text: None))
    sending = {sha for _, sha, _ in order}
    return len(order), pack_records(len(order), _packed(source, trees, order, commit_raw, sending))


def _walk(
    source: ObjectSource, trees: TreeDiff, commits: list[tuple[Commit, bytes]], say: Callable[[str], None]
) -> tuple[list[tuple[int, bytes, bytes | None]], dict[bytes, bytes]]:
    """List (type, id, previous version of a tree) of every object the commits bring."""
    seen: set[bytes] = set()
    order: list[tuple[int, bytes, bytes | None]] = []

    def tree_objects(tree: bytes, base: bytes | None) -> None:
        if tree == base or tree in seen:
            return
        seen.add(tree)
        order.append((_TREE, tree, base))
        changed, _ = trees.changed(tree, base)
        for _, mode, sha, previous in changed:
            if mode == TREE_MODE:
                tree_objects(sha, previous[1] if previous and previous[0] == TREE_MODE else None)
            elif mode != _SUBMODULE_MODE and sha not in seen:  # a submodule's commit is not ours to send
                seen.add(sha)
                order.append((_BLOB, sha, None))

    tree_of = {info.id: info.tree for info, _ in commits}
    for count, (info, _) in enumerate(commits, 1):
        base = None
        if info.parents:
            first = info.parents[0]
            base = tree_of[first] if first in tree_of else source.commit_tree(first)
        tree_objects(info.tree, base)
        order.append((_COMMIT, info.id, None))
        if count % 1000 == 0:
            say(f"Counting objects: {len(order)} in {count} of {len(commits)} commits\r")
    say(f"Counting objects: {len(order)} in {len(commits)} commits, done.\n")
    return order, {info.id: raw for info, raw in commits}


def _packed(
    source: ObjectSource,
    trees: TreeDiff,
    order: list[tuple[int, bytes, bytes | None]],
    commit_raw: dict[bytes, bytes],
    sending: set[bytes],
) -> Iterator[tuple[int, bytes, bytes]]:
    """Yield (type, id, the object as a pack holds it) of each object in ``order``."""
    for type_num, sha, previous in order:
        stored = source.stored_object(sha)
        if stored is not None and (stored.base is None or stored.base in sending):
            yield type_num, sha, stored.packed
            continue
        if type_num == _COMMIT:
            raw = commit_raw[sha]
        elif type_num == _TREE:
            raw = trees.raw(sha)
        else:
            raw = source.object_contents(sha)
        if previous is not None and previous in sending and len(raw) > _DELTA_MIN_SIZE:
            delta = b"".join(create_delta(trees.raw(previous), raw))
            if len(delta) < len(raw) // 2:
                base_id = bytes.fromhex(previous.decode())
                yield type_num, sha, object_header(_REF_DELTA, len(delta)) + base_id + _compress(delta)
                continue
        yield type_num, sha, object_header(type_num, len(raw)) + _compress(raw)


def _compress(data: bytes) -> bytes:
    # Level 1: on a first push of a loose history, compressing at the default
    # level was a tenth of the time, and a pack is sent, not kept: the server
    # stores it as it came, and its next gc repacks it.
    return zlib.compress(data, 1)


class Commit(NamedTuple):
    """What a walk needs of a commit."""

    id: bytes
    tree: bytes
    parents: tuple[bytes, ...]


def new_commits(
    source: ObjectSource, wanted: list[bytes], remote_has: set[bytes]
) -> list[tuple[Commit, bytes]]:
    """Return (commit, raw) of the commits reachable from ``wanted`` and not from ``remote_has``.

    Parents first, so that a folder's previous version is sent before it.
    """
    found: dict[bytes, tuple[Commit, bytes]] = {}
    todo = [sha for sha in wanted if sha not in remote_has]
    while todo:
        sha = todo.pop()
        if sha in found or sha in remote_has:
            continue
        raw = source.object_contents(sha)
        commit = Commit(sha, *commit_links(raw))
        found[sha] = (commit, raw)
        todo.extend(commit.parents)
    if remote_has and any(len(commit.parents) > 1 for commit, _ in found.values()):
        # Through a merge, the walk may have gone into history the remote has:
        # walk that down to the oldest new commit (with a day's slack for clocks).
        oldest = min(source.read_commit(sha).commit_time for sha in found) - 86400
        seen: set[bytes] = set()
        todo = list(remote_has)
        while todo:
            sha = todo.pop()
            if sha in seen:
                continue
            seen.add(sha)
            found.pop(sha, None)
            parents = source.read_commit(sha).parents
            todo.extend(p for p in parents if source.read_commit(p).commit_time >= oldest)
    return _parents_first(found, wanted)


def _parents_first(found: dict[bytes, tuple[Commit, bytes]], tips: list[bytes]) -> list[tuple[Commit, bytes]]:
    """Order commits so that each comes after its parents.

    Not by commit time: commits made in the same second tie, and a child
    listed before its parent let :func:`objects_to_send` skip a tree it took
    for sent (a tree seen again in a later commit), leaving the remote
    without its folders.
    """
    order: list[tuple[Commit, bytes]] = []
    placed: set[bytes] = set()
    for start in [*tips, *found]:  # every commit found is reachable from a tip
        if start not in found:
            continue
        stack = [(start, False)]
        while stack:
            sha, parents_placed = stack.pop()
            if parents_placed:
                order.append(found[sha])
                continue
            if sha in placed:
                continue
            placed.add(sha)
            stack.append((sha, True))
            stack.extend(
                (p, False) for p in reversed(found[sha][0].parents) if p in found and p not in placed
            )
    return order
