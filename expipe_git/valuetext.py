"""A value typed as text, as the command line and merge resolutions take it.

``3`` is an int, ``3 um`` a quantity, ``[1, 2]`` a list, ``rig-C`` text: TOML and
JSON literals first, then a number with a unit, else the text itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from . import values
from .errors import (
    CorruptFileError,
    InvalidValueError,
)

# What a reading returns when the text is not of its kind.
_NOT_THIS = object()


_QUANTITY = re.compile(
    r"\s*(?P<number>[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|\[.*\])\s+(?P<unit>[^\s\[\]].*?)\s*"
)


def parse_value_text(text: str) -> Any:
    """Read a value typed on the command line: a TOML or JSON literal, a quantity like ``3 um``, or text.

    Text is taken as it is (``rig-C``) unless it starts like a number, list,
    table or quoted string.

    Raises:
        InvalidValueError: the text starts like a literal but is none
            (``3 nonsenseunit``, ``[1, 2``): quote it to mean the text.
    """
    for attempt in (_toml_literal, _json_literal, _quantity_literal, _plain_text):
        found = attempt(text)
        if found is not _NOT_THIS:
            return found
    raise InvalidValueError(
        f"cannot read the value {text!r}: give a TOML or JSON literal (3, 2.5, true, null, "
        '[1, 2], {"a": 1}), a quantity such as "3 um" or "[1, 2] mV", or text; text that starts '
        f"like a number or a list must be quoted: '\"{text}\"'"
    )


def _plain_text(text: str) -> Any:
    """Text that cannot be meant as a number, list or table is the string itself (``rig-C``)."""
    if not text.strip() or text.lstrip()[0] in "0123456789+-.[{\"'" or "\n" in text:
        return _NOT_THIS
    return text.strip()


def _toml_literal(text: str) -> Any:
    try:
        raw = values.parse(f"v = {text}\n", what="the value")
    except CorruptFileError:
        return _NOT_THIS
    if set(raw) != {"v"}:
        return _NOT_THIS
    return values.decode(raw, what="the value")["v"]


def _json_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_THIS


def _quantity_literal(text: str) -> Any:
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return _NOT_THIS
    import quantities

    try:
        number = json.loads(match["number"]) if match["number"].startswith("[") else float(match["number"])
        return quantities.Quantity(number, match["unit"])
    except Exception:  # quantities raises LookupError, ValueError, ... for a bad unit
        return _NOT_THIS
