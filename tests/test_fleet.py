"""``importer fleet`` on the local engine: emulated servers on loopback, real job
processes, real SQLite files, real signals. The driver's policy (order, retries, slices,
exit codes) is also tested through a scripted engine: the engine interface is the seam
made for other engines."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import apsw
import pytest
from fleet_helpers import content, fleet_of, leftover_processes, runs
from processes import sync_command
from test_cancel import episodes_in
from test_sync import check_database

from importer.fleet.config import ServerEntry
from importer.fleet.driver import Fleet, FleetOptions
from importer.fleet.engines.local import LocalEngine
from importer.fleet.job import JobOutcome, JobSpec


def test_four_servers_equal_single_syncs_and_leave_no_process(tmp_path: Path) -> None:
    with fleet_of(tmp_path, ["plex", "jellyfin", "emby", "plex"]) as fleet:
        done = fleet.run("--jobs", "2", "--report", "report.json")
        assert done.code == 0, done.err
        assert "4 of 4 servers done" in done.out
        assert leftover_processes(fleet.mark) == []
        for member in fleet.members:
            entry = done.server(member.name)
            assert (entry["outcome"], entry["exit_code"], entry["attempts"]) == ("done", 0, 1)
            assert entry["rows"] > 0 and entry["requests"] > 0
            check_database(member.server, fleet.db(member.name))
            alone = tmp_path / "alone" / f"{member.name}.db"
            alone.parent.mkdir(exist_ok=True)
            subprocess.run(
                sync_command(member.url, alone, member.server.token), check=True, capture_output=True
            )
            assert content(fleet.db(member.name)) == content(alone)
        # the next night: every server incremental, nothing to write
        again = fleet.run("--report", "report.json")
        assert again.code == 0, again.err
        assert all(s["rows"] == 0 for s in again.report["servers"])
        assert all(runs(fleet.db(m.name))[-1][1:] == ("done", 0) for m in fleet.members)


def test_the_same_server_submitted_twice_runs_once(tmp_path: Path) -> None:
    """At-least-once delivery: a job delivered twice at once gives one run and one exit 4."""
    with fleet_of(tmp_path, ["plex"], episodes=3000, latency_ms=40) as fleet:
        member = fleet.members[0]
        entry = ServerEntry(
            name=member.name,
            url=member.url,
            db_path=str(fleet.db(member.name)),
            token_file=str(tmp_path / "tokens" / f"{member.name}.token"),
        )
        fleet.db(member.name).parent.mkdir()
        engine = LocalEngine()
        engine.submit(JobSpec(server=entry))
        engine.submit(JobSpec(server=entry))
        outcomes: list[JobOutcome] = []
        while len(outcomes) < 2:
            outcomes += engine.wait(1.0)
        engine.close()
        assert sorted(o.exit_code for o in outcomes) == [0, 4]
        locked = next(o for o in outcomes if o.exit_code == 4)
        assert locked.outcome == "locked" and "another importer run" in (locked.message or "")
        assert [status for _, status, _ in runs(fleet.db(member.name))] == ["done"]
        check_database(member.server, fleet.db(member.name))


def test_the_environment_token_is_never_sent(tmp_path: Path) -> None:
    """With a config, IMPORTER_TOKEN is ignored: a server without a token file or a saved
    login is refused before any request, even when the variable holds its very token."""
    with fleet_of(tmp_path, ["jellyfin", "plex"]) as fleet:
        fleet.write_config(token_files=False)
        jellyfin = fleet.members[0]
        done = fleet.run("--report", "report.json", env={"IMPORTER_TOKEN": jellyfin.server.token})
        assert done.code == 2
        assert "IMPORTER_TOKEN" in done.err and "ignored" in done.err
        assert jellyfin.server.token not in done.out + done.err
        for member in fleet.members:
            assert done.server(member.name)["outcome"] == "usage"
            assert "token" in done.server(member.name)["message"]
            assert len(member.server.log) == 0  # not one request, so no token sent


def test_a_long_full_sync_is_sliced_and_finishes(tmp_path: Path) -> None:
    """--slice stops a full sync at its budget and queues it again; it resumes from its
    cursor and ends equal to the server."""
    with fleet_of(tmp_path, ["plex", "jellyfin"], episodes=6000, item_cost_us=1000) as fleet:
        done = fleet.run("--slice", "0.04", "--jobs", "1", "--report", "report.json")
        assert done.code == 0, done.err
        for member in fleet.members:
            entry = done.server(member.name)
            assert entry["outcome"] == "done" and entry["slices"] >= 1
            assert entry["attempts"] == entry["slices"] + 1
            # one run, resumed by each next slice: it ends done, and nothing was listed twice
            assert [status for _, status, _ in runs(fleet.db(member.name))] == ["done"]
            check_database(member.server, fleet.db(member.name))
        # the two servers took turns: the first to start was not the first to finish whole
        first = min(fleet.members, key=lambda m: done.server(m.name)["first_started_at"])
        other = next(m for m in fleet.members if m is not first)
        assert done.server(other.name)["first_started_at"] < done.server(first.name)["finished_at"]


def test_sigint_stops_every_job_cleanly_and_the_next_run_resumes(tmp_path: Path) -> None:
    with fleet_of(tmp_path, ["plex", "jellyfin"], episodes=8000, item_cost_us=1000) as fleet:
        proc = fleet.command("--jobs", "2")
        _wait_for(lambda: all(_started(fleet.db(m.name)) for m in fleet.members))
        time.sleep(1.5)  # pages are fetched; the writer commits every 5 s: none may be yet
        os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C on a terminal: the whole group
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err
        assert "interrupted" in out
        assert leftover_processes(fleet.mark) == []
        committed = {}
        for member in fleet.members:
            history = runs(fleet.db(member.name))
            assert history[-1][1] == "interrupted"
            committed[member.name] = episodes_in(fleet.db(member.name))
            assert 0 < committed[member.name] < 8000 + 37
        done = fleet.run("--report", "report.json")
        assert done.code == 0, done.err
        for member in fleet.members:
            check_database(member.server, fleet.db(member.name))
            assert runs(fleet.db(member.name))[-1][1] == "done"


def test_a_killed_job_is_run_again(tmp_path: Path) -> None:
    """A job's process killed mid-sync (its own process only, as inside an engine's
    worker) is reported lost and run again after its backoff; nothing is lost."""
    with fleet_of(tmp_path, ["jellyfin"], episodes=3000, latency_ms=20) as fleet:
        member = fleet.members[0]
        env = {
            "IMPORTER_CRASH_AT": "after_cursor:1:process",
            "IMPORTER_CRASH_ONCE": str(tmp_path / "crashed"),
            "IMPORTER_FLEET_BACKOFF_S": "0.1",
        }
        done = fleet.run("--report", "report.json", env=env)
        assert (tmp_path / "crashed").exists()  # the crash happened
        assert done.code == 0, done.err
        assert done.server(member.name)["attempts"] == 2
        assert "died (killed by SIGKILL)" in done.err
        check_database(member.server, fleet.db(member.name))
        assert leftover_processes(fleet.mark) == []


def test_only_syncs_the_servers_named(tmp_path: Path) -> None:
    with fleet_of(tmp_path, ["plex", "jellyfin"]) as fleet:
        done = fleet.run("--only", "jellyfin-1", "--report", "report.json")
        assert done.code == 0, done.err
        assert [s["name"] for s in done.report["servers"]] == ["jellyfin-1"]
        assert not fleet.db("plex-0").exists() and len(fleet.member("plex-0").server.log) == 0
        check_database(fleet.member("jellyfin-1").server, fleet.db("jellyfin-1"))
        # a name that is no server's is refused, and not repeated: it may be a token
        refused = fleet.run("--only", "s3cr3t-t0ken")
        assert refused.code == 2 and "s3cr3t-t0ken" not in refused.err
        assert "plex-0" in refused.err and "jellyfin-1" in refused.err  # the names there are


def test_a_bad_config_exits_2_before_anything_runs(tmp_path: Path) -> None:
    with fleet_of(tmp_path, ["plex"]) as fleet:
        fleet.write_config(extra="colour = 'blue'")
        done = fleet.run()
        assert done.code == 2
        assert "colour" in done.err and "fleet.toml" in done.err
        assert len(fleet.members[0].server.log) == 0


# ---------------------------------------------------------------- the driver's policy
class ScriptedEngine:
    """An engine whose jobs end as scripted, per server, one ending per run; it checks
    the fleet's bound on jobs in flight."""

    name = "scripted"

    def __init__(self, script: dict[str, list[tuple[int, str]]], jobs: int) -> None:
        self.script = {name: list(endings) for name, endings in script.items()}
        self.jobs = jobs
        self.running: list[JobSpec] = []
        self.started: list[str] = []

    def start(self) -> None:
        pass

    def submit(self, spec: JobSpec) -> None:
        self.running.append(spec)
        assert len(self.running) <= self.jobs
        self.started.append(spec.server.name)

    def wait(self, timeout: float) -> list[JobOutcome]:
        if not self.running:
            return []
        spec = self.running.pop(0)
        code, outcome = self.script[spec.server.name].pop(0)
        return [JobOutcome(name=spec.server.name, exit_code=code, outcome=outcome, rows=10)]  # type: ignore[arg-type]

    def cancel_all(self, *, force: bool = False) -> None:
        pass

    def close(self) -> None:
        pass


def _entry(name: str) -> ServerEntry:
    return ServerEntry(name=name, url="http://127.0.0.1:9", db_path=f"/nonexistent/{name}.db")


def _fleet(
    script: dict[str, list[tuple[int, str]]], synced: dict[str, int], **options: float
) -> tuple[Fleet, ScriptedEngine]:
    engine = ScriptedEngine(script, jobs=2)
    notices: list[str] = []
    fleet = Fleet(
        [(_entry(name), synced.get(name, 0)) for name in script],
        engine,
        FleetOptions(jobs=2, backoff_s=0.01, **options),  # type: ignore[arg-type]
        notices.append,
    )
    return fleet, engine


def test_the_least_recently_synced_go_first() -> None:
    script = {name: [(0, "done")] for name in ("a", "b", "c", "d")}
    fleet, engine = _fleet(script, {"a": 300, "b": 100, "c": 0, "d": 200})
    report = fleet.run()
    assert engine.started == ["c", "b", "d", "a"]
    assert report.exit_code == 0


def test_75_is_retried_4_and_3_are_not_and_the_worst_code_wins() -> None:
    script = {
        "flaky": [(75, "temporary"), (75, "lost"), (0, "done")],
        "down": [(75, "temporary")] * 4,
        "busy": [(4, "locked")],
        "guarded": [(3, "stopped")],
        "sliced": [(130, "sliced"), (130, "sliced"), (0, "done")],
    }
    fleet, engine = _fleet(script, {})
    report = fleet.run()
    by_name = {s.entry.name: s for s in report.servers}
    assert by_name["flaky"].runs == 3 and by_name["flaky"].ending.exit_code == 0  # type: ignore[union-attr]
    assert by_name["down"].runs == 4 and by_name["down"].ending.exit_code == 75  # type: ignore[union-attr]
    assert by_name["busy"].runs == 1 and by_name["guarded"].runs == 1
    assert by_name["sliced"].slices == 2 and by_name["sliced"].ending.outcome == "done"  # type: ignore[union-attr]
    assert report.exit_code == 3  # of 3, 75, 4 and 0: the guard's stop comes first
    assert all(not left for left in engine.script.values())  # every scripted ending was used


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([0, 4, 75, 3, 1, 2], 2), ([0, 4, 75, 3, 1], 1), ([0, 4, 75], 75), ([0, 4], 4), ([0, 0], 0)],
)
def test_the_fleet_exits_with_the_first_of_2_1_3_75_4_0(codes: list[int], expected: int) -> None:
    outcomes = {0: "done", 1: "failed", 2: "usage", 3: "stopped", 4: "locked", 75: "temporary"}
    script = {f"s{i}": [(code, outcomes[code])] * 4 for i, code in enumerate(codes)}
    fleet, _ = _fleet(script, {})
    assert fleet.run().exit_code == expected


def _started(db: Path) -> bool:
    try:
        return bool(runs(db))
    except apsw.Error:  # not there yet
        return False


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
