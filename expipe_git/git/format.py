"""The git object format in one place: the hash, the length of an id, object types.

Every module of the git layer names an object's id, hashes an object or
reads a 20-byte id out of a tree, pack or index through these names, so a
repository of another object format (SHA-256) is one change here plus the
places that test for it — not a search for the number 20.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

HASH: Callable[..., Any] = hashlib.sha1  # git's object format "sha1"
ID_BYTES = 20  # an id as raw bytes (trees, packs, the index)
ID_HEX = 2 * ID_BYTES  # an id as text (refs, loose object names, this package's APIs)
OBJECT_ID = re.compile(rb"[0-9a-f]{%d}" % ID_HEX)
ZERO_ID = b"0" * ID_HEX

TYPE_NUMBERS = {b"commit": 1, b"tree": 2, b"blob": 3, b"tag": 4}
TYPE_NAMES = {number: kind for kind, number in TYPE_NUMBERS.items()}
COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4

FILE_MODE = 0o100644
TREE_MODE = 0o040000


def raw_object(kind: bytes, content: bytes) -> bytes:
    """An object as git hashes and stores it: ``<kind> <size>\\0<content>``."""
    return kind + b" %d\0" % len(content) + content


def object_id(kind: bytes, content: bytes) -> bytes:
    """The hex id of an object (``kind``: b"blob", b"tree", b"commit", b"tag")."""
    return HASH(raw_object(kind, content)).hexdigest().encode("ascii")


EMPTY_TREE = object_id(b"tree", b"")


def id_text(sha: bytes | None) -> str | None:
    """An id as text (a journal, a message), or None."""
    return None if sha is None else sha.decode("ascii")
