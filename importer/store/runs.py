"""Run bookkeeping: servers, libraries, one ``runs`` row per library per run, its progress,
the items its listing has seen, and the watermark a done run leaves for the next one.

Functions over a connection; the writer process calls them through
:class:`~importer.store.writer.Writer`, inside its transactions, so that a run's progress
commits together with the rows it describes.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping

import apsw
import msgspec

from importer.model import (
    ENDED,
    STREAMS,
    LibraryInfo,
    LibraryProgress,
    RunMode,
    RunStatus,
    ServerInfo,
    StreamKind,
    StreamProgress,
)
from importer.protocol import StoredLibrary

RUN_COUNT_COLUMNS = (
    "shows_written", "seasons_written", "episodes_written", "files_written",
    "unchanged", "deleted", "requests", "bytes",
)  # fmt: skip
#: changes saved this long before a run's start are listed again by the next run
WATERMARK_OVERLAP_S = 120

_encode_progress = msgspec.json.Encoder().encode
_decode_progress = msgspec.json.Decoder(dict[StreamKind, StreamProgress]).decode


def ensure_server(conn: apsw.Connection, server: ServerInfo) -> int:
    """The local id of a server, created or updated (name and URL may change)."""
    return int(
        conn.execute(
            "INSERT INTO servers (kind, machine_id, name, base_url) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, machine_id) DO UPDATE SET name = excluded.name, "
            "base_url = excluded.base_url RETURNING id",
            (server.kind, server.machine_id, server.name, server.base_url),
        ).get
    )


def ensure_library(conn: apsw.Connection, server_id: int, library: LibraryInfo) -> int:
    """The local id of a library, created or updated (it may have been renamed)."""
    return int(
        conn.execute(
            "INSERT INTO libraries (server_id, source_id, title, kind) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (server_id, source_id) DO UPDATE SET title = excluded.title, "
            "kind = excluded.kind RETURNING id",
            (server_id, library.source_id, library.title, library.kind),
        ).get
    )


def stored_library(conn: apsw.Connection, library_id: int) -> StoredLibrary:
    """What the next run of a library starts from."""
    watermark = conn.execute(
        "SELECT watermark FROM runs WHERE library_id = ? AND status = 'done' "
        "AND watermark IS NOT NULL ORDER BY id DESC LIMIT 1",
        (library_id,),
    ).get
    verified = conn.execute(
        "SELECT max(started_at) FROM runs WHERE library_id = ? AND status = 'done' AND mode = 'full'",
        (library_id,),
    ).get
    populated = [
        stream
        for stream in STREAMS
        if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {stream} WHERE library_id = ?)", (library_id,)).get
    ]
    last = conn.execute(
        "SELECT id, status, progress, mode FROM runs WHERE library_id = ? ORDER BY id DESC LIMIT 1",
        (library_id,),
    ).fetchone()
    if last is None or RunStatus(last[1]) in ENDED:
        return StoredLibrary(library_id, populated, watermark, verified, None, None, None)
    run_id, _, progress, mode = last
    return StoredLibrary(
        library_id, populated, watermark, verified, run_id, RunMode(mode), read_progress(progress)
    )


def read_progress(text: str | None) -> LibraryProgress | None:
    """A run's stored progress; None when there is none or it cannot be read (the run is
    then not resumed, only superseded: nothing is lost but a little time)."""
    if not text:
        return None
    try:
        return _decode_progress(text)
    except msgspec.DecodeError:
        return None


def start_run(conn: apsw.Connection, library_id: int, mode: RunMode, started_at: int | None = None) -> int:
    """Record the start of a run of one library; returns the run's id."""
    return int(
        conn.execute(
            "INSERT INTO runs (server_id, library_id, mode, started_at) "
            "SELECT server_id, id, ?, ? FROM libraries WHERE id = ? RETURNING id",
            (mode, int(time.time()) if started_at is None else started_at, library_id),
        ).get
    )


def reopen_run(conn: apsw.Connection, run_id: int) -> None:
    """Mark an unfinished run as running again: this process resumes it."""
    sql = "UPDATE runs SET status = 'running', finished_at = NULL, reason = NULL WHERE id = ?"
    conn.execute(sql, (run_id,))


def save_progress(conn: apsw.Connection, run_id: int, progress: LibraryProgress) -> None:
    """Store the run's progress; inside the transaction that holds the rows it describes."""
    conn.execute("UPDATE runs SET progress = ? WHERE id = ?", (_encode_progress(progress).decode(), run_id))


def finish_run(
    conn: apsw.Connection,
    run_id: int,
    status: RunStatus,
    reason: str | None = None,
    counts: Mapping[str, int] | None = None,
    *,
    finished_at: int | None = None,
    watermark: int | None = None,
) -> None:
    """Record the end of a run: its status, why, and its counts (keys from
    ``RUN_COUNT_COLUMNS``). A done run records the ``watermark`` the next incremental run
    starts from."""
    if status is RunStatus.DRY_RUN:
        raise ValueError("a dry run is recorded as 'stopped'")
    counts = dict(counts or {})
    unknown = set(counts) - set(RUN_COUNT_COLUMNS)
    if unknown:
        raise ValueError(f"unknown run counts {sorted(unknown)}; expected {RUN_COUNT_COLUMNS}")
    sets = "".join(f", {name} = :{name}" for name in counts)
    conn.execute(
        "UPDATE runs SET status = :status, reason = :reason, finished_at = :finished_at, "
        f"watermark = :watermark{sets} WHERE id = :id",
        {
            "watermark": watermark,
            "status": RunStatus(status).value,
            "reason": reason,
            "finished_at": int(time.time()) if finished_at is None else finished_at,
            "id": run_id,
            **counts,
        },
    )


def next_watermark(conn: apsw.Connection, library_id: int, server_clock: float | None) -> int:
    """Where the next incremental run of a library starts listing changes: the server's
    clock when this run started minus an overlap for saves in flight. Without a server
    clock (no ``Date`` header), the largest ``updated_at`` stored (the server's clock as
    it stamps items), else our own clock when the run ends."""
    if server_clock is None:
        newest = conn.execute(
            "SELECT max(m) FROM (SELECT max(updated_at) AS m FROM shows WHERE library_id = ?1 "
            "UNION ALL SELECT max(updated_at) FROM episodes WHERE library_id = ?1)",
            (library_id,),
        ).get
        server_clock = time.time() if newest is None else int(newest) + 1
    return int(server_clock) - WATERMARK_OVERLAP_S


# ----------------------------------------------------------------------------- listed items
def save_listed(conn: apsw.Connection, run_id: int, stream: StreamKind, items: bytes) -> None:
    """Store a stream's listed-items bitmap (see ``ListedItems``) in this transaction."""
    conn.execute(
        "INSERT OR REPLACE INTO run_listing (run_id, stream, items) VALUES (?, ?, ?)",
        (run_id, stream, zlib.compress(items, 1)),
    )


def load_listed(conn: apsw.Connection, run_id: int) -> dict[StreamKind, bytes]:
    """The listed-items bitmaps a run has committed, per stream."""
    rows = conn.execute("SELECT stream, items FROM run_listing WHERE run_id = ?", (run_id,))
    return {StreamKind(stream): zlib.decompress(items) for stream, items in rows}


def forget_listed(conn: apsw.Connection, run_id: int, stream: StreamKind | None = None) -> None:
    """Drop a run's listed items: of one stream (it is listed again), or all (it ended)."""
    if stream is None:
        conn.execute("DELETE FROM run_listing WHERE run_id = ?", (run_id,))
    else:
        conn.execute("DELETE FROM run_listing WHERE run_id = ? AND stream = ?", (run_id, stream))
