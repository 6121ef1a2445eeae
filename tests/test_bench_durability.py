"""The bench's durability job (issue 15): its hook really sets ``synchronous=FULL`` (and
keeps it), the NORMAL variant and a run without the hook change nothing, and the strace
log is read right. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench is not installed: it lives beside the package
    sys.path.insert(0, str(ROOT))

from bench import durability  # noqa: E402
from bench.emulator import Emulator, ServerSpec  # noqa: E402
from bench.model import Settings  # noqa: E402
from bench.synchronous.sitecustomize import MARK_ENV, MODE_ENV  # noqa: E402

#: what a process of the importer does with its database: open it with connect() (as
#: importer.store.writer imports it), then ask for NORMAL again (as the writer does after
#: its one durable commit), commit
PROBE = """
import json
from importer.store import connection, writer
conn = writer.connect("probe.db")
levels = [conn.pragma("synchronous")]
conn.pragma("synchronous", "normal")
levels.append(conn.pragma("synchronous"))
conn.execute("CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (1)")
print(json.dumps({"levels": levels, "wrapped": hasattr(connection.connect, "__wrapped__")}))
"""


def _probe(tmp_path: Path, mode: str | None) -> tuple[dict[str, object], list[dict[str, object]]]:
    mark = tmp_path / "mark.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in (MODE_ENV, MARK_ENV)}
    if mode is not None:
        env.update(durability.env(Settings(tmp_path), mode, mark))
    done = subprocess.run(
        [sys.executable, "-P", "-c", PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    events = [json.loads(line) for line in mark.read_text().splitlines()] if mark.exists() else []
    return json.loads(done.stdout), events


def test_full_switches_every_connection_to_full_and_keeps_it(tmp_path: Path) -> None:
    out, events = _probe(tmp_path, "full")
    assert out == {"levels": [2, 2], "wrapped": True}  # FULL, and NORMAL asked for again is refused
    opened = [e for e in events if e["event"] == "open"]
    assert [(e["readonly"], e["synchronous"]) for e in opened] == [(False, "full")]
    assert sum(e["event"] == "kept full" for e in events) == 2  # connect's own pragma, and ours
    assert sum(e["event"] == "commit" for e in events) == 2  # CREATE, INSERT: two autocommits
    assert {e["pid"] for e in events} == {opened[0]["pid"]}


def test_normal_and_no_hook_change_nothing(tmp_path: Path) -> None:
    out, events = _probe(tmp_path, "normal")
    assert out == {"levels": [1, 1], "wrapped": True}
    assert [e["synchronous"] for e in events if e["event"] == "open"] == ["normal"]
    assert not any(e["event"] == "kept full" for e in events)
    (tmp_path / "mark.jsonl").unlink()
    out, events = _probe(tmp_path, None)  # no BENCH_SYNCHRONOUS: the hook is not even on the path
    assert out == {"levels": [1, 1], "wrapped": False}
    assert events == []
    env = {**os.environ, "PYTHONPATH": str(durability.SYNCHRONOUS), MODE_ENV: ""}
    done = subprocess.run([sys.executable, "-P", "-c", PROBE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert json.loads(done.stdout) == {"levels": [1, 1], "wrapped": False}  # on the path, no mode


def test_an_unknown_mode_stops_the_interpreter(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(durability.SYNCHRONOUS), MODE_ENV: "off"}
    done = subprocess.run(
        [sys.executable, "-c", "pass"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "BENCH_SYNCHRONOUS" in done.stderr


def test_a_real_import_runs_its_writer_at_full(tmp_path: Path) -> None:
    """The importer's console script and its ``python -P`` workers load the hook: the
    writer's connection reads back FULL (NORMAL without it), and its commits are counted."""
    settings = Settings(tmp_path)
    with Emulator(ServerSpec("plex", shows=3, episodes=300)) as emu:
        for mode in durability.MODES:
            rec = durability._sync(emu, settings, tmp_path / f"{mode}.db", mode)
            assert rec["status"] == ["done"]
            assert rec["episodes_in_db"] == 300
            assert rec["synchronous"] == [mode]
            assert rec["writable_connections"] >= 1
            assert rec["transactions"] >= 1
            assert (rec["kept_full"] > 0) == (mode == "full")


def test_fsyncs_are_counted_by_file() -> None:
    db = Path("/w/d.db")
    log = "\n".join([
        "10 fdatasync(5</w/d.db-wal>) = 0 <0.000500>",
        "11 fsync(6</w/d.db.cursor.tmp> <unfinished ...>",
        "10 fdatasync(5</w/d.db-wal>) = 0 <0.000500>",
        "11 <... fsync resumed>) = 0 <0.001000>",
        "11 fsync(7</w>) = 0 <0.000250>",
        "10 fdatasync(4</w/d.db>) = 0 <0.000250>",
        "10 fsync(8</elsewhere>) = 0",
        "10 +++ exited with 0 +++",
    ])  # fmt: skip
    counts, seconds = durability.fsyncs(log, db)
    assert counts == {"wal": 2, "db": 1, "journal": 0, "cursor": 1, "folder": 1, "other": 1, "total": 6}
    assert abs(seconds - 0.0025) < 1e-9
