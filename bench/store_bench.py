"""Store bench: episodes/s through ``Writer`` against a bare apsw loop (the ceiling).

    python -m bench.store_bench [--episodes 100000] [--repeats 3] [--kinds plex,jellyfin]

For each kind (Plex-shaped: sequential string ids; Jellyfin-shaped: random 32-hex ids)
and each repeat, interleaved so that host noise hits every variant alike:

* ``ceiling``: plain INSERTs of the same rows into the same schema, no upsert, no
  RETURNING, parents unresolved, episode ids assigned in Python: what SQLite can take;
* ``writer``: ``Writer.write_page`` page by page with a progress row per transaction,
  then ``link()`` and ``ensure_indexes()`` (reported apart, and in ``writer+end``);
* ``unchanged``: the same pages written again into that database (every etag matches).

Every variant commits every ``--tx-pages`` pages of 1000 episodes (each with one file).
Rates are episodes per second of wall time (median [best]).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from importer.rows import EPISODE_COLUMNS, MEDIA_FILE_COLUMNS, SEASON_COLUMNS, SHOW_COLUMNS, Row
from importer.store import Writer, connect

PAGE = 1000
SEASONS_PER_SHOW = 5
EPISODES_PER_SEASON = 10
_WORDS = [
    "the", "a", "of", "night", "house", "river", "last", "secret", "city", "light", "dark",
    "return", "old", "new", "first", "winter", "storm", "road", "home", "fire", "lost",
    "found", "king", "queen", "north", "south", "line", "edge", "time", "game",
]  # fmt: skip


@dataclass
class Library:
    kind: str
    shows: list[Row]
    seasons: list[Row]
    episodes: list[Row]
    files: list[Row]

    def pages(self) -> Iterator[tuple[list[Row], list[Row], list[Row], list[Row]]]:
        """Show pages, then season pages, then episode pages with their files (the
        order in which a pipeline that lists shows first would hand them over)."""
        for i in range(0, len(self.shows), PAGE):
            yield self.shows[i : i + PAGE], [], [], []
        for i in range(0, len(self.seasons), PAGE):
            yield [], self.seasons[i : i + PAGE], [], []
        for i in range(0, len(self.episodes), PAGE):
            # one file per episode, in the same order
            yield [], [], self.episodes[i : i + PAGE], self.files[i : i + PAGE]


def generate(kind: str, n_episodes: int, seed: int = 1) -> Library:
    """A deterministic library with realistic field sizes and random external ids."""
    rng = random.Random(seed)
    text = " ".join(rng.choice(_WORDS) for _ in range(20000))
    plex = kind == "plex"
    counter = iter(range(10_000, 10**9))
    parts = iter(range(500_000, 10**9))

    def new_id() -> str:
        return str(next(counter)) if plex else f"{rng.getrandbits(128):032x}"

    def words(n: int) -> str:
        at = rng.randrange(len(text) - n)
        return text[at : at + n]

    def ext_ids() -> tuple[str, str, str]:
        return f"tt{rng.randrange(10**7):07d}", str(rng.randrange(10**6)), str(rng.randrange(10**6))

    def etag(updated: int) -> str:
        return str(updated) if plex else f"{rng.getrandbits(128):032x}"

    shows: list[Row] = []
    seasons: list[Row] = []
    episodes: list[Row] = []
    files: list[Row] = []
    per_show = SEASONS_PER_SHOW * EPISODES_PER_SEASON
    for s in range(-(-n_episodes // per_show)):
        show_id = new_id()
        title = f"{words(14).title()} {s}"
        added = 1_500_000_000 + rng.randrange(10**8)
        shows.append(
            (show_id, f"plex://show/{rng.getrandbits(96):024x}" if plex else None, title, title,
             1990 + rng.randrange(35), words(300), *ext_ids(), added, added + 500, etag(added + 500))
        )  # fmt: skip
        for season_no in range(1, SEASONS_PER_SHOW + 1):
            season_id = new_id()
            seasons.append((season_id, show_id, season_no, f"Season {season_no}", etag(added)))
            for ep_no in range(1, EPISODES_PER_SEASON + 1):
                if len(episodes) == n_episodes:
                    break
                ep_id = new_id()
                ep_title = words(20).title()
                updated = added + rng.randrange(10**6)
                duration = 1_200_000 + rng.randrange(2_400_000)
                episodes.append(
                    (ep_id, show_id, season_id,
                     f"plex://episode/{rng.getrandbits(96):024x}" if plex else None,
                     season_no, ep_no, None, ep_title, words(250),
                     f"{2000 + rng.randrange(25)}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}",
                     duration, *ext_ids(), added, updated, etag(updated))
                )  # fmt: skip
                path = f"/media/tv/{title}/Season {season_no:02d}/{title} - S{season_no:02d}E{ep_no:02d}.mkv"
                files.append(
                    (ep_id, str(next(parts)) if plex else ep_id, 0, 0, path,
                     rng.randrange(10**8, 4 * 10**9), "mkv", "h264", "aac", 1920, 1080, duration)
                )  # fmt: skip
    assert len(SHOW_COLUMNS) == len(shows[0]) and len(SEASON_COLUMNS) == len(seasons[0])
    assert len(EPISODE_COLUMNS) == len(episodes[0]) and len(MEDIA_FILE_COLUMNS) == len(files[0])
    return Library(kind, shows, seasons, episodes, files)


class _Clock:
    """Wall and CPU time of a block: CPU time is the steadier number on a shared host."""

    def __init__(self, out: dict[str, float], key: str) -> None:
        self.out, self.key = out, key

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.out[self.key] = time.perf_counter() - self.wall
        self.out[f"{self.key}.cpu"] = time.process_time() - self.cpu


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def run_ceiling(lib: Library, path: Path, tx_pages: int, cache_mb: int) -> dict[str, float]:
    """Plain INSERTs through apsw: the store-only ceiling for this schema."""
    conn = connect(path, cache_mb=cache_mb)
    conn.execute("INSERT INTO servers (kind, machine_id) VALUES ('bench', 'x')")
    conn.execute("INSERT INTO libraries (server_id, source_id) VALUES (1, '1')")
    show_sql = _insert("shows", ("library_id", *SHOW_COLUMNS))
    season_sql = _insert("seasons", ("library_id", *SEASON_COLUMNS))
    episode_sql = _insert("episodes", ("id", "library_id", *EPISODE_COLUMNS))
    file_sql = _insert("media_files", ("episode_id", *MEDIA_FILE_COLUMNS[1:]))
    next_id = 1
    out: dict[str, float] = {}
    clock = _Clock(out, "load")
    clock.__enter__()
    for n, (shows, seasons, episodes, files) in enumerate(lib.pages()):
        if n % tx_pages == 0:
            conn.execute("BEGIN IMMEDIATE")
        if shows:
            conn.executemany(show_sql, [(1, *r) for r in shows])
        if seasons:
            conn.executemany(season_sql, [(1, *r) for r in seasons])
        if episodes:
            ids = {}
            rows = []
            for r in episodes:
                ids[r[0]] = next_id
                rows.append((next_id, 1, *r))
                next_id += 1
            conn.executemany(episode_sql, rows)
            conn.executemany(file_sql, [(ids[f[0]], *f[1:]) for f in files])
        if n % tx_pages == tx_pages - 1:
            conn.execute("COMMIT")
    if conn.in_transaction:
        conn.execute("COMMIT")
    clock.__exit__()
    conn.close()
    return out


def _write_all(writer: Writer, library_id: int, run_id: int, lib: Library, tx_pages: int) -> tuple[int, int]:
    written = unchanged = 0
    for n, (shows, seasons, episodes, files) in enumerate(lib.pages()):
        if n % tx_pages == 0:
            writer.begin()
        counts = writer.write_page(library_id, shows, seasons, episodes, files)
        written += counts.written
        unchanged += counts.unchanged
        if n % tx_pages == tx_pages - 1:
            writer.update_run_progress(run_id, json.dumps({"page": n}))
            writer.commit()
    if writer.in_transaction:
        writer.update_run_progress(run_id, json.dumps({"page": "end"}))
        writer.commit()
    return written, unchanged


def run_writer(lib: Library, path: Path, tx_pages: int, cache_mb: int) -> dict[str, float]:
    """Writer.write_page for every page, then link + indexes, then the same pages again."""
    out: dict[str, float] = {}
    items = len(lib.shows) + len(lib.seasons) + len(lib.episodes)
    with Writer.open(path, cache_mb=cache_mb) as writer:
        server = writer.ensure_server(lib.kind, "bench", "bench", "http://bench")
        library = writer.ensure_library(server, "1", "TV", "show")
        run = writer.start_run(library, "full")
        with _Clock(out, "load"):
            written, _ = _write_all(writer, library, run, lib, tx_pages)
        assert written == items, (written, items)
        with _Clock(out, "link"), writer.transaction():
            result = writer.link(library)
        assert result.orphan_episode_count == 0, result
        with _Clock(out, "indexes"):
            writer.ensure_indexes()
        with _Clock(out, "unchanged"):
            written, unchanged = _write_all(writer, library, run, lib, tx_pages)
        assert (written, unchanged) == (0, items), (written, unchanged)
    return out


def _fmt(n_episodes: int, times: list[float]) -> str:
    rates = [n_episodes / t for t in times]
    return f"{statistics.median(rates) / 1000:6.1f}k [{max(rates) / 1000:5.1f}k]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", default="plex,jellyfin")
    ap.add_argument("--tx-pages", type=int, default=10, help="pages of 1000 episodes per transaction")
    ap.add_argument("--cache-mb", type=int, default=64)
    ap.add_argument("--dir", default=None, help="where to put the databases (default: a temp dir)")
    ap.add_argument("--json", action="store_true", help="print raw times as JSON too")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="store_bench_", dir=args.dir))
    raw: dict[str, dict[str, list[float]]] = {}
    try:
        for kind in args.kinds.split(","):
            lib = generate(kind, args.episodes)
            times: dict[str, list[float]] = {}
            variants: list[tuple[str, Callable[..., dict[str, float]]]] = [
                ("ceiling", run_ceiling),
                ("writer", run_writer),
            ]
            for rep in range(args.repeats):
                for name, fn in variants if rep % 2 == 0 else variants[::-1]:
                    path = workdir / f"{kind}-{name}-{rep}.db"
                    for key, value in fn(lib, path, args.tx_pages, args.cache_mb).items():
                        times.setdefault(f"{name}.{key}", []).append(value)
                    for f in workdir.iterdir():
                        f.unlink()
            for suffix in ("", ".cpu"):
                times[f"writer.load+end{suffix}"] = [
                    a + b + c
                    for a, b, c in zip(
                        times[f"writer.load{suffix}"],
                        times[f"writer.link{suffix}"],
                        times[f"writer.indexes{suffix}"],
                        strict=True,
                    )
                ]
            raw[kind] = times
            n = len(lib.episodes)
            ceiling = statistics.median(times["ceiling.load"])
            print(f"\n{kind}: {n} episodes + {len(lib.files)} files, {len(lib.seasons)} seasons, "
                  f"{len(lib.shows)} shows; {args.tx_pages * PAGE} episodes per transaction; "
                  f"{args.repeats} repeats; episodes/s median [best]")  # fmt: skip
            ceiling_cpu = statistics.median(times["ceiling.load.cpu"])
            print(f"  {'':18} {'wall':>16}  {'CPU only':>16}  time ratio to ceiling (wall, CPU)")
            for key in ("ceiling.load", "writer.load", "writer.load+end", "writer.unchanged"):
                ratio = statistics.median(times[key]) / ceiling
                cpu_ratio = statistics.median(times[f"{key}.cpu"]) / ceiling_cpu
                print(
                    f"  {key:18} {_fmt(n, times[key])}  {_fmt(n, times[f'{key}.cpu'])}"
                    f"  {ratio:4.2f}  {cpu_ratio:4.2f}"
                )
            for key in ("writer.link", "writer.indexes"):
                wall, cpu = (statistics.median(times[k]) * 1000 for k in (key, f"{key}.cpu"))
                print(f"  {key:18} {wall:7.0f} ms wall, {cpu:4.0f} ms CPU")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
