"""Who is working: the user named on commits and messages.

git's order, the first that answers wins, for the author (and, with
``COMMITTER`` for ``AUTHOR``, the committer):

1. the environment: ``GIT_AUTHOR_NAME`` / ``GIT_AUTHOR_EMAIL``;
2. git's configuration, the repository's ``.git/config`` before the global
   ``~/.gitconfig``: ``author.name`` / ``author.email``, then ``user.name`` /
   ``user.email``; for the email, then ``EMAIL`` in the environment;
3. expipe's own user config, ``~/.config/expipe/config.yaml`` (``username:``
   and ``email:``), so people coming from expipe without a git identity keep
   their settings;
4. the login name (and ``login@localhost``).
"""

from __future__ import annotations

import getpass
import os
import pathlib
from collections.abc import Mapping

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


def identity(git_config: Mapping[str, str], role: str = "author") -> tuple[str, str]:
    """Return (name, email) of the ``role`` ("author" or "committer"), given git's identity keys."""
    reload_config()
    env = os.environ
    variable = f"GIT_{role.upper()}_"
    name = (
        env.get(variable + "NAME", "").strip()
        or git_config.get(f"{role}.name")
        or git_config.get("user.name")
        or settings.get("username")
        or _login()
    )
    email = (
        env.get(variable + "EMAIL", "").strip()
        or git_config.get(f"{role}.email")
        or git_config.get("user.email")
        or env.get("EMAIL", "").strip()
        or settings.get("email")
        or f"{name.replace(' ', '.')}@localhost"
    )
    return name, email


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
