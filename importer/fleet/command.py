"""``importer fleet --config FILE``: the command around :class:`importer.fleet.driver.Fleet`.

Its signals: the first SIGINT/SIGTERM asks every job to stop cleanly (each commits what it
fetched; the fleet exits 130/143 and the next run resumes them); a second one ends them
at once. ``IMPORTER_FLEET_BACKOFF_S`` sets the first backoff of a retry (tests).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import click
import orjson

from importer.errors import ImporterError
from importer.fleet.config import FleetConfig, ignored_environment_warning, load_config
from importer.fleet.driver import Fleet, FleetOptions, FleetReport

BACKOFF_ENV = "IMPORTER_FLEET_BACKOFF_S"


def run_fleet(
    config_path: Path,
    *,
    engine: str,
    address: str | None,
    jobs: int,
    only: tuple[str, ...],
    slice_s: float | None,
    full: bool,
    report_path: Path | None,
) -> None:
    from importer.cli import TOKEN_ENV, exit_now, fail
    from importer.fleet.engines import make_engine
    from importer.store.queries import last_synced

    try:
        config = load_config(config_path)
        servers = config.select(only)
        config.prepare(servers)
    except ImporterError as exc:
        fail(exc)
        return
    warning = ignored_environment_warning()
    if warning:
        click.echo(warning, err=True)
    os.environ.pop(TOKEN_ENV, None)  # and so it reaches no job's process either
    options = FleetOptions(
        jobs=jobs, full=full, slice_s=slice_s, backoff_s=float(os.environ.get(BACKOFF_ENV, "30"))
    )
    runner = make_engine(engine, jobs=jobs, address=address)
    fleet = Fleet([(e, last_synced(e.db_path)) for e in servers], runner, options, _notice)
    _stop_on_signals(fleet)
    try:
        runner.start()
        _stop_on_signals(fleet)  # Ray installs handlers of its own as it starts
        report = fleet.run()
    except ImporterError as exc:
        fail(exc)
        return
    finally:
        runner.close()
    if report_path is not None:
        _write_report(report_path, report)
    click.echo(_summary_line(config, report))
    exit_now(report.exit_code)


def _stop_on_signals(fleet: Fleet) -> None:
    def on_signal(signum: int, _frame: object) -> None:
        fleet.stop(signum)
        click.echo(
            f"\n{signal.Signals(signum).name}: every job commits what it fetched and stops "
            "(again to stop them at once)...",
            err=True,
        )

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)


def _notice(message: str) -> None:
    click.echo(f"fleet: {message}", err=True)


def _write_report(path: Path, report: FleetReport) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_bytes(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2) + b"\n")
    temp.replace(path)


def _summary_line(config: FleetConfig, report: FleetReport) -> str:
    from importer.results import format_seconds

    done = sum(1 for s in report.servers if s.ending is not None and s.ending.exit_code == 0)
    rows = sum(s.rows for s in report.servers)
    ended = "interrupted" if report.interrupted else f"exit {report.exit_code}"
    return (
        f"fleet {Path(config.path).name}: {done} of {len(report.servers)} servers done, "
        f"{rows:,} rows in {format_seconds(report.seconds)} on {report.engine} ({ended})"
    )
