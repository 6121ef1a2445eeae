"""Writing pages of rows: new items inserted, changed ones updated, their files, their parents.

The decoder has usually done the comparing: it looked up the page's stored rows and sends
only what is new (local id 0) or changed (the stored row's local id), so a page costs its
inserts and updates and nothing more. What it could not know (a row written after it
looked, an item twice in a page) makes an insert fail on the ``UNIQUE (library_id,
source_id)`` constraint; the page is then rolled back to its savepoint and written the
careful way (:meth:`RowWriter._write_compared`): the stored (id, etag) of its items read
in one statement, new items inserted, items whose etag changed updated in place (their
local id never changes), unchanged ones skipped.

Not ``INSERT … ON CONFLICT DO UPDATE``: measured here, the upsert clause alone makes an
insert ~2x slower (10 µs instead of 5 per episode).

Parents (show_id, season_id) are resolved at once from a cache of the library's shows and
seasons (filled as they are written, and from the database for the rest); a parent not
written yet leaves the id NULL, and the row is remembered for :meth:`RowWriter.link`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

import apsw

from importer.errors import StoreError
from importer.model import ITEM_TYPE_OF, StreamKind
from importer.rows import EPISODE_COLUMNS, ETAG, MEDIA_FILE_COLUMNS, SEASON_COLUMNS, SHOW_COLUMNS, Row
from importer.speedups import bind_files, bind_new_rows
from importer.store.images import ImageRow, replace_images
from importer.store.listing import int_array

_GUID = EPISODE_COLUMNS.index("guid")


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
        """The matching ``runs`` columns."""
        return {
            "shows_written": self.shows,
            "seasons_written": self.seasons,
            "episodes_written": self.episodes,
            "files_written": self.files,
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True)
class _Table:
    """The statements that write one item table."""

    name: StreamKind
    columns: tuple[str, ...]  # of the row tuples, source_id first and etag last
    #: parent id columns and their tables; the source id of parent n is row[n]
    parents: tuple[str, ...] = ()
    parent_tables: tuple[StreamKind, ...] = ()

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


_SHOWS = _Table(StreamKind.SHOWS, SHOW_COLUMNS)
# row[1] is show_source_id (seasons, episodes), row[2] season_source_id (episodes)
_SEASONS = _Table(StreamKind.SEASONS, SEASON_COLUMNS, ("show_id",), (StreamKind.SHOWS,))
_EPISODES = _Table(
    StreamKind.EPISODES, EPISODE_COLUMNS, ("show_id", "season_id"), (StreamKind.SHOWS, StreamKind.SEASONS)
)
TABLES = {t.name: t for t in (_SHOWS, _SEASONS, _EPISODES)}
_FILE_COLUMNS = ("episode_id", *MEDIA_FILE_COLUMNS[1:])
_FILE_INSERT = (
    f"INSERT INTO media_files ({', '.join(_FILE_COLUMNS)}) VALUES ({', '.join('?' * len(_FILE_COLUMNS))})"
)
_FILES_DELETE = "DELETE FROM media_files WHERE episode_id = ?"
_PARENT_IDS = "SELECT source_id, id FROM {} WHERE library_id = ? AND source_id IN carray(?)"


def carray(source_ids: Iterable[Any]) -> apsw.CArrayBinding:
    """Bind a list of source ids in one parameter (no statement per id, no 32k limit)."""
    try:
        return apsw.carray(tuple(source_ids))
    except TypeError as exc:
        raise TypeError(f"source ids must all be str (see importer.rows): {exc}") from exc


@dataclass(slots=True)
class PageWrite:
    """What writing a page did."""

    counts: WriteCounts
    #: the local id of every row of the page, in page order (a range when all are new)
    ids: Sequence[int]


@dataclass(eq=False)
class _Parents:
    """A library's shows and seasons by source id, as far as this writer knows them."""

    ids: dict[StreamKind, dict[str, int]] = field(
        default_factory=lambda: {StreamKind.SHOWS: {}, StreamKind.SEASONS: {}}
    )
    #: seasons and episodes written without a parent id: link() resolves them
    orphans: dict[StreamKind, list[int]] = field(
        default_factory=lambda: {StreamKind.SEASONS: [], StreamKind.EPISODES: []}
    )

    def rollback(self, orphans: dict[StreamKind, int]) -> None:
        """Forget what a rolled-back page taught: parent ids that are not stored after all
        (read again from the database when needed), orphans past their old lengths."""
        for known in self.ids.values():
            known.clear()
        for kind, length in orphans.items():
            del self.orphans[kind][length:]


class RowWriter:
    """Writes pages of rows for one connection; call inside the caller's transaction."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self._parents: dict[int, _Parents] = {}

    def forget(self, library_id: int) -> None:
        """Drop what is cached of a library (its run is over)."""
        self._parents.pop(library_id, None)

    def orphans(self, library_id: int) -> dict[StreamKind, list[int]]:
        """Local ids of the library's seasons and episodes written without a parent id."""
        return self._library(library_id).orphans

    def _library(self, library_id: int) -> _Parents:
        parents = self._parents.get(library_id)
        if parents is None:
            parents = self._parents[library_id] = _Parents()
        return parents

    # ---------------------------------------------------------------- pages
    def write(
        self,
        library_id: int,
        stream: StreamKind,
        rows: Sequence[Row],
        ids: Sequence[int] = (),
        files: Sequence[Row] = (),
        adoptable: Callable[[int], bool] | None = None,
        images: Sequence[Row] = (),
    ) -> PageWrite:
        """Write a page's rows (as in :mod:`importer.rows`). ``ids[n]`` is the local id of
        row n's stored row (0, or no ``ids`` at all: not known, maybe new). ``files`` name
        their episode by source id and replace whatever files it had; ``images`` do the
        same for shows and seasons (a written item without any loses the ones it had).

        ``adoptable(id)``, when given, lets a new episode take over the stored episode of
        the same guid (a file replaced on Plex: new ratingKey, same guid) if it says yes.
        """
        if files and stream is not StreamKind.EPISODES:
            raise StoreError("media files were given without their episodes: this is a bug in the caller")
        if images and stream is StreamKind.EPISODES:
            raise StoreError("episode images come from hydrate, not listings: this is a bug in the caller")
        table = TABLES[stream]
        parents = self._library(library_id)
        orphans_before = {kind: len(ids) for kind, ids in parents.orphans.items()}
        first = self._next_id(table)
        try:
            done = self._write_known(table, library_id, rows, ids or [0] * len(rows), files, adoptable, first)
            self._write_images(table, done, rows, ids, images)
            return done
        except apsw.ConstraintError:
            # Stored after the decoder looked, or twice in the page. Undo this attempt's
            # inserts (their files go with them), forget what it cached, and compare the
            # page with what is stored, the rows it updated rewritten whatever their etag.
            self.conn.execute(f"DELETE FROM {table.name} WHERE id >= ?", (first,))
            parents.rollback(orphans_before)
            rewrite = frozenset(row_id for row_id in ids if row_id)
        # A savepoint here only: over every page, it copied each index page a page touched
        # to a statement journal first, a dozen gigabytes at a million Jellyfin episodes.
        conn = self.conn
        conn.execute("SAVEPOINT page")
        try:
            done = self._write_compared(table, library_id, rows, files, adoptable, rewrite)
            self._write_images(table, done, rows, (), images)
        except BaseException:
            parents.rollback(orphans_before)
            if conn.in_transaction:
                # the savepoint may be gone with the whole transaction (a full disk)
                with suppress(apsw.Error):
                    conn.execute("ROLLBACK TO page; RELEASE page")
            raise
        conn.execute("RELEASE page")
        return done

    def _next_id(self, table: _Table) -> int:
        return int(self.conn.execute(f"SELECT max(id) FROM {table.name}").get or 0) + 1

    def _write_known(
        self,
        table: _Table,
        library_id: int,
        rows: Sequence[Row],
        ids: Sequence[int],
        files: Sequence[Row],
        adoptable: Callable[[int], bool] | None,
        first: int,
    ) -> PageWrite:
        """The decoder's classification trusted: inserts and updates, nothing read first."""
        if any(ids):
            new = [row for row, row_id in zip(rows, ids, strict=True) if not row_id]
            changed = [(row_id, row) for row, row_id in zip(rows, ids, strict=True) if row_id]
        else:
            new, changed = list(rows), []
        if new and adoptable is not None and table is _EPISODES:
            new = self._adopt(library_id, new, changed, adoptable)
        out = self._insert_and_update(table, library_id, new, changed, first)
        by_source: dict[str, int] | None = None
        if changed:  # not all new: put the ids back in page order
            by_source = dict(zip((row[0] for row in new), out, strict=True))
            by_source.update((row[0], row_id) for row_id, row in changed)
            out = [by_source[row[0]] for row in rows]
        counts = self._counts(table, written=len(rows), unchanged=0)
        if table is _EPISODES and (files or changed):
            episode_ids = by_source or dict(zip((row[0] for row in rows), out, strict=True))
            # a file twice in the page breaks (episode_id, source_id): the compared path then
            # writes the page, the last of the two winning
            counts.files = self._write_files(episode_ids, [row_id for row_id, _ in changed], files)
        return PageWrite(counts, out)

    def _write_compared(
        self,
        table: _Table,
        library_id: int,
        rows: Sequence[Row],
        files: Sequence[Row],
        adoptable: Callable[[int], bool] | None,
        rewrite: frozenset[int] = frozenset(),
    ) -> PageWrite:
        """Each row compared with its stored row (by etag) first; those in ``rewrite`` are
        written whatever their etag."""
        # a source id twice in one page: the last row wins, as it would in an upsert
        page = {row[0]: row for row in rows}
        stored: dict[str, tuple[int, str | None]] = {
            source_id: (row_id, etag)
            for source_id, row_id, etag in self.conn.execute(table.select, (library_id, carray(page)))
        }
        new: list[Row] = []
        changed: list[tuple[int, Row]] = []
        for source_id, row in page.items():
            old = stored.get(source_id)
            if old is None:
                new.append(row)
            elif row[ETAG] is None or row[ETAG] != old[1] or old[0] in rewrite:  # no etag: always rewrite
                changed.append((old[0], row))
        if new and adoptable is not None and table is _EPISODES:
            new = self._adopt(library_id, new, changed, adoptable)
        written_ids = self._insert_and_update(table, library_id, new, changed, self._next_id(table))
        written = dict(zip((row[0] for row in new), written_ids, strict=True))
        written.update((row[0], row_id) for row_id, row in changed)
        counts = self._counts(
            table, written=len(new) + len(changed), unchanged=len(rows) - len(new) - len(changed)
        )
        if table is _EPISODES and (files or changed):
            # (episode_id, source_id) is unique: the last of duplicate rows wins
            unique = list({(f[0], f[1]): f for f in files if f[0] in written}.values())
            counts.files = self._write_files(written, [row_id for row_id, _ in changed], unique)
        # every item of the page, written or not: the run's listing counts them all
        ids = [written[sid] if sid in written else stored[sid][0] for sid in page]
        return PageWrite(counts, ids)

    @staticmethod
    def _counts(table: _Table, *, written: int, unchanged: int) -> WriteCounts:
        counts = WriteCounts(unchanged=unchanged)
        setattr(counts, table.name.value, written)  # the field of the table's name
        return counts

    def _insert_and_update(
        self, table: _Table, library_id: int, new: list[Row], changed: list[tuple[int, Row]], first: int
    ) -> Sequence[int]:
        """Insert ``new`` with ids from ``first`` on (no one else writes the table), update
        ``changed`` by id; the new rows' ids."""
        conn = self.conn
        parents = self._library(library_id)
        known = tuple(
            self._parents_of(parents, library_id, t, n, new, changed)
            for n, t in enumerate(table.parent_tables, start=1)
        )
        ids = range(first, first + len(new))
        if new:
            bindings, orphans = bind_new_rows(first, library_id, new, known)
            conn.executemany(table.insert, bindings)
            if table.name in parents.ids:
                parents.ids[table.name].update(zip((row[0] for row in new), ids, strict=True))
            parents.orphans.get(table.name, []).extend(orphans)  # link() resolves them
        if changed:
            updates = [(*(k.get(row[n]) for n, k in enumerate(known, start=1)), *row, row_id)
                       for row_id, row in changed]  # fmt: skip
            conn.executemany(table.update, updates)
            if known:
                parents.orphans[table.name] += [u[-1] for u in updates if None in u[: len(known)]]
        return ids

    def _parents_of(
        self,
        parents: _Parents,
        library_id: int,
        table: StreamKind,
        column: int,
        new: Sequence[Row],
        changed: Sequence[tuple[int, Row]],
    ) -> dict[str, int]:
        """{source_id: id} of the parents that rows name in ``column``. A page names few
        parents (1000 episodes: ~100 seasons, ~20 shows): those not cached yet are read in
        one query; one not written yet maps to nothing (its id stays NULL until link)."""
        known = parents.ids[table]
        wanted = {row[column] for row in new if row[column] not in known}
        wanted.update(row[column] for _, row in changed if row[column] not in known)
        wanted.discard(None)
        if wanted:
            known.update(self.conn.execute(_PARENT_IDS.format(table), (library_id, carray(wanted))))
        return known

    def _write_files(self, episode_ids: dict[str, int], changed: list[int], files: Sequence[Row]) -> int:
        """Replace the files of the written episodes (a changed episode's old files go)."""
        if changed:
            self.conn.executemany(_FILES_DELETE, [(row_id,) for row_id in changed])
        rows = bind_files(episode_ids, list(files))
        if rows:
            self.conn.executemany(_FILE_INSERT, rows)
        return len(rows)

    def _write_images(
        self, table: _Table, done: PageWrite, rows: Sequence[Row], ids: Sequence[int], images: Sequence[Row]
    ) -> None:
        """Replace the images of the page's written items (shows and seasons only).

        ``ids`` as given to :meth:`write`: the items with a stored row had images before;
        empty (not known), every written item's are cleared first."""
        if table is _EPISODES or not done.counts.written:
            return
        # one id per item: a source id twice in the page was written once
        by_source = dict(zip(dict.fromkeys(row[0] for row in rows), done.ids, strict=True))
        changed = [row_id for row_id in ids if row_id] if ids else list(by_source.values())
        bound: list[ImageRow] = [
            (by_source[source_id], kind, path, tag)
            for source_id, kind, path, tag in images
            if source_id in by_source
        ]
        replace_images(self.conn, ITEM_TYPE_OF[table.name], changed, bound)

    def _adopt(
        self,
        library_id: int,
        new: list[Row],
        changed: list[tuple[int, Row]],
        adoptable: Callable[[int], bool],
    ) -> list[Row]:
        """A file replaced on Plex comes back as a new item (new ratingKey) with the same
        guid: it takes over the stored row of that guid, keeping its local id, when the
        run's listing has not seen that row (else both items exist: two rows)."""
        by_guid = {row[_GUID]: row for row in new if row[_GUID]}
        if not by_guid:
            return new
        found = self.conn.execute(
            "SELECT guid, id FROM episodes WHERE guid IN carray(?) AND library_id = ?",
            (carray(by_guid), library_id),
        )
        taken: set[str] = set()
        for guid, row_id in found:
            if guid not in taken and adoptable(row_id):
                taken.add(guid)
                changed.append((row_id, by_guid[guid]))
        return [row for row in new if row[_GUID] not in taken] if taken else new

    # ---------------------------------------------------------------- deletions
    def stored_count(self, library_id: int, stream: StreamKind) -> int:
        """How many rows of a stream the library holds."""
        sql = f"SELECT count(*) FROM {stream} WHERE library_id = ?"
        return int(self.conn.execute(sql, (library_id,)).get)

    def stored_ids(self, library_id: int, stream: StreamKind, source_ids: Sequence[str]) -> list[int]:
        """The local ids of the library's rows of a stream with these source ids."""
        if not source_ids:
            return []
        sql = f"SELECT id FROM {stream} WHERE library_id = ? AND source_id IN carray(?)"
        return [row_id for (row_id,) in self.conn.execute(sql, (library_id, carray(source_ids)))]

    def delete(self, stream: StreamKind, ids: Sequence[int]) -> None:
        """Delete rows by local id (their media files go with them; children keep a NULL
        parent until their own sweep)."""
        self.conn.execute(f"DELETE FROM {stream} WHERE id IN carray(?)", (int_array(list(ids)),))
