"""Remotes over real servers on 127.0.0.1: a bare path, git daemon, smart HTTP with basic auth, ssh."""

from __future__ import annotations

import hashlib
import os
import pathlib
import stat
import subprocess
import sys
import threading
import zlib

import pytest
from conftest import assert_clean, assert_one_error_line, git, run
from gitservers import HTTP_BACKEND, GitDaemon, HttpServer, fake_ssh, make_bare

import expipe_git
from expipe_git import cli, layout

USER = "alice"
SECRET = "s3cret-T0ken-xyz"
KINDS = ["path", "file", "git", "http", "ssh", "scp"]


@pytest.fixture(scope="session")
def server_base(tmp_path_factory):
    return tmp_path_factory.mktemp("served")


@pytest.fixture(scope="session")
def daemon(server_base):
    server = GitDaemon(server_base)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http(server_base):
    if HTTP_BACKEND is None:
        pytest.skip("git http-backend is not installed")
    server = HttpServer(server_base, USER, SECRET)
    yield server
    server.stop()


@pytest.fixture
def ssh_env(tmp_path, monkeypatch):
    env = fake_ssh(tmp_path / "bin", tmp_path / "ssh.log")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    monkeypatch.delenv("GIT_SSH", raising=False)
    return tmp_path / "ssh.log"


_counter = iter(range(1_000_000))


@pytest.fixture
def new_remote(server_base, request):
    """Return make(kind) -> (bare repository path, URL) of a new, empty shared repository."""

    def make(kind: str) -> tuple[pathlib.Path, str]:
        name = f"lab-{os.getpid()}-{next(_counter)}.git"
        bare = make_bare(server_base, name)
        if kind == "path":
            return bare, str(bare)
        if kind == "file":
            return bare, f"file://{bare}"
        if kind == "git":
            return bare, request.getfixturevalue("daemon").url(name)
        if kind == "http":
            return bare, request.getfixturevalue("http").url(name, with_credentials=True)
        request.getfixturevalue("ssh_env")
        if kind == "ssh":
            return bare, f"ssh://lab-server{bare}"
        return bare, f"me@lab-server:{bare}"

    return make


def remote_head(bare: pathlib.Path) -> str:
    return git(bare, "rev-parse", "refs/heads/main").strip()


def make_project(path: pathlib.Path) -> expipe_git.Project:
    project = expipe_git.require_project(path)
    action = project.require_action("rec-1")
    action.tags = ["place cell"]
    action.create_module("tracking", contents={"camera": "top", "fps": 30})
    project.require_entity("rat1")
    return project


def shared_project(new_remote, path: pathlib.Path, kind: str) -> tuple[pathlib.Path, str, expipe_git.Project]:
    """A project pushed to a new, empty remote of ``kind``: (bare repository, URL, project)."""
    bare, url = new_remote(kind)
    project = make_project(path)
    project.add_remote("origin", url)
    project.push()
    return bare, url, project


# ---------------------------------------------------------------------------
# Round trips over every kind of remote


@pytest.mark.parametrize("kind", KINDS)
def test_push_clone_pull_round_trip(tmp_path, new_remote, kind):
    bare, url = new_remote(kind)
    alice = make_project(tmp_path / "alice")
    alice.add_remote("origin", url)
    pushed = alice.push()
    assert pushed == git(alice.path, "rev-parse", "HEAD").strip() == remote_head(bare)
    assert alice.push() is None  # nothing new

    bob = expipe_git.clone(url, tmp_path / "bob")
    assert list(bob.actions) == ["rec-1"]
    assert list(bob.actions["rec-1"].tags) == ["place cell"]
    assert bob.actions["rec-1"].modules["tracking"].contents == {"camera": "top", "fps": 30}
    assert bob.remotes == {"origin": expipe_git.remoteconfig.public_url(url)}
    assert_clean(bob.path)

    bob.actions["rec-1"].tags.append("familiar")
    bob.require_action("rec-2")
    assert bob.push() == remote_head(bare)

    new_head = alice.pull()
    assert new_head == remote_head(bare) == git(alice.path, "rev-parse", "HEAD").strip()
    assert list(alice.actions) == ["rec-1", "rec-2"]
    assert list(alice.actions["rec-1"].tags) == ["place cell", "familiar"]
    assert git(alice.path, "rev-parse", "refs/remotes/origin/main").strip() == new_head
    assert alice.pull() is None
    assert_clean(alice.path)
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bare, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


def test_ssh_runs_the_system_ssh(tmp_path, new_remote):
    bare, url = new_remote("ssh")
    make_project(tmp_path / "a").add_remote("origin", url)
    expipe_git.get_project(tmp_path / "a").push()
    log = (tmp_path / "ssh.log").read_text()
    assert "lab-server" in log


def test_fetch_only_moves_the_remote_tracking_ref(tmp_path, new_remote):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", "git")
    bob = expipe_git.clone(url, tmp_path / "bob")
    bob.require_action("rec-9")
    bob.push()
    before = git(alice.path, "rev-parse", "HEAD").strip()
    left_over = pathlib.Path(alice.path) / ".git" / "expipe-git" / "fetch-killed"
    left_over.mkdir()
    (left_over / "incoming.pack").write_bytes(b"PACK")
    os.utime(left_over, (0, 0))
    fetched = alice.fetch()
    assert not left_over.exists()
    assert fetched == remote_head(bare)
    assert git(alice.path, "rev-parse", "HEAD").strip() == before
    assert "rec-9" not in alice.actions
    assert git(alice.path, "rev-parse", "refs/remotes/origin/main").strip() == fetched
    assert_clean(alice.path)


# ---------------------------------------------------------------------------
# Stock git on the other side


def test_stock_git_clones_what_we_push_and_we_pull_what_it_pushes(tmp_path, new_remote):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", "git")

    subprocess.run(["git", "clone", "-q", url, str(tmp_path / "stock")], check=True)
    stock = expipe_git.get_project(tmp_path / "stock")
    assert list(stock.actions) == list(alice.actions)
    assert stock.actions["rec-1"].attributes == alice.actions["rec-1"].attributes
    assert stock.actions["rec-1"].modules["tracking"].contents == {"camera": "top", "fps": 30}

    module = tmp_path / "stock" / layout.module_path(("action", "rec-1"), "tracking")
    module.write_text(module.read_text().replace("fps = 30", "fps = 60"))
    git(tmp_path / "stock", "commit", "-qam", "tracking: 60 fps")
    git(tmp_path / "stock", "push", "-q", "origin", "main")

    assert alice.pull() == remote_head(bare)
    assert alice.actions["rec-1"].modules["tracking"]["fps"] == 60
    assert_clean(alice.path)
    # and stock git pulls ours again
    alice.actions["rec-1"].modules["tracking"]["fps"] = 120
    alice.push()
    git(tmp_path / "stock", "pull", "-q", "--ff-only")
    assert "fps = 120" in module.read_text()


# ---------------------------------------------------------------------------
# Push refusals


def test_push_that_is_not_a_fast_forward_is_refused(tmp_path, new_remote):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", "git")
    bob = expipe_git.clone(url, tmp_path / "bob")
    bob.require_action("bob-1")
    bob.push()
    alice.require_action("alice-1")
    with pytest.raises(expipe_git.PushRejectedError, match="pull first"):
        alice.push()
    assert remote_head(bare) == git(bob.path, "rev-parse", "HEAD").strip()


@pytest.mark.parametrize("kind", ["git", "http"])
def test_push_refused_by_a_server_hook(tmp_path, new_remote, kind):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", kind)
    before = remote_head(bare)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: ask the lab manager' >&2\nexit 1\n")
    hook.chmod(0o755)
    alice.require_action("rec-2")
    with pytest.raises(expipe_git.PushRejectedError, match="refused") as caught:
        alice.push()
    assert "protected" in str(caught.value)
    assert remote_head(bare) == before
    assert git(alice.path, "rev-parse", "refs/remotes/origin/main").strip() == before


def test_push_to_a_repository_with_a_working_tree_is_refused(tmp_path):
    alice = make_project(tmp_path / "alice")
    other = make_project(tmp_path / "other")
    alice.add_remote("other", str(other.path))
    with pytest.raises(expipe_git.RemoteError, match="bare"):
        alice.push("other")


def test_concurrent_pushes_exactly_one_wins(tmp_path, new_remote):
    bare, url, seed = shared_project(new_remote, tmp_path / "seed", "git")
    clones = [expipe_git.clone(url, tmp_path / f"c{i}") for i in range(4)]
    for i, project in enumerate(clones):
        project.require_action(f"from-{i}")
    start = threading.Barrier(len(clones))
    outcomes: list[object] = [None] * len(clones)

    def push(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = clones[i].push()
        except expipe_git.PushRejectedError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(clones))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, str)]
    assert len(winners) == 1, outcomes
    assert remote_head(bare) == outcomes[winners[0]]


# ---------------------------------------------------------------------------
# Divergent histories: pull merges record by record


def _two_clones(tmp_path, url):
    seed = make_project(tmp_path / "seed")
    seed.add_remote("origin", url)
    seed.push()
    return expipe_git.clone(url, tmp_path / "alice"), expipe_git.clone(url, tmp_path / "bob")


@pytest.mark.parametrize("kind", ["git", "http"])
def test_divergent_pull_merges_fields(tmp_path, new_remote, kind):
    bare, url = new_remote(kind)
    alice, bob = _two_clones(tmp_path, url)
    alice.actions["rec-1"].tags.append("alice's tag")
    alice.actions["rec-1"].modules["tracking"]["fps"] = 60
    alice.require_action("alice-1")
    bob.actions["rec-1"].tags.append("bob's tag")
    bob.actions["rec-1"].modules["tracking"]["camera"] = "side"
    bob.actions["rec-1"].create_message("bob was here", user="bob")
    bob.push()
    with pytest.raises(expipe_git.PushRejectedError, match="pull first"):
        alice.push()

    merged = alice.pull()
    assert git(alice.path, "rev-parse", "HEAD").strip() == merged
    parents = git(alice.path, "log", "-1", "--format=%P").split()
    assert len(parents) == 2 and remote_head(bare) in parents
    rec = alice.actions["rec-1"]
    assert sorted(rec.tags) == sorted(["place cell", "alice's tag", "bob's tag"])
    assert rec.modules["tracking"].contents == {"camera": "side", "fps": 60}
    assert [rec.messages[m].text for m in rec.messages] == ["bob was here"]
    assert "alice-1" in alice.actions
    assert_clean(alice.path)

    assert alice.push() == merged == remote_head(bare)
    assert bob.pull() == merged  # a fast-forward for bob
    assert bob.actions["rec-1"].modules["tracking"].contents == {"camera": "side", "fps": 60}
    assert_clean(bob.path)


def _conflicting(tmp_path, url):
    alice, bob = _two_clones(tmp_path, url)
    alice.actions["rec-1"].modules["tracking"]["fps"] = 60
    bob.actions["rec-1"].modules["tracking"]["fps"] = 25
    bob.push()
    return alice, bob


@pytest.mark.parametrize("mode", ["raise", "ours", "theirs"])
def test_true_conflict_under_each_mode(tmp_path, new_remote, mode):
    bare, url = new_remote("git")
    alice, bob = _conflicting(tmp_path, url)
    head = git(alice.path, "rev-parse", "HEAD").strip()
    if mode == "raise":
        with pytest.raises(expipe_git.MergeConflict) as caught:
            alice.pull()
        (conflict,) = caught.value.conflicts
        assert (conflict.object, conflict.key) == ("action/rec-1/module/tracking", "fps")
        assert (conflict.base, conflict.ours, conflict.theirs) == (30, 60, 25)
        assert git(alice.path, "rev-parse", "HEAD").strip() == head
        assert git(alice.path, "rev-parse", "refs/remotes/origin/main").strip() == remote_head(bare)
        assert alice.actions["rec-1"].modules["tracking"]["fps"] == 60
        assert_clean(alice.path)
        with pytest.raises(expipe_git.PushRejectedError):
            alice.push()
        return
    merged = alice.pull(on_conflict=mode)
    assert alice.actions["rec-1"].modules["tracking"]["fps"] == (60 if mode == "ours" else 25)
    message = git(alice.path, "log", "-1", "--format=%B")
    assert "fps" in message and mode in message
    assert alice.push() == merged
    assert_clean(alice.path)


def test_concurrent_pushes_lose_nothing_after_pull_and_retry(tmp_path, new_remote):
    bare, url, seed = shared_project(new_remote, tmp_path / "seed", "git")
    clones = [expipe_git.clone(url, tmp_path / f"c{i}") for i in range(3)]
    for i, project in enumerate(clones):
        project.require_action(f"from-{i}")
        project.actions["rec-1"].tags.append(f"tag-{i}")
    pending = list(range(len(clones)))
    rounds = 0
    while pending:
        rounds += 1
        start = threading.Barrier(len(pending))
        won: list[int] = []
        lost: list[int] = []

        def push(i: int, start=start, won=won, lost=lost) -> None:
            start.wait()
            try:
                clones[i].push()
                won.append(i)
            except expipe_git.PushRejectedError:
                lost.append(i)

        threads = [threading.Thread(target=push, args=(i,)) for i in pending]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1, (won, lost)
        for i in lost:
            clones[i].pull()
        pending = lost
    assert rounds == len(clones)
    subprocess.run(["git", "clone", "-q", str(bare), str(tmp_path / "check")], check=True)
    final = expipe_git.get_project(tmp_path / "check")
    assert set(final.actions) == {"rec-1", "from-0", "from-1", "from-2"}
    assert sorted(final.actions["rec-1"].tags) == ["place cell", "tag-0", "tag-1", "tag-2"]
    for project in clones:
        assert_clean(project.path)


def test_cli_pull_with_conflicts(tmp_path, new_remote, capsys):
    bare, url = new_remote("git")
    alice, bob = _conflicting(tmp_path, url)
    a = str(alice.path)
    assert cli.main(["-C", a, "pull"]) == 1
    err = capsys.readouterr().err
    assert "conflict" in err and "fps" in err and "Traceback" not in err
    assert cli.main(["-C", a, "sync", "--theirs"]) == 0
    out = capsys.readouterr().out
    assert "pulled" in out and "pushed" in out
    assert alice.actions["rec-1"].modules["tracking"]["fps"] == 25
    assert remote_head(bare) == git(a, "rev-parse", "HEAD").strip()


# ---------------------------------------------------------------------------
# Hostile remotes


def _write_object(bare: pathlib.Path, kind: bytes, content: bytes) -> bytes:
    raw = kind + b" %d\0" % len(content) + content
    sha = hashlib.sha1(raw).hexdigest()
    folder = bare / "objects" / sha[:2]
    folder.mkdir(exist_ok=True)
    path = folder / sha[2:]
    if not path.exists():
        path.write_bytes(zlib.compress(raw))
    return sha.encode()


def _tree(bare: pathlib.Path, entries: list[tuple[int, bytes, bytes]]) -> bytes:
    body = b"".join(b"%o %s\0%s" % (mode, name, bytes.fromhex(sha.decode())) for mode, name, sha in entries)
    return _write_object(bare, b"tree", body)


def _entries(bare: pathlib.Path, tree: str) -> list[tuple[int, bytes, bytes]]:
    out = subprocess.run(["git", "ls-tree", "-z", tree], cwd=bare, capture_output=True, check=True).stdout
    rows = []
    for item in out.split(b"\0"):
        if item:
            meta, name = item.split(b"\t", 1)
            mode, _, sha = meta.split(b" ")
            rows.append((int(mode, 8), name, sha))
    return rows


def _add_hostile_commit(bare: pathlib.Path, case: str) -> str:
    """Commit on the bare repository's main a tree that adds one hostile entry."""
    head = remote_head(bare)
    root = git(bare, "rev-parse", f"{head}^{{tree}}").strip()
    blob = _write_object(bare, b"blob", b'text = "x"\n')
    target = _write_object(bare, b"blob", b"/etc/passwd")
    entries = _entries(bare, root)
    shard = layout.shard("rec-1").encode()
    if case == "symlink":
        entries = [e for e in entries if e[1] != b"expipe.toml"] + [(0o120000, b"expipe.toml", target)]
    elif case == "mode only":
        # Same name, same object, same length: only the mode says symlink.
        entries = [(0o120000 if name == b"expipe.toml" else mode, name, sha) for mode, name, sha in entries]
    elif case == "dotdot":
        entries.append((0o040000, b"..", _tree(bare, [(0o100644, b"evil.toml", blob)])))
    elif case == ".git":
        entries.append((0o040000, b".git", _tree(bare, [(0o100644, b"config", blob)])))
    elif case == "disguised .git":
        entries.append((0o040000, ".G\u200cIT".encode(), _tree(bare, [(0o100644, b"config", blob)])))
    elif case == "file in a record folder":
        templates = _entries(bare, f"{root}:templates") if any(e[1] == b"templates" for e in entries) else []
        folder = _tree(bare, sorted([*templates, (0o100644, b"README.md", blob)], key=lambda e: e[1]))
        entries = [e for e in entries if e[1] != b"templates"] + [(0o040000, b"templates", folder)]
    elif case == "reserved name outside the layout":
        entries.append((0o040000, b"analysis", _tree(bare, [(0o100644, b"aux.md", blob)])))
    elif case == "hidden name outside the layout":
        entries.append((0o100644, b".gitattributes", blob))
    elif case == ".git outside the layout":
        entries.append(
            (
                0o040000,
                b"analysis",
                _tree(bare, [(0o040000, b".git", _tree(bare, [(0o100644, b"config", blob)]))]),
            )
        )
    elif case == "case twins outside the layout":
        entries += [(0o100644, b"README.md", blob), (0o100644, b"readme.md", blob)]
    elif case == "symlink outside the layout":
        entries.append((0o120000, b"README.md", target))
    elif case == "submodule":
        entries.append((0o160000, b"vendor", target))
    elif case == "submodule elsewhere":
        entries.append((0o160000, b"vendor", b"1234567890" * 4))
    elif case == "executable":
        entries.append((0o100755, b"templates.toml", blob))
    elif case == "wrong shard":
        wrong = b"00" if shard != b"00" else b"01"
        action_dir = _tree(bare, [(0o100644, b"attributes.toml", blob)])
        actions = dict((name, (mode, sha)) for mode, name, sha in _entries(bare, f"{root}:actions"))
        actions[wrong] = (0o040000, _tree(bare, [(0o040000, b"rec-1", action_dir)]))
        new_actions = _tree(bare, [(mode, name, sha) for name, (mode, sha) in sorted(actions.items())])
        entries = [e for e in entries if e[1] != b"actions"] + [(0o040000, b"actions", new_actions)]
    tree = _tree(bare, sorted(entries, key=lambda e: e[1] + b"/" if e[0] == 0o040000 else e[1]))
    commit = _write_object(
        bare,
        b"commit",
        b"tree %s\nparent %s\nauthor M <m@x> 1700000000 +0000\ncommitter M <m@x> 1700000000 +0000\n\nevil\n"
        % (tree, head.encode()),
    )
    (bare / "refs" / "heads" / "main").write_bytes(commit + b"\n")
    return commit.decode()


# Each hostile case, and what the refusal must name (files outside the record
# folders are accepted, so each is refused for what it is, not where it is).
WHY = {
    "symlink": "'expipe.toml' .* symbolic link",
    "mode only": "'expipe.toml' .* symbolic link",
    "dotdot": "'..' .*its name is refused",
    ".git": "'.git' .*its name is refused",
    "disguised .git": "its name is refused",
    "file in a record folder": "'templates/README.md' .* only records belong",
    "reserved name outside the layout": "'analysis/aux.md' .* reserved device name",
    "hidden name outside the layout": "'.gitattributes' .* starts with '.'",
    ".git outside the layout": "'analysis/.git' .*its name is refused",
    "case twins outside the layout": "'readme.md' .* differs only in case from README.md",
    "symlink outside the layout": "'README.md' .* symbolic link",
    "submodule": "'vendor' .* submodule",
    "submodule elsewhere": "'vendor' .* submodule",
    "executable": "'templates.toml' .* executable",
    "wrong shard": "'actions/0[01]/rec-1' .* record layout cannot hold",
}
HOSTILE = list(WHY)


def _worktree_files(project: expipe_git.Project) -> list[tuple[str, bytes]]:
    root = pathlib.Path(project.path)
    return sorted(
        (str(p.relative_to(root)), p.read_bytes() if p.is_file() else b"")
        for p in root.rglob("*")
        if ".git" not in p.relative_to(root).parts
    )


def _pack_files(project: expipe_git.Project) -> set[str]:
    return set(os.listdir(pathlib.Path(project.path) / ".git" / "objects" / "pack"))


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_remote_changes_nothing(tmp_path, new_remote, case):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", "path")
    bob = expipe_git.clone(url, tmp_path / "bob")
    _add_hostile_commit(bare, case)
    tracking = git(bob.path, "rev-parse", "refs/remotes/origin/main").strip()
    head = git(bob.path, "rev-parse", "HEAD").strip()
    packs = _pack_files(bob)
    files = _worktree_files(bob)

    with pytest.raises(expipe_git.UnsafeRemoteError, match="nothing was changed"):
        bob.pull()
    with pytest.raises(expipe_git.UnsafeRemoteError):
        bob.fetch()
    assert git(bob.path, "rev-parse", "refs/remotes/origin/main").strip() == tracking
    assert git(bob.path, "rev-parse", "HEAD").strip() == head
    assert _pack_files(bob) == packs
    assert _worktree_files(bob) == files
    assert not list((pathlib.Path(bob.path) / ".git" / "expipe-git").glob("fetch-*"))
    assert_clean(bob.path)

    with pytest.raises(expipe_git.UnsafeRemoteError, match=WHY[case]):
        expipe_git.clone(url, tmp_path / "carol")
    assert not (tmp_path / "carol").exists()


def test_hostile_remote_over_git_daemon(tmp_path, new_remote):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", "git")
    _add_hostile_commit(bare, "disguised .git")
    with pytest.raises(expipe_git.UnsafeRemoteError, match=r"\\u200c"):
        expipe_git.clone(url, tmp_path / "carol")
    assert not (tmp_path / "carol").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(expipe_git.UnsafeRemoteError):
        expipe_git.clone(url, empty)
    assert empty.is_dir() and not list(empty.iterdir())


# ---------------------------------------------------------------------------
# Clone errors


def test_clone_of_an_empty_remote_leaves_nothing(tmp_path, new_remote):
    _, url = new_remote("git")
    with pytest.raises(expipe_git.RemoteError, match="no branch main"):
        expipe_git.clone(url, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_clone_of_a_missing_remote(tmp_path):
    with pytest.raises(expipe_git.RemoteError, match="does not exist"):
        expipe_git.clone(str(tmp_path / "nowhere.git"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_clone_into_a_folder_that_is_not_empty(tmp_path, new_remote):
    _, url = new_remote("path")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(expipe_git.ExpipeError, match="not an empty folder"):
        expipe_git.clone(url, tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"


def test_clone_of_a_plain_git_repository_is_refused(tmp_path, new_remote):
    bare, url = new_remote("path")
    work = tmp_path / "plain"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "notes.txt").write_text("hi")
    git(work, "add", "notes.txt")
    git(work, "commit", "-qm", "notes")
    git(work, "push", "-q", str(bare), "main")
    with pytest.raises(expipe_git.RemoteError):
        expipe_git.clone(url, tmp_path / "x")
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------
# Remotes and their names


def test_add_list_remove_remotes(tmp_path, new_remote):
    project = make_project(tmp_path / "p")
    _, url = new_remote("path")
    assert project.remotes == {}
    project.add_remote("origin", url)
    project.add_remote("lab", "https://bob:pw@example.org/lab.git")
    assert project.remotes == {"lab": "https://example.org/lab.git", "origin": url}
    with pytest.raises(expipe_git.AlreadyExistsError):
        project.add_remote("origin", url)
    project.push("origin")
    assert git(project.path, "rev-parse", "refs/remotes/origin/main").strip()
    project.remove_remote("origin")
    assert project.remotes == {"lab": "https://example.org/lab.git"}
    assert git(project.path, "for-each-ref", "refs/remotes/") == ""
    with pytest.raises(expipe_git.NotFoundError, match="no remote 'origin'"):
        project.push("origin")
    with pytest.raises(expipe_git.NotFoundError):
        project.remove_remote("origin")
    for bad in ["", "-x", "a b", "x/y", "a..b", "x.lock"]:
        with pytest.raises(expipe_git.InvalidValueError):
            project.add_remote(bad, url)
    with pytest.raises(expipe_git.InvalidValueError):
        project.add_remote("ftp", "ftp://example.org/x")
    with pytest.raises(expipe_git.InvalidValueError, match="ssh key"):
        project.add_remote("ssh", "ssh://bob:pw@example.org/x.git")
    git(project.path, "remote", "add", "by-hand", "ftp://bob:pw@example.org/x")
    assert project.remotes["by-hand"] == "ftp://example.org/x"
    with pytest.raises(expipe_git.InvalidValueError, match="scheme 'ftp'"):
        project.fetch("by-hand")
    assert_clean(project.path)


# ---------------------------------------------------------------------------
# Credentials


def _everything_written(project_path: pathlib.Path) -> str:
    """Every file under .git except objects (config, refs, logs), and the git log."""
    texts = []
    for path in (project_path / ".git").rglob("*"):
        if path.is_file() and "objects" not in path.parts and path.name != "credentials":
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    texts.append(git(project_path, "log", "--all", "--format=%B%n%an%n%ae"))
    return "\n".join(texts)


def test_credentials_from_the_url_never_leak(tmp_path, new_remote, http, capsys):
    bare, url = new_remote("http")
    assert SECRET in url
    alice = make_project(tmp_path / "alice")
    alice.add_remote("origin", url)
    alice.push()
    bob = expipe_git.clone(url, tmp_path / "bob")
    bob.require_action("rec-2")
    bob.push()
    alice.pull()
    for project in (alice, bob):
        path = pathlib.Path(project.path)
        assert SECRET not in _everything_written(path)
        config = (path / ".git" / "config").read_text()
        assert f"{USER}:" not in config and f"{USER}@" not in config
        assert SECRET not in repr(project.remotes)
        credentials = path / ".git" / "expipe-git" / "credentials"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    # the stored URL works for stock git given the same credentials (here: our file)
    assert list(alice.actions) == ["rec-1", "rec-2"]

    # wrong password: a clear error, without the password
    wrong = url.replace(SECRET, "not-" + SECRET[::-1])
    with pytest.raises(expipe_git.RemoteError) as caught:
        expipe_git.clone(wrong, tmp_path / "carol")
    assert "refused" in str(caught.value)
    assert SECRET[::-1] not in str(caught.value) and SECRET not in str(caught.value)

    # the CLI prints no secret either, in success or failure
    code = cli.main(["clone", url, str(tmp_path / "dave")])
    code2 = cli.main(["clone", wrong, str(tmp_path / "erin")])
    code3 = cli.main(["-C", str(tmp_path / "dave"), "remote", "list"])
    code4 = cli.main(["-C", str(tmp_path / "dave"), "sync"])
    out = capsys.readouterr()
    assert (code, code2, code3, code4) == (0, 1, 0, 0)
    assert SECRET not in out.out + out.err and SECRET[::-1] not in out.out + out.err
    assert "127.0.0.1" in out.out
    assert not any(SECRET in line for line in http.requests if not line.startswith("Authorization"))


def test_http_without_credentials_says_how_to_give_them(tmp_path, new_remote, http):
    _, url = new_remote("http")
    plain = url.replace(f"{USER}:{SECRET}@", "")
    with pytest.raises(expipe_git.RemoteError, match="EXPIPE_GIT_USERNAME"):
        expipe_git.clone(plain, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_http_credentials_from_the_environment(tmp_path, new_remote, http, monkeypatch):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", "http")
    plain = url.replace(f"{USER}:{SECRET}@", "")
    monkeypatch.setenv("EXPIPE_GIT_USERNAME", USER)
    monkeypatch.setenv("EXPIPE_GIT_PASSWORD", SECRET)
    bob = expipe_git.clone(plain, tmp_path / "bob")
    assert not (pathlib.Path(bob.path) / ".git" / "expipe-git" / "credentials").exists()
    bob.require_action("rec-2")
    assert bob.push() == remote_head(bare)


def test_http_credentials_from_git_credentials_file(tmp_path, new_remote, http, isolated_home):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", "http")
    (isolated_home / ".git-credentials").write_text(f"http://{USER}:{SECRET}@127.0.0.1:{http.port}\n")
    plain = url.replace(f"{USER}:{SECRET}@", "")
    bob = expipe_git.clone(plain, tmp_path / "bob")
    assert list(bob.actions) == ["rec-1"]
    # stock git with the store helper reads the same file
    git(bob.path, "config", "credential.helper", "store")
    git(bob.path, "fetch", "-q", "origin")


# ---------------------------------------------------------------------------
# The command line


def test_cli_clone_remote_fetch_pull_push_sync(tmp_path, new_remote, capsys):
    bare, url = new_remote("git")
    alice = make_project(tmp_path / "alice")
    a = str(alice.path)
    assert cli.main(["-C", a, "remote", "add", "origin", url]) == 0
    assert cli.main(["-C", a, "remote"]) == 0
    assert f"origin\t{url}" in capsys.readouterr().out
    assert cli.main(["-C", a, "push"]) == 0
    assert remote_head(bare)[:7] in capsys.readouterr().out

    assert cli.main(["clone", url, str(tmp_path / "bob")]) == 0
    assert "Cloned" in capsys.readouterr().out
    bob = expipe_git.get_project(tmp_path / "bob")
    bob.require_action("rec-2")
    assert cli.main(["-C", str(bob.path), "sync"]) == 0
    capsys.readouterr()

    assert cli.main(["-C", a, "fetch"]) == 0
    assert "origin/main" in capsys.readouterr().out
    assert "rec-2" not in alice.actions
    assert cli.main(["-C", a, "pull"]) == 0
    assert "rec-2" in alice.actions
    assert cli.main(["-C", a, "pull"]) == 0
    assert "up to date" in capsys.readouterr().out

    alice.require_action("rec-3")
    bob.require_action("rec-4")
    assert cli.main(["-C", str(bob.path), "push"]) == 0
    capsys.readouterr()
    assert cli.main(["-C", a, "push"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("expipe-git: error:") and "pull" in err and "Traceback" not in err

    assert cli.main(["-C", a, "remote", "add", "spare", url]) == 0
    assert cli.main(["-C", a, "remote", "rm", "spare"]) == 0
    assert "spare" not in alice.remotes
    assert cli.main(["-C", a, "remote", "remove", "origin"]) == 0
    assert cli.main(["-C", a, "push"]) == 1
    assert "no remote 'origin'" in capsys.readouterr().err
    assert cli.main(["clone", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x").exists()


def _run_cli_with_stderr_on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "expipe_git", *args], stdout=subprocess.PIPE, stderr=follower, text=True
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read()
    code = proc.wait()
    os.close(leader)
    return code, out, b"".join(chunks).decode("utf-8", "replace")


def test_cli_shows_progress_only_on_a_terminal(tmp_path, new_remote):
    _, url, alice = shared_project(new_remote, tmp_path / "alice", "git")
    code, out, err = _run_cli_with_stderr_on_a_terminal(["clone", url, str(tmp_path / "bob")])
    assert code == 0 and "Cloned" in out
    assert "Checking new commits" in err and "Checking out files" in err
    bob = expipe_git.get_project(tmp_path / "bob")
    bob.require_action("rec-2")
    code, out, err = _run_cli_with_stderr_on_a_terminal(["-C", str(tmp_path / "bob"), "push"])
    assert code == 0 and "Counting objects" in err and "Sending" in err
    quiet = subprocess.run(
        [sys.executable, "-m", "expipe_git", "clone", url, str(tmp_path / "carol")],
        capture_output=True,
        text=True,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_fetch_and_pull_of_a_remote_without_main(tmp_path, new_remote):
    bare, url = new_remote("git")
    project = make_project(tmp_path / "p")
    project.add_remote("origin", url)
    assert project.fetch() is None
    with pytest.raises(expipe_git.RemoteError, match="no branch main yet"):
        project.pull()
    with pytest.raises(expipe_git.InvalidValueError, match="on_conflict"):
        project.pull(on_conflict="mine")
    assert git(project.path, "for-each-ref", "refs/remotes/") == ""
    assert_clean(project.path)


@pytest.mark.parametrize("kind", ["path", "git"])
def test_a_fetch_indexes_the_history_it_checked(tmp_path, new_remote, kind):
    """After a clone, history walks diff nothing: the files of each commit came with the check."""
    from expipe_git.git import historyindex

    bare, url = new_remote(kind)
    alice = make_project(tmp_path / "alice")
    alice.actions["rec-1"].modules["tracking"]["fps"] = 60
    alice.require_action("rec-2").create_module("m", contents={"k": 1})
    alice.delete_action("rec-2")  # a folder removed with its files
    path = pathlib.Path(alice.path)
    (path / "modules").mkdir()
    (path / "modules" / "settings.toml").write_text("a = 1\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "stock git adds a project module")
    git(path, "rm", "-q", "-r", "modules")
    git(path, "commit", "-q", "-m", "stock git removes it")
    alice.add_remote("origin", url)
    alice.push()
    bob = expipe_git.clone(url, tmp_path / "bob")
    import gc

    gc.collect()  # the clone's own store saves what it recorded when it goes
    recorded = historyindex._read(os.path.join(bob.session.repository.state_dir, "history-cache"))
    commits = [sha.encode() for sha in git(bob.path, "rev-list", "HEAD").split()]
    assert sorted(recorded) == sorted(commits)
    fresh = historyindex.HistoryIndex(bob.session.repository)  # computes each entry from the trees
    for sha in commits:
        assert recorded[sha] == fresh._compute(sha), git(bob.path, "log", "-1", "--format=%s", sha.decode())
    assert [c.subject for c in bob.actions["rec-1"].history()][
        0
    ] == "module 'tracking' of action 'rec-1': set fps"


def test_push_sends_every_folder_when_commits_share_a_second(tmp_path, new_remote):
    """A tree that comes back (add then delete) in commits of one second is still pushed whole."""
    bare, url = new_remote("path")
    project = make_project(tmp_path / "alice")
    path = pathlib.Path(project.path)
    env = dict(os.environ, GIT_AUTHOR_DATE="2026-01-01T10:00:00", GIT_COMMITTER_DATE="2026-01-01T10:00:00")
    module = next(path.glob("actions/*/rec-1/modules/tracking.toml"))

    def commit(message: str) -> None:
        subprocess.run(["git", "add", "-A"], cwd=path, check=True)
        subprocess.run(["git", "commit", "-q", "-m", message], cwd=path, check=True, env=env)

    module.write_text(module.read_text().replace("30", "60"))
    commit("change a key")  # the tree this commit has comes back two commits later
    (path / "modules").mkdir()
    (path / "modules" / "extra.toml").write_text("a = 1\n")
    commit("add a project module")
    (path / "modules" / "extra.toml").unlink()
    commit("remove it again")
    project.add_remote("origin", url)
    project.push()
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bare, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    clone = expipe_git.clone(url, tmp_path / "bob")
    assert clone.actions["rec-1"].modules["tracking"]["fps"] == 60


@pytest.mark.parametrize("kind", ["git", "path"])
def test_push_of_packed_and_loose_history_is_whole(tmp_path, new_remote, kind):
    """A gc'd history goes out as its packs store it; what came after, loose, is packed here."""
    bare, url = new_remote(kind)
    project = make_project(tmp_path / "alice")
    path = pathlib.Path(project.path)
    for i in range(40):
        action = project.require_action(f"rec-{i % 9}")
        action.tags = [f"t{i}"]
        action.require_module("tracking", contents={"fps": 0})["fps"] = i
    git(path, "gc", "-q", "--aggressive")
    for i in range(10):  # loose objects, some of them new versions of packed trees
        project.require_action(f"rec-{i % 3}").tags.append(f"late {i}")
    project.add_remote("origin", url)
    assert project.push() == git(path, "rev-parse", "HEAD").strip() == remote_head(bare)
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bare, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert git(bare, "log", "--format=%H %T", "main") == git(path, "log", "--format=%H %T", "main")
    # A second push of packed history, to a remote that has the first part of it.
    git(path, "gc", "-q")
    for i in range(5):
        project.require_action("rec-1").tags.append(f"later {i}")
    git(path, "repack", "-q")  # the newest commits in a second pack, deltas against the first
    assert project.push() == remote_head(bare)
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bare, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    clone = expipe_git.clone(url, tmp_path / "bob")
    assert list(clone.actions["rec-1"].tags) == list(project.actions["rec-1"].tags)
    assert clone.actions["rec-5"].modules["tracking"]["fps"] == 32


@pytest.mark.parametrize("where", ["packed", "loose"])
def test_push_of_a_damaged_object_says_which_and_sends_nothing(tmp_path, new_remote, capsys, where):
    bare, url = new_remote("git")
    project = make_project(tmp_path / "alice")
    path = pathlib.Path(project.path)
    module = next(path.glob("actions/*/rec-1/modules/tracking.toml")).relative_to(path).as_posix()
    blob = git(path, "rev-parse", f"HEAD:{module}").strip()
    if where == "packed":
        git(path, "gc", "-q")
        (pack,) = (path / ".git" / "objects" / "pack").glob("*.pack")
        with open(pack.with_suffix(".idx"), "rb") as f:
            index = subprocess.run(["git", "show-index"], stdin=f, capture_output=True, text=True).stdout
        offset = next(int(line.split()[0]) for line in index.splitlines() if line.split()[1] == blob)
        damaged = pack
        data = bytearray(pack.read_bytes())
        data[offset + 4] ^= 0xFF  # inside the blob's zlib stream
    else:
        damaged = path / ".git" / "objects" / blob[:2] / blob[2:]
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2] ^= 0xFF
    os.chmod(damaged, 0o644)
    damaged.write_bytes(bytes(data))
    project.add_remote("origin", url)
    code, _, err = run(capsys, "-C", str(path), "push")
    assert code == 1
    assert_one_error_line(err, blob)
    assert git(bare, "for-each-ref") == ""  # the remote's main never moved


def test_clone_from_a_path_with_a_damaged_object_says_which_and_leaves_nothing(tmp_path, capsys):
    source = make_project(tmp_path / "alice")
    bare = tmp_path / "lab.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--no-local", str(source.path), str(bare)], check=True)
    module = next(pathlib.Path(source.path).glob("actions/*/rec-1/modules/tracking.toml"))
    blob = git(source.path, "rev-parse", f"HEAD:{module.relative_to(source.path).as_posix()}").strip()
    (pack,) = (bare / "objects" / "pack").glob("*.pack")
    with open(pack.with_suffix(".idx"), "rb") as f:
        index = subprocess.run(["git", "show-index"], stdin=f, capture_output=True, text=True).stdout
    offset = next(int(line.split()[0]) for line in index.splitlines() if line.split()[1] == blob)
    data = bytearray(pack.read_bytes())
    data[offset + 4] ^= 0xFF
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(data))
    code, _, err = run(capsys, "clone", str(bare), str(tmp_path / "bob"))
    assert code == 1
    assert_one_error_line(err, blob, str(bare))
    assert not (tmp_path / "bob").exists()


def test_fetch_from_a_path_missing_an_object_says_which_and_leaves_nothing(tmp_path, capsys):
    # A folder remote is read by the reader our own repository uses: its errors name the remote.
    source = make_project(tmp_path / "alice")
    bare = tmp_path / "lab.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--no-local", str(source.path), str(bare)], check=True)
    module = next(pathlib.Path(source.path).glob("actions/*/rec-1/modules/tracking.toml"))
    blob = git(source.path, "rev-parse", f"HEAD:{module.relative_to(source.path).as_posix()}").strip()
    (pack,) = (bare / "objects" / "pack").glob("*.pack")
    data = pack.read_bytes()
    for path in pack.parent.iterdir():
        path.unlink()
    subprocess.run(["git", "unpack-objects", "-q"], cwd=bare, input=data, check=True)
    (bare / "objects" / blob[:2] / blob[2:]).unlink()
    code, _, err = run(capsys, "clone", str(bare), str(tmp_path / "bob"))
    assert code == 1
    assert_one_error_line(err, f"git object {blob} in {bare} is missing; run 'git fsck' there")
    assert "copy of the project" not in err  # what is said of our own repository, not of a remote
    assert not (tmp_path / "bob").exists()


def test_stock_git_in_a_clone_uses_the_credentials_given_in_the_url(
    tmp_path, new_remote, http, isolated_home
):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", "http")
    bob = expipe_git.clone(url, tmp_path / "bob")
    config = (pathlib.Path(bob.path) / ".git" / "config").read_text()
    assert SECRET not in config and "credentials" in config
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/false", SSH_ASKPASS="/bin/false")
    bob.require_action("rec-2")
    for command in (["fetch", "-q", "origin"], ["push", "-q", "origin", "main"]):
        done = subprocess.run(["git", *command], cwd=bob.path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert remote_head(bare) == git(bob.path, "rev-parse", "HEAD").strip()
    assert SECRET not in (pathlib.Path(bob.path) / ".git" / "config").read_text()


@pytest.mark.parametrize("kind", ["path", "git"])
def test_project_files_that_are_not_records_travel_by_clone_pull_and_push(tmp_path, new_remote, kind):
    bare, url, alice = shared_project(new_remote, tmp_path / "alice", kind)
    (alice.path / "README.md").write_text("# rat lab\n")
    (alice.path / "analysis").mkdir()
    (alice.path / "analysis" / "plot.ipynb").write_text('{"cells": []}\n')
    alice.commit("the lab's README and plot", ["README.md", "analysis/plot.ipynb"])
    alice.push()

    bob = expipe_git.clone(url, tmp_path / "bob")
    assert (bob.path / "README.md").read_text() == "# rat lab\n"
    assert (bob.path / "analysis" / "plot.ipynb").read_text() == '{"cells": []}\n'
    assert list(bob.actions) == ["rec-1"] and list(bob.modules) == []
    assert_clean(bob.path)

    (alice.path / "README.md").write_text("# rat lab\n12 rats\n")
    (alice.path / "analysis" / "plot.ipynb").unlink()
    (alice.path / "analysis").rmdir()
    alice.commit("twelve rats; no plot")
    alice.push()
    bob.actions["rec-1"].tags = ["place cell", "bob's"]  # diverged: the pull merges
    bob.pull()
    assert (bob.path / "README.md").read_text() == "# rat lab\n12 rats\n"
    assert not (bob.path / "analysis").exists()
    assert set(bob.actions["rec-1"].tags) == {"place cell", "bob's"}
    assert_clean(bob.path)
    (bob.path / "notes").mkdir()
    (bob.path / "notes" / "todo.txt").write_text("order rats\n")
    bob.commit("todo", ["notes/todo.txt"])
    bob.push()
    alice.pull()  # a fast-forward over bob's merge and his new folder
    assert (alice.path / "notes" / "todo.txt").read_text() == "order rats\n"
    assert set(alice.actions["rec-1"].tags) == {"place cell", "bob's"}
    assert_clean(alice.path)
    copy = tmp_path / "by-git"
    git(tmp_path, "clone", "-q", str(bare), str(copy))
    assert (copy / "README.md").read_text() == "# rat lab\n12 rats\n"
    assert_clean(copy)
