"""What every part of the bench shares: the run's settings, a scenario and its records.

A record is one variant's result as a JSON object (it crosses processes and goes into
``--json`` and the baseline), aggregated over that variant's runs in one of two ways:

* ``median``: the median of every number across runs (nested dicts too);
* ``best``: the whole record of the run with the lowest wall time, so that its numbers
  (CPU time, requests, ...) belong together. ``seconds_each`` keeps every run's wall time.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Record = dict[str, Any]
Aggregate = Literal["median", "best"]

#: how a record was measured, shown in the report
WHOLE_PROCESS = "whole process"
IN_PROCESS = "in process"
IN_PROCESS_DEBUG = "in process, asyncio debug"
IN_PROCESS_TIMED = "in process, asyncio, callbacks timed"


@dataclass(frozen=True)
class Settings:
    workdir: Path
    #: None: each figure's own number of runs (the issue's: best of 2, median of 3, ...);
    #: N: every measured variant N times (the gate uses 3)
    repeats: int | None = None
    #: make the importer's writer this much slower (bench/slowdown): the gate's self-test
    slow_writer: float = 0.0
    peers: bool = True  # False: skip the peers (the gate needs none of them)
    #: the watch job's idle stretch (None: the job's own, 10 min full, 0.2 min quick)
    idle_minutes: float | None = None

    def runs(self, default: int) -> int:
        return self.repeats or default


@dataclass
class Scenario:
    name: str
    kind: str
    #: the figures and targets it stands for: "scale-1m" also for the quick run's small
    #: stand-in, so that the report and the gate treat both alike
    family: str
    server: Any  # bench.emulator.ServerSpec (Any: no import cycle for a dataclass's dict)
    records: list[Record] = field(default_factory=list)
    checks: list[Record] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(self, variant: str, runs: list[Record], how: Aggregate = "median") -> Record:
        rec = {"scenario": self.name, "variant": variant, "runs": len(runs), "aggregate": how}
        rec.update(_best(runs) if how == "best" else _median(runs))
        if len(runs) > 1 and all("seconds" in r for r in runs):
            rec["seconds_each"] = [r["seconds"] for r in runs]
        self.records.append(rec)
        return rec

    def add(self, rec: Record) -> Record:
        """A record measured elsewhere (a reference copied from another scenario)."""
        self.records.append(rec)
        return rec

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append({"scenario": self.name, "check": what, "ok": bool(ok), "detail": detail})

    def get(self, variant: str) -> Record | None:
        return next((r for r in self.records if r["variant"] == variant), None)

    def as_json(self) -> Record:
        return {
            "name": self.name,
            "kind": self.kind,
            "family": self.family,
            "server": self.server.__dict__,
            "records": self.records,
            "checks": self.checks,
            "notes": self.notes,
        }


def _median(runs: list[Record]) -> Record:
    """The median of every number across runs (nested dicts too); other values from the first."""
    out: Record = {}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float | dict):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = _median([r[key] for r in runs if isinstance(r.get(key), dict)])
        else:
            out[key] = statistics.median(r[key] for r in runs if key in r)
    return out


def _best(runs: list[Record]) -> Record:
    return dict(min(runs, key=lambda r: float(r["seconds"])))


def log(message: str) -> None:
    """Progress, on stderr (stdout is the report)."""
    print(message, file=sys.stderr, flush=True)


def label(rec: Record) -> str:
    """``importer, whole process (best of 2)``: the variant and how it was aggregated."""
    if rec.get("runs", 1) <= 1:
        return str(rec["variant"])
    return f"{rec['variant']} ({'best' if rec.get('aggregate') == 'best' else 'median'} of {rec['runs']})"


# The variants' names, shared by the scenarios, the figures and the report.
IMPORTER = "importer"  # whole process: the headline wall time
IMPORTER_IN = "importer, in process"  # CPU time of every process, the stall, peak RSS
IMPORTER_DEBUG = "importer, in process, asyncio debug"  # slow callbacks, asyncio's log
IMPORTER_TIMED = "importer, in process, callbacks timed"  # slow callbacks, no debug mode
CEILING = "store-only ceiling"
FLOOR = "round-trip floor"
VERIFY = "unchanged --full"
VERIFY_IN = "unchanged --full, in process"
VERIFY_DEBUG = "unchanged --full, in process, asyncio debug"
VERIFY_TIMED = "unchanged --full, in process, callbacks timed"
NO_CHANGE = "no change"
NO_CHANGE_DEBUG = "no change, asyncio debug"
NO_CHANGE_TIMED = "no change, callbacks timed"
CHANGED = "1% changed"
COMPILED = "compiled"
TWIN = "pure Python"
HOT_COMPILED = "hot path alone, compiled"
HOT_TWIN = "hot path alone, pure Python"
PEERS = ("seed-original", "seed-optimised", "plexapi")
HYDRATE = "hydrate"  # whole process, from an unhydrated copy of the synced database
HYDRATE_AGAIN = "hydrate, unchanged"  # whole process, again on the hydrated copy
PER_ITEM = "per-item client, computed"  # one request per show: requests × (latency + per-item cost)
PER_ITEM_SAMPLE = "per-item client, sample"  # the same client really run on a few shows
PER_ITEM_EXTRAPOLATED = "per-item client, extrapolated from the sample"
WATCH_POLLER = "poller: sync after one change"  # whole process, incremental: a 0-interval poll
WATCH_LATENCY = "watch: change to batch"  # one change at a time, POST answer to the batch event naming it
WATCH_IDLE = "watch: idle"  # HTTP requests and CPU of the watch while nothing changes
WATCH_LOAD = "watch: load"  # many changes a second, then the database against a fresh --full sync
WATCH_VERIFY = "watch: load, fresh --full sync"  # the fresh sync the load's database is compared with
WATCH_RUN = "watch: whole run"  # the watch process from start to SIGTERM (wait4)
