"""The scenarios: each runs the importer and its peers against one emulated server.

* ``seed``: 100 shows × 5 seasons × 10 episodes, 200 ms per request (the seed's own
  assumption): the importer against the seed's two algorithms, python-plexapi (Plex)
  and the round-trip floor.
* ``scale``: 100,000 and 1,000,000 episodes, no added latency: the importer against the
  store-only ceiling (and at 100,000, the peers; at 1,000,000 they would take hours).
* ``nightly``: the same 100,000 episodes synced again: no change, and 1% changed.
* ``native``: the compiled hot path against its pure-Python twin, end to end and alone.

Every variant runs in a fresh process (bench/runner.py); requests, bytes and round
trips come from the emulator's request log, so that every variant is counted alike.
Repeated variants are interleaved (importer, ceiling, importer, ceiling, ...) so that
host noise hits both alike, and the median is kept.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import timeit
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.emulator import Emulator, ServerSpec, round_trips
from bench.floors import round_trips_needed

Record = dict[str, Any]
SLOWDOWN = str(Path(__file__).parent / "slowdown")


@dataclass
class Settings:
    workdir: Path
    repeats: int = 1
    #: make the importer's writer this much slower (bench/slowdown): the gate's self-test
    slow_writer: float = 0.0
    peers: bool = True  # False: skip the peers (the gate needs none of them)


@dataclass
class Scenario:
    name: str
    kind: str
    server: ServerSpec
    records: list[Record] = field(default_factory=list)
    checks: list[Record] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def record(self, variant: str, runs: list[Record]) -> Record:
        rec = {"scenario": self.name, "variant": variant, "runs": len(runs), **_median(runs)}
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
            out[key] = _median([r.get(key, {}) for r in runs if isinstance(r.get(key), dict)])
        else:
            out[key] = statistics.median(r[key] for r in runs if key in r)
    return out


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


#: the library-level listings (and their count probes); everything else is discovery
LISTING_PATHS = ("/all", "/Items")


def measure(emu: Emulator, settings: Settings, spec: Record, env: dict[str, str] | None = None) -> Record:
    """Run one variant in a fresh process; add what the emulator saw of it."""
    before = len(emu.log())
    cpu_before, _ = emu.usage()
    child_env = {**os.environ, **(env or {})}
    if settings.slow_writer and spec["variant"] == "importer":
        child_env["BENCH_SLOW_WRITER"] = str(settings.slow_writer)
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [SLOWDOWN, child_env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "bench.runner", json.dumps(spec)],
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{spec['variant']} failed:\n{done.stderr[-3000:]}")
    out: Record = json.loads(done.stdout.strip().splitlines()[-1])
    cpu_after, emu_rss = emu.usage()
    entries = emu.log()[before:]
    listings = [e for e in entries if e["path"].endswith(LISTING_PATHS)]
    out.update(
        requests=len(entries),
        listing_requests=len(listings),
        discovery_requests=len(entries) - len(listings),
        bytes=sum(e["bytes"] for e in entries),
        round_trips=round_trips(entries),
        emulator={"cpu_s": cpu_after - cpu_before, "rss_kb": emu_rss},
    )
    if out.get("episodes") and out.get("seconds"):
        out["episodes_per_s"] = out["episodes"] / out["seconds"]
    return out


def _importer_spec(emu: Emulator, db: Path, **extra: Any) -> Record:
    return {
        "variant": "importer",
        "url": emu.url,
        "token": emu.token,
        "kind": emu.spec.kind,
        "db": str(db),
        **extra,
    }


def _baseline_spec(emu: Emulator, variant: str, db: Path) -> Record:
    return {
        "variant": variant,
        "url": emu.url,
        "token": emu.token,
        "kind": emu.spec.kind,
        "headers": emu.headers,
        "db": str(db),
    }


@contextmanager
def _server(scenario: Scenario, settings: Settings) -> Iterator[Emulator]:
    _log(f"== {scenario.name}")
    with Emulator(scenario.server) as emu:
        yield emu


def _fresh(settings: Settings, name: str) -> Path:
    path = settings.workdir / name
    for suffix in ("", "-wal", "-shm", ".cursor", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _baselines(scenario: Scenario, emu: Emulator, settings: Settings, variants: tuple[str, ...]) -> None:
    for variant in variants if settings.peers else ():
        if variant == "plexapi" and scenario.kind != "plex":
            continue
        _log(f"   {variant} ...")
        rec = measure(emu, settings, _baseline_spec(emu, variant, _fresh(settings, f"{variant}.db")))
        scenario.record(variant, [rec])


def _importer_checks(scenario: Scenario, rec: Record) -> None:
    scenario.check("importer finished", rec["status"] == ["done"], f"status {rec['status']}")
    scenario.check(
        "importer wrote every episode the server listed",
        rec["episodes_in_db"] == rec["episodes"],
        f"{rec['episodes_in_db']} in the database, {rec['episodes']} on the server",
    )


def _peer_checks(scenario: Scenario, importer: Record) -> None:
    for rec in scenario.records:
        if rec["variant"] in ("seed-original", "seed-optimised", "plexapi"):
            scenario.check(
                f"{rec['variant']} got every episode",
                rec["episodes"] == importer["episodes"],
                f"{rec['episodes']} against the importer's {importer['episodes']}",
            )


# --------------------------------------------------------------------------- seed
def seed(
    kind: str,
    settings: Settings,
    shows: int = 100,
    latency_ms: float = 200.0,
    peers: tuple[str, ...] = ("seed-original", "seed-optimised", "plexapi"),
) -> Scenario:
    name = f"seed-{kind}" if (shows, latency_ms) == (100, 200.0) else f"seed-{shows}x{latency_ms:g}ms-{kind}"
    spec = ServerSpec(kind, shape="seed", shows=shows, latency_ms=latency_ms)
    scenario = Scenario(name, kind, spec)
    with _server(scenario, settings) as emu:
        runs = [
            measure(emu, settings, _importer_spec(emu, _fresh(settings, "seed.db")))
            for _ in range(settings.repeats)
        ]
        importer = scenario.record("importer", runs)
        trips = round_trips_needed(kind, shows * 5 * 10)
        scenario.record("round-trip floor", [{"seconds": trips * latency_ms / 1000, "round_trips": trips}])
        _baselines(scenario, emu, settings, peers)
    _importer_checks(scenario, importer)
    _peer_checks(scenario, importer)
    seasons = shows * 5
    expected = {"seed-original": 2 + 2 * shows + seasons, "seed-optimised": 2 + shows + seasons}
    for variant, requests in expected.items():
        if (rec := scenario.get(variant)) is not None:
            scenario.check(
                f"{variant} made its requests",
                rec["requests"] == requests,
                f"{rec['requests']} requests, expected {requests}",
            )
    return scenario


# --------------------------------------------------------------------------- scale and nightly
def _size(episodes: int) -> str:
    return f"{episodes // 1_000_000}m" if episodes % 1_000_000 == 0 else f"{episodes // 1000}k"


def scale(
    kind: str,
    settings: Settings,
    episodes: int,
    peers: tuple[str, ...] = (),
    nightly: bool = False,
    native: bool = False,
    warm: bool = True,
) -> list[Scenario]:
    """The scale scenario, and on the same server (already imported) nightly and native.
    ``warm``: one import first renders every page into the emulator's cache."""
    spec = ServerSpec(kind, episodes=episodes, cache=True)
    scenario = Scenario(f"scale-{_size(episodes)}-{kind}", kind, spec)
    done = [scenario]
    with _server(scenario, settings) as emu:
        if warm:
            _log("   warming the emulator's cache ...")
            measure(emu, settings, _importer_spec(emu, _fresh(settings, "warm.db")))
        runs: dict[str, list[Record]] = {"importer": [], "store-only ceiling": []}
        for _ in range(settings.repeats):
            db = _fresh(settings, "scale.db")
            runs["importer"].append(measure(emu, settings, _importer_spec(emu, db)))
            ceiling = {"variant": "ceiling", "source": str(db), "db": str(_fresh(settings, "ceiling.db"))}
            runs["store-only ceiling"].append(measure(emu, settings, ceiling))
        importer = scenario.record("importer", runs["importer"])
        ceiling_rec = scenario.record("store-only ceiling", runs["store-only ceiling"])
        _importer_checks(scenario, importer)
        scenario.check(
            "the ceiling wrote the same episodes",
            ceiling_rec["episodes"] == importer["episodes_in_db"],
            f"{ceiling_rec['episodes']} against {importer['episodes_in_db']}",
        )
        _baselines(scenario, emu, settings, peers)
        _peer_checks(scenario, importer)
        if nightly:
            done.append(_nightly(emu, settings, episodes))
        if native:
            done.append(_native(emu, settings, episodes))
    return done


def _nightly(emu: Emulator, settings: Settings, episodes: int) -> Scenario:
    kind = emu.spec.kind
    scenario = Scenario(f"nightly-{_size(episodes)}-{kind}", kind, emu.spec)
    _log(f"== {scenario.name}")
    db = settings.workdir / "scale.db"  # imported by the scale scenario
    runs = [measure(emu, settings, _importer_spec(emu, db)) for _ in range(settings.repeats)]
    rec = scenario.record("no change", runs)
    # the target counts a library's own requests; discovery (2 per server) comes apart
    rec["requests_per_library"] = rec["listing_requests"] / max(rec["libraries"], 1)
    scenario.check("no change: at most 6 requests per library", rec["requests_per_library"] <= 6,
                   f"{rec['requests_per_library']} requests per library")  # fmt: skip
    scenario.check("no change: at most 2 discovery requests", rec["discovery_requests"] <= 2,
                   f"{rec['discovery_requests']} discovery requests")  # fmt: skip
    scenario.check("no change: nothing written", rec["written"] == 0, f"{rec['written']} rows written")
    scenario.check("no change: finished", rec["status"] == ["done"], f"status {rec['status']}")
    changed = max(1, episodes // 100)
    if emu.change(changed, seed=1):
        runs = []
        for n in range(settings.repeats):
            if n:
                emu.change(changed, seed=1 + n)
            # a deleted or replaced show takes its episodes along: past the guard's 10%
            spec = _importer_spec(emu, db, options={"allow_mass_delete": True})
            runs.append(measure(emu, settings, spec))
        rec = scenario.record("1% changed", runs)
        rec["requests_per_library"] = rec["listing_requests"] / max(rec["libraries"], 1)
        scenario.check("1% changed: finished", rec["status"] == ["done"], f"status {rec['status']}")
    else:
        scenario.notes.append("1% changed: pending emulator changes (POST /_emulator/changes answers 404)")
    return scenario


def _native(emu: Emulator, settings: Settings, episodes: int) -> Scenario:
    kind = emu.spec.kind
    scenario = Scenario(f"native-{_size(episodes)}-{kind}", kind, emu.spec)
    _log(f"== {scenario.name}")
    runs: dict[str, list[Record]] = {"compiled": [], "pure Python": []}
    for _ in range(settings.repeats):
        for variant, flag in (("compiled", "0"), ("pure Python", "1")):
            spec = _importer_spec(emu, _fresh(settings, "native.db"))
            runs[variant].append(measure(emu, settings, spec, env={"IMPORTER_PURE_PYTHON": flag}))
    for variant, measured in runs.items():
        scenario.record(variant, measured)
    c, p = _hot_path()
    scenario.record("hot path alone, compiled", [{"seconds": c}])
    scenario.record("hot path alone, pure Python", [{"seconds": p}])
    if speedups_compiled():
        from bench import native

        for stage in native.run(repeats=max(3, settings.repeats), pages=2, episodes=5_000):
            scenario.notes.append(
                f"stage {stage['stage']}: {stage['c_us_per_item']} µs/item compiled, "
                f"{stage['python_us_per_item']} pure Python ({stage['speedup']}×; target ≥ 2×)"
            )
    compiled, pure = scenario.get("compiled"), scenario.get("pure Python")
    assert compiled is not None and pure is not None
    scenario.check(
        "both import the same episodes",
        compiled["episodes_in_db"] == pure["episodes_in_db"],
        f"{compiled['episodes_in_db']} and {pure['episodes_in_db']}",
    )
    return scenario


def speedups_compiled() -> bool:
    from importer import speedups

    return speedups.IMPLEMENTATION == "c"


def _hot_path(n: int = 200_000) -> tuple[float, float]:
    """``parse_timestamp`` over ``n`` Jellyfin-style timestamps, compiled and twin
    (interleaved, best of 5)."""
    from importer import _purepy, speedups

    stamps = [
        f"20{10 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00.{i * 7919:07d}Z"
        for i in range(1000)
    ]
    loops = n // len(stamps)
    best = {"c": float("inf"), "py": float("inf")}
    for _ in range(5):
        for key, fn in (("c", speedups.parse_timestamp), ("py", _purepy.parse_timestamp)):
            seconds = timeit.timeit(lambda fn=fn: [fn(s) for s in stamps], number=loops)  # type: ignore[misc]
            best[key] = min(best[key], seconds)
    if speedups.IMPLEMENTATION != "c":
        best["c"] = float("nan")
    return best["c"], best["py"]
