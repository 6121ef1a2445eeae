"""The worker processes: decoders that turn page bytes into rows, and one writer.

```
main (event loop: HTTP only)
  │  page bytes (one pipe per decoder, fed by a sender thread)
  ▼
decoder × N ── rows (msgpack) ──► writer ── events (msgpack) ──► main (reader thread)
                                    ▲
main ── control (open, finish library, stop) ──┘
```

The writer drains its pipes in a thread, so a decoder never waits while the writer
commits, and forwards each page's summary ("decoded") at once so the planner learns
totals before the rows are written. It writes pages inside large transactions and
reports "written" per page and "committed" per transaction.

Workers are fresh interpreters that inherit only their pipe ends (never ``fork`` inside
a host program that may have threads; see ``WorkerPool._launch``), ignore SIGINT/SIGTERM
(the main process stops them through their pipes), and exit when the main process goes
away: pipe EOF, and ``PR_SET_PDEATHSIG`` on Linux.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe, wait
from typing import Any

import msgspec

from importer.compression import inflate
from importer.crashpoints import crash_point
from importer.errors import ImporterError, StoreError

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


@dataclass(frozen=True)
class WriterSettings:
    db_path: str
    cache_mb: int = 128  # SQLite page cache: keeps the writer well under 300 MB at 1M episodes
    #: rows per transaction before a commit; large transactions are what make SQLite fast
    commit_rows: int = 25_000
    #: commit at least this often (seconds) while pages trickle in, so progress is saved
    commit_interval: float = 2.0
    crash_at: str | None = None  # IMPORTER_CRASH_AT, for crash tests


#: how much lower the workers' CPU priority is than the main process's
WORKER_NICENESS = 5


# ----------------------------------------------------------------------------- helpers
def _become_worker() -> None:
    """Ignore the signals the main process handles, and die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform == "linux":
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    # Below the main process, and below whatever program hosts it: when the CPUs are
    # busy, its event loop (and a home server on the same machine) comes first.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    # Rows are short-lived tuples: the cyclic GC only costs time here.
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)


def decompress(body: bytes, encoding: str | None) -> bytes:
    """A page body as sent, inflated within limits (a gzip bomb is refused)."""
    return inflate(body, encoding, what="a page")


def _peak_rss_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# ----------------------------------------------------------------------------- decoder
def decoder_main(inbox: Connection, to_writer: Connection) -> None:
    _become_worker()
    from importer.sources import decode_page

    while True:
        try:
            header = inbox.recv_bytes()
            body = inbox.recv_bytes()
        except (EOFError, OSError):
            break
        page_id, lib_index, kind, stream, library_source_id, offset, with_total, encoding, ids_only = _decode(
            header
        )
        try:
            raw = decompress(body, encoding)
            page = decode_page(kind, stream, raw, library_source_id, with_total=with_total, ids_only=ids_only)
            if page.offset < 0:  # the server did not say: it is the offset we asked for
                page.offset = offset
            message = _encode(("page", page_id, lib_index, page))
        except ImporterError as exc:
            message = _encode(("error", page_id, type(exc).__name__, str(exc)))
        except Exception as exc:  # a decoder bug must not look like a hang
            message = _encode(("error", page_id, "DecodeError", f"could not decode a {stream} page: {exc!r}"))
        del body
        try:
            to_writer.send_bytes(message)
        except (BrokenPipeError, OSError):
            return
    with contextlib.suppress(BrokenPipeError, OSError):
        to_writer.send_bytes(_encode(("rss", f"decoder-{os.getpid()}", _peak_rss_kb())))


# ----------------------------------------------------------------------------- writer
def writer_main(
    settings: WriterSettings, from_decoders: list[Connection], control: Connection, events: Connection
) -> None:
    _become_worker()
    from importer.sources.base import DecodedPage
    from importer.store import WriteCounts, Writer, connect
    from importer.store.listing import ListedItems
    from importer.store.sweep import SweepResult, sweep

    page_decoder = msgspec.msgpack.Decoder(tuple[str, int, int, DecodedPage])
    inbox: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            events.send_bytes(_encode(message))

    def drain() -> None:
        """Move messages from the pipes into the inbox; forward page summaries at once."""
        sources = [*from_decoders, control]
        while sources:
            for conn in wait(sources):
                assert isinstance(conn, Connection)
                try:
                    data = conn.recv_bytes()
                except (EOFError, OSError):
                    sources.remove(conn)
                    continue
                if data[1:2] == b"\xa4" and data[2:6] == b"page":  # ("page", ...)
                    _, page_id, lib_index, page = page_decoder.decode(data)
                    send(("decoded", page_id, page.offset, page.count, page.total, page.leaf_total))
                    inbox.put(("page", page_id, lib_index, page))
                else:
                    inbox.put(tuple(_decode(data)))
        # Every pipe is closed: after a "stop" this ends a clean shutdown; without one,
        # the main process went away, and the open transaction is dropped, not committed.
        inbox.put(None)

    threading.Thread(target=drain, name="writer-drain", daemon=True).start()

    try:
        writer = Writer(connect(settings.db_path, cache_mb=settings.cache_mb))
    except ImporterError as exc:
        send(("fatal", type(exc).__name__, str(exc)))
        return

    libraries: dict[int, int] = {}  # run's library index -> libraries.id
    runs: dict[int, int] = {}  # library index -> runs.id
    totals: dict[int, WriteCounts] = {}  # library index -> what this run wrote
    #: library index -> stream -> {"listing", "total", "committed": [[start, end], ...]}:
    #: stored in the run's row by every commit, mirrored in the cursor file after it
    progress: dict[int, dict[str, dict[str, Any]]] = {}
    touched: set[int] = set()  # libraries whose progress changed in the open transaction
    listed: dict[tuple[int, str], ListedItems] = {}  # (library index, stream) -> items seen
    adopting: dict[int, bool] = {}  # library index -> may a new episode adopt a row by guid
    in_tx = False
    pending_rows = 0
    pending_pages: list[int] = []
    last_commit = time.monotonic()
    commits = 0

    def begin() -> None:
        nonlocal in_tx
        if not in_tx:
            writer.begin()
            in_tx = True

    def commit() -> None:
        nonlocal in_tx, pending_rows, last_commit, commits, pending_pages
        if in_tx:
            for lib in touched:  # the progress commits with the rows it describes
                writer.update_run_progress(runs[lib], progress[lib])
                for (index, stream), items in listed.items():
                    if index == lib and items.dirty:
                        writer.save_listed(runs[lib], stream, items.bitmap())
            writer.commit()
            commits += 1
            in_tx = False
            crash_point("after_commit")
            send(("committed", pending_pages, commits, {lib: progress[lib] for lib in touched}))
            touched.clear()
        pending_rows = 0
        pending_pages = []
        last_commit = time.monotonic()

    try:
        while True:
            try:
                message = inbox.get(timeout=settings.commit_interval if in_tx else None)
            except queue.Empty:
                commit()
                continue
            if message is None:
                break  # no commit here: an unfinished transaction rolls back with the connection
            tag = message[0]
            if tag == "page":
                _, page_id, lib_index, page = message
                begin()
                seen = listed.setdefault((lib_index, page.stream), ListedItems())
                if page.ids_only:  # nothing to write: which of our rows does the server still list?
                    counts = WriteCounts()
                    seen.add(writer.stored_ids(libraries[lib_index], page.stream, page.ids))
                else:
                    counts = writer.write_page(
                        libraries[lib_index], page.shows, page.seasons, page.episodes, page.files,
                        adoptable=(lambda row_id: row_id not in seen) if adopting.get(lib_index) else None,  # noqa: B023
                    )  # fmt: skip
                    seen.add(writer.last_page_ids)
                _add_committed(progress[lib_index], page)
                touched.add(lib_index)
                crash_point("in_transaction")
                totals[lib_index] = totals.get(lib_index, WriteCounts()) + counts
                rows = len(page.shows) + len(page.seasons) + len(page.episodes) + len(page.files)
                pending_rows += rows
                pending_pages.append(page_id)
                send(
                    ("written", page_id, lib_index, page.stream, page.count, counts.written, counts.unchanged)
                )
                if (
                    pending_rows >= settings.commit_rows
                    or time.monotonic() - last_commit > settings.commit_interval
                ):
                    commit()
            elif tag in ("error", "rss"):
                send(message)
            elif tag == "open":
                _, server, library_list, want_full, resume, verify_age, now = message
                begin()
                server_id = writer.ensure_server(*server)
                resumed: dict[int, dict[str, Any]] = {}
                plans: dict[int, tuple[str, int | None]] = {}  # library index -> (mode, watermark)
                for index, source_id, title in library_list:
                    libraries[index] = writer.ensure_library(server_id, source_id, title, "show")
                    state = writer.library_state(libraries[index])
                    # a library with a done run has its late indexes: a guid lookup is cheap
                    adopting[index] = state.verified_at is not None
                    unfinished = writer.unfinished_run(libraries[index])
                    if resume and unfinished is not None and unfinished[1] and unfinished[2] == "full":
                        runs[index] = unfinished[0]
                        writer.reopen_run(runs[index])
                        progress[index] = resumed[index] = json.loads(unfinished[1])
                        for stream, bitmap in writer.load_listed(runs[index]).items():
                            listed[(index, stream)] = ListedItems(bitmap)
                        plans[index] = ("full", None)
                        continue
                    if unfinished is not None:
                        # discarded (--restart), without progress, or incremental: an
                        # incremental run starts again from the same watermark, cheaply
                        writer.finish_run(unfinished[0], "failed", "superseded by a new run")
                        writer.forget_listed(unfinished[0])
                    fresh = state.verified_at is not None and now - state.verified_at < verify_age
                    if want_full or state.watermark is None or not fresh:
                        plans[index] = ("full", None)
                    else:
                        plans[index] = ("incremental", state.watermark)
                    runs[index] = writer.start_run(libraries[index], plans[index][0])
                    progress[index] = {}
                commit()
                send(("opened", libraries, runs, resumed, plans))
            elif tag == "relist":  # the stream is listed again from the start
                _, lib_index, stream, listing = message
                writer.forget_listed(runs[lib_index], stream)
                listed[(lib_index, stream)] = ListedItems()
                progress[lib_index][stream] = {"listing": listing, "total": None, "committed": []}
                touched.add(lib_index)
            elif tag == "count":  # every page sent before this is written: count the listing
                _, lib_index, stream = message
                items = listed.get((lib_index, stream))
                stored = writer.stored_count(libraries[lib_index], stream)
                send(("counted", lib_index, stream, items.count if items else 0, stored))
            elif tag == "finish":
                _, lib_index, status, reason, http_counts, sweep_streams, policy, started_clock = message
                begin()
                swept = SweepResult()
                if sweep_streams:
                    swept = sweep(
                        writer,
                        libraries[lib_index],
                        {s: listed.get((lib_index, s)) or ListedItems() for s in sweep_streams},
                        **policy,
                    )
                    crash_point("in_sweep")
                    if swept.held_back is not None:
                        status, reason = "stopped", swept.held_back
                # Link even an incomplete run: no episode may keep a NULL parent.
                unlinked = writer.link(libraries[lib_index]).unlinked
                counts = totals.get(lib_index, WriteCounts()).as_run_counts() | http_counts
                counts["deleted"] = swept.deleted
                if status in ("done", "incomplete", "stopped"):  # else it may be resumed
                    writer.forget_listed(runs[lib_index])
                    for key in [key for key in listed if key[0] == lib_index]:
                        del listed[key]
                watermark = None
                if status == "done":
                    watermark = writer.next_watermark(libraries[lib_index], started_clock)
                writer.finish_run(runs[lib_index], status, reason, counts, watermark=watermark)
                commit()
                send(("finished", lib_index, unlinked, status, reason, swept.deleted, swept.gone))
            elif tag == "indexes":
                # Once, after every library: indexes built during a bulk load slow it down.
                writer.ensure_indexes()
                send(("indexed",))
            elif tag == "stop":
                commit()  # then keep draining: the decoders' last words are on their way
    except ImporterError as exc:
        send(("fatal", type(exc).__name__, str(exc)))
    except Exception as exc:  # report, don't hang the main process
        send(("fatal", "StoreError", f"the writer failed: {exc!r}"))
    finally:
        with contextlib.suppress(Exception):
            writer.close()
        with contextlib.suppress(Exception):
            send(("rss", "writer", _peak_rss_kb()))


def _add_committed(streams: dict[str, dict[str, Any]], page: Any) -> None:
    """Add a page's item range to its stream's committed ranges, merged and sorted."""
    state = streams.setdefault(page.stream, {"listing": 1, "total": None, "committed": []})
    if state["total"] is None and page.total is not None:
        state["total"] = page.total
    if page.leaf_total:
        state["leaf_total"] = state.get("leaf_total", 0) + page.leaf_total
    if page.count:
        state["committed"] = merge_ranges([*state["committed"], [page.offset, page.offset + page.count]])


def merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return out


# ----------------------------------------------------------------------------- main side
class WorkerPool:
    """Starts the workers, feeds them pages, and turns their messages into asyncio events."""

    def __init__(self, settings: WriterSettings, decoders: int = 1) -> None:
        self.settings = settings
        self.n_decoders = max(1, decoders)
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._senders: list[queue.Queue[tuple[bytes, bytes] | None]] = []
        self._threads: list[threading.Thread] = []
        self._control: Connection | None = None
        self._next = 0
        #: peak RSS (kB) of each worker, reported as it exits
        self.peak_rss_kb: dict[str, int] = {}

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the workers; events go to ``loop`` (default: the running one), so that this
        may run in a thread while the loop goes on."""
        loop = loop or asyncio.get_running_loop()
        decoder_out: list[Connection] = []
        for n in range(self.n_decoders):
            page_r, page_w = Pipe(duplex=False)
            rows_r, rows_w = Pipe(duplex=False)
            self._launch("decoder", {"inbox": page_r, "to_writer": rows_w})
            decoder_out.append(rows_r)
            sendq: queue.Queue[tuple[bytes, bytes] | None] = queue.Queue()
            self._senders.append(sendq)
            thread = threading.Thread(
                target=_sender, args=(page_w, sendq), name=f"importer-send-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        control_r, control_w = Pipe(duplex=False)
        events_r, events_w = Pipe(duplex=False)
        self._launch(
            "writer",
            {"control": control_r, "events": events_w, **{f"rows{i}": c for i, c in enumerate(decoder_out)}},
            settings=self.settings,
        )
        self._control = control_w
        reader = threading.Thread(
            target=_reader, args=(events_r, loop, self.events), name="importer-events", daemon=True
        )
        reader.start()
        self._threads.append(reader)

    def _launch(
        self, role: str, pipes: dict[str, Connection], settings: WriterSettings | None = None
    ) -> None:
        """Start a worker as a fresh interpreter that inherits only its pipe ends.

        Not multiprocessing: its ``spawn`` re-runs a host script's unguarded main module
        in each child and starts a resource tracker that outlives the run; ``fork`` is
        unsafe in a host program with threads.
        """
        fds = {name: conn.fileno() for name, conn in pipes.items()}
        spec = _encode({"role": role, "fds": fds, "settings": settings})
        proc = subprocess.Popen(
            [sys.executable, "-P", "-c", "from importer.workers import child_main; child_main()", spec.hex()],
            pass_fds=list(fds.values()),
            stdin=subprocess.DEVNULL,
        )
        self._processes.append(proc)
        for conn in pipes.values():
            conn.close()  # only the child holds these now, so EOF reaches everyone

    def send_page(self, header: tuple[Any, ...], body: bytes) -> None:
        self._senders[self._next % self.n_decoders].put((_encode(header), body))
        self._next += 1

    def control(self, *message: Any) -> None:
        assert self._control is not None
        try:
            self._control.send_bytes(_encode(message))
        except (BrokenPipeError, OSError) as exc:
            raise StoreError("the writer process is gone; see the messages above and run again") from exc

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the writer to commit and stop, then end every worker."""
        for sendq in self._senders:
            sendq.put(None)
        if self._control is not None:
            with contextlib.suppress(Exception):
                self._control.send_bytes(_encode(("stop",)))
            self._control.close()
            self._control = None
        await asyncio.get_running_loop().run_in_executor(None, self._join, timeout)
        await asyncio.sleep(0)  # let the reader thread's last callbacks run
        self._collect_rss()

    def _collect_rss(self) -> None:
        """Keep the workers' peak RSS reports; other leftover events no longer matter."""
        while not self.events.empty():
            event = self.events.get_nowait()
            if event[0] == "rss":
                self.peak_rss_kb[event[1]] = event[2]

    def _join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in reversed(self._processes):
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(1)
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))


def child_main() -> None:
    """Entry point of a worker process: rebuild its pipes from inherited fds, run its role."""
    try:
        _run_role(msgspec.msgpack.decode(bytes.fromhex(sys.argv[1])))
    except (BrokenPipeError, ConnectionResetError, EOFError):
        # The main process is gone (killed, or it stopped us): nobody to tell, nothing to
        # print on a terminal that is no longer ours. An open transaction rolls back.
        os._exit(0)


def _run_role(spec: dict[str, Any]) -> None:
    fds = spec["fds"]
    if spec["role"] == "decoder":
        decoder_main(Connection(fds["inbox"], writable=False), Connection(fds["to_writer"], readable=False))
    else:
        rows = [Connection(fd, writable=False) for name, fd in sorted(fds.items()) if name.startswith("rows")]
        settings = msgspec.convert(spec["settings"], WriterSettings)
        writer_main(
            settings,
            rows,
            Connection(fds["control"], writable=False),
            Connection(fds["events"], readable=False),
        )


def _sender(conn: Connection, sendq: queue.Queue[tuple[bytes, bytes] | None]) -> None:
    """Blocking pipe writes happen here, never on the event loop."""
    while (item := sendq.get()) is not None:
        try:
            conn.send_bytes(item[0])
            conn.send_bytes(item[1])
        except (BrokenPipeError, OSError):
            break
    conn.close()


def _reader(
    conn: Connection, loop: asyncio.AbstractEventLoop, events: asyncio.Queue[tuple[Any, ...]]
) -> None:
    put: Callable[[tuple[Any, ...]], None] = events.put_nowait
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            break
        try:
            loop.call_soon_threadsafe(put, tuple(_decode(data)))
        except RuntimeError:  # the loop is closed
            break
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(put, ("exited",))


__all__ = ["WorkerPool", "WriterSettings", "decompress"]
