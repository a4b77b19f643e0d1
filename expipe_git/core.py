"""expipe 0.6 kept its classes in ``expipe.core``; plugins import them from here."""

from .model import (  # noqa: F401
    Action,
    Entity,
    Message,
    Module,
    Project,
    PropertyList,
    Template,
    create_project,
    datetime_format,
    datetime_key_format,
    get_project,
    require_project,
)

__all__ = [
    "Action",
    "Entity",
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
