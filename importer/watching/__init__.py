"""Keep a database live between nightly runs: follow a server's change feed.

```python
async with contextlib.aclosing(importer.watch(url, "library.db", token=token)) as events:
    async for event in events:
        if isinstance(event, importer.watching.Batch):
            refresh(event.added, event.updated, event.removed)
```

Modules, one job each: ``changes`` (what a notification names, and what is pending),
``feeds`` (each server kind's feed: where, keepalive, message shapes), ``apply`` (a batch:
fetch by id, upsert, delete), ``events`` (what is reported), ``watcher`` (the life of a
watch: subscribe, catch up, follow, reconnect, poll, stop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from importer.errors import Interrupted
from importer.watching.apply import ChangedItem
from importer.watching.events import AnyEvent, Batch, CaughtUp, Notice, Ready, WatchEvent
from importer.watching.watcher import Watcher, WatchOptions

__all__ = [
    "AnyEvent",
    "Batch",
    "CaughtUp",
    "ChangedItem",
    "Notice",
    "Ready",
    "WatchEvent",
    "WatchOptions",
    "Watcher",
    "watch",
]


async def watch(
    url: str, db_path: str | Path, *, token: str, options: WatchOptions | None = None
) -> AsyncIterator[AnyEvent]:
    """Watch the server at ``url`` into ``db_path`` and yield what happens: :class:`Ready`
    once the database is up to date, then a :class:`Batch` per applied batch and library,
    a :class:`CaughtUp` per catch-up sync, and :class:`Notice` events.

    Closing the iterator (``aclose()``, or leaving ``contextlib.aclosing``) stops the watch
    cleanly: a batch being written is committed and the database's lock is released.
    Errors that end the watch (a refused token, say) are raised from the iteration."""
    events: asyncio.Queue[AnyEvent] = asyncio.Queue()
    watcher = Watcher(url, str(db_path), token, options, on_event=events.put_nowait)
    running = asyncio.ensure_future(watcher.run())
    try:
        while True:
            getting = asyncio.ensure_future(events.get())
            await asyncio.wait({getting, running}, return_when=asyncio.FIRST_COMPLETED)
            if getting.done():
                yield getting.result()
                continue
            getting.cancel()
            while not events.empty():
                yield events.get_nowait()
            running.result()  # the error that ended it
            return
    finally:
        if not running.done():
            watcher.cancel()
            with contextlib.suppress(Interrupted):
                await running
