"""The git layer: the only package that imports dulwich.

Layers above see the :class:`Repository` façade and the value types it hands
out (:class:`Snapshot`, :class:`Identity`, :class:`CommitInfo`, ``Changes``);
the modules inside are the engine it is built from (docs/architecture.md).
"""

from __future__ import annotations

from .format import ID_HEX
from .objects import Changes, CommitInfo, Identity
from .refs import BRANCH
from .repository import Repository
from .snapshot import Snapshot

__all__ = ["BRANCH", "ID_HEX", "Changes", "CommitInfo", "Identity", "Repository", "Snapshot"]
