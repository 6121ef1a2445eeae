"""A large import end to end, against the store-only ceiling measured in the same run.

    python bench/scale.py [--episodes 1000000] [--kind plex|jellyfin]

1. An emulated server with ``--episodes`` episodes runs in its own process (``importer
   emulator``), so its CPU is its own and is reported apart. A real server runs on
   another machine; this one shares the 2 cores with the importer, so by default a
   first import warms its response cache and the second is measured (``--cold``: the
   first, while the emulator renders every page).
2. ``importer.sync`` imports it: wall time, episodes/s, peak RSS of every process.
3. The ceiling: the same rows (read back from that database) written by a bare apsw loop
   (plain INSERTs into the same schema, 25,000 rows per transaction, the same pragmas),
   timing only the writes. The import's ratio to it is what the pipeline costs beyond
   SQLite itself.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import apsw

import importer
from importer.pipeline import SyncOptions
from importer.store import connect

TABLES = ("servers", "libraries", "shows", "seasons", "episodes", "media_files")


def start_emulator(kind: str, episodes: int, cache: bool) -> tuple[subprocess.Popen[str], str, str]:
    extra = ["--cache-responses"] if cache else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "importer", "emulator", "--kind", kind, "--episodes", str(episodes), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[1]
    token = proc.stdout.readline().split()[1]
    return proc, url, token


def emulator_usage(pid: int) -> tuple[float, int]:
    """CPU seconds and peak RSS (kB) of a running process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    hwm = next(line for line in status if line.startswith("VmHWM"))
    return cpu, int(hwm.split()[1])


def ceiling(source: Path, target: Path, batch: int = 25_000) -> tuple[float, int]:
    """Seconds spent writing the source database's rows with plain INSERTs, and row count."""
    src = apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)
    dst = connect(target, cache_mb=256)
    spent, rows = 0.0, 0
    for table in TABLES:
        cursor = src.execute(f"SELECT * FROM {table} ORDER BY id")
        columns = [d[0] for d in cursor.getdescription()]
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        while chunk := list(itertools.islice(cursor, batch)):
            started = time.perf_counter()
            with dst:
                dst.executemany(insert, chunk)
            spent += time.perf_counter() - started
            rows += len(chunk)
    return spent, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--kind", default="plex", choices=["plex", "jellyfin", "emby"])
    parser.add_argument("--cache-mb", type=int, default=None, help="the writer's SQLite cache")
    parser.add_argument(
        "--cold", action="store_true", help="measure the emulator's first pass (it renders every page)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "import.db"
        writer = {"cache_mb": args.cache_mb} if args.cache_mb else {}
        emulator, url, token = start_emulator(args.kind, args.episodes, cache=not args.cold)
        try:
            if not args.cold:  # one pass renders every page into the emulator's cache
                options = SyncOptions(kind=args.kind)
                asyncio.run(importer.sync(url, Path(tmp) / "warm.db", token=token, options=options))
            cpu_before, _ = emulator_usage(emulator.pid)
            started = time.perf_counter()
            result = asyncio.run(
                importer.sync(url, db, token=token, options=SyncOptions(kind=args.kind, writer=writer))
            )
            seconds = time.perf_counter() - started
            cpu_after, emulator_rss = emulator_usage(emulator.pid)
        finally:
            emulator.terminate()
            emulator.wait()
        episodes = sum(lib.totals.get("episodes", 0) for lib in result.libraries)
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ceiling_seconds, rows = ceiling(db, Path(tmp) / "ceiling.db")
        print(f"{args.kind}: {episodes:,} episodes, {result.requests} requests, {result.bytes / 1e6:,.0f} MB")
        print(f"import: {seconds:.1f} s, {episodes / seconds:,.0f} episodes/s, {result.commits} commits")
        print(
            f"ceiling (bare apsw, same {rows:,} rows): {ceiling_seconds:.1f} s, "
            f"{episodes / ceiling_seconds:,.0f} episodes/s"
        )
        print(f"import / ceiling speed: {ceiling_seconds / seconds:.2f}")
        rss = sorted(result.peak_rss_kb.items())
        print("peak RSS: " + ", ".join(f"{k} {v / 1024:.0f} MB" for k, v in rss))
        print(f"emulator: {cpu_after - cpu_before:.1f} s CPU, peak RSS {emulator_rss / 1024:.0f} MB")
        workers_cpu = children.ru_utime + children.ru_stime - cpu_after  # the emulator was a child too
        print(f"importer CPU: main {own.ru_utime + own.ru_stime:.1f} s, workers {workers_cpu:.1f} s")


if __name__ == "__main__":
    main()
