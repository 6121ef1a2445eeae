"""The worker processes of a run, as the main process sees them.

```
main (event loop: HTTP only)
  │  PageJob + body (a sender thread writes the pipe)
  ▼
decoder ── PageRows ──► writer
  │                       ▲  │
  │   Open, Relist, ... ──┘  │ Opened, Written, Committed, ...
  ▼                          ▼
main (a reader thread turns both event pipes into asyncio events)
```

The messages are those of :mod:`importer.protocol`; the processes are in
:mod:`~importer.workers.decoder` and :mod:`~importer.workers.writer`, started by
:mod:`~importer.workers.child`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import select
import subprocess
import threading
import time
from dataclasses import dataclass

from importer.channel import Receiver, Sender, pipe
from importer.protocol import PageJob, Stop, ToMain, ToWriter, WorkerExit, decode_to_main, encode
from importer.workers.child import WorkerSpec, WriterSettings, command

__all__ = ["WorkerGone", "WorkerPool", "WriterSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WorkerGone:
    """A worker's event pipe closed: it ended (after a stop), or died."""

    role: str


class WorkerPool:
    """Starts the workers, feeds them pages and commands, and turns their messages into
    asyncio events (``events``)."""

    def __init__(self, settings: WriterSettings) -> None:
        self.settings = settings
        self.events: asyncio.Queue[ToMain | WorkerGone] = asyncio.Queue()
        #: peak RSS (kB) and hot-path implementation of each worker, reported as it exits
        self.peak_rss_kb: dict[str, int] = {}
        self.implementations: dict[str, str] = {}
        self._processes: list[subprocess.Popen[bytes]] = []
        self._jobs: queue.Queue[tuple[PageJob, list[bytes]] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._control: Sender | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the workers; events go to ``loop``, so this may run in a thread while the
        loop goes on (starting a process from a large one takes a while)."""
        jobs_r, jobs_w = pipe()
        rows_r, rows_w = pipe()
        control_r, control_w = pipe()
        decoder_events_r, decoder_events_w = pipe()
        writer_events_r, writer_events_w = pipe()
        self._launch("decoder", {"jobs": jobs_r, "rows": rows_w, "events": decoder_events_w})
        self._launch("writer", {"rows": rows_r, "control": control_r, "events": writer_events_w})
        self._control = Sender(control_w)
        receivers = {"decoder": Receiver(decoder_events_r), "writer": Receiver(writer_events_r)}
        for target, args, name in (
            (self._send_jobs, (Sender(jobs_w),), "importer-jobs"),
            (_read_events, (receivers, loop, self.events), "importer-events"),
        ):
            thread = threading.Thread(target=target, args=args, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _launch(self, role: str, fds: dict[str, int]) -> None:
        """Start a worker as a fresh interpreter that inherits only its pipe ends.

        Not multiprocessing: its ``spawn`` re-runs a host script's unguarded main module
        in each child and starts a resource tracker that outlives the run; ``fork`` is
        unsafe in a host program with threads.
        """
        spec = WorkerSpec(role, fds, self.settings, os.getpid())
        try:
            self._processes.append(
                subprocess.Popen(command(spec), pass_fds=list(fds.values()), stdin=subprocess.DEVNULL)
            )
        finally:
            for fd in fds.values():
                os.close(fd)  # only the child holds these now, so EOF reaches everyone

    def send_page(self, job: PageJob, chunks: list[bytes]) -> None:
        """Queue a fetched page for the decoder: its body as it came, in its chunks (a
        thread writes them to the pipe in one call: never the loop, and never joined)."""
        self._jobs.put((job, chunks))

    def _send_jobs(self, jobs: Sender) -> None:
        while (item := self._jobs.get()) is not None:
            job, chunks = item
            try:
                jobs.send(encode(job), *chunks)
            except OSError:
                break
        jobs.close()

    def control(self, message: ToWriter) -> None:
        """A command for the writer (small: the pipe takes it at once). A writer that is gone
        takes nothing, and says why in its last events (WorkerFailed, WorkerGone)."""
        if self._control is None:
            return
        try:
            self._control.send(encode(message))
        except OSError:
            log.debug("the writer is gone; its events say why")

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the writer to commit and stop, then end every worker."""
        self._jobs.put(None)
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.send(encode(Stop()))
            self._control.close()
            self._control = None
        await asyncio.get_running_loop().run_in_executor(None, self._join, timeout)
        await asyncio.sleep(0)  # let the reader thread's last callbacks run
        while not self.events.empty():  # keep the workers' last words; the rest is moot
            event = self.events.get_nowait()
            if isinstance(event, WorkerExit):
                self.exited(event)

    def exited(self, event: WorkerExit) -> None:
        """Keep what a worker reports as it exits."""
        self.peak_rss_kb[event.role] = event.peak_rss_kb
        self.implementations[event.role] = event.implementation

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


def _read_events(
    receivers: dict[str, Receiver],
    loop: asyncio.AbstractEventLoop,
    events: asyncio.Queue[ToMain | WorkerGone],
) -> None:
    roles = {receiver.fd: role for role, receiver in receivers.items()}
    open_receivers = list(receivers.values())
    while open_receivers:
        ready, _, _ = select.select(open_receivers, [], [])
        for receiver in ready:
            try:
                header, _ = receiver.recv()
                event: ToMain | WorkerGone = decode_to_main(header)
            except EOFError:
                open_receivers.remove(receiver)
                receiver.close()
                event = WorkerGone(roles[receiver.fd])
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the loop is closed
                return
