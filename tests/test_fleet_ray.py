"""``importer fleet --engine ray``: each command starts a local Ray of its own and shuts it
down; the jobs are Ray tasks in Ray's worker processes, syncing emulated servers on
loopback into real SQLite files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import apsw
import pytest
from fleet_helpers import content, fleet_of, leftover_processes, runs
from test_cancel import episodes_in
from test_sync import check_database

pytestmark = pytest.mark.timeout(600)


def test_six_servers_equal_the_local_engine(tmp_path: Path) -> None:
    kinds = ["plex", "jellyfin", "emby", "plex", "jellyfin", "plex"]
    with fleet_of(tmp_path, kinds) as fleet:
        on_ray = fleet.run("--engine", "ray", "--jobs", "2", "--report", "report.json")
        assert on_ray.code == 0, on_ray.err
        assert "6 of 6 servers done" in on_ray.out and "on ray" in on_ray.out
        assert leftover_processes(fleet.mark) == []  # Ray's own processes too
        assert all(s["outcome"] == "done" and s["rows"] > 0 for s in on_ray.report["servers"])
        fleet.write_config(data_dir="local")
        on_local = fleet.run("--engine", "local", "--jobs", "2")
        assert on_local.code == 0, on_local.err
        for member in fleet.members:
            check_database(member.server, fleet.db(member.name))
            assert content(fleet.db(member.name)) == content(fleet.db(member.name, "local"))


def test_cancel_commits_what_was_fetched_and_a_rerun_is_identical(tmp_path: Path) -> None:
    with fleet_of(tmp_path, ["plex", "jellyfin"], episodes=8000, item_cost_us=1000) as fleet:
        proc = fleet.command("--engine", "ray", "--jobs", "2", "--report", "report.json")
        _wait_for(lambda: all(_started(fleet.db(m.name)) for m in fleet.members), proc)
        time.sleep(2.0)  # pages are fetched; the writer commits every 5 s: none may be yet
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the driver and Ray's processes alike
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 130, err
        assert "interrupted" in out
        assert leftover_processes(fleet.mark) == []
        for member in fleet.members:
            db = fleet.db(member.name)
            assert [status for _, status, _ in runs(db)] == ["interrupted"]
            with apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY) as conn:
                committed = conn.execute("SELECT count(*) FROM shows").get
                assert conn.execute("PRAGMA integrity_check").get == "ok"
            assert committed > 0  # what was fetched before the cancel is there
            assert episodes_in(db) < 8000
        again = fleet.run("--engine", "ray", "--report", "report.json")
        assert again.code == 0, again.err
        for member in fleet.members:
            check_database(member.server, fleet.db(member.name))
            assert [status for _, status, _ in runs(fleet.db(member.name))] == ["done"]  # resumed


def test_a_worker_killed_mid_sync_is_retried_by_ray(tmp_path: Path) -> None:
    with fleet_of(tmp_path, ["jellyfin", "plex"], episodes=3000, latency_ms=20) as fleet:
        crashed = tmp_path / "crashed"
        env = {
            # the job's own process only: a group kill would take Ray's worker group along
            "IMPORTER_CRASH_AT": "after_cursor:1:process",
            "IMPORTER_CRASH_ONCE": str(crashed),
        }
        done = fleet.run("--engine", "ray", "--jobs", "2", "--report", "report.json", env=env)
        assert crashed.exists()  # one job's worker was killed
        assert done.code == 0, done.err
        # Ray ran the task again in a new worker: the fleet saw one job, which ended done
        assert all(s["outcome"] == "done" and s["attempts"] == 1 for s in done.report["servers"])
        for member in fleet.members:
            check_database(member.server, fleet.db(member.name))
        assert leftover_processes(fleet.mark) == []


def _started(db: Path) -> bool:
    try:
        return bool(runs(db))
    except apsw.Error:  # not there yet
        return False


def _wait_for(condition: object, proc: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert proc.poll() is None, proc.communicate()  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_joining_a_cluster_leaves_it_running(tmp_path: Path) -> None:
    """--address joins a Ray that someone else started, and does not stop it."""
    port = _free_port()
    ray = [str(Path(sys.executable).with_name("ray"))]
    env = {**os.environ, "RAY_AUTH_MODE": "token"}  # as `ray start` sets up its cluster
    head = [*ray, "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"]
    # --block: the cluster's processes are this one's, in a group of their own, ended below
    cluster = subprocess.Popen(
        [*head, "--disable-usage-stats", "--block"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: _listening(port), cluster)
        with fleet_of(tmp_path, ["plex", "jellyfin"]) as fleet:
            address = f"127.0.0.1:{port}"
            done = fleet.run("--engine", "ray", "--address", address, env={"RAY_AUTH_MODE": "token"})
            assert done.code == 0, done.err
            assert leftover_processes(fleet.mark) == []
            for member in fleet.members:
                check_database(member.server, fleet.db(member.name))
            assert cluster.poll() is None and _listening(port)  # the cluster still runs
            refused = fleet.run("--engine", "ray", "--address", f"127.0.0.1:{_free_port()}")
            assert refused.code == 75 and "cannot join the Ray cluster" in refused.err
            assert "Traceback" not in refused.err
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        cluster.wait(60)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
