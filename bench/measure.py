"""One measured run of a variant, as a record: in process (bench/runner.py in a fresh
interpreter) or whole process (the ``importer`` console script, bench/process.py).

Both start in a fresh empty folder, and both add what the emulator saw of the run
(requests, bytes, dependent round trips, its own CPU), so that every variant is
counted alike.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import process
from bench.dbfacts import hydrate_facts, last_run_id, sync_facts
from bench.emulator import Emulator
from bench.model import IN_PROCESS, IN_PROCESS_DEBUG, IN_PROCESS_TIMED, WHOLE_PROCESS, Record, Settings
from bench.runner import IMPORTER_VARIANTS, RunnerSpec

REPO = Path(__file__).resolve().parent.parent
SLOWDOWN = Path(__file__).resolve().parent / "slowdown"
#: the runner finds ``bench`` in this checkout, after the installed packages: the
#: ``importer`` it measures is the installed one, as in the whole-process runs
_BOOT = f"import sys; sys.path.append({str(REPO)!r}); from bench.runner import main; main()"


def importer_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an importer's process: ``extra``, and the slowed writer if asked
    (bench/slowdown/sitecustomize.py; it marks ``settings.workdir / "slowed"`` when it ran)."""
    env = dict(extra or {})
    if settings.slow_writer:
        env["BENCH_SLOW_WRITER"] = str(settings.slow_writer)
        env["BENCH_SLOW_MARK"] = str(_slow_mark(settings))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SLOWDOWN), os.environ.get("PYTHONPATH")]))
    return env


def _slow_mark(settings: Settings) -> Path:
    return settings.workdir / "slowed"


def slowed_processes(settings: Settings) -> int:
    """How many processes called the slowed method so far (a run that writes no page, as a
    quiet night, calls it in none: so this is checked over a whole bench run)."""
    mark = _slow_mark(settings)
    return len(mark.read_text().split()) if mark.exists() else 0


def _with_rate(rec: Record) -> Record:
    episodes = rec.get("episodes") or rec.get("episodes_in_db")
    if episodes and rec.get("seconds"):
        rec["episodes_per_s"] = episodes / rec["seconds"]
    return rec


def _left_behind(folder: Path) -> list[str]:
    """Remove the run's working folder; what the run left in it (it should leave nothing)."""
    left = sorted(p.name for p in folder.iterdir())
    shutil.rmtree(folder)
    return left


def in_process(
    emu: Emulator | None, settings: Settings, spec: RunnerSpec, env: dict[str, str] | None = None
) -> Record:
    """Run one variant in a fresh interpreter; add what the emulator saw of it."""
    mark = emu.mark() if emu else None
    child_env = {**os.environ, **(importer_env(settings, env) if spec.variant in IMPORTER_VARIANTS else {})}
    folder = process.empty_folder(settings.workdir, "run-")
    done = subprocess.run(
        [sys.executable, "-c", _BOOT, spec.to_json()],
        cwd=folder,
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
    )
    _left_behind(folder)
    if done.returncode != 0:
        raise RuntimeError(f"{spec.variant} failed:\n{done.stderr[-3000:]}")
    out: Record = json.loads(done.stdout.strip().splitlines()[-1])
    out["measured"] = MEASURED.get(spec.variant, IN_PROCESS)
    if emu is not None and mark is not None:
        out.update(emu.served_since(mark).as_record())
    return _with_rate(out)


MEASURED = {"importer-debug": IN_PROCESS_DEBUG, "importer-timed": IN_PROCESS_TIMED}


def whole_process(
    emu: Emulator, settings: Settings, db: Path, *, full: bool = False, env: dict[str, str] | None = None
) -> Record:
    """``importer sync`` of the emulated server into ``db``, from a fresh empty folder."""
    token = process.write_token(settings.workdir / "token", emu.token)
    folder = process.empty_folder(settings.workdir, "cwd-")
    before = last_run_id(db)
    mark = emu.mark()
    args = process.sync_args(emu.url, db, token, emu.spec.kind, full=full)
    ran = process.run(args, folder, importer_env(settings, env))
    out: Record = {
        "seconds": ran.seconds,
        "cpu_s": ran.cpu_s,
        "rss_kb": {"largest": ran.rss_max_kb},
        **sync_facts(db, before).as_record(),
        **emu.served_since(mark).as_record(),
        "left_in_cwd": _left_behind(folder),
        "measured": WHOLE_PROCESS,
    }
    return _with_rate(out)


def hydrate_batches(kind: str, entries: list[dict[str, Any]]) -> int:
    """The requests of a stretch of the log that fetched items' metadata by id: Plex
    ``/library/metadata/{keys}``, Jellyfin/Emby ``/Items?Ids=...``. The rest is discovery."""
    if kind == "plex":
        return sum(
            1 for e in entries if e["path"].startswith("/library/metadata/") and "/children" not in e["path"]
        )
    return sum(1 for e in entries if e["path"].endswith("/Items") and "Ids" in e["query"])


def people_cost_s(entries: list[dict[str, Any]]) -> float:
    """The server time ``Fields=People`` cost over a stretch of the log (``people_cost_us``)."""
    return sum(float(e.get("people_cost_us", 0.0)) for e in entries) / 1e6


def whole_process_hydrate(emu: Emulator, settings: Settings, db: Path) -> tuple[Record, list[dict[str, Any]]]:
    """``importer hydrate --db DB URL`` from a fresh empty folder; its record and its
    requests (the log's entries). A failure is recorded (``exit_code``), not raised: the
    scenario checks it."""
    token = process.write_token(settings.workdir / "token", emu.token)
    folder = process.empty_folder(settings.workdir, "cwd-")
    mark = emu.mark()
    args = process.hydrate_args(emu.url, db, token, emu.spec.kind)
    ran = process.run(args, folder, importer_env(settings), check=False)
    entries = emu.entries_since(mark)
    served = emu.served_since(mark, entries).as_record()
    served.pop("listing_requests")
    batches = hydrate_batches(emu.spec.kind, entries)
    out: Record = {
        "seconds": ran.seconds,
        "cpu_s": ran.cpu_s,
        "rss_kb": {"largest": ran.rss_max_kb},
        "exit_code": ran.exit_code,
        "status": ["done"] if ran.exit_code == 0 else [f"exit {ran.exit_code}"],
        **served,
        "batch_requests": batches,
        "discovery_requests": served["requests"] - batches,
        "people_cost_s": people_cost_s(entries),
        **hydrate_facts(db).as_record(),
        "left_in_cwd": _left_behind(folder),
        "measured": WHOLE_PROCESS,
    }
    if ran.exit_code:
        out["output"] = ran.output
    return out, entries


def fresh_db(settings: Settings, name: str) -> Path:
    """``name`` in the work folder, with no database (nor its side files) there."""
    path = settings.workdir / name
    for suffix in ("", "-wal", "-shm", ".cursor", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def copy_db(settings: Settings, source: Path, name: str) -> Path:
    """A fresh copy of ``source`` (and of its write-ahead log, were one left) as ``name``."""
    target = fresh_db(settings, name)
    shutil.copyfile(source, target)
    wal = Path(f"{source}-wal")
    if wal.exists() and wal.stat().st_size:
        shutil.copyfile(wal, f"{target}-wal")
    return target
