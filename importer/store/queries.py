"""The read side: what ``importer status`` shows, and the stored rows a page is compared with.

Every function takes a connection, usually ``connect(path, readonly=True)``. In WAL mode
reading never blocks the writer, nor waits for it: a reader sees the last commit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import apsw

from importer.errors import ImporterError
from importer.model import StreamKind
from importer.store.connection import connect, mapped_errors
from importer.store.rows import carray


@dataclass(frozen=True, slots=True)
class Server:
    id: int
    kind: str
    machine_id: str
    name: str | None
    base_url: str | None

    def describe(self) -> str:
        return f"{self.kind} server {self.name or '?'!r} (id {self.machine_id})"


@dataclass(frozen=True, slots=True)
class Library:
    id: int
    server_id: int
    source_id: str
    title: str | None
    kind: str | None
    shows: int
    seasons: int
    episodes: int
    files: int
    #: when the last run that finished with status 'done' ended (unix seconds), or None
    last_synced_at: int | None
    #: shows and episodes whose cast, crew and artwork are hydrated as of their etag
    shows_hydrated: int = 0
    episodes_hydrated: int = 0


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    server_id: int
    library_id: int | None
    mode: str
    started_at: int
    finished_at: int | None
    status: str
    reason: str | None
    shows_written: int
    seasons_written: int
    episodes_written: int
    files_written: int
    unchanged: int
    deleted: int
    requests: int
    bytes: int
    progress: str | None  # JSON


def servers(conn: apsw.Connection) -> list[Server]:
    with mapped_errors(conn.filename):
        return [
            Server(*row)
            for row in conn.execute("SELECT id, kind, machine_id, name, base_url FROM servers ORDER BY id")
        ]


def _counts(conn: apsw.Connection, sql: str) -> dict[int, int]:
    return {library_id: n for library_id, n in conn.execute(sql)}


def libraries(conn: apsw.Connection) -> list[Library]:
    """Every library with its row counts (grouped scans of the unique indexes; the file
    count joins files to episodes, about 0.5 s per million files)."""
    with mapped_errors(conn.filename):
        shows = _counts(conn, "SELECT library_id, count(*) FROM shows GROUP BY library_id")
        seasons = _counts(conn, "SELECT library_id, count(*) FROM seasons GROUP BY library_id")
        episodes = _counts(conn, "SELECT library_id, count(*) FROM episodes GROUP BY library_id")
        files = _counts(
            conn,
            "SELECT e.library_id, count(*) FROM media_files AS f JOIN episodes AS e ON e.id = f.episode_id "
            "GROUP BY e.library_id",
        )
        # "as of their etag": an item changed since (or never) hydrated does not count
        hydrated = {
            table: _counts(
                conn,
                f"SELECT library_id, count(*) FROM {table} "
                "WHERE hydrated_at IS NOT NULL AND hydrated_etag IS etag GROUP BY library_id",
            )
            for table in ("shows", "episodes")
        }
        synced = _counts(
            conn,
            "SELECT library_id, max(finished_at) FROM runs WHERE status = 'done' "
            "AND library_id IS NOT NULL GROUP BY library_id",
        )
        return [
            Library(
                id,
                server_id,
                source_id,
                title,
                kind,
                shows.get(id, 0),
                seasons.get(id, 0),
                episodes.get(id, 0),
                files.get(id, 0),
                synced.get(id),
                hydrated["shows"].get(id, 0),
                hydrated["episodes"].get(id, 0),
            )
            for id, server_id, source_id, title, kind in conn.execute(
                "SELECT id, server_id, source_id, title, kind FROM libraries ORDER BY server_id, id"
            )
        ]


_RUN_COLUMNS = ", ".join(Run.__slots__)


def last_runs(conn: apsw.Connection, limit: int = 10, *, library_id: int | None = None) -> list[Run]:
    """The most recent runs first (of one library, or of all)."""
    where, args = ("WHERE library_id = ?", (library_id, limit)) if library_id is not None else ("", (limit,))
    with mapped_errors(conn.filename):
        return [
            Run(*row)
            for row in conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY id DESC LIMIT ?", args)
        ]


def stored_rows(
    conn: apsw.Connection, library_id: int, stream: StreamKind, source_ids: Sequence[str]
) -> dict[str, tuple[int, str | None]]:
    """{source_id: (id, etag)} of the library's stored rows of a stream with these source
    ids (one statement, ~1 µs per item): the decoder compares a page with them."""
    if not source_ids:
        return {}
    sql = f"SELECT source_id, id, etag FROM {stream} WHERE library_id = ? AND source_id IN carray(?)"
    with mapped_errors(conn.filename):
        return {
            sid: (row_id, etag) for sid, row_id, etag in conn.execute(sql, (library_id, carray(source_ids)))
        }


def known_kind(db_path: str, url: str) -> str:
    """The kind of the server this database last synced from ``url``, or "auto": a nightly
    run need not ask the server again what it is."""
    if not os.path.exists(db_path):
        return "auto"
    try:
        conn = connect(db_path, readonly=True)
        try:
            kind = conn.execute("SELECT kind FROM servers WHERE base_url = ?", (url,)).get
        finally:
            conn.close()
    except ImporterError:
        return "auto"  # unreadable here: detection will do, and the writer reports real problems
    return kind if isinstance(kind, str) else "auto"


def last_synced(db_path: str) -> int:
    """When the last run that ended done finished (unix s); 0 when never, or when the
    file cannot be read here (it is synced first, and the sync says what is wrong)."""
    if not os.path.exists(db_path):
        return 0
    try:
        conn = connect(db_path, readonly=True)
        try:
            with mapped_errors(db_path):
                when = conn.execute("SELECT max(finished_at) FROM runs WHERE status = 'done'").get
        finally:
            conn.close()
    except ImporterError:
        return 0
    return when if isinstance(when, int) else 0


def _read_only(db_path: str) -> apsw.Connection:
    return connect(db_path, readonly=True)


def library_ids(db_path: str, kind: str, machine_id: str) -> dict[str, int]:
    """The local id of each stored library of a server, by its source id."""
    conn = _read_only(db_path)
    try:
        with mapped_errors(db_path):
            sql = (
                "SELECT l.source_id, l.id FROM libraries l JOIN servers s ON s.id = l.server_id "
                "WHERE s.kind = ? AND s.machine_id = ?"
            )
            return dict(conn.execute(sql, (kind, machine_id)))
    finally:
        conn.close()


def verified_at(db_path: str, library_ids: Sequence[int]) -> list[int | None]:
    """When each library's last full run that ended done started (None: never)."""
    conn = _read_only(db_path)
    try:
        with mapped_errors(db_path):
            sql = (
                "SELECT max(started_at) FROM runs WHERE library_id = ? AND status = 'done' AND mode = 'full'"
            )
            return [conn.execute(sql, (library_id,)).get for library_id in library_ids]
    finally:
        conn.close()


def _when(ts: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts)) if ts is not None else "never"


def status_report(path: str | os.PathLike[str], runs: int = 10) -> str:
    """The text of ``importer status --db PATH``: servers, libraries with counts, last runs."""
    conn = connect(path, readonly=True)
    try:
        all_servers = servers(conn)
        all_libraries = libraries(conn)
        recent = last_runs(conn, runs)
    finally:
        conn.close()
    titles = {lib.id: lib.title or lib.source_id for lib in all_libraries}
    lines = [f"Database {os.fspath(path)}"]
    if not all_servers:
        lines.append("  no server synced yet")
    for server in all_servers:
        lines.append(f"{server.kind} server {server.name or server.machine_id!r} at {server.base_url or '?'}")
        for lib in (x for x in all_libraries if x.server_id == server.id):
            lines.append(
                f"  {lib.title or lib.source_id!r}: {lib.shows:,} shows, {lib.seasons:,} seasons, "
                f"{lib.episodes:,} episodes, {lib.files:,} files; "
                f"last complete sync {_when(lib.last_synced_at)}; "
                f"hydrated {lib.shows_hydrated:,} of {lib.shows:,} shows, "
                f"{lib.episodes_hydrated:,} of {lib.episodes:,} episodes"
            )
    if recent:
        lines.append("Last runs:")
    for run in recent:
        took = f"{run.finished_at - run.started_at:,} s" if run.finished_at is not None else "unfinished"
        target = titles.get(run.library_id, "?") if run.library_id is not None else "whole server"
        written = run.shows_written + run.seasons_written + run.episodes_written
        line = (
            f"  #{run.id} {_when(run.started_at)} {target!r} {run.mode}: {run.status} ({took}); "
            f"{written:,} written, {run.unchanged:,} unchanged, {run.deleted:,} deleted, "
            f"{run.requests:,} requests, {run.bytes / 1e6:,.1f} MB"
        )
        lines.append(line + (f"; {run.reason}" if run.reason else ""))
    return "\n".join(lines)
