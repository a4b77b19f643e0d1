"""Write packs: loose objects into a pack, small packs merged into one, never losing an object.

The loose objects are ordered so that the versions of a file or folder
follow each other: the loose commits are walked parents first, each one's
tree compared with its first parent's, and an object that changed at a path
gets the object that was there before as its delta base (a commit changes
one entry of a 256-entry folder: the delta is a few bytes). At most
:data:`_BATCH_OBJECTS` objects go in one pack. Then packs are merged so
that each is at least twice as big as all smaller ones together (git's
"geometric" repacking): a pack count that grows with the logarithm of the
project's size; or all into one (``expipe-git gc``).

Nothing is ever lost to a reader, ours or stock git's: a pack and its index
are written under temporary names, fsynced, renamed into ``objects/pack``
(index last) and the folder fsynced before any loose object or old pack is
removed. A reader that misses a loose object looks for new packs
(:meth:`expipe_git.git.packs.Packs.get`; git does the same), and a process
that has an old pack open keeps reading it after it is removed (POSIX; on
Windows removing a pack in use fails and it is left for the next packing).
Only objects that hash to their names are packed, and every loose object is
kept, reachable or not: nothing is pruned. A packer killed midway leaves
temporary files that the next one removes (:meth:`Packer.run`), and objects
both loose and packed, which the next packing stores once.

The caller holds the packing lock (:mod:`expipe_git.git.packing` decides
when to pack).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from dulwich.pack import create_delta

from . import packs, spares
from .objects import commit_links, loose_ids, loose_path, loose_type, read_loose
from .spares import STATE_DIR  # the packing lock and temporary packs live there too
from .trees import TreeDiff

_BATCH_OBJECTS = 20_000  # at most this many objects in memory at once
_MAX_DEPTH = 50  # delta chains no longer than git's default
_DELTA_MIN_SIZE = 64  # smaller objects go whole: a delta's header would eat the gain
_GROWTH = 2  # each pack kept at least this many times all smaller packs together
_COMMIT, _TREE, _BLOB = 1, 2, 3
_TREE_MODE = 0o040000
_SUBMODULE_MODE = 0o160000
_TMP_PREFIX = "pack-tmp-"
_UNLINK_DELAY_SECONDS = 0.2  # see Packer.pack_loose
_ORPHAN_PACK_AGE_SECONDS = 3600  # see Packer._remove_leftovers


@dataclass
class PackReport:
    """What one packing did."""

    loose_packed: int  # loose objects now in a pack, their files removed
    packs_before: int
    packs_after: int


class Packer:
    """One packing of one repository: :meth:`run` it holding the packing lock."""

    def __init__(self, git_dir: str, in_background: bool = False, make_spares: bool = True):
        # A thread holding Python's lock keeps it for up to 5 ms when another
        # wants it: a packing thread would delay the writer's next mutation
        # that long, each time. Sleeping 0 s hands it over between objects.
        self.give_way = (lambda: time.sleep(0)) if in_background else (lambda: None)
        self.git_dir = git_dir
        self.make_spares = make_spares  # leave spares.POOL empty files for the next writes
        self.objects_dir = os.path.join(git_dir, "objects")
        self.pack_dir = os.path.join(self.objects_dir, "pack")
        self.state_dir = os.path.join(git_dir, STATE_DIR)
        self.packs = packs.Packs(self.pack_dir)
        self.read_ahead: dict[bytes, tuple[int, bytes]] = {}  # loose objects read while ordering them
        self.trees = TreeDiff(
            self.read, lambda sha: ValueError(f"tree {sha.decode()} is damaged"), strict=False
        )

    def run(self, everything: bool) -> PackReport:
        try:
            self._remove_leftovers()
            before = len(_pack_names(self.pack_dir))
            os.makedirs(self.pack_dir, exist_ok=True)
            packed = self.pack_loose()
            if not self.make_spares:
                spares.remove_all(self.state_dir)
            elif packed:
                # The next writes' files, made here rather than in them: as many
                # as keep spares and loose objects (written while this packed)
                # together within spares.POOL files.
                spares.refill(self.state_dir, spares.POOL - len(loose_ids(self.objects_dir)))
            self.merge_packs(everything)
            return PackReport(packed, before, len(_pack_names(self.pack_dir)))
        finally:
            # Unmapped now, not when the garbage collector gets to this packer
            # (its tree differ refers back to it): a pack it merged away keeps
            # its disk space while it is mapped.
            self.packs.close()

    # -- reading ----------------------------------------------------------

    def read(self, sha: bytes) -> bytes:
        found = self.read_object(sha)
        if found is None:
            raise KeyError(sha)
        return found[1]

    def read_object(self, sha: bytes) -> tuple[int, bytes] | None:
        """Return (type, contents) of an object, loose or packed, or None if it is not here."""
        loose = self.read_ahead.get(sha) or read_loose(self.objects_dir, sha)
        return loose if loose is not None else self.packs.get(sha)

    # -- loose objects into packs -------------------------------------------

    def pack_loose(self) -> int:
        loose = loose_ids(self.objects_dir)
        if not loose:
            return 0
        order, previous = self._order(loose)
        packed = 0
        for start in range(0, len(order), _BATCH_OBJECTS):
            batch = order[start : start + _BATCH_OBJECTS]
            objects = self._write_batch(batch, previous)
            # The pack is on disk for good: only now may the loose files go.
            # dulwich's reader looks in packs (listing them again on a miss)
            # before loose files, so one that listed the packs just before this
            # one landed would miss a loose file removed in the same instant;
            # a moment's wait closes that gap. (Ours and git's look at loose
            # files first, then at the packs again.)
            time.sleep(_UNLINK_DELAY_SECONDS)
            for sha in objects:
                with contextlib.suppress(FileNotFoundError, PermissionError):
                    os.unlink(loose_path(self.objects_dir, sha))
            packed += len(objects)
        return packed

    def _loose_commits(self, loose: set[bytes]) -> dict[bytes, tuple[bytes, tuple[bytes, ...]]]:
        """The loose commits: id -> (tree, parents)."""
        commits: dict[bytes, tuple[bytes, tuple[bytes, ...]]] = {}
        # A few thousand loose objects (what a write leaves) are read once and
        # kept for writing the pack; more (a first gc of a big project) are
        # read for their type here, and again batch by batch.
        keep = len(loose) <= _BATCH_OBJECTS
        for sha in loose:
            self.give_way()
            if keep:
                found = read_loose(self.objects_dir, sha)
                if found is not None:
                    self.read_ahead[sha] = found
            elif loose_type(self.objects_dir, sha) == _COMMIT:
                found = read_loose(self.objects_dir, sha)
            else:
                continue
            if found is not None and found[0] == _COMMIT:
                commits[sha] = _links(found[1])
        return commits

    def _order(self, loose: set[bytes]) -> tuple[list[bytes], dict[bytes, bytes]]:
        """Order the loose objects so a file's versions follow each other; map each to its previous one.

        The loose commits are walked parents first; each one's tree is
        compared with its first parent's, and an object that changed at a
        path gets the object that was there before as its delta base.
        """
        commits = self._loose_commits(loose)
        order: list[bytes] = []
        seen: set[bytes] = set()
        previous: dict[bytes, bytes] = {}

        def add(sha: bytes, before: bytes | None) -> None:
            seen.add(sha)
            if sha in loose:
                order.append(sha)
                if before is not None:
                    previous[sha] = before

        def walk_tree(tree: bytes, base: bytes | None) -> None:
            if tree == base or tree in seen:
                return
            add(tree, base)
            try:
                changed, _ = self.trees.changed(tree, base)
            except (KeyError, ValueError):
                return  # a tree missing or damaged: its objects are packed whole, fsck's to judge
            for _, mode, sha, old in changed:
                old_sha = old[1] if old is not None and old[0] == mode else None
                if mode == _TREE_MODE:
                    walk_tree(sha, old_sha)
                elif mode != _SUBMODULE_MODE and sha not in seen:
                    add(sha, old_sha)

        for sha in _parents_first(commits):
            self.give_way()
            tree, parents = commits[sha]
            base = None
            if parents:
                parent = commits.get(parents[0])
                if parent is not None:
                    base = parent[0]
                else:
                    found = self.read_object(parents[0])
                    base = _links(found[1])[0] if found is not None else None
            walk_tree(tree, base)
            add(sha, None)
        order += sorted(loose - seen)  # not reached from a loose commit: packed whole
        return order, previous

    def _write_batch(self, batch: list[bytes], previous: dict[bytes, bytes]) -> list[bytes]:
        """Write one pack of these loose objects; return those it holds."""
        objects: dict[bytes, tuple[int, bytes]] = {}
        for sha in batch:
            self.give_way()
            found = self.read_ahead.pop(sha, None) or read_loose(self.objects_dir, sha)
            if found is not None:  # gone meanwhile, or damaged: left for git fsck to report
                objects[sha] = found
        if not objects:
            return []
        with packs.PackWriter(self._tmp_path(), len(objects)) as writer:
            depth: dict[bytes, int] = {}
            for sha, (kind, data) in objects.items():
                self.give_way()
                base = previous.get(sha)
                if base in writer.offsets and depth[base] < _MAX_DEPTH and len(data) >= _DELTA_MIN_SIZE:
                    delta = b"".join(create_delta(objects[base][1], data))
                    if len(delta) < len(data) // 2:
                        writer.add_delta(sha, base, delta)
                        depth[sha] = depth[base] + 1
                        continue
                writer.add_whole(sha, kind, data)
                depth[sha] = 0
            writer.install(self.pack_dir)
        return list(objects)

    # -- merging packs ----------------------------------------------------

    def merge_packs(self, everything: bool) -> None:
        sources = _mergeable(self.pack_dir, everything)
        if len(sources) < 2:
            return
        sources.sort(key=lambda source: -source.count)  # the biggest (oldest) first: bases come before
        previous = self._previous_versions(sources[1:])
        unique: set[bytes] = set()
        for source in sources:
            unique.update(sha for sha, _, _ in source.listed)
        with packs.PackWriter(self._tmp_path(), len(unique)) as writer:
            depth: dict[bytes, int] = {}
            for source in sources:
                self._copy(source, writer, previous, depth)
            writer.install(self.pack_dir)
        # Only now, with the merged pack in place, may the old ones go (unmapped
        # here first: Windows removes no file that is mapped).
        self.packs.close()
        for source in sources:
            source.pack.close()
            _remove_pack(self.pack_dir, source.name)
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.unlink(os.path.join(self.pack_dir, "multi-pack-index"))  # names packs that are gone

    def _previous_versions(self, sources: list[_Source]) -> dict[bytes, bytes]:
        """Map objects of these packs to the previous version of their file or folder.

        In a pack made from loose objects, the first version of each path in
        it is whole; in a merged pack it can be a delta of the version in
        the pack before.
        """
        commits: dict[bytes, tuple[bytes, tuple[bytes, ...]]] = {}
        for source in sources:
            for sha, offset, _ in source.listed:
                if source.kind_at(offset) == _COMMIT:
                    found = self.packs.get(sha)
                    if found is not None:
                        commits[sha] = _links(found[1])
        previous: dict[bytes, bytes] = {}
        seen: set[bytes] = set()

        def walk_tree(tree: bytes, base: bytes | None) -> None:
            if tree == base or tree in seen:
                return
            seen.add(tree)
            if base is not None:
                previous[tree] = base
            try:
                changed, _ = self.trees.changed(tree, base)
            except (KeyError, ValueError):
                return
            for _, mode, sha, old in changed:
                old_sha = old[1] if old is not None and old[0] == mode else None
                if mode == _TREE_MODE:
                    walk_tree(sha, old_sha)
                elif old_sha is not None and sha not in previous:
                    previous[sha] = old_sha

        for sha in _parents_first(commits):
            self.give_way()
            tree, parents = commits[sha]
            if parents:
                found = self.packs.get(parents[0])
                if found is not None:
                    walk_tree(tree, _links(found[1])[0])
        return previous

    def _copy(
        self, source: _Source, writer: packs.PackWriter, previous: dict[bytes, bytes], depth: dict
    ) -> None:
        """Copy a pack's entries into the merged pack, as stored unless a whole one can be a delta."""
        data = source.pack.data
        entries = list(source.by_offset())
        height = _chain_heights(data, entries)
        new_offset_of: dict[int, int] = {}  # offset in the source -> offset in the merged pack
        for sha_bin, offset, end in entries:
            self.give_way()
            sha = sha_bin.hex().encode("ascii")
            if sha in writer.offsets:  # in an earlier pack too: one copy is enough
                new_offset_of[offset] = writer.offsets[sha]
                continue
            kind, size, base_ref, pos = packs.parse_header(data, offset)
            new_offset_of[offset] = writer.position
            if isinstance(base_ref, int):  # a delta of an earlier entry of this pack
                base_offset = new_offset_of[base_ref]
                writer.add_stored_delta(sha, base_offset, size, data[pos:end])
                depth[sha] = depth.get(writer.id_at(base_offset), 0) + 1
            elif isinstance(base_ref, bytes):  # a delta of an object named by id: as stored
                writer.add_stored(sha, data[offset:end])
                depth[sha] = depth.get(base_ref.hex().encode("ascii"), 0) + 1
            else:
                base = previous.get(sha)
                if (
                    kind in (_TREE, _BLOB)
                    and base in writer.offsets
                    # its own deltas in this pack get one deeper too
                    and depth.get(base, 0) + 1 + height.get(offset, 0) <= _MAX_DEPTH
                    and size >= _DELTA_MIN_SIZE
                ):
                    delta = self._delta(base, sha)
                    if delta is not None:
                        writer.add_delta(sha, base, delta)
                        depth[sha] = depth.get(base, 0) + 1
                        continue
                writer.add_stored(sha, data[offset:end])
                depth[sha] = 0

    def _delta(self, base: bytes, sha: bytes) -> bytes | None:
        old, new = self.packs.get(base), self.packs.get(sha)
        if old is None or new is None:
            return None
        delta = b"".join(create_delta(old[1], new[1]))
        return delta if len(delta) < len(new[1]) // 2 else None

    def _tmp_path(self) -> str:
        return os.path.join(self.state_dir, f"{_TMP_PREFIX}{os.getpid()}-{threading.get_ident()}")

    def _remove_leftovers(self) -> None:
        """Remove what a packing that was killed left (we hold the packing lock).

        Its temporary files; and a pack renamed in without its index (killed
        between the two renames: no reader uses it, git counts it as
        garbage) once it is an hour old: git, which takes no lock of ours,
        renames its packs in the same order.
        """
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.state_dir):
                if name.startswith(_TMP_PREFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.state_dir, name))
        indexed = set(_pack_names(self.pack_dir))
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.pack_dir):
                base = os.path.join(self.pack_dir, name[: -len(".pack")])
                if name.startswith("pack-") and name.endswith(".pack") and name[:-5] not in indexed:
                    with contextlib.suppress(OSError):
                        if os.stat(base + ".pack").st_mtime < time.time() - _ORPHAN_PACK_AGE_SECONDS:
                            os.unlink(base + ".pack")


# -- what is on disk ----------------------------------------------------------


def _links(raw: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """A commit's tree and parents; none for a commit without a tree (packed whole, for git fsck to judge)."""
    try:
        return commit_links(raw)
    except ValueError:
        return b"", ()


def _parents_first(commits: dict[bytes, tuple[bytes, tuple[bytes, ...]]]) -> Iterator[bytes]:
    """Yield the commits so that each comes after those of its parents that are listed."""
    placed: set[bytes] = set()
    for start in sorted(commits):
        stack = [(start, False)]
        while stack:
            sha, parents_placed = stack.pop()
            if parents_placed:
                yield sha
                continue
            if sha in placed:
                continue
            placed.add(sha)
            stack.append((sha, True))
            stack.extend((p, False) for p in commits[sha][1] if p in commits and p not in placed)


@dataclass
class _Source:
    """A pack to merge."""

    name: str  # pack-<checksum>, without suffix
    pack: packs.PackFile
    listed: list[tuple[bytes, int, int]]  # (hex id, offset, CRC-32)
    count: int

    def kind_at(self, offset: int) -> int:
        return packs.parse_header(self.pack.data, offset)[0]

    def by_offset(self) -> Iterator[tuple[bytes, int, int]]:
        """Yield (binary id, offset, end) of each entry, in the order of the file."""
        ordered = sorted(self.listed, key=lambda entry: entry[1])
        ends = [offset for _, offset, _ in ordered[1:]] + [len(self.pack.data) - 20]
        for (sha, offset, _), end in zip(ordered, ends, strict=True):
            yield bytes.fromhex(sha.decode("ascii")), offset, end


def _chain_heights(data: mmap.mmap, entries: list[tuple[bytes, int, int]]) -> dict[int, int]:
    """For each entry that deltas depend on: the longest chain of deltas built on it, by offset."""
    at = {sha: offset for sha, offset, _ in entries}
    height: dict[int, int] = {}
    for _, offset, _ in reversed(entries):  # a delta comes after its base (offset deltas always)
        _, _, base, _ = packs.parse_header(data, offset)
        base_offset = at.get(base) if isinstance(base, bytes) else base
        if base_offset is not None:
            height[base_offset] = max(height.get(base_offset, 0), height.get(offset, 0) + 1)
    return height


def _pack_names(pack_dir: str) -> list[str]:
    try:
        return sorted(name[: -len(".idx")] for name in os.listdir(pack_dir) if name.endswith(".idx"))
    except FileNotFoundError:
        return []


def _mergeable(pack_dir: str, everything: bool) -> list[_Source]:
    """The packs to merge: all of them, or the small ones (each kept pack at least twice the rest)."""
    sources = []
    for name in _pack_names(pack_dir):
        base = os.path.join(pack_dir, name)
        if os.path.exists(base + ".keep") or os.path.exists(base + ".promisor"):
            continue  # git's marks: this pack stays as it is
        listed = packs.read_index(base + ".idx")
        if listed is None:
            continue  # an index version packs.py does not read: leave the pack alone
        try:
            pack = packs.PackFile(base + ".pack", base + ".idx")
        except (OSError, ValueError):
            continue
        sources.append(_Source(name, pack, listed, len(listed)))
    if everything:
        return sources
    sources.sort(key=lambda source: source.count)
    total = 0
    merge_up_to = -1
    for i, source in enumerate(sources):
        if i > 0 and source.count < _GROWTH * total:
            merge_up_to = i
        total += source.count
    return sources[: merge_up_to + 1] if merge_up_to > 0 else []


def _remove_pack(pack_dir: str, name: str) -> None:
    """Remove a pack that another holds every object of: its index first, so no reader picks it up."""
    base = os.path.join(pack_dir, name)
    for suffix in (".idx", ".pack", ".rev", ".bitmap", ".mtimes"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.unlink(base + suffix)
