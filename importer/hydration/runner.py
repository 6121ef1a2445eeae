"""``importer hydrate``: the cast, crew, genres, artwork and ratings that listings leave
out, fetched in batches by id for the items whose etag changed since they were last
hydrated (or for one show, now).

```
check --db, lock ─► servers, libraries ─► reach the server ─► next batch ─► fetch ─► store
 (exit 2, 4)         (--kind, --library,    (its id must        (keyset; etag  (paced,   (one txn:
                      --show: exit 2)        match: exit 2)      changed)       bounded)  credits...)
```

A batch commits whole, with its items' marks (``hydrated_at``, ``hydrated_etag``), so a
rerun after a kill skips what was committed, and nothing else needs remembering. One
request in flight by default (``concurrency``), the HTTP client's adaptive limit and
``Retry-After`` on top, and ``rate`` to cap requests per second: a home server stays usable.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer import errors
from importer.http import RetryPolicy, Timeouts
from importer.hydration import select
from importer.hydration.batches import Batches
from importer.hydration.database import Database
from importer.hydration.estimate import server_time_notice
from importer.hydration.identity import ClientSettings, Link, reach
from importer.hydration.ondemand import one_show
from importer.hydration.pacing import RequestPacer
from importer.hydration.result import HydrateResult, LibraryHydration
from importer.lock import DatabaseLock
from importer.progress import Progress, ProgressEvent
from importer.store.metadata import prune_people
from importer.store.preflight import check_database
from importer.store.queries import Server
from importer.targets import check_url

log = logging.getLogger(__name__)


@dataclass
class HydrateOptions:
    """How to hydrate; the defaults suit a home server."""

    kind: str = "auto"  # only the database's servers of this kind
    libraries: tuple[str, ...] = ()  # titles or source ids; empty: every library
    concurrency: int = 1  # requests in flight at most
    rate: float | None = None  # requests per second at most; None: no cap
    verify_tls: bool = True
    #: items a request; None: the kind's (100 on Plex, 50 on Jellyfin/Emby), never more
    batch_size: int | None = None
    retry: RetryPolicy | None = None  # None: at most 6 attempts or 5 minutes per request
    timeouts: Timeouts | None = None  # None: 10 s to connect, 300 s for a slow People answer
    #: where the estimate of a large Jellyfin/Emby run's server time goes (None: the log, at INFO)
    notice: Callable[[str], object] | None = None


class Hydrator:
    """One hydration run of one database (each of its servers in turn, or the one at
    ``url``; one show with ``show``). ``run()`` returns a :class:`HydrateResult` or raises
    an :class:`importer.errors.ImporterError`."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        token: str,
        *,
        url: str | None = None,
        show: str | None = None,
        episodes: bool = False,
        options: HydrateOptions | None = None,
        progress: Progress | None = None,
        held_lock: DatabaseLock | None = None,
    ) -> None:
        """``held_lock``: the database's lock, which the caller holds already and keeps
        (``importer watch``)."""
        self.db_path = os.fspath(db_path)
        self.url = url.rstrip("/") if url else None
        self.show = show
        self.episodes = episodes
        self.options = options or HydrateOptions()
        self.progress = progress or Progress(mode="none")
        self._token = token
        self._pacer = RequestPacer(self.options.rate)
        self._db = Database(self.db_path)
        self._result = HydrateResult()
        self._cancel_signal: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._started = False
        self._held_lock = held_lock

    def cancel(self, signal_name: str = "SIGINT") -> None:
        """Stop now: requests in flight are dropped, committed batches are kept, and
        :meth:`run` raises ``Interrupted``. Call it on the loop that runs the hydration."""
        if self._cancel_signal is None:
            self._cancel_signal = signal_name
            if self._task is not None:
                self._task.cancel()

    async def run(self) -> HydrateResult:
        started = time.monotonic()
        self._task = asyncio.current_task()
        if self.options.concurrency < 1:
            raise errors.ConfigError("--concurrency must be at least 1")
        if self.url is not None:
            check_url(self.url)
        await asyncio.to_thread(_check_database, self.db_path)  # before the lock: a bad --db gets no .lock
        lock = self._held_lock or DatabaseLock(self.db_path)
        if self._held_lock is None:
            lock.acquire()
        try:
            await self._db.open()
            await self._hydrate()
            self._result.people_pruned = await self._db.call(prune_people)
            self._result.seconds = time.monotonic() - started
            return self._result
        except asyncio.CancelledError:
            if self._cancel_signal is None:
                raise
            error = self._interruption()
            self.progress.error(str(error))
            raise error from None
        except errors.ImporterError as exc:
            self.progress.error(str(exc))
            raise
        finally:
            self.progress.finish()
            await asyncio.to_thread(self._db.close)  # after the write in progress commits
            if self._held_lock is None:
                lock.release()

    def _interruption(self) -> errors.Interrupted:
        done = self._result.shows + self._result.episodes
        return errors.Interrupted(
            f"interrupted by {self._cancel_signal}: {done:,} items were hydrated and committed to "
            f"{self.db_path}; run the same command again to continue",
            signal=self._cancel_signal,
        )

    # ------------------------------------------------------------------ what to hydrate
    async def _hydrate(self) -> None:
        servers = await self._db.call(select.servers, self.options.kind)
        settings = ClientSettings(
            self._token,
            self.options.concurrency,
            self.options.verify_tls,
            self.options.retry,
            self.options.timeouts,
        )
        if self.url is not None:
            # which server: the one that answers there (one identity request)
            async with reach(self.url, servers, settings) as link:
                show = await self._find_show([link.server]) if self.show is not None else None
                await self._server(link, show)
            return
        show = None
        if self.show is not None:
            show = await self._find_show(servers)  # before any request: a wrong name costs none
            servers = [s for s in servers if s.id == show.library.server_id]
        for server in servers:  # all checked before the first request
            if not server.base_url:
                raise errors.ConfigError(
                    f"the database does not say where {server.describe()} is: give its URL "
                    "(importer hydrate URL --db ...)"
                )
        for server in servers:
            assert server.base_url is not None
            async with reach(server.base_url, [server], settings) as link:
                await self._server(link, show)

    async def _find_show(self, servers: Sequence[Server]) -> select.StoredShow:
        assert self.show is not None
        libraries = [
            lib
            for s in servers
            for lib in await self._db.call(select.libraries, s.id, self.options.libraries)
        ]
        return await self._db.call(select.find_show, libraries, self.show)

    async def _server(self, link: Link, show: select.StoredShow | None) -> None:
        server, db, progress = link.server, self._db, self.progress
        batches = Batches(db, link, self._pacer, progress, self._result, self.options.concurrency,
                          self.options.batch_size)  # fmt: skip
        try:
            if show is not None:
                self._start(server, [show.library.title])
                await one_show(batches, show, self.episodes, self._library_result(server, show.library.title))
                return
            libraries = await db.call(select.libraries, server.id, self.options.libraries)
            results = {lib.id: self._library_result(server, lib.title) for lib in libraries}
            self._start(server, [lib.title for lib in libraries])
            for lib in libraries:
                progress.set_total(lib.title, "shows", await db.call(select.count_pending, "show", lib.id))
            for lib in libraries:
                await batches.library(lib, "show", results[lib.id])
            if self.episodes:
                totals = [await db.call(select.count_pending, "episode", lib.id) for lib in libraries]
                self._estimate(batches, sum(totals))
                for lib, total in zip(libraries, totals, strict=True):
                    progress.set_total(lib.title, "episodes", total)
                for lib in libraries:
                    await batches.library(lib, "episode", results[lib.id])
            for lib in libraries:
                progress.library_done(lib.title)
        finally:
            stats = link.http.stats
            self._result.requests += stats.requests
            self._result.bytes += stats.bytes_received

    def _start(self, server: Server, titles: list[str]) -> None:
        if not self._started:
            self._started = True
            self.progress.start(server.name or server.machine_id, titles)

    def _library_result(self, server: Server, title: str) -> LibraryHydration:
        result = LibraryHydration(server=server.name or server.machine_id, kind=server.kind, title=title)
        self._result.libraries.append(result)
        return result

    def _estimate(self, batches: Batches, items: int) -> None:
        identity = batches.link.identity
        requests = -(-items // batches.size)
        notice = server_time_notice(identity.kind, identity.version, items, requests)
        if notice is not None:
            (self.options.notice or log.info)(notice)


def _check_database(path: str) -> None:
    """The database must exist: hydration completes what a sync stored."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        raise errors.UnusableDatabase(
            f"there is no importer database at {path} yet: run `importer sync URL --db {path}` "
            "first, then hydrate it",
            path=path,
        )
    check_database(path)


async def hydrate(
    db_path: str | os.PathLike[str] | Path,
    *,
    token: str,
    url: str | None = None,
    show: str | None = None,
    episodes: bool = False,
    options: HydrateOptions | None = None,
    progress: Progress | Callable[[ProgressEvent], object] | None = None,
) -> HydrateResult:
    """Fetch the cast, crew, genres, artwork and ratings that the sync's listings leave
    out, into the database at ``db_path`` (which a sync filled).

    ``url``: where the database's server is reached now (None: where it was synced
    from); it must be the same server (its id), or ``ConfigError``. ``show``: one show
    (a source_id or an exact title) now, whatever its etag; ``episodes``: also the
    episodes (guest stars, directors, writers, stills). Raises the importer's errors
    (``importer.errors``); cancelling the task keeps the batches already committed."""
    if progress is not None and not isinstance(progress, Progress):
        progress = Progress(mode="none", callback=progress)
    runner = Hydrator(
        db_path, token, url=url, show=show, episodes=episodes, options=options, progress=progress
    )
    return await runner.run()
