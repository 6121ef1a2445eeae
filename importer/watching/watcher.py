"""``importer watch``: keep a database live from a server's change feed.

```
lock ─► subscribe ─► catch up ─► ready ─► follow: notices ─► debounce ─► batch ─► ...
          (feed,       (incremental             │
           buffering)   sync, held lock)        └─ feed lost ─► backoff ─► subscribe ─► catch up
```

- **Start.** The feed is subscribed first and what it says is buffered; then an
  incremental sync (a *catch-up*, the same run as ``importer sync``) brings the database
  up to date; then the buffer is applied. Nothing that changes in between is lost.
- **Batches.** Notices are gathered for ``debounce_s`` and applied in batches
  (:mod:`importer.watching.apply`). Batches never move the watermark and write no ``runs``
  row: only a catch-up that ends ``done`` does, so a missed notice is still found.
- **Catch-ups** run after every (re)connection, every ``poll_minutes`` when no feed can
  be used (Jellyfin with an API key, a server that refuses its feed), when a new TV
  library appears (checked every ``library_check_minutes``), when the last verification
  is older than ``verify_after_days`` (the run is then full), and when a batch would
  delete more than the mass-delete guard allows. Emby's catch-up is a full Etag sweep:
  at most one per ``poll_minutes``.
- **Idle**, it makes no HTTP request but the library check; keepalives travel on the socket.
- It holds the database's lock all along (a cron ``sync`` would exit 4), and stops
  cleanly on :meth:`Watcher.cancel`: a batch being written is committed, a catch-up
  commits what it fetched, and :meth:`run` raises ``Interrupted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from importer import errors
from importer.http import HttpClient, RetryPolicy, redact_url
from importer.lock import DatabaseLock
from importer.model import LibraryInfo, RunStatus
from importer.pipeline import Importer, SyncOptions
from importer.progress import Progress
from importer.results import SyncResult
from importer.sources import Source, detect_source, make_source
from importer.store.preflight import check_database
from importer.targets import check_url, select_libraries
from importer.watching.apply import Applier, WatchedLibrary
from importer.watching.changes import ItemChange, Pending
from importer.watching.events import AnyEvent, Batch, CaughtUp, Notice, Ready
from importer.watching.feeds import feed_spec, follow

log = logging.getLogger(__name__)

NEVER = math.inf


@dataclass
class WatchOptions:
    """How to watch; ``sync`` holds what a catch-up shares with ``importer sync``."""

    sync: SyncOptions = field(default_factory=SyncOptions)
    #: without a usable feed: a catch-up this often (and Emby's catch-ups at most this often)
    poll_minutes: float = 5.0
    #: notices are gathered this long after the first one before they are applied
    debounce_s: float = 0.5
    #: items per batch at most
    batch_size: int = 200
    #: look for new TV libraries this often while a feed is followed (one discovery)
    library_check_minutes: float = 60.0
    #: reconnection delays: jittered, doubling from ``reconnect_min_s`` up to this
    reconnect_max_s: float = 60.0
    reconnect_min_s: float = 1.0
    #: hydrate what batches and catch-ups changed (``importer hydrate``)
    hydrate: bool = False


class _Backoff:
    """Jittered exponential delays; reset once a connection has held."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most, self.failures = first, most, 0

    def next(self) -> float:
        delay = min(self.most, self.first * 2**self.failures)
        self.failures += 1
        return float(delay * random.uniform(0.5, 1.0))

    def reset(self) -> None:
        self.failures = 0


class Watcher:
    """Keeps one database live from one server (``run()`` until cancelled)."""

    def __init__(
        self,
        url: str,
        db_path: str,
        token: str,
        options: WatchOptions | None = None,
        *,
        on_event: Callable[[AnyEvent], None] = lambda event: None,
        progress: Callable[[], Progress] = lambda: Progress(mode="none"),
    ) -> None:
        self.url = url.rstrip("/")
        self.db_path = str(db_path)
        self._token = token
        self.options = options or WatchOptions()
        self.on_event = on_event
        self._progress = progress
        self.pending = Pending()
        self._wake = asyncio.Event()
        self._stop: str | None = None
        self._importer: Importer | None = None
        self._feed: asyncio.Task[None] | None = None
        self._feed_usable = True
        self._backoff = _Backoff(self.options.reconnect_min_s, self.options.reconnect_max_s)
        self._first_pending: float | None = None
        self._applier: Applier | None = None
        self._batch: asyncio.Task[None] | None = None
        self._server_name = redact_url(self.url)
        self._libraries: list[WatchedLibrary] = []
        self._last_catch_up = -NEVER
        self._lock: DatabaseLock | None = None
        self._guarded: list[WatchedLibrary] = []
        self._stopped = False  # the last catch-up was stopped by the mass-delete guard
        #: batches applied and requests they made, since the start (tests, summaries)
        self.batches = 0
        self.batch_requests = 0
        self.catch_ups = 0

    # ------------------------------------------------------------------ control
    def cancel(self, signal_name: str = "SIGINT") -> None:
        """Stop cleanly; call on the watcher's loop. A batch being written is committed; one
        still fetching is dropped (its items were not written); a catch-up commits what it
        fetched."""
        if self._stop is not None:
            return
        self._stop = signal_name
        self._wake.set()
        if self._importer is not None:
            self._importer.cancel(signal_name)
        if self._batch is not None and self._applier is not None and not self._applier.writing:
            self._batch.cancel()

    def _check_stop(self) -> None:
        if self._stop is not None:
            raise errors.Interrupted(
                f"interrupted by {self._stop}: every applied change is committed to {self.db_path}",
                signal=self._stop,
            )

    def _emit(self, event: AnyEvent) -> None:
        self.on_event(event)

    def _notice(self, message: str, exit_code: int | None = None) -> None:
        self._emit(Notice(server=self._server_name, message=message, exit_code=exit_code))

    # ------------------------------------------------------------------ the run
    async def run(self) -> None:
        """Watch until cancelled (then raise ``Interrupted``) or a lasting error."""
        check_url(self.url)
        await asyncio.to_thread(check_database, self.db_path)
        lock = self._lock = DatabaseLock(self.db_path)
        lock.acquire()
        try:
            await self._watch()
        finally:
            if self._feed is not None:
                self._feed.cancel()
                with contextlib.suppress(BaseException):
                    await self._feed
            if self._applier is not None:
                await asyncio.to_thread(self._applier.close)
            lock.release()

    async def _watch(self) -> None:
        sync = self.options.sync
        source = self._source = await self._find_source()
        sync = replace(sync, kind=source.kind)
        http = HttpClient(
            self.url,
            headers=source.auth_headers(self._token),
            concurrency=sync.concurrency,
            verify_tls=sync.verify_tls,
            retry=sync.retry or RetryPolicy(attempts=4, max_elapsed=60),
            timeouts=sync.timeouts,
        )
        async with http:
            self._http = http
            self._feed_usable = await self._feed_possible(source, http)
            catch_up_due = 0.0
            library_check_due = time.monotonic() + self.options.library_check_minutes * 60
            verify_due = NEVER
            reconnect_at = 0.0
            ready = False
            while True:
                self._check_stop()
                now = time.monotonic()
                if self._feed is not None and self._feed.done():
                    reconnect_at = self._feed_lost()
                    catch_up_due = self._catch_up_after_reconnect()
                if self._feed_usable and self._feed is None and now >= reconnect_at:
                    reconnect_at = await self._subscribe(source, http)
                    self._check_stop()
                    now = time.monotonic()
                subscribed = self._feed is not None or not self._feed_usable
                if now >= catch_up_due and subscribed:
                    why = "start" if not ready else ("poll" if not self._feed_usable else "catch-up")
                    if now >= verify_due:
                        why = "verification"
                    # a verification lists every item and sweeps what the server no longer has
                    if await self._catch_up(why, replace(sync, full=True) if why == "verification" else sync):
                        if not ready:
                            ready = True
                            self._emit(Ready(server=self._server_name, feed=self._feed is not None,
                                             poll_minutes=self.options.poll_minutes))  # fmt: skip
                        catch_up_due = NEVER if self._feed is not None else time.monotonic() + self._poll_s()
                        verify_due = await self._verification_due(sync, stopped=self._stopped)
                    else:
                        catch_up_due = time.monotonic() + self._backoff.next()
                    continue
                if self.pending and ready:
                    first = self._first_pending or now
                    if now - first >= self.options.debounce_s:
                        guarded = await self._apply_pending()
                        if guarded:
                            catch_up_due = time.monotonic()
                            verify_due = time.monotonic()  # a full, verified run decides
                        continue
                if now >= library_check_due and ready:
                    library_check_due = now + self.options.library_check_minutes * 60
                    if await self._libraries_changed(source, http):
                        catch_up_due = now
                        continue
                if now >= verify_due:
                    catch_up_due = min(catch_up_due, now)  # the next catch-up verifies
                deadlines = [library_check_due]
                if verify_due > now:
                    deadlines.append(verify_due)
                if subscribed:
                    deadlines.append(catch_up_due)
                elif self._feed_usable and self._feed is None:
                    deadlines.append(reconnect_at)  # a catch-up waits for the feed
                if self.pending and ready:
                    deadlines.append((self._first_pending or now) + self.options.debounce_s)
                await self._sleep_until(min(deadlines))

    async def _sleep_until(self, deadline: float) -> None:
        timeout = max(0.0, deadline - time.monotonic()) if deadline != NEVER else None
        self._wake.clear()
        if self._stop is not None or (self._feed is not None and self._feed.done()):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _poll_s(self) -> float:
        return self.options.poll_minutes * 60

    # ------------------------------------------------------------------ the server
    async def _find_source(self) -> Source:
        kind = self.options.sync.kind
        if kind == "auto":
            from importer.store.queries import known_kind

            kind = await asyncio.to_thread(known_kind, self.db_path, redact_url(self.url))
        if kind != "auto":
            return make_source(kind, redact_url(self.url))
        async with HttpClient(
            self.url, verify_tls=self.options.sync.verify_tls, retry=RetryPolicy(attempts=2)
        ) as probe:
            return await detect_source(probe, redact_url(self.url))

    async def _feed_possible(self, source: Source, http: HttpClient) -> bool:
        """Whether this token can get the feed's library changes. Jellyfin and Emby send
        them to sessions with a user only, and an API key has none (``/Users/Me`` fails)."""
        if source.kind == "plex":
            return True
        prefix = source.prefix
        try:
            await http.get_bytes(f"{prefix}/Users/Me")
        except (errors.UnexpectedResponse, errors.NotFoundError):  # "400: not owned by a user"
            self._notice(
                f"this token has no user (an API key?), and {source.kind} sends library changes to "
                f"users' sessions only: polling every {self.options.poll_minutes:g} min instead. "
                f"For live changes, run: importer login {self._server_name}"
            )
            return False
        return True

    async def _subscribe(self, source: Source, http: HttpClient) -> float:
        """Open the feed (buffering what it says); when it cannot be opened, the time of
        the next attempt (or never, for a server that refuses it)."""
        opened = asyncio.Event()
        spec = feed_spec(source, self._token)
        task = asyncio.ensure_future(follow(http, spec, source.kind, self._on_changes, opened.set))
        task.add_done_callback(lambda _: self._wake.set())
        waiter = asyncio.ensure_future(opened.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if opened.is_set():
            self._feed = task
            return 0.0
        exc = task.exception()
        if isinstance(exc, errors.AuthError):
            raise exc
        if isinstance(exc, errors.NotFoundError):
            self._feed_usable = False
            self._notice(
                f"the server refused its change feed ({exc}): polling every "
                f"{self.options.poll_minutes:g} min instead"
            )
            return NEVER
        delay = self._backoff.next()
        self._notice(f"cannot open the change feed ({exc}); trying again in {delay:.1f} s")
        return time.monotonic() + delay

    def _feed_lost(self) -> float:
        task, self._feed = self._feed, None
        assert task is not None
        exc = task.exception() if not task.cancelled() else None
        if isinstance(exc, errors.AuthError):
            raise exc
        delay = self._backoff.next()
        why = str(exc) if exc is not None else "the change feed ended"
        self._notice(f"{why}; reconnecting in {delay:.1f} s, then catching up")
        return time.monotonic() + delay

    def _catch_up_after_reconnect(self) -> float:
        """Every reconnection catches up; Emby's catch-up is a full Etag sweep, so at most
        one per poll interval."""
        if self._source.kind == "emby":
            return max(time.monotonic(), self._last_catch_up + self._poll_s())
        return time.monotonic()

    def _on_changes(self, changes: list[ItemChange]) -> None:
        if not self.pending:
            self._first_pending = time.monotonic()
        self.pending.add(changes)
        self._wake.set()

    # ------------------------------------------------------------------ catch-ups
    async def _catch_up(self, why: str, sync: SyncOptions) -> bool:
        """An incremental sync (full when verification is due) under the held lock; False
        when it failed for a reason that may pass (it is then tried again later)."""
        run = self._importer = Importer(
            self.url, self.db_path, self._token, sync, self._progress(), held_lock=self._lock
        )
        if self._stop is not None:
            run.cancel(self._stop)
        self._last_catch_up = time.monotonic()
        try:
            result = await run.run()
        except errors.Interrupted:
            raise
        except errors.ImporterError as exc:
            if not exc.transient:
                raise
            self._notice(f"catch-up failed ({exc}); trying again later", exit_code=exc.exit_code)
            return False
        finally:
            self._importer = None
        self.catch_ups += 1
        self._backoff.reset()
        if self._applier is not None and result.exit_code == 0:
            self._applier.deleted.clear()  # the guard counts from a run that ended done
        self._server_name = result.server.name or self._server_name
        self._emit(
            CaughtUp(
                server=self._server_name,
                why=why,
                exit_code=result.exit_code,
                written=sum(lib.written for lib in result.libraries),
                deleted=sum(lib.deleted for lib in result.libraries),
                requests=result.requests,
                seconds=result.seconds,
            )
        )
        self._stopped = False
        for lib in result.libraries:
            if lib.status is RunStatus.STOPPED:
                self._stopped = True
                self._notice(f"{lib.title}: {lib.reason}", exit_code=3)
        await self._watch_libraries(result)
        if self.options.hydrate:
            await self._hydrate()
        return True

    async def _watch_libraries(self, result: SyncResult) -> None:
        """The libraries batches apply to: those the catch-up covered, by local id."""
        from importer.store.queries import library_ids

        server = result.server
        covered = [LibraryInfo(lib.source_id, lib.title) for lib in result.libraries]
        ids = await asyncio.to_thread(library_ids, self.db_path, server.kind, server.machine_id)
        libraries = [WatchedLibrary(info, ids[info.source_id]) for info in covered if info.source_id in ids]
        if [lib.library_id for lib in libraries] != [lib.library_id for lib in self._libraries]:
            if self._applier is not None:
                await asyncio.to_thread(self._applier.close)
            self._libraries = libraries
            self._applier = None

    async def _verification_due(self, sync: SyncOptions, *, stopped: bool) -> float:
        """When the oldest verification of a watched library is due (never when every
        catch-up is full anyway). After a mass-delete stop, not before a day has passed (as
        cron would try again): until someone looks, another full listing changes nothing."""
        if sync.verify_after_days <= 0 or sync.full or not self._libraries:
            return NEVER
        from importer.store.queries import verified_at

        stamps = await asyncio.to_thread(
            verified_at, self.db_path, [lib.library_id for lib in self._libraries]
        )
        oldest = min((stamp or 0 for stamp in stamps), default=0)
        due_in = oldest + sync.verify_after_days * 86400 - time.time()
        # not sooner than a poll interval: a verification that could not complete waits
        return time.monotonic() + max(due_in, self._poll_s(), 86400 if stopped else 0)

    async def _libraries_changed(self, source: Source, http: HttpClient) -> bool:
        """Whether the server's TV libraries (those this watch covers) changed; a library
        that disappeared is reported, never swept."""
        try:
            _, libraries = await source.discover(http)
        except errors.SourceError as exc:
            if isinstance(exc, errors.AuthError):
                raise
            self._notice(f"cannot list the libraries ({exc}); trying again later")
            return False
        wanted = {lib.source_id for lib in select_libraries(libraries, self.options.sync.libraries)}
        watched = {lib.info.source_id for lib in self._libraries}
        for lib in self._libraries:
            if lib.info.source_id not in wanted:
                self._notice(f"the library {lib.info.title!r} is no longer on the server; its rows are kept")
        return bool(wanted - watched)

    async def _hydrate(self) -> None:
        from importer.hydration.runner import HydrateOptions, Hydrator

        sync = self.options.sync
        options = HydrateOptions(
            kind=sync.kind, libraries=sync.libraries, concurrency=1, verify_tls=sync.verify_tls
        )
        run = Hydrator(self.db_path, self._token, url=self.url, options=options, held_lock=self._lock)
        try:
            await run.run()
        except errors.Interrupted:
            raise
        except errors.ImporterError as exc:
            if isinstance(exc, errors.AuthError):
                raise
            self._notice(f"hydration failed ({exc}); it is tried again after the next change")

    # ------------------------------------------------------------------ batches
    async def _apply_pending(self) -> bool:
        """Apply everything pending, in batches; whether a batch stopped at the guard."""
        guarded = False
        while self.pending and self._stop is None:
            if self._applier is None:
                self._applier = Applier(
                    self._source,
                    self._http,
                    self.db_path,
                    self._libraries,
                    allow_mass_delete=self.options.sync.allow_mass_delete,
                )
            changes = self.pending.take(self.options.batch_size)
            self._first_pending = time.monotonic() if self.pending else None
            applier = self._applier
            self._batch = asyncio.ensure_future(self._apply(applier, changes))
            try:
                await self._batch
            except asyncio.CancelledError:
                if self._stop is None:
                    raise
                return guarded
            except errors.SourceError as exc:
                if isinstance(exc, errors.AuthError):
                    raise
                # not applied: a catch-up after the next reconnect (or poll) finds them
                self._notice(f"a batch of {len(changes)} changes could not be fetched ({exc}); "
                             "they are put back and tried again")  # fmt: skip
                self.pending.add(changes)
                self._first_pending = time.monotonic()
                await self._sleep_until(time.monotonic() + self._backoff.next())
                return guarded
            finally:
                self._batch = None
            guarded = guarded or bool(self._guarded)
        if self.options.hydrate and self._stop is None:
            await self._hydrate()
        return guarded

    async def _apply(self, applier: Applier, changes: list[ItemChange]) -> None:
        result = await applier.apply(changes)
        self.batches += 1
        self.batch_requests += result.requests
        self._guarded = result.guarded
        for changed in result.libraries:
            self._emit(
                Batch(
                    server=self._server_name,
                    library=changed.library.info.title,
                    added=changed.added,
                    updated=changed.updated,
                    removed=changed.removed,
                    requests=result.requests,
                )
            )
        for lib in result.guarded:
            self._notice(
                f"{lib.info.title}: a batch would delete more than the mass-delete guard allows; "
                "a full, verified sync decides instead"
            )
