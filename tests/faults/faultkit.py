"""Shared pieces of the fault suite: one seed, and the figures each fault test reports.

Every fault test draws its randomness from ``rng(name)``, so a failure replays with the
same ``EXPIPE_FAULT_SEED``. Loops are bounded by count (``budget``), never by wall time
alone, so the suite costs the same on a slow machine. Set ``EXPIPE_FAULT_REPORT=FILE``
to collect each test's figures (kills, acknowledged mutations, lost, spurious errors)
as JSON lines.
"""

from __future__ import annotations

import json
import os
import random

import expipe_git

SEED = int(os.environ.get("EXPIPE_FAULT_SEED", "20261130"))
SCALE = float(os.environ.get("EXPIPE_FAULT_SCALE", "1"))


def rng(name: str) -> random.Random:
    """A random generator for one test, fixed by the suite's seed and the test's name."""
    return random.Random(f"{SEED}:{name}")


def budget(count: int) -> int:
    """How many rounds a loop runs: ``count`` scaled by EXPIPE_FAULT_SCALE (at least 1)."""
    return max(1, round(count * SCALE))


def report(name: str, **figures: int) -> None:
    """Record a test's figures; printed with ``pytest -s`` and appended to EXPIPE_FAULT_REPORT."""
    line = json.dumps({"test": name, "seed": SEED, **figures})
    print(line)
    path = os.environ.get("EXPIPE_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def setup_shared(project, workers: int) -> None:
    """The objects writers share: action 'shared' with module 'shared', and 'own-<i>' each."""
    shared = project.require_action("shared")
    shared.require_module(name="shared", contents={"start": 0})
    for i in range(workers):
        project.require_action(f"own-{i}")


def state_at_head(path) -> tuple[set[str], set[str], set[str]]:
    """Return (tags, message texts, module keys) read by a fresh handle."""
    project = expipe_git.get_project(path)
    shared = project.actions["shared"]
    tags = set(shared.tags)
    texts = set()
    for name in project.actions:
        if name.startswith("own-"):
            texts |= {m.text for m in project.actions[name].messages.values()}
    keys = set(shared.modules["shared"].contents)
    return tags, texts, keys
