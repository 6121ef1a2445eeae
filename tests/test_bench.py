"""``python -m bench --quick``: every scenario runs against the emulators and counts right.

No timing is asserted here (CI machines are noisy); the regression gate is
``python -m bench --check bench/baseline.json`` (see bench/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "seed-5x10ms-plex": {"importer", "round-trip floor", "seed-original", "seed-optimised", "plexapi"},
    "seed-5x10ms-jellyfin": {"importer", "round-trip floor", "seed-original", "seed-optimised"},
    "scale-2k-plex": {"importer", "store-only ceiling", "seed-original", "seed-optimised", "plexapi"},
    "scale-2k-jellyfin": {"importer", "store-only ceiling", "seed-original", "seed-optimised"},
    "nightly-2k-plex": {"no change"},
    "nightly-2k-jellyfin": {"no change"},
    "native-2k-jellyfin": {
        "compiled",
        "pure Python",
        "hot path alone, compiled",
        "hot path alone, pure Python",
    },
}


@pytest.fixture(scope="module")
def quick(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert out.exists(), done.stderr[-3000:]
    return done, json.loads(out.read_text())


def _records(results: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {s["name"]: {r["variant"]: r for r in s["records"]} for s in results["scenarios"]}


@pytest.mark.slow
def test_every_scenario_and_variant_ran(
    quick: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    done, results = quick
    records = _records(results)
    ran = {name: set(variants) - {"1% changed"} for name, variants in records.items()}
    assert ran == SCENARIOS  # "1% changed" runs where the emulator can change its library
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "### Targets" in done.stdout and "| seed-5x10ms-plex | wall time |" in done.stdout


@pytest.mark.slow
def test_counts_are_right(quick: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    _, results = quick
    assert results["failed_checks"] == []
    checks = [c for s in results["scenarios"] for c in s["checks"]]
    assert len(checks) >= 20
    records = _records(results)
    for name, variants in records.items():
        for variant, rec in variants.items():
            if "episodes" in rec and variant not in ("round-trip floor",):
                assert rec["episodes"] > 0, (name, variant)
    seed = records["seed-5x10ms-plex"]
    assert seed["importer"]["episodes_in_db"] == seed["seed-original"]["episodes"] == 5 * 5 * 10
    # the seed's algorithms: 1 + 2 x shows + seasons requests, and the fix: 1 + shows + seasons
    # (plus one for the library list)
    assert seed["seed-original"]["requests"] == 2 + 2 * 5 + 25
    assert seed["seed-optimised"]["requests"] == 2 + 5 + 25
    assert seed["seed-original"]["round_trips"] == seed["seed-original"]["requests"]  # all in series
    assert seed["importer"]["requests"] < 10
    nightly = records["nightly-2k-plex"]["no change"]
    assert nightly["written"] == 0
    assert results["gates"], "the regression gate has ratios to compare"


def test_the_gate_flags_a_regression(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from bench.check import compare

    base = {"scale: speed vs store-only ceiling": {"value": 0.5, "higher_is_better": True},
            "seed: requests": {"value": 9, "higher_is_better": False}}  # fmt: skip
    same = {k: dict(v) for k, v in base.items()}
    assert compare(same, base)[1] == []
    slower = {**same, "scale: speed vs store-only ceiling": {"value": 0.4, "higher_is_better": True}}
    assert len(compare(slower, base)[1]) == 1
    more = {**same, "seed: requests": {"value": 11, "higher_is_better": False}}
    assert len(compare(more, base)[1]) == 1
