"""Helpers for the emulated Plex tests, and measurements of serving a large library.

    python -m tests.plex_helpers measure [EPISODES] [--xml] [--gzip]

starts the emulated Plex server over a generated library of EPISODES (default 1,000,000)
in a subprocess, fetches every page of ``/library/sections/2/all?type=4&sort=id`` (1000
a page) with aiohttp, and prints the server's peak RSS (``ru_maxrss`` as the kernel's
VmHWM) and CPU time per episode (``PLEX_NO_GC=1`` runs the server without the cyclic GC).

    python -m tests.plex_helpers render [EPISODES] [PAGES]

times, in process (CPU time), generating and rendering PAGES consecutive pages of 1000
episodes in JSON and XML: the µs per episode of each step.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any, cast

import aiohttp

TOKEN = "plex-test-token"


def plex_get(
    url: str,
    path: str,
    *,
    json_body: bool = True,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """GET over real HTTP; (status, headers, body), errors included."""
    h = dict(headers or {})
    if token is not None:
        h["X-Plex-Token"] = token
    if json_body:
        h["Accept"] = "application/json"
    req = urllib.request.Request(url + path, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def plex_json(url: str, path: str, **headers: str) -> dict[str, Any]:
    status, _, body = plex_get(url, path, headers=headers)
    assert status == 200, (status, body[:300])
    container: dict[str, Any] = json.loads(body)["MediaContainer"]
    return container


def plex_xml(url: str, path: str, **headers: str) -> ET.Element:
    status, _, body = plex_get(url, path, json_body=False, headers=headers)
    assert status == 200, (status, body[:300])
    return ET.fromstring(body)


# ----------------------------------------------------------------------------- measurement
_SERVER = """
import asyncio, gc, os, sys
from importer.emulator.library import LibrarySpec
if os.environ.get("PLEX_NO_GC"):
    gc.disable()
from importer.emulator.plex import PlexServer

async def main() -> None:
    server = PlexServer(LibrarySpec(episodes=int(sys.argv[1])), token=sys.argv[2])
    url = await server.start()
    print(url, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def _proc_stats(pid: int) -> tuple[int, float]:
    """(peak RSS in kB, CPU seconds) of a running process."""
    with open(f"/proc/{pid}/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    import os

    return hwm, ticks / os.sysconf("SC_CLK_TCK")


async def _fetch_all(url: str, xml: bool, gzip: bool) -> tuple[int, int, int]:
    headers = {"X-Plex-Token": TOKEN, "X-Plex-Container-Size": "1000"}
    if not xml:
        headers["Accept"] = "application/json"
    headers["Accept-Encoding"] = "gzip" if gzip else "identity"
    seen = pages = size = 0
    async with aiohttp.ClientSession(auto_decompress=True) as session:
        start, total = 0, None
        while total is None or start < total:
            params = {"type": "4", "sort": "id", "includeGuids": "1", "X-Plex-Container-Start": str(start)}
            async with session.get(f"{url}/library/sections/2/all", params=params, headers=headers) as r:
                body = await r.read()
                assert r.status == 200, body[:200]
                total = int(r.headers["X-Plex-Container-Total-Size"])
            size += len(body)
            n = body.count(b'"type":"episode"') if not xml else body.count(b"<Video ")
            seen += n
            start += n
            pages += 1
    return seen, pages, size


def measure(episodes: int, xml: bool = False, gzip: bool = False) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(episodes), TOKEN], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        rss0, cpu0 = _proc_stats(proc.pid)
        t = time.perf_counter()
        seen, pages, size = asyncio.run(_fetch_all(url, xml, gzip))
        wall = time.perf_counter() - t
        rss, cpu = _proc_stats(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "episodes": seen,
        "pages": pages,
        "MB": size / 1e6,
        "wall_s": wall,
        "server_cpu_us_per_episode": (cpu - cpu0) / max(seen, 1) * 1e6,
        "startup_rss_MB": rss0 / 1024,
        "peak_rss_MB": rss / 1024,
    }


def measure_render(episodes: int, pages: int) -> dict[str, float]:
    from importer.emulator.library import Episode, Library, LibrarySpec, View
    from importer.emulator.plex import EPISODE, JSON, XML, Options, PlexServer, Query

    server = PlexServer(Library(LibrarySpec(episodes=episodes)))
    sec = server.sections[2]
    opts = Options(guids=True)
    lib = sec.library
    start = max(0, lib.episode_total(View.PLEX) // 2 - pages * 500)  # mid-library
    out: dict[str, float] = {}
    clock = time.process_time
    t = clock()
    batches = [
        server.select(sec, Query(EPISODE, by_key=True), start + p * 1000, 1000)[1] for p in range(pages)
    ]
    n = sum(len(b) for b in batches)
    out["generate_us_per_episode"] = (clock() - t) / n * 1e6
    for fmt in (JSON, XML, JSON):  # JSON twice: the second run has warm caches
        renderer = server.renderer(sec, fmt)
        t = clock()
        for items in batches:
            eps = cast("list[Episode]", items)
            fmt.document([("size", len(items))], [("Metadata", renderer.episodes(eps, opts))])
        out[f"{'json' if fmt.json else 'xml'}_us_per_episode"] = (clock() - t) / n * 1e6
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    numbers = [int(a) for a in args[1:] if a.isdigit()]
    if args and args[0] == "measure":
        result = measure(numbers[0] if numbers else 1_000_000, "--xml" in args, "--gzip" in args)
    elif args and args[0] == "render":
        result = measure_render(numbers[0] if numbers else 1_000_000, numbers[1] if len(numbers) > 1 else 100)
    else:
        sys.exit(__doc__)
    print(json.dumps(result, indent=1))
