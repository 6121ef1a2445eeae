"""What no importer can beat, measured or computed in the same run.

* The **store-only ceiling** (scale): the rows of the importer's database written again
  by a bare apsw loop (plain INSERTs into the same schema, 25,000 rows per transaction,
  the same pragmas), timing only the writes: no fetching, no decoding, no upserts or
  etag checks. The import's speed as a fraction of it is what the pipeline costs beyond
  SQLite itself; CPU-bound regressions show there.
* The **round-trip floor** (seed): the fewest dependent round trips times the latency.
  A client that pages through a library of unknown size needs three: discovery (the
  server and its libraries, asked at once), the first page of every listing (which
  tells the totals), then every other page at once, however many requests are in
  flight; two when every listing fits in its first page.
"""

from __future__ import annotations

import itertools
import time

import apsw

from importer.sources import make_source
from importer.store import connect

TABLES = ("servers", "libraries", "shows", "seasons", "episodes", "media_files")


def round_trips_needed(kind: str, largest_listing: int) -> int:
    """The fewest dependent round trips for a library whose largest listing (its
    episodes) holds ``largest_listing`` items, at the importer's page size."""
    return 2 if largest_listing <= make_source(kind, "").page_size else 3


def ceiling(source: str, target: str, batch: int = 25_000) -> tuple[float, float, int, int, int]:
    """Seconds spent writing the source database's rows with plain INSERTs (wall and CPU),
    the rows, the episodes among them, and the transactions."""
    src = apsw.Connection(source, flags=apsw.SQLITE_OPEN_READONLY)
    dst = connect(target, cache_mb=256)
    spent, cpu, rows, transactions = 0.0, 0.0, 0, 0
    for table in TABLES:
        cursor = src.execute(f"SELECT * FROM {table} ORDER BY id")
        columns = [d[0] for d in cursor.getdescription()]
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        while chunk := list(itertools.islice(cursor, batch)):
            started, started_cpu = time.perf_counter(), time.process_time()
            with dst:
                dst.executemany(insert, chunk)
            spent += time.perf_counter() - started
            cpu += time.process_time() - started_cpu
            rows += len(chunk)
            transactions += 1
    episodes = int(dst.execute("SELECT count(*) FROM episodes").fetchall()[0][0])  # type: ignore[arg-type]
    return spent, cpu, rows, episodes, transactions
