"""Where a remote is and how to reach it: URLs, credentials, the remotes in ``.git/config``.

A URL is split into what may be shown and stored (:func:`public_url`) and
what may not (user name, password); a URL whose secret could not be kept out
of ``.git/config`` is refused without being quoted. Passwords given in a URL
are kept in ``.git/expipe-git/credentials`` (git's credential-store format).
:mod:`expipe_git.remote` moves objects and refs with what this module finds.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from .errors import (
    AlreadyExistsError,
    InvalidValueError,
    NotFoundError,
)
from .git import Repository, transport

if TYPE_CHECKING:
    pass


USERNAME_ENV = "EXPIPE_GIT_USERNAME"
PASSWORD_ENV = "EXPIPE_GIT_PASSWORD"
CREDENTIALS_FILE = "credentials"  # in .git/expipe-git/
_REMOTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

# ---------------------------------------------------------------------------
# URLs and credentials


@dataclass(frozen=True)
class Location:
    """Where a remote is, split into what may be shown and what may not."""

    kind: str  # "local", "git", "http", "ssh"
    public: str  # the URL without credentials: stored, shown
    username: str | None = None
    password: str | None = None

    def secrets(self) -> list[str]:
        found = [self.password] if self.password else []
        if self.kind == "http" and self.username and not self.password:
            found.append(self.username)  # a token given as the user name
        return found


def parse_location(url: str) -> Location:
    """Split ``url`` into its kind, its public form and its credentials.

    No error quotes the URL: a password that does not parse as one (a ``/``,
    ``?`` or ``#`` in it not percent-encoded) would be quoted with it.

    Raises:
        InvalidValueError: the URL is empty, of a kind we cannot reach, or
            may hold a secret we could not keep out of ``.git/config``.
    """
    if not isinstance(url, (str, os.PathLike)) or not os.fspath(url):
        raise InvalidValueError("a remote needs a URL or path, e.g. /srv/lab.git or https://host/lab.git")
    url = os.fspath(url)
    if "://" in url:
        scheme = url.partition("://")[0].lower()
        kind = {"http": "http", "https": "http", "git": "git", "ssh": "ssh", "git+ssh": "ssh"}.get(scheme)
        if scheme == "file":
            return Location("local", os.path.abspath(unquote(urlsplit(url).path)))
        if kind is None:
            shown = repr(scheme) if re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) else "of this URL"
            raise InvalidValueError(
                f"cannot use a remote of scheme {shown}; use a path, file://, git://, http(s):// or ssh://"
            )
        parts = _split_url(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if kind == "ssh" and password is not None:
            raise InvalidValueError("an ssh remote cannot carry a password; use an ssh key")
        if kind == "ssh" and username:
            netloc = f"{quote(username, safe='')}@{netloc}"
        public = urlunsplit((scheme, netloc, parts.path, "", ""))
        return Location(kind, public, username, password)
    if _is_scp_style(url):
        if _SCP_WITH_PASSWORD.fullmatch(url):
            raise InvalidValueError(
                "an ssh remote cannot carry a password (user:password@host:path); use an ssh key"
            )
        user = url.partition(":")[0].rpartition("@")[0]
        return Location("ssh", url, user or None)
    return Location("local", os.path.abspath(url))


# user:password@host:path, the password holding anything (an "@" or ":" too).
_SCP_WITH_PASSWORD = re.compile(r"[^@/:]+:.*@(?:[^@/:\[\]]+|\[[^\]]*\]):.*", re.DOTALL)


def _split_url(url: str) -> SplitResult:
    """``urlsplit`` for a remote, refusing what would leave part of a password in the URL shown."""
    rest = url.partition("://")[2]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    after = rest[len(authority) :]
    if "@" in after:
        raise InvalidValueError(
            "a remote URL has an '@' after its host name: a password (or token) holding '/', '?' or '#' "
            "must be percent-encoded (%2F, %3F, %23), and an '@' in a path written %40; "
            "or leave the password out of the URL and set EXPIPE_GIT_PASSWORD"
        )
    if "?" in after.partition("#")[0]:
        raise InvalidValueError(
            "a remote URL cannot carry a query ('?...'), which often holds a token: give a token as the "
            "password (https://USER:TOKEN@host/path), or set EXPIPE_GIT_USERNAME and EXPIPE_GIT_PASSWORD"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is no number
    except ValueError:
        raise InvalidValueError(
            "a remote URL's host part does not parse (a port that is no number, or a password holding "
            "'/', '?' or '#' not percent-encoded as %2F, %3F, %23)"
        ) from None
    return parts


def _is_scp_style(url: str) -> bool:
    """``host:path`` or ``user@host:path``, as git reads it: a colon before any slash."""
    colon = url.find(":")
    slash = url.find("/")
    return colon > 0 and (slash < 0 or colon < slash) and not os.path.exists(url)


def public_url(url: str) -> str:
    """Return ``url`` without a user name or password (http, git) or password (ssh)."""
    return parse_location(url).public


def _shown(url: str) -> str:
    """A URL set by hand with git may be of a kind we cannot use: still show it without secrets."""
    try:
        return public_url(url)
    except InvalidValueError:
        scheme, found, rest = url.partition("://")
        if not found:
            return "(a URL that cannot be used, not shown: it may hold a password)"
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if "@" in rest[len(authority) :]:
            return f"{scheme}://(not shown: it may hold a password)"
        host = authority.rpartition("@")[2]
        path = re.split(r"[?#]", rest[len(authority) :], maxsplit=1)[0]
        return f"{scheme}://{host}{path}"


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return text


def _credential_files(store: Repository) -> list[str]:
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files = [os.path.join(store.state_dir, CREDENTIALS_FILE)]
    helpers = transport.config_values(store, (b"credential",), b"helper")
    for helper in helpers:
        words = shlex.split(helper.decode("utf-8", "replace"))
        if words and words[0] == "store":
            named = [w.split("=", 1)[1] for w in words[1:] if w.startswith("--file=")]
            files.append(os.path.expanduser(named[0]) if named else os.path.join(home, ".git-credentials"))
    files += [os.path.join(home, ".git-credentials"), os.path.join(xdg, "git", "credentials")]
    return list(dict.fromkeys(files))


def _stored_credentials(store: Repository, public: str) -> tuple[str, str] | None:
    """Return (user, password) for ``public`` from a credential-store file."""
    wanted = urlsplit(public)
    for path in _credential_files(store):
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            entry = urlsplit(line.strip())
            if (
                entry.scheme == wanted.scheme
                and entry.hostname == wanted.hostname
                and entry.port == wanted.port
                and entry.username
                and (not entry.path.strip("/") or entry.path.strip("/") == wanted.path.strip("/"))
            ):
                return unquote(entry.username), unquote(entry.password or "")
    return None


def with_credentials(store: Repository | None, location: Location) -> Location:
    """Fill in the user name and password of an http(s) remote."""
    if location.kind != "http" or location.password is not None:
        return location
    user = location.username or os.environ.get(USERNAME_ENV)
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return Location(location.kind, location.public, user or "", password)
    if store is not None:
        found = _stored_credentials(store, location.public)
        if found is not None:
            return Location(location.kind, location.public, *found)
    return location


def _save_credentials(store: Repository, location: Location, config: transport.Config) -> None:
    """Keep a URL's credentials out of .git/config: in a file only we read (0600).

    ``config`` (the caller writes it) gets that file named as this host's
    ``credential.helper = store --file=…`` (a path, no secret), so stock git
    in the project uses the same credentials through its own store helper.
    """
    if location.kind != "http" or not (location.username or location.password):
        return
    parts = urlsplit(location.public)
    user = quote(location.username or "", safe="")
    password = quote(location.password or "", safe="")
    line = urlunsplit((parts.scheme, f"{user}:{password}@{parts.netloc}", "", "", ""))
    path = os.path.join(store.state_dir, CREDENTIALS_FILE)
    os.makedirs(store.state_dir, exist_ok=True)
    try:
        with open(path, encoding="utf-8") as f:
            kept = [x for x in f.read().splitlines() if urlsplit(x).netloc.split("@")[-1] != parts.netloc]
    except FileNotFoundError:
        kept = []
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join([*kept, line]) + "\n")
    os.replace(tmp, path)
    host = urlunsplit((parts.scheme, parts.netloc, "", "", "")).encode()
    helper = f"store --file={shlex.quote(os.path.abspath(path))}"
    config.set((b"credential", host), b"helper", helper.encode())


# ---------------------------------------------------------------------------
# Remotes in .git/config


def check_remote_name(name: object) -> str:
    if (
        not isinstance(name, str)
        or not _REMOTE_NAME.fullmatch(name)
        or name.endswith(".lock")
        or ".." in name
    ):
        raise InvalidValueError(
            f"remote name {name!r} is not allowed; use letters, digits, '.', '_' or '-' (e.g. 'origin')"
        )
    return name


def remotes(store: Repository) -> dict[str, str]:
    """Return remote name -> URL (as stored: without credentials)."""
    config = transport.config(store)
    found = {}
    for section in config.sections():
        if len(section) == 2 and section[0] == b"remote":
            with contextlib.suppress(KeyError):
                url = config.get(section, b"url").decode("utf-8", "replace")
                found[section[1].decode("utf-8", "replace")] = _shown(url)
    return dict(sorted(found.items()))


def add_remote(store: Repository, name: str, url: str) -> str:
    """Record remote ``name``; return its URL as stored (without credentials).

    Raises:
        AlreadyExistsError: a remote of that name exists.
        InvalidValueError: the name or the URL cannot be used.
    """
    check_remote_name(name)
    location = parse_location(url)
    config = transport.config(store)
    section = (b"remote", name.encode())
    if config.has_section(section):
        raise AlreadyExistsError(
            f"remote {name!r} exists already ({remotes(store).get(name)}); remove it first "
            f"(project.remove_remote({name!r}) or 'expipe-git remote remove {name}')"
        )
    _save_credentials(store, location, config)
    config.set(section, b"url", location.public.encode())
    config.set(section, b"fetch", f"+refs/heads/*:refs/remotes/{name}/*".encode())
    config.write_to_path()
    return location.public


def remove_remote(store: Repository, name: str) -> None:
    """Forget remote ``name`` and its remote-tracking refs.

    Raises:
        NotFoundError: there is no remote of that name.
    """
    check_remote_name(name)
    config = transport.config(store)
    section = (b"remote", name.encode())
    if not config.has_section(section):
        raise NotFoundError(_no_remote(store, name))
    del config[section]
    config.write_to_path()
    transport.remove_refs(store, f"refs/remotes/{name}/".encode())


def _no_remote(store: Repository, name: str) -> str:
    known = ", ".join(remotes(store)) or "none"
    return (
        f"the project has no remote {name!r} (remotes: {known}); add one with "
        f"project.add_remote({name!r}, URL) or 'expipe-git remote add {name} URL'"
    )


def location_of(store: Repository, name: str) -> Location:
    check_remote_name(name)
    config = transport.config(store)
    try:
        url = config.get((b"remote", name.encode()), b"url").decode("utf-8")
    except KeyError:
        raise NotFoundError(_no_remote(store, name)) from None
    return with_credentials(store, parse_location(url))


def tracking_ref(name: str) -> bytes:
    return f"refs/remotes/{name}/main".encode()


# ---------------------------------------------------------------------------
# Talking to a server


def ssh_command() -> str:
    """The ssh to run: ``GIT_SSH_COMMAND``, else ``GIT_SSH``, else ``ssh``, as git chooses.

    With no terminal to answer on (a notebook, a cron job, a pipe), OpenSSH
    is run with ``BatchMode=yes``, so a passphrase, password or unknown host
    key gives an error at once instead of a prompt nobody sees.
    """
    command = os.environ.get("GIT_SSH_COMMAND") or shlex.quote(os.environ.get("GIT_SSH") or "ssh")
    words = shlex.split(command)
    interactive = all(stream is not None and stream.isatty() for stream in (sys.stdin, sys.stderr))
    if interactive or os.path.basename(words[0]).lower() not in ("ssh", "ssh.exe"):
        return command
    return shlex.join([words[0], "-o", "BatchMode=yes", *words[1:]])
