"""Finding actions and entities: ``where`` and the mapping it returns.

The criteria are checked by :mod:`expipe_git.criteria`, answered by the
index of :mod:`expipe_git.queryindex`; a :class:`Selection` is the answer,
with its table (:mod:`expipe_git.tables`) and HTML (:mod:`expipe_git.display`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import display, tables
from .criteria import parse_criteria
from .errors import NotFoundError
from .queryindex import Record, index_of
from .records import ReadMapping

if TYPE_CHECKING:
    from .git import Repository, Snapshot


# ---------------------------------------------------------------------------
# The answer


class Selection(ReadMapping):
    """The objects a ``where`` call found: name -> object, in name order, read-only.

    The names are fixed when ``where`` runs; each object reads its
    attributes when asked, like an item of ``project.actions``.
    """

    def __init__(
        self,
        names: list[str],
        handle: Callable[[str], Any],
        kind: str,
        fetch: Callable[[list[str], list[str]], list[Record]],
    ):
        self._found = names
        self._set = set(names)
        self._handle = handle
        self._fetch = fetch  # (names, modules) -> their records, read as ``where`` saw them
        self.kind = kind

    def _names(self) -> list[str]:
        return list(self._found)

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)

    def __contains__(self, name: object) -> bool:
        return name in self._set

    def __getitem__(self, name: str) -> Any:
        if name not in self._set:
            raise NotFoundError(f"{self.kind} {name!r} is not among the {len(self._found)} found")
        return self._handle(name)

    def rows(self, modules: Iterable[str] | None = None) -> tuple[list[str], list[dict]]:
        """Return (columns, rows) of the table of the objects found (see :mod:`expipe_git.tables`)."""
        names = tables.check_modules(modules)
        return tables.object_rows(self._fetch(self._found, names), names)

    def to_dataframe(self, modules: Iterable[str] | None = None) -> Any:
        """Return a pandas DataFrame, one row per object, indexed by name."""
        tables.check_modules(modules)
        tables.require_pandas()  # before reading anything
        return tables.dataframe(*self.rows(modules), index="name")

    def to_csv(self, modules: Iterable[str] | None = None) -> str:
        """Return the same table as CSV text (no pandas needed)."""
        return tables.csv_text(*self.rows(modules))

    def _repr_html_(self) -> str:
        # Only the rows shown are read: a notebook showing 100,000 actions shows the first few.
        shown = self._found[: display.MAX_ROWS]
        columns, rows = tables.object_rows(self._fetch(shown, []))
        title = display.kind_title(self.kind, len(self._found))
        return display.rows_html(columns, rows, title, total=len(self._found))


def where(store: Repository, snap: Snapshot, kind: str, criteria: Mapping[str, Any]) -> list[str]:
    """Return the sorted names of the objects of ``kind`` at ``snap`` meeting ``criteria``."""
    parsed = parse_criteria(kind, criteria)
    return index_of(store).names(snap, parsed)


def select(
    store: Repository, snap: Snapshot, kind: str, criteria: Mapping[str, Any], handle: Callable[[str], Any]
) -> Selection:
    """Return the :class:`Selection` of ``where``; its tables read the objects at ``snap``."""
    names = where(store, snap, kind, criteria)
    index = index_of(store)
    return Selection(names, handle, kind, lambda found, modules: index.records(snap, kind, found, modules))
