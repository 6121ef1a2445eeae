"""One variant measured in process, in a fresh interpreter: ``python -m bench.runner '<json spec>'``.

A fresh interpreter per variant gives every variant its own CPU time and peak RSS (as
msgspec's benchmarks do), whatever ran before it. The result is one JSON line on stdout.

Variants (``RunnerSpec.variant``):

* ``importer``: ``importer.sync`` through the library API on uvloop (as the CLI runs
  it), in a host event loop watched for stalls; CPU time of this process and of its
  workers (its waited-for children), peak RSS of every process as the importer reports it;
* ``importer-debug``: the same on a plain asyncio loop in debug mode, for asyncio's
  slow-callback log (bench/slowlog.py says why not uvloop); its CPU time is not reported;
* ``importer-timed``: the same on a plain asyncio loop without debug mode, every callback
  timed (bench/slowlog.py says why both); its CPU time is not reported either;
* ``ceiling``: the store-only ceiling (bench/floors.py);
* ``seed-original``, ``seed-optimised``, ``plexapi``: the peers (bench/baselines.py);
* ``per-item``: the per-item client hydration is held against (bench/peritem.py), on
  ``options["sample"]`` shows of the database ``source``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import apsw

from bench import baselines, dbfacts, floors, peritem, slowlog

IMPORTER_VARIANTS = ("importer", "importer-debug", "importer-timed")
#: no process CPU time: the ceiling times its writes itself; debug mode and timing distort it
UNTIMED_PROCESS = ("ceiling", "importer-debug", "importer-timed")


@dataclass(frozen=True)
class RunnerSpec:
    variant: str
    kind: str = ""
    url: str = ""
    token: str = ""
    db: str = ""
    source: str = ""  # ceiling: the importer's database whose rows it copies; per-item: its shows
    headers: dict[str, str] = field(default_factory=dict)  # peers: the server's auth headers
    options: dict[str, Any] = field(default_factory=dict)  # importer: SyncOptions fields

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunnerSpec:
        return cls(**json.loads(text))


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


async def _sync(spec: RunnerSpec, options: Any, watch: bool) -> tuple[Any, float, float]:
    """The sync, its wall time and the host loop's longest stall (0 unless ``watch``)."""
    import importer

    worst = [0.0]
    watcher = asyncio.ensure_future(_watch_loop(worst)) if watch else None
    await asyncio.sleep(0.01)  # the watcher's first tick
    started = time.perf_counter()
    result = await importer.sync(spec.url, spec.db, token=spec.token, options=options)
    seconds = time.perf_counter() - started
    if watcher is not None:
        watcher.cancel()
    return result, seconds, worst[0]


def _callbacks_log(
    variant: str, loop: asyncio.AbstractEventLoop
) -> AbstractContextManager[slowlog.SlowCallbacks]:
    """asyncio's own slow-callback log (debug mode), or every callback timed without it."""
    return slowlog.slow_callbacks(loop) if variant == "importer-debug" else slowlog.timed_callbacks()


def _importer(spec: RunnerSpec) -> dict[str, Any]:
    # imported before the loop runs: an import is not the sync's work on the loop
    from importer.cli import run_async
    from importer.pipeline import SyncOptions

    options = SyncOptions(kind=spec.kind, **spec.options)
    out: dict[str, Any] = {}
    if spec.variant == "importer":
        result, seconds, stall = run_async(_sync(spec, options, watch=True))  # uvloop, as the CLI
        out["stall_ms"] = stall * 1000
    else:
        with asyncio.Runner() as runner, _callbacks_log(spec.variant, runner.get_loop()) as slow:
            result, seconds, _ = runner.run(_sync(spec, options, watch=False))
        out["slow_callbacks"] = slow.as_record()
    libraries = result.libraries
    db = apsw.Connection(spec.db, flags=apsw.SQLITE_OPEN_READONLY)  # after the loop: not timed
    in_db = db.execute("SELECT count(*) FROM episodes").get
    return {
        "seconds": seconds,
        "transactions": result.commits,
        "episodes": sum(lib.totals.get("episodes", 0) for lib in libraries),
        "episodes_in_db": in_db,
        "written": sum(lib.written for lib in libraries),
        "unchanged": sum(lib.unchanged for lib in libraries),
        "libraries": len(libraries),
        "status": sorted({lib.status for lib in libraries}),
        "modes": sorted({lib.mode for lib in libraries}),
        "rss_kb": _by_role(result.peak_rss_kb),
        **out,
    }


def run(spec: RunnerSpec) -> dict[str, Any]:
    if spec.variant in IMPORTER_VARIANTS:
        out = _importer(spec)
    elif spec.variant == "ceiling":
        out = asdict(floors.ceiling(spec.source, spec.db))
    elif spec.variant == "per-item":
        shows = dbfacts.sample_shows(Path(spec.source), int(spec.options.get("sample", 30)))
        out = peritem.run(spec.kind, spec.url, spec.headers, shows).as_record()
    else:
        started = time.perf_counter()
        if spec.variant == "plexapi":
            store = baselines.plexapi_script(spec.url, spec.token, spec.db)
        else:
            store = asyncio.run(baselines.run_seed(spec.variant, spec.kind, spec.url, spec.headers, spec.db))
        seconds = time.perf_counter() - started
        out = {"seconds": seconds, "transactions": store.transactions, "episodes": store.episodes()}
    out.setdefault("rss_kb", {})["main"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if spec.variant not in UNTIMED_PROCESS:
        main, workers = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        out["cpu_s"] = main + workers
        out["cpu_split"] = {"main": main, "workers": workers}
    return out


def main() -> None:
    print(json.dumps(run(RunnerSpec.from_json(sys.argv[-1]))))


if __name__ == "__main__":
    main()
