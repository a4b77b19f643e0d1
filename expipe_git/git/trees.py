"""What changed between two versions of a git tree, without parsing both whole.

Walking a long history tree by tree (checking what a fetch brought, finding
what a push must send, indexing which files each commit changed) compares
each commit's folders with its parent's. A
commit changes little: ``actions/`` lists 256 shard folders and one of them
changed; a shard lists ~40 actions and one was added. Parsing every version
of such a folder was most of the time of those walks.

Two versions of a tree share their bytes up to the first difference and
after the last one; only the entries in between can differ. A tree is a
plain sequence of ``mode name\\0<20-byte id>`` entries, parsed left to right,
so if the known version's entries and where each starts are at hand, the
other version's entries are the known ones with that middle stretch parsed
anew: a few byte comparisons and one ``parse_tree`` of a few entries, all in
C. When the stretch does not end on an entry boundary (its parse fails),
the tree is parsed whole instead, so the result is always what parsing the
whole tree gives.
"""

from __future__ import annotations

import bisect
import stat
from collections.abc import Callable

from dulwich.objects import parse_tree

from .format import EMPTY_TREE, FILE_MODE, ID_BYTES, TREE_MODE
from .readcache import ReadCache, remember

Entry = tuple[bytes, int, bytes]  # (name, mode, hex id), as dulwich's parse_tree gives them
Target = tuple[int, bytes]  # an entry's (mode, hex id), by name
Changed = tuple[bytes, int, bytes, "tuple[int, bytes] | None"]  # an entry, and the old one of its name

_KEEP_TREES = 4096  # parsed versions kept; past this all are dropped (a base is re-parsed once)


class TreeDiff:
    """Trees by id, and what changed in a tree since a previous version.

    ``read(id)`` returns a tree's raw bytes; ``parse_error(id)`` the
    exception to raise for one that is not a valid tree. ``strict``: refuse
    what git only warns about (modes written with a leading zero), as a
    check of what a remote sent must; a walk of our own history need not.
    """

    def __init__(
        self,
        read: Callable[[bytes], bytes],
        parse_error: Callable[[bytes], Exception],
        *,
        strict: bool = True,
    ):
        self._read = read
        self._parse_error = parse_error
        self._strict = strict
        self._raw: dict[bytes, bytes] = {}
        self._entries: dict[bytes, list[Entry]] = {}
        self._starts: dict[bytes, list[int]] = {}  # where each entry starts, then the tree's length

    def raw(self, sha: bytes) -> bytes:
        found = self._raw.get(sha)
        if found is None:
            if len(self._raw) > _KEEP_TREES:
                self._raw.clear()
                self._entries.clear()
                self._starts.clear()
            found = self._raw[sha] = self._read(sha)
        return found

    def entries(self, sha: bytes) -> list[Entry]:
        found = self._entries.get(sha)
        if found is None:
            try:
                found = list(parse_tree(self.raw(sha), 20, strict=self._strict))
            except Exception:
                raise self._parse_error(sha) from None
            self._entries[sha] = found
        return found

    def changed(self, tree: bytes, base: bytes | None) -> tuple[list[Changed], bool]:
        """Return the entries of ``tree`` unlike ``base``'s, each with base's entry of that name.

        The flag is False when exactly one entry changed its id (or mode)
        and nothing else; True when entries may also have been added or
        removed: then a caller that cares about names (duplicates, removed
        files) looks at ``entries`` of both, which are at hand.
        """
        if base is None:
            return [(name, mode, sha, None) for name, mode, sha in self.entries(tree)], True
        if tree == base:
            return [], False
        ours, theirs = self._stretch(base, tree)
        if len(ours) == 1 and len(theirs) == 1 and ours[0][0] == theirs[0][0]:
            (name, mode, sha), (_, old_mode, old_sha) = theirs[0], ours[0]
            return [(name, mode, sha, (old_mode, old_sha))], False
        if not ours:  # entries inserted, none replaced
            return [(name, mode, sha, None) for name, mode, sha in theirs], True
        return _difference(theirs, ours), True

    def differing(
        self, old: bytes | None, new: bytes | None
    ) -> tuple[dict[bytes, Target], dict[bytes, Target]]:
        """Return (entries of ``old`` that ``new`` lacks, entries of ``new`` that ``old`` lacks).

        Each as name -> (mode, hex id); None stands for no tree at all.
        """
        if old == new:
            return {}, {}
        if old is None or new is None:
            gone, came = (self.entries(old), []) if new is None else ([], self.entries(new))  # type: ignore[arg-type]
        else:
            gone, came = self._stretch(old, new)
        both = set(gone).intersection(came)
        return (
            {name: (mode, sha) for name, mode, sha in gone if (name, mode, sha) not in both},
            {name: (mode, sha) for name, mode, sha in came if (name, mode, sha) not in both},
        )

    def _stretch(self, base: bytes, tree: bytes) -> tuple[list[Entry], list[Entry]]:
        """Base's and tree's entries where the two may differ; outside that stretch they are alike."""
        if not (tree in self._entries and base in self._entries):
            # Splice from whichever version is parsed: a check walks newest first, a push oldest first.
            known, other = (
                (tree, base) if tree in self._entries and base not in self._entries else (base, tree)
            )
            spliced = self._splice(known, other)
            if spliced is not None:
                return spliced if known == base else (spliced[1], spliced[0])
        return self.entries(base), self.entries(tree)

    def _splice(self, known: bytes, other: bytes) -> tuple[list[Entry], list[Entry]] | None:
        """Parse ``other`` as ``known`` with its differing stretch re-parsed.

        Returns (known's entries in the stretch, other's entries there), or
        None if the stretch does not parse on its own.
        """
        entries, starts = self.entries(known), self._starts_of(known)
        old, new = self.raw(known), self.raw(other)
        i = _first_differing_entry(new, old, starts)
        start, shift = starts[i], len(new) - len(old)
        # The stretch ends where both end alike: try one entry replaced, then
        # entries inserted at ``start``, before measuring the common tail.
        if (
            i < len(entries)
            and starts[i + 1] + shift >= start
            and new[starts[i + 1] + shift :] == old[starts[i + 1] :]
        ):
            j = i + 1
        elif shift > 0 and new[start + shift :] == old[start:]:
            j = i
        else:
            tail = _common_suffix(new, old, min(len(new), len(old)) - start)
            j = bisect.bisect_left(starts, len(old) - tail)
        end = starts[j] + shift
        try:
            middle = list(parse_tree(new[start:end], 20, strict=self._strict))
        except Exception:
            return None
        middle_starts, at = [], start
        for _ in middle:
            middle_starts.append(at)
            at = new.index(b"\0", at) + 21
        if at != end:
            return None
        spliced = entries.copy()
        spliced[i:j] = middle
        self._entries[other] = spliced
        if shift == 0 and middle_starts == starts[i:j]:
            self._starts[other] = starts  # the same boundaries (lists of starts are never changed)
        else:
            self._starts[other] = starts[:i] + middle_starts + list(map(shift.__add__, starts[j:]))
        return entries[i:j], middle

    def _starts_of(self, sha: bytes) -> list[int]:
        found = self._starts.get(sha)
        if found is None:
            raw, found, at = self.raw(sha), [], 0
            for _ in self.entries(sha):
                found.append(at)
                at = raw.index(b"\0", at) + 21
            found.append(at)
            self._starts[sha] = found
        return found


def _difference(new: list[Entry], old: list[Entry]) -> list[Changed]:
    """Entries of ``new`` not in ``old``, each with old's entry of that name."""
    added = set(new).difference(old)
    if not added:
        return []
    before = {name: (mode, sha) for name, mode, sha in old}
    return [(name, mode, sha, before.get(name)) for name, mode, sha in new if (name, mode, sha) in added]


def _first_differing_entry(new: bytes, old: bytes, starts: list[int]) -> int:
    """Index of the first entry of ``old`` that ``new`` does not begin with alike.

    ``starts``: where old's entries start, then its length (so the answer
    is len(old's entries) when new begins with all of old). A binary search
    over entry boundaries comparing prefixes: each comparison is a memcmp,
    and ~8 of them beat converting both trees to integers to XOR them.
    """
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        at = starts[mid]
        if new[:at] == old[:at]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """How many trailing bytes ``a`` and ``b`` share, at most ``limit``."""
    if limit <= 0:
        return 0
    a, b = a[len(a) - limit :], b[len(b) - limit :]
    if a == b:
        return limit
    diff = int.from_bytes(a, "little") ^ int.from_bytes(b, "little")
    return limit - (diff.bit_length() + 7) // 8


Put = Callable[[bytes, bytes], bytes]  # stores an object (kind, contents) and returns its hex id
Entries = dict[str, tuple[int, bytes]]  # a folder: name -> (mode, hex id)


class Trees:
    """The trees of one repository: read (cached by id), looked into, compared, built.

    ``read_object(id)`` returns (type number, contents); ``write(kind,
    contents)`` stores an object on disk; ``cache`` keeps parsed trees between
    processes (the read cache).
    """

    def __init__(self, read_object: Callable[[bytes], tuple[int, bytes]], write: Put, cache: ReadCache):
        self._read_object = read_object
        self._write = write
        self._cache = cache
        self._trees: dict[bytes, Entries] = {}

    def entries(self, sha: bytes) -> dict[str, tuple[int, bytes]]:
        """Return name -> (mode, sha) of a tree, cached by its id."""
        entries = self._trees.get(sha)
        if entries is None:
            entries = self._cache.tree(sha)
            if entries is None:
                _, raw = self._read_object(sha)
                entries = {
                    name.decode("utf-8", "surrogateescape"): (mode, child)
                    for name, mode, child in parse_tree(raw, ID_BYTES)
                }
                self._cache.add_tree(sha, entries)
            remember(self._trees, sha, entries)
        return entries

    def lookup(self, tree: bytes, path: str) -> tuple[int, bytes] | None:
        entry: tuple[int, bytes] = (TREE_MODE, tree)
        for part in path.split("/"):
            if not stat.S_ISDIR(entry[0]):
                return None
            found = self.entries(entry[1]).get(part)
            if found is None:
                return None
            entry = found
        return entry

    def predecessor(self, tree: bytes, path: str, prefix: str = "") -> str | None:
        """Return the greatest file path below ``tree`` that sorts before ``path``."""
        head, _, rest = path.partition("/")
        entries = self.entries(tree)
        if rest:
            found = entries.get(head)
            if found is not None and stat.S_ISDIR(found[0]):
                inner = self.predecessor(found[1], rest, f"{prefix}{head}/")
                if inner is not None:
                    return inner
        target = (head + "/" + rest if rest else head).encode("utf-8", "surrogateescape")
        best: tuple[bytes, str, tuple[int, bytes]] | None = None
        for name, entry in entries.items():
            is_dir = stat.S_ISDIR(entry[0])
            key = (name + "/" if is_dir else name).encode("utf-8", "surrogateescape")
            if key < target and (is_dir or key != target) and not (is_dir and name == head and rest):
                if best is None or key > best[0]:
                    best = (key, name, entry)
        while best is not None:
            _, name, (mode, sha) = best
            if not stat.S_ISDIR(mode):
                return prefix + name
            prefix = f"{prefix}{name}/"
            best = max(
                (
                    ((n + "/" if stat.S_ISDIR(e[0]) else n).encode("utf-8", "surrogateescape"), n, e)
                    for n, e in self.entries(sha).items()
                ),
                default=None,
            )
        return None

    def diff(
        self, old: bytes | None, new: bytes | None, prefix: str = ""
    ) -> dict[str, tuple[bytes | None, bytes | None]]:
        """Return path -> (old blob id, new blob id) of the files that differ.

        Only folders whose tree ids differ are opened, so comparing two
        commits costs the size of the change, not of the project.
        """
        if old == new:
            return {}
        before = self.entries(old) if old else {}
        after = self.entries(new) if new else {}
        changed: dict[str, tuple[bytes | None, bytes | None]] = {}
        for name in before.keys() | after.keys():
            a, b = before.get(name), after.get(name)
            if a == b:
                continue
            a_dir = a is not None and stat.S_ISDIR(a[0])
            b_dir = b is not None and stat.S_ISDIR(b[0])
            if a_dir or b_dir:
                changed.update(
                    self.diff(
                        a[1] if a and a_dir else None, b[1] if b and b_dir else None, f"{prefix}{name}/"
                    )
                )
            a_file = None if a is None or a_dir else a[1]
            b_file = None if b is None or b_dir else b[1]
            if a_file != b_file:
                changed[prefix + name] = (a_file, b_file)
        return changed

    def build(
        self,
        tree: bytes | None,
        changes: dict[str, bytes | None],
        put: Put | None = None,
    ) -> bytes:
        """Write the trees that ``changes`` (path -> blob sha or None) alter.

        Unlike dulwich's commit_tree_changes this never stores an empty tree
        (git fsck would report it dangling) and never mutates cached trees.
        ``put`` stores a tree (default: on disk).
        """
        put = put or self._write
        entries = dict(self.entries(tree)) if tree else {}
        nested: dict[str, dict[str, bytes | None]] = {}
        for path, sha in changes.items():
            head, _, rest = path.partition("/")
            if rest:
                nested.setdefault(head, {})[rest] = sha
            elif sha is None:
                entries.pop(head, None)
            else:
                entries[head] = (FILE_MODE, sha)
        for name, sub in nested.items():
            current = entries.get(name)
            subtree = current[1] if current and stat.S_ISDIR(current[0]) else None
            new = self.build(subtree, sub, put)
            if new == EMPTY_TREE:
                entries.pop(name, None)
            else:
                entries[name] = (TREE_MODE, new)
        if not entries:
            return EMPTY_TREE
        # git orders a tree's entries by name, a folder's name as if it ended in "/".
        rows = []
        for name, (mode, sha) in entries.items():
            raw_name = name.encode("utf-8", "surrogateescape")
            key = raw_name + b"/" if stat.S_ISDIR(mode) else raw_name
            rows.append((key, b"%o %s\0%s" % (mode, raw_name, bytes.fromhex(sha.decode("ascii")))))
        rows.sort()
        return put(b"tree", b"".join(row for _, row in rows))
