"""Tree diffs found by splicing agree with parsing both trees whole, for any edit."""

from __future__ import annotations

import hashlib

import pytest
from dulwich.objects import Tree, parse_tree
from hypothesis import given, settings
from hypothesis import strategies as st

from expipe_git.git.trees import TreeDiff

FILE, FOLDER = 0o100644, 0o040000

# Names that make tree bytes alike across entries: shared prefixes and
# suffixes, spaces, digits that look like modes, and bytes above ASCII.
names = st.one_of(
    st.sampled_from(
        [b"a", b"ab", b"abc", b"b", b"rec-00001", b"rec-00002", b"x 100644 y", b"40000", b"\xc3\xa9"]
    ),
    st.binary(min_size=1, max_size=12).filter(lambda n: b"\0" not in n and b"/" not in n),
)
ids = st.integers(0, 5).map(lambda n: hashlib.sha1(b"%d" % n).hexdigest().encode())
entries = st.dictionaries(names, st.tuples(st.sampled_from([FILE, FOLDER]), ids), max_size=30)


def serialize(listing: dict[bytes, tuple[int, bytes]]) -> tuple[bytes, bytes]:
    tree = Tree()
    for name, (mode, sha) in listing.items():
        tree.add(name, mode, sha)
    return tree.id, tree.as_raw_string()


def expected(new: bytes, old: bytes) -> list:
    before = {name: (mode, sha) for name, mode, sha in parse_tree(old, 20)}
    return [(n, m, s, before.get(n)) for n, m, s in parse_tree(new, 20) if before.get(n) != (m, s)]


@st.composite
def edited(draw, listing):
    """``listing`` edited: entries added, removed, given new ids or modes."""
    new = dict(listing)
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(["add", "remove", "retarget", "mode"]))
        if edit == "add" or not new:
            new[draw(names)] = (draw(st.sampled_from([FILE, FOLDER])), draw(ids))
        else:
            name = draw(st.sampled_from(sorted(new)))
            mode, sha = new[name]
            if edit == "remove":
                del new[name]
            elif edit == "retarget":
                new[name] = (mode, draw(ids))
            else:
                new[name] = (FOLDER if mode == FILE else FILE, sha)
    return new


@st.composite
def histories(draw):
    """Versions of one folder, each an edit of the one before."""
    versions = [draw(entries)]
    for _ in range(draw(st.integers(1, 4))):
        versions.append(draw(edited(versions[-1])))
    return versions


@settings(max_examples=300, deadline=None)
@given(histories(), st.booleans())
def test_changed_entries_match_a_whole_parse(versions, newest_first):
    trees = [serialize(listing) for listing in versions]
    raw = dict(trees)
    diff = TreeDiff(raw.__getitem__, lambda sha: ValueError(sha))
    pairs = list(zip(trees[1:], trees, strict=False))  # (newer, older)
    # A push walks oldest first, a fetch's check newest first: each diff
    # then starts from the version the previous one spliced.
    by_name = TreeDiff(raw.__getitem__, lambda sha: ValueError(sha))
    for (tree_id, tree_raw), (base_id, base_raw) in reversed(pairs) if newest_first else pairs:
        old = {n: (m, s) for n, m, s in parse_tree(base_raw, 20)}
        new = {n: (m, s) for n, m, s in parse_tree(tree_raw, 20)}
        gone, came = by_name.differing(base_id, tree_id)
        assert gone == {n: e for n, e in old.items() if new.get(n) != e}
        assert came == {n: e for n, e in new.items() if old.get(n) != e}
        changed, whole = diff.changed(tree_id, base_id)
        assert sorted(changed) == sorted(expected(tree_raw, base_raw))
        if not whole:  # at most one entry changed, nothing added or removed
            assert len(changed) <= 1 and all(previous is not None for *_, previous in changed)
            assert [n for n, _, _ in parse_tree(tree_raw, 20)] == [n for n, _, _ in parse_tree(base_raw, 20)]
    for sha, data in trees:
        assert diff.entries(sha) == list(parse_tree(data, 20))


def test_a_chain_of_versions_is_spliced_one_from_the_next():
    """Each version of a growing folder is known through its previous one, never parsed whole."""
    listing: dict[bytes, tuple[int, bytes]] = {}
    raw: dict[bytes, bytes] = {}
    versions = []
    for i in range(300):
        listing[b"rec-%05d" % (i * 7919 % 1000)] = (FOLDER, hashlib.sha1(b"%d" % i).hexdigest().encode())
        if i % 3 == 0:
            first = sorted(listing)[0]
            listing[first] = (FOLDER, hashlib.sha1(b"again %d" % i).hexdigest().encode())
        sha, data = serialize(listing)
        raw[sha] = data
        versions.append(sha)
    parsed_whole = []
    diff = TreeDiff(raw.__getitem__, lambda sha: ValueError(sha))
    real_parse = diff.entries

    def counting(sha):
        if sha not in diff._entries:
            parsed_whole.append(sha)
        return real_parse(sha)

    diff.entries = counting
    for older, newer in zip(versions, versions[1:], strict=False):
        changed, _ = diff.changed(newer, older)
        assert sorted(changed) == sorted(expected(raw[newer], raw[older]))
    assert parsed_whole == [versions[0]]


def test_differing_with_no_tree_on_one_side_lists_every_entry():
    sha, data = serialize({b"a": (FILE, hashlib.sha1(b"1").hexdigest().encode()), b"d": (FOLDER, b"f" * 40)})
    diff = TreeDiff({sha: data}.__getitem__, lambda sha: ValueError(sha))
    everything = {b"a": (FILE, hashlib.sha1(b"1").hexdigest().encode()), b"d": (FOLDER, b"f" * 40)}
    assert diff.differing(None, sha) == ({}, everything)
    assert diff.differing(sha, None) == (everything, {})
    assert diff.differing(sha, sha) == ({}, {})


def test_modes_with_a_leading_zero_are_read_unless_strict():
    """git only warns about '040000': history reads such trees, a check of a remote refuses them."""
    old = b"040000 d\0" + b"\x01" * 20 + b"100644 f\0" + b"\x02" * 20
    new = b"040000 d\0" + b"\x03" * 20 + b"100644 f\0" + b"\x02" * 20
    raw = {b"1" * 40: old, b"2" * 40: new}
    lenient = TreeDiff(raw.__getitem__, lambda sha: ValueError(sha), strict=False)
    assert lenient.differing(b"1" * 40, b"2" * 40) == (
        {b"d": (FOLDER, b"01" * 20)},
        {b"d": (FOLDER, b"03" * 20)},
    )
    strict = TreeDiff(raw.__getitem__, lambda sha: LookupError(sha))
    with pytest.raises(LookupError):
        strict.changed(b"2" * 40, b"1" * 40)


def test_a_tree_that_is_not_a_tree_raises_the_callers_error():
    good_id, good = serialize({b"a": (FILE, hashlib.sha1(b"1").hexdigest().encode())})
    bad_id = b"f" * 40
    raw = {good_id: good, bad_id: good[:-3]}
    diff = TreeDiff(raw.__getitem__, lambda sha: LookupError(f"bad tree {sha.decode()}"))
    with pytest.raises(LookupError, match="bad tree f+"):
        diff.changed(good_id, bad_id)
