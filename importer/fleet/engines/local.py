"""The default engine: each job in a fresh interpreter on this machine.

Not ``multiprocessing`` and never ``fork`` (the process rules of the design): a job is
``python -P -m importer.fleet.job``, which imports the installed package, gets its spec on
stdin (no token on a command line) and writes its outcome on stdout. Each job leads its
own process group, so a Ctrl-C on the terminal reaches the fleet's driver alone, which
then stops every job once; and each job gets a SIGTERM when the driver dies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import msgspec

from importer.fleet.engines import lost
from importer.fleet.job import JobOutcome, JobSpec

#: how often :meth:`LocalEngine.wait` looks at its processes
_POLL_S = 0.02


@dataclass
class _Running:
    spec: JobSpec
    process: subprocess.Popen[bytes]


class LocalEngine:
    name = "local"

    def __init__(self) -> None:
        self._running: list[_Running] = []

    def start(self) -> None:
        pass

    def submit(self, spec: JobSpec) -> None:
        process = subprocess.Popen(
            [sys.executable, "-P", "-m", "importer.fleet.job", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdin is not None
        with process.stdin:
            process.stdin.write(msgspec.json.encode(spec))
        self._running.append(_Running(spec, process))

    def wait(self, timeout: float) -> list[JobOutcome]:
        deadline = time.monotonic() + timeout
        while True:
            ended = [job for job in self._running if job.process.poll() is not None]
            if ended or not self._running or time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        for job in ended:
            self._running.remove(job)
        return [_outcome(job) for job in ended]

    def cancel_all(self, *, force: bool = False) -> None:
        for job in self._running:
            with contextlib.suppress(ProcessLookupError):
                if force:  # the job and its workers
                    os.killpg(job.process.pid, signal.SIGKILL)
                else:
                    job.process.send_signal(signal.SIGINT)

    def close(self) -> None:
        self.cancel_all(force=True)
        for job in self._running:
            job.process.wait()
            if job.process.stdout is not None:
                job.process.stdout.close()
        self._running.clear()


def _outcome(job: _Running) -> JobOutcome:
    assert job.process.stdout is not None
    with job.process.stdout:
        out = job.process.stdout.read()
    code = job.process.returncode
    if code == 0 and out:
        with contextlib.suppress(msgspec.DecodeError):
            return msgspec.json.decode(out, type=JobOutcome)
    why = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
    return lost(job.spec, why)
