"""The host loop's slow callbacks, from asyncio's own slow-callback log.

In debug mode an asyncio loop times every callback it runs and logs each one that took
``slow_callback_duration`` or longer on the ``asyncio`` logger: "Executing <Handle ...
created at file:line> took 0.012 seconds". This collects those records.

Only a plain asyncio loop sees every callback. uvloop (what the CLI runs on) logs slow
handles and task steps in debug mode, but calls a transport's protocol (aiohttp's
``data_received``: response parsing) straight from libuv, untimed: a 20 ms
``data_received`` goes unlogged there (checked with uvloop 0.23). So this figure is
measured on an asyncio loop, in its own run: debug mode also records a stack for every
handle, which would distort the CPU time and the stall of the other runs.

Debug mode's own work lands inside the callbacks it times: asyncio records a stack for
every handle and future, and aiohttp, seeing ``loop.get_debug()``, one *with source
lines* for every session, request and response. The first such stack that reaches a
source file reads and tokenizes that file: about 25 ms on the first request, which no
real run spends. So the source of every module already imported is read into
``linecache`` before the run; what debug mode still adds per callback (a few stack
walks) makes the figure an upper bound.

How far above: at 1,000,000 episodes the stacks debug mode keeps are hundreds of
thousands of objects, and the garbage collector's full passes over them land in whatever
callback runs then (measured: a 13 ms collection inside a 15 ms callback; without debug
mode no collection of the run took 1 ms). So :func:`timed_callbacks` times every callback
the same way, on the same plain asyncio loop, without debug mode: its figure is what a
host loop meets. Both are reported.
"""

from __future__ import annotations

import asyncio
import linecache
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: the issue's limit: no importer callback on the host loop longer than this
SLOW_CALLBACK_S = 0.005
_MESSAGE = "Executing %s took %.3f seconds"  # asyncio.base_events, 3.8 to 3.13
WORST_KEPT = 5


@dataclass(frozen=True)
class SlowCallback:
    ms: float
    what: str  # the handle's repr: in debug mode it names the file and line that made it
    cpu_ms: float | None = None  # the loop thread's CPU time in it (timed_callbacks only)


@dataclass
class SlowCallbacks:
    seen: list[SlowCallback] = field(default_factory=list)

    def as_record(self) -> dict[str, Any]:
        worst = sorted(self.seen, key=lambda c: -c.ms)[:WORST_KEPT]
        return {
            "count": len(self.seen),
            "max_ms": worst[0].ms if worst else 0.0,
            "worst": [
                {"ms": round(c.ms, 1), "what": c.what[:300]}
                | ({} if c.cpu_ms is None else {"cpu_ms": round(c.cpu_ms, 1)})
                for c in worst
            ],
        }


class _Collector(logging.Filter):
    """Takes the slow-callback records off the logger (a long run logs many); lets the
    asyncio logger's other records through to wherever they would go."""

    def __init__(self, into: SlowCallbacks) -> None:
        super().__init__()
        self.into = into

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg == _MESSAGE and isinstance(args, tuple) and len(args) == 2:
            seconds = args[1]
            if isinstance(seconds, int | float):
                self.into.seen.append(SlowCallback(seconds * 1000, str(args[0])))
            return False
        return True


def fill_linecache() -> int:
    """Read the source of every imported module into ``linecache``; how many files."""
    files = {getattr(m, "__file__", None) for m in list(sys.modules.values())}
    sources = [f for f in files if isinstance(f, str) and f.endswith(".py")]
    for path in sources:
        linecache.getlines(path)
    return len(sources)


@contextmanager
def slow_callbacks(loop: asyncio.AbstractEventLoop) -> Iterator[SlowCallbacks]:
    """Debug mode on ``loop`` with a 5 ms threshold; yields what asyncio logs meanwhile."""
    found = SlowCallbacks()
    logger = logging.getLogger("asyncio")
    fill_linecache()
    collector = _Collector(found)
    level = logger.level
    logger.addFilter(collector)
    logger.setLevel(logging.WARNING)  # the records must be made, whatever the root's level
    loop.set_debug(True)
    loop.slow_callback_duration = SLOW_CALLBACK_S
    checkcache = linecache.checkcache
    linecache.checkcache = _no_stat
    try:
        yield found
    finally:
        linecache.checkcache = checkcache
        loop.set_debug(False)
        logger.removeFilter(collector)
        logger.setLevel(level)


def _no_stat(filename: str | None = None) -> None:
    """In debug mode every future and handle records the stack that made it, and recording
    a stack calls ``linecache.checkcache``, which stats the source file of every frame to
    see whether it changed: measured, that alone made callbacks of an import take 5-25 ms
    (a few hundred stats each). No source file changes during a run: skip the stat."""


@contextmanager
def timed_callbacks() -> Iterator[SlowCallbacks]:
    """Every callback a plain asyncio loop runs, timed as debug mode times it (the wall
    time of ``Handle._run``: task steps, timers, and transports' reads with their
    protocols' ``data_received``), without debug mode; yields those of
    ``SLOW_CALLBACK_S`` or longer, with the loop thread's CPU time in each (what the wall
    time has beyond it, the thread spent waiting: for a core, or the GIL)."""
    found = SlowCallbacks()
    handle_run = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        handle_run(handle)
        wall = time.perf_counter() - wall
        if wall >= SLOW_CALLBACK_S:
            cpu_ms = (time.thread_time() - cpu) * 1000
            found.seen.append(SlowCallback(wall * 1000, repr(handle), cpu_ms))

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
    try:
        yield found
    finally:
        asyncio.events.Handle._run = handle_run  # type: ignore[method-assign]
