"""The writer's database: one connection, its transactions, and what it writes.

One :class:`Writer` lives in the writer process. The caller batches many pages per
transaction (``begin()`` … ``write_rows()`` × N … ``save_progress()`` … ``commit()``):
commits are what cost, and a transaction of tens of thousands of rows is about twice as
fast per row as one of a thousand.

The work is done by small modules, each with one job: :mod:`~importer.store.rows`
(pages of rows), :mod:`~importer.store.links` (parents), :mod:`~importer.store.runs`
(run bookkeeping) and :mod:`~importer.store.listing` (what a listing saw, and what it
missed). This class gives them one connection and turns every SQLite error into a
:class:`~importer.errors.StoreError` that says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TypeVar

import apsw

from importer.model import LibraryInfo, LibraryProgress, RunMode, RunStatus, ServerInfo, StreamKind
from importer.protocol import StoredLibrary
from importer.rows import Row
from importer.store import links, migrations, runs
from importer.store.connection import DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_CACHE_MB, connect, mapped_errors
from importer.store.listing import ListedItems, unlisted
from importer.store.rows import PageWrite, RowWriter

T = TypeVar("T")


class Writer:
    """Writes rows and runs for the pipeline; one per writer process, one connection."""

    def __init__(self, conn: apsw.Connection, path: str = "") -> None:
        self.conn = conn
        self.path = path or conn.filename
        self.rows = RowWriter(conn)
        self._durable = False  # the open transaction commits under synchronous=FULL

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        cache_mb: int = DEFAULT_CACHE_MB,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    ) -> Writer:
        """Open the database for writing. Pass ``cache_mb=256`` or more for a library of
        about a million episodes (the index working set must fit, or writes slow down 2x)."""
        return cls(connect(path, cache_mb=cache_mb, busy_timeout_ms=busy_timeout_ms), os.fspath(path))

    def close(self) -> None:
        with self._errors():
            self.conn.close()

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn.in_transaction:
            self.rollback()
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        with mapped_errors(self.path):
            yield

    def _call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        with mapped_errors(self.path):
            return fn(self.conn, *args, **kwargs)

    # ---------------------------------------------------------------- transactions
    @property
    def in_transaction(self) -> bool:
        return bool(self.conn.in_transaction)

    def begin(self, *, durable: bool = False) -> None:
        """Start a write transaction. IMMEDIATE takes the write lock now (waiting up to the
        busy timeout), so a second writer fails here rather than in the middle of a batch.

        ``durable``: its commit is on the disk when :meth:`commit` returns. Under
        ``synchronous=NORMAL`` a commit reaches the disk at the next checkpoint, and a power
        cut before that undoes it (its rows are fetched again); this one commits under
        ``synchronous=FULL`` (one fsync of the WAL, which makes every earlier commit durable
        too). For the transaction that records a run's end: a power cut after the process
        exits must not undo a run that ended ``done``, and no checkpoint comes at the end
        while another program (a database browser, a backup) holds the file open."""
        with self._errors():
            if durable:  # SQLite refuses to change it inside a transaction
                self.conn.pragma("synchronous", "full")
                self._durable = True
            self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        with self._errors():
            self.conn.execute("COMMIT")
            self._normal()

    def _normal(self) -> None:
        if self._durable:
            self.conn.pragma("synchronous", "normal")
            self._durable = False

    def rollback(self) -> None:
        with self._errors():
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self._normal()

    # ---------------------------------------------------------------- servers, libraries, runs
    def ensure_server(self, server: ServerInfo) -> int:
        return self._call(runs.ensure_server, server)

    def ensure_library(self, server_id: int, library: LibraryInfo) -> int:
        return self._call(runs.ensure_library, server_id, library)

    def stored_library(self, library_id: int) -> StoredLibrary:
        return self._call(runs.stored_library, library_id)

    def start_run(self, library_id: int, mode: RunMode, started_at: int | None = None) -> int:
        return self._call(runs.start_run, library_id, mode, started_at)

    def reopen_run(self, run_id: int) -> None:
        self._call(runs.reopen_run, run_id)

    def save_progress(self, run_id: int, progress: LibraryProgress) -> None:
        self._call(runs.save_progress, run_id, progress)

    def finish_run(
        self,
        run_id: int,
        status: RunStatus,
        reason: str | None = None,
        counts: Mapping[str, int] | None = None,
        *,
        finished_at: int | None = None,
        watermark: int | None = None,
    ) -> None:
        self._call(
            runs.finish_run, run_id, status, reason, counts, finished_at=finished_at, watermark=watermark
        )

    def next_watermark(self, library_id: int, server_clock: float | None) -> int:
        return self._call(runs.next_watermark, library_id, server_clock)

    def save_listed(self, run_id: int, stream: StreamKind, items: bytes) -> None:
        self._call(runs.save_listed, run_id, stream, items)

    def load_listed(self, run_id: int) -> dict[StreamKind, bytes]:
        return self._call(runs.load_listed, run_id)

    def forget_listed(self, run_id: int, stream: StreamKind | None = None) -> None:
        self._call(runs.forget_listed, run_id, stream)

    # ---------------------------------------------------------------- rows
    def write_rows(
        self,
        library_id: int,
        stream: StreamKind,
        rows: Sequence[Row],
        ids: Sequence[int] = (),
        files: Sequence[Row] = (),
        adoptable: Callable[[int], bool] | None = None,
        images: Sequence[Row] = (),
    ) -> PageWrite:
        """Write a page's rows: see :meth:`importer.store.rows.RowWriter.write`. A page that
        fails half-way leaves its part in the open transaction, which the failure then
        rolls back whole: a commit never holds part of a page."""
        with self._errors():
            return self.rows.write(library_id, stream, rows, ids, files, adoptable, images)

    def link(self, library_id: int, *, every_row: bool = False) -> links.LinkResult:
        """Resolve the NULL parents of a library's rows: every row once the late indexes
        exist (they find them at once: an episode may wait for a season added later), or
        when asked (``every_row``: another process left a run unfinished); else, during a
        first import, only the rows this writer left without a parent."""
        only = None if every_row or self._late_indexes() else self.rows.orphans(library_id)
        with self._errors():
            return links.link(self.conn, library_id, only)

    def _late_indexes(self) -> bool:
        with self._errors():
            sql = "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'episodes_by_season'"
            return bool(self.conn.execute(sql).get)

    def ensure_indexes(self) -> None:
        """Build the secondary indexes a bulk load leaves out (cheap when they exist).

        Call at the end of a run, outside the batch loop: over a million episodes it
        takes seconds and holds the write lock.
        """
        with self._errors():
            migrations.ensure_indexes(self.conn)

    def stored_count(self, library_id: int, stream: StreamKind) -> int:
        with self._errors():
            return self.rows.stored_count(library_id, stream)

    def stored_ids(self, library_id: int, stream: StreamKind, source_ids: Sequence[str]) -> list[int]:
        with self._errors():
            return self.rows.stored_ids(library_id, stream, source_ids)

    def unlisted(
        self, library_id: int, stream: StreamKind, listed: ListedItems
    ) -> list[tuple[int, str, str]]:
        """The rows of a stream that a complete listing did not name: gone from the server."""
        with self._errors():
            return unlisted(self.conn, stream, library_id, listed)

    def delete_rows(self, stream: StreamKind, ids: Sequence[int]) -> None:
        with self._errors():
            self.rows.delete(stream, ids)
