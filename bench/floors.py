"""What no importer can beat, measured or computed in the same run.

* The **store-only ceiling** (scale; issue 11's definition): the library's rows, every
  table the sync writes except the run bookkeeping (``runs``, ``run_listing``), copied
  from the importer's own database into a fresh file with the same schema, opened as
  the importer opens it (``importer.store.connect``: page size, WAL, synchronous NORMAL,
  foreign keys on) with the importer's writer's cache size, by a bare apsw loop: plain
  INSERTs, parents before children, in transactions of 25,000 rows, then the late
  indexes built after the load (``ensure_indexes``). Only the writes and the index
  build are timed, in wall and CPU time; reading the source is not. The import's speed
  as a fraction of it is what the pipeline costs beyond SQLite itself.
* The **round-trip floor** (seed): the fewest dependent round trips times the latency.
  A client that pages through a library of unknown size needs three: discovery (the
  server and its libraries, asked at once), the first page of every listing (which
  tells the totals), then every other page at once, however many requests are in
  flight; two when every listing fits in its first page.
"""

from __future__ import annotations

import graphlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from importer.sources import make_source
from importer.store import connect
from importer.store.migrations import ensure_indexes

#: the run bookkeeping: not library rows (and the ceiling starts no run)
BOOKKEEPING = frozenset({"runs", "run_listing"})
BATCH = 25_000

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Ceiling:
    seconds: float  # writes + index build, wall
    cpu_s: float  # writes + index build, CPU of this process
    write_s: float
    write_cpu_s: float
    index_s: float
    index_cpu_s: float
    rows: int
    episodes: int
    transactions: int
    tables: list[str]
    cache_mb: int


def writer_cache_mb() -> int:
    """The importer's writer's default SQLite cache (MB): the ceiling writes as it does."""
    from importer.workers import WriterSettings

    return WriterSettings(db_path="").cache_mb


def library_tables(conn: apsw.Connection) -> list[str]:
    """Every table of the schema but the bookkeeping (and what refers to it), parents
    before children: the order foreign keys allow an empty database to be filled in."""
    names = [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
    ]
    parents = {
        name: {str(fk[2]) for fk in conn.execute(f'PRAGMA foreign_key_list("{name}")')} - {name}
        for name in names
    }
    excluded = set(BOOKKEEPING)
    while more := {n for n in names if n not in excluded and parents[n] & excluded}:
        excluded |= more  # a table that refers to the bookkeeping cannot be filled without it
    sorter = graphlib.TopologicalSorter({n: parents[n] for n in names if n not in excluded})
    return list(sorter.static_order())


def _rows(src: apsw.Connection, tables: list[str]) -> Iterator[tuple[str, Row]]:
    """(INSERT statement, row) for every row of ``tables``, in order, each table in its
    key order (the importer assigns ids in insertion order)."""
    without_rowid = {str(r[1]) for r in src.execute("PRAGMA table_list") if r[4]}
    for table in tables:
        order = "" if table in without_rowid else " ORDER BY rowid"
        # the stored columns (hidden 0: not generated ones, which take no value)
        names = [str(c[1]) for c in src.execute(f'PRAGMA table_xinfo("{table}")') if c[6] == 0]
        columns = ", ".join(f'"{name}"' for name in names)
        insert = f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join("?" * len(names))})'
        for row in src.execute(f'SELECT {columns} FROM "{table}"{order}'):
            yield insert, row


def ceiling(source: str | Path, target: str | Path, batch: int = BATCH) -> Ceiling:
    """Copy the library's rows of ``source`` into the new file ``target`` and time it."""
    src = apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)
    cache_mb = writer_cache_mb()
    dst = connect(target, cache_mb=cache_mb)
    tables = library_tables(src)
    missing = set(tables) - set(library_tables(dst))
    if missing:
        raise RuntimeError(f"tables of {source} that a new database lacks: {sorted(missing)}")
    write_s = write_cpu_s = 0.0
    rows = transactions = 0
    stream = _rows(src, tables)
    while chunk := list(itertools.islice(stream, batch)):  # read outside the clock
        # consecutive rows of one table go in one executemany
        groups = [(sql, [row for _, row in group]) for sql, group in itertools.groupby(chunk, lambda r: r[0])]
        wall, cpu = time.perf_counter(), time.process_time()
        dst.execute("BEGIN")
        for sql, group_rows in groups:
            dst.executemany(sql, group_rows)
        dst.execute("COMMIT")
        write_s += time.perf_counter() - wall
        write_cpu_s += time.process_time() - cpu
        rows += len(chunk)
        transactions += 1
    wall, cpu = time.perf_counter(), time.process_time()
    ensure_indexes(dst)
    index_s, index_cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    episodes = dst.execute("SELECT count(*) FROM episodes").get
    assert isinstance(episodes, int)
    src.close()
    dst.close()
    return Ceiling(
        seconds=write_s + index_s,
        cpu_s=write_cpu_s + index_cpu_s,
        write_s=write_s,
        write_cpu_s=write_cpu_s,
        index_s=index_s,
        index_cpu_s=index_cpu_s,
        rows=rows,
        episodes=episodes,
        transactions=transactions,
        tables=tables,
        cache_mb=cache_mb,
    )


def round_trips_needed(kind: str, largest_listing: int) -> int:
    """The fewest dependent round trips for a library whose largest listing (its
    episodes) holds ``largest_listing`` items, at the importer's page size."""
    return 2 if largest_listing <= make_source(kind, "").page_size else 3
