"""The writer process: rows in, large transactions out, and little else.

Two pipes feed it, drained by a thread into one inbox so that the decoder never waits
while the writer commits: pages of rows from the decoder, and commands from the main
process. :class:`WriterSession` handles each message with one method and keeps what it
must between them as attributes; it decides nothing about a library's run (the main
process does: ``importer.plan``), it records what it is told.

Pages are written inside large transactions, committed after ``commit_rows`` rows, or
``commit_interval`` seconds after the oldest uncommitted page. Each commit stores, in the
same transaction, every touched library's progress (its committed ranges, per stream) and
the items its listings have seen, then tells the main process, which mirrors the
progress in the cursor file.
"""

from __future__ import annotations

import contextlib
import queue
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from importer import speedups
from importer.channel import Receiver, Sender
from importer.crashpoints import crash_point
from importer.errors import ImporterError, StoreError
from importer.model import ENDED, LibraryProgress, RunStatus, StreamKind, StreamProgress
from importer.protocol import (
    BuildIndexes,
    Committed,
    Counted,
    CountListing,
    ErrorInfo,
    FindGone,
    Finished,
    FinishLibrary,
    Gone,
    Indexed,
    Message,
    Open,
    Opened,
    PageRows,
    Relist,
    RunsStarted,
    StartRuns,
    Stop,
    WorkerExit,
    WorkerFailed,
    Written,
    decode_to_writer,
    encode,
)
from importer.store import WriteCounts, Writer, connect
from importer.store.listing import ListedItems
from importer.store.sweep import Gone as GoneRows
from importer.store.sweep import delete_gone, find_gone
from importer.workers.child import WriterSettings, peak_rss_kb


class WriterSession:
    """One run's writing: one method per message, the run's state as attributes."""

    def __init__(self, writer: Writer, settings: WriterSettings, send: Callable[[Message], None]) -> None:
        self.writer = writer
        self.settings = settings
        self.send = send
        self.library_ids: dict[int, int] = {}  # the run's library index -> libraries.id
        self.run_ids: dict[int, int] = {}  # library index -> runs.id
        self.adopt: dict[int, bool] = {}  # may a new episode take over a stored row of its guid
        self.link_all: dict[int, bool] = {}  # link every row at the end, not only this run's
        self.counts: dict[int, WriteCounts] = {}  # what this run wrote, per library
        #: per library and stream: what is committed of its listing (stored with every commit)
        self.progress: dict[int, LibraryProgress] = {}
        self.listed: dict[tuple[int, StreamKind], ListedItems] = {}  # the items each listing named
        self.gone: dict[int, GoneRows] = {}  # what a complete listing missed, until the library ends
        self.touched: set[int] = set()  # libraries whose progress changed in the open transaction
        self.pending_rows = 0
        self.oldest_pending: float | None = None  # when the first uncommitted page was written
        self.commits = 0
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            PageRows: self.write_page,
            Open: self.open,
            StartRuns: self.start_runs,
            Relist: self.relist,
            CountListing: self.count_listing,
            FindGone: self.find_gone,
            FinishLibrary: self.finish_library,
            BuildIndexes: self.build_indexes,
            Stop: self.stop,
        }

    def handle(self, message: Message) -> None:
        self._handlers[type(message)](message)

    # ------------------------------------------------------------------ transactions
    def begin(self, *, durable: bool = False) -> None:
        """Open a transaction unless one is open. ``durable``: a new one, whose commit is on
        the disk when it returns, even under a power cut (``Writer.begin``); what is pending
        is committed first, as usual."""
        if durable:
            self.commit()
        if not self.writer.in_transaction:
            self.writer.begin(durable=durable)

    def commit(self) -> None:
        """Commit the open transaction with the progress it carries; tell the main process."""
        writer = self.writer
        if writer.in_transaction:
            for library in self.touched:  # the progress commits with the rows it describes
                writer.save_progress(self.run_ids[library], self.progress[library])
            for (library, stream), items in self.listed.items():
                if items.dirty:
                    writer.save_listed(self.run_ids[library], stream, items.bitmap())
            writer.commit()
            self.commits += 1
            crash_point("after_commit")
            self.send(Committed(self.commits, {lib: self.progress[lib] for lib in self.touched}))
            self.touched.clear()
        self.pending_rows = 0
        self.oldest_pending = None

    def commit_due_in(self) -> float | None:
        """Seconds until the oldest uncommitted page must be committed; None: nothing waits."""
        if self.oldest_pending is None:
            return None
        return max(0.0, self.oldest_pending + self.settings.commit_interval - time.monotonic())

    # ------------------------------------------------------------------ a run's start
    def open(self, message: Open) -> None:
        """Record the server and its libraries; report what the database knows of each."""
        self.begin()
        server_id = self.writer.ensure_server(message.server)
        stored = []
        for index, library in enumerate(message.libraries):
            self.library_ids[index] = self.writer.ensure_library(server_id, library)
            stored.append(self.writer.stored_library(self.library_ids[index]))
        self.commit()
        self.send(Opened(stored))

    def start_runs(self, message: StartRuns) -> None:
        """Start (or resume) each library's run as the main process planned it."""
        writer = self.writer
        self.begin()
        run_ids = []
        for start in message.runs:
            lib = start.library
            library_id = self.library_ids[lib]
            self.adopt[lib], self.link_all[lib] = start.adopt, start.link_all
            self.counts[lib] = WriteCounts()
            if start.supersede_run is not None:
                # discarded (--restart), incremental, or without progress: an incremental
                # run starts again from the same watermark, cheaply
                writer.finish_run(start.supersede_run, RunStatus.FAILED, "superseded by a new run")
                writer.forget_listed(start.supersede_run)
            if start.resume_run is not None:
                self.run_ids[lib] = start.resume_run
                writer.reopen_run(start.resume_run)
                stored = writer.stored_library(library_id).unfinished_progress or {}
                self.progress[lib] = dict(stored)
                for stream, bitmap in writer.load_listed(start.resume_run).items():
                    self.listed[lib, stream] = ListedItems(bitmap)
            else:
                self.run_ids[lib] = writer.start_run(library_id, start.mode)
                self.progress[lib] = {}
            for stream, kind in start.listings.items():
                self.progress[lib].setdefault(stream, StreamProgress(kind=kind))
            run_ids.append(self.run_ids[lib])
        self.commit()
        self.send(RunsStarted(run_ids))

    # ------------------------------------------------------------------ pages
    def _listed(self, library: int, stream: StreamKind) -> ListedItems:
        items = self.listed.get((library, stream))
        if items is None:
            items = self.listed[library, stream] = ListedItems()
        return items

    def write_page(self, page: PageRows) -> None:
        lib = page.library
        seen = self._listed(lib, page.stream)
        self.begin()
        counts = WriteCounts(unchanged=len(page.unchanged))
        if page.rows:
            # a stored row may be adopted when the run's listing has not named it
            adoptable = (lambda row_id: row_id not in seen) if self.adopt[lib] else None
            done = self.writer.write_rows(
                self.library_ids[lib], page.stream, page.rows, page.ids, page.files, adoptable, page.images
            )
            seen.add(done.ids)  # a page of new rows is a range: whole bytes at once
            counts += done.counts
        if page.unchanged:
            seen.add(page.unchanged)
        progress = self.progress[lib].setdefault(page.stream, StreamProgress())
        if page.complete and page.offset >= 0:
            progress.add(page.offset, page.count, page.total, page.leaf_total)
        elif progress.total is None:
            progress.total = page.total
        self.touched.add(lib)
        crash_point("in_transaction")
        self.counts[lib] += counts
        self.pending_rows += len(page.rows) + len(page.files)
        if self.oldest_pending is None:
            self.oldest_pending = time.monotonic()
        self.send(Written(page.page_id, page.count, counts.written, counts.unchanged))
        if self.pending_rows >= self.settings.commit_rows or self.commit_due_in() == 0.0:
            self.commit()

    def relist(self, message: Relist) -> None:
        """The stream is listed again from the start. What is written is committed first,
        so that the decoder, comparing the new listing with the stored rows, sees it."""
        lib, stream = message.library, message.stream
        self.commit()
        self.begin()
        self.writer.forget_listed(self.run_ids[lib], stream)
        self.listed[lib, stream] = ListedItems()
        self.progress[lib][stream] = StreamProgress(listing=message.listing, kind=message.kind)
        self.touched.add(lib)
        self.commit()

    def count_listing(self, message: CountListing) -> None:
        items = self.listed.get((message.library, message.stream))
        stored = self.writer.stored_count(self.library_ids[message.library], message.stream)
        self.send(Counted(message.library, message.stream, items.count if items else 0, stored))

    # ------------------------------------------------------------------ a library's end
    def find_gone(self, message: FindGone) -> None:
        lib = message.library
        listings = {stream: self._listed(lib, stream) for stream in message.streams}
        gone = self.gone[lib] = find_gone(self.writer, self.library_ids[lib], listings)
        names = {s: [(sid, name) for _, sid, name in rows] for s, rows in gone.rows.items() if rows}
        self.send(Gone(lib, gone.counts, gone.stored, names if message.names else {}))

    def finish_library(self, message: FinishLibrary) -> None:
        """Delete what the main process says is gone, link, and record the run's end."""
        lib = message.library
        library_id = self.library_ids[lib]
        writer = self.writer
        # A run's end survives a power cut once recorded: a cron job's night is not undone
        # by a cut a second after the process exits (tests/test_powercut.py).
        self.begin(durable=True)
        deleted = 0
        gone = self.gone.pop(lib, None)
        if message.delete and gone is not None:
            deleted = delete_gone(writer, gone)
            crash_point("in_sweep")
        # Link even an unfinished run: no row keeps a NULL parent it could have.
        unlinked = writer.link(library_id, every_row=self.link_all[lib]).unlinked
        counts = self.counts[lib].as_run_counts() | {
            "requests": message.requests, "bytes": message.bytes, "deleted": deleted
        }  # fmt: skip
        if message.status in ENDED:  # else it may be resumed: keep what it listed
            writer.forget_listed(self.run_ids[lib])
            for key in [key for key in self.listed if key[0] == lib]:
                del self.listed[key]
        watermark = None
        if message.status is RunStatus.DONE:
            watermark = writer.next_watermark(library_id, message.server_clock)
        writer.finish_run(self.run_ids[lib], message.status, message.reason, counts, watermark=watermark)
        self.commit()
        writer.rows.forget(library_id)
        self.send(Finished(lib, deleted, unlinked))

    def build_indexes(self, _: BuildIndexes) -> None:
        # Once, after every library: indexes built during a bulk load slow it down.
        self.commit()
        self.writer.ensure_indexes()
        self.send(Indexed())

    def stop(self, _: Stop) -> None:
        self.commit()  # then keep draining: the decoder's last pages are on their way


# ----------------------------------------------------------------------------- the process
def run_writer(rows: Receiver, control: Receiver, to_main: Sender, settings: WriterSettings) -> None:
    inbox: queue.Queue[bytes | None] = queue.Queue()
    threading.Thread(target=_drain, args=([rows, control], inbox), name="writer-drain", daemon=True).start()
    send_lock = threading.Lock()

    def send(message: Message) -> None:
        with send_lock:
            to_main.send(encode(message))

    try:
        writer = Writer(connect(settings.db_path, cache_mb=settings.cache_mb))
    except ImporterError as exc:
        send(WorkerFailed("writer", ErrorInfo.of(exc)))
        return
    session = WriterSession(writer, settings, send)
    try:
        while True:
            try:
                message = inbox.get(timeout=session.commit_due_in())
            except queue.Empty:
                session.commit()
                continue
            if message is None:
                break  # no commit here: an unfinished transaction rolls back with the connection
            session.handle(decode_to_writer(message))
    except ImporterError as exc:
        send(WorkerFailed("writer", ErrorInfo.of(exc)))
    except Exception as exc:  # report, don't hang the main process
        send(
            WorkerFailed("writer", ErrorInfo.of(StoreError(f"the writer failed: {exc!r}; please report it")))
        )
    finally:
        with contextlib.suppress(Exception):
            writer.close()
        with contextlib.suppress(Exception):
            send(WorkerExit("writer", peak_rss_kb(), speedups.IMPLEMENTATION))


def _drain(sources: list[Receiver], inbox: queue.Queue[bytes | None]) -> None:
    """Move messages from the pipes into the inbox as they are (decoded by the writer's
    thread: decoded here, the two threads traded the GIL on every row the writer bound, as
    apsw lets it go around each step, and a million futex calls cost seconds of system
    time). When every pipe is closed:
    after a Stop this ends a clean shutdown; without one, the main process went away,
    and the open transaction is dropped, not committed."""
    open_sources = list(sources)
    while open_sources:
        ready, _, _ = select.select(open_sources, [], [])
        for source in ready:
            try:
                header, _ = source.recv()
            except EOFError:
                open_sources.remove(source)
                continue
            inbox.put(bytes(header))  # the receiver's buffer is reused
    inbox.put(None)
