"""What every worker process shares: its start, its signals, its end.

Workers are fresh interpreters (never ``fork`` inside a host program that may have
threads; see ``WorkerPool``) started as ``python -P -c "...child import main..." SPEC``:
``-P`` keeps the current folder off ``sys.path``, so a worker imports the installed
package, never an ``importer/`` folder where the user happens to be. They inherit only
their pipe ends, ignore SIGINT/SIGTERM (the main process stops them through their
pipes), and die with the main process: pipe EOF, and ``PR_SET_PDEATHSIG`` on Linux.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import signal
import sys

import msgspec

from importer.channel import Receiver, Sender

#: how much lower the workers' CPU priority is than the main process's
WORKER_NICENESS = 10


class WriterSettings(msgspec.Struct, frozen=True):
    db_path: str
    #: SQLite page cache: keeps the writer well under 300 MB at 1M episodes
    cache_mb: int = 128
    #: rows per transaction before a commit. Large transactions are what make SQLite fast,
    #: and more so with random keys (Jellyfin ids): a commit writes every index page the
    #: transaction touched to the WAL, so 25,000-row commits wrote the episodes' key index
    #: (~60 MB at 1M episodes) forty times. Measured at 1M Jellyfin episodes: 25k rows
    #: 30 s, 100k 19 s, 200k 18 s, 400k 18 s.
    commit_rows: int = 200_000
    #: commit a page at most this many seconds after it was written, so that progress is
    #: saved while pages trickle in from a slow server (a crash costs at most that much)
    commit_interval: float = 5.0


class WorkerSpec(msgspec.Struct, frozen=True):
    """What a worker is told on its command line (no secret: the token stays in main)."""

    role: str  # "decoder" or "writer"
    fds: dict[str, int]  # its pipe ends, by name
    settings: WriterSettings
    parent: int  # the main process's pid


def command(spec: WorkerSpec) -> list[str]:
    return [
        sys.executable,
        "-P",
        "-c",
        "from importer.workers.child import main; main()",
        msgspec.msgpack.encode(spec).hex(),
    ]


def main() -> None:
    """Entry point of a worker process: rebuild its pipes from inherited fds, run its role."""
    spec = msgspec.msgpack.decode(bytes.fromhex(sys.argv[1]), type=WorkerSpec)
    _become_worker(spec.parent)
    try:
        if spec.role == "decoder":
            from importer.workers.decoder import run_decoder

            run_decoder(
                Receiver(spec.fds["jobs"]),
                Sender(spec.fds["rows"]),
                Sender(spec.fds["events"]),
                spec.settings,
            )
        else:
            from importer.workers.writer import run_writer

            run_writer(
                Receiver(spec.fds["rows"]),
                Receiver(spec.fds["control"]),
                Sender(spec.fds["events"]),
                spec.settings,
            )
    except (BrokenPipeError, ConnectionResetError, EOFError):
        # The main process is gone (killed, or it stopped us): nobody to tell, nothing to
        # print on a terminal that is no longer ours. An open transaction rolls back.
        pass
    # The role closed its database and said its last words: the interpreter's teardown
    # (~15 ms) would only make the main process wait longer at the end of every run.
    os._exit(0)


def _become_worker(parent: int) -> None:
    """Ignore the signals the main process handles, and die with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform == "linux":
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # it died before the line above: go with it
                os._exit(0)
    # Below the main process, and below whatever program hosts it: when the CPUs are
    # busy, its event loop (and a home server on the same machine) comes first.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    # CPU-bound batch work: on Linux, a waking worker then never preempts the main
    # process's event loop, nor the host program's (it waits for its time slice)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    # Rows are short-lived tuples: the cyclic GC only costs time here.
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)


def peak_rss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
