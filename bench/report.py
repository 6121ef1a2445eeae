"""The markdown report: the targets each figure is held against, then every measurement."""

from __future__ import annotations

import math
from typing import Any

from bench import figures
from bench.figures import TARGETS, Target
from bench.model import (
    CEILING,
    FLOOR,
    HOT_COMPILED,
    HOT_TWIN,
    HYDRATE,
    HYDRATE_AGAIN,
    PEERS,
    PER_ITEM,
    PER_ITEM_EXTRAPOLATED,
    PER_ITEM_SAMPLE,
    TWIN,
    WATCH_IDLE,
    WATCH_LATENCY,
    WATCH_LOAD,
    WATCH_POLLER,
    WATCH_RUN,
    WATCH_VERIFY,
    Record,
    Scenario,
    label,
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


def _how(rec: Record) -> str:
    """``whole process, best of 2``: how a record was measured and aggregated."""
    runs = rec.get("runs", 1)
    agg = f"{'best' if rec.get('aggregate') == 'best' else 'median'} of {runs}" if runs > 1 else "1 run"
    return ", ".join(filter(None, [rec.get("measured"), agg]))


def _shown(t: Target, value: float) -> str:
    if t.unit == "":
        return f"{value:g}"  # a count
    if t.unit == "×":
        return f"{_ratio(value)} ×"
    if t.unit == "s":
        return f"{value:.2f} s"
    return f"{_num(value)} {t.unit}"


def targets_table(scenarios: list[Scenario]) -> list[str]:
    lines = ["| scenario | figure | measured on | measured | target | |", "|---|---|---|---|---|---|"]
    for s in scenarios:
        for t in TARGETS:
            if not t.applies(s) or (value := t.value(s)) is None:
                continue
            used = [rec for v in t.uses if (rec := s.get(v)) is not None]
            how = "; ".join(f"{rec['variant']}: {_how(rec)}" for rec in used)
            bound = t.bound(s)
            sign = "≥" if t.higher_is_better else "≤"
            lines.append(
                f"| {s.name} | {t.figure} | {how} | {_shown(t, value)} | {sign} {_shown(t, bound)} "
                f"| {'✓' if t.met(value, bound) else '✗'} |"
            )
    return lines


def _against(s: Scenario, rec: Record) -> str:
    variant = rec["variant"]
    if "from" in rec:
        x = figures.verify_cpu_vs_ceiling(s)
        return f"measured in {rec['from']}" + (f"; verification at {x:.2f}× its CPU time" if x else "")
    if variant in PEERS and (x := figures.speedup_over(variant)(s)):
        return f"importer {_ratio(x)}× faster"
    if variant == CEILING and (x := figures.wall_vs_ceiling(s)):
        cpu = figures.cpu_vs_ceiling(s)
        return f"importer at {x:.2f}× its speed" + (f" ({cpu:.2f}× in CPU time)" if cpu else "")
    if variant == FLOOR and (x := figures.vs_floor(s)):
        return f"importer {x:.2f}× the floor"
    if variant == TWIN and (w := figures.twin_over_compiled("seconds")(s)):
        cpu = figures.twin_over_compiled("cpu_s")(s) or float("nan")
        return f"compiled {w:.2f}× faster ({cpu:.2f}× in CPU time)"
    if variant == HOT_TWIN and (other := s.get(HOT_COMPILED)):
        return f"compiled {rec['seconds'] / other['seconds']:.1f}× faster"
    return _against_hydrate(s, rec)


def _against_hydrate(s: Scenario, rec: Record) -> str:
    variant = rec["variant"]
    if variant == PER_ITEM and (r := figures.hydrate_requests_ratio(s)):
        wall = figures.hydrate_wall_ratio(s)
        return f"hydrate makes 1/{_ratio(r)} of its requests" + (f", {_ratio(wall)}× faster" if wall else "")
    if variant == PER_ITEM_SAMPLE and (x := figures.sample_vs_computed(s)):
        return f"{rec['seconds_per_request']:.3f} s a request: {x:.2f}× the computed time per request"
    if variant == PER_ITEM_EXTRAPOLATED and (x := figures.hydrate_extrapolated_wall_ratio(s)):
        return f"hydrate {_ratio(x)}× faster"
    if variant == HYDRATE and rec.get("shows"):
        return f"{_num(rec['shows'] - rec['unhydrated_shows'])} of {_num(rec['shows'])} shows hydrated"
    if variant == HYDRATE_AGAIN and s.get(HYDRATE):
        return "on the hydrated copy, nothing changed"
    return _against_watch(s, rec)


def _against_watch(s: Scenario, rec: Record) -> str:
    variant = rec["variant"]
    if variant == WATCH_POLLER:
        return "a poll with no interval (real pollers add 5 min to 24 h)"
    if variant == WATCH_LATENCY and "p95_s" in rec:
        seen = f"{rec['seen']} of {rec['changes']} changes seen"
        x = figures.watch_vs_poller()(s)
        text = f"{seen}; p95 {x:.2f}× the poller's sync" if x else seen
        if "p95_after_debounce_s" in rec:
            y = figures.watch_vs_poller("p95_after_debounce_s")(s)
            text += (f"; less the {rec['debounce_s']:g} s debounce: p50 {rec['p50_after_debounce_s']:.3f} s, "
                     f"p95 {rec['p95_after_debounce_s']:.3f} s" + (f" ({y:.2f}×)" if y else ""))  # fmt: skip
        return text
    if variant == WATCH_IDLE:
        return (
            f"{rec['requests']} requests, {rec['websocket_connections']} websocket connections in "
            f"{rec['minutes']:.1f} min: {rec['requests_per_library_per_hour']:.2f} per library per hour; "
            f"CPU {rec['cpu_s_per_hour']:.2f} s/h, {rec['cpu_s_per_day']:.1f} s/day"
        )
    if variant == WATCH_LOAD:
        equal = "equals" if rec.get("equal") else "**differs from**"
        return (
            f"{rec['changes']:,} changes posted in {rec['posting_s']:.1f} s; {rec['batches']} batches, "
            f"{rec['items_named']:,} items named; the database {equal} a fresh --full sync"
        )
    if variant == WATCH_VERIFY:
        return "what the load's database is compared with"
    if variant == WATCH_RUN:
        return (
            f"exit {rec['exit_code']}; {rec['batches']} batches, {rec['catch_ups']} catch-up(s), "
            f"{rec['feed_connections']} feed connection(s), {rec['notices']} notice(s)"
        )
    return ""


def _rss(rec: Record) -> str:
    rss = rec.get("rss_kb") or {}
    return " / ".join(f"{k} {v / 1024:.0f}" for k, v in sorted(rss.items())) or "–"


def _slow(rec: Record) -> str:
    slow = rec.get("slow_callbacks")
    return f"{slow['max_ms']:.1f} ({slow['count']})" if slow else "–"


HEAD = (
    "variant | measured | wall s | CPU s | requests | round trips | MB served | transactions | episodes/s "
    "| peak RSS MB (per process) | loop stall ms | slowest callback ms (n ≥ 5 ms) | emulator CPU s | compared"
)
#: a column only in the scenarios whose records have it: (header, key)
OPTIONAL = (
    ("server People s", "people_cost_s", 2),
    ("p50 s", "p50_s", 3),
    ("p95 s", "p95_s", 3),
    ("max s", "max_s", 3),
    ("batches", "batches", 0),
)


def measurements_table(s: Scenario) -> list[str]:
    optional = [(head, key, digits) for head, key, digits in OPTIONAL if any(key in r for r in s.records)]
    head = HEAD.replace(" | compared", "".join(f" | {h}" for h, _, _ in optional) + " | compared")
    lines = [f"| {head} |", "|" + "---|" * (head.count("|") + 1)]
    for rec in s.records:
        cells = [
            label(rec),
            rec.get("measured", "–"),
            _seconds(rec.get("seconds")),
            _num(rec.get("cpu_s"), 1),
            _num(rec.get("requests")),
            _num(rec.get("round_trips")),
            _num(rec["bytes"] / 1e6, 1) if rec.get("bytes") else "–",
            _num(rec.get("transactions")),
            _num(rec.get("episodes_per_s")),
            _rss(rec),
            _num(rec.get("stall_ms"), 1),
            _slow(rec),
            _num((rec.get("emulator") or {}).get("cpu_s"), 1),
            *(_num(rec.get(key), digits) for _, key, digits in optional),
            _against(s, rec),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _slow_sources(s: Scenario) -> list[str]:
    """Where the slow callbacks came from (debug mode names the line that made each)."""
    out = []
    for rec in s.records:
        for worst in (rec.get("slow_callbacks") or {}).get("worst", []):
            cpu = f" ({worst['cpu_ms']} ms of CPU)" if "cpu_ms" in worst else ""
            out.append(f"slow callback in {rec['variant']}: {worst['ms']} ms{cpu}, {worst['what']}")
    return out


def _title(s: Scenario) -> str:
    server = s.server
    size = f"{server.episodes:,} episodes" if server.episodes else f"{server.shows:,} shows × 5 × 10"
    latency = f", {server.latency_ms:g} ms per request" if server.latency_ms else ""
    people = getattr(server, "people_cost_s", 0.0)
    cost = f", People {people * 1000:g} ms per item" if people else ""
    return f"### {s.name}: {s.kind}, {size}{latency}{cost}"


def markdown(scenarios: list[Scenario], header: str = "") -> str:
    out = [header, "", "### Targets", "", *targets_table(scenarios), ""]
    for s in scenarios:
        out += [_title(s), "", *measurements_table(s), ""]
        extra = [*s.notes, *_slow_sources(s)]
        failed = [c for c in s.checks if not c["ok"]]
        out += [f"- {note}" for note in extra]
        out += [f"- **check failed**: {c['check']} ({c['detail']})" for c in failed]
        if extra or failed:
            out.append("")
    return "\n".join(out)
