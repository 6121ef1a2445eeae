"""python -m bench [--quick] [--only seed,100k,1m] [--json FILE] [--check bench/baseline.json]

Runs every scenario with its peers and floors (bench/scenarios.py), prints a markdown
table on stdout (progress on stderr), and exits 1 when a count check fails or, with
``--check``, when a gated ratio regressed by more than 15%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import check, report
from bench.scenarios import Scenario, Settings, scale, seed

PEERS = ("seed-original", "seed-optimised", "plexapi")
Job = Callable[[str, Settings], list[Scenario]]

FULL: dict[str, Job] = {
    "seed": lambda kind, s: [seed(kind, s)],
    "100k": lambda kind, s: scale(kind, s, 100_000, PEERS, nightly=True, native=kind == "jellyfin"),
    "1m": lambda kind, s: scale(kind, s, 1_000_000),  # the peers would take hours
}
QUICK: dict[str, Job] = {
    "seed": lambda kind, s: [seed(kind, s, shows=5, latency_ms=10)],
    "100k": lambda kind, s: scale(kind, s, 2_000, PEERS, nightly=True, native=kind == "jellyfin", warm=False),
}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    import apsw

    from importer import speedups

    repo = Path(__file__).resolve().parent.parent
    commit = subprocess.run(
        ["git", "-C", str(repo), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024),
        "python": platform.python_version(),
        "sqlite": apsw.sqlite_lib_version(),
        "hot_path": speedups.IMPLEMENTATION,
        "commit": commit,
        **{name: metadata.version(name) for name in ("apsw", "aiohttp", "msgspec", "uvloop", "plexapi")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run for CI: small, no timing checks")
    parser.add_argument("--only", default="", help="jobs to run: seed, 100k (with nightly, native), 1m")
    parser.add_argument("--kinds", default="plex,jellyfin")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers (the gate needs none)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per measured variant (median)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--check", type=Path, help="fail on a >15%% regression against this JSON")
    parser.add_argument(
        "--slow-writer",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="slow the importer's writer (the gate's self-test)",
    )
    args = parser.parse_args()
    jobs = QUICK if args.quick else FULL
    only = [j for j in args.only.split(",") if j] or list(jobs)
    unknown = set(only) - set(jobs)
    if unknown:
        parser.error(f"unknown jobs {sorted(unknown)}; choose from {', '.join(jobs)}")
    repeats = args.repeats or (3 if args.check else 1)
    scenarios: list[Scenario] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        settings = Settings(Path(tmp), repeats=repeats, slow_writer=args.slow_writer, peers=not args.no_peers)
        for name in only:
            for kind in args.kinds.split(","):
                scenarios += jobs[name](kind, settings)
    gates = check.gates(scenarios)
    header = f"Run: {'quick' if args.quick else 'full'}, {repeats} run(s) per measured variant" + (
        f", writer slowed by {args.slow_writer:.0%}" if args.slow_writer else ""
    )
    print(report.markdown(scenarios, header))
    failed = [c for s in scenarios for c in s.checks if not c["ok"]]
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "repeats": repeats,
        "slow_writer": args.slow_writer,
        "machine": machine(),
        "scenarios": [s.as_json() for s in scenarios],
        "gates": gates,
        "failed_checks": failed,
    }
    status = 1 if failed else 0
    if args.check:
        baseline = json.loads(args.check.read_text())["gates"]
        lines, regressions = check.compare(gates, baseline)
        print("### Regression check against", args.check, "\n")
        print("\n".join(f"- {line}" for line in lines) or "- nothing in common with the baseline")
        results["check"] = {"baseline": str(args.check), "compared": lines, "regressions": regressions}
        if regressions or not lines:
            print(f"\nFAILED: {len(regressions)} regression(s) over {check.TOLERANCE:.0%}")
            status = 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
