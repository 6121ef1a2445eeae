"""The scenarios: each runs the importer, and what it is held against, on one emulated server.

* ``seed``: 100 shows × 5 seasons × 10 episodes, 200 ms per request (the seed's own
  assumption): the importer against the seed's two algorithms, python-plexapi (Plex)
  and the round-trip floor.
* ``scale``: 100,000 and 1,000,000 episodes, no added latency: the importer against
  the store-only ceiling (and at 100,000, the peers; at 1,000,000 they would take hours).
* ``verify``: the scale scenario's library synced again with ``--full``, unchanged
  (the weekly verification).
* ``nightly``: the 100,000 episodes synced again: no change, and 1% changed.
* ``native``: 200,000 episodes, the compiled hot path against its pure-Python twin,
  end to end and stage by stage.
* ``hydrate``: 3,000 shows × 5 × 10, 200 ms per request, Jellyfin's ``People`` at 20 ms
  per item: ``importer hydrate`` after a sync, and again unchanged, against a per-item
  client (one request per show: computed, and really run on a sample).

Each importer figure is measured where it means something (bench/figures.py): wall
times on the whole process, CPU, stall and memory in process, slow callbacks on a
debug loop. Requests, bytes and round trips come from the emulator's request log, so
that every variant is counted alike. Repeated variants are interleaved (importer,
ceiling, importer, ceiling, ...) so that host noise hits both alike.
"""

from __future__ import annotations

import functools
import math
import re
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import dbfacts, figures, measure, process
from bench.emulator import Emulator, ServerSpec
from bench.floors import round_trips_needed
from bench.model import (
    CEILING,
    CHANGED,
    COMPILED,
    FLOOR,
    HOT_COMPILED,
    HOT_TWIN,
    HYDRATE,
    HYDRATE_AGAIN,
    IMPORTER,
    IMPORTER_DEBUG,
    IMPORTER_IN,
    IMPORTER_TIMED,
    NO_CHANGE,
    NO_CHANGE_DEBUG,
    NO_CHANGE_TIMED,
    PEERS,
    PER_ITEM,
    PER_ITEM_EXTRAPOLATED,
    PER_ITEM_SAMPLE,
    TWIN,
    VERIFY,
    VERIFY_DEBUG,
    VERIFY_IN,
    VERIFY_TIMED,
    Record,
    Scenario,
    Settings,
    log,
)
from bench.runner import RunnerSpec

#: runs per figure, as issue 11 defines them (``--repeats N`` makes every one N)
SEED_RUNS = 3  # the seed's wall time: median of 3
BEST_OF = 2  # the 1M import, its ceiling, the verification: best of 2
IN_PROCESS_RUNS = 2  # CPU time, stall, peak RSS: the median
NIGHTLY_RUNS = 3
NATIVE_RUNS = 3  # compiled and twin, interleaved: the median of each
#: hydrate, each followed by the unchanged run: the median of each (on Jellyfin a run is
#: 60 s of server People cost alone)
HYDRATE_RUNS = 2


@contextmanager
def _server(scenario: Scenario) -> Iterator[Emulator]:
    log(f"== {scenario.name}")
    with Emulator(scenario.server) as emu:
        yield emu


def _size(episodes: int) -> str:
    return f"{episodes // 1_000_000}m" if episodes % 1_000_000 == 0 else f"{episodes // 1000}k"


def _spec(emu: Emulator, db: Path, variant: str = "importer", **options: Any) -> RunnerSpec:
    return RunnerSpec(variant, kind=emu.spec.kind, url=emu.url, token=emu.token, db=str(db), options=options)


def _in_process(
    scenario: Scenario,
    emu: Emulator,
    settings: Settings,
    names: tuple[str, str, str],
    db: Path | None,
    runs: int,
    check: Callable[[str, Record], None] | None = None,
    **options: Any,
) -> Record:
    """The in-process runs of one sync: ``runs`` on uvloop (CPU, stall, RSS; the median),
    one on an asyncio debug loop (asyncio's slow-callback log) and one on a plain asyncio
    loop with every callback timed (slow callbacks without debug mode's own work).
    ``db``: sync into that database each time (a second sync); None: into a new one each
    time (an import). ``check``: what else every run must show, besides finishing with
    every episode."""
    recs = []
    variants = (("importer", runs), ("importer-debug", 1), ("importer-timed", 1))
    for name, (variant, count) in zip(names, variants, strict=True):
        done = []
        for _ in range(count):
            target = db or measure.fresh_db(settings, "inproc.db")
            rec = measure.in_process(emu, settings, _spec(emu, target, variant, **options))
            _check_finished(scenario, name, rec)
            if check is not None:
                check(name, rec)
            done.append(rec)
        recs.append(scenario.record(name, done))
    return recs[0]


def _check_finished(scenario: Scenario, variant: str, rec: Record, episodes: int | None = None) -> None:
    scenario.check(f"{variant} finished", rec["status"] == ["done"], f"status {rec['status']}")
    expected = rec.get("episodes") if episodes is None else episodes
    scenario.check(
        f"{variant} has every episode the server listed",
        rec["episodes_in_db"] == expected,
        f"{rec['episodes_in_db']} in the database, {expected} on the server",
    )
    if "left_in_cwd" in rec:
        scenario.check(f"{variant} left nothing in its working folder", not rec["left_in_cwd"],
                       f"left {rec['left_in_cwd']}")  # fmt: skip


def _peers(scenario: Scenario, emu: Emulator, settings: Settings, variants: tuple[str, ...]) -> None:
    for variant in variants if settings.peers else ():
        if variant == "plexapi" and scenario.kind != "plex":
            continue
        log(f"   {variant} ...")
        db = measure.fresh_db(settings, f"{variant}.db")
        spec = RunnerSpec(variant, kind=emu.spec.kind, url=emu.url, token=emu.token, db=str(db),
                          headers=emu.headers)  # fmt: skip
        scenario.record(variant, [measure.in_process(emu, settings, spec)])


def _peer_checks(scenario: Scenario, episodes: int) -> None:
    for rec in scenario.records:
        if rec["variant"] in PEERS:
            scenario.check(
                f"{rec['variant']} got every episode",
                rec["episodes"] == episodes,
                f"{rec['episodes']} against the server's {episodes}",
            )


# --------------------------------------------------------------------------- seed
def seed(kind: str, settings: Settings, shows: int = 100, latency_ms: float = 200.0) -> Scenario:
    full_size = (shows, latency_ms) == (100, 200.0)
    name = f"seed-{kind}" if full_size else f"seed-{shows}x{latency_ms:g}ms-{kind}"
    # the response cache, warmed by a first run, as in every scenario: what is measured is
    # the importer and the latency, not the emulator rendering pages
    spec = ServerSpec(kind, shape="seed", shows=shows, latency_ms=latency_ms, cache=True)
    scenario = Scenario(name, kind, "seed", spec)
    episodes = shows * 5 * 10
    with _server(scenario) as emu:
        log("   warming the emulator's cache ...")
        measure.whole_process(emu, settings, measure.fresh_db(settings, "seed.db"))
        log("   importer, whole process ...")
        runs = [
            measure.whole_process(emu, settings, measure.fresh_db(settings, "seed.db"))
            for _ in range(settings.runs(SEED_RUNS))
        ]
        for rec in runs:
            _check_finished(scenario, IMPORTER, rec, episodes)
        scenario.record(IMPORTER, runs)
        log("   importer, in process ...")
        _in_process(scenario, emu, settings, (IMPORTER_IN, IMPORTER_DEBUG, IMPORTER_TIMED), None, 1)
        trips = round_trips_needed(kind, episodes)
        scenario.record(FLOOR, [{"seconds": trips * latency_ms / 1000, "round_trips": trips}])
        _peers(scenario, emu, settings, PEERS)
    _peer_checks(scenario, episodes)
    seasons = shows * 5
    expected = {"seed-original": 2 + 2 * shows + seasons, "seed-optimised": 2 + shows + seasons}
    for variant, requests in expected.items():
        if (peer := scenario.get(variant)) is not None:
            scenario.check(
                f"{variant} made its requests",
                peer["requests"] == requests,
                f"{peer['requests']} requests, expected {requests}",
            )
    return scenario


# --------------------------------------------------------------------------- scale
def scale(
    kind: str,
    settings: Settings,
    episodes: int,
    *,
    family: str,
    peers: tuple[str, ...] = (),
    nightly: bool = False,
    verify: bool = False,
    warm: bool = True,
) -> list[Scenario]:
    """The scale scenario, and on the same server (its library imported) verify and nightly.
    ``warm``: one import first renders every page into the emulator's response cache."""
    spec = ServerSpec(kind, episodes=episodes, cache=True)
    scenario = Scenario(f"scale-{_size(episodes)}-{kind}", kind, family, spec)
    done = [scenario]
    with _server(scenario) as emu:
        if warm:
            log("   warming the emulator's cache ...")
            measure.whole_process(emu, settings, measure.fresh_db(settings, "warm.db"))
            measure.fresh_db(settings, "warm.db")  # removes it: 1M episodes take a GB
        db, imports, ceilings = _import_against_ceiling(scenario, emu, settings)
        log("   importer, in process ...")
        inproc = _in_process(scenario, emu, settings, (IMPORTER_IN, IMPORTER_DEBUG, IMPORTER_TIMED), None,
                             settings.runs(IN_PROCESS_RUNS))  # fmt: skip
        for whole, ceiling in zip(imports, ceilings, strict=True):  # the server's count: in process
            _check_finished(scenario, IMPORTER, whole, inproc["episodes"])
            scenario.check("the ceiling wrote the same episodes",
                           ceiling["episodes"] == whole["episodes_in_db"],
                           f"{ceiling['episodes']} against {whole['episodes_in_db']}")  # fmt: skip
        _peers(scenario, emu, settings, peers)
        _peer_checks(scenario, inproc["episodes"])
        if verify:  # before nightly: nightly changes the library
            done.append(_verify(emu, settings, db, scenario, inproc["episodes"]))
        if nightly:
            done.append(_nightly(emu, settings, db, scenario))
    return done


def _import_against_ceiling(
    scenario: Scenario, emu: Emulator, settings: Settings
) -> tuple[Path, list[Record], list[Record]]:
    """Whole-process imports, each followed by the ceiling copying its rows; both the best
    of their runs. Returns the last import's database (kept for verify and nightly), and
    every run of both."""
    imports, ceilings = [], []
    for n in range(settings.runs(BEST_OF)):
        log(f"   importer, whole process, and the store-only ceiling ({n + 1}) ...")
        db = measure.fresh_db(settings, "scale.db")
        imports.append(measure.whole_process(emu, settings, db))
        copy = measure.fresh_db(settings, "ceiling.db")
        spec = RunnerSpec("ceiling", source=str(db), db=str(copy))
        ceilings.append(measure.in_process(None, settings, spec))
        measure.fresh_db(settings, "ceiling.db")
    scenario.record(IMPORTER, imports, "best")
    scenario.record(CEILING, ceilings, "best")
    return db, imports, ceilings


def _verify(emu: Emulator, settings: Settings, db: Path, imported: Scenario, episodes: int) -> Scenario:
    """The weekly verification: the unchanged library synced again with ``--full``."""
    kind = emu.spec.kind
    size = imported.name.split("-")[1]
    family = imported.family.replace("scale-", "verify-")
    scenario = Scenario(f"verify-{size}-{kind}", kind, family, emu.spec)
    log(f"== {scenario.name}")
    runs = [measure.whole_process(emu, settings, db, full=True) for _ in range(settings.runs(BEST_OF))]

    def unchanged(name: str, rec: Record) -> None:
        scenario.check(f"{name} was a full run", rec["modes"] == ["full"], f"modes {rec['modes']}")
        scenario.check(f"{name} wrote nothing", rec["written"] == 0 and rec.get("deleted", 0) == 0,
                       f"{rec['written']} rows written, {rec.get('deleted', 0)} deleted")  # fmt: skip

    for rec in runs:
        _check_finished(scenario, VERIFY, rec, episodes)
        unchanged(VERIFY, rec)
    scenario.record(VERIFY, runs, "best")
    _in_process(scenario, emu, settings, (VERIFY_IN, VERIFY_DEBUG, VERIFY_TIMED), db, 1, unchanged, full=True)
    ceiling = imported.get(CEILING)
    if ceiling is not None:  # the reference of the gate's figure (bench/check.py)
        scenario.add({**ceiling, "scenario": scenario.name, "from": imported.name})
    return scenario


def _nightly(emu: Emulator, settings: Settings, db: Path, imported: Scenario) -> Scenario:
    kind = emu.spec.kind
    size = imported.name.split("-")[1]
    family = imported.family.replace("scale-", "nightly-")
    scenario = Scenario(f"nightly-{size}-{kind}", kind, family, emu.spec)
    log(f"== {scenario.name}")

    def quiet(name: str, rec: Record) -> None:
        per_library = rec["listing_requests"] / max(rec["libraries"], 1)
        scenario.check(f"{name}: at most 6 requests per library", per_library <= 6,
                       f"{per_library:g} requests per library")  # fmt: skip
        scenario.check(f"{name}: at most 2 discovery requests", rec["discovery_requests"] <= 2,
                       f"{rec['discovery_requests']} discovery requests")  # fmt: skip
        scenario.check(f"{name}: nothing written", rec["written"] == 0, f"{rec['written']} rows written")

    runs = settings.runs(NIGHTLY_RUNS)
    _in_process(scenario, emu, settings, (NO_CHANGE, NO_CHANGE_DEBUG, NO_CHANGE_TIMED), db, runs, quiet)
    episodes = imported.get(IMPORTER_IN)
    changed = max(1, (episodes["episodes"] if episodes else 1000) // 100)
    if emu.change(changed, seed=1):
        done = []
        for n in range(runs):
            if n:
                emu.change(changed, seed=1 + n)
            # a deleted or replaced show takes its episodes along: past the guard's 10%
            rec = measure.in_process(emu, settings, _spec(emu, db, allow_mass_delete=True))
            scenario.check(f"{CHANGED}: finished", rec["status"] == ["done"], f"status {rec['status']}")
            done.append(rec)
        scenario.record(CHANGED, done)
    else:
        scenario.notes.append("1% changed: pending emulator changes (POST /_emulator/changes answers 404)")
    return scenario


# --------------------------------------------------------------------------- native
def native(kind: str, settings: Settings, episodes: int, *, family: str, warm: bool = True) -> Scenario:
    """Compiled against the twin (``IMPORTER_PURE_PYTHON=1``), whole process, interleaved."""
    scenario = Scenario(f"native-{_size(episodes)}-{kind}", kind, family,
                        ServerSpec(kind, episodes=episodes, cache=True))  # fmt: skip
    flags = {COMPILED: {"IMPORTER_PURE_PYTHON": "0"}, TWIN: {"IMPORTER_PURE_PYTHON": "1"}}
    with _server(scenario) as emu:
        if warm:
            log("   warming the emulator's cache ...")
            measure.whole_process(emu, settings, measure.fresh_db(settings, "warm.db"))
            measure.fresh_db(settings, "warm.db")
        runs: dict[str, list[Record]] = {COMPILED: [], TWIN: []}
        for n in range(settings.runs(NATIVE_RUNS)):
            log(f"   compiled and twin, whole process ({n + 1}) ...")
            for variant, env in flags.items():
                db = measure.fresh_db(settings, "native.db")
                runs[variant].append(measure.whole_process(emu, settings, db, env=env))
    for variant, env in flags.items():
        for rec in runs[variant]:
            _check_finished(scenario, variant, rec, runs[COMPILED][0]["episodes_in_db"])
        scenario.record(variant, runs[variant])
        folder = process.empty_folder(settings.workdir, "version-")
        ran = process.implementation(folder, env)
        folder.rmdir()
        want = "c" if variant == COMPILED else "python"
        scenario.check(f"{variant}: `importer --version` says it runs {want}",
                       ran == want or not speedups_compiled(), f"it says {ran!r}")  # fmt: skip
    c, p = _hot_path()
    scenario.record(HOT_COMPILED, [{"seconds": c}])
    scenario.record(HOT_TWIN, [{"seconds": p}])
    if speedups_compiled():
        scenario.notes += _stage_notes(kind, max(3, settings.repeats or 3))
    return scenario


def speedups_compiled() -> bool:
    from importer import speedups

    return speedups.IMPLEMENTATION == "c"


#: the twin's per-stage times (µs/item) in bench/README.md ("Native hot path", 2026-11-26):
#: issue 11 says the twin must not get slower than these
TWIN_REFERENCE_US = {
    "plex-rows": 3.04,
    "jellyfin-rows": 14.33,
    "jellyfin-rows-c-dates": 1.60,
    "plex-decode-page": 6.73,
    "jellyfin-decode-page": 17.94,
    "content-etag": 0.44,
    "parse-timestamp": 5.62,
}


@functools.cache
def _stages(repeats: int) -> tuple[dict[str, Any], ...]:
    """bench/native.py's stages, once per bench run (they cover both kinds)."""
    from bench import native as stages

    return tuple(stages.run(repeats=repeats, pages=2, episodes=5_000))


def _stage_notes(kind: str, repeats: int) -> list[str]:
    notes = []
    for stage in _stages(repeats):
        name = stage["stage"]
        if name.split("-")[0] in ("plex", "jellyfin") and not name.startswith(kind):
            continue
        reference = TWIN_REFERENCE_US.get(name)
        against = f", reference {reference}" if reference else ""
        notes.append(
            f"stage {name}: {stage['c_us_per_item']} µs/item compiled, {stage['python_us_per_item']} "
            f"pure Python{against} ({stage['speedup']}×)"
        )
    return notes


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


# --------------------------------------------------------------------------- hydrate
#: issue 12: Jellyfin 10.10/10.11 run one GetPeople query per item; the bench charges 20 ms
JELLYFIN_PEOPLE_COST_S = 0.020
#: shows the per-item client really asks for, to check the time computed for all of them
PER_ITEM_SAMPLE_SHOWS = 30
#: a single-item path: what a person id must never be requested on (issue 12)
_ITEM_PATH = re.compile(r"/Items/([^/?]+)$")


def hydrate(
    kind: str,
    settings: Settings,
    shows: int = 3000,
    latency_ms: float = 200.0,
    people_cost_s: float = JELLYFIN_PEOPLE_COST_S,
    sample: int = PER_ITEM_SAMPLE_SHOWS,
) -> Scenario:
    """``importer hydrate`` (whole process) from unhydrated copies of one synced database,
    each followed by an unchanged run on the hydrated copy; against a per-item client,
    computed for every show and really run on ``sample`` of them. ``people_cost_s``:
    Jellyfin/Emby's server time per item rendered with People (Plex: none)."""
    full_size = (shows, latency_ms) == (3000, 200.0)
    name = f"hydrate-{kind}" if full_size else f"hydrate-{shows}x{latency_ms:g}ms-{kind}"
    cost = 0.0 if kind == "plex" else people_cost_s
    spec = ServerSpec(kind, shape="seed", shows=shows, latency_ms=latency_ms, cache=True, people_cost_s=cost)
    scenario = Scenario(name, kind, "hydrate", spec)
    with _server(scenario) as emu:
        log("   importer sync, whole process (not measured) ...")
        synced = measure.fresh_db(settings, "synced.db")
        sync = measure.whole_process(emu, settings, synced)
        _check_finished(scenario, "the sync", sync, shows * 5 * 10)
        scenario.notes.append(
            f"before hydrating: one `importer sync` (not measured), {sync['seconds']:.1f} s, "
            f"{sync['requests']} requests, {sync['episodes_in_db']:,} episodes"
        )
        emu.controls({"people_cost_s": cost})  # it drops the response cache: the sync's pages
        ids = dbfacts.source_ids(synced)
        first, again = [], []
        for n in range(settings.runs(HYDRATE_RUNS)):
            log(f"   hydrate, whole process, then again unchanged ({n + 1}) ...")
            copy = measure.copy_db(settings, synced, "hydrate.db")  # every run starts unhydrated
            first.append(_hydrate_run(scenario, emu, settings, copy, ids, HYDRATE))
            again.append(_hydrate_run(scenario, emu, settings, copy, ids, HYDRATE_AGAIN))
        hydrated = scenario.record(HYDRATE, first)
        scenario.record(HYDRATE_AGAIN, again)
        log(f"   per-item client, {sample} shows ...")
        measured = _per_item_sample(scenario, emu, settings, synced, sample)
        measure.fresh_db(settings, "hydrate.db")
        measure.fresh_db(settings, "synced.db")
    computed = _per_item(scenario, hydrated, measured)
    scenario.notes += _hydrate_notes(scenario, hydrated, computed, measured)
    return scenario


def _hydrate_run(
    scenario: Scenario, emu: Emulator, settings: Settings, db: Path, ids: set[str], variant: str
) -> Record:
    rec, entries = measure.whole_process_hydrate(emu, settings, db)
    scenario.check(f"{variant} finished (exit 0)", rec["exit_code"] == 0,
                   f"exit {rec['exit_code']}: {rec.get('output', '')[-500:]}")  # fmt: skip
    if variant == HYDRATE:
        bound = figures.hydrate_request_bound(scenario)
        scenario.check(f"{variant}: at most {bound:g} requests", rec["requests"] <= bound,
                       f"{rec['requests']} requests")  # fmt: skip
    else:
        most = figures.HYDRATE_UNCHANGED_MAX
        scenario.check(f"{variant}: at most {most} requests", rec["requests"] <= most,
                       f"{rec['requests']} requests")  # fmt: skip
    scenario.check(f"{variant}: every show hydrated", rec["unhydrated_shows"] == 0 and rec["shows"] > 0,
                   f"{rec['unhydrated_shows']} of {rec['shows']} shows without hydrated_at")  # fmt: skip
    scenario.check(f"{variant}: credits stored", rec["credits"] > 0, f"{rec['credits']} credits")
    asked = sorted({m[1] for e in entries if (m := _ITEM_PATH.search(e["path"])) and m[1] not in ids})
    scenario.check(f"{variant}: no GET /Items/{{personId}}", not asked,
                   f"{len(asked)} ids that are no show, season or episode: {asked[:5]}")  # fmt: skip
    scenario.check(f"{variant} left nothing in its working folder", not rec["left_in_cwd"],
                   f"left {rec['left_in_cwd']}")  # fmt: skip
    return rec


def _per_item_sample(
    scenario: Scenario, emu: Emulator, settings: Settings, synced: Path, sample: int
) -> Record:
    """The per-item client, really run on ``sample`` shows spread over the library."""
    mark = emu.mark()
    spec = RunnerSpec("per-item", kind=emu.spec.kind, url=emu.url, token=emu.token, source=str(synced),
                      headers=emu.headers, options={"sample": sample})  # fmt: skip
    rec = measure.in_process(emu, settings, spec)
    rec["people_cost_s"] = measure.people_cost_s(emu.entries_since(mark))
    scenario.check(f"{PER_ITEM_SAMPLE}: one request per show", rec["requests"] == rec["shows"] == sample,
                   f"{rec['requests']} requests for {rec['shows']} shows, {sample} asked")  # fmt: skip
    scenario.check(f"{PER_ITEM_SAMPLE}: the answers carried credits", rec["people_seen"] > 0,
                   f"{rec['people_seen']} credits")  # fmt: skip
    return rec


def _per_item(scenario: Scenario, hydrated: Record, measured: Record) -> Record:
    """The per-item client on every show: one request per show plus hydrate's discovery,
    its time computed as requests × (latency + per-item cost); then ``measured``, the
    sample it really ran (recorded here), and its time per request extrapolated to every
    show."""
    shows = int(hydrated["shows"])
    discovery = math.ceil(hydrated["discovery_requests"])
    latency = scenario.server.latency_ms / 1000
    cost = scenario.server.people_cost_s
    per_request = latency + cost
    requests = shows + discovery
    computed = scenario.record(PER_ITEM, [{
        "seconds": shows * per_request + discovery * latency,
        "seconds_per_request": per_request,
        "requests": requests,
        "round_trips": requests,  # one after the other
        "people_cost_s": shows * cost,
        "measured": "computed: requests × (latency + People cost per item)",
    }])  # fmt: skip
    measured = scenario.record(PER_ITEM_SAMPLE, [measured])
    sampled = max(int(measured["shows"]), 1)
    scenario.record(PER_ITEM_EXTRAPOLATED, [{
        "seconds": shows * measured["seconds_per_request"] + discovery * latency,
        "requests": requests,
        "round_trips": requests,
        "people_cost_s": measured["people_cost_s"] * shows / sampled,
        "measured": f"{sampled} shows' time per request × {shows:,}",
    }])  # fmt: skip
    return computed


def _hydrate_notes(scenario: Scenario, hydrated: Record, computed: Record, measured: Record) -> list[str]:
    shows = int(hydrated["shows"])
    server = scenario.server
    again = scenario.get(HYDRATE_AGAIN) or {}
    extrapolated = (scenario.get(PER_ITEM_EXTRAPOLATED) or {}).get("seconds", 0.0)
    notes = [
        f"hydrate: {hydrated['requests']:g} requests ({hydrated['batch_requests']:g} by id, "
        f"{hydrated['discovery_requests']:g} discovery) for {shows:,} shows; {hydrated['credits']:,.0f} "
        f"credits, {hydrated['people']:,.0f} people, {hydrated['images']:,.0f} images stored",
        f"unchanged hydrate on the hydrated copy: {_requests(again.get('requests', 0))}, "
        f"{again.get('seconds', 0):.2f} s",
        f"per-item client: one request per show plus hydrate's discovery, {computed['requests']:,} "
        f"requests; its wall time is computed, not waited for: requests × ({server.latency_ms:g} ms latency "
        f"+ {server.people_cost_s * 1000:g} ms People per show) = {computed['seconds']:.1f} s",
        f"the same client really run on {measured['shows']} shows, one after the other: "
        f"{measured['seconds_per_request'] * 1000:.1f} ms a request against "
        f"{computed['seconds_per_request'] * 1000:.1f} ms computed; × {shows:,} shows: {extrapolated:.1f} s",
    ]
    r, w = figures.hydrate_requests_ratio(scenario), figures.hydrate_wall_ratio(scenario)
    x = figures.hydrate_extrapolated_wall_ratio(scenario)
    if r and w:
        notes.append(
            f"hydrate against the per-item client: {r:.0f}× fewer requests, {w:.1f}× faster (computed)"
            + (f", {x:.1f}× faster (extrapolated from the sample)" if x else "")
        )
    if server.people_cost_s:
        notes.append(
            f"server time charged for People: hydrate {hydrated['people_cost_s']:.1f} s, per-item client "
            f"{computed['people_cost_s']:.1f} s: the same, as on Jellyfin 10.10/10.11 (one GetPeople per "
            "item, batched or not); batching saves requests and latency, not that. Jellyfin 12.0 batches "
            "People: hydrate's server cost would be lower there (not emulated)"
        )
    else:
        notes.append("Plex: no per-item People cost is charged (0 s for both)")
    return notes


def _requests(n: float) -> str:
    return f"{n:g} request{'' if n == 1 else 's'}"
