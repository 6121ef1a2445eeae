"""Power cuts (issue 15): a run cut at a random file operation, everything not yet durable
undone as a power failure would (``tests/powercut``), in two models (strict: every unsynced
change lost; random: a random prefix of each file's and folder's unsynced changes kept),
in every phase of a run, on Plex and Jellyfin. After each cut:

- the database passes ``PRAGMA integrity_check`` (when it is there at all);
- no row the server still lists was deleted, and no row was deleted by anything but a
  sweep of a complete listing;
- a run whose end was recorded ``done`` by a commit that returned before the cut is still
  ``done`` (and so after the process exited: a cut "after the exit" is a cut too);
- the next sync ends as a clean one does (at most one rerun more), and the database then
  equals a clean import: whatever the cursor file said, the run resumed from what the
  database held (a cursor that won would leave rows missing);
- the runs' ``deleted`` counts add up to no more than what the server really deleted.

CI runs one cut per server kind and phase (the models taking turns). ``pytest --campaign N`` runs
N per kind and phase (16 of them: ``--campaign 32`` makes 512 cuts), and each test
appends one JSON line per cut to ``powercut.jsonl`` in pytest's base temp folder.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw
import pytest
from ground_truth import expected
from powercut import MODELS, RUNNER, Journal, power_cut, run_importer
from test_store import _as_version_2
from test_sync import check_database

from importer.emulator import Controls, EmulatedServer, Library, LibrarySpec, make_server
from importer.emulator.server import TvLibrary

#: small pages and commits: a run of a few thousand episodes commits a dozen times
OPTIONS: dict[str, Any] = {"concurrency": 2, "page_size": 200, "writer": {"commit_rows": 400}}
SEED = 1515
PHASES = ("schema", "full", "resume", "incremental", "sweep", "guard", "migration", "end", "end-reader")
#: a cut at this operation comes after the run exited
AFTER_EXIT = 1 << 40
ItemIds = set[tuple[str, str, str]]  # (table, library source id, item source id)


def libraries() -> list[TvLibrary]:
    return [
        TvLibrary("TV Shows", Library(LibrarySpec(seed=31, episodes=2500))),
        TvLibrary("Kids", Library(LibrarySpec(seed=32, shows=3))),
    ]


# ----------------------------------------------------------------------------- reading the files
def connect_ro(db: Path) -> apsw.Connection:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
    return conn


def item_ids(db: Path) -> ItemIds:
    if not db.exists():
        return set()
    conn = connect_ro(db)
    try:
        out: ItemIds = set()
        for table in ("shows", "seasons", "episodes"):
            sql = f"SELECT l.source_id, t.source_id FROM {table} t JOIN libraries l ON l.id = t.library_id"
            try:
                out |= {(table, lib, item) for lib, item in conn.execute(sql)}
            except apsw.SQLError:  # no schema yet
                return set()
        return out
    finally:
        conn.close()


def truth_ids(server: EmulatedServer) -> ItemIds:
    out: ItemIds = set()
    for truth in expected(server):
        for table in ("shows", "seasons", "episodes"):
            out |= {(table, truth.source_id, item) for item in getattr(truth, table)}
    return out


def runs_of(db: Path) -> dict[int, tuple[str, int]]:
    """id -> (status, deleted) of every run the database records."""
    if not db.exists():
        return {}
    conn = connect_ro(db)
    try:
        return {i: (s, d or 0) for i, s, d in conn.execute("SELECT id, status, deleted FROM runs")}
    except apsw.SQLError:
        return {}
    finally:
        conn.close()


def last_statuses(db: Path) -> list[str]:
    """The status of each library's last run."""
    conn = connect_ro(db)
    try:
        sql = "SELECT status FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY library_id)"
        return [status for (status,) in conn.execute(sql)]
    finally:
        conn.close()


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check``, read-write: a cut in the first run's switch to WAL may
    leave a hot rollback journal, which only a read-write connection rolls back (as the
    next run does; a read-only one fails with "attempt to write a readonly database")."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READWRITE)
    try:
        return str(conn.execute("PRAGMA integrity_check").get)
    finally:
        conn.close()


def cursor_ahead(db: Path) -> bool:
    """Whether the cursor file claims a run, or committed items, that the database lacks."""
    path = Path(f"{db}.cursor")
    if not path.exists():
        return False
    try:
        cursor = json.loads(path.read_text())
    except ValueError:
        return True  # a cut left it unreadable: it cannot agree
    if not db.exists():
        return bool(cursor["libraries"])
    conn = connect_ro(db)
    try:
        for lib in cursor["libraries"].values():
            try:
                row = conn.execute("SELECT progress FROM runs WHERE id = ?", (lib["run_id"],)).fetchone()
            except apsw.SQLError:
                return True
            if row is None:
                return True
            stored = json.loads(row[0] or "{}")
            for stream, state in lib["streams"].items():
                mine = {i for a, b in state.get("committed", []) for i in range(a, b)}
                theirs = {i for a, b in stored.get(stream, {}).get("committed", []) for i in range(a, b)}
                if not mine <= theirs:
                    return True
        return False
    finally:
        conn.close()


# ----------------------------------------------------------------------------- a phase
@dataclass
class Phase:
    """One kind of server and one phase: a server, the files a cut run starts from, the
    options of that run, and the window of its operations where cuts fall."""

    kind: str
    name: str
    root: Path
    server: EmulatedServer
    url: str
    options: dict[str, Any] = field(default_factory=lambda: dict(OPTIONS))
    exit_code: int = 0  # how the next run ends once the cut is repaired
    window: tuple[int, int] = (1, 1)  # cut at operation lo..hi; hi = ops + 1: after the exit
    before: ItemIds = field(default_factory=set)  # the rows the files start with
    truth: ItemIds = field(default_factory=set)
    clean_ops: int = 0
    reader: apsw.Connection | None = None

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def db(self) -> Path:
        return self.work / "lib.db"

    @property
    def pre(self) -> Path:
        return self.root / "pre"

    def reset(self) -> None:
        """The work folder as the cut run starts it."""
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.copytree(self.pre, self.work)

    def run(self, **kwargs: Any) -> Any:
        return run_importer(self.url, self.db, self.server.token, self.options, **kwargs)

    def clean_run(self, options: dict[str, Any] | None = None) -> None:
        done = run_importer(self.url, self.db, self.server.token, options or OPTIONS)
        assert done.returncode == 0, done.stderr


def prepare(phase: Phase) -> None:
    """Build the files the cut run starts from (in ``pre``), change the server as the
    phase needs, and measure the cut run's window on a clean recorded run."""
    server, name = phase.server, phase.name
    phase.work.mkdir(parents=True)
    if name in ("incremental", "sweep", "guard", "migration", "end-reader"):
        phase.clean_run()
    if name == "resume":  # a run killed after its fifth commit: progress to resume from
        crashed = _killed_run(phase, "after_commit:5")
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    elif name == "incremental":
        changes(server)
    elif name == "sweep":  # a full listing proves some rows gone: the sweep deletes them
        server.apply_changes("delete", 40, seed=SEED)
        phase.options["full"] = True
    elif name == "guard":  # half the shows are gone: the mass-delete guard holds the sweep
        lib = server.libraries[0].library
        server.apply_changes("delete_show", len(lib.shows) // 2, seed=SEED)
        phase.options["full"] = True
        phase.exit_code = 3
    elif name == "migration":  # the file as version 2 of the schema left it
        conn = apsw.Connection(str(phase.db))
        _as_version_2(conn)
        conn.close()
        phase.options["full"] = True  # the upgrade clears the etags: a full run rewrites them
    elif name == "end-reader":  # a database browser keeps the file open during the run
        changes(server)
    shutil.copytree(phase.work, phase.pre)
    phase.before = item_ids(phase.db)
    phase.truth = truth_ids(server)
    # the clean recorded run: how many operations, and where the phase's window lies
    phase.reset()
    journal = phase.root / "count"
    with reading(phase):
        done = phase.run(journal=journal)
    assert done.returncode == phase.exit_code, done.stderr
    rec = Journal.read(journal)
    ops = phase.clean_ops = rec.ops
    after_exit = ops + 1
    if name == "schema":
        end = rec.first_mark("migrate:end")
        assert end is not None
        phase.window = (1, end + 2)
    elif name in ("sweep", "guard"):
        start = rec.first_mark("find_gone:begin")
        assert start is not None
        phase.window = (start, after_exit)
    elif name == "migration":
        end = rec.first_mark("migrate:end")
        assert end is not None
        phase.window = (1, end + 2)
    elif name in ("end", "end-reader"):
        start = rec.last_mark("finish")
        assert start is not None
        phase.window = (start, after_exit)
    else:
        phase.window = (1, after_exit)


def changes(server: EmulatedServer) -> None:
    """Changes, moves and deletions: fewer than the mass-delete guard stops."""
    kinds = ["add", "update", "delete", "move_season", "move_show", "rename", "add_season", "replace"]
    for i, kind in enumerate(kinds):
        server.apply_changes(kind, 8, seed=SEED + i)
    server.apply_changes("update", 3, seed=SEED, library=1)


def _killed_run(phase: Phase, point: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, phase.url, str(phase.db), phase.server.token, json.dumps(OPTIONS)],
        env={**os.environ, "IMPORTER_CRASH_AT": point},
        capture_output=True, text=True, timeout=120, start_new_session=True, check=False,
    )  # fmt: skip
    time.sleep(0.2)
    return proc


class reading:
    """``end-reader``: another program holds the database open (read-only) during the run."""

    def __init__(self, phase: Phase) -> None:
        self.phase = phase

    def __enter__(self) -> None:
        if self.phase.name == "end-reader":
            conn = self.phase.reader = connect_ro(self.phase.db)
            assert conn.execute("SELECT count(*) FROM runs").get

    def __exit__(self, *exc: object) -> None:
        if self.phase.reader is not None:
            self.phase.reader.close()
            self.phase.reader = None


# ----------------------------------------------------------------------------- a cut
@dataclass
class Outcome:
    kind: str
    phase: str
    model: str
    at: int  # the operation the run was cut at (ops + 1: after the process exited)
    after_exit: bool
    ops_undone: int
    db_vanished: bool
    done_before: int  # runs recorded done before the cut
    done_lost: list[int]  # ... that the cut undid
    cursor_ahead: bool
    reruns: int
    seconds: float


def one_cut(phase: Phase, at: int, model: str, rng: random.Random) -> Outcome:
    started = time.monotonic()
    where = f"{phase.kind} {phase.name}, {model} model, cut at operation {at} of ~{phase.clean_ops}"
    phase.reset()
    journal = phase.root / "journal"
    shutil.rmtree(journal, ignore_errors=True)
    with reading(phase):
        cut = phase.run(journal=journal, cut_at=at)
    rec = Journal.read(journal)
    after_exit = cut.returncode != -signal.SIGKILL
    if after_exit:  # the run ended before that operation: the cut comes after its exit
        assert cut.returncode == phase.exit_code, f"{where}: {cut.stderr}"
    report = power_cut(rec, model, rng, phase.db)
    # --- the files as the power cut left them
    if phase.db.exists():
        assert integrity(phase.db) == "ok", where
    ids = item_ids(phase.db)
    if phase.before:  # a row the server still lists is never deleted, even for a while
        kept = phase.before & phase.truth
        assert phase.db.exists(), f"{where}: the database file vanished"
        # the database may be back to the state it started from, never below
        assert kept <= ids, f"{where}: rows still listed were lost: {sorted(kept - ids)[:5]}"
    runs = runs_of(phase.db)
    done_before = rec.done_runs()
    done_lost = sorted(r for r in done_before if runs.get(r, ("gone",))[0] != "done")
    assert not done_lost, f"{where}: runs recorded done before the cut are no longer done: {done_lost}"
    ahead = cursor_ahead(phase.db)
    # --- the next sync repairs it
    rerun = phase.run()
    reruns = 1
    if rerun.returncode != phase.exit_code:
        rerun = phase.run()
        reruns = 2
    assert rerun.returncode == phase.exit_code, f"{where}: {rerun.stderr}"
    final = runs_of(phase.db)
    gone = len(phase.before - phase.truth)
    deleted = sum(d for i, (_, d) in final.items())
    deleted_before = sum(d for _, d in runs_of(phase.pre / "lib.db").values())
    recorded = deleted - deleted_before
    assert recorded <= gone, f"{where}: runs record {recorded} deletions, of {gone} gone"
    if phase.exit_code == 0:
        check_database(phase.server, phase.db)
    else:  # the guard held the sweep: every row is still there
        assert phase.before <= item_ids(phase.db), where
        assert "stopped" in last_statuses(phase.db), final
    return Outcome(
        phase.kind, phase.name, model, at, after_exit, sum(report.undone.values()),
        "lib.db" in report.vanished, len(done_before), done_lost, ahead, reruns,
        round(time.monotonic() - started, 2),
    )  # fmt: skip


# ----------------------------------------------------------------------------- the campaign
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("phase_name", PHASES)
@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
def test_power_cuts(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, kind: str,
    phase_name: str,
) -> None:  # fmt: skip
    campaign = request.config.getoption("--campaign")
    # CI: one cut per kind and phase, the models taking turns; a campaign: N, both models
    cuts = campaign or 1
    first_model = (PHASES.index(phase_name) + (kind == "jellyfin")) % 2
    seed = SEED + PHASES.index(phase_name) * 2 + (kind == "jellyfin")
    if campaign:
        seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server = make_server(kind, libraries(), controls=Controls(latency_ms=1))
    outcomes: list[Outcome] = []
    with server.running_in_thread() as url:
        phase = Phase(kind, phase_name, tmp_path, server, url)
        prepare(phase)
        lo, hi = phase.window
        for i in range(cuts):
            model = MODELS[(i + first_model) % 2]
            # the end of a run: half the cuts come after the process exited
            # (never during the run: it may make more operations than the clean one did)
            exit_first = phase_name.startswith("end") and (i + first_model) % 4 >= 2
            at = AFTER_EXIT if exit_first else rng.randint(lo, hi)
            try:
                outcomes.append(one_cut(phase, at, model, rng))
            except AssertionError as exc:
                raise AssertionError(f"seed {seed}: {exc}") from exc
    log = tmp_path_factory.getbasetemp() / "powercut.jsonl"
    with log.open("a") as f:
        for o in outcomes:
            f.write(json.dumps({**o.__dict__, "seed": seed}) + "\n")
    tally = Counter((o.model, o.after_exit) for o in outcomes)
    print(
        f"power cuts {kind}/{phase_name} (seed {seed}, window {phase.window} of {phase.clean_ops} ops): "
        f"{dict(tally)}; cursor ahead {sum(o.cursor_ahead for o in outcomes)}, "
        f"db vanished {sum(o.db_vanished for o in outcomes)}, reruns {Counter(o.reruns for o in outcomes)}, "
        f"done lost {[(o.model, o.after_exit, o.at) for o in outcomes if o.done_lost]}"
    )


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
def test_a_run_that_ended_done_survives_a_power_cut_after_it_exited(tmp_path: Path, kind: str) -> None:
    """The finding of the campaign: under ``synchronous=NORMAL`` the commit that records a
    run's end reached the disk only at the checkpoint that the writer's last connection
    makes when it closes. With another program holding the file open (a database browser:
    ``end-reader``), there is none, and a power cut a second after a clean exit undid the
    ``done`` run, its rows and its watermark (every such cut did, in both models). The end
    of a run is now committed under ``synchronous=FULL``."""
    server = make_server(kind, libraries(), controls=Controls(latency_ms=1))
    with server.running_in_thread() as url:
        phase = Phase(kind, "end-reader", tmp_path, server, url)
        phase.work.mkdir(parents=True)
        phase.clean_run()
        changes(server)
        journal = tmp_path / "journal"
        with reading(phase):
            ended = phase.run(journal=journal)
        assert ended.returncode == 0, ended.stderr
        rec = Journal.read(journal)
        done = rec.done_runs()
        assert len(done) == 2
        power_cut(rec, "strict", random.Random(0), phase.db)
        after = runs_of(phase.db)
        assert {run: after.get(run, ("lost", 0))[0] for run in done} == dict.fromkeys(done, "done")
        server.log.clear()
        again = phase.run()
        assert again.returncode == 0, again.stderr
    check_database(server, phase.db)
    # the next run starts from the watermark the done run left: incremental, not full again
    conn = connect_ro(phase.db)
    try:
        modes = conn.execute(
            "SELECT mode FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY library_id)"
        )
        assert [mode for (mode,) in modes] == ["incremental", "incremental"]
    finally:
        conn.close()
