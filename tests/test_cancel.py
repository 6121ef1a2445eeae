"""Stopping a run: Ctrl-C and SIGTERM commit what is fetched and exit 130/143; a second
run on the same database waits for nobody and exits 4; no worker outlives a run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw
import msgspec
import pytest
from processes import group_alive, sync_command
from test_sync import check_database, child_pids, run_sync, serving

import importer
from importer.cursor import read_cursor
from importer.emulator import Controls, Library, LibrarySpec, make_server
from importer.errors import Interrupted, LockedError
from importer.lock import DatabaseLock
from importer.pipeline import Importer, SyncOptions

SLOW = LibrarySpec(seed=12, episodes=40_000)  # about 6 s at one request in flight


def episodes_in(db: Path) -> int:
    try:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            return int(conn.execute("SELECT count(*) FROM episodes").get)
        finally:
            conn.close()
    except apsw.Error:
        return 0


def start_cli(url: str, db: Path, token: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        sync_command(url, db, token, "--kind", "plex", "--concurrency", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_commits_what_is_fetched_and_a_rerun_finishes(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    server = make_server("plex", Library(SLOW), controls=Controls(latency_ms=150))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        proc = start_cli(url, db, server.token)
        deadline = time.time() + 30
        while episodes_in(db) == 0 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, sig)  # as a user's Ctrl-C would, and cron's timeout
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == code, err
        assert "run the same command again" in err
        time.sleep(2)
        assert not group_alive(proc.pid), "a worker outlived the run"
        kept = episodes_in(db)
        assert 0 < kept < 40_000
        conn = apsw.Connection(str(db))
        assert conn.execute("PRAGMA integrity_check").get == "ok"
        assert conn.execute("SELECT status FROM runs").get == "interrupted"
        stored = msgspec.json.decode(conn.execute("SELECT progress FROM runs").get)
        conn.close()
        # the commit that recorded the interruption is mirrored in the cursor file too
        (mirrored,) = read_cursor(Path(f"{db}.cursor")).libraries.values()  # type: ignore[union-attr]
        assert msgspec.json.decode(msgspec.json.encode(mirrored.streams)) == stored
        # the next run finishes the job
        rerun = subprocess.run(
            [sys.executable, "-m", "importer", "sync", url, "--db", str(db), "--quiet"],
            check=False, env={**os.environ, "IMPORTER_TOKEN": server.token}, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert rerun.returncode == 0, rerun.stderr
        assert "disagrees" not in rerun.stderr
    check_database(server, db)


def test_a_second_run_on_the_same_database_exits_4(tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    server = make_server("plex", Library(LibrarySpec(seed=2, shows=2)))
    with DatabaseLock(str(db)), server.running_in_thread() as url:
        out = subprocess.run(
            [sys.executable, "-m", "importer", "sync", url, "--db", str(db)],
            check=False, env={**os.environ, "IMPORTER_TOKEN": server.token}, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
    assert out.returncode == 4, out.stderr
    assert f"pid {os.getpid()}" in out.stderr and "another importer run" in out.stderr
    assert not db.exists(), "the second run touched nothing"


async def test_the_library_api_can_cancel(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(SLOW), controls=Controls(latency_ms=100))
    db = tmp_path / "lib.db"
    before = child_pids()
    async with serving(server) as url:
        run = Importer(url, db, server.token, SyncOptions(kind="jellyfin", concurrency=1))
        task = asyncio.ensure_future(run.run())
        while episodes_in(db) == 0:
            await asyncio.sleep(0.05)
        run.cancel()
        with pytest.raises(Interrupted) as raised:
            await task
    assert raised.value.exit_code == 130
    assert 0 < episodes_in(db) < 40_000
    assert child_pids() - before == set()
    # the lock went with the run
    with DatabaseLock(str(db)):
        pass
    result = await run_sync(server, db, kind="jellyfin")
    assert result.exit_code == 0
    check_database(server, db)


def test_locked_error_is_exit_4() -> None:
    assert LockedError("x").exit_code == 4
    assert importer.SyncOptions is SyncOptions
