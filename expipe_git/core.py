"""expipe 0.6 kept its classes in ``expipe.core``; plugins import them from here.

The maps keep 0.6's class names too, so ``isinstance(project.actions,
expipe.core.Actions)`` holds.
"""

from .model import ActionMap as Actions
from .model import EntityMap as Entities
from .model import Project, create_project, get_project, require_project
from .model import TemplateMap as Templates
from .objects import Action, Entity, Message, PropertyList, datetime_format, datetime_key_format
from .objects import MessageMap as Messages
from .records import Module, Template
from .records import ModuleMap as Modules

__all__ = [
    "Action",
    "Actions",
    "Entities",
    "Entity",
    "Message",
    "Messages",
    "Module",
    "Modules",
    "Project",
    "PropertyList",
    "Template",
    "Templates",
    "create_project",
    "datetime_format",
    "datetime_key_format",
    "get_project",
    "require_project",
]
