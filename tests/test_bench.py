"""The performance bench: ``python -m bench --quick`` runs every scenario and every way of
measuring against the emulators and counts right; its parts work on their own.

No timing is asserted here (CI machines are noisy); the regression gate is
``python -m bench --check bench/baseline.json`` (see bench/README.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench is not installed: it lives beside the package
    sys.path.insert(0, str(ROOT))

from bench import floors, slowlog  # noqa: E402
from bench.check import compare  # noqa: E402
from bench.model import Scenario  # noqa: E402
from bench.slowdown import sitecustomize  # noqa: E402
from importer.store import connect  # noqa: E402

IMPORTER_RUNS = {
    "importer",
    "importer, in process",
    "importer, in process, asyncio debug",
    "importer, in process, callbacks timed",
}
VERIFY_RUNS = {
    "unchanged --full",
    "unchanged --full, in process",
    "unchanged --full, in process, asyncio debug",
    "unchanged --full, in process, callbacks timed",
}
PEERS = {"seed-original", "seed-optimised"}
NATIVE = {"compiled", "pure Python", "hot path alone, compiled", "hot path alone, pure Python"}
SCENARIOS = {
    "seed-5x10ms-plex": IMPORTER_RUNS | PEERS | {"round-trip floor", "plexapi"},
    "seed-5x10ms-jellyfin": IMPORTER_RUNS | PEERS | {"round-trip floor"},
    "scale-2k-plex": IMPORTER_RUNS | PEERS | {"store-only ceiling", "plexapi"},
    "scale-2k-jellyfin": IMPORTER_RUNS | PEERS | {"store-only ceiling"},
    "nightly-2k-plex": {"no change", "no change, asyncio debug", "no change, callbacks timed"},
    "nightly-2k-jellyfin": {"no change", "no change, asyncio debug", "no change, callbacks timed"},
    "scale-1k-plex": IMPORTER_RUNS | {"store-only ceiling"},
    "scale-1k-jellyfin": IMPORTER_RUNS | {"store-only ceiling"},
    "verify-1k-plex": VERIFY_RUNS | {"store-only ceiling"},
    "verify-1k-jellyfin": VERIFY_RUNS | {"store-only ceiling"},
    "native-1k-plex": NATIVE,
    "native-1k-jellyfin": NATIVE,
}
Quick = tuple[subprocess.CompletedProcess[str], dict[str, Any]]


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Quick:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert out.exists(), done.stderr[-3000:]
    return done, json.loads(out.read_text())


def _records(results: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {s["name"]: {r["variant"]: r for r in s["records"]} for s in results["scenarios"]}


@pytest.mark.slow
def test_every_scenario_and_variant_ran(quick: Quick) -> None:
    done, results = quick
    ran = {name: set(variants) - {"1% changed"} for name, variants in _records(results).items()}
    assert ran == SCENARIOS  # "1% changed" runs where the emulator can change its library
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "### Targets" in done.stdout and "| seed-5x10ms-plex | wall time |" in done.stdout
    for figure in (
        "wall time vs store-only ceiling",
        "CPU time vs store-only ceiling's",
        "episodes/s",
        "wall time: twin / compiled",
        "longest callback, asyncio debug log",
        "longest callback, timed without debug",
        "host loop's longest stall",
    ):
        assert f"| {figure} |" in done.stdout, figure


@pytest.mark.slow
def test_counts_are_right(quick: Quick) -> None:
    _, results = quick
    assert results["failed_checks"] == []
    assert len([c for s in results["scenarios"] for c in s["checks"]]) >= 60
    records = _records(results)
    seed = records["seed-5x10ms-plex"]
    assert seed["importer"]["episodes_in_db"] == seed["seed-original"]["episodes"] == 5 * 5 * 10
    # the seed's algorithms: 1 + 2 x shows + seasons requests, and the fix: 1 + shows + seasons
    # (plus one for the library list)
    assert seed["seed-original"]["requests"] == 2 + 2 * 5 + 25
    assert seed["seed-optimised"]["requests"] == 2 + 5 + 25
    assert seed["seed-original"]["round_trips"] == seed["seed-original"]["requests"]  # all in series
    assert seed["importer"]["requests"] < 10
    assert records["nightly-2k-plex"]["no change"]["written"] == 0
    for kind in ("plex", "jellyfin"):
        verify = records[f"verify-1k-{kind}"]["unchanged --full"]
        assert verify["written"] == verify["deleted"] == 0 and verify["modes"] == ["full"]
        ceiling = records[f"scale-1k-{kind}"]["store-only ceiling"]
        assert ceiling["episodes"] == records[f"scale-1k-{kind}"]["importer"]["episodes_in_db"]
        assert "runs" not in ceiling["tables"] and "run_listing" not in ceiling["tables"]
    assert results["gates"], "the regression gate has ratios to compare"


@pytest.mark.slow
def test_each_figure_is_measured_where_it_should_be(quick: Quick) -> None:
    _, results = quick
    for name, variants in _records(results).items():
        for variant, rec in variants.items():
            measured = rec.get("measured")
            if variant in ("importer", "unchanged --full", "compiled", "pure Python"):
                assert measured == "whole process", (name, variant)
                assert rec["cpu_s"] > 0 and rec["left_in_cwd"] == [], (name, variant)
            elif variant.endswith("asyncio debug"):
                assert measured == "in process, asyncio debug", (name, variant)
                assert rec["slow_callbacks"]["count"] >= 0 and "cpu_s" not in rec
            elif variant.endswith("callbacks timed"):
                assert measured == "in process, asyncio, callbacks timed", (name, variant)
                assert rec["slow_callbacks"]["count"] >= 0 and "cpu_s" not in rec
            elif "in process" in variant or variant in ("no change", "1% changed"):
                assert measured == "in process" and "stall_ms" in rec, (name, variant)
                assert set(rec["cpu_split"]) == {"main", "workers"} and rec["cpu_s"] > 0


def test_the_gate_flags_a_regression() -> None:
    base = {"scale: CPU time vs store-only ceiling": {"value": 0.5, "higher_is_better": True},
            "seed: requests": {"value": 9, "higher_is_better": False}}  # fmt: skip
    same = {k: dict(v) for k, v in base.items()}
    assert compare(same, base).regressions == []
    slower = {**same, "scale: CPU time vs store-only ceiling": {"value": 0.4, "higher_is_better": True}}
    assert len(compare(slower, base).regressions) == 1
    more = {**same, "seed: requests": {"value": 11, "higher_is_better": False}}
    assert len(compare(more, base).regressions) == 1
    new = {**same, "verify: requests": {"value": 7, "higher_is_better": False}}
    assert compare(new, base).unmatched == ["verify: requests"]  # reported, never a failure
    assert compare(new, base).regressions == []


def test_best_of_keeps_the_fastest_run_whole_and_median_takes_each_number() -> None:
    s = Scenario("x", "plex", "scale-1m", server=None)
    runs = [{"seconds": 3.0, "cpu_s": 1.0}, {"seconds": 2.0, "cpu_s": 5.0}, {"seconds": 4.0, "cpu_s": 2.0}]
    best = s.record("best", runs, "best")
    assert (best["seconds"], best["cpu_s"], best["seconds_each"]) == (2.0, 5.0, [3.0, 2.0, 4.0])
    median = s.record("median", runs)
    assert (median["seconds"], median["cpu_s"]) == (3.0, 2.0)


def test_the_ceiling_copies_every_library_table_parents_first(tmp_path: Path) -> None:
    source = connect(tmp_path / "source.db")
    source.execute(
        "CREATE TABLE ratings (id INTEGER PRIMARY KEY, episode_id INTEGER REFERENCES episodes (id));"
        "CREATE TABLE run_notes (id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs (id));"
        "INSERT INTO servers (id, kind, machine_id) VALUES (1, 'plex', 'm');"
        "INSERT INTO libraries (id, server_id, source_id) VALUES (1, 1, 's');"
        "INSERT INTO runs (id, server_id, mode, started_at) VALUES (1, 1, 'full', 0);"
        "INSERT INTO run_notes (run_id) VALUES (1);"
    )
    with source:
        source.executemany("INSERT INTO episodes (id, library_id, source_id) VALUES (?, 1, ?)",
                           [(n, str(n)) for n in range(1, 8)])  # fmt: skip
        source.executemany("INSERT INTO ratings (episode_id) VALUES (?)", [(n,) for n in range(1, 8)])
    tables = floors.library_tables(source)
    source.close()
    # the bookkeeping, and what refers to it, stay out; a future table comes in, after its parent
    assert {"runs", "run_listing", "run_notes"}.isdisjoint(tables)
    assert tables.index("servers") < tables.index("libraries") < tables.index("shows")
    assert tables.index("seasons") < tables.index("episodes") < tables.index("media_files")
    assert tables.index("episodes") < tables.index("ratings")
    target = tmp_path / "ceiling.db"
    target.unlink(missing_ok=True)
    # the new file needs the source's extra tables, as the importer's schema would have them
    new = connect(target)
    new.execute("CREATE TABLE ratings (id INTEGER PRIMARY KEY, episode_id INTEGER REFERENCES episodes (id))")
    new.close()
    done = floors.ceiling(tmp_path / "source.db", target, batch=4)
    assert (done.rows, done.episodes, done.transactions) == (16, 7, 4)  # 2 + 7 + 7 rows, 4 a transaction
    assert done.seconds >= done.write_s > 0 and done.cpu_s >= done.write_cpu_s
    copy = connect(target)
    assert copy.execute("SELECT count(*) FROM ratings").get == 7
    assert copy.execute("SELECT count(*) FROM runs").get == 0
    indexes = {r[0] for r in copy.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    assert "episodes_by_show" in indexes  # the late indexes, built after the load


def test_slow_callbacks_come_from_asyncio_s_own_log() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(time.sleep, 0.02)  # a callback that blocks the loop for 20 ms
        loop.call_soon(lambda: None)
        await asyncio.sleep(0.05)

    with asyncio.Runner() as runner, slowlog.slow_callbacks(runner.get_loop()) as slow:
        runner.run(main())
    found = slow.as_record()
    assert found["count"] == 1 and 15 < found["max_ms"] < 500
    assert "sleep" in found["worst"][0]["what"]


def test_the_slowed_build_fails_loudly_when_its_target_is_gone() -> None:
    assert sitecustomize.resolve("json.decoder.JSONDecoder.decode")[1] == "decode"
    with pytest.raises(LookupError, match="no method 'nope'"):
        sitecustomize.resolve("json.decoder.JSONDecoder.nope")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "bench" / "slowdown"),
        "BENCH_SLOW_WRITER": "0.3",
        "BENCH_SLOW_TARGET": "json.decoder.JSONDecoder.nope",
    }
    done = subprocess.run(
        [sys.executable, "-c", "pass"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "cannot slow json.decoder.JSONDecoder.nope" in done.stderr and "BENCH_SLOW_TARGET" in done.stderr


def test_timed_callbacks_time_every_callback_without_debug_mode() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert not loop.get_debug()
        loop.call_soon(time.sleep, 0.02)  # blocks the loop for 20 ms, without using the CPU
        loop.call_soon(sum, range(10))
        await asyncio.sleep(0.05)

    with asyncio.Runner() as runner, slowlog.timed_callbacks() as slow:
        runner.run(main())
    found = slow.as_record()
    assert found["count"] == 1 and 15 < found["max_ms"] < 500
    worst = found["worst"][0]
    assert "sleep" in worst["what"] and worst["cpu_ms"] < worst["ms"] / 2
    assert asyncio.events.Handle._run is not None and "timed" not in asyncio.events.Handle._run.__qualname__
