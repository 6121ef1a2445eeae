"""The fleet's driver: which server's job runs next, what an ending means, the report.

Not a scheduler of our own: the engine runs the jobs; the driver only keeps a bounded
number in flight and decides by exit code.

- **Order.** The least recently synced first (never synced: first of all).
- **Bounded.** At most ``jobs`` in flight, so a few large servers never hold back the
  many small ones for long; ``slice_s`` stops a long full sync at its time budget and
  puts it at the back of the queue (it resumes from its cursor).
- **Endings.** 0 done; 75 (and a job whose process died) run again after a backoff, up
  to a budget; 4 (another run holds the database) is reported, not retried tonight; 3
  (the mass-delete guard) is reported, never retried; 2 and 1 are reported.
- **Stopping.** :meth:`Fleet.stop` (the first SIGINT/SIGTERM) asks every job to stop
  cleanly and starts no other; a second stop ends them at once.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from importer.fleet.config import ServerEntry
from importer.fleet.engines import Engine
from importer.fleet.job import JobOutcome, JobSpec

#: the fleet's exit code is the first of these that any server ended with
EXIT_PRIORITY = (2, 1, 3, 75, 4, 0)


def fleet_exit_code(codes: Iterable[int]) -> int:
    """The first of :data:`EXIT_PRIORITY` among ``codes`` (0 for none); a code not in it
    counts as 1, a failure."""
    present = {code if code in EXIT_PRIORITY else 1 for code in codes}
    return next((code for code in EXIT_PRIORITY if code in present), 0)


#: how long one wait for an ending lasts: also how soon a stop is acted on
_TICK_S = 0.2
#: after a clean stop was asked for, how long the jobs get to commit before they are ended
_STOP_GRACE_S = 120.0


@dataclass(frozen=True)
class FleetOptions:
    jobs: int = 2  # jobs in flight at most
    full: bool = False
    slice_s: float | None = None
    #: runs again after an exit 75 (or a lost job), each after a longer backoff
    retries: int = 3
    backoff_s: float = 30.0
    #: how often the live summary is printed at most (seconds)
    summary_every_s: float = 2.0


@dataclass
class ServerState:
    """One server's night so far."""

    entry: ServerEntry
    last_synced: int  # unix s of its last run that ended done; 0: never
    runs: int = 0  # jobs started (slices and retries included)
    slices: int = 0
    retries: int = 0
    not_before: float = 0.0  # monotonic: a retry waits for its backoff
    first_started_at: float | None = None  # seconds since the fleet started
    finished_at: float | None = None
    seconds: float = 0.0  # time its jobs ran, all of them
    rows: int = 0
    requests: int = 0
    ending: JobOutcome | None = None

    def report(self) -> dict[str, Any]:
        ending = self.ending
        return {
            "name": self.entry.name,
            "kind": ending.kind if ending and ending.kind else self.entry.kind,
            "exit_code": ending.exit_code if ending else None,
            "outcome": ending.outcome if ending else "not started",
            "rows": self.rows,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "attempts": self.runs,
            "slices": self.slices,
            "first_started_at": _rounded(self.first_started_at),
            "finished_at": _rounded(self.finished_at),
            "message": ending.message if ending else None,
        }


@dataclass
class FleetReport:
    engine: str
    jobs: int
    seconds: float
    exit_code: int
    interrupted: bool
    servers: list[ServerState] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            "interrupted": self.interrupted,
            "servers": [server.report() for server in self.servers],
        }


class Fleet:
    """One fleet run: every server's job on ``engine``, until each has ended."""

    def __init__(
        self,
        servers: Sequence[tuple[ServerEntry, int]],
        engine: Engine,
        options: FleetOptions,
        notice: Callable[[str], None],
    ) -> None:
        """``servers``: each entry with when it was last synced (unix s, 0: never)."""
        self.engine = engine
        self.options = options
        self.notice = notice
        self.states = [ServerState(entry, synced) for entry, synced in servers]
        self._stop_signal: int | None = None
        self._force = False
        self._started = 0.0
        self._last_summary = 0.0
        self._stop_asked_at: float | None = None
        self._running: dict[str, ServerState] = {}  # by server name

    def stop(self, signal_number: int) -> None:
        """Stop cleanly: every job commits what it fetched; a second call ends them at once.
        Safe to call from a signal handler."""
        if self._stop_signal is None:
            self._stop_signal = signal_number
        else:
            self._force = True

    def run(self) -> FleetReport:
        self._started = time.monotonic()
        queue = deque(sorted(self.states, key=lambda s: s.last_synced))
        running = self._running
        cancelled = False
        while queue or running:
            if self._stop_signal is not None:
                if not cancelled or self._force or self._past_grace():
                    self.engine.cancel_all(force=self._force or self._past_grace())
                    cancelled = True
                queue.clear()  # not started tonight: the next run takes them first
            self._fill(queue, running)
            if not running:
                self._sleep_until_due(queue)
                continue
            for outcome in self.engine.wait(_TICK_S):
                self._ended(running.pop(outcome.name), outcome, queue)
            self._summary()
        self._summary(final=True)
        return self._report()

    def _past_grace(self) -> bool:
        if self._stop_asked_at is None:
            self._stop_asked_at = time.monotonic()
        return time.monotonic() - self._stop_asked_at > _STOP_GRACE_S

    def _fill(self, queue: deque[ServerState], running: dict[str, ServerState]) -> None:
        """Start jobs, first in line first, while there is room (none once stopping)."""
        now = time.monotonic()
        while self._stop_signal is None and len(running) < self.options.jobs:
            state = next((s for s in queue if s.not_before <= now), None)
            if state is None:
                return
            queue.remove(state)
            running[state.entry.name] = state
            state.runs += 1
            if state.first_started_at is None:
                state.first_started_at = now - self._started
            spec = JobSpec(server=state.entry, full=self.options.full, slice_s=self.options.slice_s)
            self.engine.submit(spec)

    def _sleep_until_due(self, queue: deque[ServerState]) -> None:
        """Nothing runs: the queue holds retries waiting for their backoff."""
        if queue:
            due = min(s.not_before for s in queue)
            time.sleep(min(_TICK_S, max(0.0, due - time.monotonic())))

    def _ended(self, state: ServerState, outcome: JobOutcome, queue: deque[ServerState]) -> None:
        state.seconds += outcome.seconds
        state.rows += outcome.rows
        state.requests += outcome.requests
        stopping = self._stop_signal is not None
        if outcome.outcome == "sliced" and not stopping:
            state.slices += 1
            queue.append(state)  # behind everyone else; it resumes from its cursor
            return
        if outcome.exit_code == 75 and not stopping and state.retries < self.options.retries:
            backoff = self.options.backoff_s * 2**state.retries * random.uniform(0.8, 1.2)
            state.retries += 1
            state.not_before = time.monotonic() + backoff
            self.notice(f"{state.entry.name}: {_said(outcome)}; trying again in {backoff:.0f} s")
            queue.append(state)
            return
        if outcome.outcome == "sliced":  # stopped at its slice just as the fleet stopped
            outcome = msgspec.structs.replace(outcome, outcome="interrupted")
        state.ending = outcome
        state.finished_at = time.monotonic() - self._started
        if outcome.exit_code not in (0, 130, 143):
            self.notice(f"{state.entry.name}: {_said(outcome)}")

    def _summary(self, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last_summary < self.options.summary_every_s:
            return
        self._last_summary = now
        ended = [s for s in self.states if s.ending is not None]
        done = sum(1 for s in ended if s.ending is not None and s.ending.exit_code == 0)
        rows = sum(s.rows for s in self.states)
        elapsed = max(now - self._started, 1e-9)
        self.notice(
            f"{done}/{len(self.states)} done, {len(self._running)} running, {len(ended) - done} not done; "
            f"{rows:,} rows, {rows / elapsed:,.0f} rows/s"
        )

    def _report(self) -> FleetReport:
        if self._stop_signal is not None:
            code = 128 + self._stop_signal
        else:
            code = fleet_exit_code(s.ending.exit_code for s in self.states if s.ending is not None)
        return FleetReport(
            engine=self.engine.name,
            jobs=self.options.jobs,
            seconds=time.monotonic() - self._started,
            exit_code=code,
            interrupted=self._stop_signal is not None,
            servers=self.states,
        )


def _said(outcome: JobOutcome) -> str:
    return f"exit {outcome.exit_code} ({outcome.outcome})" + (
        f": {outcome.message}" if outcome.message else ""
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
