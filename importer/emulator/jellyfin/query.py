"""The ``/Items`` query: what a request asks to list, as ItemsController binds it.

Accepted and ignored: ``SortBy`` (see the package notes on order), ``IsUnaired``/
``IsVirtualUnaired`` (nothing is unaired), ``Has*Id``, ``ImageTypeLimit``/
``EnableImageTypes``, ``ParentIndexNumber``/``IndexNumber``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from importer.emulator.jellyfin.catalog import EPISODE, SEASON, SERIES, Folder, Ref
from importer.emulator.jellyfin.params import QueryParams

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer

#: IncludeItemTypes this TV library has (others are accepted and match nothing).
_ITEM_TYPES: Final = {"series": SERIES, "season": SEASON, "episode": EPISODE}


@dataclass
class ItemsQuery:
    """The parameters of ``/Items`` that shape what is listed."""

    parent: Ref | Folder | None
    kinds: frozenset[int]
    recursive: bool
    start: int
    limit: int | None
    count: bool
    descending: bool
    ids: tuple[str, ...] | None
    virtual: bool | None  # False: no missing episodes; True: only them
    min_saved: float | None
    empty: bool  # a filter that nothing passes (an unknown parent, the 10.10 date bug)
    root_listing: bool

    @property
    def needs_filter(self) -> bool:
        return self.min_saved is not None or self.virtual is True

    def cache_key(self) -> tuple[object, ...]:
        return (self.parent, self.kinds, self.recursive, self.virtual, self.min_saved)

    @classmethod
    def parse(cls, q: QueryParams, server: JellyfinServer) -> ItemsQuery:
        parent_text = q.get("ParentId")
        parent: Ref | Folder | None = None
        empty = False
        if parent_text:
            found = server.catalog.lookup(parent_text)
            if found is None:
                # ItemsController with an API key: no such folder, so the query runs from the
                # root with ParentId = that id, and nothing has it as parent.
                empty = True
            elif isinstance(found, Ref) and found.kind == EPISODE:
                empty = True  # not a folder: no children
            else:
                parent = found
        types = {t.lower() for t in q.csv("IncludeItemTypes")}
        kinds = (
            {SERIES, SEASON, EPISODE} if not types else {_ITEM_TYPES[t] for t in types if t in _ITEM_TYPES}
        )
        kinds -= {_ITEM_TYPES[t.lower()] for t in q.csv("ExcludeItemTypes") if t.lower() in _ITEM_TYPES}
        recursive = q.flag("Recursive")
        if recursive is None:
            recursive = server.default_recursive() and bool(types)
        ids_list = [i for i in q.csv("Ids") if server.catalog.parse_id(i) is not None]
        ids = tuple(ids_list) if "Ids" in q and q.csv("Ids") else None
        start = max(q.int("StartIndex") or 0, 0)
        limit = q.int("Limit")
        count = q.flag("EnableTotalRecordCount")
        order = q.csv("SortOrder")
        descending = bool(order) and order[0].lower() == "descending"
        virtual, contradiction = _virtual_filter(q)
        min_saved, nothing = _min_saved(q, server)
        return cls(
            parent=parent,
            kinds=frozenset(kinds),
            recursive=recursive,
            start=start,
            limit=limit,
            count=count is not False,
            descending=descending,
            ids=ids,
            virtual=virtual,
            min_saved=min_saved,
            empty=empty or nothing or contradiction or not kinds,
            root_listing=not parent_text and not recursive and ids is None,
        )


def _virtual_filter(q: QueryParams) -> tuple[bool | None, bool]:
    """``IsMissing`` and the location types, as ItemsController turns them into
    ``IsVirtualItem``: excluding Virtual, or naming up to three types without it, hides
    missing episodes; naming Virtual among fewer than four keeps only them. Returns (the
    filter, whether two of them contradict each other so that nothing passes)."""
    virtual: bool | None = None
    if any(t.lower() == "virtual" for t in q.csv("ExcludeLocationTypes")):
        virtual = False
    location_types = {t.lower() for t in q.csv("LocationTypes")}
    if 0 < len(location_types) < 4:
        virtual = "virtual" in location_types
    missing = q.flag("IsMissing")
    if missing is not None:
        if virtual is not None and virtual != missing:
            return None, True
        virtual = missing
    return virtual, False


def _min_saved(q: QueryParams, server: JellyfinServer) -> tuple[float | None, bool]:
    """(the effective last-saved bound, whether the query matches nothing at all)."""
    plain = q.date("MinDateLastSaved")
    for_user = q.date("MinDateLastSavedForUser")
    if server.min_date_bug():
        # SqliteItemRepository (10.8-10.10) writes both conditions against
        # @MinDateLastSavedForUser but binds @MinDateLastSaved: alone, the plain one
        # compares with NULL and matches nothing; with both, both use the ForUser value.
        if plain is not None and for_user is None:
            return None, True
        return for_user, False
    bounds = [d for d in (plain, for_user) if d is not None]
    return (max(bounds) if bounds else None), False
