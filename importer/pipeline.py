"""discover → plan → fetch → decode and write in workers → commit: the entry point.

```
discover ─► plan ──────────► fetch ─────────► decode ─► write ─► commit
(server,    (plan_library;   (event loop,     (worker   (writer  (large
 libraries)  the listing      bounded,         process)  process) transactions)
             planner)         adaptive)
```

Everything that decides is pure and tested apart: what a run does with each library and
how it ends (:mod:`importer.plan`), which pages to fetch and when a listing is complete
(:mod:`importer.planner`). This module checks what it is pointed at, takes the
database's lock, starts the workers, finds the server's kind and its libraries; then
:class:`importer.run.Run` carries out the decisions: it fetches pages (``HttpClient``),
hands them to the workers, turns their typed messages (:mod:`importer.protocol`) into
the planner's events, moves the progress bar, and mirrors each commit in the cursor file.

The event loop does I/O only: decoding and writing happen in the worker processes, and
blocking pipe writes and cursor files in threads, so a host program's loop stays
responsive.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from importer import errors
from importer.http import HttpClient, RetryPolicy, Timeouts, redact_url
from importer.lock import DatabaseLock
from importer.progress import Progress
from importer.results import SyncResult
from importer.sources import Source, detect_source, make_source
from importer.store.preflight import check_database
from importer.targets import check_url, select_libraries
from importer.workers import WorkerPool, WriterSettings

if TYPE_CHECKING:
    from importer.run import Run

log = logging.getLogger(__name__)

#: a full listing (that also finds deletions by count) at least this often by default
VERIFY_AFTER_DAYS = 7.0


@dataclass
class SyncOptions:
    """How to sync; the defaults suit a home server."""

    kind: str = "auto"
    libraries: tuple[str, ...] = ()  # titles or ids; empty: every TV library
    full: bool = False  # list every item, even when an incremental run would do
    allow_mass_delete: bool = False  # let a sweep delete more than 10% (and 50 rows) of a library
    dry_run: bool = False  # delete nothing; report what a sweep would delete
    verify_after_days: float = VERIFY_AFTER_DAYS  # an incremental run becomes full after this
    concurrency: int = 4  # requests in flight at most
    page_size: int | None = None  # None: what suits the server
    restart: bool = False  # discard an unfinished run instead of resuming it
    verify_tls: bool = True
    retry: RetryPolicy | None = None  # None: at most 6 attempts or 5 minutes per request
    timeouts: Timeouts | None = None  # None: 10 s to connect, 60 s between bytes, 300 s a page
    #: pages fetched but not yet written, at most (bounds memory)
    max_outstanding_pages: int = 12
    #: the writer's settings (``WriterSettings`` fields: cache_mb, commit_rows, commit_interval)
    writer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunTally:
    """A run's work so far: rows written or deleted, requests made."""

    rows: int
    requests: int


class Importer:
    """One sync run against one server."""

    def __init__(
        self,
        url: str,
        db_path: str | Path,
        token: str,
        options: SyncOptions | None = None,
        progress: Progress | None = None,
        *,
        held_lock: DatabaseLock | None = None,
    ) -> None:
        """``held_lock``: the database's lock, which the caller holds already and keeps
        (``importer watch`` holds it for its whole life and runs its catch-ups inside)."""
        self.url = url.rstrip("/")
        self.db_path = str(db_path)
        self._token = token
        self.options = options or SyncOptions()
        self.progress = progress or Progress(mode="none")
        self._cancel_signal: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._run: Run | None = None  # the run, once the server is discovered
        self._held_lock = held_lock

    def cancel(self, signal_name: str = "SIGINT") -> None:
        """Stop cleanly: no new requests; pages already fetched are written and committed,
        the run is recorded as interrupted, and :meth:`run` raises ``Interrupted``.

        Call it on the loop that runs the import (from another thread:
        ``loop.call_soon_threadsafe(importer.cancel)``)."""
        if self._cancel_signal is not None:
            return
        self._cancel_signal = signal_name
        if self._run is not None:
            self._run.cancel()
        elif self._task is not None:
            self._task.cancel()  # still discovering: nothing to commit yet

    @property
    def cancelling(self) -> bool:
        return self._cancel_signal is not None

    @property
    def sliceable(self) -> bool:
        """Whether a stop now loses nothing that a later run must list again: every library
        still running lists in full, and a full listing resumes page by page from the
        cursor (an incremental one starts over). False until the run is planned."""
        return self._run is not None and self._run.sliceable

    @property
    def tally(self) -> RunTally:
        """What the run has done so far: also there when it was stopped or failed."""
        run = self._run
        if run is None:
            return RunTally(0, 0)
        return RunTally(
            rows=sum(r.written + r.deleted for r in run.results),
            requests=run.http.stats.requests,
        )

    @property
    def cancel_signal(self) -> str | None:
        """The signal that cancelled the run ("SIGINT", "SIGTERM"), None while it runs."""
        return self._cancel_signal

    async def run(self) -> SyncResult:
        started = time.monotonic()
        check_url(self.url)
        await asyncio.to_thread(check_database, self.db_path)  # before the lock: a bad --db gets no .lock
        self._task = asyncio.current_task()
        lock = self._held_lock or DatabaseLock(self.db_path)
        if self._held_lock is None:
            lock.acquire()
        try:
            return await self._sync(started)
        except asyncio.CancelledError:
            if self._cancel_signal is None:
                raise
            error = self.interruption(0)  # cancelled while discovering
            self.progress.error(str(error))
            raise error from None
        except errors.ImporterError as exc:
            self.progress.error(str(exc))
            raise
        finally:
            self.progress.finish()
            if self._held_lock is None:
                lock.release()

    async def _sync(self, started: float) -> SyncResult:
        loop = asyncio.get_running_loop()
        pool = WorkerPool(WriterSettings(self.db_path, **self.options.writer))
        # Workers start while discovery talks to the server (starting a process from a
        # large one takes a while: not on the loop).
        starting = loop.run_in_executor(None, pool.start, loop)
        run: Run | None = None
        try:
            source, http, probed = await self._connect()
            async with http:
                discovering = asyncio.ensure_future(source.discover(http))
                # what follows discovery is imported while the server answers (off the loop)
                run_module = await loop.run_in_executor(None, importlib.import_module, "importer.run")
                server, libraries = await discovering
                libraries = select_libraries(libraries, self.options.libraries)
                await starting
                run = self._run = run_module.Run(self, pool, source, http, server, libraries)
                if self._cancel_signal is not None:
                    run.cancel()
                if libraries:
                    await run.sync()
                stats = http.stats
            await pool.stop()
        except BaseException as exc:
            await self._fail(pool, starting, run, exc)
            raise
        finally:
            if run is not None:
                await run.close()
        return SyncResult(
            server=server,
            libraries=run.results,
            requests=stats.requests + probed[0],
            bytes=stats.bytes_received + probed[1],
            seconds=time.monotonic() - started,
            commits=run.commits,
            peak_rss_kb={"main": _peak_rss_kb(), **pool.peak_rss_kb},
            implementations=dict(pool.implementations),
        )

    async def _fail(
        self, pool: WorkerPool, starting: asyncio.Future[None], run: Run | None, exc: BaseException
    ) -> None:
        """Record every unfinished library's run as failed (with what the writer holds), unless
        the writer is what failed; then stop the workers (once they are all started)."""
        if run is not None:
            run.cancel_fetches()
            if isinstance(exc, errors.ImporterError) and not isinstance(exc, errors.Interrupted):
                await run.record_failure(exc)
        with contextlib.suppress(Exception):
            await asyncio.shield(starting)
        await pool.stop(timeout=5)

    async def _connect(self) -> tuple[Source, HttpClient, tuple[int, int]]:
        """The source and an HTTP client for it; the requests and bytes kind detection took."""
        opts = self.options
        # What the database and the cursor file record: never userinfo or a token parameter.
        shown_url = redact_url(self.url)
        probed = (0, 0)
        kind = opts.kind if opts.kind != "auto" else _known_kind(self.db_path, shown_url)
        if kind != "auto":
            source = make_source(kind, shown_url)
        else:
            # A wrong URL should fail fast here, not after a full retry budget.
            async with HttpClient(
                self.url, verify_tls=opts.verify_tls, retry=RetryPolicy(attempts=2), timeouts=opts.timeouts
            ) as probe:
                source = await detect_source(probe, shown_url)
            probed = (probe.stats.requests, probe.stats.bytes_received)
        if opts.page_size:
            source.page_size = opts.page_size
        http = HttpClient(
            self.url,
            headers=source.auth_headers(self._token),
            concurrency=opts.concurrency,
            verify_tls=opts.verify_tls,
            retry=opts.retry,
            timeouts=opts.timeouts,
        )
        return source, http, probed

    def interruption(self, committed: int) -> errors.Interrupted:
        """The error a cancelled run raises, once ``committed`` items are committed."""
        return errors.Interrupted(
            f"interrupted by {self._cancel_signal}: {committed:,} items were committed to {self.db_path}; "
            "run the same command again to continue",
            signal=self._cancel_signal,
        )


def _known_kind(db_path: str, url: str) -> str:
    """The kind of the server this database last synced from ``url``, or "auto": a nightly
    run need not ask the server again what it is."""
    from importer.store.queries import known_kind

    return known_kind(db_path, url)


def _peak_rss_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


async def sync(
    url: str,
    db_path: str | Path,
    *,
    token: str,
    options: SyncOptions | None = None,
    progress: Progress | Callable[[Any], None] | None = None,
) -> SyncResult:
    """Import the TV libraries of the server at ``url`` into the SQLite file ``db_path``.

    Safe to await inside another program's event loop: all CPU work runs in worker
    processes. ``progress`` is a :class:`Progress` or a callable that receives each
    :class:`importer.progress.ProgressEvent`.
    """
    if progress is not None and not isinstance(progress, Progress):
        progress = Progress(mode="none", callback=progress)
    return await Importer(url, db_path, token, options, progress).run()


__all__ = ["Importer", "RunTally", "SyncOptions", "sync"]
