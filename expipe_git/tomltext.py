"""Raw TOML data -> TOML text, laid out for a person to read.

Handles exactly what :mod:`expipe_git.values` encodes to: dicts, lists, str,
int, float, bool, dates and times. Plain tables that end a table become
``[section]`` headers (TOML puts sub-tables after plain keys, and insertion
order must survive); a table followed by plain keys is written inline when it
fits on a line, else as dotted keys. tomlkit was measured and not used: it
grew quadratically with array length (6.8 s for 10,000 floats).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import sys
from typing import Any

_WIDTH = 88  # target line width; lines may exceed it (long strings)
_INDENT = "    "

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Control characters must be escaped; C1 controls and invisible or
# direction-changing characters are escaped too, so a person reading the file
# sees what is there.
_INVISIBLE = "\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_NEEDS_ESCAPE = re.compile(f'["\\\\\x00-\x1f{_INVISIBLE}]')
# In a multi-line string a lone quote may stay as it is; a quote after a quote,
# or at the very end, is escaped so no run of three can close the string.
_NEEDS_ESCAPE_MULTILINE = re.compile(f'(?<=")"|"\\Z|[\\\\\x00-\x09\x0b-\x1f{_INVISIBLE}]')
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _escape_char(match: re.Match) -> str:
    char = match.group()
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def _string(text: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def _multiline_string(text: str) -> str:
    # The newline right after the opening quotes is not part of the value.
    return '"""\n' + _NEEDS_ESCAPE_MULTILINE.sub(_escape_char, text) + '"""'


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _is_section(value: Any) -> bool:
    """A plain (untagged) table, which may be written as a [section]."""
    return type(value) is dict and "$type" not in value


def emit_document(raw: dict) -> str:
    lines: list[str] = []
    _emit_body(raw, (), lines)
    return "\n".join(lines) + "\n" if lines else ""


def _emit_body(table: dict, header: tuple[str, ...], lines: list[str]) -> None:
    items = list(table.items())
    first_section = len(items)
    while first_section and _is_section(items[first_section - 1][1]):
        first_section -= 1
    for name, value in items[:first_section]:
        _emit_pair(_key(name), value, lines)
    for name, value in items[first_section:]:
        path = (*header, name)
        # A header with only sub-tables under it is implied by theirs.
        if not value or not all(_is_section(item) for item in value.values()):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(step) for step in path) + "]")
        _emit_body(value, path, lines)


def _emit_pair(key: str, value: Any, lines: list[str]) -> None:
    if _is_section(value) and value:
        # A dict followed by plain keys cannot become a [section] without
        # reordering the keys: inline if it fits on a line, else dotted keys.
        inline = _inline(value)
        if "\n" not in inline and len(key) + 3 + len(inline) <= _WIDTH:
            lines.append(f"{key} = {inline}")
        else:
            for name, item in value.items():
                _emit_pair(f"{key}.{_key(name)}", item, lines)
    elif type(value) is str and "\n" in value:
        lines.append(f"{key} = {_multiline_string(value)}")
    else:
        lines.append(f"{key} = {_inline(value)}")


def _inline(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _string(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)  # 'nan', 'inf', '-0.0', '1e-05': all valid TOML floats
    if kind is dict:
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {_inline(v)}" for k, v in value.items()) + " }"
    if kind is list:
        return _array(value)
    return value.isoformat()  # date, time, naive or whole-minute-offset datetime


def _array(items: list) -> str:
    if not items:
        return "[]"
    parts = [_inline(item) for item in items]
    one_line = "[" + ", ".join(parts) + "]"
    if len(one_line) <= _WIDTH - 8 and "\n" not in one_line:
        return one_line
    if any(type(item) is list or type(item) is dict for item in items):
        # Nested arrays and tables: one element a line, their own lines indented.
        body = [_INDENT + part.replace("\n", "\n" + _INDENT) + "," for part in parts]
    else:
        # Scalars: fill lines, as a person would wrap a long list of numbers.
        body, line = [], ""
        for part in parts:
            if line and len(line) + len(part) + 2 > _WIDTH - len(_INDENT):
                body.append(_INDENT + line)
                line = part + ","
            else:
                line = f"{line} {part}," if line else part + ","
        body.append(_INDENT + line)
    return "[\n" + "\n".join(body) + "\n]"


def same_raw(a: Any, b: Any) -> bool:
    """Strict equality of raw TOML data: types, key order, nan and the sign of zero."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is dict:
        return len(a) == len(b) and all(
            ka == kb and same_raw(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if kind is list:
        return len(a) == len(b) and all(same_raw(x, y) for x, y in zip(a, b, strict=True))
    if kind is float:
        if a != a:
            return b != b
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if kind is _dt.datetime:
        return a == b and a.utcoffset() == b.utcoffset()
    return a == b


# ---------------------------------------------------------------------------
# A person's layout kept through later writes


def keep_layout(old: str, old_raw: dict, new: str) -> str:
    """Return the record ``new`` laid out as the person laid out ``old``, if they did.

    ``old`` is a file's text and ``old_raw`` its parsed data; ``new`` is the
    text the emitter wrote for the changed record. If ``old`` is in the
    emitter's own form, ``new`` is returned as it is (the fast path).
    Otherwise a person edited it: ``old`` is changed key by key with tomlkit,
    so its comments, order and spacing stay where the keys stay. If that does
    not read back as ``new`` does, ``new`` is returned.
    """
    if emit_document(old_raw) == old:
        return new
    import tomlkit

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the same parser, published as tomli
        import tomli as tomllib
    try:
        new_raw = tomllib.loads(new)
        document = tomlkit.parse(old)
        _merge(document, old_raw, new_raw)
        text = document.as_string()
        ok = _same_content(tomllib.loads(text), new_raw)
    except Exception:  # tomlkit could not place a change: the emitter's text is right
        return new
    return text if ok else new


def _merge(container: Any, old: dict, new: dict) -> None:
    import tomlkit

    for key in [key for key in old if key not in new]:
        del container[key]
    for key, value in new.items():
        if key in old and same_raw(old[key], value):
            continue
        if key in old and _is_section(old[key]) and _is_section(value) and hasattr(container[key], "items"):
            _merge(container[key], old[key], value)
        elif _is_section(value) and value:
            container[key] = tomlkit.parse(emit_document({key: value}))[key]
        else:
            container[key] = tomlkit.parse(f"v = {_inline(value)}\n")["v"]


def _same_content(a: Any, b: Any) -> bool:
    """Equal raw data, as same_raw, except that the order of keys in a table may differ."""
    if type(a) is dict and type(b) is dict:
        return a.keys() == b.keys() and all(_same_content(a[key], b[key]) for key in a)
    if type(a) is list and type(b) is list:
        return len(a) == len(b) and all(_same_content(x, y) for x, y in zip(a, b, strict=True))
    return same_raw(a, b)
