"""History and audit: log, history(), diff, at, blame and revert, checked against stock git."""

from __future__ import annotations

import datetime as dt
import os
import pathlib

import pytest
import quantities as pq
from conftest import (
    GIT_EMAIL,
    GIT_NAME,
    assert_clean,
    assert_one_error_line,
    commit_count,
    commits,
    git,
    project_path,
    run,
)

import expipe_git
from expipe_git import Change, Commit, layout
from expipe_git.history import parse_when


def ids(found: list[Commit]) -> list[str]:
    return [c.id for c in found]


def git_ids(path, *args: str) -> list[str]:
    return git(path, "log", "--format=%H", *args).split()


def hand_commit(path: pathlib.Path, rel: str, text: str, message: str, date: str | None = None) -> None:
    """Edit a file and commit it with stock git (optionally dated)."""
    target = path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(path, "add", rel)
    env_date = {} if date is None else {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    old = {k: os.environ.get(k) for k in env_date}
    os.environ.update(env_date)
    try:
        git(path, "commit", "-q", "-m", message)
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def rec(project):
    action = project.require_action("rec-1")
    action.tags = ["a"]
    module = action.require_module("tracking", contents={"depth": 2 * pq.um, "probe": {"x": 1, "y": 2}})
    return project, action, module


# -- Commit and Change ---------------------------------------------------------


def test_log_lists_every_commit_newest_first_as_git_does(rec):
    project, action, module = rec
    module["depth"] = 3 * pq.um
    found = project.log()
    assert ids(found) == git_ids(project.path)
    newest = found[0]
    assert newest.author == GIT_NAME and newest.author_email == GIT_EMAIL
    assert newest.datetime.tzinfo is not None
    assert abs(newest.datetime - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    assert newest.parents == (found[1].id,)
    assert newest.subject == "module 'tracking' of action 'rec-1': set depth"
    assert "Expipe-Object: action/rec-1/module/tracking" in newest.message
    assert found[-1].parents == ()
    assert len(newest.id) == 40


def test_one_module_key_is_one_change_with_a_decoded_quantity(rec):
    project, action, module = rec
    module["depth"] = 3 * pq.um
    (change,) = project.log(limit=1)[0].changes
    assert change.kind == "modified"
    assert change.object == ("action", "rec-1", "module", "tracking")
    assert change.address == "action/rec-1/module/tracking"
    assert change.path == layout.module_path(("action", "rec-1"), "tracking")
    assert change.key == ("depth",)
    assert isinstance(change.old, pq.Quantity) and isinstance(change.new, pq.Quantity)
    assert change.old == 2 * pq.um and change.new == 3 * pq.um
    assert str(change.new.dimensionality) == "um"


def test_nested_keys_lists_and_whole_records(rec):
    project, action, module = rec
    module["probe"]["x"] = 5
    (nested,) = project.log(limit=1)[0].changes
    assert (nested.kind, nested.key, nested.old, nested.new) == ("modified", ("probe", "x"), 1, 5)
    action.tags.append("b")
    (tags,) = project.log(limit=1)[0].changes
    assert (tags.key, tags.old, tags.new) == (("tags",), ["a"], ["a", "b"])
    module["extra"] = {"k": 1}
    (added,) = project.log(limit=1)[0].changes
    assert (added.kind, added.key, added.old, added.new) == ("added", ("extra",), None, {"k": 1})
    del module["depth"]
    (removed,) = project.log(limit=1)[0].changes
    assert removed.kind == "removed" and removed.key == ("depth",) and removed.new is None
    assert removed.old == 2 * pq.um
    action.delete_module("tracking")
    (whole,) = project.log(limit=1)[0].changes
    assert (whole.kind, whole.key, whole.new) == ("removed", (), None)
    assert whole.old == {"probe": {"x": 5, "y": 2}, "extra": {"k": 1}}


def test_objects_of_every_record_kind(project):
    project.require_template("daq", {"rate": 1})
    project.require_module("settings", contents={"a": 1})
    entity = project.require_entity("rat1")
    entity.require_module("info", contents={"w": 1})
    message = project.require_action("rec-1").create_message("hello", user="Peter")
    objects = {c.object for commit in project.log() for c in commit.changes}
    assert objects >= {
        ("project",),
        ("template", "daq"),
        ("module", "settings"),
        ("entity", "rat1"),
        ("entity", "rat1", "module", "info"),
        ("action", "rec-1"),
        ("action", "rec-1", "message", message.id),
        None,  # .gitignore
    }
    first = project.log()[-1]
    ignore = next(c for c in first.changes if c.path == ".gitignore")
    assert ignore.kind == "added" and "data" in ignore.new


def test_change_equality_and_commit_identity(rec):
    project, _, module = rec
    module["depth"] = 3 * pq.um
    one, two = project.log(limit=1)[0], project.get_commit("HEAD")
    assert one == two and hash(one) == hash(two)
    assert one.changes == two.changes
    assert Change("added", "p", None, (), None, float("nan")) == Change(
        "added", "p", None, (), None, float("nan")
    )
    assert repr(one).startswith("<Commit ")


# -- history of objects and paths, against git -------------------------------------------


def test_action_history_includes_modules_and_messages_and_matches_git(rec):
    project, action, module = rec
    other = project.require_action("rec-2")
    other.tags = ["x"]
    module["depth"] = 4 * pq.um
    action.create_message("note", user="Mary")
    other.tags = ["y"]
    history = action.history()
    folder = layout.object_dir("action", "rec-1")
    assert ids(history) == git_ids(project.path, "--", folder)
    subjects = [c.subject for c in history]
    assert subjects[0].startswith("message ")
    assert "module 'tracking' of action 'rec-1': set depth" in subjects
    assert subjects[-1] == "action 'rec-1': create"
    assert ids(module.history()) == git_ids(project.path, "--", module.file)
    assert ids(other.history()) == git_ids(project.path, "--", layout.object_dir("action", "rec-2"))
    assert ids(project.log(path=("action", "rec-1"))) == ids(history)
    assert ids(project.log(path=folder)) == ids(history)
    assert ids(project.log(path=module)) == ids(module.history())


def test_history_of_templates_project_modules_entities_and_messages(project):
    template = project.require_template("daq", {"rate": 1})
    template["rate"] = 2
    settings = project.require_module("settings", contents={"a": 1})
    settings["a"] = 2
    entity = project.require_entity("rat1")
    entity.tags = ["male"]
    message = project.require_action("rec-1").create_message("hi", user="Peter")
    message.text = "hello"
    for obj, path in [
        (template, layout.template_path("daq")),
        (settings, "modules/settings.toml"),
        (entity, layout.object_dir("entity", "rat1")),
        (message, layout.message_path("action", "rec-1", message.id)),
    ]:
        found = obj.history()
        assert ids(found) == git_ids(project.path, "--", path)
        assert found
    assert [c.subject for c in message.history()][0].endswith("set text")


def test_history_through_merges_made_with_stock_git(rec):
    project, action, module = rec
    path = project_path(project)
    project.require_action("rec-2")
    module_file = module.file
    # A side branch, edited by hand with stock git: one change to rec-1's module, one to rec-2.
    git(path, "checkout", "-q", "-b", "side")
    text = (path / module_file).read_text().replace("y = 2", "y = 20")
    hand_commit(path, module_file, text, "side: y")
    attributes = layout.attributes_path("action", "rec-2")
    hand_commit(path, attributes, (path / attributes).read_text() + 'location = "lab"\n', "side: location")
    git(path, "checkout", "-q", "main")
    # Meanwhile on main, through the API.
    module["depth"] = 5 * pq.um
    project.require_action("rec-3").tags = ["t"]
    git(path, "merge", "-q", "--no-edit", "side")
    # A second side branch that is merged but touches nothing of rec-1's.
    git(path, "checkout", "-q", "-b", "side2")
    hand_commit(path, attributes, (path / attributes).read_text() + 'type = "Recording"\n', "side2: type")
    git(path, "checkout", "-q", "main")
    action.tags = ["after"]
    git(path, "merge", "-q", "--no-edit", "side2")
    module["probe"]["x"] = 7
    assert_clean(path)
    merges = git(path, "log", "--merges", "--format=%H").split()
    assert len(merges) == 2
    for target in [
        layout.object_dir("action", "rec-1"),
        module_file,
        layout.object_dir("action", "rec-2"),
        attributes,
        "actions",
        layout.CONFIG_FILE,
    ]:
        assert ids(project.log(path=target)) == git_ids(path, "--", target), target
    assert ids(project.log()) == git_ids(path)
    # The side branch's hand edit appears as a key-level change of rec-1's module.
    side = next(c for c in module.history() if c.subject == "side: y")
    (change,) = side.changes
    assert (change.key, change.old, change.new) == (("probe", "y"), 2, 20)
    assert module["probe"]["y"] == 20 and module["depth"] == 5 * pq.um
    # A merge's changes are what it brought into the first parent's line.
    merge = project.get_commit(merges[-1])
    assert len(merge.parents) == 2
    brought = {(c.object, c.key) for c in merge.changes}
    assert (("action", "rec-1", "module", "tracking"), ("probe", "y")) in brought
    blame = module.blame()
    assert blame[("probe", "y")].subject == "side: y"
    assert blame[("depth",)].subject.endswith("set depth")
    assert blame[("probe", "x")] == project.get_commit("HEAD")


def test_commits_made_with_stock_git_give_key_level_changes(rec):
    project, action, module = rec
    path = project_path(project)
    text = (path / module.file).read_text().replace("value = 2.0", "value = 2.5")
    hand_commit(path, module.file, text, "fix depth by hand")
    (change,) = project.log(limit=1)[0].changes
    assert change.key == ("depth",) and change.new == 2.5 * pq.um
    # An edit that changes no value (spacing) gives no change, but the commit is listed.
    text = (path / module.file).read_text() + "\n\n"
    hand_commit(path, module.file, text, "spacing")
    assert project.log(limit=1)[0].changes == []
    assert ids(module.history()) == git_ids(path, "--", module.file)
    # A file that does not parse is shown as text, not an error.
    hand_commit(path, "notes.txt", "hello\n", "a note")
    (note,) = project.log(limit=1)[0].changes
    assert (note.object, note.new) == (None, "hello\n")


def test_deleted_and_recreated_objects(rec):
    project, action, module = rec
    project.delete_action("rec-1")
    project.require_action("rec-1").tags = ["again"]
    history = project.actions["rec-1"].history()
    assert ids(history) == git_ids(project.path, "--", layout.object_dir("action", "rec-1"))
    deletion = next(c for c in history if c.subject == "action 'rec-1': delete")
    kinds = {(c.object, c.kind, c.key) for c in deletion.changes}
    assert (("action", "rec-1"), "removed", ()) in kinds
    assert (("action", "rec-1", "module", "tracking"), "removed", ()) in kinds
    assert [c.subject for c in history].count("action 'rec-1': create") == 2
    assert "tracking" not in project.actions["rec-1"].modules


def test_log_filters(project):
    path = project_path(project)
    hand_commit(path, "modules/a.toml", "x = 1\n", "old", date="2020-01-01T12:00:00+00:00")
    hand_commit(path, "modules/a.toml", "x = 2\n", "middle", date="2020-06-01T12:00:00+00:00")
    hand_commit(path, "modules/a.toml", "x = 3\n", "new", date="2021-01-01T12:00:00+00:00")
    found = project.log(path="modules/a.toml", since="2020-03-01", until=dt.datetime(2020, 12, 1))
    assert [c.subject for c in found] == ["middle"]
    assert ids(found) == git_ids(path, "--since=2020-03-01", "--until=2020-12-01", "--", "modules/a.toml")
    assert [c.subject for c in project.log(limit=2)] == ["new", "middle"]
    assert project.log(limit=0) == []
    assert project.log(author="Nobody") == []
    assert len(project.log(author="^Test Res")) == commit_count(path)
    with pytest.raises(expipe_git.InvalidValueError, match="as a time"):
        project.log(since="the day after the party")
    with pytest.raises(expipe_git.InvalidValueError, match="limit"):
        project.log(limit=-1)


def test_relative_times():
    now = dt.datetime(2026, 11, 25, 15, 0).astimezone()
    assert parse_when("yesterday 14:00", now=now) == dt.datetime(2026, 11, 24, 14, 0).astimezone()
    assert parse_when("today", now=now) == dt.datetime(2026, 11, 25).astimezone()
    assert parse_when("3 days ago", now=now) == now - dt.timedelta(days=3)
    assert parse_when("2 hours ago", now=now) == now - dt.timedelta(hours=2)
    assert parse_when("now", now=now) == now
    assert parse_when("2026-11-01") == dt.datetime(2026, 11, 1).astimezone()
    assert parse_when(dt.date(2026, 11, 1)) == dt.datetime(2026, 11, 1).astimezone()
    aware = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert parse_when(aware) is aware


# -- revisions, diff and at ------------------------------------------------------


def test_revisions(rec):
    project, action, module = rec
    path = project_path(project)
    module["depth"] = 3 * pq.um
    git(path, "tag", "v1")
    git(path, "tag", "-a", "-m", "annotated", "v1a")
    git(path, "branch", "frozen")
    module["depth"] = 4 * pq.um
    head = git(path, "rev-parse", "HEAD").strip()
    for revision, expected in [
        ("HEAD", "HEAD"),
        ("@", "HEAD"),
        ("HEAD~2", "HEAD~2"),
        ("HEAD^", "HEAD^"),
        ("HEAD^1~1", "HEAD~2"),
        ("main~1", "main~1"),
        ("v1", "v1^{commit}"),
        ("v1a", "v1a^{commit}"),
        ("frozen", "frozen"),
        (head[:7], "HEAD"),
        (head, "HEAD"),
    ]:
        commit = project.get_commit(revision)
        assert commit.id == git(path, "rev-parse", expected).strip(), revision
    assert project.get_commit(project.log()[2]).id == git(path, "rev-parse", "HEAD~2").strip()
    with pytest.raises(expipe_git.NotFoundError, match="unknown revision 'nope'"):
        project.get_commit("nope")
    with pytest.raises(expipe_git.NotFoundError, match="has no parent"):
        project.get_commit("HEAD~100")
    with pytest.raises(expipe_git.NotFoundError, match="no commit at or before"):
        project.get_commit(dt.datetime(2000, 1, 1))
    with pytest.raises(expipe_git.InvalidTypeError):
        project.get_commit(12)


def test_revisions_by_the_reflog_agree_with_git(rec, capsys):
    project, action, module = rec
    path = project_path(project)
    for depth in (3, 4, 5):
        module["depth"] = depth * pq.um
    # Date the branch's moves days apart, as if made on different days.
    log = path / ".git" / "logs" / "refs" / "heads" / "main"
    lines = log.read_text().splitlines()
    now = int(dt.datetime.now().timestamp())
    dated = []
    for age, line in zip(range(len(lines) - 1, -1, -1), lines, strict=True):
        head, _, message = line.partition("\t")
        who = head.rsplit(" ", 2)[0]  # the ids and who moved it; its time and zone replaced
        dated.append(f"{who} {now - age * 86400 - 3600} +0000\t{message}")
    log.write_text("\n".join(dated) + "\n")
    for revision in (
        "main@{0}",
        "main@{1}",
        "main@{3}",
        "main@{2 days ago}",
        "main@{1}~1",
    ):
        assert project.get_commit(revision).id == git(path, "rev-parse", revision).strip(), revision
    assert project.get_commit("HEAD@{2}").id == git(path, "rev-parse", "main@{2}").strip()
    # A time is read as everywhere in expipe_git: "yesterday" is its start (git's is this time yesterday).
    midnight = parse_when("yesterday").timestamp()
    set_before = [line for line in dated if int(line.split("\t")[0].split()[-2]) <= midnight]
    assert project.get_commit("main@{yesterday}").id == set_before[-1].split()[1]
    assert project.get_commit("@{2}") == project.get_commit("main@{2}")
    assert project.at("main@{1}").actions["rec-1"].modules["tracking"]["depth"] == 4 * pq.um
    with pytest.raises(expipe_git.NotFoundError, match=r"'main@\{99\}' does not exist: the reflog of main"):
        project.get_commit("main@{99}")
    with pytest.raises(expipe_git.NotFoundError, match=r"'main@\{1999-01-01\}' does not exist"):
        project.get_commit("main@{1999-01-01}")
    with pytest.raises(expipe_git.InvalidValueError, match=r"'main@\{soon\}' is not a revision"):
        project.get_commit("main@{soon}")
    with pytest.raises(expipe_git.NotFoundError, match=r"unknown revision 'nope@\{1\}'"):
        project.get_commit("nope@{1}")
    code, _, err = run(capsys, "-C", str(path), "diff", "main@{99}")
    assert code == 1
    assert_one_error_line(err, "main@{99}")


def test_diff(rec):
    project, action, module = rec
    start = project.get_commit()
    module["depth"] = 3 * pq.um
    module["probe"]["x"] = 9
    action.tags = ["b"]
    assert project.diff("HEAD", "HEAD") == []
    assert project.diff(start, start) == []
    changes = project.diff(start)
    assert [(c.object, c.key) for c in changes] == [
        (("action", "rec-1"), ("tags",)),
        (("action", "rec-1", "module", "tracking"), ("depth",)),
        (("action", "rec-1", "module", "tracking"), ("probe", "x")),
    ]
    assert changes[1].old == 2 * pq.um and changes[1].new == 3 * pq.um
    backwards = project.diff("HEAD", start.id[:8])
    assert [(c.key, c.old, c.new) for c in backwards][0] == (("tags",), ["b"], ["a"])
    assert project.diff(dt.datetime.now() + dt.timedelta(hours=1)) == []
    assert project.diff("HEAD~1") == project.log(limit=1)[0].changes


def test_at_is_a_read_only_view(rec):
    project, action, module = rec
    path = project_path(project)
    module["depth"] = 3 * pq.um
    old = project.at("HEAD~1")
    assert old.actions["rec-1"].modules["tracking"]["depth"] == 2 * pq.um
    assert list(old.actions["rec-1"].tags) == ["a"]
    assert project.at(dt.datetime.now() + dt.timedelta(minutes=1)).actions["rec-1"].modules["tracking"][
        "depth"
    ] == (3 * pq.um)
    before = commit_count(path)
    with pytest.raises(expipe_git.ReadOnlyError):
        old.actions["rec-1"].tags = ["z"]
    with pytest.raises(expipe_git.ReadOnlyError):
        old.actions["rec-1"].modules["tracking"]["depth"] = 1 * pq.um
    with pytest.raises(expipe_git.ReadOnlyError):
        old.require_action("new")
    with pytest.raises(expipe_git.ReadOnlyError):
        old.revert("HEAD")
    assert commit_count(path) == before
    assert_clean(path)
    assert "new" not in project.actions
    # The view's own history starts at its revision.
    assert old.log()[0].id == project.log()[1].id


# -- blame -------------------------------------------------------------------------


def test_blame_module_template_and_attributes(rec):
    project, action, module = rec
    module["depth"] = 3 * pq.um
    action.tags = ["b"]
    module["probe"]["x"] = 4
    module["depth"] = 3 * pq.um  # no change, no commit
    log = project.log()
    blame = module.blame()
    assert set(blame) == {("depth",), ("probe", "x"), ("probe", "y")}
    assert blame[("depth",)].subject == "module 'tracking' of action 'rec-1': set depth"
    assert blame[("probe", "x")] == log[0]
    assert blame[("probe", "y")].subject == "module 'tracking' of action 'rec-1': create"
    attributes = action.blame()
    assert attributes[("tags",)] == log[1]
    assert attributes[("registered",)].subject == "action 'rec-1': create"
    template = project.require_template("daq", {"rate": 1, "gain": {"a": 1}})
    template["gain"]["a"] = 2
    tblame = template.blame()
    assert tblame[("gain", "a")] == project.get_commit()
    assert tblame[("rate",)] == project.get_commit("HEAD~1")
    # A value set back to an older value is blamed on the commit that set it back.
    module["depth"] = 2 * pq.um
    assert module.blame()[("depth",)] == project.get_commit()


def test_blame_of_a_deleted_object_is_not_found(rec):
    project, action, module = rec
    action.delete_module("tracking")
    with pytest.raises(expipe_git.NotFoundError):
        module.blame()


# -- revert ------------------------------------------------------------------------


def test_revert_undoes_one_commit_key_by_key(rec):
    project, action, module = rec
    path = project_path(project)
    module["depth"] = 3 * pq.um
    target = project.get_commit()
    module["probe"]["x"] = 5  # a later change to another key of the same file
    with commits(path, 1):
        new = project.revert(target)
    assert module["depth"] == 2 * pq.um and module["probe"]["x"] == 5
    (change,) = new.changes
    assert (change.key, change.old, change.new) == (("depth",), 3 * pq.um, 2 * pq.um)
    assert new.subject == f'Revert "{target.subject}"'
    assert target.id in new.message


def test_revert_conflict_writes_nothing(rec):
    project, action, module = rec
    path = project_path(project)
    module["depth"] = 3 * pq.um
    target = project.get_commit()
    module["depth"] = 4 * pq.um
    head = project.get_commit()
    with pytest.raises(expipe_git.RevertConflictError, match="depth is now") as info:
        project.revert(target)
    assert info.value.conflicts and "depth" in info.value.conflicts[0]
    assert project.get_commit() == head
    assert module["depth"] == 4 * pq.um
    assert_clean(path)


def test_revert_whole_objects(rec):
    project, action, module = rec
    path = project_path(project)
    project.delete_action("rec-1")
    with commits(path, 1):
        project.revert("HEAD")
    restored = project.actions["rec-1"]
    assert list(restored.tags) == ["a"] and restored.modules["tracking"]["depth"] == 2 * pq.um
    project.require_action("rec-2")
    project.actions["rec-2"].tags = ["t"]
    # Reverting the creation of rec-2 while a later commit changed it is refused.
    creation = project.log(path=("action", "rec-2"))[-1]
    with pytest.raises(expipe_git.RevertConflictError):
        project.revert(creation)
    assert "rec-2" in project.actions
    # Reverting a module's creation deletes it.
    action = project.actions["rec-1"]
    action.require_module("extra", contents={"k": 1})
    project.revert("HEAD")
    assert "extra" not in action.modules
    assert_clean(path)


def test_revert_refuses_a_hand_edit_in_the_way(rec):
    project, action, module = rec
    path = project_path(project)
    module["depth"] = 3 * pq.um
    (path / module.file).write_text((path / module.file).read_text() + "# mine\n")
    with pytest.raises(expipe_git.UncommittedChangesError):
        project.revert("HEAD")
    assert "# mine" in (path / module.file).read_text()


# -- the cache ---------------------------------------------------------------------


def test_history_cache_can_be_deleted_or_damaged(rec):
    project, action, module = rec
    module["depth"] = 3 * pq.um
    expected = ids(action.history())
    from expipe_git.git import historyindex

    historyindex.of(project.session.repository).save(force=True)
    cache = project_path(project) / ".git" / "expipe-git" / "history-cache"
    assert cache.exists()
    import marshal

    old_format = marshal.dumps({"format": 1, "commits": {}})  # the file as versions before 2 wrote it
    for damage in (b"", b"garbage", old_format, (10**9).to_bytes(8, "little") + b"x", None):
        if damage is None:
            cache.unlink()
        else:
            cache.write_bytes(damage)
        fresh = expipe_git.get_project(project.path)
        assert ids(fresh.actions["rec-1"].history()) == expected
    assert_clean(project.path)


@pytest.mark.parametrize("seed", [int(s) for s in os.environ.get("HISTORY_SEEDS", "1 2 3").split()])
def test_random_branch_and_merge_histories_match_git_log(project, seed):
    """Random commits on three branches, merged with stock git; every path's log equals git's."""
    import random

    rng = random.Random(seed)
    path = project_path(project)
    files = ["modules/a.toml", "modules/b.toml", "templates/t.toml", layout.attributes_path("action", "r")]
    git(path, "branch", "side")
    branches = ["main", "side"]
    when = 1_700_000_000
    for step in range(40):
        # Every fourth commit shares its second with the one before: ties in date order too.
        when += 0 if step % 4 == 3 else rng.randint(1, 100)
        date = f"{when} +0100"
        choice = rng.random()
        current = git(path, "rev-parse", "--abbrev-ref", "HEAD").strip()
        if choice < 0.1 and len(branches) < 3:
            name = f"b{step}"
            git(path, "checkout", "-q", "-b", name)
            branches.append(name)
        elif choice < 0.45 and len(branches) > 1:
            other = rng.choice([b for b in branches if b != current])
            env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
            os.environ.update(env)
            try:
                git(path, "merge", "-q", "--no-edit", "--no-ff", "-X", "ours", other)
            finally:
                for key in env:
                    os.environ.pop(key)
        elif choice < 0.6:
            git(path, "checkout", "-q", rng.choice(branches))
        else:
            rel = rng.choice(files)
            hand_commit(path, rel, f"x = {rng.randint(0, 3)}\ny = {step}\n", f"step {step}", date=date)
    git(path, "checkout", "-q", "main")
    for branch in branches[1:]:
        git(path, "merge", "-q", "--no-edit", "--no-ff", "-X", "ours", branch)
    assert git(path, "log", "--merges", "--format=%H").split()
    assert ids(project.log()) == git_ids(path)
    for target in [*files, "modules", "templates", "actions", layout.object_dir("action", "r")]:
        assert ids(project.log(path=target)) == git_ids(path, "--", target), target
        for branch in branches[1:]:
            history = expipe_git.history.history_of(project.session.repository).log(
                paths=[target], start=branch
            )
            assert ids(history) == git_ids(path, branch, "--", target), (branch, target)


def test_renamed_with_stock_git_is_a_removal_and_a_creation(rec, tmp_path):
    project, action, module = rec
    path = project_path(project)
    new_file = layout.module_path(("action", "rec-1"), "tracking2")
    git(path, "mv", module.file, new_file)
    git(path, "commit", "-q", "-m", "rename tracking by hand")
    (removed, added) = sorted(project.log(limit=1)[0].changes, key=lambda c: c.kind, reverse=True)
    assert (removed.kind, removed.object, removed.key) == (
        "removed",
        ("action", "rec-1", "module", "tracking"),
        (),
    )
    assert (added.kind, added.object, added.key) == ("added", ("action", "rec-1", "module", "tracking2"), ())
    assert added.new["depth"] == 2 * pq.um
    # The old name's history ends with the rename, like git log without --follow; it stays readable.
    old_history = project.log(path=("action", "rec-1", "module", "tracking"))
    assert old_history[0].subject == "rename tracking by hand"
    assert ids(old_history) == git_ids(path, "--", module.file)
    assert ids(action.modules["tracking2"].history()) == git_ids(path, "--", new_file)
    # A deleted object's history is still there, by address.
    project.delete_action("rec-1")
    assert project.log(path=("action", "rec-1"))[0].subject == "action 'rec-1': delete"
    # A Commit of another project is refused by name.
    other = expipe_git.require_project(tmp_path / "other")
    with pytest.raises(expipe_git.NotFoundError, match="is not in"):
        project.diff(other.get_commit())


def test_blame_agrees_with_the_history_of_each_key(project):
    """Blame against an oracle: the newest commit whose key value differs from its parent's."""
    import random

    from expipe_git.changes import leaves, same_value

    rng = random.Random(3)
    module = project.require_module("m", contents={"a": 1, "b": {"c": 1, "d": 1}, "e": 1})
    for _ in range(25):
        key = rng.choice([("a",), ("b", "c"), ("b", "d"), ("e",)])
        value = rng.choice([1, 2, 3 * pq.mm])
        if len(key) == 1:
            module[key[0]] = value
        else:
            module[key[0]][key[1]] = value
    blame = module.blame()
    now = dict(leaves(module.contents))
    assert set(blame) == set(now)

    def leaves_at(revision: str) -> dict:
        modules = project.at(revision).modules
        return dict(leaves(modules["m"].contents)) if "m" in modules else {}

    history = [(commit, leaves_at(commit.id), leaves_at(commit.parents[0])) for commit in module.history()]
    for key in now:
        expected = next(
            commit
            for commit, after, before in history  # newest first
            if key not in before or not same_value(before[key], after[key])
        )
        assert blame[key] == expected, key


def test_commits_made_through_the_api_are_indexed_as_they_are_made(tmp_path):
    """A later history call diffs nothing: the writer recorded each commit's files."""
    import subprocess
    import sys

    from expipe_git.git import historyindex

    path = tmp_path / "lab"
    script = f"""
import expipe_git
project = expipe_git.require_project({str(path)!r})
action = project.require_action("rec-1")
action.tags = ["a"]
action.create_module("m", contents={{"k": 1}})
with project.transaction():
    action.tags.append("b")
    project.require_action("rec-2")
project.delete_action("rec-2")
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    recorded = historyindex._read(str(path / ".git" / "expipe-git" / "history-cache"))
    commits = git(path, "rev-list", "HEAD").split()
    assert sorted(c.encode() for c in commits) == sorted(recorded)
    for sha in commits:
        parents, when, (files,) = recorded[sha.encode()]
        assert [p.decode() for p in parents] == git(path, "rev-list", "--parents", "-1", sha).split()[1:]
        assert when == int(git(path, "log", "-1", "--format=%ct", sha))
        listed = git(path, "diff-tree", "--no-renames", "--root", "-r", "--no-commit-id", sha).splitlines()
        expected = []
        for line in listed:
            meta, name = line.split("\t")
            _, _, old, new, _ = meta.split(" ")
            zero = "0" * 40
            expected.append(
                (name, None if old == zero else old.encode(), None if new == zero else new.encode())
            )
        assert list(files) == sorted(expected)


def test_history_cache_chunks_append_and_damage_is_healed(rec, monkeypatch):
    """Saves append; a loader rewrites a file of many chunks or with damage, keeping what it read."""
    from expipe_git.git import historyindex

    project, action, module = rec
    cache = project_path(project) / ".git" / "expipe-git" / "history-cache"
    monkeypatch.setattr(historyindex, "_SAVE_AFTER", 1)
    for i in range(5):
        module["depth"] = i * pq.um  # each commit is recorded and saved: one chunk each
    found, chunks = historyindex._read_chunks(str(cache))
    assert chunks >= 5
    expected = ids(action.history())
    assert all(c.encode() in found for c in git(project.path, "rev-list", "HEAD").split())
    with open(cache, "ab") as f:
        f.write(b"torn chunk")
    module["depth"] = 9 * pq.um  # appended after the damage: unreadable until healed
    fresh = expipe_git.get_project(project.path)
    assert ids(fresh.actions["rec-1"].history())[1:] == expected
    historyindex.of(fresh.session.repository).save(force=True)
    healed, chunks = historyindex._read_chunks(str(cache))
    assert chunks <= historyindex._COMPACT_CHUNKS  # the damage is gone: the file reads to its end
    assert all(c.encode() in healed for c in git(project.path, "rev-list", "HEAD").split())


def test_changes_of_one_object_read_only_its_files(project):
    with project.transaction("register two"):
        for name in ("rec-a", "rec-b"):
            action = project.require_action(name)
            action.tags = ["x"]
            action.require_module("probe", contents={"depth": 2 * pq.um})
    both = project.log(limit=1)[0]
    fresh = project.get_commit(both.id)  # changes not computed yet: only rec-a's files are read
    of_a = fresh.changes_of(("action", "rec-a"))
    assert "changes" not in fresh.__dict__
    assert of_a == [c for c in both.changes if c.object[:2] == ("action", "rec-a")]
    assert {c.address for c in of_a} == {"action/rec-a", "action/rec-a/module/probe"}
    assert both.changes_of(project.actions["rec-b"].modules["probe"]) == [
        c for c in both.changes if c.address == "action/rec-b/module/probe"
    ]
    # rec-8 and rec-87 share a shard folder: a name that starts another is still its own object.
    project.require_action("rec-8")
    project.require_action("rec-87")
    with project.transaction("tag both"):
        project.actions["rec-8"].tags = ["eight"]
        project.actions["rec-87"].tags = ["eighty-seven"]
    tagged = project.log(limit=1)[0]
    assert [c.new for c in project.get_commit(tagged.id).changes_of(("action", "rec-8"))] == [["eight"]]
    assert both.changes_of(("template", "none")) == []
