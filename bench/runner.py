"""One measured variant in a fresh process: ``python -m bench.runner '<json spec>'``.

A fresh interpreter per variant gives every variant its own CPU time and peak RSS (as
msgspec's benchmarks do), whatever ran before it. The result is one JSON line on stdout.

Variants: ``importer`` (the library API, in a host event loop watched for stalls),
``seed-original``, ``seed-optimised``, ``plexapi`` (bench/baselines.py) and ``ceiling``
(bench/floors.py).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

import apsw

from bench import baselines, floors


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def _watch_loop(worst: list[float], tick: float = 0.005) -> None:
    """The host loop's longest stall: how late a short sleep wakes up, at most."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await asyncio.sleep(tick)
        worst[0] = max(worst[0], loop.time() - started - tick)


def _by_role(rss_kb: dict[str, int]) -> dict[str, int]:
    """ "decoder-<pid>" → "decoder" (numbered when there are several): the same keys every run."""
    decoders = sorted(k for k in rss_kb if k.startswith("decoder"))
    names = {k: "decoder" if len(decoders) == 1 else f"decoder-{n}" for n, k in enumerate(decoders)}
    return {names.get(k, k): v for k, v in rss_kb.items()}


async def _importer(spec: dict[str, Any]) -> dict[str, Any]:
    import importer
    from importer.pipeline import SyncOptions

    options = SyncOptions(kind=spec["kind"], **spec.get("options", {}))
    worst = [0.0]
    watcher = asyncio.ensure_future(_watch_loop(worst))
    await asyncio.sleep(0.01)  # the watcher's first tick
    started = time.perf_counter()
    result = await importer.sync(spec["url"], spec["db"], token=spec["token"], options=options)
    seconds = time.perf_counter() - started
    watcher.cancel()
    libraries = result.libraries
    db = apsw.Connection(spec["db"], flags=apsw.SQLITE_OPEN_READONLY)
    in_db = db.execute("SELECT count(*) FROM episodes").fetchall()[0][0]
    return {
        "seconds": seconds,
        "transactions": result.commits,
        "episodes": sum(lib.totals.get("episodes", 0) for lib in libraries),
        "episodes_in_db": in_db,
        "written": sum(lib.written for lib in libraries),
        "unchanged": sum(lib.unchanged for lib in libraries),
        "libraries": len(libraries),
        "status": sorted({lib.status for lib in libraries}),
        "rss_kb": _by_role(result.peak_rss_kb),
        "stall_ms": worst[0] * 1000,
    }


def run(spec: dict[str, Any]) -> dict[str, Any]:
    variant = spec["variant"]
    if variant == "importer":
        from importer.cli import run_async  # uvloop, as the CLI runs it

        out = run_async(_importer(spec))
    elif variant == "ceiling":
        seconds, cpu, rows, episodes, transactions = floors.ceiling(spec["source"], spec["db"])
        out = {
            "seconds": seconds,
            "write_cpu_s": cpu,
            "rows": rows,
            "episodes": episodes,
            "transactions": transactions,
        }
    else:
        started = time.perf_counter()
        if variant == "plexapi":
            store = baselines.plexapi_script(spec["url"], spec["token"], spec["db"])
        else:
            store = asyncio.run(
                baselines.run_seed(variant, spec["kind"], spec["url"], spec["headers"], spec["db"])
            )
        seconds = time.perf_counter() - started
        out = {"seconds": seconds, "transactions": store.transactions, "episodes": store.episodes()}
    out.setdefault("rss_kb", {})["main"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["cpu_s"] = {"main": _cpu(resource.RUSAGE_SELF), "workers": _cpu(resource.RUSAGE_CHILDREN)}
    return out


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
