"""Messages of actions and entities: each a TOML file named by its time and content.

``action.messages`` (a :class:`MessageMap`) lists them in time order;
``create_message`` and :class:`Message`'s setters are one commit each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

from . import history, layout, values
from .errors import InvalidTypeError, InvalidValueError, NotFoundError
from .git import Changes, Snapshot
from .records import ReadMapping

if TYPE_CHECKING:
    from .history import Commit
    from .model import Project
    from .objects import Attributed


datetime_key_format = "%Y%m%dT%H%M%S"


def check_str(value: Any, key: str) -> None:
    """Refuse a value of ``key`` that is not a str."""
    if not isinstance(value, str):
        raise InvalidTypeError(f'{key}: expected "str", got "{type(value).__name__}"')


def new_message(text: Any, user: Any, when: Any, project: Project) -> dict:
    """Return the record of a new message; the user defaults to who commits, the time to now."""
    if not isinstance(text, str):
        raise InvalidTypeError(f"message text must be a str, not {type(text).__name__}")
    if user is None:
        user = project.session.identity().name
    if not isinstance(user, str):
        raise InvalidTypeError(f"message user must be a str, not {type(user).__name__}")
    if when is None:
        when = dt.datetime.now()
    if not isinstance(when, dt.datetime):
        raise InvalidTypeError(f"message datetime must be a datetime, not {type(when).__name__}")
    return {"text": text, "user": user, "datetime": when}


def message_id_of(record: dict) -> str:
    """Name a message by its time, and by its content so same-second ones differ."""
    digest = hashlib.sha1(
        "\0".join((record["text"], record["user"], record["datetime"].isoformat())).encode(
            "utf-8", "surrogatepass"
        )
    ).hexdigest()[:8]
    return f"{record['datetime'].strftime(datetime_key_format)}-{digest}"


def message_bytes(record: dict, owner: tuple[str, ...]) -> bytes:
    """Return the file contents of a message of ``owner``."""
    return values.dumps(record, what=f"message of {layout.describe(owner)}").encode()


class MessageMap(ReadMapping):
    """The messages of an action or entity, ordered by datetime."""

    def __init__(self, owner: Attributed):
        self._owner = owner

    def _folder(self) -> str:
        return layout.messages_dir(self._owner._kind, self._owner.name)

    def _names(self) -> list[str]:
        project = self._owner.project
        snap = project.session.snapshot()
        folder = self._folder()
        found = []
        for filename in snap.listdir(folder):
            stem = layout.strip_suffix(filename)
            if stem:
                record = project.session.record(snap, f"{folder}/{filename}", f"message {stem}")
                when = record.get("datetime") if isinstance(record, dict) else None
                key = when.timestamp() if isinstance(when, dt.datetime) and when.tzinfo else None
                found.append((key if key is not None else _naive_key(when), stem))
        return [stem for _, stem in sorted(found)]

    def __contains__(self, message_id: object) -> bool:
        if not isinstance(message_id, str) or not message_id or layout.name_problem(message_id):
            return False
        return bool(self._matches(message_id))

    def __getitem__(self, message_id: str) -> Message:
        found = self._matches(message_id) if isinstance(message_id, str) and message_id else []
        if len(found) > 1:
            raise NotFoundError(
                f"{layout.describe(self._owner._obj)} has {len(found)} messages in the second "
                f"{message_id!r} ({', '.join(found)}); name one by its id"
            )
        if not found:
            raise NotFoundError(f"{layout.describe(self._owner._obj)} has no message {message_id!r}")
        return Message(self._owner, found[0])

    def _matches(self, message_id: str) -> list[str]:
        """Return the ids ``message_id`` names: itself, or every message of an expipe 0.6 key's second.

        expipe 0.6 named a message by its time, ``datetime_key_format``
        (``20170601T214220``); ours add a hash (``20170601T214220-1a2b3c4d``),
        so an old key still finds the message of that second.
        """
        try:
            layout.check_name(message_id, "message")
        except (InvalidTypeError, InvalidValueError):
            return []
        snap = self._owner.project.session.snapshot()
        if snap.blob_id(f"{self._folder()}/{message_id}{layout.SUFFIX}") is not None:
            return [message_id]
        if not _is_datetime_key(message_id):
            return []
        stems = (layout.strip_suffix(name) for name in snap.listdir(self._folder()))
        return sorted(s for s in stems if s and s.startswith(message_id + "-"))

    @property
    def object(self) -> Attributed:
        """The action or entity the messages belong to (expipe 0.6's name)."""
        return self._owner

    @property
    def contents(self) -> dict:
        """Every message's contents by id."""
        return {message_id: self[message_id].contents for message_id in self}

    def to_list(self) -> list[dict]:
        return [self[m].contents for m in self]


def _is_datetime_key(text: str) -> bool:
    try:
        dt.datetime.strptime(text, datetime_key_format)
    except ValueError:
        return False
    return len(text) == 15


def _naive_key(when: Any) -> float:
    if isinstance(when, dt.datetime):
        return when.replace(tzinfo=dt.timezone.utc).timestamp()
    return float("inf")


class Message:
    """A note by a user on an action or entity; each setter is a commit."""

    def __init__(self, owner: Attributed, message_id: str):
        self._owner = owner
        self.id = self.name = message_id
        self._path = layout.message_path(owner._kind, owner.name, message_id)
        self._obj = (*owner._obj, "message", message_id)

    def __repr__(self) -> str:
        return f"<expipe_git Message {self.id!r} of {layout.describe(self._owner._obj)}>"

    def _read(self, snap: Snapshot | None = None) -> dict:
        return self._owner.project.session.existing(snap, self._path, self._obj)

    @property
    def contents(self) -> dict:
        return self._read()

    @property
    def text(self) -> str:
        return self._read()["text"]

    @text.setter
    def text(self, value: str) -> None:
        check_str(value, "message text")
        self._set("text", value)

    @property
    def user(self) -> str:
        return self._read()["user"]

    @user.setter
    def user(self, value: str | None) -> None:
        if value is None:
            value = self._owner.project.session.identity().name
        check_str(value, "message user")
        self._set("user", value)

    @property
    def datetime(self) -> dt.datetime:
        return self._read()["datetime"]

    @datetime.setter
    def datetime(self, value: dt.datetime) -> None:
        if not isinstance(value, dt.datetime):
            raise InvalidTypeError(f'message datetime: expected "datetime", got "{type(value).__name__}"')
        self._set("datetime", value)

    def blame(self) -> dict[tuple, Commit]:
        """Return each key of the message (text, user, datetime) -> the commit that last set it."""
        return history.blame(self._owner.project, self._obj)

    def history(self) -> list[Commit]:
        """Return the commits that changed this message, newest first."""
        return history.log(self._owner.project, path=self)

    def _set(self, key: str, value: Any) -> None:
        def build(snap: Snapshot) -> Changes:
            record = self._read(snap)
            record[key] = value
            return {self._path: message_bytes(record, self._owner._obj)}

        self._owner.project.session.commit(self._obj, f"set {key}", build)
