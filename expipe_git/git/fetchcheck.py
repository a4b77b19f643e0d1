"""What a fetch may bring in: git's object checks and expipe_git's layout, before anything moves.

:mod:`expipe_git.remote` indexes a received pack in quarantine and hands its
commits, trees and tags to :class:`HistoryCheck`, which refuses it with
:class:`~expipe_git.errors.UnsafeRemoteError` unless

- every object is well-formed as git's ``transfer.fsckObjects`` requires:
  a commit has one tree, parents, one author and one committer line, each
  ``Name <email> seconds +zone``, and no NUL in its header; a tag names an
  object, its type and its name; a tree's entries are in git's order, each
  name once, never empty and without ``/``; an entry's mode matches the type
  of the object it names (``100644`` a blob, ``40000`` a tree);
- every new commit is an expipe_git project: ``expipe.toml`` at the top,
  only regular files and folders; inside the record layout
  (:func:`expipe_git.layout.in_layout`) only records in their place
  (:func:`expipe_git.layout.place_of`); outside it, any file (``README.md``,
  ``analysis/plot.ipynb``) whose every name any system can hold
  (:func:`expipe_git.layout.outside_problem`: no ``.git``, ``..`` or name
  starting with ``.``, nothing Windows refuses) and differs from its
  neighbours' in more than case.

Each new commit is compared with its first parent, so only the folders it
changed are opened: the check costs the size of the new history, never the
size of the project. A folder is read whole only when entries were added
or removed; a folder of which one entry changed keeps the order and the
names of its previous version, which was checked (or is ours).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from .. import layout
from ..errors import UnsafeRemoteError
from . import historyindex
from .format import FILE_MODE, TREE_MODE
from .objects import CommitInfo
from .repository import Repository
from .trees import Entry, TreeDiff

COMMIT_TYPE, TREE_TYPE, BLOB_TYPE, TAG_TYPE = 1, 2, 3, 4
TYPE_NAMES = {COMMIT_TYPE: "commit", TREE_TYPE: "tree", BLOB_TYPE: "blob", TAG_TYPE: "tag"}
_MODE_NAMES = {0o120000: "a symbolic link", 0o160000: "a submodule", 0o100755: "an executable file"}

# git's fsck_ident: "Name <email> seconds +zone"; a name may be empty but not start with "<".
_IDENT = rb"[^<>\n]* <[^<>\n]*> (?:0|[1-9][0-9]{0,18}) [+-][0-9]{4}\n"
_COMMIT_HEADER = re.compile(
    rb"tree [0-9a-f]{40}\n(?:parent [0-9a-f]{40}\n)*author " + _IDENT + b"committer " + _IDENT
)
_TAG_HEADER = re.compile(  # a tagger line is optional (old tags have none), a bad one is not
    rb"object [0-9a-f]{40}\ntype (?:commit|tree|blob|tag)\ntag [^\n]+\n(?:tagger "
    + _IDENT
    + rb"|(?!tagger ))"
)

Files = list[tuple[str, "bytes | None", "bytes | None"]]  # (path, old blob, new blob) a commit changed


def commit_problem(raw: bytes) -> str | None:
    """Why git's fsck would refuse this commit, or None."""
    return _header_problem(raw, _COMMIT_HEADER, "tree, parent, author and committer lines")


def tag_problem(raw: bytes) -> str | None:
    """Why git's fsck would refuse this tag, or None."""
    return _header_problem(raw, _TAG_HEADER, "object, type, tag and tagger lines")


def _header_problem(raw: bytes, pattern: re.Pattern[bytes], expected: str) -> str | None:
    end = raw.find(b"\n\n")
    if end < 0 and not raw.endswith(b"\n"):
        return "its header does not end"
    header = raw if end < 0 else raw[: end + 1]
    if b"\0" in header:
        return "its header holds a NUL byte"
    if pattern.match(header) is None:
        return f"its header is not {expected} as git writes them"
    return None


def tree_problem(entries: list[Entry]) -> str | None:
    """Why git's fsck would refuse a tree of these entries (order, names), or None."""
    # git orders a folder as if its name ended in "/"; inline, as this runs for every folder a fetch grows
    keys = [name + b"/" if mode == TREE_MODE else name for name, mode, _ in entries]
    if keys != sorted(keys):
        return "its entries are not in git's order"
    names = {name for name, _, _ in entries}
    if len(names) != len(entries):
        seen: set[bytes] = set()
        for name, _, _ in entries:
            if name in seen:
                return f"{ascii(name.decode('utf-8', 'replace'))} appears twice"
            seen.add(name)
    return None


class HistoryCheck:
    """Check the objects of a fetch that are new to us, before anything moves.

    ``kept``: the received commits, trees and tags, by hex id, as
    (type, contents); ``received``: the binary ids of every object of the
    pack (whatever is in it and not kept is a blob); ``where``: the remote
    as shown; ``say``: progress.
    """

    def __init__(
        self,
        store: Repository,
        kept: dict[bytes, tuple[int, bytes]],
        received: set[bytes],
        where: str,
        say: Callable[[str], None],
    ):
        self.store = store
        self.kept = kept
        self.received = received
        self.where = where
        self.say = say
        self.known = store.objects
        self.trees = TreeDiff(
            lambda sha: self._raw(sha, TREE_TYPE),
            lambda sha: self._unsafe(f"tree {sha.decode()} is not a valid git tree"),
        )
        # The files each new commit changed against its only parent, found
        # while checking it: handed to the history index once the fetch
        # stands, so history after a clone diffs nothing. (Merge commits are
        # left to the history index to diff against each parent.)
        self.changes: dict[bytes, tuple[CommitInfo, Files]] = {}
        self._commits: dict[bytes, CommitInfo] = {}
        self._checked_trees: set[bytes] = set()

    def _unsafe(self, what: str) -> UnsafeRemoteError:
        return UnsafeRemoteError(
            f"refused {self.where}: {what}; nothing was changed. Fix the remote's history with git "
            "('git fsck' there names what is wrong), or fetch from another remote"
        )

    def _raw(self, sha: bytes, kind: int) -> bytes:
        found = self.kept.get(sha)
        if found is None:
            found = self.known.find(sha)
            if found is None:
                raise self._unsafe(f"its history is incomplete: {TYPE_NAMES[kind]} {sha.decode()} is missing")
        if found[0] != kind:
            actual = TYPE_NAMES.get(found[0], "an object of another kind")
            raise self._unsafe(f"{sha.decode()} is a {actual} where a {TYPE_NAMES[kind]} belongs")
        return found[1]

    def _type_of(self, sha: bytes) -> int | None:
        """The type of an object the fetch brings or we have; None if it is missing."""
        found = self.kept.get(sha)
        if found is not None:
            return found[0]
        if bytes.fromhex(sha.decode()) in self.received:
            return BLOB_TYPE  # in the pack and not kept: neither commit, tree nor tag
        found = self.known.find(sha)
        return None if found is None else found[0]

    def _commit(self, sha: bytes) -> CommitInfo:
        # Each commit is read as a child and again as its child's parent: parse it once.
        found = self._commits.get(sha)
        if found is None:
            raw = self._raw(sha, COMMIT_TYPE)
            if sha in self.kept:  # what we have is ours, and was checked when it came
                problem = commit_problem(raw)
                if problem is not None:
                    raise self._unsafe(f"commit {sha.decode()} is malformed ({problem})")
            found = CommitInfo.parse(sha, raw)
            self._commits[sha] = found
        return found

    def _is_new(self, sha: bytes) -> bool:
        return sha in self.kept or not self.known.has(sha)

    def check_tip(self, tip: bytes) -> None:
        """Refuse a main that names anything but a commit (one we may have already)."""
        self._raw(tip, COMMIT_TYPE)

    def check_history(self, tip: bytes) -> None:
        """Check every commit reachable from ``tip`` that is new to us, and each folder it changed."""
        todo = [tip]
        seen: set[bytes] = set()
        count = 0
        while todo:
            sha = todo.pop()
            if sha in seen or not self._is_new(sha):
                continue
            seen.add(sha)
            info = self._commit(sha)
            base = self._commit(info.parents[0]).tree if info.parents else None
            files: Files | None = None
            if len(info.parents) <= 1:
                files = []
                self.changes[sha] = (info, files)
            self._check_tree(info.tree, base, "", sha, files)
            todo.extend(info.parents)
            count += 1
            if count % 1000 == 0:
                self.say(f"Checking new commits: {count}\r")
        if count:
            self.say(f"Checking new commits: {count}, done.\n")
        self._check_the_rest(seen)

    def _check_the_rest(self, checked: set[bytes]) -> None:
        """Check what the pack holds besides the history walked: tags, and anything unreachable.

        A git server sends only what main reaches (and tags of it), so this
        is nothing or little; a tree here is checked whole.
        """
        for sha, (kind, raw) in self.kept.items():
            if kind == TAG_TYPE:
                problem = tag_problem(raw)
                if problem is not None:
                    raise self._unsafe(f"tag {sha.decode()} is malformed ({problem})")
            elif kind == COMMIT_TYPE and sha not in checked:
                self._commit(sha)
            elif kind == TREE_TYPE and sha not in self._checked_trees:
                problem = tree_problem(self.trees.entries(sha))
                if problem is not None:
                    raise self._unsafe(f"tree {sha.decode()} is malformed ({problem})")

    def _check_tree(
        self, tree: bytes, base: bytes | None, prefix: str, commit: bytes, files: Files | None
    ) -> None:
        if tree == base:
            return
        changed, whole = self.trees.changed(tree, base)
        if whole and files is not None and base is not None:
            self._note_gone(tree, base, prefix, files)
        self._checked_trees.add(tree)
        for raw_name, mode, sha, previous in changed:
            try:
                name = raw_name.decode("utf-8")
            except UnicodeDecodeError:
                self._refuse(commit, prefix + raw_name.decode("utf-8", "replace"), "its name is not UTF-8")
            path = prefix + name
            if not name or "/" in name:
                self._refuse(commit, path, "a name in a git tree is never empty and holds no '/'")
            if files is not None and previous is not None and previous[0] != mode:
                self._gone(path, previous[0], previous[1], files)  # a file became a folder, or back
                previous = None
            self._check_place(commit, path, mode)
            if mode == TREE_MODE:
                inner_base = previous[1] if previous and previous[0] == TREE_MODE else None
                self._check_tree(sha, inner_base, path + "/", commit, files)
            elif mode == FILE_MODE:
                kind = self._type_of(sha)
                if kind is None:
                    raise self._unsafe(f"its history is incomplete: {path} ({sha.decode()}) is missing")
                if kind != BLOB_TYPE:
                    self._refuse(
                        commit,
                        path,
                        f"it is a file whose contents are a {TYPE_NAMES.get(kind, 'foreign object')}",
                    )
                if files is not None:
                    files.append((path, previous[1] if previous else None, sha))
            else:
                kind_name = _MODE_NAMES.get(mode, f"an entry of mode {mode:o}")
                self._refuse(commit, path, f"it is {kind_name}; only regular files and folders are accepted")
        # Entries added or removed, or a file that became a folder (which moves it
        # in git's order): the folder is read whole. Otherwise one entry changed in
        # place, and the order and names are those of the previous version.
        if whole or (changed[0][1] == TREE_MODE) != (changed[0][3][0] == TREE_MODE):  # type: ignore[index]
            self._check_whole(tree, prefix, commit)

    def _check_place(self, commit: bytes, path: str, mode: int) -> None:
        """Refuse what is neither a record in its place nor a project file any system can hold."""
        if not layout.in_layout(path):
            problem = layout.outside_problem(path)  # a project file that is not a record
            if problem is not None:
                self._refuse(commit, path, f"its name is refused: {problem}")
        elif mode == TREE_MODE and not folder_in_layout(path):
            self._refuse(commit, path, "it is a folder that expipe_git's record layout cannot hold")
        elif mode == FILE_MODE and path != layout.IGNORE_FILE and layout.place_of(path) is None:
            self._refuse(
                commit, path, "it is a file where only records belong, and not a record in its place"
            )

    def _check_whole(self, tree: bytes, prefix: str, commit: bytes) -> None:
        """Check a folder's order and names as git's fsck does; the top folder must hold expipe.toml."""
        entries = self.trees.entries(tree)
        problem = tree_problem(entries)
        if problem is not None:
            self._refuse(commit, prefix or "the top folder", f"git refuses such a tree: {problem}")
        if not prefix or not layout.in_layout(prefix[:-1]):  # project files that are not records
            seen: dict[str, str] = {}
            for raw_name, _, _ in entries:
                name = raw_name.decode("utf-8", "replace")
                twin = seen.setdefault(name.lower(), name)
                if twin != name:
                    self._refuse(
                        commit,
                        prefix + name,
                        f"it differs only in case from {twin}, and Windows and macOS take them for one file",
                    )
        config = layout.CONFIG_FILE.encode()
        if not prefix and not any(name == config and mode == FILE_MODE for name, mode, _ in entries):
            self._refuse(commit, layout.CONFIG_FILE, "it is missing: every version of a project has it")

    def _note_gone(self, tree: bytes, base: bytes, prefix: str, files: Files) -> None:
        """Note the files of the entries ``base`` has and ``tree`` no longer has."""
        present = {name for name, _, _ in self.trees.entries(tree)}
        for old_name, mode, sha in self.trees.entries(base):
            if old_name not in present:
                self._gone(prefix + old_name.decode("utf-8", "surrogateescape"), mode, sha, files)

    def _gone(self, path: str, mode: int, sha: bytes, files: Files) -> None:
        """Record the files of an entry the new version no longer has."""
        if mode == TREE_MODE:
            for name, inner_mode, inner in self.trees.entries(sha):
                self._gone(f"{path}/{name.decode('utf-8', 'surrogateescape')}", inner_mode, inner, files)
        elif mode == FILE_MODE:
            files.append((path, sha, None))

    def index_history(self) -> None:
        """Hand the files each checked commit changed to the history index."""
        graph = historyindex.of(self.store)
        for sha, (info, files) in self.changes.items():
            graph.record(sha, info.parents[0] if info.parents else None, info.commit_time, files, save=False)
        graph.save()

    def _refuse(self, commit: bytes, path: str, why: str) -> None:
        raise self._unsafe(
            f"{ascii(path)} in commit {commit.decode()[:12]} is unsafe or not part of an "
            f"expipe_git project ({why})"
        )


@functools.lru_cache(maxsize=65536)  # the same folders come back in every commit
def folder_in_layout(path: str) -> bool:
    """Whether ``path`` is a folder that the documented layout can hold."""
    parts = path.split("/")
    if parts[0] in ("templates", "modules"):
        return len(parts) == 1
    if parts[0] not in layout.KIND_OF_FOLDER or len(parts) > 4:
        return False
    if len(parts) == 1:
        return True
    if not re.fullmatch(r"[0-9a-f]{2}", parts[1]):
        return False
    if len(parts) == 2:
        return True
    name = parts[2]
    if layout.name_problem(name) or layout.shard(name) != parts[1]:
        return False
    return len(parts) == 3 or parts[3] in ("modules", "messages")
