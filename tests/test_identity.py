"""Who a commit is by: git's order (environment, repository config, global config), then expipe's."""

from __future__ import annotations

from conftest import GIT_EMAIL, GIT_NAME, git

import expipe_git as expipe


def who(project, field: str = "%an <%ae>") -> str:
    return git(project.path, "log", "-1", f"--format={field}").strip()


def test_git_config_names_author_committer_and_message_user(project):
    message = project.require_action("a").create_message("hi")
    assert message.user == GIT_NAME
    assert who(project, "%an <%ae>|%cn <%ce>") == f"{GIT_NAME} <{GIT_EMAIL}>|{GIT_NAME} <{GIT_EMAIL}>"


def test_environment_wins_over_git_config(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Rig C Operator")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "rig-c@lab.org")
    project = expipe.require_project(tmp_path / "p")
    message = project.require_action("a").create_message("hi")
    assert message.user == "Rig C Operator"  # the same identity as the commit's author
    assert who(project) == "Rig C Operator <rig-c@lab.org>"
    assert who(project, "%cn <%ce>") == f"{GIT_NAME} <{GIT_EMAIL}>"  # the committer is git's user


def test_committer_environment_names_only_the_committer(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Acquisition Bot")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "bot@lab.org")
    project = expipe.require_project(tmp_path / "p")
    project.require_action("a")
    assert who(project, "%an <%ae>|%cn <%ce>") == f"{GIT_NAME} <{GIT_EMAIL}>|Acquisition Bot <bot@lab.org>"
    with project.transaction("two actions"):
        project.require_action("b")
        project.require_action("c")
    assert who(project, "%cn") == "Acquisition Bot"


def test_repository_config_wins_over_global_config(tmp_path):
    project = expipe.require_project(tmp_path / "p")
    git(project.path, "config", "user.name", "Shared Rig")
    git(project.path, "config", "user.email", "rig@lab.org")
    reopened = expipe.get_project(project.path)
    assert reopened.require_action("a").create_message("hi").user == "Shared Rig"
    assert who(reopened, "%an <%ae>|%cn") == "Shared Rig <rig@lab.org>|Shared Rig"
    git(project.path, "config", "author.name", "Mary")  # git's author.* beats user.*
    expipe.get_project(project.path).require_action("b")
    assert who(project, "%an|%cn") == "Mary|Shared Rig"


def test_expipe_username_when_git_has_no_identity(tmp_path, isolated_home):
    (isolated_home / ".gitconfig").write_text("")
    config = isolated_home / ".config" / "expipe"
    config.mkdir(parents=True)
    (config / "config.yaml").write_text("username: Mary\nemail: mary@lab.org\n")
    project = expipe.require_project(tmp_path / "p")
    assert project.require_action("a").create_message("hi").user == "Mary"
    assert who(project, "%an <%ae>|%cn <%ce>") == "Mary <mary@lab.org>|Mary <mary@lab.org>"
    (isolated_home / ".gitconfig").write_text("[user]\n\tname = Git User\n\temail = git@lab.org\n")
    expipe.get_project(project.path).require_action("b")
    assert who(project) == "Git User <git@lab.org>"  # git's configuration comes first
