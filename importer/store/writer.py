"""The writer: upserts pages of rows into the database inside large transactions.

One :class:`Writer` owns one connection and lives in the writer process. The caller
batches many pages per transaction (``begin()`` … ``write_page()`` × N …
``update_run_progress()`` … ``commit()``): commits are what cost, and a transaction of
10k-20k rows is about twice as fast per row as one of 1k.

How a page is written (see ``_Table``): one query reads the stored (id, etag) of the
page's items; new items are inserted, items whose etag changed are updated in place
(their local id never changes), unchanged ones are skipped. Only the media files of new
and changed episodes are written (a changed episode's files are replaced). Parents
(show_id, season_id) are resolved at once when already written, else by link().
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

import apsw

from importer.errors import StoreError
from importer.rows import EPISODE_COLUMNS, MEDIA_FILE_COLUMNS, SEASON_COLUMNS, SHOW_COLUMNS, Row
from importer.store import migrations
from importer.store.connection import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_CACHE_MB,
    connect,
    mapped_errors,
)
from importer.store.listing import STREAM_TABLES, ListedItems, int_array, unlisted

RUN_COUNT_COLUMNS = (
    "shows_written", "seasons_written", "episodes_written", "files_written",
    "unchanged", "deleted", "requests", "bytes",
)  # fmt: skip
#: 'incomplete': the listing could not be verified complete (rows kept, no sweep);
#: 'stopped': the mass-delete guard stopped the run
RUN_STATUSES = ("running", "done", "incomplete", "failed", "interrupted", "stopped")


@dataclass(slots=True)
class WriteCounts:
    """What a page (or a run) wrote: items inserted or changed, per table, and unchanged."""

    shows: int = 0
    seasons: int = 0
    episodes: int = 0
    files: int = 0
    unchanged: int = 0  # shows, seasons and episodes whose etag matched: not written

    @property
    def written(self) -> int:
        """Items (shows, seasons, episodes) inserted or changed; files not included."""
        return self.shows + self.seasons + self.episodes

    def __add__(self, other: WriteCounts) -> WriteCounts:
        return WriteCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_run_counts(self) -> dict[str, int]:
        """The matching ``runs`` columns, for :meth:`Writer.finish_run`."""
        return {
            "shows_written": self.shows,
            "seasons_written": self.seasons,
            "episodes_written": self.episodes,
            "files_written": self.files,
            "unchanged": self.unchanged,
        }


@dataclass(slots=True)
class LinkResult:
    """What :meth:`Writer.link` resolved, and what it could not."""

    seasons_linked: int = 0
    episodes_linked: int = 0
    #: seasons whose show is not in the library (source ids, first 20)
    orphan_seasons: list[str] = field(default_factory=list)
    orphan_season_count: int = 0
    #: episodes left without show_id or season_id: their show or season does not exist
    orphan_episodes: list[str] = field(default_factory=list)
    orphan_episode_count: int = 0

    @property
    def unlinked(self) -> int:
        """Episodes still without show_id or season_id."""
        return self.orphan_episode_count


ETAG = -1  # the etag is the last column of shows, seasons and episodes rows
assert SHOW_COLUMNS[ETAG] == SEASON_COLUMNS[ETAG] == EPISODE_COLUMNS[ETAG] == "etag"
_GUID = EPISODE_COLUMNS.index("guid")
#: changes saved this long before a run's start are listed again by the next run
WATERMARK_OVERLAP_S = 120


@dataclass(frozen=True)
class _Table:
    """The statements that write one item table (shows, seasons or episodes).

    Not ``INSERT … ON CONFLICT DO UPDATE``: measured here, the upsert clause alone makes
    an insert ~2x slower (10 µs instead of 5 per episode). Instead a page's stored
    (id, etag) pairs are read in one statement (``IN carray(?)``, ~1 µs per item), new
    items are plain INSERTs with ids chosen here, changed ones UPDATEs by id, and
    unchanged ones cost nothing more.
    """

    name: str
    columns: tuple[str, ...]  # of the row tuples, source_id first and etag last
    #: parent id columns and their tables; the source id of parent n is row[n]
    parents: tuple[str, ...] = ()
    parent_tables: tuple[str, ...] = ()

    @cached_property
    def select(self) -> str:
        return f"SELECT source_id, id, etag FROM {self.name} WHERE library_id = ? AND source_id IN carray(?)"

    @cached_property
    def insert(self) -> str:
        cols = ("id", "library_id", *self.parents, *self.columns)
        return f"INSERT INTO {self.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"

    @cached_property
    def update(self) -> str:
        cols = (*self.parents, *self.columns)
        return f"UPDATE {self.name} SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?"


_SHOWS = _Table("shows", SHOW_COLUMNS)
# row[1] is show_source_id (seasons, episodes), row[2] season_source_id (episodes)
_SEASONS = _Table("seasons", SEASON_COLUMNS, ("show_id",), ("shows",))
_EPISODES = _Table("episodes", EPISODE_COLUMNS, ("show_id", "season_id"), ("shows", "seasons"))
_FILE_COLUMNS = ("episode_id", *MEDIA_FILE_COLUMNS[1:])
_FILE_INSERT = (
    f"INSERT INTO media_files ({', '.join(_FILE_COLUMNS)}) VALUES ({', '.join('?' * len(_FILE_COLUMNS))})"
)
_FILES_DELETE = "DELETE FROM media_files WHERE episode_id = ?"
_PARENT_IDS = "SELECT source_id, id FROM {} WHERE library_id = ? AND source_id IN carray(?)"


def _carray(source_ids: Iterable[Any]) -> apsw.CArrayBinding:
    """Bind a list of source ids in one parameter (no statement per id, no 32k limit)."""
    try:
        return apsw.carray(tuple(source_ids))
    except TypeError as exc:
        raise TypeError(f"source ids must all be str (see importer.rows): {exc}") from exc


class Writer:
    """Writes rows for the pipeline; one per writer process, one connection."""

    def __init__(self, conn: apsw.Connection, path: str = "") -> None:
        self.conn = conn
        self.path = path or conn.filename
        #: local ids of the items of the last page written, for the run's listing
        self.last_page_ids: list[int] = []

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

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        """All or nothing for one call, inside or outside the caller's transaction.

        Not apsw's ``with connection``: after SQLITE_FULL or an I/O error SQLite may
        roll back the whole transaction, savepoint included, and the failed release
        would then hide the error that matters.
        """
        conn = self.conn
        conn.execute("SAVEPOINT store_call")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                # the savepoint may be gone with the whole transaction
                with suppress(apsw.Error):
                    conn.execute("ROLLBACK TO store_call; RELEASE store_call")
            raise
        conn.execute("RELEASE store_call")

    # ---------------------------------------------------------------- transactions

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def begin(self) -> None:
        """Start a write transaction. IMMEDIATE takes the write lock now (waiting up to the
        busy timeout), so a second writer fails here rather than in the middle of a batch."""
        with self._errors():
            self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        with self._errors():
            self.conn.execute("COMMIT")

    def rollback(self) -> None:
        with self._errors():
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``begin()`` … ``commit()``, or ``rollback()`` on an exception."""
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    # ---------------------------------------------------------------- servers, libraries

    def ensure_server(self, kind: str, machine_id: str, name: str | None, base_url: str | None) -> int:
        """The local id of a server, created or updated (name and URL may change)."""
        with self._errors():
            return int(
                self.conn.execute(
                    "INSERT INTO servers (kind, machine_id, name, base_url) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (kind, machine_id) DO UPDATE SET name = excluded.name, "
                    "base_url = excluded.base_url RETURNING id",
                    (kind, machine_id, name, base_url),
                ).get
            )

    def ensure_library(self, server_id: int, source_id: str, title: str | None, kind: str | None) -> int:
        """The local id of a library, created or updated (it may have been renamed)."""
        with self._errors():
            return int(
                self.conn.execute(
                    "INSERT INTO libraries (server_id, source_id, title, kind) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (server_id, source_id) DO UPDATE SET title = excluded.title, "
                    "kind = excluded.kind RETURNING id",
                    (server_id, source_id, title, kind),
                ).get
            )

    # ---------------------------------------------------------------- rows

    def write_page(
        self,
        library_id: int,
        shows: Sequence[Row] = (),
        seasons: Sequence[Row] = (),
        episodes: Sequence[Row] = (),
        files: Sequence[Row] = (),
        adoptable: Callable[[int], bool] | None = None,
    ) -> WriteCounts:
        """Upsert one decoded page (rows as in :mod:`importer.rows`); returns what changed.

        ``files`` name their episode by source id and must come with that episode in the
        same call: the files of an unchanged episode are not looked at, and those of an
        inserted or changed one replace whatever it had. Runs in a savepoint, so a page is
        written whole or not at all; call it inside :meth:`begin`/:meth:`commit`.

        ``adoptable(id)``, when given, lets a new episode take over the stored episode of
        the same guid (a file replaced on Plex: new ratingKey, same guid) if it says yes.
        """
        counts = WriteCounts()
        self.last_page_ids = []
        with self._errors(), self._savepoint():
            if shows:
                counts.shows = len(self._write_items(_SHOWS, library_id, shows)[0])
            if seasons:
                counts.seasons = len(self._write_items(_SEASONS, library_id, seasons)[0])
            if episodes:
                counts.episodes, counts.files = self._write_episodes(library_id, episodes, files, adoptable)
            elif files:
                raise StoreError("media files were given without their episodes: this is a bug in the caller")
            counts.unchanged = len(shows) + len(seasons) + len(episodes) - counts.written
        return counts

    def _write_items(
        self,
        table: _Table,
        library_id: int,
        rows: Sequence[Row],
        adoptable: Callable[[int], bool] | None = None,
    ) -> tuple[dict[str, int], list[int]]:
        """Insert the new rows, update the changed ones; returns {source_id: id} of both,
        and the ids of the changed ones."""
        conn = self.conn
        # a source id twice in one page: the last row wins, as it would in an upsert
        page = {row[0]: row for row in rows}
        stored: dict[str, tuple[int, str | None]] = {
            source_id: (row_id, etag)
            for source_id, row_id, etag in conn.execute(table.select, (library_id, _carray(page)))
        }
        new: list[Row] = []
        changed: list[tuple[int, Row]] = []
        for source_id, row in page.items():
            old = stored.get(source_id)
            if old is None:
                new.append(row)
            elif row[ETAG] is None or row[ETAG] != old[1]:  # no etag: always rewrite
                changed.append((old[0], row))
        parents = [
            self._parent_ids(parent, library_id, new, changed, column)
            for column, parent in enumerate(table.parent_tables, start=1)
        ]
        written: dict[str, int] = {}
        if new and adoptable is not None:
            new = self._adopt(table, library_id, new, changed, adoptable)
        if new:
            first = (conn.execute(f"SELECT max(id) FROM {table.name}").get or 0) + 1
            ids = range(first, first + len(new))
            conn.executemany(table.insert, self._bindings(ids, library_id, new, parents))
            written.update(zip((row[0] for row in new), ids, strict=True))
        if changed:
            # source_id too: an adopted row takes its new one
            conn.executemany(
                table.update,
                [
                    (*(known.get(row[n]) for n, known in enumerate(parents, start=1)), *row, row_id)
                    for row_id, row in changed
                ],
            )
            written.update((row[0], row_id) for row_id, row in changed)
        # every item of the page, written or not: the run's listing counts them all
        self.last_page_ids = [written[sid] if sid in written else stored[sid][0] for sid in page]
        return written, [row_id for row_id, _ in changed]

    @staticmethod
    def _bindings(
        ids: Iterable[int], library_id: int, rows: Sequence[Row], parents: Sequence[dict[str, int]]
    ) -> list[tuple[Any, ...]]:
        # spelled out per arity: this runs once per row of the largest tables
        if not parents:
            return [(i, library_id, *row) for i, row in zip(ids, rows, strict=True)]
        if len(parents) == 1:
            shows = parents[0]
            return [(i, library_id, shows.get(row[1]), *row) for i, row in zip(ids, rows, strict=True)]
        shows, seasons = parents
        return [
            (i, library_id, shows.get(row[1]), seasons.get(row[2]), *row)
            for i, row in zip(ids, rows, strict=True)
        ]

    def _adopt(
        self,
        table: _Table,
        library_id: int,
        new: list[Row],
        changed: list[tuple[int, Row]],
        adoptable: Callable[[int], bool],
    ) -> list[Row]:
        """A file replaced on Plex comes back as a new item (new ratingKey) with the same
        guid: it takes over the stored row of that guid, keeping its local id, when the
        run's listing has not seen that row (else both items exist: two rows)."""
        if table is not _EPISODES:
            return new
        by_guid = {row[_GUID]: row for row in new if row[_GUID]}
        if not by_guid:
            return new
        found = self.conn.execute(
            "SELECT guid, id FROM episodes WHERE guid IN carray(?) AND library_id = ?",
            (_carray(by_guid), library_id),
        )
        taken: set[str] = set()
        for guid, row_id in found:
            if guid not in taken and adoptable(row_id):
                taken.add(guid)
                changed.append((row_id, by_guid[guid]))
        return [row for row in new if row[_GUID] not in taken] if taken else new

    def _parent_ids(
        self, table: str, library_id: int, new: Sequence[Row], changed: Sequence[tuple[int, Row]], column: int
    ) -> dict[str, int]:
        """{source_id: id} of the parents (shows or seasons) named by ``row[column]``.

        A page names few parents (1000 episodes: ~100 seasons, ~20 shows), so one query
        per page beats a subquery per row. A parent not written yet maps to nothing: its
        id stays NULL until link().
        """
        wanted = {row[column] for row in new}
        wanted.update(row[column] for _, row in changed)
        wanted.discard(None)
        if not wanted:
            return {}
        return dict(self.conn.execute(_PARENT_IDS.format(table), (library_id, _carray(wanted))))

    def _write_episodes(
        self,
        library_id: int,
        episodes: Sequence[Row],
        files: Sequence[Row],
        adoptable: Callable[[int], bool] | None,
    ) -> tuple[int, int]:
        written, changed = self._write_items(_EPISODES, library_id, episodes, adoptable)
        if not written:
            return 0, 0
        if changed:
            self.conn.executemany(_FILES_DELETE, [(row_id,) for row_id in changed])
        # (episode_id, source_id) is unique: the last of duplicate rows wins
        file_rows = {
            (episode_id, f[1]): (episode_id, *f[1:])
            for f in files
            if (episode_id := written.get(f[0])) is not None
        }
        if file_rows:
            self.conn.executemany(_FILE_INSERT, file_rows.values())
        return len(written), len(file_rows)

    # ---------------------------------------------------------------- linking

    def link(self, library_id: int) -> LinkResult:
        """Resolve the parents of every row of a library whose show_id/season_id is NULL.

        Call it once all three streams of the library are written (at the end of a run,
        before :meth:`ensure_indexes`); it runs in its own savepoint, or inside the
        caller's transaction. Episodes without ``season_source_id`` (Plex hidden seasons,
        Jellyfin items without SeasonId) get it from the season of their show with the
        same ``season_number``.
        """
        result = LinkResult()
        with self._errors(), self._savepoint():
            before = self.conn.total_changes()
            self.conn.execute(
                "UPDATE seasons SET show_id = (SELECT id FROM shows AS sh WHERE "
                "sh.library_id = seasons.library_id AND sh.source_id = seasons.show_source_id) "
                "WHERE +library_id = ? AND show_id IS NULL",
                (library_id,),
            )
            seasons_touched = self.conn.total_changes() - before
            self._link_season_numbers(library_id)
            before = self.conn.total_changes()
            self.conn.execute(
                "UPDATE episodes SET "
                "show_id = coalesce(show_id, (SELECT id FROM shows AS sh WHERE "
                "sh.library_id = episodes.library_id AND sh.source_id = episodes.show_source_id)), "
                "season_id = coalesce(season_id, (SELECT id FROM seasons AS se WHERE "
                "se.library_id = episodes.library_id AND se.source_id = episodes.season_source_id)) "
                "WHERE +library_id = ? AND (show_id IS NULL OR season_id IS NULL)",
                (library_id,),
            )
            episodes_touched = self.conn.total_changes() - before
            result.orphan_seasons, result.orphan_season_count = self._orphans(
                "SELECT source_id FROM seasons WHERE +library_id = ? AND show_id IS NULL", library_id
            )
            result.orphan_episodes, result.orphan_episode_count = self._orphans(
                "SELECT source_id FROM episodes WHERE +library_id = ? "
                "AND (show_id IS NULL OR season_id IS NULL)",
                library_id,
            )
        # the UPDATEs also touched the rows they could not resolve
        result.seasons_linked = seasons_touched - result.orphan_season_count
        result.episodes_linked = episodes_touched - result.orphan_episode_count
        return result

    def _link_season_numbers(self, library_id: int) -> None:
        # A dict of the library's seasons, not SQL: an index on (show_source_id,
        # season_number) would be paid on every season insert for a rare case, and
        # without one a correlated subquery scans the seasons once per episode.
        missing = self.conn.execute(
            "SELECT id, show_source_id, season_number FROM episodes "
            "WHERE +library_id = ? AND season_source_id IS NULL",
            (library_id,),
        ).fetchall()
        if not missing:
            return
        by_number: dict[tuple[Any, Any], str] = {}
        by_show: dict[Any, list[str]] = {}
        for source_id, show_source_id, number in self.conn.execute(
            "SELECT source_id, show_source_id, season_number FROM seasons "
            "WHERE library_id = ? ORDER BY id DESC",
            (library_id,),
        ):
            by_number[show_source_id, number] = source_id  # the oldest season wins a tie
            by_show.setdefault(show_source_id, []).append(source_id)
        updates = []
        for episode_id, show, number in missing:
            season = by_number.get((show, number))
            if season is None and number is None and len(only := by_show.get(show, [])) == 1:
                # no season number either: a show with a single season (Plex hides it)
                # owns the episode
                season = only[0]
            if season is not None:
                updates.append((season, episode_id))
        if updates:
            # season_id NULL: the UPDATE in link() resolves it from season_source_id
            self.conn.executemany(
                "UPDATE episodes SET season_source_id = ?, season_id = NULL WHERE id = ?", updates
            )

    def _orphans(self, sql: str, library_id: int) -> tuple[list[str], int]:
        ids = [source_id for (source_id,) in self.conn.execute(sql, (library_id,))]
        return ids[:20], len(ids)

    def ensure_indexes(self) -> None:
        """Build the secondary indexes a bulk load leaves out (cheap when they exist).

        Call at the end of a run, after :meth:`link` and outside the batch loop: over a
        million episodes it takes seconds and holds the write lock.
        """
        with self._errors():
            migrations.ensure_indexes(self.conn)

    def drop_indexes(self) -> None:
        """Drop the secondary indexes before a bulk load that adds more rows than the
        database holds (then :meth:`ensure_indexes` at the end)."""
        with self._errors():
            migrations.drop_late_indexes(self.conn)

    # ---------------------------------------------------------------- runs

    def start_run(
        self,
        library_id: int | None,
        mode: str,
        *,
        server_id: int | None = None,
        started_at: int | None = None,
    ) -> int:
        """Record the start of a run of one library (or, with ``library_id=None`` and
        ``server_id``, of a whole server); returns the run's id."""
        with self._errors():
            if library_id is not None:
                server_id = self.conn.execute(
                    "SELECT server_id FROM libraries WHERE id = ?", (library_id,)
                ).get
            if server_id is None:
                raise StoreError(f"no such library or server (library_id={library_id}): this is a bug")
            return int(
                self.conn.execute(
                    "INSERT INTO runs (server_id, library_id, mode, started_at) VALUES (?, ?, ?, ?) "
                    "RETURNING id",
                    (server_id, library_id, mode, int(time.time()) if started_at is None else started_at),
                ).get
            )

    def save_listed(self, run_id: int, stream: str, items: bytes) -> None:
        """Store a stream's listed-items bitmap (see :class:`ListedItems`) in this transaction."""
        with self._errors():
            self.conn.execute(
                "INSERT OR REPLACE INTO run_listing (run_id, stream, items) VALUES (?, ?, ?)",
                (run_id, stream, zlib.compress(items, 1)),
            )

    def load_listed(self, run_id: int) -> dict[str, bytes]:
        """The listed-items bitmaps a run has committed, per stream."""
        with self._errors():
            rows = self.conn.execute("SELECT stream, items FROM run_listing WHERE run_id = ?", (run_id,))
            return {stream: zlib.decompress(items) for stream, items in rows}

    def forget_listed(self, run_id: int, stream: str | None = None) -> None:
        """Drop a run's listed items: of one stream (it is listed again), or all (it ended)."""
        with self._errors():
            if stream is None:
                self.conn.execute("DELETE FROM run_listing WHERE run_id = ?", (run_id,))
            else:
                self.conn.execute("DELETE FROM run_listing WHERE run_id = ? AND stream = ?", (run_id, stream))

    def unfinished_run(self, library_id: int) -> tuple[int, str | None, str] | None:
        """The library's last run (id, progress, mode), when it did not end as done."""
        with self._errors():
            row = self.conn.execute(
                "SELECT id, status, progress, mode FROM runs WHERE library_id = ? ORDER BY id DESC LIMIT 1",
                (library_id,),
            ).fetchone()
        if row is None or row[1] in ("done", "incomplete", "stopped"):
            return None
        return int(row[0]), row[2], row[3]

    def reopen_run(self, run_id: int) -> None:
        """Mark an unfinished run as running again: this process resumes it."""
        with self._errors():
            sql = "UPDATE runs SET status = 'running', finished_at = NULL, reason = NULL WHERE id = ?"
            self.conn.execute(sql, (run_id,))

    def update_run_progress(self, run_id: int, progress: str | bytes | Mapping[str, Any]) -> None:
        """Store the run's progress (JSON). Call it inside the transaction that holds the
        rows it describes, so that both commit together."""
        if isinstance(progress, bytes):
            text = progress.decode()
        elif isinstance(progress, str):
            text = progress
        else:
            text = json.dumps(progress, separators=(",", ":"))
        with self._errors():
            self.conn.execute("UPDATE runs SET progress = ? WHERE id = ?", (text, run_id))

    def finish_run(
        self,
        run_id: int,
        status: str,
        reason: str | None = None,
        counts: Mapping[str, int] | None = None,
        *,
        finished_at: int | None = None,
        watermark: int | None = None,
    ) -> None:
        """Record the end of a run: its status (see ``RUN_STATUSES``), why, and its counts
        (keys from ``RUN_COUNT_COLUMNS``; ``WriteCounts.as_run_counts()`` gives some). A
        done run records the ``watermark`` the next incremental run starts from."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; expected one of {RUN_STATUSES}")
        counts = dict(counts or {})
        unknown = set(counts) - set(RUN_COUNT_COLUMNS)
        if unknown:
            raise ValueError(f"unknown run counts {sorted(unknown)}; expected {RUN_COUNT_COLUMNS}")
        sets = "".join(f", {name} = :{name}" for name in counts)
        with self._errors():
            self.conn.execute(
                "UPDATE runs SET status = :status, reason = :reason, finished_at = :finished_at, "
                f"watermark = :watermark{sets} WHERE id = :id",
                {
                    "watermark": watermark,
                    "status": status,
                    "reason": reason,
                    "finished_at": int(time.time()) if finished_at is None else finished_at,
                    "id": run_id,
                    **counts,
                },
            )

    # ---------------------------------------------------------------- incremental runs, sweeps

    def library_state(self, library_id: int) -> LibraryState:
        """What the next run of a library starts from (see :class:`LibraryState`)."""
        with self._errors():
            watermark = self.conn.execute(
                "SELECT watermark FROM runs WHERE library_id = ? AND status = 'done' "
                "AND watermark IS NOT NULL ORDER BY id DESC LIMIT 1",
                (library_id,),
            ).get
            verified = self.conn.execute(
                "SELECT max(started_at) FROM runs WHERE library_id = ? AND status = 'done' AND mode = 'full'",
                (library_id,),
            ).get
        return LibraryState(watermark, verified)

    def next_watermark(self, library_id: int, started_clock: float | None) -> int:
        """Where the next incremental run of a library starts listing changes: the server's
        clock when this run started (its ``Date`` header) minus an overlap for saves in
        flight. Without that header, the largest ``updated_at`` stored (the server's clock
        as it stamps items), else our own clock when the run ends."""
        if started_clock is None:
            with self._errors():
                newest = self.conn.execute(
                    "SELECT max(m) FROM (SELECT max(updated_at) AS m FROM shows WHERE library_id = ?1 "
                    "UNION ALL SELECT max(updated_at) FROM episodes WHERE library_id = ?1)",
                    (library_id,),
                ).get
            started_clock = time.time() if newest is None else int(newest) + 1
        return int(started_clock) - WATERMARK_OVERLAP_S

    def stored_count(self, library_id: int, stream: str) -> int:
        """How many rows of a stream (shows, seasons, episodes) the library holds."""
        with self._errors():
            return int(self.conn.execute(f"SELECT count(*) FROM {STREAM_TABLES[stream]} WHERE library_id = ?",
                                         (library_id,)).get)  # fmt: skip

    def stored_ids(self, library_id: int, stream: str, source_ids: Sequence[str]) -> list[int]:
        """The local ids of the library's rows of a stream with these source ids."""
        if not source_ids:
            return []
        with self._errors():
            sql = f"SELECT id FROM {STREAM_TABLES[stream]} WHERE library_id = ? AND source_id IN carray(?)"
            return [row_id for (row_id,) in self.conn.execute(sql, (library_id, _carray(source_ids)))]

    def unlisted(self, library_id: int, stream: str, listed: ListedItems) -> list[tuple[int, str, str]]:
        """The rows of a stream that a complete listing did not name: gone from the server."""
        with self._errors():
            return unlisted(self.conn, stream, library_id, listed)

    def delete_rows(self, stream: str, ids: Sequence[int]) -> None:
        """Delete rows by local id (their media files go with them; children keep a NULL
        parent until their own sweep)."""
        with self._errors():
            self.conn.execute(
                f"DELETE FROM {STREAM_TABLES[stream]} WHERE id IN carray(?)", (int_array(list(ids)),)
            )


@dataclass(frozen=True, slots=True)
class LibraryState:
    #: where the last done run said the next incremental run should start (server clock)
    watermark: int | None
    #: when the last done full run (every item listed, deletions swept) started
    verified_at: int | None
