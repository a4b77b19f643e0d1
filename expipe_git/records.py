"""Modules and templates: TOML records whose keys write through to git.

``module["a"]["b"] = x`` reads ``module["a"]`` as a view of the nested
mapping; the assignment re-reads the record at the latest commit, sets the key
and commits the file, so one key change is one commit and an old handle
always sees the latest committed value.
"""

from __future__ import annotations

import collections
import collections.abc
import pathlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from . import display, history, layout, values
from .errors import AlreadyExistsError, InvalidTypeError, InvalidValueError, NotFoundError
from .git import Changes, Snapshot

if TYPE_CHECKING:
    from .history import Commit
    from .model import Project

# Keys of a template that describe the template rather than its fields.
TEMPLATE_META = ("identifier", "registered")


class Backend06:
    """What expipe 0.6 scripts reach through the private ``_backend`` of an object.

    A compatibility object, and only that: ``path`` (the object's folder, or
    a module's or template's file) and, for actions and entities,
    ``attributes`` (``get(name=None)``, ``set(name, value)``); for the
    project, ``config``. expipe 0.6's
    CINPLA plugin calls ``action._backend.path`` and
    ``entity._backend.attributes.set("species", ...)``. New code uses
    ``action.path`` and the attribute properties.
    """

    def __init__(self, path: pathlib.Path, *, attributes: Any = None, config: Any = None):
        self.path = path
        if attributes is not None:
            self.attributes = attributes
        if config is not None:
            self.config = config

    def __repr__(self) -> str:
        return f"<expipe_git Backend06 (expipe 0.6 compatibility) at {str(self.path)!r}>"


class ReadMapping(collections.abc.Mapping):
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


class ModuleMap(ReadMapping):
    """The modules of a project, action or entity."""

    def __init__(self, project: Project, owner: tuple[str, ...]):
        self._project = project
        self._owner = owner

    def _names(self) -> list[str]:
        entries = self._project.session.snapshot().listdir(layout.modules_dir(self._owner))
        return sorted(s for s in map(layout.strip_suffix, entries) if s)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or layout.name_problem(name):
            return False
        path = layout.module_path(self._owner, name)
        return self._project.session.snapshot().blob_id(path) is not None

    def __getitem__(self, name: str) -> Module:
        layout.check_name(name, "module")
        if name not in self:
            raise NotFoundError(f"module {name!r} does not exist in {_owner_text(self._owner)}")
        return Module(self._project, self._owner, name)

    @property
    def object(self) -> Any:
        """The project, action or entity the modules belong to (expipe 0.6's name)."""
        if self._owner == ("project",):
            return self._project
        kind, name = self._owner
        return getattr(self._project, layout.FOLDER_KINDS[kind])[name]

    @property
    def contents(self) -> dict:
        """Every module's contents by name."""
        return {name: self[name].contents for name in self}

    def __setitem__(self, name: str, contents: Any) -> None:
        """Create module ``name`` from ``contents``, or replace its contents, in one commit.

        ``contents`` is a dict, a list or a numpy array, as for ``create_module``.
        """
        layout.check_name(name, "module")
        if not isinstance(contents, (dict, list, np.ndarray, Mapping)):
            raise InvalidTypeError(
                f'module {name!r}: contents expected "dict", "list" or numpy array, '
                f'got "{type(contents).__name__}"'
            )
        if isinstance(contents, (_Record, _NodeView)):
            contents = contents.contents
        elif isinstance(contents, Mapping) and not isinstance(contents, dict):
            contents = dict(contents)
        obj = _module_obj(self._owner, name)
        path = layout.module_path(self._owner, name)
        data = values.dumps(contents, what=layout.describe(obj)).encode()
        owner = self._owner

        def build(snap: Snapshot) -> Changes:
            if owner != ("project",) and snap.blob_id(layout.attributes_path(*owner)) is None:
                raise NotFoundError(f"{layout.describe(owner)} does not exist")
            return {path: data}

        operation = "replace" if name in self else "create"
        self._project.session.commit(obj, operation, build)


def _owner_text(owner: tuple[str, ...]) -> str:
    return "the project" if owner == ("project",) else layout.describe(owner)


def _module_obj(owner: tuple[str, ...], name: str) -> tuple[str, ...]:
    return ("module", name) if owner == ("project",) else (*owner, "module", name)


def _from_template(project, owner, name, template, contents, exist_ok) -> tuple[str, Any]:
    """Return the module's name and contents taken from ``template``."""
    if contents is not None:
        raise InvalidValueError("give a module either a template or contents, not both")
    layout.check_name(template, "template")
    if template in project.templates:
        record = project.templates[template].contents
        identifier = record.get("identifier") or template
        contents = {k: v for k, v in record.items() if k not in TEMPLATE_META}
    elif exist_ok and name is not None:
        contents = {}
        if name not in ModuleMap(project, owner):
            warnings.warn(
                f"template {template!r} does not exist in project {project.id!r}, so module "
                f"{name!r} starts empty; project.require_template({template!r}, {{...}}) "
                "makes a template that fills modules in",
                stacklevel=4,
            )
    else:
        project.templates[template]  # raises NotFoundError naming the template
    return (identifier if name is None else name), contents


def require_module(project, owner, name, template, contents, exist_ok) -> Module:
    """Create (or with ``exist_ok``, get) a module from ``contents`` or ``template``.

    With ``exist_ok`` an existing module is returned as it is, except that
    keys of ``contents`` it lacks are added (one commit; values it has are
    never changed). A missing template then gives an empty module and a
    warning instead of an error, so expipe's getting-started document, which
    asks for a ``tracking`` template it never made, runs.
    """
    if template is not None:
        name, contents = _from_template(project, owner, name, template, contents, exist_ok)
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
    if exist_ok and name in ModuleMap(project, owner):
        module = Module(project, owner, name)
        if isinstance(contents, Mapping) and contents:
            module._add_missing(contents)
        return module
    data = values.dumps(contents, what=layout.describe(obj)).encode()

    def build(snap: Snapshot) -> Changes:
        if owner != ("project",) and snap.blob_id(layout.attributes_path(*owner)) is None:
            raise NotFoundError(f"{layout.describe(owner)} does not exist")
        if snap.blob_id(path) is not None:
            if exist_ok:
                return {}
            raise AlreadyExistsError(f"module {name!r} already exists in {_owner_text(owner)}")
        twin = layout.case_twin(snap.listdir(layout.modules_dir(owner)), path)
        if twin is not None:
            raise AlreadyExistsError(
                f"module {layout.strip_suffix(twin)!r} exists in {_owner_text(owner)}: names that differ "
                f"only in case are one file on Windows and macOS; use that module or another name"
            )
        return {path: data}

    project.session.commit(obj, "create", build)
    return Module(project, owner, name)


def delete_module(project: Project, owner: tuple[str, ...], name: str) -> None:
    layout.check_name(name, "module")
    path = layout.module_path(owner, name)

    def build(snap: Snapshot) -> Changes:
        if snap.blob_id(path) is None:
            raise NotFoundError(f"module {name!r} does not exist in {_owner_text(owner)}")
        return {path: None}

    project.session.commit(_module_obj(owner, name), "delete", build)


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

    @property
    def file(self) -> str:
        """The record's file in the project folder, as `git log -- FILE` and `expipe-git log FILE` take it."""
        return self._path

    @property
    def _backend(self) -> Backend06:
        """For expipe 0.6 scripts that reach into 0.6's private backend: ``path``, the record's file."""
        return Backend06(self._project.path / self._path)

    def _what(self) -> str:
        return layout.describe(self._obj)

    def _read(self, snap: Snapshot | None = None) -> Any:
        return self._project.session.existing(snap, self._path, self._obj)

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

    def _repr_html_(self) -> str:
        return display.record_html(self._what(), self.contents)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._update_at((), lambda node: node.__setitem__(key, value), f"set {layout.key_text((key,))}")

    def __delitem__(self, key: Any) -> None:
        def remove(node: dict) -> None:
            if key not in node:
                raise KeyError(key)
            del node[key]

        self._update_at((), remove, f"delete {layout.key_text((key,))}")

    def _add_missing(self, contents: Mapping) -> None:
        """Add the keys of ``contents`` this record lacks, in one commit (or none)."""
        current = self._read()
        if not isinstance(current, dict):
            return
        missing = [key for key in contents if key not in current]
        if not missing:
            return

        def add(node: dict) -> None:
            for key, value in contents.items():
                node.setdefault(key, value)

        self._update_at((), add, "add " + ", ".join(map(str, missing)))

    def update(self, other=(), /, **kwargs) -> None:
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
                raise InvalidTypeError(f"{what}: {layout.key_text(keys)} is not a mapping")
            change(node)
            self._check(record)
            return {self._path: values.dumps(record, what=what).encode()}

        self._project.session.commit(self._obj, operation, build)

    def _check(self, record: Any) -> None:
        """Hook for subclasses to refuse records that break their rules."""

    def history(self) -> list[Commit]:
        """Return the commits that changed this record, newest first."""
        return history.log(self._project, path=self)

    def blame(self) -> dict[tuple, Commit]:
        """Return each leaf key path -> the commit that last set it."""
        return history.blame(self._project, self._obj)


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

    @property
    def contents(self) -> dict:
        """The nested mapping's stored value (a plain dict), as expipe 0.6's ``.contents``."""
        return self._node()

    def __setitem__(self, key: Any, value: Any) -> None:
        keys = (*self._keys, key)
        self._record._update_at(
            self._keys, lambda node: node.__setitem__(key, value), f"set {layout.key_text(keys)}"
        )

    def __delitem__(self, key: Any) -> None:
        def remove(node: dict) -> None:
            if key not in node:
                raise KeyError(key)
            del node[key]

        self._record._update_at(self._keys, remove, f"delete {layout.key_text((*self._keys, key))}")


def _wrap(record: _Record, keys: tuple, value: Any) -> Any:
    return _NodeView(record, keys) if isinstance(value, dict) else value


def _equal(a: Any, b: Any) -> bool:
    try:
        result = a == b
        if isinstance(result, np.ndarray):
            return bool(result.all())
        return bool(result)
    except ValueError:
        return False
