"""Apply a batch of notified changes: fetch the items by id, upsert them, delete what is gone.

The server's answer is the truth, whatever the notification said ("added", "updated" or
"removed"): an item that is named and still there is upserted (an unchanged etag writes
nothing), an item that is stored but no longer returned where it was is deleted, with
its seasons and episodes. So
duplicated, reordered or late notifications, and one for an item that is already gone,
all end in what the server has now.

Requests: Plex ``/library/metadata/{ids}`` (up to 100 a request, any type and section);
Jellyfin and Emby ``/Items?Ids=…`` per library and stream (50 a request), only the streams
where an id can be (a stored item's own; every stream for an id not stored yet).

One transaction per batch, through the pipeline's :class:`~importer.store.writer.Writer`.
A batch never deletes more than the mass-delete guard allows in a library: such a library
is handed back (:attr:`BatchResult.guarded`) for a verified full run instead. Batches
never move a library's watermark: only a catch-up that ends ``done`` does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw
import msgspec
import orjson

from importer.compression import inflate
from importer.errors import NotFoundError
from importer.http import HttpClient
from importer.model import ITEM_TYPE_OF, STREAM_OF, STREAMS, ItemType, LibraryInfo, ListingKind, StreamKind
from importer.plan import MASS_DELETE_ROWS, MASS_DELETE_SHARE
from importer.sources import DecodedPage, Source, decode_page
from importer.sources.plex import ITEMS_PER_REQUEST, PlexSource
from importer.store.items import StoredItem, children, stored_items, stored_total
from importer.store.writer import Writer
from importer.watching.changes import Action, ItemChange

#: ids per Jellyfin/Emby ``/Items?Ids=`` request (32-hex ids: ~1.7 KB of URL)
IDS_PER_REQUEST = 50


@dataclass(frozen=True)
class WatchedLibrary:
    """A library the watch covers: the server's view of it and its local id."""

    info: LibraryInfo
    library_id: int


class ChangedItem(msgspec.Struct, frozen=True):
    """An item a batch added, updated or removed, as a host app refreshes it."""

    id: int  # the local id (of the row as it was, for a removed item)
    source_id: str
    type: ItemType


@dataclass
class LibraryChanges:
    """What one batch did to one library."""

    library: WatchedLibrary
    added: list[ChangedItem] = field(default_factory=list)
    updated: list[ChangedItem] = field(default_factory=list)
    removed: list[ChangedItem] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class BatchResult:
    """What a batch did, per library; and the libraries it left for a verified run."""

    libraries: list[LibraryChanges]
    guarded: list[WatchedLibrary]
    requests: int


Pages = dict[tuple[int, StreamKind], list[DecodedPage]]


class Applier:
    """Applies batches for one server's watched libraries (one writer connection)."""

    def __init__(
        self,
        source: Source,
        http: HttpClient,
        db_path: str,
        libraries: Sequence[WatchedLibrary],
        *,
        allow_mass_delete: bool = False,
    ) -> None:
        self.source = source
        self.http = http
        self.db_path = db_path
        self.libraries = list(libraries)
        self.allow_mass_delete = allow_mass_delete
        self._by_source_id = {lib.info.source_id: lib for lib in self.libraries}
        self._by_id = {lib.library_id: lib for lib in self.libraries}
        self._writer: Writer | None = None
        #: per library, the rows batches deleted since the last verified catch-up: the guard
        #: counts them all, or a library emptied notice by notice would pass it batch by batch
        self.deleted: dict[int, int] = defaultdict(int)
        #: a batch is being written (committed whole): a stop waits for it
        self.writing = False

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def apply(self, changes: Sequence[ItemChange]) -> BatchResult:
        before = self.http.stats.requests
        ids = {change.source_id for change in changes}
        stored: dict[str, list[StoredItem]] = defaultdict(list)
        for item in await asyncio.to_thread(self._stored, ids):
            stored[item.source_id].append(item)
        # A removal is checked too: with notifications reordered, an item removed and
        # added again (Jellyfin ids come from the file's path) must not be deleted.
        wanted = [c for c in changes if c.action is Action.CHANGED or c.source_id in stored]
        if isinstance(self.source, PlexSource):
            pages = await self._fetch_plex(self.source, wanted, stored)
        else:
            pages = await self._fetch_by_stream(wanted, stored)
        self.writing = True
        try:
            result = await asyncio.to_thread(self._write, pages, changes, stored)
        finally:
            self.writing = False
        result.requests = self.http.stats.requests - before
        return result

    # ------------------------------------------------------------------ fetching
    async def _fetch_plex(
        self, source: PlexSource, wanted: Sequence[ItemChange], stored: dict[str, list[StoredItem]]
    ) -> Pages:
        keys = [
            c.source_id
            for c in wanted
            # an item of a section this watch does not cover is no business of it
            if c.source_id in stored
            or c.library_source_id is None
            or c.library_source_id in self._by_source_id
        ]
        pages: Pages = defaultdict(list)
        for chunk in _chunks(keys, ITEMS_PER_REQUEST):
            try:
                page = await self.http.fetch(source.items_request(chunk))
            except NotFoundError:
                continue  # none of them is there any more
            body = page.body
            for key, decoded in await asyncio.to_thread(
                self._decode_plex, body, page.content_encoding, page.url
            ):
                pages[key].append(decoded)
        return pages

    def _decode_plex(
        self, body: bytes, encoding: str | None, url: str
    ) -> list[tuple[tuple[int, StreamKind], DecodedPage]]:
        """A ``/library/metadata`` answer, split by section and type into pages the
        listing decoders read (they decode one stream of one section)."""
        document = orjson.loads(inflate(body, encoding, what=url))
        container: dict[str, Any] = document.get("MediaContainer") or {}
        default_section = container.get("librarySectionID")
        groups: dict[tuple[str, StreamKind], list[Any]] = defaultdict(list)
        for item in container.get("Metadata") or ():
            stream = STREAM_OF.get(item.get("type"))
            section = str(item.get("librarySectionID", default_section))
            if stream is not None and section in self._by_source_id:
                groups[section, stream].append(item)
        decoded = []
        for (section, stream), items in groups.items():
            page = orjson.dumps({"MediaContainer": {"size": len(items), "Metadata": items}})
            library = self._by_source_id[section]
            decoded.append(((library.library_id, stream), decode_page("plex", stream, page, section)))
        return decoded

    async def _fetch_by_stream(
        self, wanted: Sequence[ItemChange], stored: dict[str, list[StoredItem]]
    ) -> Pages:
        """Jellyfin and Emby: ``/Items?Ids=`` per library and stream where an id can be."""
        candidates: dict[tuple[WatchedLibrary, StreamKind], list[str]] = defaultdict(list)
        for change in wanted:
            places = stored.get(change.source_id)
            if places:
                for item in places:
                    candidates[self._by_id[item.library_id], item.stream].append(change.source_id)
            else:
                for lib in self.libraries:
                    for stream in STREAMS:
                        candidates[lib, stream].append(change.source_id)
        pages: Pages = defaultdict(list)
        for (lib, stream), ids in candidates.items():
            for chunk in _chunks(ids, IDS_PER_REQUEST):
                request = self.source.page_request(
                    lib.info, stream, ListingKind.DETAILS, 0, len(chunk), with_total=False, ids=chunk
                )
                page = await self.http.fetch(request)
                body = inflate(page.body, page.content_encoding, what=page.url)
                decoded = await asyncio.to_thread(
                    decode_page,
                    self.source.kind,
                    stream,
                    body,
                    lib.info.source_id,
                    listing=ListingKind.DETAILS,
                    with_total=False,
                )
                pages[lib.library_id, stream].append(decoded)
        return pages

    # ------------------------------------------------------------------ writing
    def _open(self) -> Writer:
        if self._writer is None:
            self._writer = Writer.open(self.db_path)
        return self._writer

    def _stored(self, ids: Iterable[str]) -> list[StoredItem]:
        writer = self._open()
        return stored_items(writer.conn, [lib.library_id for lib in self.libraries], ids)

    def _write(
        self, pages: Pages, changes: Sequence[ItemChange], stored: dict[str, list[StoredItem]]
    ) -> BatchResult:
        writer = self._open()
        conn = writer.conn
        returned = {key: {sid for page in got for sid in page.ids} for key, got in pages.items()}
        doomed: dict[int, dict[int, StoredItem]] = defaultdict(dict)  # library → key → item
        for change in changes:
            for item in stored.get(change.source_id, ()):
                if item.source_id not in returned.get((item.library_id, item.stream), ()):
                    doomed[item.library_id][_key(item)] = item
        writer.begin()
        try:
            for items in list(doomed.values()):
                # what goes with a show or season, unless this batch lists it where it is now
                for stream in (StreamKind.SHOWS, StreamKind.SEASONS):
                    parents = [item.id for item in items.values() if item.stream is stream]
                    for child in children(conn, stream, parents):
                        if child.source_id not in returned.get((child.library_id, child.stream), ()):
                            items.setdefault(_key(child), child)
            guarded = [lib for lib in self.libraries if self._over_the_guard(conn, lib, doomed)]
            for lib in guarded:
                doomed.pop(lib.library_id, None)
            adopted: set[int] = set()
            for library_id, stream in sorted(pages, key=lambda k: (k[0], STREAMS.index(k[1]))):
                leaving = {item.id for item in doomed.get(library_id, {}).values() if item.stream is stream}

                def adoptable(row_id: int, leaving: set[int] = leaving) -> bool:
                    if row_id in leaving:
                        adopted.add(row_id)  # a replaced file: the new item keeps the row
                        return True
                    return False

                for page in pages[library_id, stream]:
                    if page.rows:
                        writer.write_rows(
                            library_id, stream, page.rows, (), page.files, adoptable, page.images
                        )
            for items in doomed.values():
                for stream in STREAMS:
                    ids = [i.id for i in items.values() if i.stream is stream and i.id not in adopted]
                    if ids:
                        writer.delete_rows(stream, ids)
            touched = {library_id for library_id, _ in pages} | set(doomed)
            for library_id in touched:
                writer.link(library_id)
            after = stored_items(conn, sorted(touched), {sid for got in returned.values() for sid in got})
            writer.commit()
            for library_id, items in doomed.items():
                self.deleted[library_id] += len(items)
        except BaseException:
            writer.rollback()
            raise
        finally:
            for lib in self.libraries:
                writer.rows.forget(lib.library_id)
        return self._result(stored, doomed, adopted, after, guarded)

    def _over_the_guard(
        self, conn: apsw.Connection, lib: WatchedLibrary, doomed: dict[int, dict[int, StoredItem]]
    ) -> bool:
        """Whether deleting this batch's rows of ``lib`` would take the batches since the last
        verified catch-up past the mass-delete guard (the library is counted only then)."""
        before = self.deleted[lib.library_id]
        gone = before + len(doomed.get(lib.library_id, ()))
        if self.allow_mass_delete or gone == before or gone <= MASS_DELETE_ROWS:
            return False
        return gone > MASS_DELETE_SHARE * (before + stored_total(conn, lib.library_id))

    def _result(
        self,
        stored: dict[str, list[StoredItem]],
        doomed: dict[int, dict[int, StoredItem]],
        adopted: set[int],
        after: list[StoredItem],
        guarded: list[WatchedLibrary],
    ) -> BatchResult:
        before = {item.id: item for items in stored.values() for item in items}
        by_library = {lib.library_id: LibraryChanges(lib) for lib in self.libraries}
        for item in after:
            changes = by_library[item.library_id]
            old = before.get(item.id)
            if old is None and item.id not in adopted:
                changes.added.append(_changed(item))
            elif old is None or old.etag != item.etag or old.source_id != item.source_id:
                changes.updated.append(_changed(item))
        for library_id, items in doomed.items():
            for item in items.values():
                if item.id not in adopted:
                    by_library[library_id].removed.append(_changed(item))
        return BatchResult([c for c in by_library.values() if c], guarded, requests=0)


def _key(item: StoredItem) -> int:
    """One key per row across the three tables (ids are per table)."""
    return item.id * 4 + STREAMS.index(item.stream)


def _changed(item: StoredItem) -> ChangedItem:
    return ChangedItem(item.id, item.source_id, ITEM_TYPE_OF[item.stream])


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
