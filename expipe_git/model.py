"""The expipe object model — projects, actions, entities, modules, templates,
messages — on top of the git store.

Every object is a handle: a project plus the object's name. Reads come from
the latest commit (so an old handle sees what another process wrote) and are
cached by blob id in the store; every mutation is one :meth:`Store.mutate`
call whose builder re-reads the record at the latest commit, applies the
change and returns the new file contents.
"""

from __future__ import annotations

import collections
import collections.abc
import datetime as dt
import hashlib
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from . import layout, settings, values
from .errors import (
    AlreadyExistsError,
    CorruptFileError,
    ExpipeError,
    InvalidTypeError,
    InvalidValueError,
    NotAProjectError,
    NotFoundError,
)
from .store import Changes, Identity, Snapshot, Store

datetime_format = "%Y-%m-%dT%H:%M:%S"
datetime_key_format = "%Y%m%dT%H%M%S"

# Keys of a template that describe the template rather than its fields.
TEMPLATE_META = ("identifier", "registered")
LIST_ATTRIBUTES = ("users", "tags", "entities")


def _now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


# ---------------------------------------------------------------------------
# Projects


def _find_project_root(path: pathlib.Path) -> pathlib.Path | None:
    for folder in (path, *path.parents):
        if (folder / layout.CONFIG_FILE).is_file():
            return folder
    return None


def get_project(path: str | os.PathLike[str], name: str | None = None) -> Project:
    """Open the project at ``path``.

    Raises:
        NotFoundError: no project is there.
    """
    root = pathlib.Path(path).absolute()
    if not (root / layout.CONFIG_FILE).is_file() or not (root / ".git").exists():
        raise NotFoundError(
            f"no expipe_git project at {root}; create one with "
            f"expipe_git.create_project({str(path)!r})"
        )
    return Project(root)


def create_project(path: str | os.PathLike[str], name: str | None = None, init: bool = False) -> Project:
    """Create a project (a git repository) at ``path`` and return it.

    Raises:
        AlreadyExistsError: ``path`` is inside another project.
        FileExistsError: ``path`` exists and ``init`` is False.
    """
    root = pathlib.Path(path).absolute()
    name = root.name if name is None else name
    layout.check_name(name, "project")
    outer = _find_project_root(root)
    if outer is not None:
        raise AlreadyExistsError(
            f"{root} is inside the project at {outer}; "
            "a project cannot be created inside another project"
        )
    root.mkdir(parents=True, exist_ok=init)
    store = Store.init(root)
    config = {
        "project": name,
        "type": "project",
        "storage_format": layout.STORAGE_FORMAT,
        "registered": _now(),
    }
    project = Project(root, store=store)

    def build(snap: Snapshot) -> Changes:
        return {
            layout.CONFIG_FILE: values.dumps(config, what="project config").encode(),
            layout.IGNORE_FILE: layout.IGNORE_TEXT.encode(),
        }

    project._commit(("project",), "create", build, detail=repr(name))
    return project


def require_project(path: str | os.PathLike[str], name: str | None = None) -> Project:
    """Return the project at ``path``, creating it if the path does not exist.

    Raises:
        NotAProjectError (a FileExistsError): ``path`` exists but is no project.
    """
    root = pathlib.Path(path).absolute()
    if (root / layout.CONFIG_FILE).is_file():
        return get_project(root, name)
    if root.exists():
        raise NotAProjectError(
            f"{root} exists but is not an expipe_git project; "
            "choose another path or create_project(path, init=True) to turn it into one"
        )
    return create_project(root, name)


class Project:
    """An expipe project: a git repository of actions, entities, templates and modules."""

    def __init__(self, root: pathlib.Path, *, store: Store | None = None):
        self.path = pathlib.Path(root)
        self._store = store or Store(self.path)
        self._author: Identity | None = None

    # -- plumbing shared by every object of the project --------------------

    @property
    def store(self) -> Store:
        return self._store

    def _snap(self) -> Snapshot:
        return self._store.snapshot()

    def _record(self, snap: Snapshot, path: str, what: str) -> Any:
        raw = snap.read_parsed(path, lambda data: values.parse(data, what=f"{what} ({path})"))
        if raw is None:
            return None
        return values.decode(raw, what=f"{what} ({path})")

    def _identity(self) -> Identity:
        if self._author is None:
            name, email = settings.identity(*self._store.git_identity())
            self._author = Identity(name, email)
        return self._author

    def _commit(
        self,
        obj: tuple[str, ...],
        operation: str,
        build: Callable[[Snapshot], Changes],
        detail: str = "",
    ) -> bytes | None:
        message = layout.commit_message(obj, operation, detail)
        return self._store.mutate(build, message, author=self._identity())

    # -- expipe's project API ---------------------------------------------

    @property
    def config(self) -> dict:
        return self._record(self._snap(), layout.CONFIG_FILE, "project config") or {}

    @property
    def id(self) -> str:
        return self.config.get("project", self.path.name)

    name = id

    def __repr__(self) -> str:
        return f"<expipe_git Project {self.id!r} at {str(self.path)!r}>"

    @property
    def actions(self) -> ObjectMap:
        return ObjectMap(self, "action")

    @property
    def entities(self) -> ObjectMap:
        return ObjectMap(self, "entity")

    @property
    def templates(self) -> TemplateMap:
        return TemplateMap(self)

    @property
    def modules(self) -> ModuleMap:
        return ModuleMap(self, ("project",))

    def require_action(self, name: str) -> Action:
        return self._require_object("action", name)

    def create_action(self, name: str) -> Action:
        return self._create_object("action", name)

    def delete_action(self, name: str) -> None:
        self._delete_object("action", name)

    def require_entity(self, name: str) -> Entity:
        return self._require_object("entity", name)

    def create_entity(self, name: str) -> Entity:
        return self._create_object("entity", name)

    def delete_entity(self, name: str) -> None:
        self._delete_object("entity", name)

    def _handle(self, kind: str, name: str) -> Action | Entity:
        return (Action if kind == "action" else Entity)(self, name)

    def _require_object(self, kind: str, name: str) -> Action | Entity:
        layout.check_name(name, kind)
        return self._create_object(kind, name, exist_ok=True)

    def _create_object(self, kind: str, name: str, exist_ok: bool = False) -> Action | Entity:
        layout.check_name(name, kind)
        path = layout.attributes_path(kind, name)

        def build(snap: Snapshot) -> Changes:
            if snap.blob_id(path) is not None:
                if exist_ok:
                    return {}
                raise AlreadyExistsError(f"{kind} {name!r} already exists in project {self.id!r}")
            record = {"registered": _now()}
            return {path: values.dumps(record, what=f"{kind} {name!r}").encode()}

        self._commit((kind, name), "create", build)
        return self._handle(kind, name)

    def _delete_object(self, kind: str, name: str) -> None:
        layout.check_name(name, kind)
        folder = layout.object_dir(kind, name)

        def build(snap: Snapshot) -> Changes:
            if snap.blob_id(layout.attributes_path(kind, name)) is None:
                raise NotFoundError(f"{kind} {name!r} does not exist in project {self.id!r}")
            return {path: None for path, _ in snap.walk(folder)}

        self._commit((kind, name), "delete", build)

    def require_template(self, name: str, contents: Mapping | None = None) -> Template:
        """Return template ``name``, creating it from ``contents`` if missing."""
        layout.check_name(name, "template")
        return self._create_template(name, contents, exist_ok=True)

    def create_template(self, name: str, contents: Mapping | None = None) -> Template:
        layout.check_name(name, "template")
        return self._create_template(name, contents, exist_ok=False)

    def _create_template(self, name: str, contents: Mapping | None, exist_ok: bool) -> Template:
        if contents is None:
            contents = {}
        if not isinstance(contents, Mapping):
            raise InvalidTypeError(
                f"template {name!r}: contents must be a dict, got {type(contents).__name__}"
            )
        path = layout.template_path(name)
        record = dict(contents)
        record.setdefault("identifier", name)
        record.setdefault("registered", _now())
        if not isinstance(record["identifier"], str):
            raise InvalidTypeError(f"template {name!r}: identifier must be a str")
        layout.check_name(record["identifier"], "module")
        data = values.dumps(record, what=f"template {name!r}").encode()

        def build(snap: Snapshot) -> Changes:
            if snap.blob_id(path) is not None:
                if exist_ok:
                    return {}
                raise AlreadyExistsError(f"template {name!r} already exists in project {self.id!r}")
            return {path: data}

        self._commit(("template", name), "create", build)
        return Template(self, name)

    def delete_template(self, name: str) -> None:
        layout.check_name(name, "template")
        path = layout.template_path(name)

        def build(snap: Snapshot) -> Changes:
            if snap.blob_id(path) is None:
                raise NotFoundError(f"template {name!r} does not exist in project {self.id!r}")
            return {path: None}

        self._commit(("template", name), "delete", build)

    def require_module(self, name=None, template=None, contents=None) -> Module:
        return _require_module(self, ("project",), name, template, contents, exist_ok=True)

    def create_module(self, name=None, template=None, contents=None) -> Module:
        return _require_module(self, ("project",), name, template, contents, exist_ok=False)

    def delete_module(self, name: str) -> None:
        _delete_module(self, ("project",), name)

    # -- working with git directly ----------------------------------------

    def status(self) -> list[FileStatus]:
        """List files edited by hand in the working tree and not committed."""
        return [FileStatus(path, state) for path, state in self._store.status()]

    def commit(self, message: str) -> str | None:
        """Check every hand edit parses, then commit them all as one commit.

        Returns the new commit id, or None if there was nothing to commit.

        Raises:
            CorruptFileError: a file does not parse or is outside the layout;
                nothing is committed then.
        """
        if not isinstance(message, str) or not message.strip():
            raise InvalidValueError("a commit needs a message that says what was changed")
        edits = self._store.status()
        changes: Changes = {}
        for path, state in edits:
            if state == "deleted":
                changes[path] = None
                continue
            data = (self.path / path).read_bytes()
            _check_hand_edit(path, data)
            changes[path] = data
        if not changes:
            return None
        body = message.rstrip("\n") + "\n\nExpipe-Operation: commit hand edits\n"
        sha = self._store.mutate(lambda snap: changes, body, author=self._identity(), from_worktree=True)
        return None if sha is None else sha.decode()


class FileStatus(collections.namedtuple("FileStatus", "path state")):
    """A file that differs from the last commit: state is added, modified or deleted."""


def _check_hand_edit(path: str, data: bytes) -> None:
    """Refuse a hand-edited file that is not a valid record in its place."""
    if path == layout.IGNORE_FILE:
        return
    place = layout.place_of(path)
    if place is None:
        raise CorruptFileError(
            f"{path} is not part of an expipe_git project's layout "
            "(see docs/storage-format.md); move or remove it, then commit again",
            path,
        )
    what = f"{layout.describe(place.obj)} ({path})"
    record = values.loads(data, what=what)
    if place.part in ("attributes", "config", "message") and not isinstance(record, dict):
        raise CorruptFileError(f"{what}: expected a table of keys", path)
    if place.part == "attributes":
        _check_attributes(record, what, path)
    if place.part == "message":
        _check_message(record, what, path)


def _check_attributes(record: dict, what: str, path: str) -> None:
    for key in LIST_ATTRIBUTES:
        items = record.get(key)
        if items is not None and not (isinstance(items, list) and all(isinstance(i, str) for i in items)):
            raise CorruptFileError(f"{what}: {key} must be a list of strings", path)
    for key in ("type", "location"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise CorruptFileError(f"{what}: {key} must be a string", path)


def _check_message(record: dict, what: str, path: str) -> None:
    for key, kind in (("text", str), ("user", str), ("datetime", dt.datetime)):
        if not isinstance(record.get(key), kind):
            raise CorruptFileError(f"{what}: {key} must be a {kind.__name__}", path)


# ---------------------------------------------------------------------------
# Mappings of objects


class _ReadMapping(collections.abc.Mapping):
    """Sorted, read-only mapping of names to handles, read at the latest commit."""

    def _names(self) -> list[str]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._names()!r}>"

    def _ipython_key_completions_(self) -> list[str]:
        return self._names()


class ObjectMap(_ReadMapping):
    """``project.actions`` or ``project.entities``."""

    def __init__(self, project: Project, kind: str):
        self._project = project
        self._kind = kind

    def _names(self) -> list[str]:
        snap = self._project._snap()
        folder = layout.FOLDER_KINDS[self._kind]
        names = []
        for shard, (_, _) in snap.listdir(folder).items():
            names.extend(snap.listdir(f"{folder}/{shard}"))
        return sorted(names)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if layout._name_problem(name) or not name:
            return False
        return self._project._snap().blob_id(layout.attributes_path(self._kind, name)) is not None

    def __getitem__(self, name: str) -> Action | Entity:
        layout.check_name(name, self._kind)
        if name not in self:
            raise NotFoundError(f"{self._kind} {name!r} does not exist in project {self._project.id!r}")
        return self._project._handle(self._kind, name)


class TemplateMap(_ReadMapping):
    """``project.templates``."""

    def __init__(self, project: Project):
        self._project = project

    def _names(self) -> list[str]:
        entries = self._project._snap().listdir("templates")
        return sorted(s for s in map(layout.strip_suffix, entries) if s)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or layout._name_problem(name):
            return False
        return self._project._snap().blob_id(layout.template_path(name)) is not None

    def __getitem__(self, name: str) -> Template:
        layout.check_name(name, "template")
        if name not in self:
            raise NotFoundError(f"template {name!r} does not exist in project {self._project.id!r}")
        return Template(self._project, name)


class ModuleMap(_ReadMapping):
    """The modules of a project, action or entity."""

    def __init__(self, project: Project, owner: tuple[str, ...]):
        self._project = project
        self._owner = owner

    def _names(self) -> list[str]:
        entries = self._project._snap().listdir(layout.modules_dir(self._owner))
        return sorted(s for s in map(layout.strip_suffix, entries) if s)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or layout._name_problem(name):
            return False
        path = layout.module_path(self._owner, name)
        return self._project._snap().blob_id(path) is not None

    def __getitem__(self, name: str) -> Module:
        layout.check_name(name, "module")
        if name not in self:
            raise NotFoundError(f"module {name!r} does not exist in {_owner_text(self._owner)}")
        return Module(self._project, self._owner, name)


def _owner_text(owner: tuple[str, ...]) -> str:
    return "the project" if owner == ("project",) else layout.describe(owner)


def _module_obj(owner: tuple[str, ...], name: str) -> tuple[str, ...]:
    return ("module", name) if owner == ("project",) else (*owner, "module", name)


def _require_module(project, owner, name, template, contents, exist_ok) -> Module:
    if template is not None:
        if contents is not None:
            raise InvalidValueError("give a module either a template or contents, not both")
        layout.check_name(template, "template")
        tpl = project.templates[template]
        record = tpl.contents
        identifier = record.get("identifier") or template
        contents = {k: v for k, v in record.items() if k not in TEMPLATE_META}
        if name is None:
            name = identifier
    if name is None:
        raise InvalidTypeError("a module needs a name (or a template to take its name from)")
    layout.check_name(name, "module")
    path = layout.module_path(owner, name)
    obj = _module_obj(owner, name)
    if contents is None:
        if exist_ok and name in ModuleMap(project, owner):
            return Module(project, owner, name)
        if exist_ok:
            raise NotFoundError(
                f"module {name!r} does not exist in {_owner_text(owner)}; "
                "pass contents= or template= to create it"
            )
        raise InvalidTypeError(f'module {name!r}: contents expected "dict" or "list", got "NoneType"')
    if not isinstance(contents, (dict, list, np.ndarray)) and not isinstance(contents, Mapping):
        raise InvalidTypeError(
            f'module {name!r}: contents expected "dict", "list" or numpy array, '
            f'got "{type(contents).__name__}"'
        )
    data = values.dumps(contents, what=layout.describe(obj)).encode()

    def build(snap: Snapshot) -> Changes:
        if owner != ("project",) and snap.blob_id(layout.attributes_path(*owner)) is None:
            raise NotFoundError(f"{layout.describe(owner)} does not exist")
        if snap.blob_id(path) is not None:
            if exist_ok:
                return {}
            raise AlreadyExistsError(f"module {name!r} already exists in {_owner_text(owner)}")
        return {path: data}

    project._commit(obj, "create", build)
    return Module(project, owner, name)


def _delete_module(project: Project, owner: tuple[str, ...], name: str) -> None:
    layout.check_name(name, "module")
    path = layout.module_path(owner, name)

    def build(snap: Snapshot) -> Changes:
        if snap.blob_id(path) is None:
            raise NotFoundError(f"module {name!r} does not exist in {_owner_text(owner)}")
        return {path: None}

    project._commit(_module_obj(owner, name), "delete", build)


# ---------------------------------------------------------------------------
# Records: modules and templates


class _Record(collections.abc.MutableMapping):
    """A TOML record whose keys write through: every assignment is a commit."""

    _what_kind = "record"

    def __init__(self, project: Project, obj: tuple[str, ...], path: str):
        self._project = project
        self._obj = obj
        self._path = path

    @property
    def project(self) -> Project:
        return self._project

    def _what(self) -> str:
        return layout.describe(self._obj)

    def _read(self, snap: Snapshot | None = None) -> Any:
        snap = snap or self._project._snap()
        record = self._project._record(snap, self._path, self._what())
        if record is None:
            raise NotFoundError(f"{self._what()} does not exist (it was deleted)")
        return record

    @property
    def contents(self) -> Any:
        """The whole stored value (a dict, or a list for list modules)."""
        return self._read()

    def to_dict(self) -> collections.OrderedDict:
        """Return the contents as an ordered mapping of plain values."""
        contents = self._read()
        if isinstance(contents, list):
            return collections.OrderedDict(enumerate(contents))
        return collections.OrderedDict(contents)

    def _mapping(self) -> dict:
        contents = self._read()
        if not isinstance(contents, dict):
            raise InvalidTypeError(f"{self._what()} holds a list, not keys")
        return contents

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self, (key,), self._mapping()[key])

    def __iter__(self) -> Iterator:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._read())

    def __contains__(self, key: object) -> bool:
        contents = self._read()
        return key in contents if isinstance(contents, dict) else False

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Record):
            other = other.contents
        return _equal(self.contents, other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.contents)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._update_at((), lambda node: node.__setitem__(key, value), f"set {_key_text((key,))}")

    def __delitem__(self, key: Any) -> None:
        def remove(node: dict) -> None:
            if key not in node:
                raise KeyError(key)
            del node[key]

        self._update_at((), remove, f"delete {_key_text((key,))}")

    def update(self, other=(), /, **kwargs) -> None:  # type: ignore[override]
        """Set several keys in one commit."""
        items = dict(other, **kwargs)
        self._update_at((), lambda node: node.update(items), "update " + ", ".join(map(str, items)))

    def _update_at(self, keys: tuple, change: Callable[[Any], None], operation: str) -> None:
        """Apply ``change`` to the node at ``keys`` of the latest record, and commit."""
        what = self._what()

        def build(snap: Snapshot) -> Changes:
            record = self._read(snap)
            node = record
            for key in keys:
                node = node[key]
            if not isinstance(node, dict):
                raise InvalidTypeError(f"{what}: {_key_text(keys)} is not a mapping")
            change(node)
            self._check(record)
            return {self._path: values.dumps(record, what=what).encode()}

        self._project._commit(self._obj, operation, build)

    def _check(self, record: Any) -> None:
        """Hook for subclasses to refuse records that break their rules."""


class Module(_Record):
    """A module: arbitrary nested metadata attached to a project, action or entity."""

    def __init__(self, project: Project, owner: tuple[str, ...], name: str):
        obj = _module_obj(owner, name)
        super().__init__(project, obj, layout.module_path(owner, name))
        self.id = self.name = name
        self._owner = owner


class Template(_Record):
    """A template: a module blueprint with an ``identifier`` naming its modules."""

    def __init__(self, project: Project, name: str):
        super().__init__(project, ("template", name), layout.template_path(name))
        self.id = self.name = name

    @property
    def identifier(self) -> str:
        return self._mapping().get("identifier") or self.id


class _NodeView(collections.abc.MutableMapping):
    """A nested mapping inside a record that writes through to it.

    ``module["a"]["b"] = 1`` reads ``module["a"]`` as this view, and the
    assignment becomes one commit that sets ``b`` inside ``a``.
    """

    def __init__(self, record: _Record, keys: tuple):
        self._record = record
        self._keys = keys

    def _node(self) -> dict:
        node = self._record._read()
        for key in self._keys:
            node = node[key]
        return node

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._record, (*self._keys, key), self._node()[key])

    def __iter__(self) -> Iterator:
        return iter(self._node())

    def __len__(self) -> int:
        return len(self._node())

    def __contains__(self, key: object) -> bool:
        return key in self._node()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _NodeView):
            other = other._node()
        return _equal(self._node(), other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._node())

    def to_dict(self) -> dict:
        return self._node()

    def __setitem__(self, key: Any, value: Any) -> None:
        keys = (*self._keys, key)
        self._record._update_at(self._keys, lambda node: node.__setitem__(key, value), f"set {_key_text(keys)}")

    def __delitem__(self, key: Any) -> None:
        def remove(node: dict) -> None:
            if key not in node:
                raise KeyError(key)
            del node[key]

        self._record._update_at(self._keys, remove, f"delete {_key_text((*self._keys, key))}")


def _wrap(record: _Record, keys: tuple, value: Any) -> Any:
    return _NodeView(record, keys) if isinstance(value, dict) else value


def _key_text(keys: tuple) -> str:
    return ".".join(str(k) for k in keys)


def _equal(a: Any, b: Any) -> bool:
    try:
        result = a == b
        if isinstance(result, np.ndarray):
            return bool(result.all())
        return bool(result)
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# Actions and entities


class PropertyList(collections.abc.Sequence):
    """``users``, ``tags`` or ``entities``: a list with set semantics.

    Items are unique str, kept in insertion order. ``append``, ``extend`` and
    ``remove`` apply to the latest commit, so two processes appending to the
    same list both land.
    """

    def __init__(self, owner: _Attributed, key: str):
        self._owner = owner
        self.name = key

    @property
    def data(self) -> list[str]:
        return list(self._owner._attribute(self.name) or [])

    def __getitem__(self, index):  # type: ignore[override]
        return self.data[index]

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __contains__(self, value: object) -> bool:
        return value in self.data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PropertyList):
            other = other.data
        return self.data == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.data)

    __str__ = __repr__

    def append(self, value: str) -> None:
        self.extend([value])

    def extend(self, values_: Iterable[str]) -> None:
        new = _check_str_list(list(values_), self.name)
        self._owner._update_list(self.name, lambda items: items + [v for v in new if v not in items], f"add to {self.name}")

    def remove(self, value: str) -> None:
        _check_str_list([value], self.name)

        def drop(items: list[str]) -> list[str]:
            if value not in items:
                raise ValueError(f"{value!r} is not in {self.name} of {layout.describe(self._owner._obj)}")
            return [v for v in items if v != value]

        self._owner._update_list(self.name, drop, f"remove from {self.name}")


def _check_str_list(items: Any, key: str) -> list[str]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise InvalidTypeError(f'{key}: expected "list" of str, got "{type(items).__name__}"')
    items = list(items)
    bad = [type(v).__name__ for v in items if not isinstance(v, str)]
    if bad:
        raise InvalidTypeError(f'{key}: expected contents to be "str", got {bad}')
    unique: list[str] = []
    for item in items:
        if item not in unique:
            unique.append(item)
    return unique


class _Attributed:
    """What actions and entities share: attributes, modules, messages, data."""

    _kind = ""

    def __init__(self, project: Project, name: str):
        self._project = project
        self.id = self.name = name
        self._obj = (self._kind, name)
        self._attributes_path = layout.attributes_path(self._kind, name)

    @property
    def project(self) -> Project:
        return self._project

    def __repr__(self) -> str:
        return f"<expipe_git {type(self).__name__} {self.id!r}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._obj == self._obj and other._project.path == self._project.path  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self._obj, str(self._project.path)))

    # -- attributes --------------------------------------------------------

    def _read_attributes(self, snap: Snapshot) -> dict:
        record = self._project._record(snap, self._attributes_path, layout.describe(self._obj))
        if record is None:
            raise NotFoundError(f"{layout.describe(self._obj)} does not exist (it was deleted)")
        return record

    @property
    def attributes(self) -> dict:
        """Everything stored in this object's attributes file."""
        return self._read_attributes(self._project._snap())

    def _attribute(self, key: str) -> Any:
        return self.attributes.get(key)

    def _change_attributes(self, change: Callable[[dict], None], operation: str) -> None:
        what = layout.describe(self._obj)

        def build(snap: Snapshot) -> Changes:
            record = self._read_attributes(snap)
            change(record)
            return {self._attributes_path: values.dumps(record, what=what).encode()}

        self._project._commit(self._obj, operation, build)

    def _set_attribute(self, key: str, value: Any) -> None:
        self._change_attributes(lambda record: record.__setitem__(key, value), f"set {key}")

    def _update_list(self, key: str, change: Callable[[list[str]], list[str]], operation: str) -> None:
        def apply(record: dict) -> None:
            record[key] = change(list(record.get(key) or []))

        self._change_attributes(apply, operation)

    def _set_list(self, key: str, items: Any) -> None:
        if not isinstance(items, (list, tuple, PropertyList)):
            raise InvalidTypeError(f'{key}: expected "list", got "{type(items).__name__}"')
        self._set_attribute(key, _check_str_list(items, key))

    @property
    def type(self) -> str | None:
        return self._attribute("type")

    @type.setter
    def type(self, value: str) -> None:
        _check_str(value, "type")
        self._set_attribute("type", value)

    @property
    def location(self) -> str | None:
        return self._attribute("location")

    @location.setter
    def location(self, value: str) -> None:
        _check_str(value, "location")
        self._set_attribute("location", value)

    @property
    def datetime(self) -> dt.datetime | None:
        return _as_datetime(self._attribute("datetime"), f"{layout.describe(self._obj)}: datetime")

    @datetime.setter
    def datetime(self, value: dt.datetime) -> None:
        if not isinstance(value, dt.datetime):
            raise InvalidTypeError(f'datetime: expected "datetime", got "{type(value).__name__}"')
        self._set_attribute("datetime", value)

    @property
    def registered(self) -> dt.datetime | None:
        return _as_datetime(self._attribute("registered"), f"{layout.describe(self._obj)}: registered")

    @property
    def users(self) -> PropertyList:
        return PropertyList(self, "users")

    @users.setter
    def users(self, value: list[str]) -> None:
        self._set_list("users", value)

    @property
    def tags(self) -> PropertyList:
        return PropertyList(self, "tags")

    @tags.setter
    def tags(self, value: list[str]) -> None:
        self._set_list("tags", value)

    # -- data folders ------------------------------------------------------

    @property
    def data(self) -> DataMap:
        """Names of data files or folders, as paths relative to ``data_path()``."""
        return DataMap(self)

    def data_path(self, key: str | None = None) -> pathlib.Path:
        """Return this object's data folder (created if missing), or one entry in it.

        The folder is ignored by git: recordings are referenced, never committed.
        """
        folder = self._project.path / layout.data_dir(self._kind, self.name)
        folder.mkdir(parents=True, exist_ok=True)
        if key is None:
            return folder
        return folder / self.data[key]

    # -- modules -----------------------------------------------------------

    @property
    def modules(self) -> ModuleMap:
        return ModuleMap(self._project, self._obj)

    def require_module(self, name=None, template=None, contents=None) -> Module:
        """Return module ``name``, creating it from ``contents`` or ``template`` if missing."""
        return _require_module(self._project, self._obj, name, template, contents, exist_ok=True)

    def create_module(self, name=None, template=None, contents=None) -> Module:
        """Create a module from ``contents`` or ``template``; KeyError if it exists."""
        return _require_module(self._project, self._obj, name, template, contents, exist_ok=False)

    def delete_module(self, name: str) -> None:
        _delete_module(self._project, self._obj, name)

    # -- messages ----------------------------------------------------------

    @property
    def messages(self) -> MessageMap:
        """Messages by id, ordered by their datetime."""
        return MessageMap(self)

    @messages.setter
    def messages(self, messages: Iterable[Mapping]) -> None:
        """Replace all messages by ``messages`` in one commit."""
        if isinstance(messages, Mapping) or not isinstance(messages, Iterable):
            raise InvalidTypeError("messages: expected a list of dicts with message/text, user and datetime")
        records = [self._message_record(m) for m in messages]
        folder = layout.messages_dir(self._kind, self.name)
        new: Changes = {}
        for record in records:
            path = layout.message_path(self._kind, self.name, _message_id(record))
            if path in new:
                raise AlreadyExistsError(f"messages: the message {record['text']!r} by {record['user']} is given twice")
            new[path] = _dump_message(record, self._obj)

        def build(snap: Snapshot) -> Changes:
            self._read_attributes(snap)
            changes: Changes = {path: None for path, _ in snap.walk(folder)}
            changes.update(new)
            return changes

        self._project._commit(self._obj, "set messages", build)

    def _message_record(self, message: Mapping) -> dict:
        if not isinstance(message, Mapping):
            raise InvalidTypeError(f"messages: expected dicts, got {type(message).__name__}")
        unknown = set(message) - {"message", "text", "user", "datetime"}
        if unknown:
            raise InvalidValueError(f"messages: unknown keys {sorted(unknown)}; use text (or message), user, datetime")
        text = message.get("text", message.get("message"))
        when = message.get("datetime")
        if isinstance(when, str):
            when = _as_datetime(when, "messages: datetime")
        return _new_message(text, message.get("user"), when, self._project)

    def create_message(self, text: str, user: str | None = None, datetime: dt.datetime | None = None) -> Message:
        """Add a message; two messages in the same second are both kept.

        Raises:
            AlreadyExistsError: the same text by the same user at the same time exists.
        """
        record = _new_message(text, user, datetime, self._project)
        message_id = _message_id(record)
        path = layout.message_path(self._kind, self.name, message_id)
        data = _dump_message(record, self._obj)

        def build(snap: Snapshot) -> Changes:
            self._read_attributes(snap)
            if snap.blob_id(path) is not None:
                raise AlreadyExistsError(
                    f"{layout.describe(self._obj)} has this message already ({message_id})"
                )
            return {path: data}

        self._project._commit((*self._obj, "message", message_id), "create", build)
        return Message(self, message_id)

    def delete_messages(self) -> None:
        """Delete every message of this object in one commit."""
        folder = layout.messages_dir(self._kind, self.name)
        self._project._commit(
            self._obj, "delete messages", lambda snap: {path: None for path, _ in snap.walk(folder)}
        )


class Action(_Attributed):
    """An action: a recording, surgery or analysis with attributes, modules and messages."""

    _kind = "action"

    @property
    def entities(self) -> PropertyList:
        return PropertyList(self, "entities")

    @entities.setter
    def entities(self, value: list[str]) -> None:
        self._set_list("entities", value)

    # expipe's getting-started document calls entities "subjects".
    subjects = entities


class Entity(_Attributed):
    """An entity: a subject of actions, such as a rat or a mouse."""

    _kind = "entity"


def _check_str(value: Any, key: str) -> None:
    if not isinstance(value, str):
        raise InvalidTypeError(f'{key}: expected "str", got "{type(value).__name__}"')


def _as_datetime(value: Any, what: str) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise CorruptFileError(f"{what} is {value!r}, not a datetime")


class DataMap(collections.abc.MutableMapping):
    """``action.data``: names of data entries; each change is a commit."""

    def __init__(self, owner: _Attributed):
        self._owner = owner

    def _data(self) -> dict:
        return dict(self._owner._attribute("data") or {})

    def __getitem__(self, key: str) -> str:
        data = self._data()
        if key not in data:
            raise NotFoundError(f"{layout.describe(self._owner._obj)} has no data entry {key!r}")
        return data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data())

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return repr(self._data())

    def __setitem__(self, key: str, value: str | os.PathLike[str]) -> None:
        _check_str(key, "data key")
        value = os.fspath(value)
        _check_str(value, f"data[{key!r}]")

        def apply(record: dict) -> None:
            record["data"] = {**(record.get("data") or {}), key: value}

        self._owner._change_attributes(apply, f"set data {key}")

    def __delitem__(self, key: str) -> None:
        def apply(record: dict) -> None:
            data = dict(record.get("data") or {})
            if key not in data:
                raise NotFoundError(f"{layout.describe(self._owner._obj)} has no data entry {key!r}")
            del data[key]
            record["data"] = data

        self._owner._change_attributes(apply, f"delete data {key}")


# ---------------------------------------------------------------------------
# Messages


def _new_message(text: Any, user: Any, when: Any, project: Project) -> dict:
    if not isinstance(text, str):
        raise InvalidTypeError(f"message text must be a str, not {type(text).__name__}")
    if user is None:
        user = project._identity().name
    if not isinstance(user, str):
        raise InvalidTypeError(f"message user must be a str, not {type(user).__name__}")
    if when is None:
        when = dt.datetime.now()
    if not isinstance(when, dt.datetime):
        raise InvalidTypeError(f"message datetime must be a datetime, not {type(when).__name__}")
    return {"text": text, "user": user, "datetime": when}


def _message_id(record: dict) -> str:
    """Name a message by its time, and by its content so same-second ones differ."""
    digest = hashlib.sha1(
        "\0".join((record["text"], record["user"], record["datetime"].isoformat())).encode("utf-8", "surrogatepass")
    ).hexdigest()[:8]
    return f"{record['datetime'].strftime(datetime_key_format)}-{digest}"


def _dump_message(record: dict, owner: tuple[str, ...]) -> bytes:
    return values.dumps(record, what=f"message of {layout.describe(owner)}").encode()


class MessageMap(_ReadMapping):
    """The messages of an action or entity, ordered by datetime."""

    def __init__(self, owner: _Attributed):
        self._owner = owner

    def _folder(self) -> str:
        return layout.messages_dir(self._owner._kind, self._owner.name)

    def _names(self) -> list[str]:
        project = self._owner._project
        snap = project._snap()
        folder = self._folder()
        found = []
        for filename in snap.listdir(folder):
            stem = layout.strip_suffix(filename)
            if stem:
                record = project._record(snap, f"{folder}/{filename}", f"message {stem}")
                when = record.get("datetime") if isinstance(record, dict) else None
                key = when.timestamp() if isinstance(when, dt.datetime) and when.tzinfo else None
                found.append((key if key is not None else _naive_key(when), stem))
        return [stem for _, stem in sorted(found)]

    def __contains__(self, message_id: object) -> bool:
        if not isinstance(message_id, str) or not message_id or layout._name_problem(message_id):
            return False
        path = f"{self._folder()}/{message_id}{layout.SUFFIX}"
        return self._owner._project._snap().blob_id(path) is not None

    def __getitem__(self, message_id: str) -> Message:
        if message_id not in self:
            raise NotFoundError(f"{layout.describe(self._owner._obj)} has no message {message_id!r}")
        return Message(self._owner, message_id)

    def to_list(self) -> list[dict]:
        return [self[m].contents for m in self]


def _naive_key(when: Any) -> float:
    if isinstance(when, dt.datetime):
        return when.replace(tzinfo=dt.timezone.utc).timestamp()
    return float("inf")


class Message:
    """A note by a user on an action or entity; each setter is a commit."""

    def __init__(self, owner: _Attributed, message_id: str):
        self._owner = owner
        self.id = self.name = message_id
        self._path = layout.message_path(owner._kind, owner.name, message_id)
        self._obj = (*owner._obj, "message", message_id)

    def __repr__(self) -> str:
        return f"<expipe_git Message {self.id!r} of {layout.describe(self._owner._obj)}>"

    def _read(self, snap: Snapshot | None = None) -> dict:
        project = self._owner._project
        record = project._record(snap or project._snap(), self._path, layout.describe(self._obj))
        if record is None:
            raise NotFoundError(f"{layout.describe(self._obj)} does not exist (it was deleted)")
        return record

    @property
    def contents(self) -> dict:
        return self._read()

    @property
    def text(self) -> str:
        return self._read()["text"]

    @text.setter
    def text(self, value: str) -> None:
        _check_str(value, "message text")
        self._set("text", value)

    @property
    def user(self) -> str:
        return self._read()["user"]

    @user.setter
    def user(self, value: str | None) -> None:
        if value is None:
            value = self._owner._project._identity().name
        _check_str(value, "message user")
        self._set("user", value)

    @property
    def datetime(self) -> dt.datetime:
        return self._read()["datetime"]

    @datetime.setter
    def datetime(self, value: dt.datetime) -> None:
        if not isinstance(value, dt.datetime):
            raise InvalidTypeError(f'message datetime: expected "datetime", got "{type(value).__name__}"')
        self._set("datetime", value)

    def _set(self, key: str, value: Any) -> None:
        def build(snap: Snapshot) -> Changes:
            record = self._read(snap)
            record[key] = value
            return {self._path: _dump_message(record, self._owner._obj)}

        self._owner._project._commit(self._obj, f"set {key}", build)


__all__ = [
    "Action",
    "Entity",
    "ExpipeError",
    "Message",
    "Module",
    "Project",
    "PropertyList",
    "Template",
    "create_project",
    "datetime_format",
    "datetime_key_format",
    "get_project",
    "require_project",
]
