"""discover → plan → fetch → decode and write in workers → commit.

```
discover ─► plan ──────────► fetch ─────────► decode ─► write ─► commit
(server,    (3 streams per   (event loop,     (worker   (writer  (large
 libraries)  library; first   bounded,         process)  process) transactions)
             pages at once)   adaptive)
```

Every stream of every library asks for its first page at once. The first page
tells the stream's total; the rest of its pages are planned from it and fan out
under the HTTP client's in-flight limit, while a backpressure limit bounds the
pages fetched but not yet written. A page that holds fewer items than asked (a
server that caps its page size) gets a follow-up request for the rest.

The first page of a listing counts it, and so does its last page (every Plex
page carries the count; on Jellyfin the last page asks for it). The listing is
*complete* when its unique ids equal both counts (Plex: and the shows' summed
``leafCount`` equals the episode total). Otherwise the library changed under
us, and the stream is listed again, a few times at most.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importer import errors
from importer.cursor import cursor_path, read_cursor, write_cursor
from importer.http import HttpClient, HttpStats, RetryPolicy, Timeouts, redact_url
from importer.lock import DatabaseLock
from importer.progress import Progress
from importer.sources import detect_source, make_source
from importer.sources.base import STREAMS, LibraryInfo, ServerInfo, Source, StreamKind
from importer.store.preflight import check_database
from importer.targets import check_url, known_kind, select_libraries
from importer.workers import WorkerPool, WriterSettings

log = logging.getLogger(__name__)

#: re-list a stream whose listing drifted at most this many times
MAX_LISTINGS = 3
#: a full listing (that also finds deletions by count) at least this often by default
VERIFY_AFTER_DAYS = 7.0
_EXIT_CODES = {"done": 0, "dry-run": 0, "incomplete": 75, "stopped": 3}
_SEVERITY = (0, 75, 3, 1)


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
    decoders: int = 1
    restart: bool = False  # discard an unfinished run instead of resuming it
    verify_tls: bool = True
    retry: RetryPolicy | None = None  # None: at most 6 attempts or 5 minutes per request
    timeouts: Timeouts | None = None  # None: 10 s to connect, 60 s between bytes, 300 s a page
    #: pages fetched but not yet written, at most (bounds memory)
    max_outstanding_pages: int = 12
    writer: dict[str, Any] = field(default_factory=dict)


@dataclass
class LibraryResult:
    title: str
    source_id: str
    status: str = "running"  # done | incomplete | stopped | dry-run | interrupted | failed
    mode: str = "full"  # or "incremental"
    totals: dict[str, int] = field(default_factory=dict)
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    complete: bool = False
    reason: str | None = None
    unlinked: int = 0
    #: per stream: (source_id, name) of the rows the server no longer lists (--dry-run, guard)
    gone: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass
class SyncResult:
    server: ServerInfo
    libraries: list[LibraryResult]
    requests: int
    bytes: int
    seconds: float
    commits: int
    #: peak resident memory of each process of the run, in kB ("main", "writer", "decoder-…")
    peak_rss_kb: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The worst library's: 0 done; 75 incomplete (the library kept changing while it
        was read: rows are kept, a later run completes it); 3 stopped by the mass-delete
        guard; 1 anything else."""
        codes = [_EXIT_CODES.get(lib.status, 1) for lib in self.libraries]
        return max(codes, key=_SEVERITY.index, default=0)


@dataclass
class _Stream:
    lib: int
    library: LibraryInfo
    kind: StreamKind
    page_size: int
    #: a delta listing: only items changed since this server time (None: every item)
    since: int | None = None
    server_count: int | None = None  # a delta stream's count probe: items on the server
    #: listing bare ids to find what is gone (a full listing follows if they fall short)
    ids_only: bool = False
    listing: int = 1
    total_before: int | None = None
    total_after: int | None = None
    planned_to: int = 0  # offsets below this are scheduled
    outstanding: int = 0  # requests whose page summary has not arrived
    items: int = 0
    leaf_total: int = 0
    finished: bool = False
    complete: bool = False
    #: this run listed every item of the stream, verified complete: a sweep may follow
    swept: bool = False
    #: what an interrupted run had committed of this stream: {"total", "committed", ...}
    resume: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Page:
    stream: _Stream
    offset: int
    size: int
    listing: int
    probe: bool = False  # a delta stream's count of the whole listing, no items
    with_total: bool = False
    ids_only: bool = False  # a page of an id-only listing


class Importer:
    """One sync run against one server."""

    def __init__(
        self,
        url: str,
        db_path: str | Path,
        token: str,
        options: SyncOptions | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.db_path = str(db_path)
        self._token = token
        self.options = options or SyncOptions()
        self.progress = progress or Progress(mode="none")
        self._pages: dict[int, _Page] = {}
        self._next_page_id = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        self._commits = 0
        self._peak_rss_kb: dict[str, int] = {}
        self._probe_stats: HttpStats | None = None
        self._cancel_signal: str | None = None
        self._cancelled = asyncio.Event()
        self._streaming = False
        self._task: asyncio.Task[Any] | None = None
        self._sent: set[int] = set()  # pages handed to the workers, not yet written
        self._progress: dict[int, dict[str, Any]] = {}  # per library: as last committed
        self._server_date: float | None = None  # the server's clock at the run's start
        self._writer_failed = False
        # one thread, so cursor files are written in commit order, off the event loop (fsync)
        self._cursor_writes = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="importer-cursor")
        self._retried: set[tuple[int, int, int, int]] = set()  # pages fetched again after a bad body

    def cancel(self, signal_name: str = "SIGINT") -> None:
        """Stop cleanly: no new requests; pages already fetched are written and committed,
        the run is recorded as interrupted, and :meth:`run` raises ``Interrupted``.

        Call it on the loop that runs the import (from another thread:
        ``loop.call_soon_threadsafe(importer.cancel)``)."""
        if self._cancel_signal is not None:
            return
        self._cancel_signal = signal_name
        self._cancelled.set()
        if not self._streaming and self._task is not None:
            self._task.cancel()  # still discovering: nothing to commit yet

    @property
    def cancelling(self) -> bool:
        return self._cancel_signal is not None

    async def run(self) -> SyncResult:
        started = time.monotonic()
        check_url(self.url)
        await asyncio.to_thread(check_database, self.db_path)  # before the lock: a bad --db gets no .lock
        self._task = asyncio.current_task()
        lock = DatabaseLock(self.db_path)
        lock.acquire()
        try:
            return await self._run(started)
        finally:
            lock.release()

    async def _run(self, started: float) -> SyncResult:
        # Workers start first: they import their modules while discovery talks to the server.
        pool = WorkerPool(WriterSettings(self.db_path, **self.options.writer), decoders=self.options.decoders)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pool.start, loop)  # forking a large process takes a while
        self._pool = pool
        try:
            source, http = await self._connect()
            async with http:
                server, libraries = await source.discover(http)
                libraries = select_libraries(libraries, self.options.libraries)
                results = [LibraryResult(lib.title, lib.source_id) for lib in libraries]
                if libraries:
                    await self._import(source, http, server, libraries, results)
                stats = http.stats
            await pool.stop()
        except BaseException as exc:
            for task in self._tasks:
                task.cancel()
            if isinstance(exc, errors.ImporterError) and not isinstance(exc, errors.Interrupted):
                await self._record_failure(exc)
            await pool.stop(timeout=5)
            if isinstance(exc, asyncio.CancelledError) and self._cancel_signal is not None:
                interrupted = self._interrupted()  # cancelled while discovering
                self.progress.error(str(interrupted))
                raise interrupted from None
            if isinstance(exc, errors.ImporterError):
                self.progress.error(str(exc))
            raise
        finally:
            self.progress.finish()
            # the last cursor file is in place before the run returns
            await loop.run_in_executor(None, self._cursor_writes.shutdown)
        self._peak_rss_kb = pool.peak_rss_kb
        return SyncResult(
            server=server,
            libraries=results,
            requests=stats.requests + (self._probe_stats.requests if self._probe_stats else 0),
            bytes=stats.bytes + (self._probe_stats.bytes if self._probe_stats else 0),
            seconds=time.monotonic() - started,
            commits=self._commits,
            peak_rss_kb={"main": _peak_rss_kb(), **self._peak_rss_kb},
        )

    async def _connect(self) -> tuple[Source, HttpClient]:
        opts = self.options
        # What the database and the cursor file record: never userinfo or a token parameter.
        shown_url = redact_url(self.url)
        kind = opts.kind if opts.kind != "auto" else known_kind(self.db_path, shown_url)
        if kind != "auto":
            source = make_source(kind, shown_url)
        else:
            # A wrong URL should fail fast here, not after a full retry budget.
            async with HttpClient(
                self.url, verify_tls=opts.verify_tls, retry=RetryPolicy(attempts=2), timeouts=opts.timeouts
            ) as probe:
                source = await detect_source(probe, shown_url)
            self._probe_stats = probe.stats  # detection's requests count too
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
        return source, http

    # ------------------------------------------------------------------ the import
    async def _import(
        self,
        source: Source,
        http: HttpClient,
        server: ServerInfo,
        libraries: list[LibraryInfo],
        results: list[LibraryResult],
    ) -> None:
        self._source, self._http, self._results = source, http, results
        self._room = asyncio.Semaphore(self.options.max_outstanding_pages)
        pool = self._pool
        self._server = server
        opts = self.options
        pool.control(
            "open",
            (server.kind, server.machine_id, server.name, server.base_url),
            [(i, lib.source_id, lib.title) for i, lib in enumerate(libraries)],
            opts.full or not source.supports_delta,
            not opts.restart,
            opts.verify_after_days * 86400,
            time.time(),
        )
        _, _, self._run_ids, resumed, plans = await self._expect("opened")
        self._check_cursor(libraries, resumed)
        for i, (mode, _) in plans.items():
            results[i].mode = mode
        self._streams = [
            _Stream(i, lib, kind, source.page_size, since=plans[i][1], resume=resumed.get(i, {}).get(kind))
            for i, lib in enumerate(libraries)
            for kind in STREAMS
        ]
        self.progress.start(server.name, [lib.title for lib in libraries])
        self._streaming = True
        for stream in self._streams:
            if stream.since is not None:
                # changes since the watermark, and a count to tell whether anything is gone
                self._schedule(stream, 0, 0, with_total=True, probe=True)
                self._schedule(stream, 0, stream.page_size, with_total=True)
            elif stream.resume and stream.resume.get("total") is not None:
                self._schedule(stream, 0, 0, with_total=True)  # only count: has it changed?
            else:
                stream.resume = None
                self._schedule(stream, 0, stream.page_size, with_total=True)
        await self._event_loop(len(libraries))
        pool.control("indexes")
        await self._expect("indexed")

    async def _expect(self, tag: str) -> tuple[Any, ...]:
        while True:
            event = await self._pool.events.get()
            self._check_fatal(event)
            if event[0] == tag:
                return event

    def _check_fatal(self, event: tuple[Any, ...]) -> None:
        if event[0] == "fatal":
            self._writer_failed = True
            raise _error(event[1], event[2])
        if event[0] == "exited":
            self._writer_failed = True
            raise errors.StoreError(
                "the writer process stopped unexpectedly; run the same command again to resume"
            )

    async def _event_loop(self, n_libraries: int) -> None:
        finished = 0
        while finished < n_libraries:
            if self._failure is not None:
                raise self._failure
            if self._cancelled.is_set():
                await self._wind_down()
                raise self._interrupted()
            try:
                event = await asyncio.wait_for(self._pool.events.get(), timeout=0.2)
            except TimeoutError:
                continue
            self._check_fatal(event)
            tag = event[0]
            if tag == "decoded":
                self._on_decoded(*event[1:])
            elif tag == "written":
                self._on_written(*event[1:])
            elif tag == "committed":
                self._on_committed(event[2], event[3])
            elif tag == "counted":
                self._on_counted(*event[1:])
            elif tag == "error":
                self._on_bad_page(*event[1:])
            elif tag == "finished":
                self._on_finished(*event[1:])
                finished += 1

    async def _wind_down(self, timeout: float = 60.0) -> None:
        """After a cancel: drop what is not fetched yet, let what is fetched be written, and
        record every unfinished library's run as interrupted, all committed."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        deadline = time.monotonic() + timeout
        while self._sent and time.monotonic() < deadline:
            try:
                event = await asyncio.wait_for(self._pool.events.get(), timeout=0.5)
            except TimeoutError:
                continue
            self._check_fatal(event)
            if event[0] == "written":
                self._on_written(*event[1:])
        stats = self._http.stats
        unfinished = [i for i, r in enumerate(self._results) if r.status == "running"]
        for lib in unfinished:
            result = self._results[lib]
            result.status, result.reason = "interrupted", f"interrupted by {self._cancel_signal}"
            counts = {"requests": stats.requests, "bytes": stats.bytes}
            self._pool.control("finish", lib, result.status, result.reason, counts, [], {}, None)
        for _ in unfinished:
            await self._expect("finished")

    async def _record_failure(self, exc: errors.ImporterError, timeout: float = 10.0) -> None:
        """Record every unfinished library's run as failed, with its reason; what the writer
        holds is committed with it. A rerun resumes a full run, or starts an incremental
        one again from the same watermark."""
        results = getattr(self, "_results", None)
        if not results or self._writer_failed:
            return  # nothing started yet, or nobody left to write it down
        await asyncio.gather(*self._tasks, return_exceptions=True)
        stats = self._http.stats
        counts = {"requests": stats.requests, "bytes": stats.bytes}
        unfinished = [i for i, r in enumerate(results) if r.status == "running"]
        for lib in unfinished:
            results[lib].status, results[lib].reason = "failed", str(exc)
            self._pool.control("finish", lib, "failed", str(exc), counts, [], {}, None)
        try:
            async with asyncio.timeout(timeout):
                for _ in unfinished:
                    await self._expect("finished")
        except (TimeoutError, errors.ImporterError) as failure:
            log.warning("could not record the failed run: %s", failure)

    def _interrupted(self) -> errors.Interrupted:
        written = sum(r.written + r.unchanged for r in getattr(self, "_results", []))
        return errors.Interrupted(
            f"interrupted by {self._cancel_signal}: {written:,} items were committed to {self.db_path}; "
            "run the same command again to continue",
            signal=self._cancel_signal,
        )

    # ------------------------------------------------------------------ planning
    def _schedule(
        self, stream: _Stream, offset: int, size: int, *, with_total: bool = False, probe: bool = False
    ) -> None:
        if self._cancelled.is_set():
            return
        page_id = self._next_page_id
        self._next_page_id += 1
        self._pages[page_id] = _Page(
            stream, offset, size, stream.listing, probe, with_total, stream.ids_only and not probe
        )
        stream.outstanding += 1
        if not probe:
            stream.planned_to = max(stream.planned_to, offset + size)
        task = asyncio.create_task(self._fetch(page_id, with_total))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()

    async def _fetch(self, page_id: int, with_total: bool) -> None:
        page = self._pages[page_id]
        stream = page.stream
        request = self._source.page_request(
            stream.library,
            stream.kind,
            page.offset,
            page.size,
            with_total=with_total,
            since=None if page.probe else stream.since,
            ids_only=page.ids_only,
        )
        await self._room.acquire()
        try:
            fetched = await self._http.fetch(request)
        except BaseException:
            self._room.release()
            raise
        header = (page_id, stream.lib, self._source.kind, stream.kind, stream.library.source_id, page.offset,
                  with_total, fetched.content_encoding, page.ids_only)  # fmt: skip
        if self._server_date is None:
            self._server_date = fetched.server_date
        self._sent.add(page_id)
        self._pool.send_page(header, fetched.body)

    def _on_decoded(self, page_id: int, offset: int, count: int, total: int | None, leaf_total: int) -> None:
        page = self._pages[page_id]
        stream = page.stream
        stream.outstanding -= 1
        if page.probe:
            stream.server_count = total
            if stream.outstanding == 0:
                self._close_listing(stream)
            return
        stream.items += count
        stream.leaf_total += leaf_total
        if total is not None and stream.total_before is not None:
            stream.total_after = total  # a later count: Plex pages all carry one
        if stream.total_before is None and total is not None:
            if stream.resume is not None:
                self._resume_listing(stream, total)
            else:
                stream.total_before = total
                self.progress.set_total(stream.library.title, stream.kind, total)
                if 0 < count < page.size and count < total:
                    stream.page_size = count  # the server caps its pages: ask for what it gives
                self._plan(stream, total)
        end = offset + count
        if 0 < count < page.size and end < (stream.total_before or 0):
            self._schedule(stream, end, page.size - count)  # a short page: fetch the rest
        if stream.outstanding == 0:
            if stream.total_after is None:  # one page: one consistent answer
                stream.total_after = stream.total_before
            self._close_listing(stream)

    def _on_bad_page(self, page_id: int, name: str, message: str) -> None:
        """A page the decoder refused (malformed or truncated JSON, an HTML page, wrong
        types): a proxy or an overloaded server may have mangled it, so it is fetched once
        more; the same failure twice stops the run."""
        page = self._pages.pop(page_id, None)
        if page is None:
            raise _error(name, message)
        self._sent.discard(page_id)
        self._room.release()
        stream = page.stream
        stream.outstanding -= 1  # and one more for the new request: never 0 in between
        key = (stream.lib, STREAMS.index(stream.kind), page.listing, page.offset)
        if key in self._retried:
            raise _error(name, message)
        self._retried.add(key)
        log.warning("%s; fetching that page again", message)
        self._schedule(stream, page.offset, page.size, with_total=page.with_total, probe=page.probe)

    def _resume_listing(self, stream: _Stream, total: int) -> None:
        """Continue an interrupted run's listing: fetch only what it had not committed,
        if the server still counts what it counted then. Otherwise offsets have shifted:
        list the stream again (its rows are upserts: what is unchanged costs little)."""
        state, stream.resume = stream.resume or {}, None
        if total != state.get("total"):
            self._relist(stream)
            return
        stream.total_before = total
        stream.leaf_total += int(state.get("leaf_total", 0))
        committed = [(int(a), int(b)) for a, b in state.get("committed", [])]
        self.progress.set_total(stream.library.title, stream.kind, total)
        self.progress.advance(stream.library.title, stream.kind, sum(b - a for a, b in committed))
        gaps = _gaps(committed, total)
        for gap_start, gap_end in gaps:
            for offset in range(gap_start, gap_end, stream.page_size):
                size = min(stream.page_size, gap_end - offset)
                last = gap_end == gaps[-1][1] and offset + size >= gap_end
                self._schedule(stream, offset, size, with_total=last)

    def _relist(self, stream: _Stream) -> None:
        """List a stream again from the start, forgetting what its last listing saw."""
        stream.listing += 1
        stream.swept = False
        stream.page_size = (self._source.ids_page_size if stream.ids_only else None) or self._source.page_size
        stream.total_before = stream.total_after = None
        stream.planned_to = stream.items = stream.leaf_total = 0
        self._pool.control("relist", stream.lib, stream.kind, stream.listing)
        self.progress.restart_stream(stream.library.title, stream.kind)
        self._schedule(stream, 0, stream.page_size, with_total=True)

    def _plan(self, stream: _Stream, total: int) -> None:
        """Schedule the rest of a listing. Its last page also counts the listing again
        (free on Plex, one COUNT on Jellyfin), so no separate probe costs a round trip."""
        offset = stream.planned_to
        while offset < total:
            # a delta listing needs no second count: its probe decides what follows
            last = offset + stream.page_size >= total and stream.since is None
            self._schedule(stream, offset, stream.page_size, with_total=last)
            offset += stream.page_size

    def _close_listing(self, stream: _Stream) -> None:
        """Every page is in: ask the writer how many distinct ids the listing holds (it
        counts them with the rows, so the count survives an interrupted run)."""
        self._pool.control("count", stream.lib, stream.kind)

    def _on_counted(self, lib: int, kind: str, unique: int, stored: int) -> None:
        stream = next(s for s in self._streams if s.lib == lib and s.kind == kind)
        if stream.since is not None:
            # Changes are in. Count arithmetic: the library holds as many items as the
            # server counts, or something is gone (or was missed): list every item then,
            # and sweep what the complete listing proves gone.
            if stored == stream.server_count:
                stream.complete = stream.finished = True
                self._maybe_finish_library(stream.lib)
            else:
                log.info("%s: %d stored, %s on the server: listing all", kind, stored, stream.server_count)
                stream.since = None
                stream.ids_only = self._source.ids_page_size is not None
                self._relist(stream)
            return
        stream.complete = unique == stream.total_before == stream.total_after
        stream.swept = stream.complete
        if not stream.complete and stream.ids_only:
            # ids the library does not hold: the changes missed something; read it all
            stream.ids_only = False
            self._relist(stream)
            return
        if stream.complete or stream.listing >= MAX_LISTINGS:
            stream.finished = True
            self._maybe_finish_library(stream.lib)
        else:  # the library changed while we read it: offsets shifted, so list it again
            self._relist(stream)

    def _on_committed(self, commits: int, progress: dict[int, dict[str, Any]]) -> None:
        """The writer committed: mirror the progress it stored in the cursor file."""
        self._commits = commits
        self._progress.update(progress)
        written = self._cursor_writes.submit(
            write_cursor,
            cursor_path(self.db_path),
            {
                "database": os.path.abspath(self.db_path),
                "server": {"kind": self._server.kind, "machine_id": self._server.machine_id,
                           "base_url": self._server.base_url},
                "watermark_candidate": self._server_date,
                "committed_at": int(time.time()),
                "libraries": {
                    self._results[lib].source_id: {
                        "title": self._results[lib].title, "run_id": self._run_ids[lib],
                        "mode": self._results[lib].mode, "streams": streams,
                    }
                    for lib, streams in self._progress.items()
                },
            },
        )  # fmt: skip
        written.add_done_callback(_cursor_written)

    def _check_cursor(self, libraries: list[LibraryInfo], resumed: dict[int, Any]) -> None:
        """The cursor file should agree with the database; if not, the database wins."""
        try:
            cursor = read_cursor(cursor_path(self.db_path))
        except errors.CursorError as exc:
            log.warning("%s", exc)
            return
        if cursor is None or not resumed:
            return
        for index, streams in resumed.items():
            mirrored = cursor.get("libraries", {}).get(libraries[index].source_id, {}).get("streams")
            if mirrored != streams:
                log.warning(
                    "the cursor file disagrees with the database about %r; resuming from the database",
                    libraries[index].title,
                )

    def _on_written(
        self, page_id: int, lib: int, stream_kind: str, count: int, written: int, unchanged: int
    ) -> None:
        page = self._pages.pop(page_id)
        self._sent.discard(page_id)
        self._room.release()
        result = self._results[lib]
        result.written += written
        result.unchanged += unchanged
        if page.listing == page.stream.listing:
            self.progress.advance(result.title, stream_kind, count)
        self._maybe_finish_library(lib)

    def _maybe_finish_library(self, lib: int) -> None:
        streams = [s for s in self._streams if s.lib == lib]
        result = self._results[lib]
        if result.status != "running" or not all(s.finished for s in streams):
            return
        if any(p.stream.lib == lib for p in self._pages.values()):
            return  # pages still on their way to the database
        by_kind = {s.kind: s for s in streams}
        shows, episodes = by_kind["shows"], by_kind["episodes"]
        # Plex: the shows' leafCount sums to the episodes' total (both listed in full)
        leaves_ok = (
            self._source.kind != "plex"
            or not (shows.swept and episodes.swept)
            or shows.leaf_total == episodes.total_after
        )
        result.complete = all(s.complete for s in streams) and leaves_ok
        result.totals = {
            s.kind: (s.server_count if s.since is not None else s.total_after) or 0 for s in streams
        }
        result.status = "done" if result.complete else "incomplete"
        if not result.complete:
            result.reason = "the library kept changing while it was listed; run again to complete it"
        # only a library verified complete is swept, and only the streams listed in full
        sweep = [s.kind for s in streams if s.swept] if result.complete else []
        policy = {"allow_mass_delete": self.options.allow_mass_delete, "dry_run": self.options.dry_run}
        self.progress.library_done(result.title)
        stats = self._http.stats
        self._pool.control(
            "finish", lib, result.status, result.reason, {"requests": stats.requests, "bytes": stats.bytes},
            sweep, policy, self._server_date,
        )  # fmt: skip

    def _on_finished(
        self,
        lib: int,
        unlinked: int,
        status: str,
        reason: str | None,
        deleted: int,
        gone: dict[str, list[tuple[int, str, str]]],
    ) -> None:
        result = self._results[lib]
        result.unlinked, result.deleted, result.reason = unlinked, deleted, reason
        result.gone = {
            stream: [(sid, name) for _, sid, name in rows] for stream, rows in gone.items() if rows
        }
        result.status = "dry-run" if status == "stopped" and self.options.dry_run else status


def _cursor_written(future: concurrent.futures.Future[None]) -> None:
    # The database holds the truth; a cursor file that could not be written is a warning.
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("could not write the cursor file: %s", exc)


def _gaps(committed: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    """The ranges of [0, total) that no committed range covers."""
    gaps, at = [], 0
    for start, end in sorted(committed):
        if start > at:
            gaps.append((at, min(start, total)))
        at = max(at, end)
    if at < total:
        gaps.append((at, total))
    return [(a, b) for a, b in gaps if a < b]


def _peak_rss_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _error(name: str, message: str) -> errors.ImporterError:
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.ImporterError)):
        cls = errors.ImporterError
    return cls(message)


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


__all__ = ["Importer", "LibraryResult", "SyncOptions", "SyncResult", "sync"]
