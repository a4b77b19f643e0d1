"""Random sequences of mutations agree with a plain-dict model of the project."""

from __future__ import annotations

import shutil
import tempfile

import hypothesis.strategies as st
from conftest import assert_clean, commit_count
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import expipe_git as expipe

names = st.sampled_from(["rec-1", "rec.2", "rat", "z", "ålesund"])
tags = st.sampled_from(["a", "b", "place cell", "ø", "x y"])
keys = st.sampled_from(["depth", "gain", "0", "$x", ""])
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)


class ProjectMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.folder = tempfile.mkdtemp()
        self.project = expipe.require_project(f"{self.folder}/p")
        self.model: dict[str, dict] = {}  # action -> {"tags": [...], "module": {...}, "messages": n}
        self.commits = commit_count(self.project.path)

    def teardown(self):
        assert_clean(self.project.path)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _expect_commit(self, changed: bool = True) -> None:
        self.commits += 1 if changed else 0
        assert commit_count(self.project.path) == self.commits

    @rule(name=names)
    def require_action(self, name):
        self.project.require_action(name)
        self._expect_commit(name not in self.model)
        self.model.setdefault(name, {"tags": [], "module": None, "messages": 0})

    @precondition(lambda self: self.model)
    @rule(data=st.data(), new=st.lists(tags, max_size=4))
    def set_tags(self, data, new):
        name = data.draw(st.sampled_from(sorted(self.model)))
        self.project.actions[name].tags = new
        unique = list(dict.fromkeys(new))
        self._expect_commit(unique != self.model[name]["tags"])
        self.model[name]["tags"] = unique

    @precondition(lambda self: self.model)
    @rule(data=st.data(), tag=tags)
    def append_tag(self, data, tag):
        name = data.draw(st.sampled_from(sorted(self.model)))
        self.project.actions[name].tags.append(tag)
        changed = tag not in self.model[name]["tags"]
        self._expect_commit(changed)
        if changed:
            self.model[name]["tags"].append(tag)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), key=keys, value=scalars)
    def set_module_key(self, data, key, value):
        name = data.draw(st.sampled_from(sorted(self.model)))
        action = self.project.actions[name]
        if self.model[name]["module"] is None:
            action.require_module(name="m", contents={key: value})
            self.model[name]["module"] = {key: value}
            self._expect_commit()
        else:
            module = action.modules["m"]
            changed = key not in self.model[name]["module"] or self.model[name]["module"][key] != value
            module[key] = value
            self.model[name]["module"][key] = value
            self._expect_commit(changed)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), text=st.text(min_size=1, max_size=10))
    def create_message(self, data, text):
        name = data.draw(st.sampled_from(sorted(self.model)))
        self.project.actions[name].create_message(text)
        self.model[name]["messages"] += 1
        self._expect_commit()

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_action(self, data):
        name = data.draw(st.sampled_from(sorted(self.model)))
        self.project.delete_action(name)
        del self.model[name]
        self._expect_commit()

    @invariant()
    def project_matches_model(self):
        fresh = expipe.get_project(self.project.path)
        assert list(fresh.actions) == sorted(self.model)
        for name, expected in self.model.items():
            action = fresh.actions[name]
            assert list(action.tags) == expected["tags"]
            if expected["module"] is None:
                assert "m" not in action.modules
            else:
                assert action.modules["m"].contents == expected["module"]
            assert len(action.messages) == expected["messages"]


TestProjectMachine = ProjectMachine.TestCase
TestProjectMachine.settings = settings(
    max_examples=15, stateful_step_count=12, deadline=None, suppress_health_check=list(HealthCheck)
)
