"""The regression gate: ``--check bench/baseline.json`` fails when a gated figure is more
than 15% worse than in the baseline (each the median of 3 runs with ``--check``).

Only ratios and counts are gated, never a wall time alone: on a shared 2-core machine a
wall time moves by a third from one run to the next.

* CPU-bound regressions show against the store-only ceiling measured in the same run,
  in CPU time (it moves by a few percent where the wall-time ratio moves by a third):
  the import's (in process, every process) and the verification's (whole process).
  The verification is held against the ceiling and not against the import: the import
  is meant to get faster too, and a faster import would read as a slower verification.
* Latency-bound ones in request counts and dependent round trips, which noise does not
  move, and in the seed's wall time over its round-trip floor (mostly waiting).
* A build without the C extension in the compiled hot path's speedups.
* Hydration's batching in its request counts (a first and an unchanged run).
* The watch's batches in their requests per change (its latencies are not gated).

A figure whose definition changed gets a new name, so that an older baseline is never
compared with it: it shows as "not in the baseline" until the baseline is regenerated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench import figures
from bench.figures import Figure
from bench.model import (
    HOT_COMPILED,
    HOT_TWIN,
    HYDRATE,
    HYDRATE_AGAIN,
    IMPORTER,
    VERIFY,
    WATCH_LATENCY,
    Scenario,
)

TOLERANCE = 0.15


@dataclass(frozen=True)
class Gate:
    family: str  # a prefix of the scenario family: "scale" covers scale-100k and scale-1m
    name: str
    value: Figure
    higher_is_better: bool


def _hot_path_speedup(s: Scenario) -> float | None:
    c, p = s.get(HOT_COMPILED), s.get(HOT_TWIN)
    return p["seconds"] / c["seconds"] if c and p and c["seconds"] == c["seconds"] else None


GATES = (
    Gate("seed", "requests", figures.field_of(IMPORTER, "requests"), False),
    Gate("seed", "round trips", figures.field_of(IMPORTER, "round_trips"), False),
    Gate("seed", "wall time (whole process) vs round-trip floor", figures.vs_floor, False),
    Gate("scale", "requests", figures.field_of(IMPORTER, "requests"), False),
    Gate("scale", "CPU time vs store-only ceiling (writes + indexes)", figures.cpu_vs_ceiling, True),
    Gate("verify", "requests", figures.field_of(VERIFY, "requests"), False),
    Gate("verify", "CPU time vs store-only ceiling (writes + indexes)", figures.verify_cpu_vs_ceiling, True),
    Gate("nightly", "no change: requests per library", figures.requests_per_library, False),
    Gate("native", "hot path: compiled speedup", _hot_path_speedup, True),
    Gate("native", "CPU time: twin / compiled (whole process)", figures.twin_over_compiled("cpu_s"), True),
    Gate("hydrate", "requests", figures.field_of(HYDRATE, "requests"), False),
    Gate("hydrate", "unchanged: requests", figures.field_of(HYDRATE_AGAIN, "requests"), False),
    # a count; the watch's latencies are timing and never gated
    Gate("watch", "requests per change", figures.field_of(WATCH_LATENCY, "requests_per_change"), False),
)


def gates(scenarios: list[Scenario]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for s in scenarios:
        for gate in GATES:
            if s.family.startswith(gate.family) and (v := gate.value(s)) is not None:
                out[f"{s.name}: {gate.name}"] = {"value": v, "higher_is_better": gate.higher_is_better}
    return out


@dataclass
class Comparison:
    lines: list[str] = field(default_factory=list)  # every figure in both, for the report
    regressions: list[str] = field(default_factory=list)  # those worse than the tolerance
    unmatched: list[str] = field(default_factory=list)  # measured now, not in the baseline


def compare(
    current: dict[str, dict[str, Any]], baseline: dict[str, dict[str, Any]], tolerance: float = TOLERANCE
) -> Comparison:
    out = Comparison(unmatched=sorted(current.keys() - baseline.keys()))
    for key in sorted(current.keys() & baseline.keys()):
        now, then = current[key]["value"], baseline[key]["value"]
        higher = current[key]["higher_is_better"]
        worse = 0.0 if not then else (then - now) / then if higher else (now - then) / then
        line = f"{key}: {now:.3g} (baseline {then:.3g}"
        line += f", {worse:.0%} worse)" if worse > 0 else ")"
        out.lines.append(line)
        if worse > tolerance:
            out.regressions.append(line)
    return out
