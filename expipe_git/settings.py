"""Who is working: the user named on commits and messages.

Looked up in this order, the first that answers wins:

1. expipe's own user config, ``~/.config/expipe/config.yaml`` (``username:``
   and ``email:``), so people coming from expipe keep their settings;
2. git's configuration (``user.name``, ``user.email``);
3. the environment: ``GIT_AUTHOR_NAME``/``GIT_AUTHOR_EMAIL``, then ``USER``.
"""

from __future__ import annotations

import getpass
import os
import pathlib

settings: dict[str, str] = {}


def config_path() -> pathlib.Path:
    return pathlib.Path.home() / ".config" / "expipe" / "config.yaml"


def reload_config() -> dict[str, str]:
    """Re-read expipe's user config into :data:`settings` and return it.

    Only flat ``key: value`` lines are read: that is all expipe writes there,
    and a YAML parser is not worth a dependency for it.
    """
    settings.clear()
    try:
        text = config_path().read_text(encoding="utf-8")
    except OSError:
        return settings
    for line in text.splitlines():
        if line[:1].isspace() or ":" not in line or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition(":")
        value = value.strip().strip("'\"")
        if value:
            settings[key.strip()] = value
    return settings


def identity(git_name: str | None, git_email: str | None) -> tuple[str, str]:
    """Return (name, email) of the current user, given git's configured ones."""
    reload_config()
    name = settings.get("username") or git_name or os.environ.get("GIT_AUTHOR_NAME") or _login()
    email = (
        settings.get("email")
        or git_email
        or os.environ.get("GIT_AUTHOR_EMAIL")
        or os.environ.get("EMAIL")
        or f"{name.replace(' ', '.')}@localhost"
    )
    return name, email


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
