"""Raw TOML data -> Python values (the tagged tables of :mod:`expipe_git.values`); errors both ways.

Decoding always builds new containers, so a caller may change what it gets.
Stored data that does not decode raises :class:`Corrupt`, which
:func:`expipe_git.values.decode` turns into a CorruptFileError naming the key.
"""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo
from typing import Any

# How deep values nest, at most (tables in lists in tables...); deeper data is refused.
MAX_DEPTH = 48


# Errors carry their key path up the stack, so the happy path builds no paths.


class Failure(Exception):
    """A value that cannot be stored; becomes ``cls`` with the key path filled in."""

    def __init__(self, cls: type[Exception], subject: str, problem: str):
        super().__init__(problem)
        self.cls = cls
        self.subject = subject  # e.g. "value", "key 1.5 of the dict"
        self.problem = problem  # e.g. "is a set; store a list instead"
        self.path: list[Any] = []  # innermost first; reversed when reported


def where_text(path_innermost_first: list[Any]) -> str:
    if not path_innermost_first:
        return "the top level"
    return "".join(f"[{step!r}]" for step in reversed(path_innermost_first))


def article(name: str) -> str:
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__.split(".")[0]
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def user_key(stored: str) -> str:
    """Return the key a TOML file's key ``stored`` holds (a user's ``$x`` is stored ``$$x``)."""
    return stored[1:] if stored.startswith("$$") else stored


class Corrupt(Exception):
    """Stored data that does not decode; becomes CorruptFileError with the path."""

    def __init__(self, problem: str):
        super().__init__(problem)
        self.problem = problem
        self.path: list[Any] = []


# quantities evaluates a unit name as a (whitelisted) Python expression; a
# number raised to a power (9**9**9) or a huge expression in a hand-edited file
# would make it compute forever, so such names are refused before it sees them.
_UNIT_NUMBER_POWER = re.compile(r"[0-9.)]\s*\*\*")


def unit_is_safe(unit: str) -> bool:
    """Return whether ``unit`` is text quantities may parse: short, printable, no number powers."""
    return 0 < len(unit) <= 200 and unit.isprintable() and not _UNIT_NUMBER_POWER.search(unit)


_INT_RE = re.compile(r"[+-]?[0-9]+")


def _decode(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return decode_table(value)
    if kind is list:
        return decode_array(value)
    return value  # str, int, float, bool, date/time: immutable


def decode_array(items: list) -> list:
    out = []
    index = 0
    try:
        for index, item in enumerate(items):  # noqa: B007 - index is read on failure
            kind = type(item)
            out.append(decode_table(item) if kind is dict else decode_array(item) if kind is list else item)
    except Corrupt as corrupt:
        corrupt.path.append(index)
        raise
    return out


def decode_table(table: dict) -> Any:
    if "$type" in table:
        return _decode_tag(table)
    int_names: set[str] = set()
    if "$int_keys" in table:
        int_names = _int_key_names(table)
    out: dict[Any, Any] = {}
    for name, item in table.items():
        if name[:1] == "$":
            if name == "$int_keys":
                continue
            if name[:2] != "$$":
                raise Corrupt(
                    f"has the key {name!r}, which is neither data (a key that "
                    "begins with '$' is written '$$...') nor '$int_keys'"
                )
            key: Any = name[1:]
        elif name in int_names:
            key = int(name)
        else:
            key = name
        try:
            out[key] = _decode(item)
        except Corrupt as corrupt:
            corrupt.path.append(name)
            raise
    return out


def _int_key_names(table: dict) -> set[str]:
    numbers = table["$int_keys"]
    if type(numbers) is not list or any(type(n) is not int for n in numbers):
        raise Corrupt("has '$int_keys' that is not a list of integers")
    names = {str(n) for n in numbers}
    missing = sorted(names.difference(table), key=len)
    if missing:
        raise Corrupt(f"lists {missing[0]} in '$int_keys' but has no key {missing[0]!r}")
    return names


def check_fields(table: dict, tag: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    for name in required:
        if name not in table:
            raise Corrupt(f"is a {tag!r} tagged value without the field {name!r}")
    for name in table:
        if name != "$type" and name not in required and name not in optional:
            raise Corrupt(f"is a {tag!r} tagged value with the unknown field {name!r}")


def _decode_tag(table: dict) -> Any:
    tag = table["$type"]
    decoder = _TAGS.get(tag) if type(tag) is str else None
    if decoder is None:
        if tag == "list":
            raise Corrupt("is a 'list' tagged value, which is allowed only at the top level")
        raise Corrupt(f'has the unknown "$type" {tag!r}')
    return decoder(table)


def _decode_none(table: dict) -> None:
    check_fields(table, "none", ())
    return None


def _decode_int(table: dict) -> int:
    check_fields(table, "int", ("value",))
    digits = table["value"]
    if type(digits) is not str or not _INT_RE.fullmatch(digits):
        raise Corrupt("is an 'int' tagged value whose value is not a string of decimal digits")
    try:
        return int(digits)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        raise Corrupt("is an 'int' tagged value with too many digits to read") from None


_UNITS_PARSED: dict[str, Any] = {}  # unit name -> its quantities Dimensionality (copied by each Quantity)


def _decode_quantity(table: dict) -> Any:
    uncertain = table["$type"] == "uncertain_quantity"
    if uncertain:
        check_fields(table, "uncertain_quantity", ("value", "unit", "uncertainty"))
    else:
        check_fields(table, "quantity", ("value", "unit"))
    unit = table["unit"]
    if type(unit) is not str or not unit_is_safe(unit):
        raise Corrupt(f"is a quantity whose unit {unit!r} is not a unit name")
    names = ("value", "uncertainty") if uncertain else ("value",)
    for name in names:
        if not _is_number_tree(table[name], 0):
            raise Corrupt(f"is a quantity whose {name} is not a number or an array of numbers")
    import quantities  # only now: importing it takes about 0.2 s

    try:
        # quantities parses a unit's name with ``ast`` every time (~0.2 ms);
        # a table of 10,000 modules names a few units: parse each once.
        units = _UNITS_PARSED.get(unit)
        if units is None:
            units = _UNITS_PARSED[unit] = quantities.Quantity(1.0, unit).dimensionality
        if uncertain:
            return quantities.UncertainQuantity(table["value"], units, table["uncertainty"])
        return quantities.Quantity(table["value"], units)
    except Exception as exc:  # LookupError for units, ValueError for ragged arrays, ...
        raise Corrupt(f"is a quantity that quantities cannot build ({exc})") from None


def _is_number_tree(value: Any, depth: int) -> bool:
    kind = type(value)
    if kind is float or kind is int or kind is bool:
        return True
    if kind is list and depth <= MAX_DEPTH:
        return all(_is_number_tree(item, depth + 1) for item in value)
    return False


def _offset(table: dict, tag: str) -> _dt.timedelta:
    seconds = table["utcoffset"]
    if type(seconds) not in (int, float) or not -86400 < seconds < 86400:
        raise Corrupt(f"is a {tag!r} tagged value whose utcoffset is not a number of seconds within a day")
    return _dt.timedelta(seconds=seconds)


def _decode_datetime(table: dict) -> _dt.datetime:
    check_fields(table, "datetime", ("value",), ("utcoffset", "tz"))
    value = table["value"]
    if type(value) is not _dt.datetime:
        raise Corrupt("is a 'datetime' tagged value whose value is not a date-time")
    if "utcoffset" in table:
        if value.tzinfo is not None:
            raise Corrupt("is a 'datetime' tagged value with both an offset in value and a utcoffset")
        offset = _offset(table, "datetime")
        wall = value
    else:
        if value.tzinfo is None:
            raise Corrupt("is a 'datetime' tagged value with neither an offset nor a utcoffset")
        found = value.utcoffset()
        if found is None:
            raise Corrupt("is a 'datetime' tagged value whose time zone gives no offset")
        offset = found
        wall = value.replace(tzinfo=None)
    if "tz" not in table:
        if "utcoffset" not in table:
            raise Corrupt("is a 'datetime' tagged value without tz or utcoffset")
        return wall.replace(tzinfo=_dt.timezone(offset))
    key = table["tz"]
    try:
        zone = zoneinfo.ZoneInfo(key)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise Corrupt(
            f"names the time zone {key!r}, which this computer does not know "
            "(is the tzdata package installed?)"
        ) from None
    for fold in (0, 1):
        candidate = wall.replace(tzinfo=zone, fold=fold)
        if candidate.utcoffset() == offset:
            return candidate
    # The zone's rules changed since writing: keep the instant.
    try:
        return (wall - offset).replace(tzinfo=_dt.timezone.utc).astimezone(zone)
    except OverflowError:
        raise Corrupt("is a 'datetime' tagged value outside the representable range") from None


def _decode_time(table: dict) -> _dt.time:
    check_fields(table, "time", ("value", "utcoffset"))
    value = table["value"]
    if type(value) is not _dt.time:
        raise Corrupt("is a 'time' tagged value whose value is not a local time")
    return value.replace(tzinfo=_dt.timezone(_offset(table, "time")))


_TAGS = {
    "none": _decode_none,
    "int": _decode_int,
    "quantity": _decode_quantity,
    "uncertain_quantity": _decode_quantity,
    "datetime": _decode_datetime,
    "time": _decode_time,
}
