"""The compiled hot path against its pure-Python twin, stage by stage (issue 7).

A standalone micro-bench: it starts a small emulated server (``importer emulator``),
fetches real episode pages from it (Plex and Jellyfin), and times each moved stage on
those pages with the C extension and with the twin, interleaved (c, python, c, ...) so
that the noise of a shared machine hits both alike. Times are CPU seconds of this
process (``time.process_time``), the median of ``--repeats`` rounds.

    python -m bench.native                    # the table on stdout
    python -m bench.native --json out.json    # also the results as JSON
    python -m bench.native --repeats 9 --pages 4

Stages (per page, then per item):

* ``plex-rows`` / ``jellyfin-rows``: decoded episode Structs to rows, file rows, etags
  (``speedups.plex_episode_rows``, ``speedups.jellyfin_episode_rows``);
* ``jellyfin-rows-c-dates``: the same, against the twin with compiled dates (the
  decoder as it was before the loop moved: Python loop, ``parse_timestamp`` in C);
* ``plex-decode-page`` / ``jellyfin-decode-page``: the decoder process's whole work on
  a page (``importer.sources.decode_page``: msgspec decode, then the rows), where the
  msgspec part is the same for both;
* ``content-etag``: the change detector on an episode row and its files;
* ``parse-timestamp``: Jellyfin's ISO 8601 dates (7 fractional digits).

JSON output: ``{"implementation": "c", "stages": [{"stage", "items", "c_us_per_item",
"python_us_per_item", "speedup"}, ...]}`` (speedup = python / c, median times). The
exit status is 1 when the extension is not built.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from importer import _purepy, speedups
from importer.model import LibraryInfo, ListingKind, StreamKind
from importer.sources import jellyfin, plex

Stage = tuple[str, int, Callable[[], object], Callable[[], object]]


def _get(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
        return bytes(response.read())


def _pages(kind: str, episodes: int, pages: int) -> list[bytes]:
    """``pages`` episode pages of an emulated server of ``kind``, as the importer asks."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "importer", "emulator", "--kind", kind, "--episodes", str(episodes)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        token = proc.stdout.readline().split()[1]
        if kind == "plex":
            source: Any = plex.PlexSource(url)
        else:
            source = jellyfin.JellyfinSource(url)
        headers = source.auth_headers(token)
        if kind == "plex":
            sections = json.loads(_get(url + "/library/sections", headers))["MediaContainer"]["Directory"]
            library = next(s["key"] for s in sections if s["type"] == "show")
        else:
            folders = json.loads(_get(url + "/Library/VirtualFolders", headers))
            library = next(f["ItemId"] for f in folders if f.get("CollectionType") == "tvshows")
        out = []
        step = max(1, episodes // pages)
        for n in range(pages):
            request = source.page_request(
                LibraryInfo(str(library), "TV"),
                "episodes",
                ListingKind.FULL,
                n * step,
                source.page_size,
                with_total=False,
            )
            query = urllib.parse.urlencode(request.params)
            out.append(_get(f"{url}{request.path}?{query}", {**headers, **request.headers}))
        return out
    finally:
        proc.terminate()
        proc.wait()


def _stages(plex_pages: list[bytes], jellyfin_pages: list[bytes]) -> list[Stage]:
    from importer import _speedups
    from importer.sources import decode_page

    plex_items = [plex._EPISODES.decode(b).container.metadata for b in plex_pages]
    jf_items = [jellyfin._PAGE.decode(b).items for b in jellyfin_pages]
    n_plex = sum(map(len, plex_items))
    n_jf = sum(map(len, jf_items))
    rows, files, _, _ = _purepy.plex_episode_rows(plex_items[0], "episode")
    etag_values = [(row[:-1], [f for f in files if f[0] == row[0]]) for row in rows]
    stamps = [item.date_created for items in jf_items for item in items if item.date_created]

    def pages(decode: Callable[[Any], object], batches: list[Any]) -> Callable[[], object]:
        return lambda: [decode(b) for b in batches]

    def decode_pages(kind: str, bodies: list[bytes], rows_fn: str, impl: Any) -> Callable[[], object]:
        module = plex if kind == "plex" else jellyfin

        def run() -> object:
            saved = getattr(module, rows_fn)
            setattr(module, rows_fn, getattr(impl, rows_fn))
            try:
                return [decode_page(kind, StreamKind.EPISODES, b, "1") for b in bodies]
            finally:
                setattr(module, rows_fn, saved)

        return run

    def with_c_dates(fn: Callable[[], object]) -> Callable[[], object]:
        """The twin as the decoder ran before this stage moved: Python loop, C dates."""

        def run() -> object:
            saved = _purepy.parse_timestamp
            _purepy.parse_timestamp = _speedups.parse_timestamp
            try:
                return fn()
            finally:
                _purepy.parse_timestamp = saved

        return run

    return [
        ("plex-rows", n_plex,
         pages(lambda i: _speedups.plex_episode_rows(i, "episode"), plex_items),
         pages(lambda i: _purepy.plex_episode_rows(i, "episode"), plex_items)),
        ("jellyfin-rows", n_jf,
         pages(_speedups.jellyfin_episode_rows, jf_items), pages(_purepy.jellyfin_episode_rows, jf_items)),
        ("jellyfin-rows-c-dates", n_jf,
         pages(_speedups.jellyfin_episode_rows, jf_items),
         with_c_dates(pages(_purepy.jellyfin_episode_rows, jf_items))),
        ("plex-decode-page", n_plex,
         decode_pages("plex", plex_pages, "plex_episode_rows", _speedups),
         decode_pages("plex", plex_pages, "plex_episode_rows", _purepy)),
        ("jellyfin-decode-page", n_jf,
         decode_pages("jellyfin", jellyfin_pages, "jellyfin_episode_rows", _speedups),
         decode_pages("jellyfin", jellyfin_pages, "jellyfin_episode_rows", _purepy)),
        ("content-etag", len(etag_values),
         pages(_speedups.content_etag, etag_values), pages(_purepy.content_etag, etag_values)),
        ("parse-timestamp", len(stamps),
         pages(_speedups.parse_timestamp, stamps), pages(_purepy.parse_timestamp, stamps)),
    ]  # fmt: skip


def _time(fn: Callable[[], object], loops: int) -> float:
    start = time.process_time()
    for _ in range(loops):
        fn()
    return (time.process_time() - start) / loops


def run(repeats: int = 7, pages: int = 3, episodes: int = 20_000) -> list[dict[str, Any]]:
    plex_pages = _pages("plex", episodes, pages)
    jellyfin_pages = _pages("jellyfin", episodes, pages)
    results = []
    for name, items, c_fn, py_fn in _stages(plex_pages, jellyfin_pages):
        # about 0.1 s per timing, whatever the stage's cost
        once = max(_time(py_fn, 1), 1e-6)
        loops = max(1, int(0.1 / once))
        c_times, py_times = [], []
        for _ in range(repeats):
            c_times.append(_time(c_fn, loops))
            py_times.append(_time(py_fn, loops))
        c, py = statistics.median(c_times), statistics.median(py_times)
        results.append(
            {
                "stage": name,
                "items": items,
                "c_us_per_item": round(c / items * 1e6, 3),
                "python_us_per_item": round(py / items * 1e6, 3),
                "speedup": round(py / c, 2),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.native", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds; the median is kept")
    parser.add_argument("--pages", type=int, default=3, help="episode pages per server kind")
    parser.add_argument("--episodes", type=int, default=20_000, help="size of the emulated libraries")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    try:
        from importer import _speedups  # noqa: F401
    except ImportError:
        print("the C extension importer._speedups is not built: nothing to compare", file=sys.stderr)
        return 1
    results = run(args.repeats, args.pages, args.episodes)
    print(f"{'stage':<22} {'items':>6} {'C µs/item':>10} {'Python µs/item':>15} {'speedup':>8}")
    for r in results:
        print(
            f"{r['stage']:<22} {r['items']:>6} {r['c_us_per_item']:>10.3f} "
            f"{r['python_us_per_item']:>15.3f} {r['speedup']:>7.2f}x"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"implementation": speedups.IMPLEMENTATION, "stages": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
