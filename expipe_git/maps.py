"""What a project holds, as mappings: its actions, entities and templates by name, and its config.

Each map reads the latest commit on every access, so an old map sees what
another process wrote; each write is one commit through the project's session.
"""

from __future__ import annotations

import collections
import collections.abc
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import config as expipe_config
from . import display, layout, query, tables, values
from .errors import (
    InvalidTypeError,
    InvalidValueError,
    NotFoundError,
)
from .git import Changes, Snapshot
from .objects import Action, Entity
from .records import ReadMapping, Template

if TYPE_CHECKING:
    from .model import Project


class ProjectConfig(collections.abc.MutableMapping):
    """``project.config``: the project's ``expipe.toml`` over the user's expipe settings.

    Reads merge as expipe 0.6 merged: the user's settings
    (:data:`expipe_git.settings`, from ``~/.config/expipe/config.yaml``), then
    the project's named settings (``~/.config/expipe/<project>/<project>.yaml``),
    then the keys of ``expipe.toml``, which win; ``database_version`` is 2 (0.6's
    number for its folder layout) unless the project stores one. So
    ``project.config.get("username")`` finds the user's name.

    Writes go to ``expipe.toml``: each assignment or deletion is one commit,
    and :meth:`update` is one commit for all its keys. ``storage_format`` is
    expipe_git's and cannot be changed here.
    """

    PROTECTED = ("storage_format",)

    def __init__(self, project: Project):
        self._project = project

    @property
    def stored(self) -> dict:
        """The keys ``expipe.toml`` holds, without the user's settings."""
        project = self._project
        return project.session.record(project.session.snapshot(), layout.CONFIG_FILE, "project config") or {}

    def _merged(self) -> dict:
        stored = self.stored
        named = expipe_config.load_config_by_name(str(stored.get("project", self._project.path.name)))
        merged = expipe_config.merge_config(expipe_config.refresh_settings(), named, stored)
        merged.setdefault("database_version", 2)
        return merged

    def __getitem__(self, key: Any) -> Any:
        return self._merged()[key]

    def __iter__(self) -> Iterator:
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())

    def __repr__(self) -> str:
        return repr(self._merged())

    def copy(self) -> dict:
        """Return the merged config as a plain dict."""
        return self._merged()

    def __setitem__(self, key: str, value: Any) -> None:
        self._change({key: value}, f"set {key}")

    def update(self, other=(), /, **kwargs) -> None:
        """Set several keys in one commit."""
        items = dict(other, **kwargs)
        if items:
            self._change(items, "update " + ", ".join(map(str, items)))

    def __delitem__(self, key: str) -> None:
        self._check_key(key)
        if key not in self.stored:
            if key in self._merged():
                raise NotFoundError(
                    f"project config: {key!r} comes from your expipe settings "
                    f"({expipe_config.config_home()}), not the project; change it there"
                )
            raise NotFoundError(f"project config has no key {key!r}")

        def build(snap: Snapshot) -> Changes:
            record = self._project.session.record(snap, layout.CONFIG_FILE, "project config") or {}
            if key not in record:
                raise NotFoundError(f"project config has no key {key!r}")
            del record[key]
            return {layout.CONFIG_FILE: values.dumps(record, what="project config").encode()}

        self._project.session.commit(("project",), f"delete {key} from config", build)

    def _check_key(self, key: Any) -> None:
        if not isinstance(key, str):
            raise InvalidTypeError(f"project config keys are str, got {type(key).__name__} {key!r}")
        if key in self.PROTECTED:
            raise InvalidValueError(
                f"project config: {key!r} is expipe_git's record of the project's file layout "
                "and cannot be changed"
            )

    def _change(self, items: dict, operation: str) -> None:
        for key in items:
            self._check_key(key)
        values.dumps(items, what="project config")  # refuse what cannot be stored before anything

        def build(snap: Snapshot) -> Changes:
            record = self._project.session.record(snap, layout.CONFIG_FILE, "project config") or {}
            record.update(items)
            return {layout.CONFIG_FILE: values.dumps(record, what="project config").encode()}

        self._project.session.commit(("project",), f"{operation} in config", build)


class FileStatus(collections.namedtuple("FileStatus", "path state")):
    """A file that differs from the last commit: state is added, modified or deleted."""


class ObjectMap(ReadMapping):
    """``project.actions`` or ``project.entities``."""

    def __init__(self, project: Project, kind: str):
        self._project = project
        self._kind = kind

    def _names(self) -> list[str]:
        snap = self._project.session.snapshot()
        folder = layout.FOLDER_KINDS[self._kind]
        names: list[str] = []
        for shard, (_, _) in snap.listdir(folder).items():
            names.extend(snap.listdir(f"{folder}/{shard}"))
        return sorted(names)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if layout.name_problem(name) or not name:
            return False
        return self._project.session.snapshot().blob_id(layout.attributes_path(self._kind, name)) is not None

    def __getitem__(self, name: str) -> Action | Entity:
        layout.check_name(name, self._kind)
        if name not in self:
            raise NotFoundError(f"{self._kind} {name!r} does not exist in project {self._project.id!r}")
        return handle(self._project, self._kind, name)

    @property
    def object(self) -> Project:
        """The project (expipe 0.6's name for a map's owner)."""
        return self._project

    @property
    def contents(self) -> dict:
        """Every action's (or entity's) attributes by name."""
        return {name: self[name].attributes for name in self}

    def where(self, **criteria: Any) -> query.Selection:
        """Return the actions (or entities) that meet every criterion, by name, in name order.

        Criteria: ``tags`` (a str, or a list: has all), ``any_tags`` (a list:
        has at least one), ``type``, ``location``, ``users`` and, for actions,
        ``entities`` (a str or a list: has all), ``since`` and ``until``
        (on the object's ``datetime``; inclusive; a bare date as ``until``
        means through that day), and ``modules`` (a dict of
        ``"module.key.subkey"`` -> value; see docs/queries.md).

        Raises:
            TypeError: an unknown criterion, or a value of the wrong type.
            ValueError: a value that cannot be read, such as a date.
        """
        project = self._project
        return query.select(
            project.session.repository,
            project.session.snapshot(),
            self._kind,
            criteria,
            lambda name: handle(project, self._kind, name),
        )

    def to_dataframe(self, modules: list[str] | None = None) -> Any:
        """Return a pandas DataFrame, one row per object, indexed by name.

        ``modules``: module names whose keys become columns, e.g.
        ``electrophysiology.probe.depth [um]`` (see docs/queries.md).
        """
        return self.where().to_dataframe(modules)

    def _repr_html_(self) -> str:
        return self.where()._repr_html_()


class ActionMap(ObjectMap):
    """``project.actions`` (expipe 0.6's ``expipe.core.Actions``)."""

    def __init__(self, project: Project):
        super().__init__(project, "action")


class EntityMap(ObjectMap):
    """``project.entities`` (expipe 0.6's ``expipe.core.Entities``)."""

    def __init__(self, project: Project):
        super().__init__(project, "entity")


class TemplateMap(ReadMapping):
    """``project.templates``."""

    def __init__(self, project: Project):
        self._project = project

    def _names(self) -> list[str]:
        entries = self._project.session.snapshot().listdir("templates")
        return sorted(s for s in map(layout.strip_suffix, entries) if s)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name or layout.name_problem(name):
            return False
        return self._project.session.snapshot().blob_id(layout.template_path(name)) is not None

    def __getitem__(self, name: str) -> Template:
        layout.check_name(name, "template")
        if name not in self:
            raise NotFoundError(f"template {name!r} does not exist in project {self._project.id!r}")
        return Template(self._project, name)

    @property
    def object(self) -> Project:
        """The project (expipe 0.6's name for a map's owner)."""
        return self._project

    @property
    def contents(self) -> dict:
        """Every template's contents by name."""
        return {name: self[name].contents for name in self}

    def __setitem__(self, name: str, contents: Mapping) -> None:
        """Create template ``name``, or replace its contents, in one commit (as expipe 0.6)."""
        layout.check_name(name, "template")
        if not isinstance(contents, Mapping):
            raise InvalidTypeError(
                f"template {name!r}: contents must be a dict, got {type(contents).__name__}"
            )
        identifier = contents.get("identifier", name)
        if not isinstance(identifier, str):
            raise InvalidTypeError(f"template {name!r}: identifier must be a str")
        layout.check_name(identifier, "module")
        path = layout.template_path(name)
        data = values.dumps(dict(contents), what=f"template {name!r}").encode()
        operation = "replace" if name in self else "create"
        self._project.session.commit(("template", name), operation, lambda snap: {path: data})


class CommitLog(list):
    """The commits ``project.log()`` returns, newest first: a list, with a table and HTML."""

    def to_dataframe(self) -> Any:
        """Return one row per key-level change: commit, author, datetime, object, key, old, new."""
        tables.require_pandas()
        return tables.dataframe(tables.LOG_COLUMNS, tables.log_rows(self))

    def _repr_html_(self) -> str:
        return display.log_html(self)


def handle(project: Project, kind: str, name: str) -> Action | Entity:
    """Return the handle of action or entity ``name`` of ``project`` (whether it exists or not)."""
    return (Action if kind == "action" else Entity)(project, name)
