"""The user's expipe settings, read as expipe 0.6 read them, and 0.6's config functions.

expipe 0.6 kept settings outside projects, as YAML: the user's in
``~/.config/expipe/config.yaml`` (``username``, ``email``, ``location``,
``probe_path``, ``plugins``, anything a plugin wants) and a project's in
``~/.config/expipe/<project>/<project>.yaml``. :data:`settings` holds the
user's, read when expipe_git is imported; ``project.config`` merges them with
the project's own ``expipe.toml``, as 0.6 merged them with ``expipe.yaml``.

The files are parsed as 0.6 parsed them (ruamel.yaml, ``typ="safe"``, so a
tag is refused, never run): lists and nested sections come back as lists and
dicts. expipe 0.6 scripts call this module's functions by their old private
names (``expipe.config._load_local_config(path)``); those names are kept as
aliases of the public ones below.

Who is working (the user named on commits and messages) is looked up in this
order, the first that answers wins:

1. ``username`` and ``email`` of :data:`settings` (read again first if the
   file changed: see :func:`refresh_settings`);
2. git's configuration (``user.name``, ``user.email``);
3. the environment: ``GIT_AUTHOR_NAME``/``GIT_AUTHOR_EMAIL``, then ``USER``.
"""

from __future__ import annotations

import getpass
import os
import pathlib
import warnings
from collections.abc import Mapping
from typing import Any

from . import layout, values
from .errors import CorruptFileError, InvalidTypeError

# expipe 0.6's project config file, which marks an expipe 0.6 project folder.
EXPIPE06_CONFIG = "expipe.yaml"

settings: dict[str, Any] = {}


def config_home() -> pathlib.Path:
    """Return the folder of expipe's settings, ``~/.config/expipe``."""
    return pathlib.Path.home() / ".config" / "expipe"


def config_path(name: str | os.PathLike[str] | None = None) -> pathlib.Path:
    """Return the settings file ``name`` means, as expipe 0.6 found it.

    None is the user's file (``config.yaml``); an existing ``.yaml`` path is
    itself; any other name is a project's, ``<name>/<name>.yaml``.
    """
    if name is None:
        return config_home() / "config.yaml"
    path = pathlib.Path(name)
    if path.suffix == ".yaml" and path.exists():
        return path
    return (config_home() / path / path).with_suffix(".yaml")


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one YAML settings file; a missing or empty file is ``{}``.

    Raises:
        CorruptFileError: the file does not parse or does not hold a mapping.
    """
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path}: cannot be read as UTF-8 text ({exc})", str(path)) from None
    # Imported only when there is a file: most users have none, and importing expipe_git stays quick.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        loaded = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        problem = " ".join(str(exc).split())
        raise CorruptFileError(
            f"{path}: not valid YAML ({problem}); fix or remove the file", str(path)
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise CorruptFileError(
            f"{path}: holds a {type(loaded).__name__}, not 'key: value' settings; fix or remove the file",
            str(path),
        )
    return loaded


def dump_config(path: str | os.PathLike[str], contents: Mapping[str, Any]) -> None:
    """Write settings to a YAML file (creating its folder), as expipe 0.6 wrote them."""
    from ruamel.yaml import YAML

    path = pathlib.Path(path)
    if path.suffix != ".yaml":
        raise InvalidTypeError(f"{path}: expipe settings files end in .yaml")
    if not isinstance(contents, Mapping):
        raise InvalidTypeError(f"{path}: settings must be a dict, got {type(contents).__name__}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        YAML(typ="safe", pure=True).dump(dict(contents), file)


def load_config_by_name(name: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read the user's settings (``None``) or project ``name``'s."""
    return load_config(config_path(name))


def dump_config_by_name(name: str | os.PathLike[str] | None = None, contents: Mapping | None = None) -> None:
    """Write the user's settings (``None``) or project ``name``'s."""
    if contents is None:
        raise InvalidTypeError('"contents" is required: the settings to write')
    dump_config(config_path(name), contents)


def merge_config(*configs: Mapping[str, Any]) -> dict[str, Any]:
    """Merge settings, later ones winning; ``plugins`` lists are joined, as in expipe 0.6."""
    result: dict[str, Any] = {}
    for config in configs:
        result.update(config)
    if "plugins" in result:
        result["plugins"] = [plugin for config in configs for plugin in config.get("plugins") or []]
    return result


def load_local_config(path: str | os.PathLike[str]) -> tuple[pathlib.Path | None, dict[str, Any]]:
    """Return (root, config) of the project holding ``path``, or ``(None, {})``.

    The nearest folder at or above ``path`` with an expipe_git ``expipe.toml``
    or an expipe 0.6 ``expipe.yaml`` is the project's root.
    """
    for folder in (pathlib.Path(path).absolute(), *pathlib.Path(path).absolute().parents):
        toml_file = folder / layout.CONFIG_FILE
        if toml_file.is_file():
            what = f"project config ({toml_file})"
            return folder, values.decode(values.parse(toml_file.read_bytes(), what=what), what=what)
        if (folder / EXPIPE06_CONFIG).is_file():
            return folder, load_config(folder / EXPIPE06_CONFIG)
    return None, {}


def is_in_project(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is inside an expipe_git or expipe 0.6 project."""
    return load_local_config(path)[0] is not None


# (path, mtime_ns, size) of the settings file when :data:`settings` was read; None if it was missing.
_read_from: tuple[pathlib.Path, tuple[int, int] | None] | None = None


def _file_state(path: pathlib.Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def reload_config() -> dict[str, Any]:
    """Read the user's settings again into :data:`settings` (the same dict) and return it.

    A file that does not parse gives a warning naming it and no settings.
    """
    global _read_from
    path = config_path(None)
    state = _file_state(path)
    try:
        loaded = load_config(path)
    except CorruptFileError as exc:
        warnings.warn(f"expipe settings ignored: {exc}", stacklevel=2)
        loaded = {}
    settings.clear()
    settings.update(loaded)
    _read_from = (path, state)
    return settings


def refresh_settings() -> dict[str, Any]:
    """Return :data:`settings`, read again only if the file changed (or HOME moved) since it was read.

    So a change a script made to ``expipe.settings`` in memory holds, as in
    expipe 0.6, while an edit of the file is seen without ``reload_config()``.
    """
    path = config_path(None)
    if _read_from != (path, _file_state(path)):
        reload_config()
    return settings


# The names expipe 0.6 scripts call (they were private there).
_load_config = load_config
_dump_config = dump_config
_load_config_by_name = load_config_by_name
_dump_config_by_name = dump_config_by_name
_merge_config = merge_config
_load_local_config = load_local_config
_is_in_project = is_in_project


def identity(git_config: Mapping[str, str], role: str = "author") -> tuple[str, str]:
    """Return (name, email) of the ``role`` ("author" or "committer"), in git's order.

    The first that answers wins: the environment (``GIT_AUTHOR_NAME`` /
    ``GIT_AUTHOR_EMAIL``, or ``GIT_COMMITTER_*``); git's configuration given in
    ``git_config`` (repository before global; ``author.*`` or ``committer.*``,
    then ``user.*``; for the email, then ``EMAIL``); expipe's own ``username`` and
    ``email`` settings, so people coming from expipe without a git identity keep
    theirs; the login name.
    """
    refresh_settings()
    env = os.environ
    variable = f"GIT_{role.upper()}_"
    username, email_setting = settings.get("username"), settings.get("email")
    name = (
        env.get(variable + "NAME", "").strip()
        or git_config.get(f"{role}.name")
        or git_config.get("user.name")
        or (str(username) if username else None)
        or _login()
    )
    email = (
        env.get(variable + "EMAIL", "").strip()
        or git_config.get(f"{role}.email")
        or git_config.get("user.email")
        or env.get("EMAIL", "").strip()
        or (str(email_setting) if email_setting else None)
        or f"{name.replace(' ', '.')}@localhost"
    )
    return name, email


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


reload_config()
