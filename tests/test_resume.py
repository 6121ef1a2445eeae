"""Crash safety: a kill at any moment loses nothing and corrupts nothing; the next run
resumes where the last commit left off and ends equal to the server.

The tests run on the compiled build and on the pure-Python twin (``implementation`` in
conftest.py): a resumed run decodes from the middle of its listings. The random kills run on
the compiled build only: what they probe (kills of the main process or the writer at random
moments) does not go through the decoder's code, and they are the slowest here."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw
import pytest
from processes import children_of, group_alive
from test_sync import check_database

from importer.emulator import Controls, EmulatedServer, Library, LibrarySpec, make_server
from importer.emulator.server import TvLibrary

pytestmark = pytest.mark.usefixtures("implementation")  # compiled and pure-Python (conftest.py)

#: the command line's run (signals included), with small transactions to crash between
RUNNER = """
import asyncio, sys
from importer.cli import with_signals
from importer.errors import ImporterError
from importer.pipeline import Importer, SyncOptions
url, db, token, kind = sys.argv[1:5]
options = SyncOptions(kind=kind, concurrency=2, writer={"commit_rows": 3000})
try:
    result = asyncio.run(with_signals(Importer(url, db, token, options)))
except ImporterError as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
sys.exit(result.exit_code)
"""


def start_run(url: str, db: Path, server: EmulatedServer, **env: str) -> subprocess.Popen[str]:
    """An import in its own process group, as a cron job or a terminal would start it."""
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, url, str(db), server.token, server.kind],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_to_end(url: str, db: Path, server: EmulatedServer, **env: str) -> subprocess.CompletedProcess[str]:
    proc = start_run(url, db, server, **env)
    out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def committed_ranges(db: Path) -> dict[str, list[list[int]]]:
    """The episode ranges the database says are committed, per library source id."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = conn.execute(
            "SELECT l.source_id, r.progress FROM runs r JOIN libraries l ON l.id = r.library_id"
        ).fetchall()
    except (apsw.SQLError, apsw.BusyError):  # the run is still creating the file and its schema
        return {}
    finally:
        conn.close()
    out = {}
    for source_id, progress in rows:
        streams = json.loads(progress or "{}")
        out[source_id] = streams.get("episodes", {}).get("committed", [])
    return out


def covered(ranges: list[list[int]]) -> set[int]:
    return {i for start, end in ranges for i in range(start, end)}


def assert_cursor_not_ahead(db: Path) -> None:
    """What the cursor file says is committed, the run's row in the database says too."""
    cursor_file = Path(f"{db}.cursor")
    if not cursor_file.exists() or not db.exists():
        return
    cursor = json.loads(cursor_file.read_text())
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        for lib in cursor["libraries"].values():
            progress = conn.execute("SELECT progress FROM runs WHERE id = ?", (lib["run_id"],)).get
            in_db = json.loads(progress or "{}")
            for stream, state in lib["streams"].items():
                mirrored = covered(state.get("committed", []))
                committed = covered(in_db.get(stream, {}).get("committed", []))
                assert mirrored <= committed, f"the cursor ran ahead of the database ({stream})"
    finally:
        conn.close()


def cursor_equals_database(db: Path) -> bool:
    """Whether the cursor file's progress is exactly what the database committed."""
    cursor = json.loads(Path(f"{db}.cursor").read_text())
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        for lib in cursor["libraries"].values():
            progress = conn.execute("SELECT progress FROM runs WHERE id = ?", (lib["run_id"],)).get
            if json.loads(progress or "{}") != lib["streams"]:
                return False
        return True
    finally:
        conn.close()


def integrity_ok(db: Path) -> bool:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("PRAGMA integrity_check").get == "ok"
    finally:
        conn.close()


def library(kind: str) -> list[TvLibrary]:
    return [
        TvLibrary("TV Shows", Library(LibrarySpec(seed=21, episodes=9_000))),
        TvLibrary("Kids", Library(LibrarySpec(seed=22, shows=4))),
    ]


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
@pytest.mark.parametrize(
    # counted from the run's start: commits 1 and 2 record the libraries and start the runs,
    # the later points fall after some episodes are committed (asserted below)
    "point",
    ["in_transaction:8", "after_commit:4", "before_cursor_rename:4", "after_cursor:3"],
)
def test_a_crash_at_each_narrow_window_loses_nothing(tmp_path: Path, kind: str, point: str) -> None:
    server = make_server(kind, library(kind), controls=Controls(latency_ms=5))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        crashed = run_to_end(url, db, server, IMPORTER_CRASH_AT=point)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        assert integrity_ok(db)
        assert_cursor_not_ahead(db)
        before = committed_ranges(db)
        assert any(before.values()), "the crash came before any episode was committed"
        server.log.clear()
        resumed = run_to_end(url, db, server)
        assert resumed.returncode == 0, resumed.stderr
    check_database(server, db)
    assert integrity_ok(db)
    # The resumed run did not fetch again what was committed (count probes are allowed).
    for entry in server.log:
        start = int(entry.query.get("X-Plex-Container-Start") or entry.query.get("StartIndex") or 0)
        size = int(entry.query.get("X-Plex-Container-Size") or entry.query.get("Limit") or 0)
        episodes = entry.query.get("type") == "4" or entry.query.get("IncludeItemTypes") == "Episode"
        if episodes and size and before:
            library_id = entry.query.get("ParentId") or entry.path.split("/")[3]
            done = covered(before.get(library_id, []))
            assert not done & set(range(start, start + size)), f"{entry.path} {entry.query} was refetched"


def test_sigint_then_resume_fetches_no_committed_page(tmp_path: Path) -> None:
    server = make_server("plex", library("plex"), controls=Controls(latency_ms=60))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        proc = start_run(url, db, server)
        deadline = time.time() + 60
        while not any(committed_ranges(db).values()) if db.exists() else True:
            if time.time() > deadline or proc.poll() is not None:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode == 130
        before = committed_ranges(db)
        assert any(before.values())
        server.log.clear()
        assert run_to_end(url, db, server).returncode == 0
    refetched = []
    for entry in server.log:
        if entry.query.get("type") == "4" and int(entry.query.get("X-Plex-Container-Size", 0)):
            start = int(entry.query["X-Plex-Container-Start"])
            size = int(entry.query["X-Plex-Container-Size"])
            section = entry.path.split("/")[3]
            if covered(before.get(section, [])) & set(range(start, start + size)):
                refetched.append((section, start))
    assert refetched == []
    check_database(server, db)


def writer_pid(main_pid: int) -> int | None:
    children = children_of(main_pid)
    return max(children) if children else None  # the pool starts the writer last


def kill_round(url: str, db: Path, server: EmulatedServer, rng: random.Random) -> str:
    proc = start_run(url, db, server)
    time.sleep(rng.uniform(0.1, 1.5))
    target = rng.choice(["group", "main", "writer"])
    if target == "group":
        os.killpg(proc.pid, signal.SIGKILL)
    elif target == "main":
        os.kill(proc.pid, signal.SIGKILL)
    else:
        pid = writer_pid(proc.pid)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    time.sleep(2)
    assert not group_alive(proc.pid), f"a process of the run outlived it (killed: {target})"
    assert integrity_ok(db) if db.exists() else True
    assert_cursor_not_ahead(db)
    return target


@pytest.mark.compiled_only
def test_random_kills(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    rounds = request.config.getoption("--campaign") or 3
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server = make_server("jellyfin", library("jellyfin"), controls=Controls(latency_ms=10))
    db = tmp_path / "lib.db"
    killed: dict[str, int] = {}
    with server.running_in_thread() as url:
        for _ in range(rounds):
            target = kill_round(url, db, server, rng)
            killed[target] = killed.get(target, 0) + 1
        final = run_to_end(url, db, server)
        assert final.returncode == 0, f"seed {seed}: {final.stderr}"
    check_database(server, db)
    print(f"random kills (seed {seed}): {killed}")


def test_restart_discards_the_unfinished_run(tmp_path: Path) -> None:
    server = make_server("plex", library("plex"), controls=Controls(latency_ms=5))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        crashed = run_to_end(url, db, server, IMPORTER_CRASH_AT="after_commit:4")
        assert crashed.returncode == -signal.SIGKILL
        assert any(committed_ranges(db).values())
        server.log.clear()
        fresh = subprocess.run(
            [sys.executable, "-m", "importer", "sync", url, "--db", str(db), "--restart", "--quiet"],
            env={**os.environ, "IMPORTER_TOKEN": server.token}, capture_output=True, text=True, timeout=120,
            check=False,
        )  # fmt: skip
        assert fresh.returncode == 0, fresh.stderr
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    statuses = conn.execute("SELECT status, reason FROM runs WHERE library_id = 1 ORDER BY id").fetchall()
    assert statuses == [("failed", "superseded by a new run"), ("done", None)]
    first_pages = [
        e for e in server.log if e.query.get("type") == "4" and e.query.get("X-Plex-Container-Start") == "0"
    ]
    assert first_pages and int(first_pages[0].query["X-Plex-Container-Size"]) > 0, "listed from the start"
    check_database(server, db)


@pytest.mark.compiled_only
@pytest.mark.parametrize(
    ("point", "damage", "warning"),
    [
        ("after_cursor:3", None, None),  # the file mirrors the last commit: nothing to say
        ("before_cursor_rename:4", None, "the cursor file disagrees with the database"),  # one behind
        ("after_cursor:3", b"{not json", "is unreadable"),
    ],
)
def test_the_database_wins_over_the_cursor_file(
    tmp_path: Path, point: str, damage: bytes | None, warning: str | None
) -> None:
    server = make_server("plex", library("plex"), controls=Controls(latency_ms=5))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        crashed = run_to_end(url, db, server, IMPORTER_CRASH_AT=point)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        # The cursor is written on a thread after each commit: while the crash waits for the
        # third file, the writer may commit a fourth. Then they disagree, and it must be said.
        mirrors_the_last_commit = cursor_equals_database(db)
        if damage is not None:
            Path(f"{db}.cursor").write_bytes(damage)
        resumed = run_to_end(url, db, server)
        assert resumed.returncode == 0, resumed.stderr
    if warning is None and mirrors_the_last_commit:
        assert "cursor" not in resumed.stderr
    else:
        assert (warning or "the cursor file disagrees with the database") in resumed.stderr
    check_database(server, db)
    assert_cursor_not_ahead(db)
