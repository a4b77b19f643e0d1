"""Fault suite: hostile remotes, and secrets in every shape of URL.

A hostile remote is a bare repository whose main was rewritten with the real
git binary's plumbing (``git hash-object -w --literally``, ``git mktree``,
``git commit-tree``, ``git update-ref``), served over a path and over git://
(``git daemon`` on 127.0.0.1). A fetch, a pull and a clone of it must each be
refused before anything changes: no ref moves (``refs/remotes/origin/main``
included), no pack is kept, no file changes, ``git fsck`` stays clean, and a
failed clone leaves nothing behind.
"""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest
from conftest import assert_clean, git
from faultkit import report
from gitservers import GitDaemon, make_bare

import expipe_git
from expipe_git import cli, layout


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("served")
    daemon = GitDaemon(base)
    yield base, daemon
    daemon.stop()


def plumb(bare: pathlib.Path, *args: str, stdin: bytes | None = None) -> str:
    """Run a git plumbing command in ``bare``; return its output, stripped."""
    done = subprocess.run(["git", *args], cwd=bare, input=stdin, capture_output=True, check=True)
    return done.stdout.decode().strip()


def literal(bare: pathlib.Path, kind: str, content: bytes) -> str:
    """Write any object as is, unchecked (what a hostile server can hold)."""
    return plumb(bare, "hash-object", "-w", "--literally", "-t", kind, "--stdin", stdin=content)


def raw_tree(bare: pathlib.Path, entries: list[tuple[str, str, str]]) -> str:
    """A tree of (mode, name, id) entries in the order given, duplicates and all."""
    body = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries)
    return literal(bare, "tree", body)


def ls_tree(bare: pathlib.Path, tree: str) -> list[tuple[str, str, str]]:
    rows = []
    for line in plumb(bare, "ls-tree", tree).splitlines():
        meta, name = line.split("\t", 1)
        mode, _, sha = meta.split(" ")
        rows.append((mode.lstrip("0") if mode == "040000" else mode, name, sha))
    return [("40000" if mode == "040000" else mode, name, sha) for mode, name, sha in rows]


def commit_on_main(bare: pathlib.Path, tree: str) -> str:
    head = plumb(bare, "rev-parse", "refs/heads/main")
    env = {**os.environ, "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}
    done = subprocess.run(
        ["git", "commit-tree", tree, "-p", head, "-m", "hostile"],
        cwd=bare,
        capture_output=True,
        check=True,
        env=env,
    )
    commit = done.stdout.decode().strip()
    plumb(bare, "update-ref", "refs/heads/main", commit)
    return commit


def set_main(bare: pathlib.Path, sha: str) -> None:
    # update-ref refuses a branch naming a tree or a blob; a hostile server does not.
    (bare / "refs" / "heads" / "main").write_text(sha + "\n")


def make_hostile(bare: pathlib.Path, case: str) -> None:
    """Move the bare repository's main to a history that holds ``case``."""
    head = plumb(bare, "rev-parse", "refs/heads/main")
    root = plumb(bare, "rev-parse", f"{head}^{{tree}}")
    entries = ls_tree(bare, root)
    config = next(sha for _, name, sha in entries if name == layout.CONFIG_FILE)
    actions = next(sha for _, name, sha in entries if name == "actions")
    others = [e for e in entries if e[1] != layout.CONFIG_FILE]
    if case == "file pointing at a tree":
        commit_on_main(
            bare,
            raw_tree(
                bare, [*(e if e[1] != layout.CONFIG_FILE else ("100644", e[1], actions) for e in entries)]
            ),
        )
    elif case == "folder pointing at a blob":
        swapped = [("40000", n, config) if n == "actions" else (m, n, s) for m, n, s in entries]
        commit_on_main(bare, raw_tree(bare, swapped))
    elif case == "unsorted tree":
        commit_on_main(bare, raw_tree(bare, list(reversed(entries))))
    elif case == "duplicate entries":
        # expipe.toml twice, in git's order (a file beside it outside the layout would be accepted).
        twice = [*entries, ("100644", layout.CONFIG_FILE, config)]
        commit_on_main(
            bare, raw_tree(bare, sorted(twice, key=lambda e: e[1] + ("/" if e[0] == "40000" else "")))
        )
    elif case == "file and folder of one name":
        twin = [("100644", "actions", config), *entries]
        commit_on_main(
            bare, raw_tree(bare, sorted(twin, key=lambda e: e[1] + ("/" if e[0] == "40000" else "")))
        )
    elif case == "name with a slash":
        shard = layout.shard("rec-9")
        slashed = ("100644", f"actions/{shard}/rec-9/attributes.toml", config)
        commit_on_main(bare, raw_tree(bare, sorted([*entries, slashed], key=lambda e: e[1])))
    elif case == "expipe.toml deleted":
        listing = "".join(f"{m} {'tree' if m == '40000' else 'blob'} {s}\t{n}\n" for m, n, s in others)
        commit_on_main(bare, plumb(bare, "mktree", stdin=listing.encode()))
    elif case == "main names a tree":
        set_main(bare, root)
    elif case == "main names a blob":
        set_main(bare, config)
    elif case == "malformed commit":
        body = f"tree {root}\nparent {head}\nauthor Mallory<m@x> 1700000000 +0000\n"
        body += "committer M <m@x> 1700000000 +0000\n\nbad ident\n"
        set_main(bare, literal(bare, "commit", body.encode()))
    elif case == "commit without committer":
        body = f"tree {root}\nparent {head}\nauthor M <m@x> 1700000000 +0000\n\nno committer\n"
        set_main(bare, literal(bare, "commit", body.encode()))
    else:
        raise AssertionError(case)


HOSTILE = [
    "file pointing at a tree",
    "folder pointing at a blob",
    "unsorted tree",
    "duplicate entries",
    "file and folder of one name",
    "name with a slash",
    "expipe.toml deleted",
    "main names a tree",
    "main names a blob",
    "malformed commit",
    "commit without committer",
]


def state(path: pathlib.Path) -> tuple:
    """What a refused fetch must leave alone: refs, packs, loose objects, files."""
    objects = path / ".git" / "objects"
    files = sorted(
        (str(p.relative_to(path)), p.read_bytes())
        for p in path.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(path).parts
    )
    return (
        git(path, "for-each-ref", "--format=%(refname) %(objectname)"),
        git(path, "rev-parse", "HEAD"),
        sorted(os.listdir(objects / "pack")),
        sorted(str(p) for p in objects.glob("??/*")),
        files,
    )


@pytest.mark.parametrize("over", ["path", "git"])
@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_remote_changes_nothing(tmp_path, served, case, over):
    base, daemon = served
    name = f"{over}-{HOSTILE.index(case)}.git"
    bare = make_bare(base, name)
    url = str(bare) if over == "path" else daemon.url(name)
    alice = expipe_git.require_project(tmp_path / "alice")
    alice.require_action("rec-1").tags = ["place cell"]
    alice.add_remote("origin", str(bare))
    alice.push()
    bob = expipe_git.clone(url, tmp_path / "bob")
    bob_path = pathlib.Path(bob.path)
    make_hostile(bare, case)
    before = state(bob_path)

    for attempt in (bob.fetch, bob.pull):
        # Over git:// git's own upload-pack may refuse to send some of these: a RemoteError too.
        with pytest.raises(expipe_git.RemoteError) as caught:
            attempt()
        said = str(caught.value)
        assert "nothing was changed" in said or "the server said" in said, said
        assert state(bob_path) == before
    assert list(bob.actions) == ["rec-1"]
    assert not list((bob_path / ".git" / "expipe-git").glob("fetch-*"))
    assert_clean(bob_path)

    with pytest.raises(expipe_git.RemoteError):
        expipe_git.clone(url, tmp_path / "carol")
    assert not (tmp_path / "carol").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["clone", url, str(empty)]) == 1
    assert list(empty.iterdir()) == []
    if case.startswith("main names"):  # a push from a project that has that tree or blob
        alice.remove_remote("origin")
        alice.add_remote("origin", url)
        alice.require_action("rec-2")
        main = plumb(bare, "rev-parse", "refs/heads/main")
        with pytest.raises(expipe_git.UnsafeRemoteError, match="not a commit"):
            alice.push()
        assert plumb(bare, "rev-parse", "refs/heads/main") == main
    report(f"hostile remote: {case} over {over}", refused=3, changed=0)


# ---------------------------------------------------------------------------
# Secrets in every shape of URL

FIRST, SECRET = "Zq9w", "Pa55-w0rd-XYZ"  # a password's parts before and after a special character
SHAPES = {
    "https with a password": "https://alice:{p}@127.0.0.1:{port}/lab.git",
    "a token as the user name": "https://{p}@127.0.0.1:{port}/lab.git",
    "a password holding '@' and ':'": "https://alice:{p}@x:y@127.0.0.1:{port}/lab.git",
    "scp-style with a password": "alice:{p}@127.0.0.1:srv/lab.git",
    "scp-style, '/' in the password": "alice:" + FIRST + "/{p}@127.0.0.1:srv/lab.git",
    "a token in the query": "https://127.0.0.1:{port}/lab.git?access_token={p}",
    "a token in the query of git://": "git://127.0.0.1:{port}/lab.git?token={p}",
    "unencoded '/' in a password": "https://alice:" + FIRST + "/{p}@127.0.0.1:{port}/lab.git",
    "unencoded '#' in a password": "https://alice:" + FIRST + "#{p}@127.0.0.1:{port}/lab.git",
    "unencoded '?' in a password": "https://alice:" + FIRST + "?{p}@127.0.0.1:{port}/lab.git",
    "digits, then '/' in a password": "https://alice:1234/{p}@127.0.0.1:{port}/lab.git",
    "unencoded '/' in an ssh password": "ssh://alice:" + FIRST + "/{p}@127.0.0.1/srv/lab.git",
    "git:// with a password": "git://alice:{p}@127.0.0.1:{port}/lab.git",
}


def everything_under_git(path: pathlib.Path) -> str:
    """Every file of .git but the credentials file (objects inflated), and the whole log."""
    import zlib

    texts = []
    for item in (path / ".git").rglob("*"):
        if not item.is_file() or item.name == "credentials":
            continue
        data = item.read_bytes()
        if "objects" in item.parts and len(item.parent.name) == 2:
            data = zlib.decompress(data)
        texts.append(data.decode("utf-8", "replace"))
    texts.append(git(path, "log", "--all", "--format=%B%n%an%n%ae"))
    texts.append(git(path, "reflog", "--all", check=False))
    return "\n".join(texts)


@pytest.mark.parametrize("shape", SHAPES)
def test_no_secret_of_any_url_shape_is_stored_or_shown(tmp_path, shape, capsys):
    from gitservers import free_port

    url = SHAPES[shape].format(p=SECRET, port=free_port())  # nothing listens there
    project = expipe_git.require_project(tmp_path / "p")
    project.require_action("rec-1")
    said = []
    try:
        project.add_remote("lab", url)
    except expipe_git.ExpipeError as exc:
        assert isinstance(exc, expipe_git.InvalidValueError), exc
        said.append(str(exc))
    else:
        said.append(repr(project.remotes))
        for attempt in (project.fetch, project.push, project.pull):
            with pytest.raises(expipe_git.RemoteError) as caught:
                attempt("lab")
            said.append(str(caught.value))
    codes = [
        cli.main(["-C", str(project.path), "remote", "add", "lab2", url]),
        cli.main(["-C", str(project.path), "remote", "list"]),
        cli.main(["-C", str(project.path), "fetch", "lab2"]),
        cli.main(["clone", url, str(tmp_path / "c")]),
    ]
    out = capsys.readouterr()
    said += [out.out, out.err]
    assert codes[3] == 1 and not (tmp_path / "c").exists()
    assert "Traceback" not in out.err
    written = everything_under_git(pathlib.Path(project.path))
    git(project.path, "remote", "add", "by-hand", url)  # stock git stores anything: we must not show it
    said.append(repr(project.remotes))
    for text in [*said, written]:
        assert SECRET not in text and FIRST not in text, (shape, text)
    assert_clean(project.path)
    report(f"url shape: {shape}", secrets_shown=0)


# ---------------------------------------------------------------------------
# The header checks agree with git's fsck, both ways

DATE = "1700000000 +0000"
COMMITS = {
    "as git writes it": "tree {t}\nauthor A U <a@x> 1700000000 +0100\ncommitter C <c@x> 17 -0230\n\nm\n",
    "no message": "tree {t}\nauthor A <a@x> {d}\ncommitter C <c@x> {d}\n",
    "an encoding and a signature": (
        "tree {t}\nauthor A <a@x> {d}\ncommitter C <c@x> {d}\n"
        "encoding ISO-8859-1\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n"
        " -----END PGP SIGNATURE-----\n\nm\n"
    ),
    "an empty name and email": "tree {t}\nauthor  <> 0 +0000\ncommitter  <> 0 +0000\n\nm\n",
    "no space before the email": "tree {t}\nauthor A<a@x> {d}\ncommitter C <c@x> {d}\n\nm\n",
    "no committer": "tree {t}\nauthor A <a@x> {d}\n\nm\n",
    "two authors": ("tree {t}\nauthor A <a@x> {d}\nauthor B <b@x> {d}\ncommitter C <c@x> {d}\n\nm\n"),
    "a short time zone": "tree {t}\nauthor A <a@x> 1700000000 +00\ncommitter C <c@x> {d}\n\nm\n",
    "a zero-padded date": "tree {t}\nauthor A <a@x> 01700000000 +0000\ncommitter C <c@x> {d}\n\nm\n",
    "a '>' in the email": "tree {t}\nauthor A <a>x> {d}\ncommitter C <c@x> {d}\n\nm\n",
    "no tree": "author A <a@x> {d}\ncommitter C <c@x> {d}\n\nm\n",
    "an unterminated header": "tree {t}\nauthor A <a@x> {d}\ncommitter C <c@x> {d}",
    "a NUL in the header": "tree {t}\nauthor A <a@x> {d}\ncommitter C <c@x> {d}\nx \0\n\nm\n",
}
TAGS = {
    "as git writes it": "object {c}\ntype commit\ntag v1\ntagger T <t@x> {d}\n\nmsg\n",
    "no tagger": "object {c}\ntype commit\ntag v1\n\nmsg\n",
    "no type": "object {c}\ntag v1\ntagger T <t@x> {d}\n\nmsg\n",
    "a bad tagger": "object {c}\ntype commit\ntag v1\ntagger T<t@x> {d}\n\nmsg\n",
    "an unknown type": "object {c}\ntype thing\ntag v1\ntagger T <t@x> {d}\n\nmsg\n",
}


def test_commit_and_tag_checks_agree_with_git_fsck(tmp_path):
    from expipe_git.git.fetchcheck import commit_problem, tag_problem

    disagree = []
    for kind, cases, check in (("commit", COMMITS, commit_problem), ("tag", TAGS, tag_problem)):
        for case, body in cases.items():
            repo = tmp_path / f"{kind}-{len(disagree)}-{abs(hash(case))}"
            subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
            tree = plumb(repo, "mktree", stdin=b"")
            good = literal(repo, "commit", COMMITS["as git writes it"].format(t=tree, d=DATE).encode())
            raw = body.format(t=tree, c=good, d=DATE).encode()
            sha = literal(repo, kind, raw)
            fsck = subprocess.run(["git", "fsck", "--strict", "--no-dangling"], cwd=repo, capture_output=True)
            git_refuses = sha.encode() in fsck.stderr + fsck.stdout and fsck.returncode != 0
            if git_refuses != (check(raw) is not None):
                disagree.append((kind, case, git_refuses, check(raw), fsck.stderr.decode()[-200:]))
    assert disagree == []
