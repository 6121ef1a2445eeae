"""Which process layout writes fastest: one writer fed by decode workers, or writers
taking turns?

    python -m bench.writers [--episodes 100000] [--repeats 3] [--kinds plex,jellyfin]

Real pages are fetched once from an emulated server (so HTTP is out of the picture),
then each layout decodes and writes all of them into a fresh database, interleaved
round-robin across repeats so that host noise hits every layout alike:

* ``pool-1``: the importer's layout, one decode worker → one writer (``WorkerPool``);
* ``pool-2``: two decode workers → one writer;
* ``turns-2``: two workers that each decode *and* write their share of the pages,
  taking turns on SQLite's write lock (``BEGIN IMMEDIATE``, ~10 pages per transaction);
* ``inline``: one process decoding and writing, for reference.

Rates are episodes per second of wall time, median [best].
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

from importer.emulator import LibrarySpec, make_server
from importer.emulator.library import Library
from importer.http import HttpClient
from importer.sources import decode_page, make_source
from importer.sources.base import STREAMS
from importer.store import Writer, connect
from importer.workers import WorkerPool, WriterSettings

Page = tuple[str, bytes]  # (stream, body)


async def fetch_pages(kind: str, episodes: int) -> tuple[list[Page], str]:
    server = make_server(kind, Library(LibrarySpec(seed=11, episodes=episodes)))
    url = await server.start()
    source = make_source(kind, url)
    pages: list[Page] = []
    async with HttpClient(url, headers=source.auth_headers(server.token)) as http:
        _, (library,) = await source.discover(http)
        for stream in STREAMS:
            offset, total = 0, None
            while total is None or offset < total:
                fetched = await http.fetch(
                    source.page_request(library, stream, offset, source.page_size, with_total=True)
                )
                page = decode_page(kind, stream, fetched.body, library.source_id)
                total = page.total or 0
                pages.append((stream, fetched.body))
                offset += page.count or source.page_size
    await server.stop()
    return pages, library.source_id


def _prepare(db: str) -> int:
    writer = Writer(connect(db))
    writer.begin()
    server_id = writer.ensure_server("bench", "bench", "bench", "")
    library_id = writer.ensure_library(server_id, "1", "TV", "show")
    writer.commit()
    writer.close()
    return library_id


def _turn_worker(db: str, kind: str, library_id: int, source_id: str, pages: list[Page]) -> None:
    writer = Writer(connect(db))
    for start in range(0, len(pages), 10):
        decoded = [decode_page(kind, s, body, source_id) for s, body in pages[start : start + 10]]  # type: ignore[arg-type]
        writer.begin()  # BEGIN IMMEDIATE: waits its turn for the write lock
        for p in decoded:
            writer.write_page(library_id, p.shows, p.seasons, p.episodes, p.files)
        writer.commit()
    writer.close()


def run_turns(db: str, kind: str, pages: list[Page], source_id: str, workers: int) -> None:
    library_id = _prepare(db)
    ctx = multiprocessing.get_context("spawn")
    # Shows and seasons first (as the pipeline sends them early), then episodes split.
    procs = [
        ctx.Process(target=_turn_worker, args=(db, kind, library_id, source_id, pages[n::workers]))
        for n in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


def run_inline(db: str, kind: str, pages: list[Page], source_id: str) -> None:
    library_id = _prepare(db)
    _turn_worker(db, kind, library_id, source_id, pages)


async def run_pool(db: str, kind: str, pages: list[Page], source_id: str, decoders: int) -> None:
    pool = WorkerPool(WriterSettings(db), decoders=decoders)
    pool.start()
    pool.control("open", ("bench", "bench", "bench", ""), [(0, source_id, "TV")], "full", False)
    while (await pool.events.get())[0] != "opened":
        pass
    for page_id, (stream, body) in enumerate(pages):
        pool.send_page((page_id, 0, kind, stream, source_id, 0, True, None), body)
    written = 0
    while written < len(pages):
        event = await pool.events.get()
        if event[0] == "written":
            written += 1
        elif event[0] in ("fatal", "error"):
            raise RuntimeError(event)
    await pool.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", default="plex,jellyfin")
    args = parser.parse_args()
    layouts = ["pool-1", "pool-2", "turns-2", "inline"]
    for kind in args.kinds.split(","):
        pages, source_id = asyncio.run(fetch_pages(kind, args.episodes))
        times: dict[str, list[float]] = {name: [] for name in layouts}
        for _ in range(args.repeats):
            for name in layouts:
                with tempfile.TemporaryDirectory() as tmp:
                    db = str(Path(tmp) / "bench.db")
                    started = time.perf_counter()
                    if name.startswith("pool"):
                        asyncio.run(run_pool(db, kind, pages, source_id, int(name[-1])))
                    elif name == "turns-2":
                        run_turns(db, kind, pages, source_id, 2)
                    else:
                        run_inline(db, kind, pages, source_id)
                    times[name].append(time.perf_counter() - started)
        base = statistics.median(times["inline"])
        print(f"\n{kind}: {args.episodes:,} episodes, {len(pages)} pages, {args.repeats} repeats")
        print("| layout | episodes/s median [best] | time vs inline |")
        print("|---|---|---|")
        for name in layouts:
            med, best = statistics.median(times[name]), min(times[name])
            print(f"| {name} | {args.episodes / med:,.0f} [{args.episodes / best:,.0f}] | {med / base:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
