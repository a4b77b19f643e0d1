"""Python values <-> TOML text, losslessly: what each Python value is on disk.

Encoding turns a value into raw TOML data (what ``tomllib`` returns), which
:mod:`expipe_git.tomltext` lays out as text. tomlkit was measured and not
used: 0.45 ms for a 10-key record, and quadratic in array length (10,000
floats: 6.8 s). :func:`dumps` re-reads every text it produces with the stdlib
``tomllib`` and compares the result with what it meant to write, so an
emitter bug can never reach disk. Reading is stdlib ``tomllib`` only.

The on-disk encoding
====================

A record is one TOML document. Plain values are TOML's own:

==============================  ==========================================
Python                          TOML
==============================  ==========================================
str                             string (control characters escaped)
bool, numpy.bool_               boolean
int, numpy integer (int64)      integer
float, numpy floating           float, including nan, inf, -inf, -0.0
datetime, naive                 local date-time (microseconds kept)
datetime, fixed whole-minute    offset date-time
offset
date                            local date
time, naive                     local time (microseconds kept)
list, tuple, numpy array        array (read back as list; arrays via
                                ``.tolist()``, a 0-d array as its scalar)
dict, any Mapping               table (insertion order kept)
==============================  ==========================================

Anything TOML cannot say directly is a *tagged value*: an inline table whose
first key is ``"$type"``::

    nothing = { "$type" = "none" }
    big = { "$type" = "int", value = "123456789012345678901234567890" }
    depth = { "$type" = "quantity", value = 2.0, unit = "um" }
    gain = { "$type" = "quantity", value = [1.0, 2.0], unit = "mV" }
    pos = { "$type" = "uncertain_quantity", value = 2.0, unit = "mm", uncertainty = 0.1 }
    start = { "$type" = "datetime", value = 2024-03-01T10:00:00+01:00, tz = "Europe/Oslo" }
    odd = { "$type" = "datetime", value = 2024-03-01T10:00:00, utcoffset = 3661.0 }
    alarm = { "$type" = "time", value = 07:30:00, utcoffset = 3600.0 }

* ``int``: an integer outside the 64-bit range, as a decimal string.
* ``quantity`` / ``uncertain_quantity``: ``value`` (and ``uncertainty``) is
  the magnitude's ``.tolist()``, so a scalar stays a scalar and an array keeps
  its shape; ``unit`` is ``dimensionality.string``, read back with
  ``quantities.Quantity(value, unit)``. Magnitudes come back as int64, float64
  or bool arrays (a float32 magnitude comes back float64 with equal values).
* ``datetime``: ``value`` is the wall time either with its offset (an offset
  date-time) or, when the offset is not whole minutes, as a local date-time
  plus ``utcoffset`` in seconds. ``tz`` names the ``zoneinfo.ZoneInfo`` key;
  reading attaches ``ZoneInfo(tz)`` again, choosing the ``fold`` that gives
  the stored offset. A datetime with any other tzinfo class (dateutil, a named
  ``datetime.timezone``, ...) is written as a plain offset date-time and comes
  back with a ``datetime.timezone`` of the same offset: the same instant.
* ``time``: an aware time as its local time plus ``utcoffset`` in seconds.
* ``list``: only at the top of a document whose record is a list, tuple or
  numpy array: ``"$type" = "list"`` and ``value = [...]`` as its two keys.

Table keys. TOML keys are strings, so a dict with int keys (Python or numpy
integers in the 64-bit range) writes them as decimal strings and lists them,
first, in ``"$int_keys" = [0, 4]``; only those keys are read back as ints, so a
``"0"`` key elsewhere stays a string. A user key that begins with ``$`` is
written with the ``$`` doubled (``"$x"`` -> ``"$$x"``) so ``"$type"`` and
``"$int_keys"`` never clash with data. A plain dict is never turned into
anything else: ``{value = 2.9, unit = "mm"}`` reads back as that dict.

Layout, for the person reading the file: dicts that end a table become
``[section]`` headers (TOML puts sub-tables after plain keys, and insertion
order must survive); a dict followed by plain keys is written inline when it
fits on a line, else as dotted keys (``probe.x = 1``). Dicts inside arrays and
all tagged values are inline tables. Long arrays wrap, one element a line when
the elements are arrays or tables. Strings with newlines at the key level are
multi-line strings.

Refused, before anything is written: values of other types (set, bytes,
complex, timedelta, custom objects; :class:`InvalidTypeError`), dict keys that
are not str or int (bool, float, None, tuple), strings that are not valid
Unicode, int keys outside 64 bits, a dict with both ``0`` and ``"0"`` as keys,
and nesting deeper than 48 levels (tables, tagged values and arrays each
count one level; :class:`InvalidValueError`). Messages name the record and the
key path, e.g. ``value at ['probe'][0]['x'] is a set; store a list instead``.

numpy and quantities are imported only when a value needs them, because
importing quantities costs about 0.2 s: a value cannot be a numpy object unless
numpy was imported already.
"""

from __future__ import annotations

import datetime as _dt
import sys
import zoneinfo
from collections.abc import Mapping
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

from expipe_git.decoding import (
    MAX_DEPTH,
    Corrupt,
    Failure,
    article,
    check_fields,
    decode_array,
    decode_table,
    type_name,
    unit_is_safe,
    where_text,
)
from expipe_git.errors import CorruptFileError, InvalidTypeError, InvalidValueError
from expipe_git.tomltext import emit_document, same_raw

__all__ = ["dumps", "parse", "decode", "loads"]

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_FIX = "fix the file or restore it with git"


# Encoding: Python value -> raw TOML data (what tomllib would return).


def _check_level(level: int) -> None:
    if level > MAX_DEPTH:
        raise Failure(
            InvalidValueError,
            "value",
            f"is nested more than {MAX_DEPTH} levels deep (dicts, lists and tagged values "
            "each count one; a container that contains itself never ends); flatten the record",
        )


def _encode_str(value: str, subject: str = "value") -> str:
    # isascii() is a fast exit; only non-ASCII text can hold a lone surrogate.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Failure(
                InvalidValueError,
                subject,
                f"is a str that is not valid Unicode (lone surrogate {value[exc.start]!r} at "
                f"index {exc.start}); it cannot be written as UTF-8",
            ) from None
    return value


def _encode_int(value: int, level: int) -> Any:
    if _I64_MIN <= value <= _I64_MAX:
        return value
    _check_level(level)
    try:
        digits = str(value)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        raise Failure(InvalidValueError, "value", "is an int too large to write as decimal digits") from None
    return {"$type": "int", "value": digits}


def _encode(value: Any, level: int) -> Any:
    """Return the raw TOML form of ``value``, which sits at nesting ``level``."""
    kind = type(value)
    # Exact builtin types first: they are nearly every value, and a dict
    # lookup is not faster than this short chain.
    if kind is str:
        return _encode_str(value)
    if kind is float or kind is bool:
        return value
    if kind is int:
        return _encode_int(value, level)
    if kind is dict:
        return _encode_table(value, level)
    if kind is list or kind is tuple:
        return _encode_array(value, level)
    if value is None:
        _check_level(level)
        return {"$type": "none"}
    if kind is _dt.datetime:
        return _encode_datetime(value, level)
    if kind is _dt.date or kind is _dt.time:
        return _encode_date_or_time(value, level)
    return _encode_other(value, level)


def _encode_other(value: Any, level: int) -> Any:
    """Encode subclasses, numpy and quantities objects, or refuse the value."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.bool_):
            return bool(value)
        if isinstance(value, numpy.integer):
            return _encode_int(int(value), level)
        if isinstance(value, numpy.floating):
            return float(value)
        if isinstance(value, numpy.ndarray):
            return _encode_ndarray(value, level)
    if isinstance(value, int):  # IntEnum and other int subclasses
        return _encode_int(int(value), level)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):  # StrEnum, numpy.str_: store the plain text
        return _encode_str(str.__str__(value))
    if isinstance(value, _dt.datetime):
        return _encode_datetime(value, level)
    if isinstance(value, (_dt.date, _dt.time)):
        return _encode_date_or_time(value, level)
    if isinstance(value, Mapping):
        return _encode_table(value, level)
    if isinstance(value, (list, tuple)):  # namedtuple and other subclasses
        return _encode_array(value, level)
    raise Failure(InvalidTypeError, "value", f"is {article(type_name(value))}; {_hint(value)}")


def _hint(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        return "store a list instead"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "store a str instead (decode text; base64-encode binary data)"
    if isinstance(value, complex) or "complex" in type(value).__name__:
        return "store the real and imaginary parts as two floats"
    if isinstance(value, _dt.timedelta) or "timedelta64" in type(value).__name__:
        return "store the number of seconds as a float, or a Quantity in s"
    if "datetime64" in type(value).__name__:
        return "store a datetime.datetime instead"
    if type(value).__name__ in ("Decimal", "Fraction"):
        return "store a float or a str instead"
    return "store a dict, list, str, int, float, bool, None, date, time, datetime or Quantity instead"


def _encode_table(table: Mapping, level: int) -> dict:
    _check_level(level)
    out: dict[str, Any] = {}
    int_keys: list[int] = []
    for key, item in table.items():
        # A bad key is reported at the path of the dict that holds it, so it
        # is checked outside the try that adds the key to the path.
        if type(key) is str:
            name = _encode_str(key, f"key {key!r} of the dict")
            if name.startswith("$"):
                name = "$" + name
        else:
            name, number = _encode_key(key)
            if number is not None:
                int_keys.append(number)
        try:
            out[name] = _encode(item, level + 1)
        except Failure as failure:
            failure.path.append(key)
            raise
    if len(out) != len(table):
        raise Failure(InvalidValueError, "the dict", _collision(table))
    if int_keys:
        # First, so a person sees at once that some keys are numbers.
        out = {"$int_keys": int_keys, **out}
    return out


def _encode_key(key: Any) -> tuple[str, int | None]:
    """Return the on-disk name of a non-str key and the int it stands for."""
    numpy = sys.modules.get("numpy")
    is_bool = isinstance(key, bool) or (numpy is not None and isinstance(key, numpy.bool_))
    is_int = isinstance(key, int) or (numpy is not None and isinstance(key, numpy.integer))
    if is_int and not is_bool:
        number = int(key)
        if not _I64_MIN <= number <= _I64_MAX:
            raise Failure(
                InvalidValueError,
                f"key {number} of the dict",
                "does not fit in 64 bits; int keys must be 64-bit, use a str key instead",
            )
        return str(number), number
    if isinstance(key, str):
        name = _encode_str(str.__str__(key), f"key {key!r} of the dict")
        return ("$" + name if name.startswith("$") else name), None
    raise Failure(
        InvalidTypeError,
        f"key {key!r} of the dict",
        f"is {article(type_name(key))}; dict keys must be str or int",
    )


def _collision(table: Mapping) -> str:
    names: dict[str, Any] = {}
    for key in table:
        name = str(int(key)) if not isinstance(key, str) else str.__str__(key)
        if name in names:
            first, second = names[name], key
            return (
                f"has both the keys {first!r} and {second!r}, which are the same TOML key "
                f"{name!r}; keep one of them"
            )
        names[name] = key
    return "has keys that map to the same TOML key; keep one of them"  # pragma: no cover


def _encode_array(items: Any, level: int) -> list:
    _check_level(level)
    out = []
    index = 0
    try:
        for index, item in enumerate(items):  # noqa: B007 - index is read on failure
            out.append(_encode(item, level + 1))
    except Failure as failure:
        failure.path.append(index)
        raise
    return out


def _encode_ndarray(array: Any, level: int) -> Any:
    quantities = sys.modules.get("quantities")
    if quantities is not None and isinstance(array, quantities.Quantity):
        return _encode_quantity(array, level, quantities)
    if array.dtype.kind in "mM":
        raise Failure(
            InvalidTypeError,
            "value",
            f"is a numpy array of {array.dtype}; store a list of datetime.datetime "
            "(or of float seconds) instead",
        )
    # .tolist() gives Python scalars (or the objects of an object array), each
    # then checked like any other value; a 0-d array gives its scalar.
    return _encode(array.tolist(), level)


def _encode_quantity(quantity: Any, level: int, quantities: Any) -> dict:
    _check_level(level)
    uncertain = isinstance(quantity, quantities.UncertainQuantity)
    unit = quantity.dimensionality.string
    _check_unit(unit, quantity, quantities)
    tag: dict[str, Any] = {
        "$type": "uncertain_quantity" if uncertain else "quantity",
        "value": _magnitude(quantity.magnitude, level),
        "unit": unit,
    }
    if uncertain:
        tag["uncertainty"] = _magnitude(quantity.uncertainty.magnitude, level)
    return tag


_UNITS_READ_BACK: dict[str, Any] = {}  # unit string -> dimensionality it parses to


def _check_unit(unit: str, quantity: Any, quantities: Any) -> None:
    """Refuse a unit that ``Quantity(value, unit)`` would not read back the same."""
    known = _UNITS_READ_BACK.get(unit)
    if known is None:
        try:
            known = quantities.Quantity(1.0, unit).dimensionality if unit_is_safe(unit) else None
        except Exception:  # quantities raises LookupError, SyntaxError, ...
            known = None
        if known is not None:
            _UNITS_READ_BACK[unit] = known
    if known is None or known != quantity.dimensionality:
        raise Failure(
            InvalidValueError,
            "value",
            f"is a Quantity in {unit!r}, a unit quantities cannot read back from its "
            "name; rescale it to a unit quantities knows",
        )


def _magnitude(magnitude: Any, level: int) -> Any:
    """Return a quantity magnitude as plain numbers, refusing what would not round-trip."""
    kind, dtype = magnitude.dtype.kind, magnitude.dtype
    if kind == "c":
        raise Failure(
            InvalidTypeError,
            "value",
            "is a Quantity with complex values; store the real and imaginary parts as two Quantities",
        )
    if kind not in "biuf":
        raise Failure(
            InvalidTypeError,
            "value",
            f"is a Quantity with values of dtype {dtype}; only bool, int and float magnitudes can be stored",
        )
    if magnitude.ndim and level + magnitude.ndim > MAX_DEPTH:
        _check_level(level + magnitude.ndim)
    if magnitude.size == 0 and 0 in magnitude.shape[:-1]:
        # [] cannot say how many columns an array of shape (0, 3) had.
        raise Failure(
            InvalidValueError,
            "value",
            f"is an empty Quantity of shape {magnitude.shape}, which a list cannot "
            "describe; store it with shape (0,) or drop it",
        )
    if kind == "f" and dtype.itemsize > 8:
        magnitude = magnitude.astype("float64")  # .tolist() of longdouble stays numpy
    if kind == "u" and dtype.itemsize == 8 and magnitude.size and int(magnitude.max()) > _I64_MAX:
        raise Failure(
            InvalidValueError,
            "value",
            "is a Quantity with uint64 values beyond the int64 range; convert it to float",
        )
    return magnitude.tolist()


def _encode_datetime(value: _dt.datetime, level: int) -> Any:
    if type(value) is not _dt.datetime:  # pandas.Timestamp and other subclasses
        value = _dt.datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.tzinfo,
            fold=value.fold,
        )
    tzinfo = value.tzinfo
    if tzinfo is None:
        return value
    offset = value.utcoffset()
    if offset is None:
        raise Failure(
            InvalidValueError,
            "value",
            f"is a datetime whose tzinfo {tzinfo!r} gives no UTC offset; make it "
            "naive or give it a real time zone",
        )
    wall = value.replace(tzinfo=None, fold=0)
    whole_minutes = offset % _dt.timedelta(minutes=1) == _dt.timedelta(0)
    key = getattr(tzinfo, "key", None) if isinstance(tzinfo, zoneinfo.ZoneInfo) else None
    if key is None and whole_minutes:
        # Plain offset date-time; the tzinfo comes back as datetime.timezone.
        return wall.replace(tzinfo=_dt.timezone(offset))
    _check_level(level)
    tag: dict[str, Any] = {"$type": "datetime"}
    if whole_minutes:
        tag["value"] = wall.replace(tzinfo=_dt.timezone(offset))
    else:  # TOML offsets are hours and minutes only
        tag["value"] = wall
        tag["utcoffset"] = offset.total_seconds()
    if key is not None:
        tag["tz"] = _encode_str(key)
    return tag


def _encode_date_or_time(value: Any, level: int) -> Any:
    if isinstance(value, _dt.date):
        return value if type(value) is _dt.date else _dt.date(value.year, value.month, value.day)
    plain = _dt.time(value.hour, value.minute, value.second, value.microsecond)
    if value.tzinfo is None:
        return plain
    offset = value.utcoffset()
    if offset is None:
        raise Failure(
            InvalidValueError,
            "value",
            f"is a time whose tzinfo {value.tzinfo!r} gives no fixed UTC offset (a "
            "time zone needs a date); store a datetime, or a time with a "
            "datetime.timezone",
        )
    _check_level(level)
    return {"$type": "time", "value": plain, "utcoffset": offset.total_seconds()}


# The public interface.


def dumps(value: Any, *, what: str) -> str:
    """Encode a record as TOML text, refusing anything that would not read back equal.

    Args:
        value: The record: a dict (or other Mapping), or a list, tuple or numpy
            array, which is stored under a ``"$type" = "list"`` tag.
        what: Names the record in error messages, e.g.
            ``"module 'tracking' of action 'rec-1'"``.

    Returns:
        TOML text that ``loads`` turns back into an equal value.

    Raises:
        InvalidTypeError: A value or dict key has a type that cannot be stored.
        InvalidValueError: A value cannot be stored as given (too deep, a lone
            surrogate, an int key beyond 64 bits, keys 0 and "0" together, ...).
    """
    numpy = sys.modules.get("numpy")
    try:
        if isinstance(value, Mapping):
            raw = _encode_table(value, 1)
        elif isinstance(value, (list, tuple)) or (
            numpy is not None and type(value) is numpy.ndarray and value.ndim > 0
        ):
            items = value.tolist() if not isinstance(value, (list, tuple)) else value
            raw = {"$type": "list", "value": _encode_array(items, 1)}
        else:
            raise InvalidTypeError(
                f"{what}: the record is {article(type_name(value))}; store a dict (or a list) instead"
            )
    except Failure as failure:
        message = f"{what}: {failure.subject} at {where_text(failure.path)} {failure.problem}"
        raise failure.cls(message) from None
    text = emit_document(raw)
    # Cheap insurance: what reaches disk must read back as what we meant.
    if not same_raw(tomllib.loads(text), raw):
        raise InvalidValueError(
            f"{what}: could not be written as TOML that reads back equal; this is a bug in "
            "expipe_git.values, please report it with the value"
        )
    return text


def parse(text: str | bytes, *, what: str) -> dict:
    """Parse TOML text into raw TOML data (dicts, lists and scalars).

    Args:
        text: The file's text, or its bytes (UTF-8, a leading BOM is ignored).
        what: Names the file in error messages.

    Returns:
        The raw data; ``{}`` for empty or whitespace-only text. Pass it to
        :func:`decode`, which never changes it, so it can be cached.

    Raises:
        CorruptFileError: The text is not UTF-8 or not valid TOML.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        data = bytes(text)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorruptFileError(f"{what}: not valid UTF-8 (byte {exc.start}); {_FIX}", path=None) from None
    elif isinstance(text, str):
        if text.startswith("\ufeff"):
            text = text[1:]
    else:
        raise InvalidTypeError(f"{what}: parse() takes str or bytes, not {type_name(text)}")
    if not text.strip():
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CorruptFileError(f"{what}: not valid TOML: {exc}; {_FIX}", path=None) from exc
    except RecursionError:
        raise CorruptFileError(f"{what}: not valid TOML: nested too deeply; {_FIX}", path=None) from None


def decode(raw: dict, *, what: str) -> Any:
    """Turn raw TOML data from :func:`parse` into the Python value it stores.

    Every container of the result is new, so ``raw`` can be cached and decoded
    again; ``raw`` itself is never changed.

    Args:
        raw: The dict that :func:`parse` returned.
        what: Names the file in error messages.

    Returns:
        A dict, or a list when the document is a ``"$type" = "list"`` record.

    Raises:
        CorruptFileError: A tagged value is unknown or malformed, or a key is not
            one this encoding writes.
    """
    if type(raw) is not dict:
        raise InvalidTypeError(
            f"{what}: decode() takes the dict parse() returns, not {article(type_name(raw))}"
        )
    try:
        if "$type" not in raw:
            return decode_table(raw)
        if raw["$type"] != "list":
            raise Corrupt(f"has \"$type\" = {raw['$type']!r}; only a 'list' tag can be a whole document")
        check_fields(raw, "list", ("value",))
        if type(raw["value"]) is not list:
            raise Corrupt("is a 'list' document whose value is not an array")
        try:
            return decode_array(raw["value"])
        except Corrupt as corrupt:
            corrupt.path.append("value")
            raise
    except Corrupt as corrupt:
        where = where_text(corrupt.path)
        subject = "the document" if not corrupt.path else f"the value at {where}"
        raise CorruptFileError(f"{what}: {subject} {corrupt.problem}; {_FIX}", path=None) from None


def loads(text: str | bytes, *, what: str) -> Any:
    """Parse and decode TOML text: ``decode(parse(text))``.

    Args:
        text: The file's text or bytes.
        what: Names the file in error messages.

    Returns:
        The stored record, in new containers.

    Raises:
        CorruptFileError: The text is not valid TOML or not a valid encoding.
    """
    return decode(parse(text, what=what), what=what)
