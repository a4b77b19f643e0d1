"""Fault: ``expipe-git import`` killed while it builds the new project.

An import builds in a hidden sibling folder, ``.NAME.importing-*``, and renames
it into place at the end; a killed import cannot remove that folder itself.
The next import into the same destination must remove what killed imports
left — and never the folder of an import that is still running.
"""

from __future__ import annotations

import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import assert_clean
from faultkit import budget, report, rng

import expipe_git


def _old_project(root: pathlib.Path, actions: int) -> pathlib.Path:
    """An expipe 0.6 project of ``actions`` actions, written as expipe 0.6 wrote them."""
    root.mkdir(parents=True)
    (root / "expipe.yaml").write_text("{database_version: 2, project: old, type: project}\n")
    for i in range(actions):
        action = root / "actions" / f"rec-{i}"
        (action / "modules").mkdir(parents=True)
        (action / "attributes.yaml").write_text(
            f"registered: '2020-01-01T10:00:{i % 60:02d}'\ntype: Recording\ntags:\n- t{i}\nusers:\n- sarah\n"
        )
        (action / "modules" / "depth.yaml").write_text("CA1:\n  value: 2.5\n  unit: mm\n")
    return root


def _hidden(destination: pathlib.Path) -> list[str]:
    return sorted(p.name for p in destination.parent.iterdir() if p.name.startswith(f".{destination.name}."))


def _start_import(source: pathlib.Path, destination: pathlib.Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "expipe_git", "import", str(source), str(destination), "--no-verify"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_building(proc: subprocess.Popen, destination: pathlib.Path, before: list[str]) -> bool:
    """Wait until ``proc`` has made its hidden folder; False if it ended first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if [name for name in _hidden(destination) if name not in before and ".importing-" in name]:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("the import made no hidden folder in a minute")


def test_a_killed_import_leaves_nothing_after_the_next_import(tmp_path):
    random = rng("import-kills")
    source = _old_project(tmp_path / "old", 60)
    destination = tmp_path / "new"
    kills = finished = most_left = 0
    for _ in range(budget(6)):
        before = _hidden(destination)
        proc = _start_import(source, destination)
        if _wait_for_building(proc, destination, before):
            time.sleep(random.uniform(0, 0.4))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        else:
            assert proc.returncode == 0, proc.stderr.read()
        if destination.exists():
            # It finished first (the folder is renamed into place last, so a
            # kill can come after it): a whole project. Start the next round afresh.
            assert len(expipe_git.get_project(destination).actions) == 60
            assert_clean(destination)
            shutil.rmtree(destination)
            finished += 1
        # What a killed import leaves is removed by the next one, before it builds its own.
        most_left = max(most_left, len(_hidden(destination)))
        assert not destination.exists()
    left_by_the_last = len(_hidden(destination))
    project = expipe_git.import_expipe_project(source, destination)
    left_after = len(_hidden(destination))
    report(
        "import-kills",
        kills=kills,
        finished=finished,
        most_hidden_folders=most_left,
        hidden_folders_after=left_after,
    )
    assert left_after == 0
    assert most_left == 1  # some kill left a hidden folder, and never more than one stayed
    assert len(project.actions) == 60
    if left_by_the_last:
        assert any("import of" in note and "was killed" in note for note in project.import_report.notes)


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs SIGSTOP to hold an import still")
def test_the_folder_of_a_running_import_is_never_removed(tmp_path):
    """An import held still (SIGSTOP) keeps its folder while another import into the same place runs."""
    source = _old_project(tmp_path / "old", 60)
    destination = tmp_path / "new"
    first = _start_import(source, destination)
    try:
        assert _wait_for_building(first, destination, [])
        first.send_signal(signal.SIGSTOP)
        (running,) = _hidden(destination)
        second = expipe_git.import_expipe_project(source, destination, verify=False)
        assert running in _hidden(destination), "the folder of a live import was removed"
        assert len(second.actions) == 60
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 1  # it finds the destination taken, and says so
    assert b"appeared while importing" in err
    assert _hidden(destination) == []
    report("import-live-folder-kept", live_imports=1, removed_live=0)
