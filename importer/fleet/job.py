"""One fleet job: sync one server of the config, in this process, and say how it ended.

Whatever engine runs it (a fresh interpreter of the local engine, a Ray worker), a job
gets the server's config entry and file paths, never a token: engines keep task
arguments and may print them in errors. The job reads the token where it runs.

It stops as ``importer sync`` does on Ctrl-C: SIGINT, SIGTERM or a ``KeyboardInterrupt``
(how ``ray.cancel`` interrupts a running task) make it commit what it fetched, record the
run as interrupted and end with 130/143. ``JobSpec.slice_s`` stops a full sync the same
way at a time budget, so that others get their turn; it resumes later from its cursor.

``python -m importer.fleet.job PARENT_PID`` reads a :class:`JobSpec` (JSON) on stdin and
writes its :class:`JobOutcome` (JSON) on stdout: the local engine's job process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import msgspec

from importer.errors import ImporterError, Interrupted
from importer.fleet.config import ServerEntry, read_server_token

if TYPE_CHECKING:
    from importer.pipeline import Importer
    from importer.results import SyncResult

#: how a job ended, as the fleet reports it (the exit code says what happens next)
Outcome = Literal[
    "done", "sliced", "interrupted", "stopped", "locked", "temporary", "usage", "failed", "lost"
]

#: the outcome of each exit code (the codes of ``importer sync``)
OUTCOMES: dict[int, Outcome] = {
    0: "done",
    1: "failed",
    2: "usage",
    3: "stopped",
    4: "locked",
    75: "temporary",
    130: "interrupted",
    143: "interrupted",
}

#: how often a job past its slice asks again whether it may stop (an incremental run
#: never may; a run may move on to a library that lists in full)
_SLICE_CHECK_S = 1.0


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a job is given: never a token."""

    server: ServerEntry
    full: bool = False
    #: stop a full sync after this many seconds (it resumes from its cursor); None: never
    slice_s: float | None = None


class JobOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """How a job ended."""

    name: str
    exit_code: int
    outcome: Outcome
    rows: int = 0  # rows written or deleted
    requests: int = 0
    seconds: float = 0.0
    message: str | None = None  # what went wrong, in the importer's words (never a token)
    kind: str | None = None  # the server's kind, once the sync found it


def run_job(spec: JobSpec) -> JobOutcome:
    """Sync ``spec.server`` in this process; never raises for what a sync can meet."""
    started = time.monotonic()
    name = spec.server.name
    importer: Importer | None = None

    def ended(
        code: int, message: str | None = None, *, outcome: Outcome | None = None, kind: str | None = None
    ) -> JobOutcome:
        tally = importer.tally if importer is not None else None
        return JobOutcome(
            name=name,
            exit_code=code,
            outcome=outcome or OUTCOMES.get(code, "failed"),
            rows=tally.rows if tally else 0,
            requests=tally.requests if tally else 0,
            seconds=time.monotonic() - started,
            message=message,
            kind=kind,
        )

    stop = _Stop()
    try:
        from importer.pipeline import Importer

        options = spec.server.sync_options(full=spec.full)
        importer = Importer(spec.server.url, spec.server.db_path, read_server_token(spec.server), options)
        result = _run(importer, stop, spec.slice_s)
    except Interrupted as exc:
        if stop.sliced:
            minutes = (spec.slice_s or 0) / 60
            return ended(130, f"sliced after {minutes:g} min: resumes from its cursor", outcome="sliced")
        return ended(143 if exc.details.get("signal") == "SIGTERM" else 130, str(exc))
    except ImporterError as exc:
        return ended(exc.exit_code, str(exc))
    except KeyboardInterrupt:  # before or after the loop ran: nothing was fetched uncommitted
        return ended(130, "interrupted")
    return _finished(result, ended)


def _finished(result: SyncResult, ended: Callable[..., JobOutcome]) -> JobOutcome:
    code = result.exit_code
    reasons = [f"{lib.title}: {lib.reason}" for lib in result.libraries if lib.reason]
    return ended(code, "; ".join(reasons) or None, kind=result.server.kind)


class _Stop:
    """Why the job was asked to stop: a signal, or its slice of time."""

    def __init__(self) -> None:
        self.sliced = False


def _run(importer: Importer, stop: _Stop, slice_s: float | None) -> SyncResult:
    """Run the import on its own event loop (uvloop where it exists), with the first
    SIGINT/SIGTERM as a clean stop, and put back the process's signal handlers after: in
    another framework's worker they are that framework's."""
    from importer.cli import run_async

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_async(_import(importer, stop, slice_s))
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in previous.items():
                if handler is not None:
                    signal.signal(sig, handler)


async def _import(importer: Importer, stop: _Stop, slice_s: float | None) -> SyncResult:
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    # Signal handlers need the main thread; Ray runs a task there, and delivers ray.cancel
    # as a SIGINT to it.
    on_main = threading.current_thread() is threading.main_thread()
    if on_main:
        for sig in signals:
            loop.add_signal_handler(sig, importer.cancel, sig.name)
    slicer = loop.create_task(_slice(importer, stop, slice_s)) if slice_s else None
    try:
        return await importer.run()
    finally:
        if slicer is not None:
            slicer.cancel()
        if on_main:
            for sig in signals:
                loop.remove_signal_handler(sig)


async def _slice(importer: Importer, stop: _Stop, slice_s: float) -> None:
    await asyncio.sleep(slice_s)
    while not importer.sliceable:
        await asyncio.sleep(_SLICE_CHECK_S)
    if not importer.cancelling:
        stop.sliced = True
        importer.cancel("slice")


def main() -> None:
    """The local engine's job process: spec on stdin, outcome on stdout."""
    parent = int(sys.argv[1])
    _die_with(parent)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    # Only the outcome goes to stdout; anything else that prints goes to stderr.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    spec = msgspec.json.decode(sys.stdin.buffer.read(), type=JobSpec)
    # the importer's warnings reach the fleet's stderr, each naming its server
    logging.basicConfig(level=logging.WARNING, format=f"fleet: {spec.server.name}: %(message)s")
    outcome = run_job(spec)
    out.write(msgspec.json.encode(outcome) + b"\n")
    out.flush()
    sys.stderr.flush()
    os._exit(0)  # the sync ended its workers and closed its files: no teardown to wait for


def _die_with(parent: int) -> None:
    """A SIGTERM when the fleet's driver dies, however it dies: the job then stops as on
    Ctrl-C, with what it fetched committed."""
    # Outside the loop, SIGTERM acts as SIGINT does: KeyboardInterrupt, an outcome.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if sys.platform == "linux":
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)


if __name__ == "__main__":
    main()
