"""Deleting what a complete listing proves gone.

A sweep only ever follows a listing that was verified complete (its distinct items equal
the server's counts before and after it): the library's rows of a stream that the
listing did not name are gone from the server. Whether they are deleted is decided
elsewhere (``importer.plan.finish_library``: the mass-delete guard, ``--dry-run``); here
they are found, and deleted when that decision says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from importer.model import STREAMS, StreamKind
from importer.store.listing import ListedItems
from importer.store.metadata import prune_people
from importer.store.writer import Writer


@dataclass
class Gone:
    #: per stream: (id, source_id, a name for people) of the rows no listing named
    rows: dict[StreamKind, list[tuple[int, str, str]]] = field(default_factory=dict)
    stored: int = 0  # every row of the library: shows, seasons and episodes

    @property
    def counts(self) -> dict[StreamKind, int]:
        return {stream: len(rows) for stream, rows in self.rows.items()}


def find_gone(writer: Writer, library_id: int, listings: Mapping[StreamKind, ListedItems]) -> Gone:
    """The library's rows of each listed stream that its (complete) listing did not name."""
    stored = {stream: writer.stored_count(library_id, stream) for stream in STREAMS}
    # A listing names stored rows only: as many as are stored means none is missing, and
    # the end of a full import need not scan a million ids to learn it.
    return Gone(
        {
            stream: writer.unlisted(library_id, stream, listed) if listed.count != stored[stream] else []
            for stream, listed in listings.items()
        },
        sum(stored.values()),
    )


def delete_gone(writer: Writer, gone: Gone) -> int:
    """Delete the rows found gone, children first, and the people only they credited;
    returns how many rows."""
    for stream in reversed(STREAMS):  # a deleted show's seasons and episodes go anyway
        rows = gone.rows.get(stream)
        if rows:
            writer.delete_rows(stream, [row_id for row_id, _, _ in rows])
    deleted = sum(gone.counts.values())
    if deleted:  # their credits went with them (schema.sql's triggers)
        prune_people(writer.conn)
    return deleted
