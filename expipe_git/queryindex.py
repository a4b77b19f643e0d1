"""The index ``where`` answers from: SQLite, right for any commit.

``project.actions.where(tags="place cell", since="2026-05-01")`` must not
read 100,000 attribute files. The attributes that criteria ask about (type,
location, datetime, tags, users, entities and the leaf values of modules)
are kept in an SQLite database, ``.git/expipe-git/query-index.sqlite``,
together with the root tree it was built from. A query for any tree (HEAD,
an old commit under ``project.at``, a transaction's draft) diffs the
indexed tree against it (:meth:`HistoryIndex.diff_trees`: only folders that
differ are opened), asks SQLite about the objects that did not change, and
checks the few changed objects in Python, from their records at that tree.
So mutations pay nothing, and commits made by hand, pulls, merges or a
``git reset`` are seen like the API's own. When the target is HEAD and
many objects changed, the index is moved to HEAD first (one SQLite
transaction).

The database is a cache: deleting it loses nothing, one that does not open
is rebuilt, and where it cannot be written (a read-only ``.git``) a
private in-memory one is used.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sqlite3
import stat
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import layout, values
from .criteria import CRITERIA, LIST_CRITERIA, Criteria, Facts, facts_of, matches
from .errors import CorruptFileError, ExpipeError
from .git import historyindex, readcache
from .git.trees import parse_tree

if TYPE_CHECKING:
    from .git import Repository, Snapshot

FORMAT = 2
INDEX_FILE = "query-index.sqlite"
# Objects changed since the indexed tree above which a query at HEAD moves
# the index to HEAD (below it, they are checked in Python, which costs less
# than a write).
_MOVE_AFTER = 64


# ---------------------------------------------------------------------------
# Reading objects at a tree


def _parse(data: bytes) -> Any:
    # The store caches parsed records across processes by blob id: every
    # caller must parse the same way (values.parse), whatever the message says.
    return values.parse(data, what="record")


def _raw(store: Repository, blob: bytes, shared: bool) -> Any:
    """Return a blob parsed as TOML (not decoded), or None if it does not parse.

    ``shared``: through the store's read cache. Building the index reads
    every record once and does not: a read cache of every record would cost
    each later process seconds to load.
    """
    try:
        return store.parsed(blob, _parse) if shared else _parse(store.object_contents(blob))
    except CorruptFileError:
        return None  # a damaged file matches no criterion; reading the object says why


def _decoded(raw: Any, path: str) -> Any:
    if raw is None:
        return None
    try:
        return values.decode(raw, what=path)
    except CorruptFileError:
        return None


@dataclass
class Stored:
    """One object's files at a tree: blob ids, and their records as parsed (not decoded)."""

    attributes: bytes
    modules: dict[str, bytes]
    raw: dict[bytes, Any]

    def facts(self) -> Facts:
        modules = {name: _decoded(self.raw.get(blob), name) for name, blob in self.modules.items()}
        return facts_of(_decoded(self.raw.get(self.attributes), "attributes"), modules)


def _stored(
    store: Repository,
    files: Mapping[str, tuple[int, bytes]],
    module_files: Iterable[tuple[str, int, bytes]],
    shared: bool,
) -> Stored | None:
    found = files.get("attributes" + layout.SUFFIX)
    if found is None or stat.S_ISDIR(found[0]):
        return None
    raw = {found[1]: _raw(store, found[1], shared)}
    modules = {}
    for filename, mode, blob in module_files:
        stem = layout.strip_suffix(filename)
        if stem and not stat.S_ISDIR(mode):
            modules[stem] = blob
            raw[blob] = _raw(store, blob, shared)
    return Stored(found[1], modules, raw)


def stored_at(store: Repository, tree: bytes, kind: str, name: str) -> Stored | None:
    """Return an object's files at ``tree``, read through the store's caches; None if it is absent."""
    folder = store.lookup(tree, layout.object_dir(kind, name))
    if folder is None or not stat.S_ISDIR(folder[0]):
        return None
    files = store.tree_entries(folder[1])
    module_folder = files.get("modules")
    module_files: list[tuple[str, int, bytes]] = []
    if module_folder is not None and stat.S_ISDIR(module_folder[0]):
        module_files = [(n, mode, sha) for n, (mode, sha) in store.tree_entries(module_folder[1]).items()]
    return _stored(store, files, module_files, True)


def read_facts(store: Repository, tree: bytes, kind: str, name: str) -> Facts | None:
    """Return the facts of an object at ``tree``; None if it does not exist there."""
    found = stored_at(store, tree, kind, name)
    return None if found is None else found.facts()


def _entries(store: Repository, sha: bytes) -> Iterator[tuple[str, int, bytes]]:
    for name, mode, child in parse_tree(store.tree_bytes(sha), 20):
        yield name.decode("utf-8", "surrogateescape"), mode, child


def every_object(store: Repository, tree: bytes, kind: str) -> Iterator[tuple[str, Stored]]:
    """Yield (name, files) of every action (or entity) at ``tree``, for building the index.

    Trees and records are read without the store's caches: they would hold
    every object of the project, and the next process would spend seconds
    loading them.
    """
    folder = store.lookup(tree, layout.FOLDER_KINDS[kind])
    if folder is None or not stat.S_ISDIR(folder[0]):
        return
    for shard, mode, shard_tree in _entries(store, folder[1]):
        if not stat.S_ISDIR(mode):
            continue
        for name, object_mode, object_tree in _entries(store, shard_tree):
            if not stat.S_ISDIR(object_mode) or layout.shard(name) != shard:
                continue
            files = {entry: (entry_mode, sha) for entry, entry_mode, sha in _entries(store, object_tree)}
            module_folder = files.get("modules")
            module_files: Iterable[tuple[str, int, bytes]] = ()
            if module_folder is not None and stat.S_ISDIR(module_folder[0]):
                module_files = list(_entries(store, module_folder[1]))
            found = _stored(store, files, module_files, False)
            if found is not None:
                yield name, found


def all_objects(store: Repository, tree: bytes | None, kind: str) -> Iterator[str]:
    """Yield the names of every action (or entity) at ``tree``."""
    if tree is None:
        return
    folder = store.lookup(tree, layout.FOLDER_KINDS[kind])
    if folder is None or not stat.S_ISDIR(folder[0]):
        return
    for shard, (mode, sha) in store.tree_entries(folder[1]).items():
        if stat.S_ISDIR(mode):
            for name, (inner_mode, _) in store.tree_entries(sha).items():
                if stat.S_ISDIR(inner_mode) and layout.shard(name) == shard:
                    yield name


def changed_objects(store: Repository, old: bytes | None, new: bytes | None) -> set[tuple[str, str]]:
    """Return (kind, name) of every action and entity whose files differ between two trees."""
    found: set[tuple[str, str]] = set()
    if old == new:
        return found
    for path, _, _ in historyindex.of(store).diff_trees(old, new):
        parts = path.split("/", 3)
        if len(parts) == 4 and parts[0] in layout.KIND_OF_FOLDER:
            found.add((layout.KIND_OF_FOLDER[parts[0]], parts[2]))
    return found


# ---------------------------------------------------------------------------
# The index


_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE objects(
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    type TEXT, location TEXT, naive INTEGER, time INTEGER, blob BLOB, UNIQUE(kind, name));
CREATE TABLE modules(
    object INTEGER NOT NULL, module TEXT NOT NULL, blob BLOB NOT NULL,
    PRIMARY KEY(object, module)) WITHOUT ROWID;
CREATE TABLE records(blob BLOB PRIMARY KEY, raw BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE terms(
    field TEXT NOT NULL, value TEXT NOT NULL, object INTEGER NOT NULL,
    PRIMARY KEY(field, value, object)) WITHOUT ROWID;
CREATE TABLE paths(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);
CREATE TABLE leaves(
    path INTEGER NOT NULL, value TEXT NOT NULL, object INTEGER NOT NULL,
    PRIMARY KEY(path, value, object)) WITHOUT ROWID;
CREATE INDEX objects_type ON objects(kind, type);
CREATE INDEX objects_location ON objects(kind, location);
CREATE INDEX objects_time ON objects(kind, naive, time);
CREATE INDEX terms_object ON terms(object);
CREATE INDEX leaves_object ON leaves(object);
"""


def _open(path: str) -> sqlite3.Connection:
    if path != ":memory:":
        with contextlib.suppress(FileExistsError):
            os.mkdir(os.path.dirname(path))
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # A cache: losing the last transaction to a power cut costs a rebuild.
        db.execute("PRAGMA synchronous=NORMAL")
        found = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if found is None:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone() is None:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
            db.execute("COMMIT")
        version = db.execute("SELECT value FROM meta WHERE key='format'").fetchone()
        if version is None or version[0] != FORMAT:
            raise sqlite3.DatabaseError(f"query index format {version!r}, not {FORMAT}")
    except BaseException:
        db.close()
        raise
    return db


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(path + suffix)


class QueryIndex:
    """The SQLite index of a project's actions and entities, and the queries on it."""

    def __init__(self, store: Repository):
        self._store = weakref.ref(store)
        self.path = os.path.join(store.state_dir, INDEX_FILE)
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @property
    def store(self) -> Repository:
        store = self._store()
        if store is None:
            raise ReferenceError("the store of this query index was closed and collected")
        return store

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = _open(self.path)
            except (sqlite3.Error, OSError):
                _remove(self.path)  # damaged, or of another format: it is only a cache
                try:
                    self._db = _open(self.path)
                except (sqlite3.Error, OSError):
                    self._db = _open(":memory:")
            weakref.finalize(self, self._db.close)
        return self._db

    def _indexed_tree(self, db: sqlite3.Connection) -> tuple[bool, bytes | None]:
        """Return (whether the index was ever built, the tree it was built from)."""
        row = db.execute("SELECT value FROM meta WHERE key='tree'").fetchone()
        if row is None:
            return False, None
        return True, row[0] or None

    # -- moving the index to a tree -----------------------------------------

    def move_to(self, tree: bytes | None) -> None:
        """Bring the index to ``tree``: re-index every object whose files differ."""
        with self._lock:
            db = self._connect()
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                return  # busy for long, or read-only: queries check the difference in Python
            try:
                built, indexed = self._indexed_tree(db)
                if built and indexed == tree:
                    db.execute("COMMIT")
                    return
                store = self.store
                if not built:
                    for table in ("objects", "terms", "leaves", "paths", "modules", "records"):
                        db.execute(f"DELETE FROM {table}")
                    found: Iterable[tuple[str, str, Stored | None]] = (
                        (kind, name, stored)
                        for kind in CRITERIA
                        if tree is not None
                        for name, stored in every_object(store, tree, kind)
                    )
                else:
                    found = (
                        (kind, name, None if tree is None else stored_at(store, tree, kind, name))
                        for kind, name in sorted(changed_objects(store, indexed, tree))
                    )
                self._reindex(db, found, fresh=not built)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('tree', ?)", (tree or b"",))
                db.execute("COMMIT")
            except sqlite3.OperationalError:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                return  # a full disk or a read-only file: queries check the difference in Python
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            if not built:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ANALYZE")
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _reindex(
        self, db: sqlite3.Connection, found: Iterable[tuple[str, str, Stored | None]], fresh: bool
    ) -> None:
        """Replace the rows of each (kind, name) by what it stores (None: it is gone)."""
        path_ids = dict(db.execute("SELECT path, id FROM paths"))
        objects: list[tuple] = []
        terms: list[tuple[str, str, int]] = []
        leaves: list[tuple[Any, str, int]] = []
        modules: list[tuple[int, str, bytes]] = []
        records: dict[bytes, Any] = {}
        next_id = (db.execute("SELECT max(id) FROM objects").fetchone()[0] or 0) + 1
        for kind, name, stored in found:
            if not fresh:
                row = db.execute("SELECT id FROM objects WHERE kind=? AND name=?", (kind, name)).fetchone()
                if row is not None:
                    for table in ("terms", "leaves", "modules"):
                        db.execute(f"DELETE FROM {table} WHERE object=?", row)
                    db.execute("DELETE FROM objects WHERE id=?", row)
            if stored is None:
                continue
            facts = stored.facts()
            object_id, next_id = next_id, next_id + 1
            naive, time = facts.time if facts.time is not None else (None, None)
            objects.append(
                (object_id, kind, name, facts.type, facts.location, naive, time, stored.attributes)
            )
            terms.extend((field, value, object_id) for field, items in facts.lists.items() for value in items)
            for path, keys in facts.module_values.items():
                path_id = path_ids.get(path)
                if path_id is None:
                    path_id = path_ids[path] = db.execute(
                        "INSERT INTO paths(path) VALUES (?)", (path,)
                    ).lastrowid
                leaves.extend((path_id, key, object_id) for key in keys)
            modules.extend((object_id, module, blob) for module, blob in stored.modules.items())
            for blob, raw in stored.raw.items():
                if raw is not None:
                    records[blob] = raw
        db.executemany("INSERT INTO objects VALUES (?, ?, ?, ?, ?, ?, ?, ?)", objects)
        db.executemany("INSERT OR IGNORE INTO terms VALUES (?, ?, ?)", terms)
        db.executemany("INSERT OR IGNORE INTO leaves VALUES (?, ?, ?)", leaves)
        db.executemany("INSERT OR IGNORE INTO modules VALUES (?, ?, ?)", modules)
        db.executemany(
            "INSERT OR IGNORE INTO records VALUES (?, ?)",
            ((blob, _pack_record(raw)) for blob, raw in records.items()),
        )

    # -- reading records for tables ----------------------------------------

    def records(self, snap: Snapshot, kind: str, names: list[str], modules: list[str]) -> list[Record]:
        """Return (name, attributes, {module: contents}) of each named object at ``snap`` that exists.

        Objects unchanged since the indexed tree are read from the index
        (their files' ids and parsed records); the others from the tree.
        """
        store, tree = self.store, snap.tree
        files: dict[str, tuple[bytes, dict[str, bytes]]] = {}
        raws: dict[bytes, Any] = {}
        with self._reading(snap) as (db, differing):
            changed = None if differing is None else {n for k, n in differing if k == kind}
            if changed is not None:
                from_index = [name for name in names if name not in changed]
                for chunk in _chunks(from_index):
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        f"SELECT name, blob FROM objects WHERE kind=? AND name IN ({marks})", [kind, *chunk]
                    )
                    for name, blob in rows:
                        files[name] = (blob, {})
                    if modules:
                        module_marks = ",".join("?" * len(modules))
                        rows = db.execute(
                            "SELECT o.name, m.module, m.blob FROM modules m "
                            "JOIN objects o ON o.id = m.object "
                            f"WHERE o.kind=? AND o.name IN ({marks}) AND m.module IN ({module_marks})",
                            [kind, *chunk, *modules],
                        )
                        for name, module, blob in rows:
                            files[name][1][module] = blob
            for name in names:
                if name not in files and tree is not None:
                    found = stored_at(store, tree, kind, name)
                    if found is not None:
                        wanted = {m: b for m, b in found.modules.items() if m in modules}
                        files[name] = (found.attributes, wanted)
                        raws.update(found.raw)
            needed = [b for blob, module_blobs in files.values() for b in (blob, *module_blobs.values())]
            for chunk in _chunks([b for b in needed if b not in raws]):
                marks = ",".join("?" * len(chunk))
                for blob, packed in db.execute(
                    f"SELECT blob, raw FROM records WHERE blob IN ({marks})", chunk
                ):
                    raw = _unpack_record(packed)
                    if raw is not None:  # else: parsed from the blob below
                        raws[blob] = raw
        found_records = []
        for name in names:
            if name not in files:
                continue
            blob, module_blobs = files[name]
            raw = raws[blob] if blob in raws else _raw(store, blob, True)
            attributes = _decoded(raw, layout.attributes_path(kind, name))
            contents = {}
            for module, module_blob in module_blobs.items():
                module_raw = raws[module_blob] if module_blob in raws else _raw(store, module_blob, True)
                contents[module] = _decoded(module_raw, layout.module_path((kind, name), module))
            found_records.append((name, attributes if isinstance(attributes, dict) else {}, contents))
        return found_records

    # -- answering ---------------------------------------------------------

    def _prepare(self, db: sqlite3.Connection, snap: Snapshot) -> None:
        """Build the index if there is none, or move it to HEAD if many objects changed since."""
        store, tree = self.store, snap.tree
        # Only HEAD's own tree is written to the index: not an old view's,
        # nor a transaction's draft (its objects are in memory only).
        is_head = (
            store.pinned is None
            and snap.commit is not None
            and snap.commit == store.head()
            and tree == store.commit_tree(snap.commit)
        )
        built, indexed = self._indexed_tree(db)
        changed: set[tuple[str, str]] = set()
        if built:
            try:
                changed = changed_objects(store, indexed, tree)
            except (KeyError, ExpipeError):
                # The indexed tree is gone (``git gc`` after a reset dropped it): start again.
                with contextlib.suppress(sqlite3.Error):
                    db.execute("DELETE FROM meta WHERE key='tree'")
                built = False
        if not built or (is_head and len(changed) > _MOVE_AFTER):
            self.move_to(tree)

    @contextlib.contextmanager
    def _reading(self, snap: Snapshot) -> Iterator[tuple[sqlite3.Connection, set[tuple[str, str]] | None]]:
        """Yield the database in one read transaction, and the objects changed since its tree.

        One transaction, so that another process moving the index meanwhile
        cannot pair one tree with another tree's rows. The changes are None
        when there is no usable index (it could not be written, or its tree
        is gone): then everything is read from the records.
        """
        with self._lock:
            db = self._connect()
            self._prepare(db, snap)
            db.execute("BEGIN")
            try:
                built, indexed = self._indexed_tree(db)
                changed = None
                if built:
                    with contextlib.suppress(KeyError, ExpipeError):
                        changed = changed_objects(self.store, indexed, snap.tree)
                yield db, changed
            finally:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("COMMIT")

    def names(self, snap: Snapshot, criteria: Criteria) -> list[str]:
        """Return the names of the objects at ``snap`` that meet ``criteria``, sorted."""
        store, tree = self.store, snap.tree
        with self._reading(snap) as (db, changed):
            if changed is None:
                return sorted(
                    name
                    for name in all_objects(store, tree, criteria.kind)
                    if _meets(store, tree, criteria, name)
                )
            names = {name for kind, name in changed if kind == criteria.kind}
            found = set(self._select(db, criteria)) - names
        found.update(name for name in names if _meets(store, tree, criteria, name))
        return sorted(found)

    def _select(self, db: sqlite3.Connection, criteria: Criteria) -> list[str]:
        sql, parameters = _sql(criteria)
        return [name for (name,) in db.execute(sql, parameters)]


Record = tuple[str, dict, dict]  # name, attributes, {module: contents}


def _chunks(items: list, size: int = 500) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _pack_record(raw: Any) -> bytes:
    return marshal.dumps(readcache.freeze(raw))


def _unpack_record(packed: bytes) -> Any:
    try:
        return readcache.thaw(marshal.loads(packed))
    except (ValueError, TypeError, KeyError, EOFError, IndexError):
        return None


def _meets(store: Repository, tree: bytes | None, criteria: Criteria, name: str) -> bool:
    if tree is None:
        return False
    facts = read_facts(store, tree, criteria.kind, name)
    return facts is not None and matches(criteria, facts)


def _sql(criteria: Criteria) -> tuple[str, list[Any]]:
    """Return the SQL that selects the names meeting ``criteria`` in the index, and its parameters."""
    where = ["o.kind = ?"]
    parameters: list[Any] = [criteria.kind]
    sets: list[tuple[str, list[Any]]] = []  # subqueries of object ids, all of which must hold
    for field in LIST_CRITERIA:
        for value in dict.fromkeys(getattr(criteria, field)):
            sets.append(("SELECT object FROM terms WHERE field = ? AND value = ?", [field, value]))
    if criteria.any_tags is not None:
        marks = ", ".join("?" * len(criteria.any_tags))
        sets.append(
            (f"SELECT object FROM terms WHERE field = 'tags' AND value IN ({marks})", [*criteria.any_tags])
        )
    for path, value in criteria.modules:
        sets.append(
            (
                "SELECT object FROM leaves WHERE path = (SELECT id FROM paths WHERE path = ?) AND value = ?",
                [path, value],
            )
        )
    for name in ("type", "location"):
        if getattr(criteria, name) is not None:
            where.append(f"o.{name} = ?")
            parameters.append(getattr(criteria, name))
    if criteria.since is not None or criteria.until is not None:
        per_clock = []
        for naive in (0, 1):
            clock = ["o.naive = ?"]
            clock_parameters: list[Any] = [naive]
            if criteria.since is not None:
                clock.append("o.time >= ?")
                clock_parameters.append(criteria.since.wall if naive else criteria.since.instant)
            if criteria.until is not None:
                clock.append("o.time < ?" if criteria.until.exclusive else "o.time <= ?")
                clock_parameters.append(criteria.until.wall if naive else criteria.until.instant)
            per_clock.append("(" + " AND ".join(clock) + ")")
            parameters.extend(clock_parameters)
        where.append("(" + " OR ".join(per_clock) + ")")
    if sets:
        subquery = " INTERSECT ".join(sql for sql, _ in sets)
        where.append(f"o.id IN ({subquery})")
        for _, values_ in sets:
            parameters.extend(values_)
    return "SELECT o.name FROM objects o WHERE " + " AND ".join(where), parameters


# The query index of a repository (one per repository).
index_of: readcache.PerRepository[QueryIndex] = readcache.PerRepository(QueryIndex)
