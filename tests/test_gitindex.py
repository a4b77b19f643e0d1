"""The raw index patching of expipe_git.gitindex, checked against real git.

After every mutation the index must say exactly what HEAD says (same mode,
blob and path for every entry, in git's order, with correct stat data), so
that stock git sees a clean working tree without re-hashing anything. Index
forms the patcher does not handle (version 4, split index) must be rebuilt.
"""

from __future__ import annotations

import os
import pathlib
import random
import struct
import time

import pytest
from conftest import assert_clean, commit_count, git

import expipe_git
from expipe_git import layout
from expipe_git.git import Repository
from expipe_git.git import index as gitindex


def index_file(project) -> pathlib.Path:
    return pathlib.Path(project.path) / ".git" / "index"


def index_version(project) -> int:
    data = index_file(project).read_bytes()
    assert data[:4] == b"DIRC"
    return struct.unpack(">L", data[4:8])[0]


def index_extensions(path: pathlib.Path) -> list[bytes]:
    """Return the signatures of the extensions of a version 2/3 index."""
    data = path.read_bytes()
    _, version, count = struct.unpack(">4sLL", data[:12])
    assert version in (2, 3)
    off = 12
    for _ in range(count):
        off, _path, _stage0 = gitindex._entry_end(data, off, version)
    names = []
    while off < len(data) - 20:
        names.append(data[off : off + 4])
        (size,) = struct.unpack(">L", data[off + 4 : off + 8])
        off += 8 + size
    assert off == len(data) - 20, "extensions overrun the checksum"
    return names


def ls_files(path) -> list[tuple[str, str, str]]:
    rows = []
    for record in git(path, "ls-files", "-s", "-z").split("\0"):
        if record:
            meta, name = record.split("\t", 1)
            mode, sha, stage = meta.split()
            assert stage == "0", record
            rows.append((mode, sha, name))
    return rows


def ls_tree(path) -> list[tuple[str, str, str]]:
    rows = []
    for record in git(path, "ls-tree", "-r", "-z", "HEAD").split("\0"):
        if record:
            meta, name = record.split("\t", 1)
            mode, kind, sha = meta.split()
            assert kind == "blob", record
            rows.append((mode, sha, name))
    return rows


def assert_index_is_head(path) -> None:
    """The index lists exactly HEAD's files, its stat data is right, status is clean.

    ``git diff-files`` does not refresh the index, so it reports every entry
    whose stat data is wrong; it runs before ``git status`` (which may rewrite
    the index) so the patched index itself is what is checked.
    """
    assert ls_files(path) == ls_tree(path)
    assert git(path, "diff-files", "--name-status") == ""
    assert git(path, "diff-index", "--cached", "--name-status", "HEAD") == ""
    assert git(path, "status", "--porcelain", "--untracked-files=all") == ""


# ---------------------------------------------------------------------------
# Patch correctness over many kinds of mutation


# Names that sort next to each other in byte order ('-' < '.' < '/' < '0' < '_'
# < 'a'), contain dots or dashes, or are not ASCII (UTF-8 bytes sort last).
MODULE_NAMES = ["x", "x-1", "x.1", "x.toml", "x0", "x_1", "xa", "Y", "x-", "x.y.z", "é", "日本", "x é", "x-é"]
ACTION_NAMES = ["rec", "rec-1", "rec.1", "rec1", "rec_1", "Rec", "øvelse", "実験", "a b", "z.z-z"]


def test_many_mutations_keep_index_equal_to_head(project):
    rng = random.Random(20240611)
    path = project.path
    assert_index_is_head(path)
    live_actions: dict[str, set[str]] = {}
    project_modules: set[str] = set()
    templates: set[str] = set()

    def check():
        assert_index_is_head(path)

    # Insert actions in shuffled order, each with shuffled modules.
    for name in rng.sample(ACTION_NAMES, len(ACTION_NAMES)):
        action = project.require_action(name)
        live_actions[name] = set()
        for module in rng.sample(MODULE_NAMES, 4):
            action.require_module(name=module, contents={"v": 1})
            live_actions[name].add(module)
        check()

    # Project modules and templates: entries before and after everything else.
    for module in rng.sample(MODULE_NAMES, len(MODULE_NAMES)):
        project.require_module(name=module, contents={"depth": 1.5})
        project_modules.add(module)
    for template in ["t", "t-1", "t.1", "t0", "ß"]:
        project.require_template(template, {"a": 1})
        templates.add(template)
    check()

    # Entities live between actions/ and expipe.toml.
    for name in ["rat", "rat-1", "rat.1", "mus"]:
        project.require_entity(name).tags.append("x")
    check()

    # A random mix of modifications, insertions and deletions.
    for step in range(60):
        op = rng.choice(
            [
                "set",
                "tag",
                "message",
                "add_module",
                "del_module",
                "del_project_module",
                "messages",
                "del_messages",
                "del_action",
                "add_action",
                "template",
            ]
        )
        name = rng.choice(sorted(live_actions)) if live_actions else None
        if op == "add_action" or name is None:
            new = rng.choice(ACTION_NAMES)
            project.require_action(new)
            live_actions.setdefault(new, set())
        elif op == "set" and live_actions[name]:
            module = rng.choice(sorted(live_actions[name]))
            project.actions[name].modules[module]["v"] = step
        elif op == "tag":
            project.actions[name].tags.append(f"tag{step}")
        elif op == "message":
            project.actions[name].create_message(f"note {step}")
        elif op == "messages":
            # Several deletions and insertions in one patch.
            project.actions[name].messages = [
                {"text": f"m{step}-{i}", "user": "u", "datetime": f"2020-01-0{i + 1}T00:00:00"}
                for i in range(3)
            ]
        elif op == "del_messages":
            project.actions[name].delete_messages()
        elif op == "add_module":
            module = rng.choice(MODULE_NAMES)
            project.actions[name].require_module(name=module, contents={"v": step})
            live_actions[name].add(module)
        elif op == "del_module" and live_actions[name]:
            module = rng.choice(sorted(live_actions[name]))
            project.actions[name].delete_module(module)
            live_actions[name].discard(module)
        elif op == "del_project_module" and project_modules:
            module = rng.choice(sorted(project_modules))
            project.delete_module(module)
            project_modules.discard(module)
        elif op == "del_action":
            project.delete_action(name)
            del live_actions[name]
        elif op == "template":
            template = rng.choice(sorted(templates))
            project.delete_template(template)
            project.require_template(template, {"a": step})
        check()

    # Delete everything the API lets us delete: the index shrinks to the config.
    for name in sorted(live_actions):
        project.delete_action(name)
    for module in sorted(project_modules):
        project.delete_module(module)
    for template in sorted(templates):
        project.delete_template(template)
    for name in ["rat", "rat-1", "rat.1", "mus"]:
        project.delete_entity(name)
    check()
    assert [row[2] for row in ls_files(path)] == [".gitignore", "expipe.toml"]
    assert sorted(os.listdir(path)) == [".git", ".gitignore", "expipe.toml"]
    assert_clean(path)


def test_one_patch_with_inserts_and_deletes_on_both_sides_of_existing_entries(project):
    """Repository.mutate directly: many updates around, before and after existing paths."""
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    for name in ["b", "d", "f"]:
        action.require_module(name=name, contents={"v": 1})
    folder = layout.modules_dir(("action", "rec"))

    def change(snap):
        return {
            f"{folder}/a.toml": b"v = 2\n",  # before every module
            f"{folder}/b.toml": None,  # delete the first
            f"{folder}/c.toml": b"v = 3\n",  # between two deletions
            f"{folder}/d.toml": b"v = 4\n",  # modify
            f"{folder}/f.toml": None,  # delete the last
            f"{folder}/g.toml": b"v = 5\n",  # after every module
            "aaa/first.toml": b"x = 1\n",  # between .gitignore and actions/
            "zzz/last.toml": b"x = 1\n",  # after every entry
        }

    before = commit_count(path)
    project.session.commit_as_is(change, "raw change")
    assert commit_count(path) == before + 1
    assert_index_is_head(path)
    project.session.commit_as_is(lambda snap: {"aaa/first.toml": None, "zzz/last.toml": None}, "undo")
    assert_index_is_head(path)
    assert_clean(path)


def test_patch_keeps_entries_it_does_not_touch(project):
    """Staged files and per-entry flags (skip-worktree, a version 3 index) survive a patch."""
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    (path / "notes.txt").write_text("staged, not committed\n")
    git(path, "add", "notes.txt")
    git(path, "update-index", "--skip-worktree", "expipe.toml")
    assert index_version(project) == 3  # the extended flag needs version 3

    action.tags.append("x")

    assert index_version(project) == 3
    assert git(path, "status", "--porcelain") == "A  notes.txt\n"
    flags = dict(line.split(" ", 1)[::-1] for line in git(path, "ls-files", "-v").splitlines())
    assert flags["expipe.toml"] == "S"
    assert flags[layout.attributes_path("action", "rec")] == "H"
    assert git(path, "show", f"HEAD:{layout.attributes_path('action', 'rec')}").count('"x"') == 1


# ---------------------------------------------------------------------------
# Index forms written by stock git


def test_split_index_is_refused_before_anything_is_committed(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    git(path, "update-index", "--split-index")
    assert b"link" in index_file(project).read_bytes()
    before = commit_count(path)
    with pytest.raises(expipe_git.RepositoryStateError, match="--no-split-index"):
        action.tags.append("x")
    assert commit_count(path) == before
    git(path, "update-index", "--no-split-index")
    action.tags.append("x")
    assert_index_is_head(path)
    assert_clean(path)


@pytest.mark.parametrize("form", ["version2", "version3", "version4"])
def test_index_written_by_stock_git_in_any_form(project, form):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    action.require_module(name="tracking", contents={"x": 1})
    version = int(form[-1])
    git(path, "update-index", f"--index-version={version}")
    if version == 3:
        # git writes version 2 unless an entry needs the extended flags.
        git(path, "update-index", "--skip-worktree", "expipe.toml")
    assert index_version(project) == version

    action.tags.append("x")
    action.modules["tracking"]["x"] = 2
    action.create_message("hello")
    project.require_module(name="depth", contents={"d": 1})

    assert_index_is_head(path)
    if form in ("version2", "version3"):
        assert index_version(project) == int(form[-1]), "a patchable index is patched, not rebuilt"
    assert action.tags == ["x"]
    assert action.modules["tracking"]["x"] == 2
    # git status may have rewritten the index in its own form again: still fine.
    action.tags.append("y")
    assert_index_is_head(path)
    assert_clean(path)


def test_version4_index_is_rewritten_as_version3_with_its_stat_data(project):
    path = pathlib.Path(project.path)
    project.require_action("rec").tags.append("x")
    git(path, "update-index", "--index-version=4")
    project.require_action("rec2")
    assert index_version(project) == 3
    # Every entry carries real stat data: diff-files (no refresh) reports nothing.
    assert git(path, "diff-files", "--name-status") == ""
    assert_index_is_head(path)


def test_tree_extension_from_git_commit_is_dropped_and_git_reads_the_index(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    action.require_module(name="tracking", contents={"x": 1})
    with open(path / ".gitignore", "a") as f:
        f.write("# a note\n")
    git(path, "commit", "-q", "-am", "hand edit")
    assert b"TREE" in index_extensions(index_file(project))

    action.tags.append("x")

    # A stale cache tree would make git write the old tree for the next commit.
    assert b"TREE" not in index_extensions(index_file(project))
    assert git(path, "write-tree").strip() == git(path, "rev-parse", "HEAD^{tree}").strip()
    assert_index_is_head(path)
    assert_clean(path)
    # A stock commit on top of the patched index holds exactly HEAD's tree plus the edit.
    (path / "notes.txt").write_text("n\n")
    git(path, "add", "notes.txt")
    git(path, "commit", "-q", "-m", "notes")
    assert git(path, "diff", "--name-only", "HEAD~1", "HEAD") == "notes.txt\n"
    action.tags.append("y")
    assert_index_is_head(path)
    assert action.tags == ["x", "y"]


@pytest.mark.parametrize("ext", [b"UNTR", b"EOIE"])
def test_other_cached_extensions_are_dropped(project, ext):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    if ext == b"UNTR":
        git(path, "config", "core.untrackedCache", "true")
        git(path, "update-index", "--untracked-cache")
        git(path, "status", "--porcelain")
    else:
        git(path, "config", "index.recordEndOfIndexEntries", "true")
        git(path, "update-index", "--really-refresh")
        git(path, "commit", "-q", "--allow-empty", "-m", "rewrite index")
    assert ext in index_extensions(index_file(project))
    action.tags.append("x")
    assert ext not in index_extensions(index_file(project))
    assert_index_is_head(path)
    assert_clean(path)


def test_missing_index_is_rebuilt_by_next_mutation(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    action.require_module(name="tracking", contents={"x": 1})
    index_file(project).unlink()
    assert git(path, "ls-files") == ""

    action.tags.append("x")

    assert index_file(project).exists()
    assert_index_is_head(path)
    assert_clean(path)


def test_rebuilt_index_does_not_hide_a_hand_edit(project):
    """rebuild_index keeps stat data only for files that match HEAD: a file edited
    by hand must still show as modified afterwards."""
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    action.require_module(name="tracking", contents={"x": 1})
    edited = layout.module_path(("action", "rec"), "tracking")
    index_file(project).unlink()
    (path / edited).write_text("x = 2\n")
    # An old mtime, so git trusts the stat data instead of re-hashing a racily clean file.
    old = time.time() - 60
    os.utime(path / edited, (old, old))
    action.tags.append("x")  # touches another file: allowed
    assert git(path, "diff-files", "--name-only") == edited + "\n"
    assert git(path, "status", "--porcelain") == f" M {edited}\n"
    assert [(s.path, s.state) for s in project.status()] == [(edited, "modified")]


@pytest.mark.parametrize("content", [b"", b"DIRC", b"garbage that is not an index at all......"])
def test_truncated_or_foreign_index_is_rebuilt(project, content):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    index_file(project).write_bytes(content)
    action.tags.append("x")
    assert_index_is_head(path)


def test_index_with_unmerged_entries_is_never_patched(project, tmp_path):
    """A conflicted merge leaves stage 1-3 entries: the index is not ours to touch."""
    path = pathlib.Path(project.path)
    git(path, "checkout", "-q", "-b", "side")
    (path / ".gitignore").write_text("side\n")
    git(path, "commit", "-q", "-am", "side")
    git(path, "checkout", "-q", "main")
    (path / ".gitignore").write_text("main\n")
    git(path, "commit", "-q", "-am", "main")
    git(path, "merge", "side", check=False)
    assert "UU .gitignore" in git(path, "status", "--porcelain")
    with pytest.raises(ValueError, match="unresolved merge conflicts"):
        gitindex.IndexFile(str(index_file(project))).apply({})
    # Resolve by hand as a user would; expipe_git never touches the conflict.
    (path / ".gitignore").write_text(layout.IGNORE_TEXT)
    git(path, "add", ".gitignore")
    git(path, "commit", "-q", "--no-edit")
    project.require_action("rec").tags.append("x")
    assert_index_is_head(path)


def test_gitindex_write_and_read_paths_round_trip(tmp_path):
    """A fresh index written by gitindex.write is read back by git and by read_paths."""
    repo = tmp_path / "r"
    repo.mkdir()
    git(repo, "init", "-q")
    entries = []
    names = ["b", "a-b/x", "a/x", "a.b", "é", "Z", "a0", "B"]
    for name in names:
        full = repo / name
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(name.encode() + b"\n")
        sha = git(repo, "hash-object", "-w", name).strip()
        entries.append(gitindex.Entry(name.encode(), bytes.fromhex(sha), os.stat(full)))
    gitindex.write(str(repo / ".git" / "index"), entries)
    listed = [line.split("\t", 1)[1] for line in git(repo, "ls-files", "-s", "-z").split("\0") if line]
    assert listed == sorted(listed, key=lambda s: s.encode())
    assert listed == sorted(names, key=lambda s: s.encode())
    assert git(repo, "diff-files", "--name-status") == ""
    read = gitindex.read_paths(str(repo / ".git" / "index"))
    assert set(read) == {e.path for e in entries}
    git(repo, "update-index", "--index-version=4")
    assert gitindex.read_paths(str(repo / ".git" / "index")) == read


def test_store_rebuild_index_matches_git_read_tree(project):
    path = pathlib.Path(project.path)
    for name in ["rec", "Rec", "REC", "rec-1", "rec.1", "é", "Z"]:
        action = project.require_action(name)
        action.require_module(name="Z", contents={"a": 1})
        action.require_module(name="a", contents={"a": 1})
    Repository(path).rebuild_index()
    ours = ls_files(path)
    git(path, "read-tree", "HEAD")
    assert ours == ls_files(path)
    assert_clean(path)


def test_project_commit_of_hand_edits_updates_index(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    module = action.require_module(name="tracking", contents={"x": 1})
    file = path / layout.module_path(("action", "rec"), "tracking")
    file.write_text("x = 5\n")
    assert project.commit("set x by hand") is not None
    assert module["x"] == 5
    assert_index_is_head(path)
    assert expipe_git.get_project(path).actions["rec"].modules["tracking"]["x"] == 5


# ---------------------------------------------------------------------------
# The user's staged work and merge state survive a mutation


def test_staged_file_survives_a_mutation_with_a_version4_index(project):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    (path / "notes.txt").write_text("staged, not committed\n")
    git(path, "add", "notes.txt")
    git(path, "update-index", "--index-version=4")
    action.tags.append("x")
    assert git(path, "status", "--porcelain") == "A  notes.txt\n"


def test_mutation_during_a_conflicted_merge_keeps_the_merge_state(project):
    path = pathlib.Path(project.path)
    project.require_module(name="depth", contents={"d": 1})
    git(path, "checkout", "-q", "-b", "side")
    with open(path / ".gitignore", "a") as f:
        f.write("# side\n")
    (path / "modules" / "depth.toml").write_text("d = 2\n")
    git(path, "commit", "-q", "-am", "side")
    git(path, "checkout", "-q", "main")
    with open(path / ".gitignore", "a") as f:
        f.write("# main\n")
    git(path, "commit", "-q", "-am", "main")
    git(path, "merge", "side", check=False)
    assert git(path, "status", "--porcelain") == "UU .gitignore\nM  modules/depth.toml\n"

    try:
        project.require_action("rec")
    except expipe_git.ExpipeError:
        pass  # refusing to commit during a merge would be fine too
    # git's merge state must be intact: the conflict and the staged clean merge.
    assert git(path, "status", "--porcelain") == "UU .gitignore\nM  modules/depth.toml\n"


# ---------------------------------------------------------------------------
# Patching an index we wrote without walking it


def count_walks(monkeypatch) -> list[int]:
    walks = [0]
    original = gitindex.IndexFile._walk

    def counting(self):
        walks[0] += 1
        original(self)

    monkeypatch.setattr(gitindex.IndexFile, "_walk", counting)
    return walks


def test_index_we_wrote_is_patched_without_a_walk(project, monkeypatch):
    path = pathlib.Path(project.path)
    for name in ["b", "a", "c", "a.b", "a-b", "ab"]:
        project.require_action(name)
    walks = count_walks(monkeypatch)
    action = project.actions["a"]
    action.tags.append("x")
    action.create_message("hello")
    action.require_module(name="m", contents={"x": 1})
    action.modules["m"]["x"] = 2
    project.require_action("aa")
    project.require_template("t", {"x": {"value": 1}})
    project.delete_action("c")
    assert walks[0] == 0
    assert_index_is_head(path)
    assert_clean(path)


def test_staged_entry_between_our_paths_falls_back_to_a_walk(project, monkeypatch):
    path = pathlib.Path(project.path)
    action = project.require_action("rec")
    action.require_module(name="a", contents={"x": 1})
    staged = path / layout.module_path(("action", "rec"), "b")
    staged.write_text("x = 2\n")
    git(path, "add", staged.relative_to(path).as_posix())
    action.tags.append("x")  # git rewrote the index: one walk, then it is ours again
    walks = count_walks(monkeypatch)
    # 'c' sorts after the staged 'b' that HEAD does not know: searching from
    # HEAD's predecessor 'a' would put 'c' before 'b', so it walks.
    action.require_module(name="c", contents={"x": 3})
    assert walks[0] == 1
    status = git(path, "status", "--porcelain")
    assert status == f"A  {staged.relative_to(path).as_posix()}\n"
    listed = [line.split("\t", 1)[1] for line in git(path, "ls-files", "-s").splitlines()]
    assert listed == sorted(listed, key=str.encode)


def test_predecessor_agrees_with_sorting_every_path(tmp_path):
    import random

    from expipe_git.git import Identity, Repository

    rng = random.Random(7)
    alphabet = ["a", "b", "a.b", "a-b", "ab", "a b", "b0", "é", "Z", "_"]
    paths = set()
    while len(paths) < 60:
        parts = [rng.choice(alphabet) for _ in range(rng.randint(1, 3))]
        candidate = "/".join(parts)
        # a path cannot be both a file and a folder
        if any(
            p == candidate or p.startswith(candidate + "/") or candidate.startswith(p + "/") for p in paths
        ):
            continue
        paths.add(candidate)
    store = Repository.init(tmp_path)
    store.mutate(lambda snap: {p: b"x" for p in paths}, "many", author=Identity("t", "t@x"))
    snap = store.snapshot()
    ordered = sorted(paths, key=lambda p: p.encode())
    for _ in range(300):
        parts = [rng.choice(alphabet) for _ in range(rng.randint(1, 4))]
        probe = "/".join(parts)
        if probe in paths:
            continue
        smaller = [p for p in ordered if p.encode() < probe.encode()]
        assert snap.predecessor(probe) == (smaller[-1] if smaller else None), probe
