"""``importer fleet``: sync every server of a config as its own job; ``importer fleet query``:
one SQL over every server's database. Thin: the work is in :mod:`importer.fleet`."""

from __future__ import annotations

import os
from pathlib import Path

import click


def _default_jobs() -> int:
    return max(2, os.cpu_count() or 2)


@click.group("fleet", invoke_without_command=True, context_settings={"allow_extra_args": True})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The fleet's TOML config file.",
)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option(
    "--address", help="Ray: the cluster to join (default: start a local Ray, and stop it at the end)."
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 1024),
    default=None,
    help="Servers synced at a time [default: CPUs, at least 2].",
)
@click.option("--only", "only", multiple=True, metavar="NAME", help="Only this server (repeatable).")
@click.option(
    "--slice",
    "slice_minutes",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="MINUTES",
    help="Stop a full sync after this long, queue it again behind the others (it resumes from its cursor).",
)
@click.option("--full", is_flag=True, help="Every server lists every item and sweeps deletions.")
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Write a JSON report."
)
@click.pass_context
def fleet(
    ctx: click.Context,
    config_path: Path | None,
    engine: str,
    address: str | None,
    jobs: int | None,
    only: tuple[str, ...],
    slice_minutes: float | None,
    full: bool,
    report_path: Path | None,
) -> None:
    """Sync every server of --config, each as its own job, on a local process pool or Ray."""
    if ctx.invoked_subcommand is not None:
        return
    from importer.cli import refuse_stray_arguments

    refuse_stray_arguments("", "token", "each server's token_file, or `importer login URL`")
    if config_path is None:
        raise click.UsageError("give the fleet's config file: --config FILE")
    from importer.fleet.command import run_fleet

    run_fleet(
        config_path,
        engine=engine,
        address=address,
        jobs=jobs or _default_jobs(),
        only=only,
        slice_s=slice_minutes * 60 if slice_minutes else None,
        full=full,
        report_path=report_path,
    )


@fleet.command("query")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The fleet's TOML config file.",
)
@click.argument("sql", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json", "table"]), default="csv", show_default=True
)
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every table as Parquet under DIR, partitioned by server.",
)
def query(config_path: Path, sql: str | None, fmt: str, export_dir: Path | None) -> None:
    """Run SQL over every server's database at once (DuckDB); each table has a `server` column first."""
    from importer.fleet.query import command_main

    command_main(config_path, sql, fmt=fmt, export_dir=export_dir)
