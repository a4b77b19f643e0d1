"""Three-way merges of two histories of a project, record by record and key by key.

git merges lines of text; expipe_git knows its files are records, so it merges
what git would call a conflict. From the merge base (the newest commit both
histories share; several are first merged into a virtual one, as git's
recursive merge does) each side's changes are listed with :meth:`Repository.diff_trees`,
so the cost is the size of the change, not of the project:

* a file changed on one side only takes that side's version;
* a record changed on both sides is merged key by key on its parsed form
  (:func:`expipe_git.values.parse`; tagged values such as quantities are
  single values), descending into nested tables;
* ``tags``, ``users`` and ``entities`` of attributes are sets: additions from
  both sides are kept and a removal on either side removes (ours' order, then
  theirs' additions);
* a message file added on both sides with different contents (the same id)
  keeps both: theirs gets a new id;
* an object created on both sides is merged as if both had started empty, and
  its ``registered`` time is the earlier one;
* the same key changed to different values on both sides, or a record (or a
  whole action or entity) deleted on one side and changed on the other, is a
  :class:`Conflict`.

Conflicts are resolved by a policy (``on_conflict="ours"``/``"theirs"``) or
one by one: a merge that stops on conflicts saves what it was merging in
``.git/expipe-git/merge.json``, touching neither HEAD, the index nor the
working tree; :func:`resolve` records choices there and :func:`continue_merge`
re-runs the merge against the current HEAD. The merge commit is made through
:meth:`Repository.mutate`, so locking, hand-edit refusal and index updates apply.

This module sits above :mod:`expipe_git.model` (it validates merged records
with the same checks as committed hand edits); ``Project.merge`` and friends
call into it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import checks, history, layout, values
from .errors import (
    CorruptFileError,
    CorruptRepositoryError,
    InvalidTypeError,
    InvalidValueError,
    MergeConflict,
    NotFoundError,
    RepositoryStateError,
)
from .git import Changes, Repository, Snapshot
from .recordmerge import (
    ABSENT,
    Conflict,
    Decide,
    Decision,
    RecordMerge,
    decision_text,
    same_data,
)
from .valuetext import parse_value_text as parse_value_text  # what the command line reads values with

if TYPE_CHECKING:  # merge sits below model: Project only annotates
    from .model import Project

ON_CONFLICT = ("raise", "ours", "theirs")
STATE_FILE = "merge.json"


def _keep_base(conflict: Conflict) -> Decision:
    """Where merge bases disagree, the virtual base keeps what their own base had, as git does.

    Both later sides then differ from it, and the real merge shows the conflict
    if they still disagree. A record deleted in one base and changed in the
    other keeps the first base's version (git would keep conflict markers).
    """
    return "base"


@dataclass
class _Outcome:
    ours: bytes | None
    changes: Changes
    conflicts: list[Conflict]  # unresolved
    found: list[Conflict]  # every conflict, resolved or not
    notes: list[str]  # how conflicts were resolved, messages renamed


# ---------------------------------------------------------------------------
# The merge itself


class Merger:
    """Merge ``theirs`` into the commit of ``snap``; collect changes and conflicts."""

    def __init__(
        self, store: Repository, snap: Snapshot, theirs: bytes, decide: Decide, *, virtual: bool = False
    ):
        self.store = store
        self.snap = snap
        self.theirs = theirs
        self.decide = decide
        self.virtual = virtual  # merging merge bases into a virtual one: no checks, nothing kept
        self.changes: Changes = {}
        self.conflicts: list[Conflict] = []
        self.found: list[Conflict] = []
        self.notes: list[str] = []

    def run(self) -> _Outcome:
        bases = self.store.merge_bases(self.snap.commit, self.theirs) if self.snap.commit else []
        if len(bases) < 2:
            return self._run(self.store.commit_tree(bases[0]) if bases else None)
        # Criss-cross histories have several bases. As git's recursive merge
        # does, merge them into a virtual base first (in memory: the merge
        # commit's parents stay ours and theirs): from any single one of
        # them, a change undone since on one side could come back.
        with self.store.scratch_objects() as put:
            virtual = bases[0]
            for other in bases[1:]:
                outcome = Merger(
                    self.store, self.store.snapshot(virtual), other, _keep_base, virtual=True
                ).run()
                virtual = self.store.scratch_commit(
                    put, [virtual, other], outcome.changes, "virtual merge base"
                )
            return self._run(self.store.commit_tree(virtual))

    def _run(self, base_tree: bytes | None) -> _Outcome:
        store = self.store
        self.theirs_tree = store.commit_tree(self.theirs)
        ours = store.diff_trees(base_tree, self.snap.tree)
        theirs = store.diff_trees(base_tree, self.theirs_tree)
        contested = self._deleted_objects(ours, theirs)
        for path in sorted(theirs):
            if _owner(path) in contested:
                continue
            base_blob, their_blob = theirs[path]
            if path not in ours:
                self.changes[path] = None if their_blob is None else store.object_contents(their_blob)
            elif ours[path][1] != their_blob:
                self._merge_file(path, base_blob, ours[path][1], their_blob)
        if not self.virtual:
            self._validate()
        return _Outcome(self.snap.commit, self.changes, self.conflicts, self.found, self.notes)

    # -- whole objects -----------------------------------------------------

    def _deleted_objects(self, ours: dict, theirs: dict) -> set[tuple[str, ...]]:
        """Find actions and entities deleted on one side and changed on the other.

        Such an object is one conflict: merging its files one by one could
        leave a module without the action it belongs to.
        """
        paths: dict[tuple[str, ...], list[str]] = {}
        for path in ours.keys() | theirs.keys():
            owner = _owner(path)
            if owner is not None:
                paths.setdefault(owner, []).append(path)
        contested = set()
        for owner, owned in paths.items():
            attributes = layout.attributes_path(*owner)
            sides = []
            for diff in (ours, theirs):
                change = diff.get(attributes)
                sides.append(change is not None and change[0] is not None and change[1] is None)
            if sides[0] == sides[1]:
                continue
            other = theirs if sides[0] else ours
            if all(other[p][1] is None for p in owned if p in other):
                continue  # the other side only deleted things too
            contested.add(owner)
            entry = ours.get(attributes) or theirs.get(attributes)
            assert entry is not None  # the attributes file changed on one side at least
            base_blob = entry[0]
            ours_blob = None if sides[0] else self.snap.blob_id(attributes)
            theirs_blob = None if sides[1] else self._their_blob(attributes)
            if self._deleted_conflict(layout.address(owner), attributes, base_blob, ours_blob, theirs_blob):
                for path in owned:
                    blob = theirs[path][1] if path in theirs else ours[path][0]
                    self.changes[path] = None if blob is None else self.store.object_contents(blob)
        return contested

    def _deleted_conflict(
        self, obj: str, path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None
    ) -> bool:
        """Decide a record deleted on one side and changed on the other; True if theirs wins."""
        records = (self._record(path, base), self._record(path, ours), self._record(path, theirs))
        conflict = Conflict(obj, "", *records, path, "deleted")
        return self.decision_for(conflict, allow_value=False) == "theirs"

    def _their_blob(self, path: str) -> bytes | None:
        found = self.store.lookup(self.theirs_tree, path)
        return None if found is None else found[1]

    # -- one file ----------------------------------------------------------

    def _merge_file(self, path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None) -> None:
        place = layout.place_of(path)
        if place is None:
            self._whole_file_conflict(path, base, ours, theirs)
            return
        obj = layout.address(place.obj)
        if ours is None or theirs is None:
            if self._deleted_conflict(obj, path, base, ours, theirs):
                self.changes[path] = None if theirs is None else self.store.object_contents(theirs)
            return
        if base is None and place.part == "message":
            self._keep_both_messages(path, place, theirs)
            return
        what = f"{layout.describe(place.obj)} ({path})"
        raw = [ABSENT if sha is None else self._raw(sha, what) for sha in (base, ours, theirs)]
        record = RecordMerge(self, obj, path, place.part, created_on_both=base is None)
        before = len(self.conflicts)
        merged = record.merge(raw[0], raw[1], raw[2], ())
        if len(self.conflicts) > before:
            return  # left as ours until resolved
        # A side's file is kept byte for byte when the merge equals it (a
        # hand-edited file keeps its comments); otherwise it is written anew.
        if same_data(merged, raw[1]):
            return
        if same_data(merged, raw[2]):
            self.changes[path] = self.store.object_contents(theirs)
            return
        try:
            decoded = values.decode(merged, what=what)
            self.changes[path] = values.dumps(decoded, what=what).encode()
        except (CorruptFileError, InvalidTypeError, InvalidValueError) as exc:
            raise CorruptFileError(f"merging {path}: the merged record is not valid: {exc}", path) from None

    def _keep_both_messages(self, path: str, place: layout.Place, theirs: bytes) -> None:
        """Both sides added a message file by this id: give theirs a new id."""
        folder, _, filename = path.rpartition("/")
        stem = layout.strip_suffix(filename) or filename
        when = stem.split("-", 1)[0]
        data = self.store.object_contents(theirs)
        for attempt in range(1000):
            digest = hashlib.sha1(data + str(attempt).encode()).hexdigest()[:8]
            new_path = f"{folder}/{when}-{digest}{layout.SUFFIX}"
            taken = (
                new_path in self.changes
                or self.snap.blob_id(new_path) is not None
                or self._their_blob(new_path) is not None
            )
            if not taken:
                break
        self.changes[new_path] = data
        owner = layout.address(place.obj[:2])
        self.notes.append(
            f"{owner}: both sides added message {stem}; theirs is kept as {new_path.rpartition('/')[2][:-5]}"
        )

    def _whole_file_conflict(self, path: str, base: bytes | None, ours: bytes | None, theirs: bytes | None):
        def text(sha: bytes | None) -> Any:
            return ABSENT if sha is None else self.store.object_contents(sha).decode("utf-8", "replace")

        deleted = ours is None or theirs is None
        conflict = Conflict(
            path, "", text(base), text(ours), text(theirs), path, "deleted" if deleted else "file"
        )
        if self.decision_for(conflict, allow_value=False) == "theirs":
            self.changes[path] = None if theirs is None else self.store.object_contents(theirs)

    # -- helpers -----------------------------------------------------------

    def _raw(self, sha: bytes, what: str) -> Any:
        return self.store.parsed(sha, lambda data: values.parse(data, what=what))

    def _record(self, path: str, sha: bytes | None) -> Any:
        if sha is None:
            return ABSENT
        try:
            return values.decode(self._raw(sha, path), what=path)
        except CorruptFileError:
            return self.store.object_contents(sha).decode("utf-8", "replace")

    def decision_for(self, conflict: Conflict, *, allow_value: bool) -> Decision | None:
        """Return the decision for ``conflict``, or None (then it is listed as unresolved)."""
        self.found.append(conflict)
        decision = self.decide(conflict)
        if decision is None:
            self.conflicts.append(conflict)
            return None
        if not isinstance(decision, str) and not allow_value:
            raise InvalidValueError(
                f"{conflict.describe()}: resolve it with 'ours' or 'theirs'; a new value "
                "cannot stand in for a deleted record or a whole file"
            )
        self.notes.append(f"{conflict.describe()}: {decision_text(decision)}")
        return decision

    def _validate(self) -> None:
        """Refuse a merge result that is not a valid project: nothing is written then."""
        for path, data in self.changes.items():
            if data is not None:
                checks.check_file(path, data)
        checks.check_objects_whole(self.snap, self.changes)
        checks.check_case_twins(self.snap, self.changes)


def _owner(path: str) -> tuple[str, ...] | None:
    """The action or entity a path belongs to, or None."""
    place = layout.place_of(path)
    if place is None or place.obj[0] not in layout.FOLDER_KINDS:
        return None
    return place.obj[:2]


# ---------------------------------------------------------------------------
# The saved state of a merge stopped by conflicts


def _state_path(store: Repository) -> str:
    return os.path.join(store.state_dir, STATE_FILE)


def _load_state(store: Repository) -> dict | None:
    try:
        with open(_state_path(store)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise RepositoryStateError(
            f"{_state_path(store)} (a stopped merge) is damaged ({exc}); "
            "delete it to forget the merge, then merge again"
        ) from None


def _save_state(store: Repository, state: dict) -> None:
    os.makedirs(store.state_dir, exist_ok=True)
    tmp = _state_path(store) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, _state_path(store))


def _clear_state(store: Repository) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_state_path(store))


def _saved_decisions(state: dict | None) -> dict[tuple[str, str], Decision]:
    decisions: dict[tuple[str, str], Decision] = {}
    for entry in (state or {}).get("resolutions", []):
        if "take" in entry:
            decisions[(entry["object"], entry["key"])] = entry["take"]
        else:
            raw = values.parse(entry["toml"], what=f"the resolution of {entry['object']} {entry['key']}")
            decisions[(entry["object"], entry["key"])] = ("value", raw["v"])
    return decisions


def _decider(state: dict | None, on_conflict: str) -> Decide:
    saved = _saved_decisions(state)

    def decide(conflict: Conflict) -> Decision | None:
        found = saved.get((conflict.object, conflict.key))
        if found is not None:
            return found
        return on_conflict if on_conflict != "raise" else None

    return decide


# ---------------------------------------------------------------------------
# The public functions


class _HeadMoved(Exception):
    """HEAD moved between computing the merge and committing it: compute again."""


def merge_into(
    project: Project, their_commit: bytes, *, on_conflict: str = "raise", message: str
) -> bytes | None:
    """Merge the commit ``their_commit`` (already in the repository) into HEAD.

    Args:
        project: the project to merge into.
        their_commit: hex id of the other side's commit.
        on_conflict: ``"raise"`` stops on conflicts; ``"ours"``/``"theirs"``
            resolves every conflict that way, listing each in the merge commit message.
        message: the merge commit's subject, e.g. ``"merge origin/main"``.

    Returns:
        None if ``their_commit`` is already in HEAD's history; ``their_commit``
        after a fast-forward; else the id of the new merge commit (two parents).

    Raises:
        MergeConflict: conflicts remain; ``.conflicts`` lists them. HEAD, the
            index and the working tree are as they were, and the stopped merge
            is saved for :func:`resolve` and :func:`continue_merge`.
        RepositoryStateError: another merge is stopped on conflicts.
        CorruptFileError: the merge would make a record invalid.
    """
    if on_conflict not in ON_CONFLICT:
        raise InvalidValueError(f"on_conflict must be 'raise', 'ours' or 'theirs', not {on_conflict!r}")
    store = project.session.repository
    their_commit = _check_commit(store, their_commit)
    state = _load_state(store)
    _refuse_another_merge(state, their_commit)
    decide = _decider(state, on_conflict)
    while True:
        head = store.head()
        if head is not None and store.is_ancestor(their_commit, head):
            _clear_state(store)
            return None
        if head is None or store.is_ancestor(head, their_commit):
            if store.fast_forward(their_commit, f"{message}: fast-forward"):
                _clear_state(store)
                return their_commit
            continue  # HEAD moved meanwhile: decide again
        outcome = Merger(store, store.snapshot(head), their_commit, decide).run()
        if outcome.conflicts:
            _save_state(
                store, {**(state or {"resolutions": []}), "theirs": their_commit.decode(), "message": message}
            )
            raise _conflict_error(message, outcome.conflicts)
        try:
            sha = _commit_outcome(project, outcome, message, their_commit)
        except _HeadMoved:
            continue
        _clear_state(store)
        return sha


def _refuse_another_merge(state: dict | None, their_commit: bytes) -> None:
    if state is not None and state["theirs"] != their_commit.decode():
        raise RepositoryStateError(
            f"a merge of {state['message']!r} stopped on conflicts and is not finished; resolve them and "
            "continue it (project.continue_merge(), 'expipe-git merge --continue') or abort it "
            "(project.abort_merge(), 'expipe-git merge --abort') first"
        )


def _commit_outcome(project: Project, outcome: _Outcome, message: str, their_commit: bytes) -> bytes | None:
    """Commit a merge without conflicts; _HeadMoved if HEAD is no longer the commit it merged."""

    def build(snap: Snapshot) -> Changes:
        if snap.commit != outcome.ours:
            raise _HeadMoved
        return outcome.changes

    return project.session.repository.mutate(
        build,
        _commit_message(message, their_commit, outcome.notes),
        author=project.session.identity(),
        merge_parent=their_commit,
    )


def _check_commit(store: Repository, sha: Any) -> bytes:
    if isinstance(sha, str):
        sha = sha.encode("ascii")
    if not isinstance(sha, bytes) or not re.fullmatch(rb"[0-9a-f]{40}", sha):
        raise InvalidValueError(f"their_commit must be a 40-digit hex commit id, not {sha!r}")
    try:
        store.read_commit(sha)
    except CorruptRepositoryError:
        raise NotFoundError(f"commit {sha.decode()} is not in {store.root}; fetch it first") from None
    return sha


def _commit_message(message: str, their_commit: bytes, notes: list[str]) -> str:
    text = message.rstrip("\n")
    if notes:
        text += "\n\n" + "\n".join(f"- {note}" for note in notes)
    return (
        f"{text}\n\nExpipe-Object: project\nExpipe-Operation: merge\nExpipe-Merged: {their_commit.decode()}\n"
    )


def _conflict_error(message: str, conflicts: list[Conflict]) -> MergeConflict:
    count = f"{len(conflicts)} conflict{'s' if len(conflicts) != 1 else ''}"
    listing = "; ".join(c.describe() for c in conflicts[:5])
    more = f"; and {len(conflicts) - 5} more" if len(conflicts) > 5 else ""
    return MergeConflict(
        f"{message}: {count}, nothing was changed: {listing}{more}. Resolve each with "
        "project.resolve(conflict, 'ours' | 'theirs' | value=...) and then project.continue_merge() "
        "('expipe-git conflicts', 'expipe-git resolve', 'expipe-git merge --continue'), or merge "
        "again with on_conflict='ours' or 'theirs' (--ours/--theirs)",
        conflicts,
    )


def merge(project: Project, revision: str, *, on_conflict: str = "raise") -> str | None:
    """Merge a revision (a branch, tag, commit id, ``main~2``…) into HEAD (see :func:`merge_into`)."""
    if not isinstance(revision, str) or not revision:
        raise InvalidTypeError("merge() takes a branch, tag or commit id as a str")
    sha = merge_into(
        project,
        history.history_of(project.session.repository).resolve(revision),
        on_conflict=on_conflict,
        message=f"merge {revision}",
    )
    return None if sha is None else sha.decode()


def conflicts(project: Project) -> list[Conflict]:
    """Return the unresolved conflicts of the stopped merge (empty if none is stopped)."""
    store = project.session.repository
    state = _load_state(store)
    if state is None:
        return []
    return _outcome(store, state).conflicts


def _outcome(store: Repository, state: dict) -> _Outcome:
    head = store.head()
    theirs = state["theirs"].encode()
    if head is not None and store.is_ancestor(theirs, head):
        return _Outcome(head, {}, [], [], [])
    return Merger(store, store.snapshot(head), theirs, _decider(state, "raise")).run()


def resolve(
    project: Project, conflict: Conflict | tuple[str, str], side: str | None = None, *, value: Any = ABSENT
) -> None:
    """Choose how one conflict of the stopped merge is resolved.

    Args:
        conflict: a :class:`Conflict` from ``project.conflicts``, or
            ``(object address, key)`` such as ``("action/rec-1", "type")``.
        side: ``"ours"`` or ``"theirs"``; or give ``value=`` instead.
        value: the value the key gets (any value a record can hold).

    Raises:
        RepositoryStateError: no merge is stopped on conflicts.
        NotFoundError: the stopped merge has no such conflict.
    """
    store = project.session.repository
    state = _load_state(store)
    if state is None:
        raise RepositoryStateError("no merge is stopped on conflicts; there is nothing to resolve")
    if isinstance(conflict, Conflict):
        name = (conflict.object, conflict.key)
    elif isinstance(conflict, tuple) and len(conflict) == 2 and all(isinstance(p, str) for p in conflict):
        name = conflict
    else:
        raise InvalidTypeError("resolve() takes a Conflict or an (object address, key) tuple")
    if (side is None) == (value is ABSENT):
        raise InvalidValueError("resolve() takes either a side ('ours' or 'theirs') or value=..., not both")
    found = {(c.object, c.key): c for c in _outcome(store, state).found}
    if name not in found:
        listing = ", ".join(f"{o} {k!r}" for o, k in found) or "none"
        raise NotFoundError(f"the stopped merge has no conflict at {name[0]} {name[1]!r}; it has: {listing}")
    entry: dict[str, Any] = {"object": name[0], "key": name[1]}
    if side is not None:
        if side not in ("ours", "theirs"):
            raise InvalidValueError(f"side must be 'ours' or 'theirs', not {side!r}")
        entry["take"] = side
    else:
        if found[name].kind != "value":
            whole = "a deleted record" if found[name].kind == "deleted" else "a file that is not a record"
            raise InvalidValueError(
                f"{found[name].describe()}: resolve it with 'ours' or 'theirs' ({whole} takes no new value)"
            )
        entry["toml"] = values.dumps({"v": value}, what=f"the value for {name[0]} {name[1]}")
    resolutions = [r for r in state.get("resolutions", []) if (r["object"], r["key"]) != name]
    new_state = {**state, "resolutions": [*resolutions, entry]}
    _outcome(store, new_state)  # a value that makes the record invalid is refused here
    _save_state(store, new_state)


def continue_merge(project: Project) -> str | None:
    """Finish the stopped merge against the current HEAD with the saved resolutions.

    Raises:
        RepositoryStateError: no merge is stopped.
        MergeConflict: some conflicts are still unresolved (the merge stays stopped).
    """
    state = _load_state(project.session.repository)
    if state is None:
        raise RepositoryStateError("no merge is stopped on conflicts; there is nothing to continue")
    sha = merge_into(project, state["theirs"].encode(), message=state["message"])
    return None if sha is None else sha.decode()


def abort_merge(project: Project) -> None:
    """Forget the stopped merge and its resolutions; HEAD was never touched."""
    if _load_state(project.session.repository) is None:
        raise RepositoryStateError("no merge is stopped on conflicts; there is nothing to abort")
    _clear_state(project.session.repository)


def pending_merge(project: Project) -> dict | None:
    """Return ``{"theirs": id, "message": ..., "resolved": n}`` of the stopped merge, or None."""
    state = _load_state(project.session.repository)
    if state is None:
        return None
    return {
        "theirs": state["theirs"],
        "message": state["message"],
        "resolved": len(state.get("resolutions", [])),
    }
