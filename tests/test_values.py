"""Tests of expipe_git.values: Python values <-> TOML text, losslessly."""

from __future__ import annotations

import collections
import datetime as dt
import math
import time
import types
import zoneinfo

import numpy as np
import pytest
import quantities as pq
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from expipe_git.errors import CorruptFileError, InvalidTypeError, InvalidValueError
from expipe_git.values import decode, dumps, loads, parse

WHAT = "module 'tracking' of action 'rec-1'"
OSLO = zoneinfo.ZoneInfo("Europe/Oslo")


# ---------------------------------------------------------------------------
# A strict comparison: int, float and bool never pass for one another, nan
# equals nan, -0.0 differs from 0.0, int keys differ from str keys.


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, pq.Quantity):
        if a.dimensionality.string != b.dimensionality.string or a.shape != b.shape:
            return False
        if a.magnitude.dtype.kind != b.magnitude.dtype.kind:
            return False
        if not np.array_equal(a.magnitude, b.magnitude, equal_nan=a.dtype.kind == "f"):
            return False
        if isinstance(a, pq.UncertainQuantity):
            return np.array_equal(a.uncertainty.magnitude, b.uncertainty.magnitude, equal_nan=True)
        return True
    if isinstance(a, dict):
        return [(type(k), k) for k in a] == [(type(k), k) for k in b] and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (dt.datetime, dt.time)):
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and a.utcoffset() == b.utcoffset()
            and type(a.tzinfo) is type(b.tzinfo)
            and a.tzinfo == b.tzinfo
        )
    return a == b


def roundtrip(value):
    text = dumps(value, what=WHAT)
    tomllib.loads(text)  # every output is TOML the stdlib reads
    return loads(text, what=WHAT)


def assert_roundtrip(value, expected=None):
    back = roundtrip(value)
    expected = value if expected is None else expected
    assert same(back, expected), (value, back)
    return back


def test_same_is_strict():
    # The helper the property tests rely on must itself tell these apart.
    assert not same(1, 1.0)
    assert not same(1, True)
    assert not same({0: "a"}, {"0": "a"})
    assert not same(0.0, -0.0)
    assert same(float("nan"), float("nan"))
    assert not same({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert not same(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2020, 1, 1))
    assert not same(2 * pq.um, 2 * pq.mm)
    assert not same(pq.Quantity([1.0, 2.0], "s"), pq.Quantity(1.0, "s"))


# ---------------------------------------------------------------------------
# Property tests.

MINUTE_OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
ODD_OFFSETS = st.integers(-(86_400_000_000 - 1), 86_400_000_000 - 1).map(
    lambda us: dt.timezone(dt.timedelta(microseconds=us))
)

INTS = st.one_of(
    st.integers(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**70, -(10**40)]),
)
SCALARS = st.one_of(
    st.text(),
    st.sampled_from(['"""', "a\nb", '\\"\n"', "\x00\x1b\x7f\u2028\ufeff", "", "\t\r\n"]),
    INTS,
    st.floats(),
    st.booleans(),
    st.none(),
    st.datetimes(),
    st.datetimes(timezones=MINUTE_OFFSETS | ODD_OFFSETS | st.just(dt.timezone.utc)),
    st.datetimes(timezones=st.timezones()),
    st.dates(),
    st.times(),
    st.times(timezones=MINUTE_OFFSETS | ODD_OFFSETS),
)
KEYS = st.one_of(
    st.text(),
    st.text().map(lambda s: "$" + s),
    st.sampled_from(["", "$type", "$int_keys", "$$type", "0", "-1", "a.b", "[x]", "é", "value"]),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, 4]),
)


def no_collision(d: dict) -> bool:
    names = [str(k) for k in d]
    return len(names) == len(set(names))


def dicts(values):
    return st.dictionaries(KEYS, values, max_size=5).filter(no_collision)


VALUES = st.recursive(
    SCALARS, lambda children: st.lists(children, max_size=5) | dicts(children), max_leaves=25
)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(dicts(VALUES))
def test_dict_roundtrip(value):
    text = dumps(value, what=WHAT)
    raw = tomllib.loads(text)
    assert same(decode(raw, what=WHAT), value)
    # Writing what was read gives the same text: the layout is a function of the value.
    assert dumps(loads(text, what=WHAT), what=WHAT) == text


@PROPERTY
@given(st.lists(VALUES, max_size=6))
def test_list_root_roundtrip(value):
    text = dumps(value, what=WHAT)
    assert tomllib.loads(text)["$type"] == "list"
    assert same(loads(text, what=WHAT), value)


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_any_text_roundtrips_as_key_and_value(text):
    assert_roundtrip({text: text, "multi": text + "\n" + text})


# ---------------------------------------------------------------------------
# Plain values.


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        2**63 - 1,
        -(2**63),
        1.5,
        1e-300,
        5e-324,
        1e300,
        float("inf"),
        float("-inf"),
        -0.0,
        True,
        False,
        "",
        "plain",
        "ünïcødé 😀",
        "a\nb",
        'q"uo"te\\',
        "\x00\x01\x1f\x7f\x85",
        "tab\tcr\r",
        '"""',
        "''' end\"",
        dt.date(1, 1, 1),
        dt.date(9999, 12, 31),
        dt.time(0, 0),
        dt.time(23, 59, 59, 999999),
        dt.datetime(2024, 2, 29, 12, 0, 0, 1),
        dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.timezone.utc),
        dt.datetime(2024, 2, 29, 12, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
    ],
)
def test_plain_values(value):
    assert_roundtrip({"x": value, "in_list": [value], "in_dict": {"y": value}})


def test_nan_and_negative_zero():
    back = roundtrip({"nan": float("nan"), "nz": -0.0, "arr": [float("nan"), -0.0]})
    assert math.isnan(back["nan"]) and math.isnan(back["arr"][0])
    assert math.copysign(1, back["nz"]) == -1 and math.copysign(1, back["arr"][1]) == -1


def test_big_ints_are_tagged_and_int64_is_not():
    text = dumps({"a": 2**63 - 1, "b": 2**70, "c": -(2**63) - 1}, what=WHAT)
    assert "a = 9223372036854775807\n" in text
    assert 'b = { "$type" = "int", value = "1180591620717411303424" }' in text
    assert_roundtrip({"a": 2**63 - 1, "b": 2**70, "c": -(2**63) - 1})


def test_none():
    text = dumps({"a": None, "b": [None]}, what=WHAT)
    assert 'a = { "$type" = "none" }' in text
    assert_roundtrip({"a": None, "b": [None, 1]})


def test_tuple_and_mapping_and_subclasses():
    point = collections.namedtuple("point", "x y")
    value = {
        "t": (1, (2, 3)),
        "nt": point(1, 2),
        "m": types.MappingProxyType({"k": 1}),
        "od": collections.OrderedDict([("b", 1), ("a", 2)]),
    }
    expected = {"t": [1, [2, 3]], "nt": [1, 2], "m": {"k": 1}, "od": {"b": 1, "a": 2}}
    assert_roundtrip(value, expected)


def test_insertion_order_is_kept_around_sections():
    value = {
        "z": 1,
        "inner": {"b": 2, "a": {"deep": 1}, "c": 3},
        "y": 2,
        "big": {f"k{i}": "x" * 20 for i in range(8)},
        "last": 0,
        "s1": {"q": 1, "sub": {"r": 2}},
        "s2": {},
    }
    back = assert_roundtrip(value)
    assert list(back) == list(value)
    assert list(back["inner"]) == ["b", "a", "c"]


def test_layout_is_readable():
    text = dumps(
        {
            "name": "rec",
            "notes": "line 1\nline 2",
            "probe": {"x": 1, "tetrodes": [{"id": 1}, {"id": 2}], "site": {"depth": 2}},
        },
        what=WHAT,
    )
    lines = text.splitlines()
    assert "[probe]" in lines
    assert "[probe.site]" in lines
    assert "tetrodes = [{ id = 1 }, { id = 2 }]" in lines
    assert 'notes = """' in lines and 'line 2"""' in lines


def test_long_arrays_wrap_and_read_back():
    value = {
        "a": list(range(500)),
        "nested": [[float(i)] * 30 for i in range(4)],
        "tables": [{"k": "v" * 30, "arr": list(range(40))} for _ in range(3)],
    }
    text = dumps(value, what=WHAT)
    assert max(len(line) for line in text.splitlines()) < 120
    assert_roundtrip(value)


def test_big_array_is_fast():
    value = {"a": np.random.default_rng(0).random(20_000)}
    start = time.perf_counter()
    back = roundtrip(value)
    assert time.perf_counter() - start < 2.0
    assert back["a"] == value["a"].tolist()


# ---------------------------------------------------------------------------
# Keys.


def test_int_keys_and_str_digit_keys_stay_apart():
    int_text = dumps({0: "mecr"}, what=WHAT)
    assert '"$int_keys" = [0]' in int_text
    assert_roundtrip({0: "mecr"})
    assert_roundtrip({"0": "mecr"})
    back = roundtrip({"a": {0: "x", 5: "y", "7": "z"}, "b": {"0": "s"}})
    assert list(back["a"]) == [0, 5, "7"] and list(back["b"]) == ["0"]
    assert_roundtrip({-(2**63): 1, 2**63 - 1: 2, -1: 3})


def test_numpy_int_keys():
    back = roundtrip({np.int64(3): "a", np.uint8(4): "b"})
    assert same(back, {3: "a", 4: "b"})


def test_dollar_keys_are_escaped():
    value = {"$type": "quantity", "value": 2.0, "unit": "um", "$int_keys": [1], "$$x": 1}
    text = dumps(value, what=WHAT)
    assert '"$$type" = "quantity"' in text
    assert '"$$$x" = 1' in text
    assert_roundtrip(value)
    assert_roundtrip({"": 1, "a": {"": {"": 2}}})


def test_colliding_keys_refused():
    for value in ({0: "a", "0": "b"}, {"x": {"-1": 1, -1: 2}}, {np.int64(0): 1, "0": 2}):
        with pytest.raises(InvalidValueError) as info:
            dumps(value, what=WHAT)
        assert WHAT in str(info.value) and "0" in str(info.value) or "-1" in str(info.value)
    with pytest.raises(InvalidValueError, match=r"\['x'\]"):
        dumps({"x": {"-1": 1, -1: 2}}, what=WHAT)


@pytest.mark.parametrize("key", [True, 1.5, None, (1, 2), np.bool_(False), b"k"])
def test_bad_key_types_refused(key):
    with pytest.raises(InvalidTypeError) as info:
        dumps({"outer": [{key: 1}]}, what=WHAT)
    message = str(info.value)
    assert message.startswith(WHAT + ": key ")
    assert "['outer'][0]" in message and "must be str or int" in message


def test_int_key_beyond_int64_refused():
    with pytest.raises(InvalidValueError, match=r"\['a'\].*64"):
        dumps({"a": {2**63: 1}}, what=WHAT)


# ---------------------------------------------------------------------------
# Dates and times with time zones.


def test_zoneinfo_datetime_keeps_its_zone():
    value = dt.datetime(2024, 7, 1, 12, 30, 5, 123456, tzinfo=OSLO)
    text = dumps({"start": value}, what=WHAT)
    assert 'tz = "Europe/Oslo"' in text and "2024-07-01T12:30:05.123456+02:00" in text
    back = roundtrip({"start": value})["start"]
    assert back.tzinfo is OSLO and back == value and back.utcoffset() == value.utcoffset()


@pytest.mark.parametrize("fold", [0, 1])
def test_zoneinfo_ambiguous_and_missing_times(fold):
    ambiguous = dt.datetime(2023, 10, 29, 2, 30, tzinfo=OSLO, fold=fold)  # clocks go back
    missing = dt.datetime(2023, 3, 26, 2, 30, tzinfo=OSLO, fold=fold)  # clocks go forward
    for value in (ambiguous, missing):
        back = roundtrip({"t": value})["t"]
        assert back.tzinfo is OSLO
        assert back.replace(tzinfo=None) == value.replace(tzinfo=None)
        assert back.utcoffset() == value.utcoffset()


def test_sub_minute_offset_datetime():
    tz = dt.timezone(dt.timedelta(seconds=3661))
    value = dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=tz)
    text = dumps({"t": value}, what=WHAT)
    assert "utcoffset = 3661.0" in text and "2024-01-02T03:04:05.000006" in text
    back = assert_roundtrip({"t": value})["t"]
    assert back.utcoffset() == dt.timedelta(seconds=3661)


def test_other_tzinfo_comes_back_as_fixed_offset():
    from dateutil import tz as dateutil_tz

    value = dt.datetime(2024, 1, 2, 3, 4, tzinfo=dateutil_tz.gettz("America/New_York"))
    back = roundtrip({"t": value})["t"]
    assert isinstance(back.tzinfo, dt.timezone)
    assert back == value and back.utcoffset() == dt.timedelta(hours=-5)
    named = dt.datetime(2024, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET"))
    assert roundtrip({"t": named})["t"].utcoffset() == dt.timedelta(hours=1)


def test_aware_time():
    value = dt.time(7, 30, 0, 250, tzinfo=dt.timezone(dt.timedelta(hours=-3, seconds=-7)))
    text = dumps({"alarm": value}, what=WHAT)
    assert '"$type" = "time"' in text
    back = assert_roundtrip({"alarm": value})["alarm"]
    assert back.utcoffset() == value.utcoffset()


def test_time_with_zoneinfo_refused():
    with pytest.raises(InvalidValueError, match=r"\['t'\]"):
        dumps({"t": dt.time(1, 2, tzinfo=OSLO)}, what=WHAT)


# ---------------------------------------------------------------------------
# numpy and quantities.

UNITS = [
    pq.um,
    pq.mm,
    pq.mV,
    pq.s,
    pq.Hz,
    1 / pq.s,
    pq.dimensionless,
    pq.m**2,
    pq.um / pq.s,
    pq.degC,
    pq.percent,
    pq.kg * pq.m / pq.s**2,
]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.dimensionality.string)
def test_quantity_units(unit):
    scalar = 2.5 * unit
    array = pq.Quantity([[1.0, float("nan")], [3.0, -0.0]], unit.dimensionality.string)
    back = assert_roundtrip({"scalar": scalar, "array": array})
    assert back["scalar"].shape == () and back["array"].shape == (2, 2)
    assert back["scalar"].dimensionality == unit.dimensionality


def test_quantity_prints_like_the_original():
    back = roundtrip({"d": 2 * pq.um})["d"]
    assert type(back) is pq.Quantity and str(back) == "2.0 um"
    text = dumps({"d": 2 * pq.um}, what=WHAT)
    assert 'd = { "$type" = "quantity", value = 2.0, unit = "um" }' in text


def test_quantity_dtypes():
    assert_roundtrip(
        {
            "i": pq.Quantity(np.array([1, 2, 3]), "um"),
            "b": pq.Quantity(np.array([True, False]), "s"),
            "f": pq.Quantity(np.array([], dtype=float), "s"),
        }
    )
    back = roundtrip({"f32": pq.Quantity(np.array([0.1], dtype=np.float32), "mV")})["f32"]
    assert back.magnitude.tolist() == np.array([0.1], dtype=np.float32).tolist()


def test_uncertain_quantity():
    scalar = pq.UncertainQuantity(2.0, pq.mm, 0.1)
    array = pq.UncertainQuantity([1.0, 2.0], pq.um / pq.s, [0.1, float("nan")])
    text = dumps({"s": scalar}, what=WHAT)
    assert '"$type" = "uncertain_quantity"' in text and "uncertainty = 0.1" in text
    back = assert_roundtrip({"s": scalar, "a": array})
    assert back["s"].shape == () and back["a"].uncertainty.shape == (2,)


def test_quantities_in_lists_and_nested_dicts():
    value = {
        "probe": [{"x": 1 * pq.um, "y": [2 * pq.mm, pq.Quantity([1, 2], "Hz")]}],
        "deep": {"deeper": {"q": 3.0 * pq.s}},
    }
    assert_roundtrip(value)
    assert_roundtrip([2 * pq.um, {"q": 1 * pq.s}])


def test_quantity_like_plain_dicts_stay_dicts():
    for value in ({"value": 1000, "unit": "um", "definition": "depth"}, {"value": 2.9, "unit": "mm"}):
        back = assert_roundtrip({"depth": value, "list": [value]})
        assert type(back["depth"]) is dict and type(back["list"][0]) is dict


def test_unreadable_units_and_complex_quantities_refused():
    with pytest.raises(InvalidTypeError, match=r"\['q'\].*complex"):
        dumps({"q": pq.Quantity(np.array([1 + 2j]), "s")}, what=WHAT)
    with pytest.raises(InvalidValueError, match="shape"):
        dumps({"q": pq.Quantity(np.zeros((0, 3)), "s")}, what=WHAT)


def test_numpy_scalars_and_arrays():
    value = {
        "i64": np.int64(-5),
        "i8": np.int8(7),
        "u64": np.uint64(2**64 - 1),
        "f32": np.float32(0.5),
        "f64": np.float64(1.25),
        "b": np.bool_(True),
        "s": np.str_("text"),
        "a1": np.arange(3),
        "a2": np.array([[1.5, np.nan], [np.inf, 0.0]]),
        "obj": np.array([{"k": 1}, None, "s"], dtype=object),
        "zero_d": np.array(4.0),
    }
    expected = {
        "i64": -5,
        "i8": 7,
        "u64": 2**64 - 1,
        "f32": 0.5,
        "f64": 1.25,
        "b": True,
        "s": "text",
        "a1": [0, 1, 2],
        "a2": [[1.5, float("nan")], [float("inf"), 0.0]],
        "obj": [{"k": 1}, None, "s"],
        "zero_d": 4.0,
    }
    assert_roundtrip(value, expected)
    assert_roundtrip(np.array([[1, 2], [3, 4]]), [[1, 2], [3, 4]])


def test_numpy_datetime_arrays_refused():
    with pytest.raises(InvalidTypeError, match=r"\['t'\].*datetime64"):
        dumps({"t": np.array(["2020-01-01"], dtype="datetime64[ns]")}, what=WHAT)


# ---------------------------------------------------------------------------
# What cannot be stored.


@pytest.mark.parametrize(
    "bad, kind, hint",
    [
        ({1, 2}, "set", "store a list instead"),
        (b"raw", "bytes", "store a str"),
        (1 + 2j, "complex", "real and imaginary"),
        (np.complex128(1j), "complex", "real and imaginary"),
        (dt.timedelta(seconds=1), "timedelta", "seconds"),
        (object(), "object", "store a dict"),
    ],
)
def test_unstorable_values_refused_with_path(bad, kind, hint):
    with pytest.raises(InvalidTypeError) as info:
        dumps({"probe": [{"x": bad}]}, what=WHAT)
    message = str(info.value)
    assert message.startswith(f"{WHAT}: value at ['probe'][0]['x'] is ")
    assert kind in message and hint in message


def test_message_matches_the_documented_form():
    with pytest.raises(InvalidTypeError) as info:
        dumps({"probe": [{"x": {1}}]}, what=WHAT)
    assert str(info.value) == f"{WHAT}: value at ['probe'][0]['x'] is a set; store a list instead"


def test_unstorable_in_root_list():
    with pytest.raises(InvalidTypeError, match=r"value at \[1\]\[0\] is a set"):
        dumps([1, [{2}]], what=WHAT)


@pytest.mark.parametrize("root", [1, "text", None, {1}, 2 * pq.um, np.array(3)])
def test_bad_roots_refused(root):
    with pytest.raises(InvalidTypeError, match=WHAT):
        dumps(root, what=WHAT)


def test_lone_surrogates_refused():
    with pytest.raises(InvalidValueError, match=r"\['a'\].*surrogate"):
        dumps({"a": "x\udc80"}, what=WHAT)
    with pytest.raises(InvalidValueError, match="surrogate"):
        dumps({"k\ud800": 1}, what=WHAT)


def nested(depth: int):
    """A value whose containers (the root dict included) are ``depth`` levels deep."""
    value: object = 1
    for level in range(depth - 1):
        value = [value] if level % 2 else {"k": value}
    return {"root": value}


def test_nesting_limit():
    text = dumps(nested(48), what=WHAT)
    assert same(loads(text, what=WHAT), nested(48))
    with pytest.raises(InvalidValueError) as info:
        dumps(nested(49), what=WHAT)
    assert WHAT in str(info.value) and "48" in str(info.value) and "['root']" in str(info.value)
    loop: list = []
    loop.append(loop)
    with pytest.raises(InvalidValueError):
        dumps({"loop": loop}, what=WHAT)


def test_nesting_limit_counts_tags_and_quantity_dimensions():
    def wrapped(value, times=45):  # the value ends up at level 47
        for _ in range(times):
            value = [value]
        return {"root": value}

    assert_roundtrip(wrapped(2 * pq.um))  # tag 47, no arrays
    assert_roundtrip(wrapped(pq.Quantity([1.0], "s")))  # tag 47, value array 48
    assert_roundtrip(wrapped(None))
    with pytest.raises(InvalidValueError, match="48"):
        dumps(wrapped(pq.Quantity([[1.0]], "s")), what=WHAT)  # inner array at 49
    with pytest.raises(InvalidValueError, match="48"):
        dumps(wrapped(None, 47), what=WHAT)  # tag at 49


# ---------------------------------------------------------------------------
# Reading.


def test_decode_returns_new_containers():
    raw = parse(dumps({"a": [1, {"b": [2]}], "q": pq.Quantity([1.0], "s"), 0: {}}, what=WHAT), what=WHAT)
    snapshot = repr(raw)
    first = decode(raw, what=WHAT)
    first["a"].append(3)
    first["a"][1]["b"].append(4)
    first["q"][0] = 9 * pq.s
    first[0]["new"] = 1
    second = decode(raw, what=WHAT)
    assert second["a"] == [1, {"b": [2]}] and second[0] == {}
    assert second["q"].magnitude.tolist() == [1.0]
    assert repr(raw) == snapshot
    root_list = parse(dumps([[1], {"x": 2}], what=WHAT), what=WHAT)
    decode(root_list, what=WHAT)[0].append(5)
    assert decode(root_list, what=WHAT) == [[1], {"x": 2}]


def test_bom_and_empty_text():
    assert loads("\ufeffa = 1\n", what=WHAT) == {"a": 1}
    assert loads(b"\xef\xbb\xbfa = 1\n", what=WHAT) == {"a": 1}
    assert loads("", what=WHAT) == {} and loads(" \n\t\n", what=WHAT) == {}
    assert loads(b"", what=WHAT) == {}
    assert dumps({}, what=WHAT) == "" and loads(dumps({}, what=WHAT), what=WHAT) == {}


@pytest.mark.parametrize("text", ["a = ", "a = 1\na = 2", "[x\n", b"a = '\xff'"])
def test_malformed_toml(text):
    with pytest.raises(CorruptFileError) as info:
        loads(text, what="file 'actions/rec-1/attributes.toml'")
    assert "file 'actions/rec-1/attributes.toml'" in str(info.value)
    assert "restore it with git" in str(info.value)
    assert info.value.path is None


def test_tomllib_position_is_in_the_message():
    with pytest.raises(CorruptFileError, match=r"not valid TOML: .*line 2"):
        parse("a = 1\nb = = 2\n", what=WHAT)


@pytest.mark.parametrize(
    "text, where",
    [
        ('x = { "$type" = "frobnicate" }', "['x']"),
        ('[a]\nb = [1, { "$type" = "unknown", value = 1 }]', "['a']['b'][1]"),
        ('x = { "$type" = "int", value = "12a" }', "['x']"),
        ('x = { "$type" = "int", value = 12 }', "['x']"),
        ('x = { "$type" = "none", extra = 1 }', "['x']"),
        ('x = { "$type" = "quantity", value = 1.0 }', "['x']"),
        ('x = { "$type" = "quantity", value = "1", unit = "s" }', "['x']"),
        ('x = { "$type" = "quantity", value = 1.0, unit = "parsec_of_cheese" }', "['x']"),
        ('x = { "$type" = "quantity", value = [[1.0], 2.0], unit = "s" }', "['x']"),
        ('x = { "$type" = "quantity", value = 1.0, unit = "9**9**9**9" }', "['x']"),
        ('x = { "$type" = "datetime", value = 2020-01-01T00:00:00 }', "['x']"),
        ('x = { "$type" = "datetime", value = 2020-01-01T00:00:00Z, tz = "Nowhere/City" }', "['x']"),
        ('x = { "$type" = "time", value = 01:00:00, utcoffset = true }', "['x']"),
        ('x = { "$type" = "list", value = [] }', "['x']"),
        ('[x]\n"$int_keys" = [1]\n"2" = 3', "['x']"),
        ('[x]\n"$int_keys" = ["1"]\n"1" = 3', "['x']"),
        ('[x]\n"$other" = 1', "['x'] has the key '$other'"),
        ('"$type" = "quantity"\nvalue = 1.0\nunit = "s"', "document"),
        ('"$type" = "list"\nvalue = 3', "document"),
        ('"$type" = "list"\nvalue = [1, { "$type" = "bad" }]', "['value'][1]"),
    ],
)
def test_corrupt_tags(text, where):
    start = time.perf_counter()
    with pytest.raises(CorruptFileError) as info:
        loads(text, what=WHAT)
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert message.startswith(WHAT + ": ") and where in message, message


def test_hand_written_tags_read():
    text = """
    [probe]
    depth = { unit = "um", "$type" = "quantity", value = 1000 }
    start = { "$type" = "datetime", value = 2024-01-01T10:00:00+01:00, tz = "Europe/Oslo" }
    """
    back = loads(text, what=WHAT)
    assert same(back["probe"]["depth"], pq.Quantity(1000, "um"))
    assert back["probe"]["start"] == dt.datetime(2024, 1, 1, 10, tzinfo=OSLO)
    assert back["probe"]["start"].tzinfo is OSLO


def test_decode_refuses_non_dicts():
    with pytest.raises(InvalidTypeError):
        decode([1, 2], what=WHAT)


def test_emitter_bugs_never_reach_disk(monkeypatch):
    # dumps re-reads its own output; a broken escape must be caught, not written.
    import expipe_git.tomltext as tomltext

    monkeypatch.setitem(tomltext._ESCAPES, "\n", "\\t")
    with pytest.raises(InvalidValueError, match="bug"):
        dumps({"a": ["x\ny"]}, what=WHAT)
