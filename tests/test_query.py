"""project.actions.where(...) and project.entities.where(...): criteria, and an index right for any HEAD."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time

import hypothesis.strategies as st
import pytest
import quantities as pq
from conftest import assert_clean, commits, git
from hypothesis import HealthCheck, given, settings

import expipe_git as expipe
from expipe_git import query

UTC = dt.timezone.utc
OSLO_SUMMER = dt.timezone(dt.timedelta(hours=2))


@pytest.fixture(autouse=True)
def central_european_time(monkeypatch):
    """Local time with summer time (no tz database needed), so naive and aware times differ."""
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def names(selection) -> list[str]:
    return list(selection)


@pytest.fixture
def lab(project):
    """Three recordings and a surgery, with tags, users, entities, dates and a module."""
    with project.transaction("lab"):
        for name, tags, when, box, depth in [
            ("rec-1", ["place cell", "novel"], dt.datetime(2026, 5, 3, 10), "novel box", 3 * pq.um),
            ("rec-2", ["place cell"], dt.datetime(2026, 4, 30, 23, 59), "home box", 4 * pq.um),
            ("rec-3", ["grid cell", "novel"], dt.datetime(2026, 5, 31, 23, 30), "novel box", 3 * pq.mm),
        ]:
            action = project.require_action(name)
            action.type = "recording"
            action.tags = tags
            action.datetime = when
            action.location = box
            action.users = ["alice"] if name != "rec-3" else ["alice", "bob"]
            action.entities = ["rat2"] if name != "rec-2" else ["rat1"]
            action.require_module(
                name="electrophysiology", contents={"probe": {"depth": depth, "channels": 32}}
            )
        surgery = project.require_action("surgery-1")
        surgery.type = "surgery"
        surgery.tags = ["novel"]
        for rat in ("rat1", "rat2"):
            entity = project.require_entity(rat)
            entity.type = "rat"
            entity.tags = ["female"] if rat == "rat2" else ["male"]
    return project


def test_each_criterion_alone_and_combined(lab):
    actions = lab.actions
    assert names(actions.where()) == ["rec-1", "rec-2", "rec-3", "surgery-1"]
    assert names(actions.where(tags="novel")) == ["rec-1", "rec-3", "surgery-1"]
    assert names(actions.where(tags=["novel", "place cell"])) == ["rec-1"]
    assert names(actions.where(any_tags=["grid cell", "place cell"])) == ["rec-1", "rec-2", "rec-3"]
    assert names(actions.where(any_tags=[])) == []
    assert names(actions.where(type="surgery")) == ["surgery-1"]
    assert names(actions.where(location="novel box")) == ["rec-1", "rec-3"]
    assert names(actions.where(users="bob")) == ["rec-3"]
    assert names(actions.where(users=["alice", "bob"])) == ["rec-3"]
    assert names(actions.where(entities="rat2")) == ["rec-1", "rec-3"]
    # "which recordings of rat 2 in the novel box since May?"
    found = actions.where(type="recording", entities="rat2", location="novel box", since="2026-05-01")
    assert names(found) == ["rec-1", "rec-3"]
    assert names(lab.entities.where(type="rat", tags="female")) == ["rat2"]


@pytest.mark.parametrize("move_after", [0, 1000], ids=["index-moved", "changes-checked-in-python"])
def test_dates_are_inclusive_and_a_bare_until_date_is_the_whole_day(lab, move_after, monkeypatch):
    monkeypatch.setattr(query, "_MOVE_AFTER", move_after)
    actions = lab.actions
    assert names(actions.where(since=dt.datetime(2026, 5, 3, 10))) == ["rec-1", "rec-3"]
    assert names(actions.where(until=dt.datetime(2026, 5, 3, 10))) == ["rec-1", "rec-2"]
    assert names(actions.where(until="2026-04-30")) == ["rec-2"]
    assert names(actions.where(until=dt.date(2026, 5, 31))) == ["rec-1", "rec-2", "rec-3"]
    assert names(actions.where(until="2026-05-31 23:00")) == ["rec-1", "rec-2"]
    assert names(actions.where(since=dt.date(2026, 5, 1), until=dt.date(2026, 5, 3))) == ["rec-1"]
    actions["rec-1"].datetime = dt.datetime(2026, 5, 4)  # midnight: the next day, not the 3rd
    assert names(actions.where(until="2026-05-03")) == ["rec-2"]
    assert names(actions.where(until=dt.datetime(2026, 5, 4))) == ["rec-1", "rec-2"]
    assert names(actions.where(since="2026-05-04", until="2026-05-04")) == ["rec-1"]
    # surgery-1 has no datetime: never matches a date criterion
    assert "surgery-1" not in actions.where(since="1970-01-01")


@pytest.mark.parametrize("move_after", [0, 1000], ids=["index-moved", "changes-checked-in-python"])
def test_time_zones_compare_as_instants(project, move_after, monkeypatch):
    monkeypatch.setattr(query, "_MOVE_AFTER", move_after)
    assert names(project.actions.where()) == []  # the index is built before the actions come
    early = project.require_action("early")
    early.datetime = dt.datetime(2026, 6, 1, 1, 0, tzinfo=OSLO_SUMMER)  # 2026-05-31 23:00 UTC
    late = project.require_action("late")
    late.datetime = dt.datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
    naive = project.require_action("naive")
    naive.datetime = dt.datetime(2026, 6, 1, 1, 30)  # local time: CEST, 2026-05-31 23:30 UTC
    since = dt.datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    assert names(project.actions.where(since=since)) == ["late"]
    assert names(project.actions.where(until=since)) == ["early", "naive"]
    assert names(project.actions.where(since="2026-05-31 23:15 UTC", until="2026-05-31 23:45 +00:00")) == [
        "naive"
    ]
    # naive criteria are local time, as log --since takes them: 01:15 CEST is 23:15 UTC
    assert names(project.actions.where(since=dt.datetime(2026, 6, 1, 1, 15))) == ["late", "naive"]
    assert names(project.actions.where(until=dt.date(2026, 5, 31))) == []


def test_module_values_compare_quantities_by_value_and_unit(lab):
    actions = lab.actions
    assert names(actions.where(modules={"electrophysiology.probe.depth": 3 * pq.um})) == ["rec-1"]
    assert names(actions.where(modules={"electrophysiology.probe.depth": 3 * pq.mm})) == ["rec-3"]
    assert names(actions.where(modules={"electrophysiology.probe.depth": 3})) == []
    assert names(actions.where(modules={("electrophysiology", "probe", "channels"): 32.0})) == [
        "rec-1",
        "rec-2",
        "rec-3",
    ]
    assert names(actions.where(modules={"electrophysiology.probe.channels": 16})) == []
    assert names(actions.where(modules={"tracking.box": "a"})) == []


def test_the_answer_is_a_read_only_mapping_of_objects(lab):
    found = lab.actions.where(tags="novel")
    assert len(found) == 3 and "rec-1" in found and "rec-2" not in found
    assert found["rec-1"] == lab.actions["rec-1"]
    assert [a.name for a in found.values()] == ["rec-1", "rec-3", "surgery-1"]
    with pytest.raises(KeyError, match="rec-2"):
        found["rec-2"]
    with pytest.raises(TypeError):
        found["x"] = 1


@pytest.mark.parametrize(
    "criteria, error, words",
    [
        ({"tag": "x"}, TypeError, ["tag", "tags"]),
        ({"tags": "x", "colour": "red", "size": 1}, TypeError, ["colour, size"]),
        ({"tags": 3}, TypeError, ["tags", "int"]),
        ({"tags": ["a", 3]}, TypeError, ["tags", "int"]),
        ({"any_tags": "a"}, TypeError, ["any_tags", "list"]),
        ({"type": ["a"]}, TypeError, ["type", "str"]),
        ({"since": "not a date at all"}, ValueError, ["since", "not a date at all"]),
        ({"until": 3.5}, TypeError, ["until", "float"]),
        ({"modules": ["a.b"]}, TypeError, ["modules", "dict"]),
        ({"modules": {"electrophysiology": 1}}, ValueError, ["electrophysiology", "module and a key"]),
        ({"modules": {"e.probe": {"depth": 1}}}, TypeError, ["leaf key"]),
        ({"modules": {"e.probe": object()}}, TypeError, ["object"]),
    ],
)
def test_bad_criteria_are_refused_before_any_work(project, criteria, error, words):
    index = os.path.join(project.path, ".git", "expipe-git", "query-index.sqlite")
    with pytest.raises(error) as caught:
        project.actions.where(**criteria)
    for word in words:
        assert word in str(caught.value)
    assert not os.path.exists(index)


def test_entities_have_no_entities_criterion(lab):
    with pytest.raises(TypeError, match="entities.where.. got unknown criteria entities"):
        lab.entities.where(entities="rat1")


def test_mutations_are_seen_at_once_and_write_nothing_to_the_index(lab):
    index = os.path.join(lab.path, ".git", "expipe-git", "query-index.sqlite")
    assert names(lab.actions.where(tags="grid cell")) == ["rec-3"]
    stamp = os.stat(index).st_mtime_ns
    with commits(lab.path, 1):
        lab.actions["rec-1"].tags.append("grid cell")
    assert os.stat(index).st_mtime_ns == stamp
    assert names(lab.actions.where(tags="grid cell")) == ["rec-1", "rec-3"]
    lab.delete_action("rec-3")
    assert names(lab.actions.where(tags="grid cell")) == ["rec-1"]
    lab.actions["rec-1"].modules["electrophysiology"]["probe"]["depth"] = 5 * pq.um
    assert names(lab.actions.where(modules={"electrophysiology.probe.depth": 5 * pq.um})) == ["rec-1"]
    assert names(lab.actions.where(modules={"electrophysiology.probe.depth": 3 * pq.um})) == []


def test_old_states_are_queried_with_at(lab):
    before = lab.get_commit().id
    lab.actions["rec-2"].tags = ["novel"]
    assert names(lab.actions.where(tags="novel")) == ["rec-1", "rec-2", "rec-3", "surgery-1"]
    assert names(lab.at(before).actions.where(tags="novel")) == ["rec-1", "rec-3", "surgery-1"]
    assert names(lab.at("HEAD~2").actions.where()) == []  # before the lab's transaction


def test_transactions_see_their_own_changes(lab):
    with lab.transaction("retag"):
        lab.actions["rec-2"].tags = ["novel"]
        assert names(lab.actions.where(tags="novel")) == ["rec-1", "rec-2", "rec-3", "surgery-1"]
        raise_inside = False
    assert not raise_inside
    assert "rec-2" in lab.actions.where(tags="novel")


def test_hand_commits_resets_and_a_deleted_index_are_seen(lab):
    path = lab.path
    assert names(lab.actions.where(tags="grid cell")) == ["rec-3"]
    # a commit with stock git
    attributes = next((path / "actions").glob("*/rec-2/attributes.toml"))
    text = attributes.read_text().replace('"place cell"', '"grid cell"')
    attributes.write_text(text)
    git(path, "commit", "-qam", "retag by hand")
    assert names(lab.actions.where(tags="grid cell")) == ["rec-2", "rec-3"]
    # git reset --hard moves HEAD back
    git(path, "reset", "-q", "--hard", "HEAD~1")
    assert names(lab.actions.where(tags="grid cell")) == ["rec-3"]
    # many changes at once (a pull, a big reset) move the index; a new process agrees
    with lab.transaction("many"):
        for i in range(100):
            lab.require_action(f"bulk-{i:03}").tags = ["grid cell"]
    assert len(lab.actions.where(tags="grid cell")) == 101
    reopened = expipe.get_project(path)
    assert len(reopened.actions.where(tags="grid cell")) == 101
    git(path, "reset", "-q", "--hard", "HEAD~1")
    assert names(reopened.actions.where(tags="grid cell")) == ["rec-3"]
    # the index is a cache: deleted or damaged, it is rebuilt
    index = path / ".git" / "expipe-git" / "query-index.sqlite"
    for suffix in ("", "-wal", "-shm"):
        (path / ".git" / "expipe-git" / f"query-index.sqlite{suffix}").unlink(missing_ok=True)
    assert names(expipe.get_project(path).actions.where(tags="grid cell")) == ["rec-3"]
    index.write_bytes(b"not a database" * 100)
    assert names(expipe.get_project(path).actions.where(tags="grid cell")) == ["rec-3"]
    assert_clean(path)


def test_pulls_and_merges_are_seen(lab, tmp_path):
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    lab.add_remote("origin", str(bare))
    lab.push()
    bob = expipe.clone(str(bare), tmp_path / "bob")
    assert names(bob.actions.where(tags="novel")) == ["rec-1", "rec-3", "surgery-1"]  # a clone builds it
    bob.actions["rec-2"].tags.append("pulled")
    bob.push()
    assert names(lab.actions.where(tags="pulled")) == []
    lab.actions["rec-1"].tags.append("mine")  # the histories diverge: the pull merges
    lab.pull()
    assert names(lab.actions.where(tags="pulled")) == ["rec-2"]
    assert names(lab.actions.where(tags="mine")) == ["rec-1"]
    assert_clean(lab.path)


def test_an_index_whose_tree_was_collected_by_git_gc_is_rebuilt(lab, monkeypatch):
    monkeypatch.setattr(query, "_MOVE_AFTER", 0)  # every query moves the index to HEAD
    path = lab.path
    lab.actions["rec-2"].tags = ["grid cell"]
    assert names(lab.actions.where(tags="grid cell")) == ["rec-2", "rec-3"]
    git(path, "reset", "-q", "--hard", "HEAD~1")  # the indexed tree is now unreachable
    git(path, "reflog", "expire", "--expire=now", "--all")
    git(path, "gc", "-q", "--prune=now")
    reopened = expipe.get_project(path)
    assert names(reopened.actions.where(tags="grid cell")) == ["rec-3"]
    assert_clean(path)


def test_a_read_only_git_folder_still_answers(lab, tmp_path):
    state = lab.path / ".git" / "expipe-git"
    shutil.rmtree(state)
    state.mkdir()
    os.chmod(state, 0o555)
    try:
        reopened = expipe.get_project(lab.path)
        assert names(reopened.actions.where(tags="novel")) == ["rec-1", "rec-3", "surgery-1"]
    finally:
        os.chmod(state, 0o755)


# ---------------------------------------------------------------------------
# The same answer as a Python loop over random projects and random criteria

TAGS = ["a", "b", "place cell", "ø"]
USERS = ["alice", "bob"]
RATS = ["rat1", "rat2"]
TYPES = [None, "recording", "surgery"]
BASE = dt.datetime(2026, 5, 1, 12)
ZONES = [None, UTC, OSLO_SUMMER, dt.timezone(dt.timedelta(hours=-7))]

whens = st.one_of(
    st.none(),
    st.builds(
        lambda hours, zone: (BASE + dt.timedelta(hours=hours)).replace(tzinfo=zone),
        st.integers(-8, 8),
        st.sampled_from(ZONES),
    ),
)
actions = st.fixed_dictionaries(
    {
        "tags": st.lists(st.sampled_from(TAGS), max_size=3),
        "users": st.lists(st.sampled_from(USERS), max_size=2),
        "entities": st.lists(st.sampled_from(RATS), max_size=2),
        "type": st.sampled_from(TYPES),
        "location": st.sampled_from([None, "box a", "box b"]),
        "datetime": whens,
        "depth": st.sampled_from([None, 1 * pq.um, 2 * pq.um, 1 * pq.mm, 1, 2.0]),
    }
)
bounds = st.one_of(
    st.none(),
    st.builds(
        lambda h, z: (BASE + dt.timedelta(hours=h)).replace(tzinfo=z),
        st.integers(-9, 9),
        st.sampled_from(ZONES),
    ),
    st.builds(lambda d: (BASE + dt.timedelta(days=d)).date(), st.integers(-2, 1)),
)
criteria_strategy = st.fixed_dictionaries(
    {},
    optional={
        "tags": st.one_of(st.sampled_from(TAGS), st.lists(st.sampled_from(TAGS), max_size=2)),
        "any_tags": st.lists(st.sampled_from(TAGS), max_size=2),
        "type": st.sampled_from(["recording", "surgery"]),
        "location": st.sampled_from(["box a", "box b"]),
        "users": st.sampled_from(USERS),
        "entities": st.lists(st.sampled_from(RATS), max_size=2),
        "since": bounds,
        "until": bounds,
        "modules": st.builds(
            lambda v: {"ephys.depth": v}, st.sampled_from([1 * pq.um, 2 * pq.um, 1 * pq.mm, 1, 2])
        ),
    },
)


def _local(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.astimezone()


def loop(project, criteria: dict) -> list[str]:
    """The Python loop the index must agree with, written from the public API alone."""
    found = []
    for name, action in project.actions.items():
        tags, users, entities = list(action.tags), list(action.users), list(action.entities)
        wanted = criteria.get("tags")
        if wanted is not None and not set([wanted] if isinstance(wanted, str) else wanted) <= set(tags):
            continue
        if "any_tags" in criteria and not set(criteria["any_tags"]) & set(tags):
            continue
        if "type" in criteria and action.type != criteria["type"]:
            continue
        if "location" in criteria and action.location != criteria["location"]:
            continue
        if "users" in criteria and criteria["users"] not in users:
            continue
        if "entities" in criteria and not set(criteria["entities"]) <= set(entities):
            continue
        when = action.datetime
        since, until = criteria.get("since"), criteria.get("until")
        if since is not None or until is not None:
            if when is None:
                continue
            # naive stored times are local wall-clock time; compare in one frame
            stored = when if when.tzinfo else when.astimezone()
            if since is not None:
                low = (
                    _local(since)
                    if isinstance(since, dt.datetime)
                    else dt.datetime(*since.timetuple()[:3]).astimezone()
                )
                if stored < low:
                    continue
            if until is not None:
                if isinstance(until, dt.datetime):
                    if stored > _local(until):
                        continue
                else:
                    end = dt.datetime(*(until + dt.timedelta(days=1)).timetuple()[:3]).astimezone()
                    if stored >= end:
                        continue
        if "modules" in criteria:
            wanted_depth = criteria["modules"]["ephys.depth"]
            if "ephys" not in action.modules:
                continue
            depth = action.modules["ephys"].contents.get("depth")
            if isinstance(wanted_depth, pq.Quantity):
                if (
                    not isinstance(depth, pq.Quantity)
                    or depth.dimensionality.string != wanted_depth.dimensionality.string
                ):
                    continue
                if float(depth.magnitude) != float(wanted_depth.magnitude):
                    continue
            elif isinstance(depth, pq.Quantity) or depth is None or depth != wanted_depth:
                continue
        found.append(name)
    return found


def _apply(project, name: str, spec: dict) -> None:
    action = project.require_action(name)
    action.tags = spec["tags"]
    action.users = spec["users"]
    action.entities = spec["entities"]
    if spec["type"]:
        action.type = spec["type"]
    if spec["location"]:
        action.location = spec["location"]
    if spec["datetime"]:
        action.datetime = spec["datetime"]
    if spec["depth"] is not None:
        action.require_module(name="ephys", contents={"depth": spec["depth"]})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=st.lists(actions, min_size=1, max_size=8),
    later=st.lists(st.tuples(st.integers(0, 9), actions), max_size=4),
    queries=st.lists(criteria_strategy, min_size=1, max_size=4),
)
@pytest.mark.parametrize("move_after", [0, 1000], ids=["index-moved", "changes-checked-in-python"])
def test_where_agrees_with_the_python_loop(first, later, queries, move_after, monkeypatch):
    # With 0, every query moves the index to HEAD and SQLite answers; with
    # 1000, the index stays where it was first built (an empty project) and
    # every changed object is checked in Python.
    monkeypatch.setattr(query, "_MOVE_AFTER", move_after)
    folder = tempfile.mkdtemp()
    try:
        project = expipe.require_project(f"{folder}/p")
        assert names(project.actions.where()) == []  # builds the index
        with project.transaction("first"):
            for i, spec in enumerate(first):
                _apply(project, f"rec-{i}", spec)
        for criteria in queries:
            assert names(project.actions.where(**criteria)) == loop(project, criteria)
        before = project.get_commit().id
        for i, spec in later:  # each a commit the index has not seen
            project.delete_action(f"rec-{i}") if f"rec-{i}" in project.actions and i % 3 == 0 else None
            _apply(project, f"rec-{i}", spec)
        for criteria in queries:
            assert names(project.actions.where(**criteria)) == loop(project, criteria)
            old = project.at(before)
            assert names(old.actions.where(**criteria)) == loop(old, criteria)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
