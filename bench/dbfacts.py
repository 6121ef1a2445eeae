"""What a sync left in its database, read from the documented tables.

A whole-process run prints nothing with ``--quiet``, so its outcome is read where a
user's cron job would find it: the episodes, and the ``runs`` rows of that run (status,
mode, rows written, deleted). Only the public schema is used (README, "The database").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import apsw

WRITTEN_COLUMNS = ("shows_written", "seasons_written", "episodes_written", "files_written")


@dataclass(frozen=True)
class SyncFacts:
    episodes: int  # episodes in the database after the run
    statuses: list[str]  # of the run's ``runs`` rows, sorted, distinct
    modes: list[str]
    written: int  # shows, seasons, episodes and files inserted or changed
    unchanged: int
    deleted: int

    def as_record(self) -> dict[str, object]:
        return {
            "episodes_in_db": self.episodes,
            "status": self.statuses,
            "modes": self.modes,
            "written": self.written,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
        }


def _int(value: object) -> int:
    """An INTEGER column's value (apsw types a value as any SQLite type)."""
    if not isinstance(value, int):
        raise TypeError(f"expected an integer from the database, got {value!r}")
    return value


def _open(db: Path) -> apsw.Connection:
    return apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)


def last_run_id(db: Path) -> int:
    """The newest ``runs`` row's id; 0 for a new file."""
    if not db.exists():
        return 0
    conn = _open(db)
    try:
        return _int(conn.execute("SELECT coalesce(max(id), 0) FROM runs").get)
    finally:
        conn.close()


def sync_facts(db: Path, after_run: int = 0) -> SyncFacts:
    """The episodes in ``db``, and the runs rows newer than ``after_run``."""
    conn = _open(db)
    try:
        episodes = _int(conn.execute("SELECT count(*) FROM episodes").get)
        rows = conn.execute(
            f"SELECT status, mode, {' + '.join(WRITTEN_COLUMNS)}, unchanged, deleted FROM runs WHERE id > ?",
            (after_run,),
        ).fetchall()
    finally:
        conn.close()
    return SyncFacts(
        episodes=episodes,
        statuses=sorted({str(r[0]) for r in rows}),
        modes=sorted({str(r[1]) for r in rows}),
        written=sum(_int(r[2]) for r in rows),
        unchanged=sum(_int(r[3]) for r in rows),
        deleted=sum(_int(r[4]) for r in rows),
    )


@dataclass(frozen=True)
class HydrateFacts:
    """What a hydration left in the database (the tables of the contract, version 3)."""

    shows: int
    unhydrated_shows: int  # shows with no hydrated_at: hydration did not complete them
    shows_with_cast: int  # shows with at least one credit
    credits: int
    people: int
    images: int

    def as_record(self) -> dict[str, object]:
        return {
            "shows": self.shows,
            "unhydrated_shows": self.unhydrated_shows,
            "shows_with_cast": self.shows_with_cast,
            "credits": self.credits,
            "people": self.people,
            "images": self.images,
        }


def hydrate_facts(db: Path) -> HydrateFacts:
    conn = _open(db)
    try:

        def count(sql: str) -> int:
            return _int(conn.execute(sql).get)

        return HydrateFacts(
            shows=count("SELECT count(*) FROM shows"),
            unhydrated_shows=count("SELECT count(*) FROM shows WHERE hydrated_at IS NULL"),
            shows_with_cast=count("SELECT count(DISTINCT item_id) FROM credits WHERE item_type = 'show'"),
            credits=count("SELECT count(*) FROM credits"),
            people=count("SELECT count(*) FROM people"),
            images=count("SELECT count(*) FROM images"),
        )
    finally:
        conn.close()


def source_ids(db: Path) -> set[str]:
    """The server ids of every show, season and episode in ``db``."""
    conn = _open(db)
    try:
        return {
            str(row[0])
            for table in ("shows", "seasons", "episodes")
            for row in conn.execute(f"SELECT source_id FROM {table}")
        }
    finally:
        conn.close()


def sample_shows(db: Path, count: int) -> list[str]:
    """``count`` shows' server ids, spread evenly over the shows in id order."""
    conn = _open(db)
    try:
        ids = [str(row[0]) for row in conn.execute("SELECT source_id FROM shows ORDER BY id")]
    finally:
        conn.close()
    step = max(1, len(ids) // max(count, 1))
    return ids[::step][:count]


def libraries(db: Path) -> int:
    """The libraries in ``db``."""
    conn = _open(db)
    try:
        return _int(conn.execute("SELECT count(*) FROM libraries").get)
    finally:
        conn.close()


#: the library's tables, and how each row names its parents: the local ids (``id``,
#: ``library_id``, ``show_id``, ...) differ between two databases of one library, so rows
#: are compared by the server's ids and their content columns
_PARENTS = {
    "shows": {"library_id": "libraries"},
    "seasons": {"library_id": "libraries", "show_id": "shows"},
    "episodes": {"library_id": "libraries", "show_id": "shows", "season_id": "seasons"},
    "media_files": {"episode_id": "episodes"},
}
#: what ``importer hydrate`` writes: not the sync's business
_NOT_COMPARED = ("id", "hydrated_at", "hydrated_etag")


Rows = dict[tuple[object, ...], tuple[object, ...]]


def library_rows(db: Path) -> dict[str, tuple[list[str], Rows]]:
    """Every row of the library's tables (shows, seasons, episodes, media_files), keyed by
    its source id and its parents' source ids (local ids replaced by them); the value is
    every other column (named in the first element), in the table's order."""
    conn = _open(db)
    try:
        out: dict[str, tuple[list[str], Rows]] = {}
        for table, parents in _PARENTS.items():
            columns = [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]
            keys = [*(f"{column}.source_id" for column in parents), "t.source_id"]
            joins = " ".join(
                f"LEFT JOIN {parent} AS {column} ON {column}.id = t.{column}"
                for column, parent in parents.items()
            )
            content = [c for c in columns if c not in _NOT_COMPARED and c not in parents and c != "source_id"]
            sql = f"SELECT {', '.join(keys + [f't.{c}' for c in content])} FROM {table} AS t {joins}"
            rows: Rows = {tuple(row[: len(keys)]): tuple(row[len(keys) :]) for row in conn.execute(sql)}
            out[table] = (content, rows)
        return out
    finally:
        conn.close()


def library_differences(a: Path, b: Path) -> dict[str, dict[str, object]]:
    """How the library tables of two databases of one server differ, per table: rows only
    in ``a``, only in ``b``, and in both with other content (and in which columns, with
    how many rows each). Empty when they are equal."""
    left, right = library_rows(a), library_rows(b)
    out: dict[str, dict[str, object]] = {}
    for table in _PARENTS:
        columns, x = left[table]
        _, y = right[table]
        both = [key for key in x.keys() & y.keys() if x[key] != y[key]]
        by_column: dict[str, int] = {}
        for key in both:
            for name, p, q in zip(columns, x[key], y[key], strict=True):
                if p != q:
                    by_column[name] = by_column.get(name, 0) + 1
        found: dict[str, object] = {
            "only_in_first": len(x.keys() - y.keys()),
            "only_in_second": len(y.keys() - x.keys()),
            "different": len(both),
        }
        if any(found.values()):
            out[table] = {**found, "columns": by_column}
    return out
