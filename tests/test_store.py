"""The store's building blocks for history and merging, checked against real git."""

from __future__ import annotations

import datetime as dt

from conftest import assert_clean, git, project_path

from expipe_git.git import Identity


def test_diff_trees_lists_exactly_the_files_git_diff_lists(project):
    path = project_path(project)
    project.require_action("a").tags = ["x"]
    project.require_action("b")
    before = git(path, "rev-parse", "HEAD").strip()
    project.actions["a"].tags = ["y"]
    project.delete_action("b")
    project.require_action("c").create_module("m", contents={"k": 1})
    store = project.session.repository
    changed = store.diff_trees(store.commit_tree(before.encode()), store.commit_tree(store.head()))
    expected = git(path, "diff", "--no-renames", "--name-status", before, "HEAD").splitlines()
    assert sorted(changed) == sorted(line.split("\t")[1] for line in expected)
    for line in expected:
        status, name = line.split("\t")
        old, new = changed[name]
        assert (old is None) == (status == "A") and (new is None) == (status == "D")
    assert store.diff_trees(store.commit_tree(before.encode()), store.commit_tree(before.encode())) == {}


def test_read_commit_agrees_with_git_log(project):
    path = project_path(project)
    project.require_action("a")
    git(
        path,
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "stock subject\n\nbody line",
        "--date",
        "2020-01-02T03:04:05+05:30",
    )
    info = project.session.repository.read_commit(project.session.repository.head())
    fields = git(path, "log", "-1", "--format=%T%n%P%n%an <%ae>%n%at%n%B").split("\n", 4)
    assert info.tree.decode() == fields[0]
    assert [p.decode() for p in info.parents] == fields[1].split()
    assert info.author == fields[2]
    assert info.author_time == int(fields[3])
    assert info.author_offset == 5 * 3600 + 30 * 60
    assert info.message.strip() == fields[4].strip()


def test_mutate_dates_a_commit_and_records_a_merge_parent(project):
    path = project_path(project)
    project.require_action("a")
    first = project.session.repository.head()
    project.require_action("b")
    when = dt.datetime(2019, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    merged = project.session.repository.mutate(
        lambda snap: {},
        "merge",
        author=Identity("Merger", "m@example.org"),
        when=when,
        merge_parent=first,
    )
    assert merged is not None
    assert git(path, "log", "-1", "--format=%P|%aI|%an").strip() == (
        f"{git(path, 'rev-parse', 'HEAD~1').strip()} {first.decode()}|2019-05-06T07:08:09-03:00|Merger"
    )
    assert_clean(path)


def test_fast_forward_checks_out_the_new_files(project, tmp_path):
    path = project_path(project)
    project.require_action("a")
    start = project.session.repository.head()
    project.actions["a"].tags = ["t"]
    project.require_action("b")
    end = project.session.repository.head()
    git(path, "reset", "-q", "--hard", start.decode())
    assert project.session.repository.fast_forward(end)
    assert project.session.repository.head() == end
    assert project.actions["a"].tags == ["t"] and "b" in project.actions
    assert not project.session.repository.fast_forward(end)
    assert_clean(path)


def test_commit_links_agree_with_git_for_root_merge_and_odd_commits(project):
    from expipe_git.git.objects import commit_links

    path = project_path(project)
    root = git(path, "rev-list", "--max-parents=0", "HEAD").strip()
    git(path, "checkout", "-q", "-b", "side")
    git(path, "commit", "-q", "--allow-empty", "-m", "side")
    git(path, "checkout", "-q", "main")
    git(path, "commit", "-q", "--allow-empty", "-m", "main")
    git(path, "merge", "-q", "--no-edit", "side")
    objects = project.session.repository.objects
    for commit in (root, git(path, "rev-parse", "HEAD").strip()):
        tree, parents = commit_links(objects.read(commit.encode())[1])
        assert tree.decode() == git(path, "rev-parse", f"{commit}^{{tree}}").strip()
        assert [p.decode() for p in parents] == git(path, "log", "-1", "--format=%P", commit).split()
    # Laid out otherwise (ids of 64 hex digits, as SHA-256 would write them): parsed in full.
    long_tree, long_parent = b"a" * 64, b"b" * 64
    odd = b"tree %s\nparent %s\nauthor A <a> 1 +0000\n\nm" % (long_tree, long_parent)
    assert commit_links(odd) == (long_tree, (long_parent,))
    assert commit_links(b"tree %s\nparent %s\n\nm" % (b"c" * 40, b"d" * 40)) == (b"c" * 40, (b"d" * 40,))
