"""A sync run after discovery: each library's run started as planned, the planner's
actions carried out, the workers' messages turned into planner events, every commit
mirrored in the cursor file, until every library has ended.

Imported by :mod:`importer.pipeline` while the server answers its discovery requests:
none of this is needed before, and a command line run starts that much sooner.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from importer import errors
from importer.cursor import CursorLibrary, CursorMirror, CursorServer
from importer.fetch_queue import FetchQueue
from importer.http import HttpClient
from importer.model import LibraryInfo, LibraryProgress, ListingKind, RunMode, RunStatus, ServerInfo
from importer.plan import (
    Ending,
    FinishOptions,
    LibraryPlan,
    ListingOutcome,
    PlanOptions,
    failed,
    finish_library,
    interrupted,
    plan_library,
)
from importer.planner import (
    Action,
    Advance,
    Fetch,
    LibraryListed,
    ListingPlanner,
    Page,
    RestartStream,
    SetTotal,
    SourceCaps,
)
from importer.protocol import (
    BuildIndexes,
    Committed,
    Counted,
    CountListing,
    Decoded,
    FindGone,
    Finished,
    FinishLibrary,
    Gone,
    Indexed,
    Open,
    Opened,
    PageFailed,
    PageJob,
    Relist,
    RunsStarted,
    RunStart,
    StartRuns,
    ToMain,
    WorkerExit,
    WorkerFailed,
    Written,
)
from importer.results import LibraryResult
from importer.sources import Source
from importer.workers import WorkerGone, WorkerPool

if TYPE_CHECKING:
    from importer.pipeline import Importer

log = logging.getLogger(__name__)


class _Wake:
    """Put in the event queue to wake the loop: a cancel, or a fetch that failed."""


_WAKE = _Wake()


class Run:
    """A run after discovery: starts each library's run, carries out the planner's actions,
    and turns the workers' messages into planner events until every library has ended."""

    def __init__(
        self,
        importer: Importer,
        pool: WorkerPool,
        source: Source,
        http: HttpClient,
        server: ServerInfo,
        libraries: list[LibraryInfo],
    ) -> None:
        self.importer = importer
        self.options = importer.options
        self.progress = importer.progress
        self.pool = pool
        self.source = source
        self.http = http
        self.server = server
        self.libraries = libraries
        self.results = [LibraryResult(lib.title, lib.source_id) for lib in libraries]
        self.commits = 0
        self.server_clock: float | None = None  # the server's Date when the run started
        self.planner: ListingPlanner | None = None
        self.plans: list[LibraryPlan] = []
        self.library_ids: list[int] = []
        self.run_ids: list[int] = []
        self.outcomes: dict[int, ListingOutcome] = {}  # listed libraries waiting for Gone
        self.committed: dict[int, LibraryProgress] = {}  # per library: as last committed
        self.finished = 0
        self.failure: BaseException | None = None
        self.cancelled = False
        self.writer_failed = False  # nobody left to record the run's end
        self.sent: set[int] = set()  # pages handed to the workers, not yet written
        self.fetches = FetchQueue(self._fetch, self.options.max_outstanding_pages, self._fetch_failed)
        self.cursor = CursorMirror(
            importer.db_path, CursorServer(server.kind, server.machine_id, server.base_url)
        )

    # ------------------------------------------------------------------ the run
    async def sync(self) -> None:
        pool = self.pool
        pool.control(Open(self.server, self.libraries))
        opened = await self._expect(Opened)
        self.library_ids = [stored.library_id for stored in opened.libraries]
        options = PlanOptions(
            full=self.options.full,
            restart=self.options.restart,
            verify_after_s=self.options.verify_after_days * 86400,
            delta=self.source.supports_delta,
        )
        now = time.time()
        self.plans = [plan_library(stored, options, now) for stored in opened.libraries]
        self._check_cursor()
        caps = SourceCaps(self.source.page_size, self.source.ids_page_size, self.source.kind == "plex")
        planner = self.planner = ListingPlanner(self.plans, caps)
        pool.control(StartRuns([self._run_start(i, plan) for i, plan in enumerate(self.plans)]))
        self.run_ids = (await self._expect(RunsStarted)).run_ids
        for result, plan in zip(self.results, self.plans, strict=True):
            result.mode = plan.mode
        self.progress.start(self.server.name, [lib.title for lib in self.libraries])
        self._apply(planner.start())
        await self._events()
        pool.control(BuildIndexes())
        await self._expect(Indexed)

    def _run_start(self, index: int, plan: LibraryPlan) -> RunStart:
        assert self.planner is not None
        return RunStart(
            index, plan.mode, self.planner.listing_kinds(index), plan.resume_run, plan.supersede_run,
            plan.adopt, plan.link_all,
        )  # fmt: skip

    async def _events(self) -> None:
        while self.finished < len(self.libraries):
            if self.failure is not None:
                raise self.failure
            if self.cancelled:
                await self._wind_down()
                raise self.importer.interruption(sum(r.written + r.unchanged for r in self.results))
            self._handle(await self.pool.events.get())

    async def _expect(self, kind: type[Any]) -> Any:
        while True:
            event = await self.pool.events.get()
            if isinstance(event, kind):
                return event
            self._handle(event)

    @property
    def sliceable(self) -> bool:
        """See :attr:`Importer.sliceable`."""
        plans = self.plans
        return bool(plans) and all(plans[i].mode is RunMode.FULL for i in self._unfinished())

    def cancel(self) -> None:
        self.cancelled = True
        self.pool.events.put_nowait(_WAKE)  # type: ignore[arg-type]

    def cancel_fetches(self) -> None:
        self.fetches.cancel()

    async def close(self) -> None:
        await self.cursor.close()  # the last cursor file is in place before the run returns

    # ------------------------------------------------------------------ events
    def _handle(self, event: ToMain | WorkerGone | _Wake) -> None:
        match event:
            case Decoded():
                self._on_decoded(event)
            case Written():
                self._on_written(event)
            case Committed():
                self._on_committed(event)
            case Counted():
                assert self.planner is not None
                self._apply(self.planner.counted(event.library, event.stream, event.unique, event.stored))
            case PageFailed():
                self._on_page_failed(event)
            case Gone():
                self._on_gone(event)
            case Finished():
                self._on_finished(event)
            case WorkerFailed():
                self.writer_failed = event.role == "writer"
                raise event.error.exception()
            case WorkerGone():
                self.writer_failed = self.writer_failed or event.role == "writer"
                raise errors.StoreError(
                    f"the {event.role} process stopped unexpectedly; run the same command again to resume"
                )
            case WorkerExit():
                self.pool.exited(event)
            case _:
                pass  # a wake-up: the loop looks at cancels and failures

    def _on_decoded(self, event: Decoded) -> None:
        assert self.planner is not None
        if self.planner.page(event.page_id).kind is ListingKind.COUNT:  # counts are not written
            self._page_done(event.page_id)
        self._apply(self.planner.decoded(event.page_id, event.offset, event.count, event.total,
                                         event.leaf_total, event.missing))  # fmt: skip

    def _on_written(self, event: Written) -> None:
        assert self.planner is not None
        self._page_done(event.page_id)
        result = self.results[self.planner.page(event.page_id).library]
        result.written += event.written
        result.unchanged += event.unchanged
        self._apply(self.planner.written(event.page_id, event.items))

    def _page_done(self, page_id: int) -> None:
        self.sent.discard(page_id)
        self.fetches.done()

    def _on_page_failed(self, event: PageFailed) -> None:
        """A page the decoder refused (malformed or truncated JSON, an HTML page, wrong
        types): a proxy or an overloaded server may have mangled it, so it is fetched once
        more; the same failure twice stops the run."""
        assert self.planner is not None
        error = event.error.exception()
        if event.page_id not in self.sent or not self.planner.may_refetch(event.page_id):
            raise error
        self._page_done(event.page_id)
        log.warning("%s; fetching that page again", error)
        self._apply(self.planner.refetch(event.page_id))

    def _on_committed(self, event: Committed) -> None:
        """The writer committed: mirror the progress it stored in the cursor file."""
        self.commits = event.commits
        self.committed.update(event.progress)
        self.cursor.committed(
            {
                self.libraries[lib].source_id: CursorLibrary(
                    self.libraries[lib].title, self.run_ids[lib], self.plans[lib].mode, streams
                )
                for lib, streams in self.committed.items()
            },
            self.server_clock,
        )

    # ------------------------------------------------------------------ actions
    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Fetch():
                    self._fetch_later(action.page)
                case SetTotal():
                    self.progress.set_total(self.results[action.library].title, action.stream, action.total)
                case Advance():
                    self.progress.advance(self.results[action.library].title, action.stream, action.items)
                case RestartStream():
                    self.progress.restart_stream(self.results[action.library].title, action.stream)
                case CountListing() | Relist():
                    self.pool.control(action)
                case LibraryListed():
                    self._on_listed(action.library, action.outcome)

    def _fetch_later(self, page: Page) -> None:
        if not self.cancelled:
            self.fetches.put(page)

    def _fetch_failed(self, error: BaseException) -> None:
        if self.failure is None:
            self.failure = error
            self.pool.events.put_nowait(_WAKE)  # type: ignore[arg-type]

    async def _fetch(self, page: Page) -> None:
        library = self.libraries[page.library]
        request = self.source.page_request(
            library, page.stream, page.kind, page.offset, page.size,
            with_total=page.with_total, watermark=page.watermark, ids=page.ids,
        )  # fmt: skip
        fetched = await self.http.fetch(request)
        if self.server_clock is None:
            self.server_clock = fetched.server_date
        if (
            page.with_total
            and page.offset == 0
            and (
                total := self.source.total_hint(fetched.headers, fetched.tail(256), fetched.content_encoding)
            )
            is not None
        ):
            assert self.planner is not None
            self._apply(self.planner.hinted(page.page_id, total))
        job = PageJob(
            page.page_id, page.library, self.library_ids[page.library], library.source_id, self.source.kind,
            page.stream, page.kind, page.offset, page.with_total, fetched.content_encoding,
            compare=page.stream in self.plans[page.library].populated,
        )  # fmt: skip
        self.sent.add(page.page_id)
        self.pool.send_page(job, fetched.chunks)

    # ------------------------------------------------------------------ a library's end
    def _on_listed(self, lib: int, outcome: ListingOutcome) -> None:
        result = self.results[lib]
        result.complete = outcome.complete
        result.totals = {str(stream): n for stream, n in outcome.totals.items()}
        if outcome.sweep:  # what did the complete listings miss?
            self.outcomes[lib] = outcome
            self.pool.control(FindGone(lib, list(outcome.sweep), names=self.options.dry_run))
        else:
            self._finish(lib, finish_library(outcome, {}, 0, self._finish_options()))

    def _on_gone(self, event: Gone) -> None:
        outcome = self.outcomes.pop(event.library)
        self.results[event.library].gone = {str(s): names for s, names in event.names.items()}
        self._finish(
            event.library, finish_library(outcome, event.counts, event.stored, self._finish_options())
        )

    def _finish_options(self) -> FinishOptions:
        return FinishOptions(allow_mass_delete=self.options.allow_mass_delete, dry_run=self.options.dry_run)

    def _finish(self, lib: int, ending: Ending, *, server_clock: bool = True) -> None:
        result = self.results[lib]
        result.status, result.reason = ending.reported, ending.reason
        self.progress.library_done(result.title, str(ending.reported))
        stats = self.http.stats
        self.pool.control(
            FinishLibrary(lib, ending.status, ending.reason, ending.delete, stats.requests,
                          stats.bytes_received, self.server_clock if server_clock else None)
        )  # fmt: skip

    def _on_finished(self, event: Finished) -> None:
        result = self.results[event.library]
        result.deleted, result.unlinked = event.deleted, event.unlinked
        self.finished += 1

    def _unfinished(self) -> list[int]:
        return [i for i, r in enumerate(self.results) if r.status is RunStatus.RUNNING]

    async def _wind_down(self, timeout: float = 60.0) -> None:
        """After a cancel: drop what is not fetched yet, let what is fetched be written, and
        record every unfinished library's run as interrupted, all committed."""
        self.cancel_fetches()
        await self.fetches.settled()
        deadline = time.monotonic() + timeout
        while self.sent and time.monotonic() < deadline:
            try:
                event = await asyncio.wait_for(self.pool.events.get(), timeout=0.5)
            except TimeoutError:
                continue
            self._drain_event(event)
        await self._end_unfinished(interrupted(self.importer.cancel_signal or "SIGINT"), timeout)

    def _drain_event(self, event: ToMain | WorkerGone | _Wake) -> None:
        """While winding down: count what is written, plan nothing more."""
        assert self.planner is not None
        match event:
            case Written():
                self._page_done(event.page_id)
                self.results[self.planner.page(event.page_id).library].written += event.written
            case PageFailed():
                self._page_done(event.page_id)
            case Decoded():
                if self.planner.page(event.page_id).kind is ListingKind.COUNT:
                    self._page_done(event.page_id)
            case WorkerFailed() | WorkerGone() | WorkerExit() | Committed() | Finished():
                self._handle(event)
            case _:
                pass

    async def record_failure(self, exc: errors.ImporterError, timeout: float = 10.0) -> None:
        """Record every unfinished library's run as failed, with its reason; what the writer
        holds is committed with it. A rerun resumes a full run, or starts an incremental
        one again from the same watermark."""
        if not self.run_ids or self.writer_failed:
            return  # no run started yet, or nobody left to write it down
        await self.fetches.settled()
        try:
            await self._end_unfinished(failed(str(exc)), timeout)
        except (TimeoutError, errors.ImporterError) as failure:
            log.warning("could not record the failed run: %s", failure)

    async def _end_unfinished(self, ending: Ending, timeout: float) -> None:
        """End every library still running as ``ending`` says, and wait until it is recorded."""
        waiting = set(self._unfinished())
        for lib in waiting:
            self._finish(lib, ending, server_clock=False)
        async with asyncio.timeout(timeout):
            while waiting:
                event = await self.pool.events.get()
                if isinstance(event, Finished):
                    self._on_finished(event)
                    waiting.discard(event.library)
                elif isinstance(event, Committed | WorkerFailed | WorkerGone):
                    # the commit that records the end: the cursor file mirrors it too
                    self._handle(event)

    # ------------------------------------------------------------------ the cursor file
    def _check_cursor(self) -> None:
        """The cursor file should agree with the database about resumed runs."""
        resumed = {
            library.source_id: plan.progress
            for library, plan in zip(self.libraries, self.plans, strict=True)
            if plan.resume_run is not None
        }
        titles = {library.source_id: library.title for library in self.libraries}
        for source_id in self.cursor.disagreeing(resumed):
            log.warning(
                "the cursor file disagrees with the database about %r; resuming from the database",
                titles[source_id],
            )
