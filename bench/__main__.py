"""python -m bench [--quick] [--only seed,100k,1m,native,hydrate,watch,fleet,durability] [--json FILE]
[--check bench/baseline.json] [--idle-minutes M] [--fleet-servers N]

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

from bench import check, durability, fleet, measure, process, report, watching
from bench.model import PEERS, Scenario, Settings
from bench.scenarios import hydrate, native, scale, seed
from bench.slowdown.sitecustomize import DEFAULT_TARGET, TARGET_ENV, resolve

#: a job runs its scenarios for the kinds asked for
Job = Callable[[list[str], Settings], list[Scenario]]


def each_kind(job: Callable[[str, Settings], list[Scenario]]) -> Job:
    """A job that runs one kind after the other."""
    return lambda kinds, s: [scenario for kind in kinds for scenario in job(kind, s)]


FULL: dict[str, Job] = {
    "seed": each_kind(lambda kind, s: [seed(kind, s)]),
    "100k": each_kind(
        lambda kind, s: scale(kind, s, 100_000, family="scale-100k", peers=PEERS, nightly=True)
    ),
    # the peers would take hours
    "1m": each_kind(lambda kind, s: scale(kind, s, 1_000_000, family="scale-1m", verify=True)),
    "native": each_kind(lambda kind, s: [native(kind, s, 200_000, family="native-200k")]),
    "hydrate": each_kind(lambda kind, s: [hydrate(kind, s)]),
    # every kind at once: their idle stretches overlap
    "watch": watching.watch,
    # both engines, 200 servers at once
    "fleet": fleet.fleet,
    # synchronous=FULL everywhere against NORMAL as shipped (issue 15)
    "durability": durability.durability,
}
#: a smoke run: every scenario and every way of measuring, on tiny libraries, cold
#: caches, one run each; each stands in for its full-size family (same figures)
QUICK: dict[str, Job] = {
    "seed": each_kind(lambda kind, s: [seed(kind, s, shows=5, latency_ms=10)]),
    "100k": each_kind(
        lambda kind, s: scale(kind, s, 2_000, family="scale-100k", peers=PEERS, nightly=True, warm=False)
    ),
    "1m": each_kind(lambda kind, s: scale(kind, s, 1_000, family="scale-1m", verify=True, warm=False)),
    "native": each_kind(lambda kind, s: [native(kind, s, 1_000, family="native-200k", warm=False)]),
    "hydrate": each_kind(
        lambda kind, s: [hydrate(kind, s, shows=40, latency_ms=10, people_cost_s=0.002, sample=5)]
    ),
    "watch": lambda kinds, s: watching.watch(
        kinds,
        s,
        shows=10,
        changes=10,
        idle_minutes=watching.QUICK_IDLE_MINUTES,
        load_posts=10,
        debounce_s=0.5,
    ),
    "fleet": lambda kinds, s: fleet.fleet(kinds, s, servers=fleet.QUICK_SERVERS, sizes=fleet.QUICK_SIZES),
    "durability": lambda kinds, s: durability.durability(
        kinds, s, episodes=durability.QUICK_EPISODES, changes=durability.QUICK_CHANGES, warm=False
    ),
}
#: jobs a --quick run without --only leaves out (--only names them)
QUICK_OPT_IN = ("fleet", "durability")


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
    # what an interpreter started in an empty folder imports: the package every run measures
    with tempfile.TemporaryDirectory() as empty:
        measured = subprocess.run(
            [sys.executable, "-c", "import importer; print(importer.__file__)"],
            cwd=empty, capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024),
        "python": platform.python_version(),
        "sqlite": apsw.sqlite_lib_version(),
        "hot_path": speedups.IMPLEMENTATION,
        "importer": measured,
        "commit": commit,
        **{name: metadata.version(name) for name in ("apsw", "aiohttp", "msgspec", "uvloop", "plexapi")},
    }


def _slow_target() -> str:
    return os.environ.get(TARGET_ENV) or DEFAULT_TARGET


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run for CI: small, no timing checks")
    parser.add_argument(
        "--only",
        default="",
        help="jobs to run: seed, 100k (with nightly), 1m (with verify), native, hydrate, watch, fleet, "
        "durability",
    )
    parser.add_argument(
        "--fleet-servers", type=int, default=None, metavar="N",
        help=f"fleet: this many servers, sizes and shares as the full job's (default {fleet.SERVERS})",
    )  # fmt: skip
    parser.add_argument(
        "--idle-minutes", type=float, default=None, metavar="MINUTES",
        help=f"watch: how long the watches stay idle (default {watching.IDLE_MINUTES:g}; "
        f"--quick: {watching.QUICK_IDLE_MINUTES:g})",
    )  # fmt: skip
    parser.add_argument("--kinds", default="plex,jellyfin")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers (the gate needs none)")
    parser.add_argument(
        "--repeats", type=int, default=None,
        help="runs of every measured variant (default: each figure's own: best of 2, median of 3, ...)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--check", type=Path, help="fail on a >15%% regression against this JSON")
    parser.add_argument(
        "--slow-writer",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="slow the importer's writer (the gate's self-test; BENCH_SLOW_TARGET names the method)",
    )
    args = parser.parse_args()
    jobs = QUICK if args.quick else FULL
    args.jobs = [j for j in args.only.split(",") if j] or [
        j for j in jobs if not (args.quick and j in QUICK_OPT_IN)
    ]
    unknown = set(args.jobs) - set(jobs)
    if unknown:
        parser.error(f"unknown jobs {sorted(unknown)}; choose from {', '.join(jobs)}")
    if args.slow_writer:
        try:
            resolve(_slow_target())  # here first: a run that would slow nothing must not start
        except LookupError as exc:
            parser.error(f"--slow-writer: cannot slow {_slow_target()}: {exc}; set {TARGET_ENV}")
    # the quick run: one run of everything; the gate: the median of 3
    args.repeats = args.repeats or (1 if args.quick else 3 if args.check else None)
    return args


def _gate(args: argparse.Namespace, gates: dict[str, dict[str, Any]], results: dict[str, Any]) -> bool:
    """Print the comparison with the baseline; True when it passes."""
    baseline = json.loads(args.check.read_text())["gates"]
    found = check.compare(gates, baseline)
    print("### Regression check against", args.check, "\n")
    print("\n".join(f"- {line}" for line in found.lines) or "- nothing in common with the baseline")
    if found.unmatched:
        print("\nNot in the baseline (new or redefined figures, not gated until it is regenerated):")
        print("\n".join(f"- {key}" for key in found.unmatched))
    results["check"] = {
        "baseline": str(args.check),
        "compared": found.lines,
        "regressions": found.regressions,
        "unmatched": found.unmatched,
    }
    if found.regressions or not found.lines:
        print(f"\nFAILED: {len(found.regressions)} regression(s) over {check.TOLERANCE:.0%}")
        return False
    return True


def main() -> int:
    args = _arguments()
    jobs = QUICK if args.quick else FULL
    if args.fleet_servers:
        jobs = {**jobs, "fleet": lambda kinds, s: fleet.fleet(kinds, s, servers=args.fleet_servers)}
    scenarios: list[Scenario] = []
    process.compile_bytecode()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        settings = Settings(
            Path(tmp), repeats=args.repeats, slow_writer=args.slow_writer, peers=not args.no_peers,
            idle_minutes=args.idle_minutes,
        )  # fmt: skip
        for name in args.jobs:
            scenarios += jobs[name](args.kinds.split(","), settings)
        slowed = measure.slowed_processes(settings)
    gates = check.gates(scenarios)
    runs = f"{args.repeats} run(s) per measured variant" if args.repeats else "each figure's own runs"
    header = f"Run: {'quick' if args.quick else 'full'}, {runs}" + (
        f", writer slowed by {args.slow_writer:.0%}" if args.slow_writer else ""
    )
    print(report.markdown(scenarios, header))
    failed = [c for s in scenarios for c in s.checks if not c["ok"]]
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "repeats": args.repeats,
        "slow_writer": args.slow_writer,
        "machine": machine(),
        "scenarios": [s.as_json() for s in scenarios],
        "gates": gates,
        "failed_checks": failed,
    }
    status = 1 if failed else 0
    if args.slow_writer:
        results["slowed_processes"] = slowed
        if not slowed:  # e.g. workers started with python -I, which ignores PYTHONPATH
            print(f"\nFAILED: --slow-writer slowed nothing: no process called {_slow_target()}")
            status = 1
    if args.check and not _gate(args, gates, results):
        status = 1
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
