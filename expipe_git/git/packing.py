"""Pack loose objects, so that a project stays small by itself.

Every mutation leaves 6-7 loose objects (a blob, the trees on its path, the
commit), each its own file: 1,000 mutations left 6,824 files and 4.5 MB in
``.git``, where ``git gc`` makes one pack of 0.9 MB. New projects set
``gc.auto = 0`` (dulwich's gc writes packs without deltas and holds
everything in memory), so this module does the packing:

- :func:`after_write` runs after every write has released the project's
  write lock. It estimates the loose objects from a sample of the fan-out
  folders (as git's own ``gc --auto`` does) and, past :data:`LOOSE_LIMIT`,
  packs them in a background thread of the process that crossed it. The
  packer holds a lock of its own (``.git/expipe-git/pack-mutex``), never
  the write lock: mutations go on meanwhile, and a second packer skips.
- :func:`pack_now` packs the loose objects into one pack per
  :data:`_BATCH_OBJECTS`, each object a delta of the previous version of the
  same file or folder when that version is in the same pack (a commit
  changes one entry of a 256-entry folder: the delta is a few bytes), then
  merges packs so that each is at least twice as big as all smaller ones
  together (git's "geometric" repacking): a pack count that grows with the
  logarithm of the project's size. ``expipe-git gc`` merges every pack.

Nothing is ever lost to a reader, ours or stock git's: a pack and its index
are written under temporary names, fsynced, renamed into ``objects/pack``
(index last) and the folder fsynced before any loose object or old pack is
removed. A reader that misses a loose object looks for new packs
(:meth:`expipe_git.packs.Packs.get`; git does the same), and a process that
has an old pack open keeps reading it after it is removed (POSIX; on Windows
removing a pack in use fails and it is left for the next packing). Only
objects that hash to their names are packed, and every loose object is
kept, reachable or not: nothing is pruned.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from dulwich.pack import create_delta

from . import lockfile, packs
from .format import HASH
from .trees import TreeDiff

# Loose objects past which a write starts packing: about 35 mutations. Loose
# objects cost a file each and are zlib'd one by one; packed they are a
# fraction of that, so this keeps ``.git`` near what ``git gc`` leaves.
LOOSE_LIMIT = 256
# How a write packs when it crosses the limit: "background" (a thread of the
# writing process), "inline" (the writing call, after its commit landed) or
# "off". Benchmarks compare them; see docs/performance.md.
auto = "background"

_SAMPLED_FOLDERS = [f"{i:02x}" for i in range(3, 256, 16)]  # 16 of the 256 fan-out folders
_BATCH_OBJECTS = 20_000  # at most this many objects in memory at once
_MAX_DEPTH = 50  # delta chains no longer than git's default
_DELTA_MIN_SIZE = 64  # smaller objects go whole: a delta's header would eat the gain
_GROWTH = 2  # each pack kept at least this many times all smaller packs together
_COMMIT, _TREE, _BLOB = 1, 2, 3
_OFS_DELTA = 6
_TYPES = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
_TREE_MODE = 0o040000
_SUBMODULE_MODE = 0o160000
_STATE_DIR = "expipe-git"
_TMP_PREFIX = "pack-tmp-"

_CHECK_EVERY = 8
_UNLINK_DELAY_SECONDS = 0.2  # see pack_loose

_log = logging.getLogger(__name__)
_running: set[str] = set()  # git folders a thread of this process packs now
_again: set[str] = set()  # of those, the ones a write found over the limit meanwhile
_suspended: set[str] = set()  # git folders whose writes start no packing (see suspended)
_running_lock = threading.Lock()
_writes: dict[str, int] = {}  # writes of this process, by git folder


def _forget_running() -> None:
    _running.clear()
    _again.clear()


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=lambda: _forget_running())


@dataclass
class PackReport:
    """What one packing did."""

    loose_packed: int  # loose objects now in a pack, their files removed
    packs_before: int
    packs_after: int


def loose_estimate(git_dir: str) -> int:
    """Estimate the loose objects of a repository from 16 of its 256 fan-out folders."""
    objects = os.path.join(git_dir, "objects")
    found = 0
    for folder in _SAMPLED_FOLDERS:
        try:
            found += len(os.listdir(os.path.join(objects, folder)))
        except FileNotFoundError:
            continue
    return found * 256 // len(_SAMPLED_FOLDERS)


def after_write(git_dir: str) -> None:
    """Pack the loose objects if there are many; called after a write released the write lock.

    The estimate (16 folder listings, 0.1-0.3 ms) is made on a process's
    first write and on every 8th after it: a process making one change
    (the command line) checks, one making many pays it an eighth of the time.
    """
    if auto == "off" or (_suspended and os.path.abspath(git_dir) in _suspended):
        return
    writes = _writes.get(git_dir, 0)
    _writes[git_dir] = writes + 1
    if writes % _CHECK_EVERY or loose_estimate(git_dir) < LOOSE_LIMIT:
        return
    with _running_lock:
        if git_dir in _running:
            # Packing now, from a listing made before these objects: it packs
            # again when done, so the loose objects stay bounded however fast
            # this process writes.
            _again.add(git_dir)
            return
        _running.add(git_dir)
    if auto == "inline":
        _pack_quietly(git_dir)
        return
    # Not a daemon: the interpreter waits for it at exit, so a pack is not
    # left half-written by every short script (it would be cleaned up, but
    # the loose objects would stay).
    thread = threading.Thread(target=_pack_quietly, args=(git_dir,), name="expipe-git packing")
    try:
        thread.start()
    except RuntimeError:  # the interpreter is shutting down: the next writer packs
        with _running_lock:
            _running.discard(git_dir)


@contextlib.contextmanager
def suspended(git_dir: str) -> Iterator[None]:
    """Start no packing after this process's writes to ``git_dir`` during the block.

    For a repository being built that may be thrown away (an import): a
    packing thread would still be writing into it while it is removed.
    """
    key = os.path.abspath(git_dir)
    _suspended.add(key)
    try:
        yield
    finally:
        _suspended.discard(key)


def _pack_quietly(git_dir: str) -> None:
    try:
        while True:
            pack_now(git_dir, wait=False, in_background=auto == "background")
            with _running_lock:
                if git_dir not in _again:
                    break
                _again.discard(git_dir)
    except (OSError, ValueError) as exc:
        # A full disk, a project removed meanwhile, a damaged pack (git fsck
        # names it): packing is never worth failing a write for, but it is said.
        _log.warning("packing the loose objects of %s failed (%s); a later write tries again", git_dir, exc)
    finally:
        with _running_lock:
            _running.discard(git_dir)
            _again.discard(git_dir)


def pack_now(
    git_dir: str, *, everything: bool = False, wait: bool = True, in_background: bool = False
) -> PackReport | None:
    """Pack the loose objects, then merge packs; return what was done.

    ``everything``: merge all packs into one (``expipe-git gc``), not only
    the small ones. ``wait``: wait for a packing that runs elsewhere, else
    return None at once. ``in_background``: a thread beside the process's
    own work: give way to it between objects.
    """
    state_dir = os.path.join(git_dir, _STATE_DIR)
    os.makedirs(state_dir, exist_ok=True)
    mutex = os.path.join(state_dir, "pack-mutex")
    with lockfile.exclusive(mutex) if wait else lockfile.exclusive_or_skip(mutex) as held:
        if held is False:
            return None
        return _Packer(git_dir, in_background).run(everything)


class _Packer:
    def __init__(self, git_dir: str, in_background: bool = False):
        # A thread holding Python's lock keeps it for up to 5 ms when another
        # wants it: a packing thread would delay the writer's next mutation
        # that long, each time. Sleeping 0 s hands it over between objects.
        self.give_way = (lambda: time.sleep(0)) if in_background else (lambda: None)
        self.git_dir = git_dir
        self.objects_dir = os.path.join(git_dir, "objects")
        self.pack_dir = os.path.join(self.objects_dir, "pack")
        self.state_dir = os.path.join(git_dir, _STATE_DIR)
        self.packs = packs.Packs(self.pack_dir)
        self.read_ahead: dict[bytes, tuple[int, bytes]] = {}  # loose objects read while ordering them
        self.trees = TreeDiff(
            self.read, lambda sha: ValueError(f"tree {sha.decode()} is damaged"), strict=False
        )

    def run(self, everything: bool) -> PackReport:
        self._remove_leftovers()
        before = len(_pack_names(self.pack_dir))
        os.makedirs(self.pack_dir, exist_ok=True)
        packed = self.pack_loose()
        self.merge_packs(everything)
        return PackReport(packed, before, len(_pack_names(self.pack_dir)))

    # -- reading ----------------------------------------------------------

    def read(self, sha: bytes) -> bytes:
        found = self.read_object(sha)
        if found is None:
            raise KeyError(sha)
        return found[1]

    def read_object(self, sha: bytes) -> tuple[int, bytes] | None:
        """Return (type, contents) of an object, loose or packed, or None if it is not here."""
        loose = self.read_ahead.get(sha) or _read_loose(self._loose_path(sha), sha)
        return loose if loose is not None else self.packs.get(sha)

    def _loose_path(self, sha: bytes) -> str:
        hex_sha = sha.decode("ascii")
        return os.path.join(self.objects_dir, hex_sha[:2], hex_sha[2:])

    # -- loose objects into packs -------------------------------------------

    def pack_loose(self) -> int:
        loose = _loose_ids(self.objects_dir)
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
                    os.unlink(self._loose_path(sha))
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
                found = _read_loose(self._loose_path(sha), sha)
                if found is not None:
                    self.read_ahead[sha] = found
            elif _loose_type(self._loose_path(sha)) == _COMMIT:
                found = _read_loose(self._loose_path(sha), sha)
            else:
                continue
            if found is not None and found[0] == _COMMIT:
                commits[sha] = _tree_and_parents(found[1])
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
                    base = _tree_and_parents(found[1])[0] if found is not None else None
            walk_tree(tree, base)
            add(sha, None)
        order += sorted(loose - seen)  # not reached from a loose commit: packed whole
        return order, previous

    def _write_batch(self, batch: list[bytes], previous: dict[bytes, bytes]) -> list[bytes]:
        """Write one pack of these loose objects; return those it holds."""
        objects: dict[bytes, tuple[int, bytes]] = {}
        for sha in batch:
            self.give_way()
            found = self.read_ahead.pop(sha, None) or _read_loose(self._loose_path(sha), sha)
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
                        commits[sha] = _tree_and_parents(found[1])
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
                    walk_tree(tree, _tree_and_parents(found[1])[0])
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
        """Remove temporary files of a packing that was killed (we hold the packing lock)."""
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.state_dir):
                if name.startswith(_TMP_PREFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.state_dir, name))


# -- what is on disk ----------------------------------------------------------


def _loose_ids(objects_dir: str) -> set[bytes]:
    found: set[bytes] = set()
    for folder in range(256):
        name = f"{folder:02x}"
        try:
            listed = os.listdir(os.path.join(objects_dir, name))
        except FileNotFoundError:
            continue
        for rest in listed:
            if len(rest) == 38 and all(c in "0123456789abcdef" for c in rest):  # not a temporary file
                found.add((name + rest).encode("ascii"))
    return found


def _read_loose(path: str, sha: bytes) -> tuple[int, bytes] | None:
    """Return (type, contents) of a loose object that hashes to its name, else None."""
    try:
        with open(path, "rb") as f:
            raw = zlib.decompress(f.read())
        header, _, body = raw.partition(b"\0")
        kind, _, size = header.partition(b" ")
        if int(size) != len(body) or HASH(raw).hexdigest().encode("ascii") != sha:
            return None
        return _TYPES[kind], body
    except (OSError, zlib.error, ValueError, KeyError):
        return None


def _loose_type(path: str) -> int | None:
    """Read only as much of a loose object as its type needs."""
    try:
        with open(path, "rb") as f:
            head = zlib.decompressobj().decompress(f.read(64), 16)
        return _TYPES.get(head.partition(b" ")[0])
    except (OSError, zlib.error):
        return None


def _tree_and_parents(raw: bytes) -> tuple[bytes, tuple[bytes, ...]]:
    """The tree and parents of a commit: its first header lines."""
    tree = b""
    parents = []
    for line in raw.split(b"\n"):
        if line.startswith(b"tree "):
            tree = line[5:45]
        elif line.startswith(b"parent "):
            parents.append(line[7:47])
        elif line and not line.startswith((b"tree ", b"parent ")):
            break
    return tree, tuple(parents)


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


def objects_usage(git_dir: str) -> tuple[int, int]:
    """Return (files, bytes) under ``.git/objects``."""
    files = size = 0
    for folder, _, names in os.walk(os.path.join(git_dir, "objects")):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                size += os.stat(os.path.join(folder, name)).st_size
                files += 1
    return files, size


def wait_for_background_packing(timeout: float = 60.0) -> None:
    """Wait until no packing thread of this process runs (tests and benchmarks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with _running_lock:
            if not _running:
                return
        time.sleep(0.01)
