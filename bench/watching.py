"""The ``watch`` job: ``importer watch`` against the emulators' change feeds.

For each kind (Plex, Jellyfin; Emby alike), on a library of 100 shows × 5 × 10 (``--shape
seed``, no added latency), one emulator in its own process and one ``importer watch URL
--db DB --progress json`` (the installed console script, a whole process started from an
empty folder) on a database first synced by ``importer sync``:

1. **Latency**: after ``ready``, 100 changes one at a time (``add``, ``update``, ``delete`` in
   turn, each its own ``POST /_emulator/changes``); for each, the time from the POST's
   answer to the ``batch`` event on the watch's stdout that names its item (Plex: the
   ratingKey the answer calls ``plex_key``; Jellyfin/Emby: ``jellyfin_id``; a deletion in
   ``removed``). The next change is posted 0.5 s after that event: each is its own batch
   (Jellyfin's debounce pushes its timer back on every change, so changes closer than it
   would share one message). p50, p95, max. Jellyfin/Emby's ``LibraryUpdateDuration``
   (``feed_debounce_s``) is set to 2 s, and the latency less that is reported too.
   Against it, **the poller**: one whole-process incremental ``importer sync`` right after
   one change (median of 3, on a copy of the synced database, before the watch starts):
   what a poller with a zero interval gets (real ones add theirs: 5 minutes to a day).
2. **Idle**: every kind's watch left alone at once for ``idle_minutes`` (10): the HTTP
   requests in the emulator's log over that time (websocket connections apart), the CPU
   seconds of the watch's process tree (``/proc``: the process's and its children's
   utime + stime, and those of children it reaped), scaled to an hour and a day.
3. **Load**: 1,000 changes at 100 a second (``count: 10`` every 0.1 s, 100 times; churn's
   kinds in turn, without ``delete_show``: 1,000 changes would delete every show of the
   library about once); once no batch came for a few seconds after the last POST, a fresh
   ``importer sync --full`` into a second database, and the two databases' shows, seasons,
   episodes and media files compared by source ids and content (``bench/dbfacts.py``).
   The time from the last POST's answer to the last batch, the batches and requests.

The watch runs from the first ``ready`` to SIGTERM through all three; its whole run
(``wait4``: CPU time of it and its workers, peak RSS, exit status 143) is a record too.
Latencies are timing: reported against their targets, never gated; the checks are counts
(every change seen, databases equal, idle requests within bound).
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import dbfacts, measure, process
from bench.emulator import Emulator, Mark, ServerSpec
from bench.model import (
    WATCH_IDLE,
    WATCH_LATENCY,
    WATCH_LOAD,
    WATCH_POLLER,
    WATCH_RUN,
    WATCH_VERIFY,
    WHOLE_PROCESS,
    Record,
    Scenario,
    Settings,
    log,
)

#: the full job's sizes (the quick run passes smaller ones)
SHOWS = 100
CHANGES = 100
IDLE_MINUTES = 10.0
QUICK_IDLE_MINUTES = 0.2
LOAD_POSTS = 100
LOAD_COUNT = 10  # changes per POST
LOAD_INTERVAL_S = 0.1  # between POSTs: 100 changes a second
#: Jellyfin/Emby LibraryUpdateDuration for the run (a real server's default is 30 s)
DEBOUNCE_S = 2.0
#: the poller's incremental syncs after one change: the median of 3
POLLER_RUNS = 3
#: after a change's batch, before the next change
SPACING_S = 0.5
#: the latency changes, in turn
LATENCY_KINDS = ("add", "update", "delete")
#: the load's changes, in turn, a POST each: churn's kinds but ``delete_show``
LOAD_KINDS = ("add", "update", "delete", "move_season", "move_show", "rename", "add_season", "replace")
#: how long a change may take to show in a batch before it counts as missed (plus the debounce)
MISSED_AFTER_S = 15.0
#: no batch for this long (plus the debounce) after the last POST: the load is applied
QUIET_S = 3.0
#: the watch's ``ready``: its catch-up of the synced database
READY_TIMEOUT_S = 120.0
#: issue's bound on an idle watch: requests per library per hour
IDLE_REQUESTS_PER_LIBRARY_HOUR = 2.0
#: request log paths of the change feeds (a websocket is logged once it closes)
FEED_PATHS = (
    "/:/websockets/notifications",
    "/:/websocket/notifications",
    "/:/eventsource/notifications",
    "/socket",
    "/embywebsocket",
)
#: what a watch stopped by SIGTERM exits with
STOPPED = 128 + signal.SIGTERM


# --------------------------------------------------------------------------- the process
@dataclass(frozen=True)
class Event:
    at: float  # time.monotonic() when its line was read from the watch's stdout
    body: dict[str, Any]


class WatchProcess:
    """``importer watch URL --db DB --progress json`` from a fresh empty folder; its stdout
    read line by line in a thread, each event stamped as it arrives (``click.echo``
    flushes every line)."""

    def __init__(self, emu: Emulator, settings: Settings, db: Path, token: str, name: str) -> None:
        self.kind = emu.spec.kind
        token_file = process.write_token(settings.workdir / f"watch-token-{name}", token)
        self.folder = process.empty_folder(settings.workdir, "watch-")
        # notices, and the catch-ups' progress; closed in stop()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        args = ["watch", emu.url, "--db", str(db), "--token-file", str(token_file), "--kind", self.kind]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(process.console_script()), *args, "--progress", "json"],
            cwd=self.folder,
            env={**os.environ, **measure.importer_env(settings)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.events: list[Event] = []
        self.closed = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"watch-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            at = time.monotonic()
            try:
                body = json.loads(line)
            except ValueError:
                body = {"event": "text", "line": line.rstrip("\n")}
            with self._cond:
                self.events.append(Event(at, body if isinstance(body, dict) else {"event": "text"}))
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_for(self, match: Callable[[dict[str, Any]], bool], start: int, timeout: float) -> Event | None:
        """The first event from index ``start`` on that ``match``es, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        at = start
        with self._cond:
            while True:
                while at < len(self.events):
                    if match(self.events[at].body):
                        return self.events[at]
                    at += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    return None
                self._cond.wait(remaining)

    def since(self, start: int) -> list[Event]:
        with self._cond:
            return self.events[start:]

    def cpu_s(self) -> float:
        """CPU seconds of the watch's process tree so far: every live process's utime +
        stime, and what each has of the children it reaped (cutime + cstime)."""
        return tree_cpu_s(self.proc.pid)

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self, grace: float = 30.0) -> Record:
        """SIGTERM (it commits the batch in hand and exits 143), then, were it to hang,
        SIGKILL; its whole run as ``wait4`` saw it."""
        pid = self.proc.pid
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                done, status, usage = os.wait4(pid, 0)
                break
            time.sleep(0.05)
        seconds = time.monotonic() - self.started
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self._reader.join(10)
        errors = self.stderr()
        self._stderr.close()
        left = sorted(p.name for p in self.folder.iterdir())
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()
        return {
            "seconds": seconds,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "rss_kb": {"largest": usage.ru_maxrss},
            "exit_code": self.proc.returncode,
            "left_in_cwd": left,
            "stderr": errors,
        }


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def tree_cpu_s(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` and of every live descendant, in seconds."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    ticks, todo = 0, [pid]
    while todo:
        here = todo.pop()
        stat = stats.get(here)
        if stat is not None:
            ticks += sum(int(stat[k]) for k in (11, 12, 13, 14))
        todo += children.get(here, [])
    return ticks / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- one kind
@dataclass
class Side:
    """One kind's emulator, databases and watch, and its scenario."""

    scenario: Scenario
    emu: Emulator
    db: Path
    debounce_s: float  # the feed's own delay before it tells (Jellyfin/Emby); 0 on Plex
    watch: WatchProcess | None = None
    libraries: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.emu.spec.kind

    def source_id(self, change: dict[str, Any]) -> str:
        """The id a batch event names the changed episode by."""
        return str(change["plex_key"] if self.kind == "plex" else change["jellyfin_id"])


def _percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (p95 of 100 values: the 95th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _names(source_id: str, removed: bool) -> Callable[[dict[str, Any]], bool]:
    lists = ("removed",) if removed else ("added", "updated")

    def match(body: dict[str, Any]) -> bool:
        return body.get("event") == "batch" and any(
            item.get("source_id") == source_id for key in lists for item in body.get(key) or ()
        )

    return match


def _is_feed(entry: dict[str, Any]) -> bool:
    return str(entry["path"]).endswith(FEED_PATHS)


def _http(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if not _is_feed(e)]


def _prepare(side: Side, settings: Settings) -> None:
    """Sync, measure the poller on a copy, set the feed's controls, start the watch."""
    scenario, emu, kind = side.scenario, side.emu, side.kind
    log("   importer sync, whole process (not measured) ...")
    sync = measure.whole_process(emu, settings, side.db)
    episodes = scenario.server.shows * 5 * 10
    _finished(scenario, "the first sync", sync, episodes)
    side.libraries = dbfacts.libraries(side.db)
    scenario.notes.append(
        f"before watching: one `importer sync` (not measured), {sync['seconds']:.2f} s, "
        f"{sync['requests']} requests, {sync['episodes_in_db']:,} episodes"
    )
    log(f"   poller: incremental sync after one change, whole process (× {settings.runs(POLLER_RUNS)}) ...")
    polled = measure.copy_db(settings, side.db, f"poll-{kind}.db")
    runs = []
    for n in range(settings.runs(POLLER_RUNS)):
        made = emu.changes(LATENCY_KINDS[n % len(LATENCY_KINDS)], 1, seed=100 + n)
        rec = measure.whole_process(emu, settings, polled)
        rec["changes"] = len(made)
        _finished(scenario, WATCH_POLLER, rec)
        runs.append(rec)
    scenario.record(WATCH_POLLER, runs)
    measure.fresh_db(settings, f"poll-{kind}.db")
    controls = emu.controls({} if kind == "plex" else {"feed_debounce_s": side.debounce_s})
    if kind == "plex":
        scenario.notes.append(
            f"Plex: the emulator takes {controls['plex_ready_ms']:g} ms from timeline state 0 (created) "
            "to state 5 (ready to fetch); a real server takes longer (it analyses the file)"
        )
    else:
        scenario.notes.append(
            f"{kind}: LibraryUpdateDuration (`feed_debounce_s`) set to {controls['feed_debounce_s']:g} s "
            "(a real server's default is 30 s): the server tells a change that long after the last "
            "one; reported with and without it"
        )
    token = emu.token if kind == "plex" else emu.user_token()  # Jellyfin/Emby: a user's session
    side.watch = WatchProcess(emu, settings, side.db, token, kind)


def _finished(scenario: Scenario, variant: str, rec: Record, episodes: int | None = None) -> None:
    scenario.check(f"{variant} finished", rec["status"] == ["done"], f"status {rec['status']}")
    if episodes is not None:
        scenario.check(f"{variant} has every episode", rec["episodes_in_db"] == episodes,
                       f"{rec['episodes_in_db']} in the database, {episodes} on the server")  # fmt: skip
    scenario.check(f"{variant} left nothing in its working folder", not rec["left_in_cwd"],
                   f"left {rec['left_in_cwd']}")  # fmt: skip


def _ready(side: Side) -> None:
    watch = side.watch
    assert watch is not None
    ready = watch.wait_for(lambda body: body.get("event") == "ready", 0, READY_TIMEOUT_S)
    ok = ready is not None and bool(ready.body.get("feed"))
    side.scenario.check("watch: ready, following the feed", ok,
                        f"{ready.body if ready else 'no ready event'}: {watch.stderr()[-1500:]}")  # fmt: skip
    if ready is not None:
        side.notes.append(f"ready {ready.at - watch.started:.2f} s after the start (its catch-up included)")


# --------------------------------------------------------------------------- the figures
def _latency(side: Side, changes: int) -> None:
    """``changes`` changes one at a time; each from its POST's answer to its batch."""
    watch, emu, scenario = side.watch, side.emu, side.scenario
    assert watch is not None
    log(f"   {scenario.name}: {changes} changes, one at a time ...")
    mark = emu.mark()
    seconds: list[float] = []
    made = missed = 0
    batches_before = len(watch.events)
    for n in range(changes):
        start = len(watch.events)
        done = emu.changes(LATENCY_KINDS[n % len(LATENCY_KINDS)], 1, seed=1000 + n)
        answered = time.monotonic()
        if not done:
            continue
        made += 1
        change = done[0]
        hit = watch.wait_for(_names(side.source_id(change), change["kind"] == "delete"), start,
                             MISSED_AFTER_S + side.debounce_s)  # fmt: skip
        if hit is None:
            missed += 1
            if missed <= 3:
                side.notes.append(
                    f"latency: change {n} ({change['kind']} {side.source_id(change)}) never named"
                )
        else:
            seconds.append(max(0.0, hit.at - answered))
        time.sleep(SPACING_S)
    entries = emu.entries_since(mark)
    batches = [e.body for e in watch.since(batches_before) if e.body.get("event") == "batch"]
    rec: Record = {
        "changes": made,
        "seen": len(seconds),
        "batches": len(batches),
        "batch_requests": sum(int(b.get("requests", 0)) for b in batches),
        "requests": len(_http(entries)),
        "debounce_s": side.debounce_s,
        "measured": "POST answer to the watch's batch event (stdout)",
    }
    if seconds:
        rec.update(p50_s=statistics.median(seconds), p95_s=_percentile(seconds, 0.95), max_s=max(seconds))
        rec["requests_per_change"] = rec["batch_requests"] / len(seconds)
        if side.debounce_s:
            less = [s - side.debounce_s for s in seconds]
            rec["p50_after_debounce_s"] = statistics.median(less)
            rec["p95_after_debounce_s"] = _percentile(less, 0.95)
            rec["max_after_debounce_s"] = max(less)
    scenario.record(WATCH_LATENCY, [rec])
    scenario.check(f"{WATCH_LATENCY}: every change seen in a batch", made > 0 and rec["seen"] == made,
                   f"{rec['seen']} of {made} changes named by a batch")  # fmt: skip


def _idle(sides: list[Side], minutes: float) -> None:
    """Every side's watch left alone at once for ``minutes``."""
    log(f"   idle: {', '.join(s.scenario.name for s in sides)} at once, {minutes:g} min ...")
    marks: list[tuple[Mark, float, dict[str, int], int]] = []
    for side in sides:
        assert side.watch is not None
        marks.append((side.emu.mark(), side.watch.cpu_s(), side.emu.feed_stats(), len(side.watch.events)))
    started = time.monotonic()
    time.sleep(minutes * 60)
    seconds = time.monotonic() - started
    for side, (mark, cpu, feed, events) in zip(sides, marks, strict=True):
        watch, emu, scenario = side.watch, side.emu, side.scenario
        assert watch is not None
        used = watch.cpu_s() - cpu
        entries = emu.entries_since(mark)
        served = emu.served_since(mark, entries).as_record()
        http = _http(entries)
        hours = seconds / 3600
        per_hour = len(http) / hours
        rec: Record = {
            "seconds": seconds,
            "minutes": seconds / 60,
            "requests": len(http),
            "paths": sorted({str(e["path"]) for e in http}),
            "websocket_connections": len(entries) - len(http),
            "feed_connections_opened": emu.feed_stats()["connections"] - feed["connections"],
            "events": len(watch.since(events)),
            "libraries": side.libraries,
            "requests_per_hour": per_hour,
            "requests_per_library_per_hour": per_hour / max(side.libraries, 1),
            "cpu_s": used,
            "cpu_s_per_hour": used / hours,
            "cpu_s_per_day": used / hours * 24,
            "emulator": served["emulator"],
            "measured": "watch process tree (/proc), request log",
        }
        scenario.record(WATCH_IDLE, [rec])
        bound = IDLE_REQUESTS_PER_LIBRARY_HOUR
        scenario.check(f"{WATCH_IDLE}: at most {bound:g} requests per library per hour",
                       rec["requests_per_library_per_hour"] <= bound,
                       f"{rec['requests']} requests in {rec['minutes']:.1f} min: {rec['paths']}")  # fmt: skip
        scenario.check(f"{WATCH_IDLE}: the feed held (no reconnection)", rec["feed_connections_opened"] == 0,
                       f"{rec['feed_connections_opened']} feed connections opened")  # fmt: skip


def _settle(watch: WatchProcess, start: int, after: float, quiet: float, timeout: float = 180.0) -> bool:
    """Wait until no batch nor catch-up came for ``quiet`` seconds after ``after``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = [e.at for e in watch.since(start) if e.body.get("event") in ("batch", "caught_up")]
        if time.monotonic() - max([after, *busy]) >= quiet:
            return True
        time.sleep(0.1)
    return False


def _load(side: Side, settings: Settings, posts: int) -> None:
    """``posts`` POSTs of LOAD_COUNT changes, LOAD_INTERVAL_S apart; then the database
    against a fresh ``--full`` sync."""
    watch, emu, scenario = side.watch, side.emu, side.scenario
    assert watch is not None
    log(f"   {scenario.name}: {posts * LOAD_COUNT} changes at {LOAD_COUNT / LOAD_INTERVAL_S:g} a second ...")
    start = len(watch.events)
    mark = emu.mark()
    made = 0
    first = time.monotonic()
    for n in range(posts):
        time.sleep(max(0.0, first + n * LOAD_INTERVAL_S - time.monotonic()))
        made += len(emu.changes(LOAD_KINDS[n % len(LOAD_KINDS)], LOAD_COUNT, seed=5000 + n))
    last = time.monotonic()
    settled = _settle(watch, start, last, QUIET_S + side.debounce_s)
    events = watch.since(start)
    batches = [e for e in events if e.body.get("event") == "batch"]
    entries = emu.entries_since(mark)
    served = emu.served_since(mark, entries).as_record()
    rec: Record = {
        "changes": made,
        "posts": posts,
        "posting_s": last - first,
        "seconds": (batches[-1].at - last) if batches else None,
        "batches": len(batches),
        "batch_requests": sum(int(b.body.get("requests", 0)) for b in batches),
        "items_named": sum(
            len(b.body.get(k) or ()) for b in batches for k in ("added", "updated", "removed")
        ),
        "catch_ups": sum(1 for e in events if e.body.get("event") == "caught_up"),
        "requests": len(_http(entries)),
        "bytes": served["bytes"],
        "emulator": served["emulator"],
        "settled": settled,
        "measured": "last POST answer to the last batch event; request log",
    }
    if rec["seconds"] is None:
        rec.pop("seconds")
    # the emulator's library, as a fresh full sync stores it, against the watched database
    log(f"   {scenario.name}: a fresh importer sync --full, and the two databases compared ...")
    fresh = measure.fresh_db(settings, f"fresh-{side.kind}.db")
    verify = measure.whole_process(emu, settings, fresh, full=True)
    _finished(scenario, WATCH_VERIFY, verify)
    differences = dbfacts.library_differences(side.db, fresh)
    rec["equal"] = not differences
    rec["differences"] = differences
    scenario.record(WATCH_LOAD, [rec])
    scenario.record(WATCH_VERIFY, [verify])
    measure.fresh_db(settings, f"fresh-{side.kind}.db")
    scenario.check(f"{WATCH_LOAD}: applied, then quiet", settled and rec["batches"] > 0,
                   f"{rec['batches']} batches; quiet: {settled}")  # fmt: skip
    scenario.check(f"{WATCH_LOAD}: the database equals a fresh --full sync", not differences,
                   json.dumps(differences)[:1500])  # fmt: skip


def _stop(side: Side) -> None:
    watch, scenario = side.watch, side.scenario
    assert watch is not None
    feed = side.emu.feed_stats()
    events = watch.since(0)
    ran = watch.stop()
    notices = [line for line in ran.pop("stderr").splitlines() if '"event":"notice"' in line]
    rec: Record = {
        **ran,
        "status": ["done"] if ran["exit_code"] == STOPPED else [f"exit {ran['exit_code']}"],
        "batches": sum(1 for e in events if e.body.get("event") == "batch"),
        "catch_ups": sum(1 for e in events if e.body.get("event") == "caught_up"),
        "notices": len(notices),
        "feed_connections": feed["connections"],
        "measured": WHOLE_PROCESS,
    }
    scenario.record(WATCH_RUN, [rec])
    scenario.check(f"{WATCH_RUN}: stopped by SIGTERM (exit {STOPPED})", ran["exit_code"] == STOPPED,
                   f"exit {ran['exit_code']}")  # fmt: skip
    scenario.check(f"{WATCH_RUN} left nothing in its working folder", not ran["left_in_cwd"],
                   f"left {ran['left_in_cwd']}")  # fmt: skip
    scenario.check(f"{WATCH_RUN}: one feed connection all along", feed["connections"] == 1,
                   f"{feed['connections']} feed connections opened")  # fmt: skip
    scenario.notes += side.notes
    scenario.notes += [f"notice: {line[:300]}" for line in notices[:5]]


# --------------------------------------------------------------------------- the job
@contextmanager
def _sides(kinds: list[str], settings: Settings, shows: int, debounce_s: float) -> Iterator[list[Side]]:
    full_size = shows == SHOWS
    with ExitStack() as stack:
        sides = []
        for kind in kinds:
            name = f"watch-{kind}" if full_size else f"watch-{shows}shows-{kind}"
            spec = ServerSpec(kind, shape="seed", shows=shows)
            scenario = Scenario(name, kind, "watch", spec)
            log(f"== {scenario.name}")
            emu = stack.enter_context(Emulator(spec))
            db = measure.fresh_db(settings, f"watch-{kind}.db")
            side = Side(scenario, emu, db, 0.0 if kind == "plex" else debounce_s)
            sides.append(side)
            _prepare(side, settings)
            stack.callback(_kill, side)
        for side in sides:
            _ready(side)
        yield sides
        for side in sides:
            measure.fresh_db(settings, f"watch-{side.kind}.db")


def _kill(side: Side) -> None:
    """On the way out (an error in between), a watch still running is stopped."""
    if side.watch is not None and side.watch.proc.returncode is None:
        side.watch.stop()


def watch(
    kinds: list[str],
    settings: Settings,
    *,
    shows: int = SHOWS,
    changes: int = CHANGES,
    idle_minutes: float = IDLE_MINUTES,
    load_posts: int = LOAD_POSTS,
    debounce_s: float = DEBOUNCE_S,
) -> list[Scenario]:
    """The watch job, every kind at once (their idle stretches overlap): one scenario per kind."""
    idle = settings.idle_minutes if settings.idle_minutes is not None else idle_minutes
    with _sides(kinds, settings, shows, debounce_s) as sides:
        _idle(sides, idle)
        for side in sides:
            _latency(side, changes)
        for side in sides:
            _load(side, settings, load_posts)
        for side in sides:
            _stop(side)
    return [side.scenario for side in sides]
