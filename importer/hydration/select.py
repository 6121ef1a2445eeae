"""What a hydration run works on, read from the database: its servers and libraries, the
items whose etag changed since they were last hydrated, and a show asked for by id or
title. Reads only; each refusal says what to give instead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import apsw

from importer.errors import ConfigError
from importer.hydration.model import Target
from importer.model import STREAM_OF, ItemType
from importer.store import queries
from importer.store.connection import mapped_errors
from importer.store.listing import int_array
from importer.store.queries import Server


@dataclass(frozen=True, slots=True)
class StoredLibrary:
    id: int
    server_id: int
    source_id: str
    title: str


@dataclass(frozen=True, slots=True)
class StoredShow:
    id: int
    source_id: str
    title: str | None
    year: int | None
    etag: str | None
    library: StoredLibrary


def servers(conn: apsw.Connection, kind: str = "auto") -> list[Server]:
    """The database's servers (of one kind, unless ``kind`` is "auto")."""
    found = queries.servers(conn)
    if not found:
        raise ConfigError(
            f"the database {conn.filename} holds no server yet: run `importer sync URL --db ...` first"
        )
    chosen = [s for s in found if kind in ("auto", s.kind)]
    if not chosen:
        held = ", ".join(s.describe() for s in found)
        raise ConfigError(f"the database holds no {kind} server (it holds: {held}); check --kind")
    return chosen


def libraries(conn: apsw.Connection, server_id: int, wanted: Sequence[str] = ()) -> list[StoredLibrary]:
    """A server's libraries, or those named in ``wanted`` (titles, any case, or source ids)."""
    with mapped_errors(conn.filename):
        found = [
            StoredLibrary(id, server_id, source_id, title or source_id)
            for id, source_id, title in conn.execute(
                "SELECT id, source_id, title FROM libraries WHERE server_id = ? ORDER BY id", (server_id,)
            )
        ]
    if not wanted:
        return found
    folded = {w.casefold() for w in wanted}
    missing = [
        w
        for w in wanted
        if not any(w == lib.source_id or w.casefold() == lib.title.casefold() for lib in found)
    ]
    if missing:
        names = ", ".join(f"{lib.title!r} ({lib.source_id})" for lib in found) or "none"
        raise ConfigError(
            f"no library named {', '.join(map(repr, missing))} in the database; it has: {names}"
        )
    return [lib for lib in found if lib.source_id in wanted or lib.title.casefold() in folded]


def _pending_where(item_type: ItemType) -> str:
    # hydrated_at IS NULL: never hydrated (also when the etag is NULL); otherwise the
    # etag moved since the last hydration
    return (
        f"FROM {STREAM_OF[item_type]} WHERE library_id = ? "
        "AND (hydrated_at IS NULL OR hydrated_etag IS NOT etag)"
    )


def count_pending(conn: apsw.Connection, item_type: ItemType, library_id: int) -> int:
    with mapped_errors(conn.filename):
        return int(conn.execute(f"SELECT count(*) {_pending_where(item_type)}", (library_id,)).get)


def pending(
    conn: apsw.Connection, item_type: ItemType, library_id: int, after_id: int, limit: int
) -> list[Target]:
    """The next ``limit`` items to hydrate with a local id above ``after_id``, in id order
    (keyset paging: a run holds one batch in memory, whatever the library's size)."""
    sql = f"SELECT id, source_id, etag {_pending_where(item_type)} AND id > ? ORDER BY id LIMIT ?"
    with mapped_errors(conn.filename):
        return [Target(*row) for row in conn.execute(sql, (library_id, after_id, limit))]


def show_episodes(conn: apsw.Connection, show_id: int) -> list[Target]:
    """Every stored episode of a show, in id order."""
    with mapped_errors(conn.filename):
        return [
            Target(*row)
            for row in conn.execute(
                "SELECT id, source_id, etag FROM episodes WHERE show_id = ? ORDER BY id", (show_id,)
            )
        ]


def find_show(conn: apsw.Connection, libraries: Sequence[StoredLibrary], value: str) -> StoredShow:
    """The show whose source_id is ``value``, else the one whose title is exactly ``value``.

    Refuses (exit 2) a value that matches no show, and one that matches several: the
    message lists them (source_id, title, year, library) so that the user can pick one."""
    by_id = {lib.id: lib for lib in libraries}
    if not by_id:
        raise ConfigError("no library to look for the show in: check --library and --kind")
    sql = (
        "SELECT id, source_id, title, year, etag, library_id FROM shows "
        "WHERE {} = ? AND library_id IN carray(?) ORDER BY library_id, id"
    )
    with mapped_errors(conn.filename):
        for column in ("source_id", "title"):
            shows = [
                StoredShow(id, sid, title, year, etag, by_id[lib])
                for id, sid, title, year, etag, lib in conn.execute(
                    sql.format(column), (value, int_array(list(by_id)))
                )
            ]
            if shows:
                break
    if not shows:
        raise ConfigError(
            f"no show has the id or the exact title {value!r} in the database: check the spelling "
            "(titles match exactly, case included), or give its source_id "
            "(SELECT source_id, title FROM shows)"
        )
    if len(shows) > 1:
        listed = "\n".join(f"  {s.source_id}\t{s.title}\t{s.year or ''}\t{s.library.title}" for s in shows)
        raise ConfigError(
            f"{len(shows)} shows match {value!r}; give the source_id of one with --show:\n"
            f"  source_id\ttitle\tyear\tlibrary\n{listed}"
        )
    return shows[0]
