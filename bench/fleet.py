"""The ``fleet`` job: ``importer fleet`` over 200 emulated servers, on both engines.

The load: 200 servers of skewed sizes, 150 small (500 episodes), 45 medium (5,000) and 5
large (50,000): 550,000 episodes. Three in four servers are of the first kind asked for
(``--kinds``, Plex by default), every fourth of the others in turn; their order in the
config is shuffled (seeded), as a real config's would be. They are served by 4 processes
of ``bench/fleet_servers.py`` (each many servers on its own ports in one event loop,
nice 10, balanced by episodes), with 3 ms added to every request. ``--fleet-servers N``
runs N servers of the same sizes in the same proportions; ``--quick`` 12 servers of a
tenth of the sizes.

For each engine (``local``, ``ray``), the installed console script ``importer fleet
--config FILE --engine E --report R`` started from an empty folder, as a user runs it,
each engine with its own fresh data folder:

1. **First sync**: the makespan (the whole command's wall time, Ray's start and stop
   included), servers per minute, rows per second (rows: the sum of the report's), each
   server's completion time (the report's ``finished_at``) p50/p95/max, the worst wait of
   a small server before its job started (``first_started_at``) and its worst completion;
   the peak of the summed RSS of the driver's whole process tree (every descendant: the
   jobs and their workers; Ray's GCS, raylet, agents and workers), sampled every 0.2 s.
   CPU time: the larger of two lower bounds, ``wait4``'s (the driver and the children it
   reaped: nearly all of the local engine's; little of Ray's, whose processes are not
   reaped into the driver's) and the sum over every process seen in the tree of its own
   CPU time when last sampled (short of what each spent after its last sample).
2. **No change**: the same command again at once: every server incremental, nothing to
   do. The makespan over the servers is the cost of a server; a job slot's time per job
   (the report's ``seconds``, from the fleet's start: Ray's start and stop apart, × jobs
   at a time ÷ servers) less the job's own run time (the report's per-server
   ``seconds``, measured inside the job) is what the engine adds to each. Held against
   one plain ``importer sync`` of a small server with nothing to do (whole process,
   alone on the machine, median of 3; measured once for both engines).
3. **Fault**: a fresh data folder; at 30% of the first sync (its episodes in the
   databases, counted every 0.25 s, or its time since the first job started, whichever
   comes first: a large server's episodes show at once, as its sync commits), the
   running job of the largest server gets SIGKILL (local: the process whose command line
   holds ``importer.fleet.job``; Ray: the worker titled ``ray::run_job``; its server is
   the ``<name>.db`` it or its workers hold open); at 60% (0.5 s after the kill at the
   earliest) the driver gets one SIGINT (it must exit 130), then ``importer fleet`` runs
   again to the end (exit 0). Every server's database must then equal the first sync's:
   shows, seasons, episodes and media files compared by the server's ids and every
   content column (``bench/dbfacts.py``). The extra time is (the faulted run + the
   resumed one) − the first sync.

Also checked: no process of a run outlives it (every pid seen in its tree is gone after
it exits), it leaves nothing in its working folder, each run exits as it should, every
Plex server's database has exactly its episodes, and the two engines' databases are
equal. Times are reported, never gated: the checks are counts and equality.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import apsw
import orjson

from bench import dbfacts, measure, process
from bench.fleet_servers import FleetServer, Running, ServersHost, rss_kb
from bench.model import WHOLE_PROCESS, Record, Scenario, Settings, log

#: the full job's fleet (the quick run and --fleet-servers pass others)
SERVERS = 200
QUICK_SERVERS = 12
#: episodes of a server of each size, and the share of servers of that size
SIZES = {"small": 500, "medium": 5_000, "large": 50_000}
QUICK_SIZES = {"small": 50, "medium": 500, "large": 5_000}
SHARES = {"small": 0.75, "medium": 0.225, "large": 0.025}
#: added to every request by the emulated servers
LATENCY_MS = 3.0
#: processes serving the fleet's servers
HOSTS = 4
ENGINES = ("local", "ray")
#: the process tree's RSS, every so often
SAMPLE_S = 0.2
#: the fault run: SIGKILL a job at this share of the first sync's rows, SIGINT at this one
KILL_AT = 0.3
INTERRUPT_AT = 0.6
#: at least this long between the kill and the SIGINT
AFTER_KILL_S = 0.5
#: how often the fault run counts the episodes in its databases
POLL_S = 0.25
#: a SIGINT'd driver must be gone by then
STOP_TIMEOUT_S = 120.0
#: a run that takes longer than this has hung
RUN_TIMEOUT_S = 1800.0
#: each engine's environment: Ray's ``ray.init()`` without an address joins any Ray it
#: finds running on the machine (RAY_ADDRESS, /tmp/ray/ray_current_cluster, a live GCS
#: server), and then refuses ``num_cpus``; "local" makes it start its own, as it should
ENGINE_ENV = {"ray": {"RAY_ADDRESS": "local"}}
#: what a driver stopped by SIGINT exits with
INTERRUPTED = 130
#: the baseline: plain `importer sync` runs with nothing to do, median of
DIRECT_RUNS = 3

#: the variants (one scenario for the fleet, every engine's records side by side)
FIRST = "first sync"
NO_CHANGE = "no change"
FAULT = "killed job + SIGINT"
RESUMED = "resumed"
DIRECT = "importer sync, no change, one small server"


# --------------------------------------------------------------------------- the load
@dataclass(frozen=True)
class FleetSpec:
    """The fleet as the report's title shows it (``Scenario.server``)."""

    kind: str
    servers: int
    episodes: int  # all servers'
    latency_ms: float
    sizes: dict[str, int]
    counts: dict[str, int]
    kinds: dict[str, int]
    hosts: int
    shows: int = 0


@dataclass(frozen=True)
class Planned:
    server: FleetServer
    size: str  # small | medium | large


def plan(servers: int, sizes: dict[str, int], kinds: list[str], seed: int = 7) -> list[Planned]:
    """``servers`` servers in config order: SHARES of each size (at least one large), in a
    seeded shuffled order, named s001... in that order; three in four of ``kinds[0]``."""
    large = max(1, round(servers * SHARES["large"]))
    medium = min(servers - large, round(servers * SHARES["medium"]))
    small = servers - large - medium
    classes = ["small"] * small + ["medium"] * medium + ["large"] * large
    random.Random(seed).shuffle(classes)
    others = kinds[1:]
    out = []
    for n, size in enumerate(classes):
        kind = others[(n // 4) % len(others)] if others and n % 4 == 3 else kinds[0]
        out.append(Planned(FleetServer(f"s{n + 1:03d}", kind, sizes[size], seed=n + 1), size))
    return out


def balance(servers: list[FleetServer], hosts: int) -> list[list[FleetServer]]:
    """``servers`` over at most ``hosts`` groups of about equal episodes (largest first,
    each to the least loaded group); no empty group."""
    groups: list[list[FleetServer]] = [[] for _ in range(min(hosts, len(servers)))]
    load = [0] * len(groups)
    for server in sorted(servers, key=lambda s: -s.episodes):
        least = load.index(min(load))
        groups[least].append(server)
        load[least] += server.episodes
    return groups


# --------------------------------------------------------------------------- statistics
def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (p95 of 100 values: the 95th smallest); NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def completion(report: dict[str, Any], sizes: dict[str, str]) -> Record:
    """From a fleet report: completion p50/p95/max over every server, and per size class
    (``sizes``: server name → class) its servers, p50/p95/max and worst wait."""
    servers = report["servers"]
    done = [float(s["finished_at"]) for s in servers if s.get("finished_at") is not None]
    out: Record = {
        "p50_s": percentile(done, 0.5),
        "p95_s": percentile(done, 0.95),
        "max_s": max(done, default=math.nan),
    }
    by_size: Record = {}
    for size in sorted(set(sizes.values())):
        ours = [s for s in servers if sizes.get(s["name"]) == size]
        finished = [float(s["finished_at"]) for s in ours if s.get("finished_at") is not None]
        waits = [float(s["first_started_at"]) for s in ours if s.get("first_started_at") is not None]
        by_size[size] = {
            "servers": len(ours),
            "p50_s": percentile(finished, 0.5),
            "p95_s": percentile(finished, 0.95),
            "max_s": max(finished, default=math.nan),
            "max_wait_s": max(waits, default=math.nan),
        }
    out["by_size"] = by_size
    return out


# --------------------------------------------------------------------------- processes
@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    start: int  # clock ticks after boot: with the pid, a process's identity
    ticks: int = field(default=0, compare=False, hash=False)  # utime + stime so far


def _stat(pid: int) -> Proc | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return Proc(pid, int(fields[1]), int(fields[19]), int(fields[11]) + int(fields[12]))


def processes() -> dict[int, Proc]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (proc := _stat(int(entry.name))) is not None:
            out[proc.pid] = proc
    return out


def tree(root: int, table: dict[int, Proc] | None = None) -> list[Proc]:
    """``root`` and every live descendant."""
    table = processes() if table is None else table
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            out.append(table[pid])
        todo += children.get(pid, [])
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def is_job(engine: str, command: str) -> bool:
    """A job's process: the local engine's interpreter, or a Ray worker running ``run_job``."""
    if engine == "ray":
        return command.startswith("ray::") and "run_job" in command
    return "importer.fleet.job" in command


def open_databases(pid: int, folder: Path) -> set[str]:
    """The server names whose ``<name>.db`` in ``folder`` ``pid`` or a descendant holds open."""
    names = set()
    for proc in tree(pid):
        try:
            fds = list(Path(f"/proc/{proc.pid}/fd").iterdir())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for fd in fds:
            try:
                target = Path(os.readlink(fd))
            except OSError:
                continue
            if target.parent == folder and target.suffix == ".db":
                names.add(target.stem)
    return names


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TreeSampler:
    """The summed RSS of a process tree, every SAMPLE_S in a thread: its peak, every
    process seen, and when a job's process first appeared."""

    def __init__(self, root: int, engine: str) -> None:
        self.root = root
        self.engine = engine
        self.started = time.monotonic()
        self.peak_kb = 0
        self.peak_processes = 0
        self.seen: set[Proc] = set()
        self._ticks: dict[Proc, int] = {}  # each process's utime + stime when last seen
        self.first_job_at: float | None = None  # seconds after the sampler started
        self._titles: dict[Proc, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_S)

    def sample(self) -> None:
        procs = tree(self.root)
        self.seen.update(procs)
        self._ticks.update((p, p.ticks) for p in procs)
        total = sum(rss_kb(p.pid) for p in procs)
        self.peak_kb = max(self.peak_kb, total)
        self.peak_processes = max(self.peak_processes, len(procs))
        if self.first_job_at is None and any(is_job(self.engine, cmdline(p.pid)) for p in procs):
            self.first_job_at = time.monotonic() - self.started

    def cpu_s(self) -> float:
        """The CPU time of every process seen in the tree when it was last seen (their own,
        not their children's: no process counted twice); a lower bound, short of what a
        process spent after its last sample."""
        return sum(self._ticks.values()) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def survivors(self, grace: float = 10.0) -> list[str]:
        """The processes seen in the tree that still live (the same pid and start time)
        ``grace`` seconds after the run ended: none should."""
        deadline = time.monotonic() + grace
        while True:
            table = processes()
            alive = [p for p in self.seen if p.pid != self.root and table.get(p.pid) == p]
            if not alive or time.monotonic() > deadline:
                return [f"{p.pid}: {cmdline(p.pid)[:120]}" for p in alive]
            time.sleep(0.2)


# --------------------------------------------------------------------------- one run
@dataclass
class Workspace:
    """The fleet's token files, and one folder per run: its config, data and report."""

    root: Path
    servers: list[Running]
    token_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.token_dir = self.root / "tokens"
        self.token_dir.mkdir(parents=True, exist_ok=True)
        self.token_dir.chmod(0o700)
        for server in self.servers:
            process.write_token(self.token_dir / f"{server.name}.token", server.token)

    def config(self, name: str) -> Path:
        """A fresh folder ``name`` with the fleet's config; data in its ``dbs``."""
        folder = self.root / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        lines = ["[defaults]", 'data_dir = "dbs"', "concurrency = 4", ""]
        for s in self.servers:
            token = self.token_dir / f"{s.name}.token"
            lines += ["[[server]]", f'name = "{s.name}"', f'url = "{s.url}"', f'kind = "{s.kind}"']
            lines += [f'token_file = "{token}"', ""]
        path = folder / "fleet.toml"
        path.write_text("\n".join(lines))
        return path


@dataclass
class FleetProcess:
    """``importer fleet --config C --engine E --report R`` from a fresh empty folder, its
    process tree sampled; :meth:`wait` gives its record."""

    engine: str
    config: Path
    settings: Settings
    hosts: list[ServersHost]
    report_path: Path = field(init=False)
    folder: Path = field(init=False)
    proc: subprocess.Popen[bytes] = field(init=False)
    sampler: TreeSampler = field(init=False)
    started: float = field(init=False)
    _out: IO[bytes] = field(init=False)
    _emulator_cpu: float = field(init=False)

    def __post_init__(self) -> None:
        self.report_path = self.config.parent / f"report-{int(time.time() * 1000)}.json"
        self.folder = process.empty_folder(self.settings.workdir, "fleet-cwd-")
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in wait()
        args = [
            "fleet",
            "--config",
            str(self.config),
            "--engine",
            self.engine,
            "--report",
            str(self.report_path),
        ]
        self._emulator_cpu = sum(cpu_s(h.pid) for h in self.hosts)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(process.console_script()), *args],
            cwd=self.folder,
            env={**os.environ, **measure.importer_env(self.settings, ENGINE_ENV.get(self.engine))},
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.sampler = TreeSampler(self.proc.pid, self.engine)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def alive(self) -> bool:
        """Whether the driver still runs (it is left for :meth:`wait` to reap)."""
        return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    def jobs(self) -> list[int]:
        """The job processes running now."""
        return [p.pid for p in tree(self.proc.pid) if is_job(self.engine, cmdline(p.pid))]

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> Record:
        pid = self.proc.pid
        deadline = self.started + timeout
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:  # hung: its whole tree goes
                for p in tree(pid):
                    os.kill(p.pid, signal.SIGKILL)
                done, status, usage = os.wait4(pid, 0)
                break
            time.sleep(0.02)
        seconds = time.monotonic() - self.started
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.sampler.stop()
        survivors = self.sampler.survivors()
        self._out.seek(0)
        output = self._out.read().decode(errors="replace")
        self._out.close()
        left = sorted(p.name for p in self.folder.iterdir())
        shutil.rmtree(self.folder)
        report = orjson.loads(self.report_path.read_bytes()) if self.report_path.exists() else None
        rec: Record = {
            "seconds": seconds,
            # two lower bounds (module docstring): the larger
            "cpu_s": max(usage.ru_utime + usage.ru_stime, self.sampler.cpu_s()),
            "cpu_wait4_s": usage.ru_utime + usage.ru_stime,
            "cpu_sampled_s": self.sampler.cpu_s(),
            "rss_kb": {"tree": self.sampler.peak_kb},
            "processes": self.sampler.peak_processes,
            "exit_code": self.proc.returncode,
            "first_job_s": self.sampler.first_job_at,
            "emulator": {"cpu_s": sum(cpu_s(h.pid) for h in self.hosts) - self._emulator_cpu},
            "survivors": survivors,
            "left_in_cwd": left,
            "measured": WHOLE_PROCESS,
        }
        if report is not None:
            rec["report"] = report
        if self.proc.returncode not in (0, INTERRUPTED):
            rec["output"] = output[-3000:]
        return rec


def summarise(rec: Record, sizes: dict[str, str]) -> Record:
    """The figures of a run's record from its report (the report itself is dropped)."""
    report = rec.pop("report", None)
    if report is None:
        return rec
    servers = report["servers"]
    rows = sum(int(s["rows"]) for s in servers)
    seconds = float(rec["seconds"])
    done = sum(1 for s in servers if s["outcome"] == "done")
    rec.update(
        {
            "servers": len(servers),
            "done": done,
            "outcomes": sorted({str(s["outcome"]) for s in servers}),
            "rows": rows,
            "requests": sum(int(s["requests"]) for s in servers),
            "attempts": sum(int(s["attempts"]) for s in servers),
            "jobs": report["jobs"],
            "fleet_s": report["seconds"],  # the report's: from the fleet's start, engine started
            "servers_per_min": done / seconds * 60,
            "rows_per_s": rows / seconds,
            "job_s_mean": statistics.fmean(float(s["seconds"]) for s in servers) if servers else math.nan,
            **completion(report, sizes),
        }
    )
    small = rec["by_size"].get("small")
    if small:
        rec["small_worst_wait_s"] = small["max_wait_s"]
        rec["small_worst_done_s"] = small["max_s"]
    return rec


def _count(path: Path) -> int | None:
    """The episodes in one database; 0 before its schema exists; None when it is locked."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.set_busy_timeout(200)
        value = conn.execute("SELECT count(*) FROM episodes").get
        return value if isinstance(value, int) else 0
    except apsw.SQLError:  # created, not yet migrated: nothing in it
        return 0
    except apsw.BusyError:
        return None
    finally:
        conn.close()


def episodes(folder: Path, names: list[str]) -> dict[str, int]:
    """The episodes in each server's database in ``folder`` (-1: no database)."""
    out = {}
    for name in names:
        path = folder / f"{name}.db"
        out[name] = (_count(path) or 0) if path.exists() else -1
    return out


class Progress:
    """The episodes in a data folder's databases while a run writes them: a database is
    read again only once it or its write-ahead log changed."""

    def __init__(self, folder: Path, names: list[str]) -> None:
        self.folder = folder
        self.names = names
        self._known: dict[str, tuple[tuple[int, ...], int]] = {}

    def episodes(self) -> int:
        total = 0
        for name in self.names:
            db, wal = self.folder / f"{name}.db", self.folder / f"{name}.db-wal"
            try:
                stat = db.stat()
            except FileNotFoundError:
                continue
            try:
                wal_stat: tuple[int, ...] = (wal.stat().st_mtime_ns, wal.stat().st_size)
            except FileNotFoundError:
                wal_stat = ()
            key = (stat.st_mtime_ns, stat.st_size, *wal_stat)
            known = self._known.get(name)
            if known is None or known[0] != key:
                count = _count(db)
                if count is None:  # locked: what it had
                    count = known[1] if known else 0
                else:
                    self._known[name] = (key, count)
            else:
                count = known[1]
            total += count
        return total


def differences(a: Path, b: Path, names: list[str]) -> dict[str, Any]:
    """Per server whose databases in folders ``a`` and ``b`` differ: how (dbfacts)."""
    out: dict[str, Any] = {}
    for name in names:
        x, y = a / f"{name}.db", b / f"{name}.db"
        if not x.exists() or not y.exists():
            out[name] = {"missing": [str(p) for p in (x, y) if not p.exists()]}
        elif found := dbfacts.library_differences(x, y):
            out[name] = found
    return out


# --------------------------------------------------------------------------- the job
@dataclass
class Fleet:
    """The fleet's servers, running, and what each run needs to know of them."""

    scenario: Scenario
    settings: Settings
    planned: list[Planned]
    hosts: list[ServersHost]
    workspace: Workspace

    @property
    def names(self) -> list[str]:
        return [p.server.name for p in self.planned]

    @property
    def sizes(self) -> dict[str, str]:
        return {p.server.name: p.size for p in self.planned}

    def run(self, engine: str, config: Path) -> Record:
        return summarise(FleetProcess(engine, config, self.settings, self.hosts).wait(), self.sizes)

    def expected(self, rec: Record, variant: str, code: int = 0) -> None:
        s = self.scenario
        s.check(f"{variant}: exit {code}", rec["exit_code"] == code,
                f"exit {rec['exit_code']}: {str(rec.get('output', ''))[-1500:]}")  # fmt: skip
        s.check(
            f"{variant}: no process of the run outlives it", not rec["survivors"], "; ".join(rec["survivors"])
        )
        s.check(
            f"{variant} left nothing in its working folder",
            not rec["left_in_cwd"],
            f"left {rec['left_in_cwd']}",
        )


def _first(fleet: Fleet, engine: str) -> tuple[Record, Path]:
    s = fleet.scenario
    variant = f"{engine}: {FIRST}"
    log(f"   {variant} ...")
    config = fleet.workspace.config(f"{engine}-first")
    rec = fleet.run(engine, config)
    data = config.parent / "dbs"
    found = episodes(data, fleet.names)
    rec["episodes_in_db"] = sum(max(n, 0) for n in found.values())
    rec["episodes_per_s"] = rec["episodes_in_db"] / rec["seconds"]
    fleet.expected(rec, variant)
    s.check(f"{variant}: every server done", rec.get("done") == len(fleet.names),
            f"{rec.get('done')} of {len(fleet.names)} done: {rec.get('outcomes')}")  # fmt: skip
    wrong = {
        p.server.name: found[p.server.name]
        for p in fleet.planned
        if p.server.kind == "plex" and found[p.server.name] != p.server.episodes
    }
    s.check(f"{variant}: every Plex server's database has exactly its episodes", not wrong, str(wrong)[:1500])
    s.record(variant, [rec])
    return rec, data


def _no_change(fleet: Fleet, engine: str, first: Record, data: Path, direct: Record | None) -> Record:
    s = fleet.scenario
    variant = f"{engine}: {NO_CHANGE}"
    log(f"   {variant} ...")
    rec = fleet.run(engine, data.parent / "fleet.toml")
    n = len(fleet.names)
    rec["per_job_s"] = rec["seconds"] / n
    jobs = int(rec["jobs"] if "jobs" in rec else first.get("jobs") or 1)
    fleet_s = float(rec["fleet_s"] if "fleet_s" in rec else rec["seconds"])
    # a job slot's time per job, from the fleet's start (Ray's start and stop apart)
    rec["slot_s_per_job"] = fleet_s * jobs / n
    rec["engine_start_stop_s"] = rec["seconds"] - fleet_s
    rec["engine_s_per_job"] = rec["slot_s_per_job"] - float(rec.get("job_s_mean") or 0.0)
    if direct is not None:
        rec["slot_vs_direct"] = rec["slot_s_per_job"] / direct["seconds"]
    fleet.expected(rec, variant)
    s.check(f"{variant}: wrote nothing", rec.get("rows") == 0, f"{rec.get('rows')} rows written")
    s.record(variant, [rec])
    return rec


def _fault(fleet: Fleet, engine: str, first: Record, clean: Path) -> Record:
    """SIGKILL a job at KILL_AT of the first sync, SIGINT the driver at INTERRUPT_AT, run
    again to the end, compare every database with the first sync's."""
    s = fleet.scenario
    variant = f"{engine}: {FAULT}"
    expected = int(first.get("episodes_in_db") or sum(p.server.episodes for p in fleet.planned))
    clean_s = float(first.get("fleet_s") or first["seconds"])
    log(
        f"   {variant}: kill a job at {KILL_AT:.0%} of the first sync's episodes or time, SIGINT at "
        f"{INTERRUPT_AT:.0%} ..."
    )
    config = fleet.workspace.config(f"{engine}-fault")
    data = config.parent / "dbs"
    progress = Progress(data, fleet.names)
    run = FleetProcess(engine, config, fleet.settings, fleet.hosts)
    killed: dict[str, Any] = {}
    interrupted_at, rec_then = None, 0

    def reached(share: float, done: int) -> str | None:
        """Why the run is at ``share`` of the first sync: its episodes, or its time."""
        if done >= share * expected:
            return "episodes"
        began = run.sampler.first_job_at
        return "time" if began is not None and run.elapsed() - began >= share * clean_s else None

    while run.alive() and run.elapsed() < RUN_TIMEOUT_S:
        done = progress.episodes()
        if not killed and (why := reached(KILL_AT, done)):
            killed = _kill_a_job(run, data, fleet)
            if killed:
                killed.update(episodes_then=done, trigger=why)
        elif killed and run.elapsed() >= killed["at_s"] + AFTER_KILL_S and reached(INTERRUPT_AT, done):
            interrupted_at = run.elapsed()
            run.proc.send_signal(signal.SIGINT)
            rec_then = done
            break
        time.sleep(POLL_S)
    rec = summarise(run.wait(timeout=(interrupted_at or run.elapsed()) + STOP_TIMEOUT_S), fleet.sizes)
    rec["killed"] = killed
    rec["interrupted_at_s"] = interrupted_at
    rec["episodes_at_sigint"] = rec_then if interrupted_at is not None else None
    found = episodes(data, fleet.names)
    total = sum(p.server.episodes for p in fleet.planned)
    rec["episodes_in_db"] = sum(max(n, 0) for n in found.values())
    rec["share_done"] = rec["episodes_in_db"] / total
    s.check(f"{variant}: a job's process was killed", bool(killed), "no job running when it was due")
    s.check(f"{variant}: SIGINT'd, mid-run", interrupted_at is not None, "the run ended before the SIGINT")
    fleet.expected(rec, variant, INTERRUPTED)
    s.record(variant, [rec])

    resumed_variant = f"{engine}: {RESUMED}"
    log(f"   {resumed_variant} ...")
    resumed = fleet.run(engine, config)
    fleet.expected(resumed, resumed_variant)
    log(f"   {engine}: every database against the first sync's ...")
    started = time.monotonic()
    found_differences = differences(clean, data, fleet.names)
    resumed["compare_s"] = time.monotonic() - started
    resumed["equal"] = not found_differences
    resumed["differences"] = found_differences
    resumed["extra_s"] = rec["seconds"] + resumed["seconds"] - first["seconds"]
    detail = f"{len(found_differences)} differ: {orjson.dumps(found_differences).decode()[:1500]}"
    s.check(f"{resumed_variant}: every database equals the first sync's", not found_differences, detail)
    if found_differences:
        log(f"   **{engine}: {len(found_differences)} database(s) differ from the first sync's**")
    s.record(resumed_variant, [resumed])
    shutil.rmtree(config.parent)
    return resumed


def _kill_a_job(run: FleetProcess, data: Path, fleet: Fleet) -> dict[str, Any]:
    """SIGKILL the running job of the largest server; what was killed (empty: none ran)."""
    sizes = {p.server.name: p.server.episodes for p in fleet.planned}
    candidates = []
    for pid in run.jobs():
        held = open_databases(pid, data)
        if held:
            candidates.append((max(sizes.get(n, 0) for n in held), pid, sorted(held)))
    if not candidates:
        return {}
    episodes_, pid, names = max(candidates)
    command = cmdline(pid)[:80]
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return {}
    at = run.elapsed()
    return {
        "pid": pid,
        "servers": names,
        "server_episodes": episodes_,
        "at_s": at,
        "command": command,
    }


def _direct(fleet: Fleet, data: Path) -> Record:
    """Plain ``importer sync`` with nothing to do, on a copy of a small server's database."""
    small = next(p.server for p in fleet.planned if p.size == "small")
    running = next(r for r in fleet.workspace.servers if r.name == small.name)
    db = measure.copy_db(fleet.settings, data / f"{small.name}.db", "fleet-direct.db")
    token = fleet.workspace.token_dir / f"{small.name}.token"
    runs = []
    for _ in range(fleet.settings.runs(DIRECT_RUNS)):
        folder = process.empty_folder(fleet.settings.workdir, "cwd-")
        before = dbfacts.last_run_id(db)
        ran = process.run(process.sync_args(running.url, db, token, small.kind), folder,
                          measure.importer_env(fleet.settings))  # fmt: skip
        facts = dbfacts.sync_facts(db, before)
        left = sorted(p.name for p in folder.iterdir())
        shutil.rmtree(folder)
        runs.append({"seconds": ran.seconds, "cpu_s": ran.cpu_s, "rss_kb": {"largest": ran.rss_max_kb},
                     **facts.as_record(), "left_in_cwd": left, "measured": WHOLE_PROCESS})  # fmt: skip
    measure.fresh_db(fleet.settings, "fleet-direct.db")
    rec = fleet.scenario.record(DIRECT, runs)
    fleet.scenario.check(f"{DIRECT}: wrote nothing", rec["written"] == 0 and rec["status"] == ["done"],
                         f"{rec['written']} written, status {rec['status']}")  # fmt: skip
    return rec


def _engine_available(engine: str) -> bool:
    if engine != "ray":
        return True
    done = subprocess.run(
        [str(Path(process.console_script()).parent / "python"), "-c", "import ray"],
        capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


@contextmanager
def _fleet(kinds: list[str], settings: Settings, servers: int, sizes: dict[str, int],
           latency_ms: float, name: str) -> Iterator[Fleet]:  # fmt: skip
    planned = plan(servers, sizes, kinds)
    groups = balance([p.server for p in planned], HOSTS)
    counts = {size: sum(1 for p in planned if p.size == size) for size in sizes}
    spec = FleetSpec(
        kind="mixed" if len({p.server.kind for p in planned}) > 1 else planned[0].server.kind,
        servers=servers,
        episodes=sum(p.server.episodes for p in planned),
        latency_ms=latency_ms,
        sizes=dict(sizes),
        counts=counts,
        kinds={k: sum(1 for p in planned if p.server.kind == k) for k in kinds},
        hosts=len(groups),
    )
    scenario = Scenario(name, spec.kind, "fleet", spec)
    log(f"== {name}: {servers} servers, {spec.episodes:,} episodes, on {len(groups)} server processes")
    with ExitStack() as stack:
        started = time.monotonic()
        hosts = [stack.enter_context(ServersHost(group, latency_ms=latency_ms)) for group in groups]
        build_s = time.monotonic() - started
        hosts_rss = [h.rss_kb() for h in hosts]
        running = {r.name: r for h in hosts for r in h.running}
        root = Path(tempfile.mkdtemp(prefix="fleet-", dir=settings.workdir))
        stack.callback(shutil.rmtree, root, True)
        workspace = Workspace(root, [running[p.server.name] for p in planned])
        scenario.notes.append(
            f"{servers} servers: " + ", ".join(f"{counts[k]} {k} ({v:,} episodes)" for k, v in sizes.items())
            + "; " + ", ".join(f"{n} {k}" for k, n in spec.kinds.items() if n)
            + f"; {latency_ms:g} ms per request; served by {len(groups)} processes (nice 10), built and "
            f"started in {build_s:.1f} s, RSS " + ", ".join(f"{kb / 1024:.0f}" for kb in hosts_rss)
            + f" MB ({sum(hosts_rss) / 1024:.0f} MB in all, once started)"
        )  # fmt: skip
        yield Fleet(scenario, settings, planned, hosts, workspace)
        scenario.notes.append(
            "servers' RSS at the end: " + ", ".join(f"{h.rss_kb() / 1024:.0f}" for h in hosts) + " MB"
        )


def _notes(s: Scenario, engine: str, first: Record, quiet: Record, resumed: Record | None) -> None:
    f, q = dict(first), dict(quiet)
    for rec in (f, q):  # a failed run's record lacks the report's figures
        for key in ("first_job_s", "servers_per_min", "rows_per_s", "p50_s", "p95_s", "job_s_mean"):
            rec[key] = rec.get(key) or 0.0
        for key in ("small_worst_wait_s", "small_worst_done_s"):
            rec[key] = rec.get(key) or 0.0
    s.notes.append(
        f"{engine}: makespan {f['seconds']:.1f} s ({f.get('jobs')} jobs at a time; the first job "
        f"{f['first_job_s']:.1f} s after the start), {f['servers_per_min']:.0f} servers/min, "
        f"{f['rows_per_s']:,.0f} rows/s; completion p50 {f['p50_s']:.1f} s, p95 {f['p95_s']:.1f} s; "
        f"small servers: worst wait {f['small_worst_wait_s']:.1f} s, worst completion "
        f"{f['small_worst_done_s']:.1f} s; peak RSS of the tree {f['rss_kb']['tree'] / 1024:.0f} MB "
        f"({f['processes']} processes at most)"
    )
    direct = f"; {q['slot_vs_direct']:.2f}× a plain `importer sync`" if "slot_vs_direct" in q else ""
    s.notes.append(
        f"{engine}: nothing to do: {q['seconds']:.1f} s, {q['per_job_s'] * 1000:.0f} ms per server "
        f"(the engine's start and stop: {q['engine_start_stop_s']:.1f} s); from the fleet's start, a "
        f"job slot's {q['slot_s_per_job'] * 1000:.0f} ms per job, of which the job's own run "
        f"{q['job_s_mean'] * 1000:.0f} ms: the engine adds {q['engine_s_per_job'] * 1000:.0f} ms{direct}"
    )
    s.notes.append(
        f"{engine}: CPU of the first sync: {f['cpu_wait4_s']:.1f} s by wait4 (the driver and the children it "
        f"reaped), {f['cpu_sampled_s']:.1f} s sampled over the tree (every process's own, when last seen)"
    )
    if resumed is not None:
        fault = s.get(f"{engine}: {FAULT}") or {}
        killed = fault.get("killed") or {}
        equal = "all equal" if resumed["equal"] else f"**{len(resumed['differences'])} differ**"
        at_kill, at_sigint = killed.get("episodes_then", 0), fault.get("episodes_at_sigint") or 0
        s.notes.append(
            f"{engine}: fault: killed {killed.get('servers')}'s job at {killed.get('at_s', 0):.1f} s "
            f"({at_kill:,} episodes in), SIGINT at {fault.get('interrupted_at_s') or 0:.1f} s "
            f"({at_sigint:,}; exit {fault.get('exit_code')}, "
            f"{fault.get('share_done', 0):.0%} of the episodes in at its end), "
            f"resumed in {resumed['seconds']:.1f} s: {resumed['extra_s']:+.1f} s over the first sync; "
            f"databases {equal}"
        )


def fleet(
    kinds: list[str],
    settings: Settings,
    *,
    servers: int = SERVERS,
    sizes: dict[str, int] | None = None,
    latency_ms: float = LATENCY_MS,
    engines: tuple[str, ...] = ENGINES,
) -> list[Scenario]:
    """The fleet job: one scenario, every engine's runs side by side."""
    sizes = sizes or SIZES
    name = f"fleet-{servers}" + ("" if sizes == SIZES else "-tiny")
    with _fleet(kinds, settings, servers, sizes, latency_ms, name) as f:
        s = f.scenario
        cleans: dict[str, Path] = {}
        direct: Record | None = None
        for engine in engines:
            if not _engine_available(engine):
                s.notes.append(f"{engine}: not installed (pip install 'importer[{engine}]'): not run")
                continue
            first, data = _first(f, engine)
            cleans[engine] = data
            if direct is None:
                log(f"   {DIRECT} (× {settings.runs(DIRECT_RUNS)}) ...")
                direct = _direct(f, data)
            quiet = _no_change(f, engine, first, data, direct)
            resumed = _fault(f, engine, first, data)
            _notes(s, engine, first, quiet, resumed)
        if len(cleans) > 1:
            (a, x), (b, y) = list(cleans.items())[:2]
            log(f"   {a}'s databases against {b}'s ...")
            found = differences(x, y, f.names)
            s.check(f"{a} and {b}: every database equal", not found, orjson.dumps(found).decode()[:1500])
            s.notes.append(
                f"{a} and {b}: databases " + ("all equal" if not found else f"**{len(found)} differ**")
            )
    return [s]
