"""Items by their server ids, across a server's libraries: what ``importer watch`` needs to
apply a notification that names an item without saying where it lives."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apsw
import msgspec

from importer.model import STREAMS, StreamKind
from importer.store.listing import int_array
from importer.store.rows import carray


class StoredItem(msgspec.Struct, frozen=True):
    """A stored show, season or episode."""

    library_id: int
    stream: StreamKind
    id: int
    source_id: str
    etag: str | None


def stored_items(
    conn: apsw.Connection, library_ids: Sequence[int], source_ids: Iterable[str]
) -> list[StoredItem]:
    """The shows, seasons and episodes of these libraries with these source ids."""
    source_ids = list(source_ids)
    if not source_ids or not library_ids:
        return []
    wanted = carray(source_ids)
    libraries = int_array(list(library_ids))
    found: list[StoredItem] = []
    for stream in STREAMS:
        sql = (
            f"SELECT library_id, id, source_id, etag FROM {stream} "
            "WHERE source_id IN carray(?) AND library_id IN carray(?)"
        )
        for library_id, row_id, source_id, etag in conn.execute(sql, (wanted, libraries)):
            found.append(StoredItem(library_id, stream, row_id, source_id, etag))
    return found


def children(conn: apsw.Connection, stream: StreamKind, ids: Sequence[int]) -> list[StoredItem]:
    """The seasons and episodes of these shows (``stream`` shows), or the episodes of these
    seasons: what goes when they go."""
    if not ids or stream is StreamKind.EPISODES:
        return []
    parent = "show_id" if stream is StreamKind.SHOWS else "season_id"
    below = [StreamKind.SEASONS, StreamKind.EPISODES] if stream is StreamKind.SHOWS else [StreamKind.EPISODES]
    found: list[StoredItem] = []
    for child in below:
        sql = f"SELECT library_id, id, source_id, etag FROM {child} WHERE {parent} IN carray(?)"
        for library_id, row_id, source_id, etag in conn.execute(sql, (int_array(list(ids)),)):
            found.append(StoredItem(library_id, child, row_id, source_id, etag))
    return found


def stored_total(conn: apsw.Connection, library_id: int) -> int:
    """Every show, season and episode the library holds (the mass-delete guard's base)."""
    return sum(
        int(conn.execute(f"SELECT count(*) FROM {stream} WHERE library_id = ?", (library_id,)).get or 0)
        for stream in STREAMS
    )
