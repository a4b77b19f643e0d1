"""The local web view of a project (``expipe-git serve``): records and history, read-only.

Needs the ``web`` extra (Starlette, Jinja2, uvicorn); :func:`load_app`
says how to install it when it is missing. The modules of this package:

- ``table``: the actions table: its rows, filter, sort and pages;
- ``display``: stored values as text with units, nested tables;
- ``timeline``: the activity picture, an SVG drawn on the server;
- ``pages``: what each page shows, read from one snapshot through the public API;
- ``app``: the Starlette application, its routes and the server.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import ExpipeError

INSTALL_HINT = "pip install 'expipe_git[web]'"


class WebStackMissingError(ExpipeError):
    """The optional packages of the web view are not installed."""


def load_app() -> ModuleType:
    """Import the web application module.

    Raises:
        WebStackMissingError: Starlette, Jinja2 or uvicorn is missing; the
            message says which and how to install them.
    """
    missing = []
    for package in ("starlette", "jinja2", "uvicorn"):
        try:
            __import__(package)
        except ImportError:
            missing.append(package)
    if missing:
        raise WebStackMissingError(
            f"the web view needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed; install the web extra: {INSTALL_HINT}"
        )
    from . import app

    return app
