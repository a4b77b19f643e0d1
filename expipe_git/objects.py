"""Actions and entities: attributes, list properties, data entries, messages.

Every setter re-reads the attributes file at the latest commit, changes one
key and commits, so ``action.tags.append("x")`` from two processes at once
keeps both tags.
"""

from __future__ import annotations

import collections.abc
import datetime as dt
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import dateutil.parser

from . import display, history, layout, values
from .errors import AlreadyExistsError, CorruptFileError, InvalidTypeError, InvalidValueError, NotFoundError
from .git import Changes, Snapshot
from .messages import Message, MessageMap, check_str, message_bytes, message_id_of, new_message
from .messages import datetime_key_format as datetime_key_format
from .records import Backend06, Module, ModuleMap, delete_module, require_module

if TYPE_CHECKING:
    from .history import Commit
    from .model import Project

datetime_format = "%Y-%m-%dT%H:%M:%S"
LIST_ATTRIBUTES = ("users", "tags", "entities")


class PropertyList(collections.abc.Sequence):
    """``users``, ``tags`` or ``entities``: a list with set semantics.

    Items are unique str, kept in insertion order. ``append``, ``extend`` and
    ``remove`` apply to the latest commit, so two processes appending to the
    same list both land.
    """

    # expipe 0.6's PropertyList attributes: items are str, and unique.
    dtype = str
    unique = True

    def __init__(self, owner: Attributed, key: str):
        self._owner = owner
        self.name = key
        self._seen: tuple[bytes | None, list[str]] | None = None

    def dtype_manager(self, value: Any, iter_value: bool = False, retrieve: bool = False) -> Any:
        """Return ``value`` if it is a str (or, with ``iter_value``, a list of str); else TypeError."""
        _check_str_list(value if iter_value else [value], self.name)
        return value

    @property
    def data(self) -> list[str]:
        # ``list(action.tags)`` asks for the length and then the items: read
        # the record once per commit, not once per question.
        snap = self._owner._project.session.snapshot()
        if self._seen is None or self._seen[0] != snap.commit:
            items = self._owner._read_attributes(snap).get(self.name)
            self._seen = (snap.commit, list(items or []))
        return list(self._seen[1])

    def __getitem__(self, index):
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
        self._owner._update_list(
            self.name, lambda items: items + [v for v in new if v not in items], f"add to {self.name}"
        )

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


class Attributed:
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

    @property
    def path(self) -> pathlib.Path:
        """This object's folder: ``action.path / "data"`` is its data folder.

        Folders are sharded (``actions/<shard>/<name>``; docs/storage-format.md),
        so build paths from here, not from ``project.path / "actions" / name``.
        """
        return self._project.path / layout.object_dir(self._kind, self.name)

    @property
    def _backend(self) -> Backend06:
        """For expipe 0.6 scripts that reach into 0.6's private backend; see :class:`Backend06`."""
        return Backend06(self.path, attributes=Attributes06(self))

    def __repr__(self) -> str:
        return f"<expipe_git {type(self).__name__} {self.id!r}>"

    def _repr_html_(self) -> str:
        return display.object_html(self)

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and other._obj == self._obj
            and other._project.path == self._project.path
        )

    def __hash__(self) -> int:
        return hash((self._obj, str(self._project.path)))

    # -- attributes --------------------------------------------------------

    def _read_attributes(self, snap: Snapshot | None) -> dict:
        return self._project.session.existing(snap, self._attributes_path, self._obj)

    @property
    def attributes(self) -> dict:
        """Everything stored in this object's attributes file."""
        return self._read_attributes(None)

    def _attribute(self, key: str) -> Any:
        return self.attributes.get(key)

    def _change_attributes(self, change: Callable[[dict], None], operation: str) -> None:
        what = layout.describe(self._obj)

        def build(snap: Snapshot) -> Changes:
            record = self._read_attributes(snap)
            change(record)
            return {self._attributes_path: values.dumps(record, what=what).encode()}

        self._project.session.commit(self._obj, operation, build)

    def _set_attribute(self, key: str, value: Any) -> None:
        self._change_attributes(lambda record: record.__setitem__(key, value), f"set {key}")

    def _update_list(self, key: str, change: Callable[[list[str]], list[str]], operation: str) -> None:
        def apply(record: dict) -> None:
            current = list(record.get(key) or [])
            new = change(current)
            if new != current or key in record:
                record[key] = new

        self._change_attributes(apply, operation)

    def _set_list(self, key: str, items: Any) -> None:
        if not isinstance(items, (list, tuple, PropertyList)):
            raise InvalidTypeError(f'{key}: expected "list", got "{type(items).__name__}"')
        new = _check_str_list(items, key)
        # A missing list reads as []; setting [] then is no change, and no commit.
        self._update_list(key, lambda current: new, f"set {key}")

    @property
    def type(self) -> str | None:
        return self._attribute("type")

    @type.setter
    def type(self, value: str) -> None:
        check_str(value, "type")
        self._set_attribute("type", value)

    @property
    def location(self) -> str | None:
        return self._attribute("location")

    @location.setter
    def location(self, value: str) -> None:
        check_str(value, "location")
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
        return require_module(self._project, self._obj, name, template, contents, exist_ok=True)

    def create_module(self, name=None, template=None, contents=None) -> Module:
        """Create a module from ``contents`` or ``template``; KeyError if it exists."""
        return require_module(self._project, self._obj, name, template, contents, exist_ok=False)

    def delete_module(self, name: str) -> None:
        delete_module(self._project, self._obj, name)

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
            path = layout.message_path(self._kind, self.name, message_id_of(record))
            if path in new:
                raise AlreadyExistsError(
                    f"messages: the message {record['text']!r} by {record['user']} is given twice"
                )
            new[path] = message_bytes(record, self._obj)

        def build(snap: Snapshot) -> Changes:
            self._read_attributes(snap)
            changes: Changes = {path: None for path, _ in snap.walk(folder)}
            changes.update(new)
            return changes

        self._project.session.commit(self._obj, "set messages", build)

    def _message_record(self, message: Mapping) -> dict:
        if not isinstance(message, Mapping):
            raise InvalidTypeError(f"messages: expected dicts, got {type(message).__name__}")
        unknown = set(message) - {"message", "text", "user", "datetime"}
        if unknown:
            raise InvalidValueError(
                f"messages: unknown keys {sorted(unknown)}; use text (or message), user, datetime"
            )
        text = message.get("text", message.get("message"))
        when = message.get("datetime")
        if isinstance(when, str):
            when = _as_datetime(when, "messages: datetime", InvalidValueError)
        return new_message(text, message.get("user"), when, self._project)

    def create_message(
        self, text: str, user: str | None = None, datetime: dt.datetime | None = None
    ) -> Message:
        """Add a message; two messages in the same second are both kept.

        Raises:
            AlreadyExistsError: the same text by the same user at the same time exists.
        """
        record = new_message(text, user, datetime, self._project)
        message_id = message_id_of(record)
        path = layout.message_path(self._kind, self.name, message_id)
        data = message_bytes(record, self._obj)

        def build(snap: Snapshot) -> Changes:
            self._read_attributes(snap)
            if snap.blob_id(path) is not None:
                raise AlreadyExistsError(
                    f"{layout.describe(self._obj)} has this message already ({message_id})"
                )
            return {path: data}

        self._project.session.commit((*self._obj, "message", message_id), "create", build)
        return Message(self, message_id)

    def history(self) -> list[Commit]:
        """Return the commits that changed this object (its attributes, modules and messages)."""
        return history.log(self._project, path=self)

    def blame(self) -> dict[tuple, Commit]:
        """Return each leaf key of the attributes -> the commit that last set it."""
        return history.blame(self._project, self._obj)

    def delete_messages(self) -> None:
        """Delete every message of this object in one commit."""
        folder = layout.messages_dir(self._kind, self.name)
        self._project.session.commit(
            self._obj, "delete messages", lambda snap: {path: None for path, _ in snap.walk(folder)}
        )


class Action(Attributed):
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


class Entity(Attributed):
    """An entity: a subject of actions, such as a rat or a mouse."""

    _kind = "entity"


def _as_datetime(value: Any, what: str, error: type[Exception] = CorruptFileError) -> dt.datetime | None:
    """Return a datetime; text (expipe stored '2020-12-18T19:59:03') is parsed."""
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dateutil.parser.isoparse(value)
        except ValueError:
            pass
    raise error(f"{what} is {value!r}, not a datetime (ISO 8601 text such as 2020-12-18T19:59:03 works)")


# Also what committing a hand edit checks (checks.py), so no committed file breaks a read.
stored_datetime = _as_datetime


class DataMap(collections.abc.MutableMapping):
    """``action.data``: names of data entries; each change is a commit."""

    def __init__(self, owner: Attributed):
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

    @property
    def contents(self) -> dict:
        """Every data entry, as a plain dict (expipe 0.6's ``action.data.contents``)."""
        return self._data()

    def __setitem__(self, key: str, value: str | os.PathLike[str]) -> None:
        check_str(key, "data key")
        value = os.fspath(value)
        check_str(value, f"data[{key!r}]")

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


# ---------------------------------------------------------------------------
# expipe 0.6's private backend, for the scripts that reached into it (see records.Backend06)


class Attributes06:
    """``obj._backend.attributes`` of expipe 0.6: read or set one attribute; each set is one commit."""

    def __init__(self, owner: Attributed):
        self._owner = owner

    def get(self, name: str | None = None) -> Any:
        """Return attribute ``name`` (None if unset), or every attribute when ``name`` is None."""
        attributes = self._owner.attributes
        return attributes if name is None else attributes.get(name)

    def set(self, name: str, value: Any) -> None:
        """Set attribute ``name`` in one commit (``users``, ``tags``, ``entities``: lists of str)."""
        check_str(name, "attribute name")
        if name in LIST_ATTRIBUTES:
            self._owner._set_list(name, value)
        else:
            self._owner._set_attribute(name, value)
