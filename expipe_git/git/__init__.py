"""The git layer: the only package that imports dulwich.

Layers above see :class:`~expipe_git.git.repository.Store` (the repository
façade) and the value types it hands out; the modules inside are the engine
it is built from (see docs/architecture.md).
"""

from __future__ import annotations
