"""The markdown report: the targets each figure is held against, then every measurement."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.scenarios import Record, Scenario

PEERS = ("seed-original", "seed-optimised", "plexapi")
IMPORTERS = ("importer", "no change", "1% changed", "compiled", "pure Python")


@dataclass(frozen=True)
class Target:
    scenario: str  # a prefix of the scenario name
    figure: str
    value: Callable[[Scenario], float | None]
    limit: float
    unit: str
    higher_is_better: bool

    def met(self, value: float) -> bool:
        return value >= self.limit if self.higher_is_better else value <= self.limit


def field_of(variant: str, key: str) -> Callable[[Scenario], float | None]:
    """A number of one variant's record."""

    def value(s: Scenario) -> float | None:
        rec = s.get(variant)
        return None if rec is None else rec.get(key)

    return value


def speedup_over(peer: str, s: Scenario) -> float | None:
    """How many times faster than ``peer`` the importer is (wall time)."""
    imp, other = s.get("importer"), s.get(peer)
    return other["seconds"] / imp["seconds"] if imp and other else None


def vs_ceiling(s: Scenario) -> float | None:
    """The importer's speed as a fraction of the store-only ceiling's."""
    imp, ceiling = s.get("importer"), s.get("store-only ceiling")
    return ceiling["seconds"] / imp["seconds"] if imp and ceiling else None


def vs_floor(s: Scenario) -> float | None:
    """The importer's wall time as a multiple of the round-trip floor."""
    imp, floor = s.get("importer"), s.get("round-trip floor")
    return imp["seconds"] / floor["seconds"] if imp and floor else None


def cpu_vs_ceiling(s: Scenario) -> float | None:
    """The ceiling's CPU time for its writes over the importer's CPU time (every process
    of it): the share of the importer's CPU that SQLite's own work would take. Host
    contention moves it less than wall time, so the gate holds it."""
    imp, ceiling = s.get("importer"), s.get("store-only ceiling")
    return ceiling["write_cpu_s"] / sum(imp["cpu_s"].values()) if imp and ceiling else None


def peak_rss_mb(s: Scenario) -> float | None:
    rec = s.get("importer")
    return max(rec["rss_kb"].values()) / 1024 if rec else None


def max_stall_ms(s: Scenario) -> float | None:
    stalls = [r["stall_ms"] for r in s.records if "stall_ms" in r]
    return max(stalls) if stalls else None


TARGETS = (
    Target("seed-", "wall time", field_of("importer", "seconds"), 1.0, "s", False),
    Target("seed-", "vs python-plexapi script", lambda s: speedup_over("plexapi", s), 20, "×", True),
    Target("scale-", "vs python-plexapi script", lambda s: speedup_over("plexapi", s), 20, "×", True),
    Target("scale-", "speed vs store-only ceiling", vs_ceiling, 0.8, "×", True),
    Target("scale-", "peak RSS, largest process", peak_rss_mb, 300, "MB", False),
    Target(
        "nightly-",
        "no change: requests per library",
        field_of("no change", "requests_per_library"),
        6,
        "",
        False,
    ),
    Target("", "host loop's longest stall", max_stall_ms, 20, "ms", False),
)


def _num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    return f"{round(value):,}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:,.0f}"


def targets_table(scenarios: list[Scenario]) -> list[str]:
    lines = ["| scenario | figure | measured | target | |", "|---|---|---|---|---|"]
    for s in scenarios:
        for t in TARGETS:
            if not s.name.startswith(t.scenario) or (value := t.value(s)) is None:
                continue
            shown = _ratio(value) if t.unit in ("×", "") else _num(value, 2 if t.unit == "s" else 0)
            sign = "≥" if t.higher_is_better else "≤"
            lines.append(
                f"| {s.name} | {t.figure} | {shown} {t.unit} | {sign} {t.limit:g} {t.unit} "
                f"| {'✓' if t.met(value) else '✗'} |"
            )
    return lines


def _against(s: Scenario, rec: Record) -> str:
    variant = rec["variant"]
    if variant in PEERS and (x := speedup_over(variant, s)):
        return f"importer {_ratio(x)}× faster"
    if variant == "store-only ceiling" and (x := vs_ceiling(s)) and (c := cpu_vs_ceiling(s)):
        return f"importer at {x:.2f}× its speed ({c:.2f}× in CPU time)"
    if variant == "round-trip floor" and (x := vs_floor(s)):
        return f"importer {x:.2f}× the floor"
    if variant == "pure Python" and (other := s.get("compiled")):
        return f"compiled {rec['seconds'] / other['seconds']:.2f}× faster"
    if variant == "hot path alone, pure Python" and (other := s.get("hot path alone, compiled")):
        return f"compiled {rec['seconds'] / other['seconds']:.1f}× faster"
    return ""


def measurements_table(s: Scenario) -> list[str]:
    head = (
        "variant | wall s | requests | round trips | MB served | transactions | episodes/s "
        "| CPU s main + workers | peak RSS MB (per process) | loop stall ms | emulator CPU s | compared"
    )
    lines = [f"| {head} |", "|" + "---|" * (head.count("|") + 1)]
    for rec in s.records:
        cpu = rec.get("cpu_s")
        rss = rec.get("rss_kb") or {}
        cells = [
            rec["variant"] + (f" (median of {rec['runs']})" if rec["runs"] > 1 else ""),
            _seconds(rec.get("seconds")),
            _num(rec.get("requests")),
            _num(rec.get("round_trips")),
            _num(rec["bytes"] / 1e6, 1) if rec.get("bytes") else "–",
            _num(rec.get("transactions")),
            _num(rec.get("episodes_per_s")),
            f"{cpu['main']:.1f} + {cpu['workers']:.1f}" if cpu else "–",
            " / ".join(f"{k} {v / 1024:.0f}" for k, v in sorted(rss.items())) or "–",
            _num(rec.get("stall_ms"), 1),
            _num((rec.get("emulator") or {}).get("cpu_s"), 1),
            _against(s, rec),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(scenarios: list[Scenario], header: str = "") -> str:
    out = [header, "", "### Targets", "", *targets_table(scenarios), ""]
    for s in scenarios:
        server = s.server
        size = f"{server.episodes:,} episodes" if server.episodes else f"{server.shows} shows × 5 × 10"
        latency = f", {server.latency_ms:g} ms per request" if server.latency_ms else ""
        out += [f"### {s.name}: {s.kind}, {size}{latency}", "", *measurements_table(s), ""]
        out += [f"- {note}" for note in s.notes]
        failed = [c for c in s.checks if not c["ok"]]
        out += [f"- **check failed**: {c['check']} ({c['detail']})" for c in failed]
        if s.notes or failed:
            out.append("")
    return "\n".join(out)
