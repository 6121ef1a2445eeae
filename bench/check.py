"""The regression gate: ``--check bench/baseline.json`` fails when a gated ratio is more
than 15% worse than in the baseline (each the median of 3 runs).

Only ratios and counts are gated, never a wall time: CPU-bound regressions show against
the store-only ceiling measured in the same run (in CPU time: on a shared machine the
wall-time ratio swings by a third from one run to the next, the CPU-time one by a few
percent), latency-bound ones in request counts and round trips, which noise does not
move, and in the seed's wall time over its round-trip floor (mostly waiting).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report import cpu_vs_ceiling, field_of, vs_floor
from bench.scenarios import Scenario

TOLERANCE = 0.15
Gate = tuple[str, str, Callable[[Scenario], float | None], bool]  # prefix, name, value, higher is better


def _hot_path_speedup(s: Scenario) -> float | None:
    c, p = s.get("hot path alone, compiled"), s.get("hot path alone, pure Python")
    return p["seconds"] / c["seconds"] if c and p and c["seconds"] == c["seconds"] else None


GATES: tuple[Gate, ...] = (
    ("seed-", "requests", field_of("importer", "requests"), False),
    ("seed-", "round trips", field_of("importer", "round_trips"), False),
    ("seed-", "wall time vs round-trip floor", vs_floor, False),
    ("scale-", "requests", field_of("importer", "requests"), False),
    ("scale-", "CPU time vs store-only ceiling", cpu_vs_ceiling, True),
    ("nightly-", "no change: requests per library", field_of("no change", "requests_per_library"), False),
    ("native-", "hot path: compiled speedup", _hot_path_speedup, True),
)


def gates(scenarios: list[Scenario]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for s in scenarios:
        for prefix, name, value, higher in GATES:
            if s.name.startswith(prefix) and (v := value(s)) is not None:
                out[f"{s.name}: {name}"] = {"value": v, "higher_is_better": higher}
    return out


def compare(
    current: dict[str, dict[str, Any]], baseline: dict[str, dict[str, Any]], tolerance: float = TOLERANCE
) -> tuple[list[str], list[str]]:
    """Lines for the report, and the regressions among them."""
    lines, failures = [], []
    for key in sorted(current.keys() & baseline.keys()):
        now, then = current[key]["value"], baseline[key]["value"]
        higher = current[key]["higher_is_better"]
        worse = (then - now) / then if higher else (now - then) / then if then else 0.0
        line = f"{key}: {now:.3g} (baseline {then:.3g}"
        line += f", {worse:.0%} worse)" if worse > 0 else ")"
        lines.append(line)
        if worse > tolerance:
            failures.append(line)
    return lines, failures
