"""The durability job (issue 15): what ``synchronous=FULL`` everywhere would cost against
the importer as shipped (``synchronous=NORMAL``, FULL only for the commit that records a
run's end), whole process, on the same emulated server, in the same run.

Per kind: a first import of 100,000 episodes into a new file, then a nightly
incremental sync with 300 changes (100 episodes added, 150 updated, 50 deleted), each
variant ``--repeats`` times (default 5), alternating which one goes first, the median of
each. The FULL variant is bench/synchronous/sitecustomize.py with
``BENCH_SYNCHRONOUS=full``; NORMAL runs the same hook with ``normal`` (a no-op), so both
pay the same for it. Every run's mark file says what each writable connection read back
from ``PRAGMA synchronous`` and how many commits it made: a run whose connections are not
at the level of its variant fails a check, so that NORMAL is never compared with NORMAL.

One more run of each (import, and a nightly after another 300 changes) under ``strace
-f -y -T -e trace=fsync,fdatasync`` counts the fsyncs of every process, by file, and the
time spent in them. The file system the work folder lies on, and the fsync latency
measured there, are reported with the figures: on a virtual disk whose host absorbs
flushes an fsync is cheap, and FULL's cost is a lower bound of what a laptop's SSD or a
NAS's disk would show.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from bench import dbfacts, measure, process
from bench.emulator import Emulator, ServerSpec
from bench.model import Record, Scenario, Settings, log
from bench.synchronous.sitecustomize import MARK_ENV, MODE_ENV

SYNCHRONOUS = Path(__file__).resolve().parent / "synchronous"
EPISODES = 100_000
#: a night's changes: emulator change kinds and counts (``importer.emulator.churn``)
CHANGES = {"add": 100, "update": 150, "delete": 50}
RUNS = 5
MODES = ("normal", "full")
IMPORT = {"normal": "import, NORMAL (as shipped)", "full": "import, FULL everywhere"}
NIGHTLY = {"normal": "nightly, NORMAL (as shipped)", "full": "nightly, FULL everywhere"}
TRACED = " (strace: fsyncs)"

QUICK_EPISODES = 2_000
QUICK_CHANGES = {"add": 5, "update": 10, "delete": 5}


def durability(
    kinds: list[str],
    settings: Settings,
    *,
    episodes: int = EPISODES,
    changes: dict[str, int] | None = None,
    warm: bool = True,
) -> list[Scenario]:
    """The durability job: one scenario per kind."""
    where = filesystem(settings.workdir)
    latency = fsync_latency_ms(settings.workdir)
    return [_kind(kind, settings, episodes, changes or CHANGES, warm, where, latency) for kind in kinds]


def env(settings: Settings, mode: str, mark: Path) -> dict[str, str]:
    """The importer's environment for ``mode``: the hook first on its PYTHONPATH."""
    return {
        MODE_ENV: mode,
        MARK_ENV: str(mark),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SYNCHRONOUS), os.environ.get("PYTHONPATH")])),
    }


def marks(mark: Path) -> Record:
    """What the hook wrote during a run: the levels its writable connections read back,
    its commits, and how often FULL was kept against a request for another level."""
    events = [json.loads(line) for line in mark.read_text().splitlines()] if mark.exists() else []
    opened = [e for e in events if e["event"] == "open" and not e["readonly"]]
    return {
        "synchronous": sorted({str(e["synchronous"]) for e in opened}),
        "writable_connections": len(opened),
        "transactions": sum(1 for e in events if e["event"] == "commit"),
        "kept_full": sum(1 for e in events if e["event"] == "kept full"),
    }


def _sync(emu: Emulator, settings: Settings, db: Path, mode: str) -> Record:
    mark = settings.workdir / f"synchronous-{mode}.jsonl"
    mark.unlink(missing_ok=True)
    rec = measure.whole_process(emu, settings, db, env=env(settings, mode, mark))
    return {**rec, **marks(mark)}


def _order(n: int) -> Iterable[str]:
    """Alternate which variant goes first: a slow spell of the host hits both."""
    return MODES if n % 2 == 0 else tuple(reversed(MODES))


def _change(emu: Emulator, changes: dict[str, int], seed: int) -> int:
    return sum(len(emu.changes(kind, count, seed=seed * 100 + i)) for i, (kind, count) in
               enumerate(changes.items()))  # fmt: skip


def _kind(
    kind: str,
    settings: Settings,
    episodes: int,
    changes: dict[str, int],
    warm: bool,
    where: str,
    latency: float,
) -> Scenario:
    size = f"{episodes // 1000}k"
    spec = ServerSpec(kind, episodes=episodes, cache=True)
    scenario = Scenario(f"durability-{size}-{kind}", kind, "durability", spec)
    runs = settings.runs(RUNS)
    dbs = {mode: settings.workdir / f"durability-{mode}.db" for mode in MODES}
    log(f"== {scenario.name}")
    with Emulator(spec) as emu:
        # untimed, into a database of its own kept in step: after each change it renders
        # the changed pages into the emulator's cache, which would slow whichever variant
        # came first
        warmed = measure.fresh_db(settings, "durability-warm.db")
        if warm:
            log("   warming the emulator's cache ...")
        measure.whole_process(emu, settings, warmed)
        imports: dict[str, list[Record]] = {mode: [] for mode in MODES}
        for n in range(runs):
            log(f"   import, NORMAL and FULL ({n + 1}) ...")
            for mode in _order(n):
                imports[mode].append(_sync(emu, settings, measure.fresh_db(settings, dbs[mode].name), mode))
        nightly: dict[str, list[Record]] = {mode: [] for mode in MODES}
        applied = []
        for n in range(runs):
            applied.append(_change(emu, changes, seed=n + 1))
            log(f"   {applied[-1]} changes; nightly, NORMAL and FULL ({n + 1}) ...")
            measure.whole_process(emu, settings, warmed)
            for mode in _order(n):
                nightly[mode].append(_sync(emu, settings, dbs[mode], mode))
        log("   strace: one import and one nightly of each ...")
        traced = {
            mode: _traced(emu, settings, measure.fresh_db(settings, "traced.db"), mode) for mode in MODES
        }
        _change(emu, changes, seed=runs + 1)
        measure.whole_process(emu, settings, warmed)
        traced_nightly = {mode: _traced(emu, settings, dbs[mode], mode) for mode in MODES}
    for name in [*(db.name for db in dbs.values()), "traced.db", warmed.name]:
        measure.fresh_db(settings, name)  # removes it
    expected = imports["normal"][0]["episodes_in_db"]
    for names, done in ((IMPORT, imports), (NIGHTLY, nightly)):
        for mode in MODES:
            for rec in done[mode]:
                _checks(scenario, names[mode], mode, rec)
            scenario.record(names[mode], done[mode])
    for mode in MODES:
        for rec in imports[mode]:
            scenario.check(f"{IMPORT[mode]} has every episode", rec["episodes_in_db"] == expected,
                           f"{rec['episodes_in_db']} against {expected}")  # fmt: skip
        for rec in nightly[mode]:
            scenario.check(f"{NIGHTLY[mode]} wrote the changes", rec["written"] > 0,
                           f"{rec['written']} rows written")  # fmt: skip
    for names, once in ((IMPORT, traced), (NIGHTLY, traced_nightly)):
        for mode in MODES:
            _checks(scenario, names[mode] + TRACED, mode, once[mode])
            scenario.record(names[mode] + TRACED, [once[mode]])
    scenario.notes += _notes(scenario, where, latency, applied)
    return scenario


def _checks(scenario: Scenario, name: str, mode: str, rec: Record) -> None:
    scenario.check(f"{name} finished", rec["status"] == ["done"], f"status {rec['status']}")
    scenario.check(
        f"{name}: every writable connection at synchronous={mode.upper()}",
        rec["synchronous"] == [mode] and rec["writable_connections"] > 0,
        f"read back {rec['synchronous']} on {rec['writable_connections']} writable connection(s)",
    )
    scenario.check(f"{name}: commits counted", rec["transactions"] > 0, f"{rec['transactions']} commits")
    if mode == "normal":
        scenario.check(f"{name}: nothing forced", rec["kept_full"] == 0, f"{rec['kept_full']} forced")
    if rec.get("left_in_cwd"):
        scenario.check(f"{name} left nothing in its working folder", False, f"left {rec['left_in_cwd']}")


def _ratio(s: Scenario, names: dict[str, str], key: str = "seconds") -> float | None:
    normal, full = s.get(names["normal"]), s.get(names["full"])
    if not normal or not full or not normal.get(key):
        return None
    return float(full[key]) / float(normal[key])


def _notes(s: Scenario, where: str, latency: float, applied: list[int]) -> list[str]:
    notes = [f"work folder on {where}; fsync of 16 KiB there: median {latency:.2f} ms"]
    for what, names in (("import", IMPORT), ("nightly", NIGHTLY)):
        wall, cpu = _ratio(s, names), _ratio(s, names, "cpu_s")
        normal, full = s.get(names["normal"]), s.get(names["full"])
        if wall is None or normal is None or full is None:
            continue
        each = "".join(
            f"; {mode.upper()} runs " + ", ".join(f"{x:.3f}" for x in got["seconds_each"])
            for mode, got in (("normal", normal), ("full", full))
            if "seconds_each" in got
        )
        notes.append(
            f"{what}: FULL/NORMAL wall {wall:.3f}× (median {full['seconds']:.3f} s against "
            f"{normal['seconds']:.3f} s{each}), "
            f"CPU {cpu or float('nan'):.3f}×; commits {normal['transactions']:g} and {full['transactions']:g}"
        )
        for mode in MODES:
            if (once := s.get(names[mode] + TRACED)) is None:
                continue
            by_file = ", ".join(f"{k} {v}" for k, v in once["fsyncs"].items() if k != "total" and v)
            notes.append(
                f"{what}, {mode.upper()}, under strace: {once['fsyncs']['total']} fsync/fdatasync calls "
                f"({by_file}), {once['fsync_s'] * 1000:.1f} ms in them; {once['transactions']} commits"
            )
    if applied:
        notes.append(f"changes applied before each nightly: {', '.join(map(str, applied))}")
    return notes


# ----------------------------------------------------------------------------- strace
_CALL = re.compile(r"^(\d+)\s+(fsync|fdatasync)\((\d+)<([^>]*)>(.*)$")
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. (fsync|fdatasync) resumed>(.*)$")
_TOOK = re.compile(r"<(\d+\.\d+)>\s*$")


def fsyncs(log_text: str, db: Path) -> tuple[dict[str, int], float]:
    """The fsync/fdatasync calls of an ``strace -f -y -T`` log, by file and in all, and the
    seconds spent in them. The files: the database's ``wal``, ``db`` and ``journal`` (a new
    file's first transaction, before WAL mode), the importer's
    ``cursor`` file (written to a temporary file, synced, renamed), the ``folder`` (synced
    after the rename), ``other``."""
    counts = {"wal": 0, "db": 0, "journal": 0, "cursor": 0, "folder": 0, "other": 0}
    kinds = {f"{db}-wal": "wal", str(db): "db", f"{db}-journal": "journal", f"{db}.cursor.tmp": "cursor",
             f"{db}.cursor": "cursor", str(db.parent): "folder"}  # fmt: skip
    seconds = 0.0
    pending: dict[str, str] = {}
    for line in log_text.splitlines():
        if m := _CALL.match(line):
            pid, path, rest = m.group(1), m.group(4), m.group(5)
            if "<unfinished ...>" in rest:
                pending[pid] = path
                continue
        elif m := _RESUMED.match(line):
            pid, rest = m.group(1), m.group(3)
            path = pending.pop(pid, "")
        else:
            continue
        counts[kinds.get(path, "other")] += 1
        if took := _TOOK.search(rest):
            seconds += float(took.group(1))
    return {**counts, "total": sum(counts.values())}, seconds


def _traced(emu: Emulator, settings: Settings, db: Path, mode: str) -> Record:
    """One ``importer sync`` under strace, fsync and fdatasync only (seccomp-bpf: the other
    system calls run untraced): its fsyncs by file, their time, its commits."""
    mark = settings.workdir / f"synchronous-{mode}.jsonl"
    mark.unlink(missing_ok=True)
    token = process.write_token(settings.workdir / "token", emu.token)
    folder = process.empty_folder(settings.workdir, "cwd-")
    trace = settings.workdir / "strace.log"
    before = dbfacts.last_run_id(db)
    args = process.sync_args(emu.url, db, token, emu.spec.kind)
    strace = [
        "strace",
        "-f",
        "-qq",
        "-y",
        "-T",
        "--seccomp-bpf",
        "-e",
        "trace=fsync,fdatasync",
        "-o",
        str(trace),
    ]
    started = time.perf_counter()
    done = subprocess.run(
        [*strace, str(process.console_script()), *args], cwd=folder,
        env={**os.environ, **measure.importer_env(settings, env(settings, mode, mark))},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"strace importer sync exited {done.returncode}:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    counts, fsync_s = fsyncs(trace.read_text(), db.resolve())
    trace.unlink()
    left = sorted(p.name for p in folder.iterdir())
    shutil.rmtree(folder)
    return {
        "seconds": seconds,
        **dbfacts.sync_facts(db, before).as_record(),
        **marks(mark),
        "fsyncs": counts,
        "fsync_s": fsync_s,
        "left_in_cwd": left,
        "measured": "whole process, under strace",
    }


# ----------------------------------------------------------------------------- the disk
def filesystem(path: Path) -> str:
    """``ext4 on /dev/vda (mounted at /), write cache: write back``: what ``path`` lies on."""
    real = os.path.realpath(path)
    device, point, fstype = "?", "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, at, kind = line.split()[:3]
        inside = real == at or real.startswith(at.rstrip("/") + "/")
        if inside and len(at) >= len(point):  # the last, deepest mount wins
            device, point, fstype = dev, at, kind
    cache = Path(f"/sys/class/block/{os.path.basename(device)}")
    queue = cache / "queue" if (cache / "queue").exists() else cache.resolve().parent / "queue"
    facts = []
    for name, label in (("write_cache", "write cache"), ("rotational", "rotational")):
        if (queue / name).exists():
            facts.append(f"{label}: {(queue / name).read_text().strip()}")
    return f"{fstype} on {device} (mounted at {point})" + (f", {', '.join(facts)}" if facts else "")


def fsync_latency_ms(folder: Path, count: int = 50) -> float:
    """The median time of an fsync after a 16 KiB write, in a file in ``folder``."""
    fd, name = tempfile.mkstemp(dir=folder, prefix="fsync-")
    took = []
    try:
        for _ in range(count):
            os.write(fd, b"\0" * 16384)
            started = time.perf_counter()
            os.fsync(fd)
            took.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        os.unlink(name)
    return statistics.median(took) * 1000
