"""expipe 0.6 kept its classes in ``expipe.core``; plugins import them from here."""

from .model import Project, create_project, get_project, require_project
from .objects import Action, Entity, Message, PropertyList, datetime_format, datetime_key_format
from .records import Module, Template

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
