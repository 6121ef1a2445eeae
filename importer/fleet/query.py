"""``importer fleet query``: one SQL over every server's database at once, with DuckDB.

Each SQLite file is attached read-only through DuckDB's SQLite extension (a sync may be
writing it: a WAL reader does not block it), and each contract table becomes a view, the
``UNION ALL BY NAME`` of that table over the servers, with ``server`` (the config's name)
as its first column. ``--export DIR`` writes those views as Parquet, partitioned by server
(Hive layout), then the SQL runs, if any, over the SQLite files as without it.

DuckDB and its SQLite extension come from the package index (``importer[query]``), never
from DuckDB's own extension download at run time: this may run offline, and code fetched
at run time is code nobody installed. Both are imported here only, when a query runs.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import decimal
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
import msgspec

from importer.errors import ConfigError, ImporterError
from importer.fleet.config import ServerEntry, load_config

if TYPE_CHECKING:
    import duckdb

#: The contract tables of importer/store/schema.sql, in its order. run_listing is left out:
#: the schema calls it internal (a run's scratch bitmaps, emptied when the run ends).
TABLES = (
    "servers",
    "libraries",
    "shows",
    "seasons",
    "episodes",
    "media_files",
    "people",
    "credits",
    "genres",
    "item_genres",
    "images",
    "runs",
)
#: The WITHOUT ROWID tables, each with a NOT NULL column. Asked for no column of such a
#: table (`count(*)`), DuckDB's SQLite scanner selects its ROWID, which it has not; a filter
#: on the column, true of every row, makes the scan read that column instead.
WITHOUT_ROWID = {"credits": "item_type", "item_genres": "item_type", "images": "item_type"}
INSTALL_HINT = "pip install 'importer[query]'"
#: the file name DuckDB derives the extension's entry point from (sqlite_scanner_init)
EXTENSION_FILE = "sqlite_scanner.duckdb_extension"
_BATCH = 4096


def command_main(config_path: Path, sql: str | None, *, fmt: str, export_dir: Path | None) -> None:
    from importer.cli import fail

    try:
        run_query(config_path, sql, fmt=fmt, export_dir=export_dir, out=sys.stdout)
    except ImporterError as exc:
        fail(exc)
    except BrokenPipeError:
        # the reader (`| head`) has what it wanted; say nothing, as a SIGPIPE'd tool would
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(141)


def run_query(config_path: Path, sql: str | None, *, fmt: str, export_dir: Path | None, out: TextIO) -> None:
    if not (sql and sql.strip()) and export_dir is None:
        raise ConfigError(
            'give the SQL to run, like `importer fleet query --config FILE "SELECT count(*) FROM '
            'episodes"`, or --export DIR'
        )
    config = load_config(config_path, tokens=False)  # a query sends no request
    with open_fleet(config.servers) as con:
        if export_dir is not None:
            export(con, export_dir)
        if sql and sql.strip():
            write_result(con, sql, fmt, out)


@contextlib.contextmanager
def open_fleet(servers: Sequence[ServerEntry]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with one view per contract table over every synced server."""
    con = connect()
    try:
        attach_views(con, servers)
        yield con
    finally:
        con.close()


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the packaged SQLite extension loaded, and never one fetched."""
    try:
        import duckdb

        packages = resources.files("duckdb_extension_sqlite") / "extensions"
    except ImportError as exc:
        raise ConfigError(
            f"`importer fleet query` needs DuckDB and its SQLite extension ({exc.name} is not "
            f"installed): {INSTALL_HINT}"
        ) from exc
    packaged = packages / f"v{duckdb.__version__}" / "sqlite.duckdb_extension"
    if not packaged.is_file():
        built_for = sorted(p.name.lstrip("v") for p in packages.iterdir()) if packages.is_dir() else []
        raise ConfigError(
            f"the SQLite extension installed is for DuckDB {', '.join(built_for) or '(none)'}, and "
            f"DuckDB is {duckdb.__version__}: install both at the versions importer pins: {INSTALL_HINT}"
        )
    con = duckdb.connect(
        ":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    try:
        with resources.as_file(packaged) as path, tempfile.TemporaryDirectory(prefix="importer-") as folder:
            link = Path(folder) / EXTENSION_FILE
            try:
                link.symlink_to(path)
            except OSError:  # no symlinks here (Windows without the privilege)
                shutil.copyfile(path, link)
            con.execute(f"LOAD {_literal(str(link))}")
    except (duckdb.Error, OSError) as exc:
        con.close()
        raise ConfigError(f"cannot load DuckDB's SQLite extension {packaged}: {exc}; {INSTALL_HINT}") from exc
    return con


def attach_views(con: duckdb.DuckDBPyConnection, servers: Sequence[ServerEntry]) -> None:
    """Attach each server's file read-only and create the views; warn once about the
    servers that have no database yet."""
    import duckdb

    has: dict[str, list[tuple[str, str]]] = {table: [] for table in TABLES}  # table -> (name, alias)
    unsynced: list[str] = []
    for number, server in enumerate(servers):
        if not os.path.isfile(server.db_path):
            unsynced.append(server.name)
            continue
        alias = f"s{number}"
        try:
            con.execute(f"ATTACH {_literal(server.db_path)} AS {alias} (TYPE sqlite, READ_ONLY)")
            # the file is only opened here, and a damaged one only fails here
            found = {
                row[0]
                for row in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [alias]
                ).fetchall()
            }
        except duckdb.Error as exc:
            raise ConfigError(
                f"server {server.name}: its database {server.db_path} cannot be read: {exc}"
            ) from exc
        if not found & set(TABLES):  # created a moment ago by a first sync, or not importer's
            unsynced.append(server.name)
            continue
        for table in TABLES:
            if table in found:  # an older schema lacks the newer tables until its next sync
                has[table].append((server.name, alias))
    if unsynced:
        click.echo(f"warning: skipped, no database yet (never synced): {', '.join(unsynced)}", err=True)
    if not has["episodes"]:
        raise ConfigError(
            "no server of the config has a database yet: sync them first, `importer fleet --config FILE`"
        )
    for table, members in has.items():
        if members:
            where = f" WHERE {WITHOUT_ROWID[table]} IS NOT NULL" if table in WITHOUT_ROWID else ""
            union = " UNION ALL BY NAME ".join(
                f"SELECT {_literal(name)} AS server, * FROM {alias}.{table}{where}" for name, alias in members
            )
            con.execute(f"CREATE VIEW {table} AS {union}")


def export(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Every view as Parquet under ``folder``/<table>/server=<name>/, replacing the
    table's folder of an earlier export; one summary line per table on stderr."""
    import duckdb

    views = {
        row[0] for row in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    for table in (t for t in TABLES if t in views):
        target = folder / table
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            rows = con.execute(
                f"COPY (SELECT * FROM {table}) TO {_literal(str(target))} "
                "(FORMAT parquet, PARTITION_BY (server), OVERWRITE)"
            ).fetchone()
        except (duckdb.Error, OSError) as exc:
            raise ConfigError(f"cannot export {table} to {target}: {exc}") from exc
        count = rows[0] if rows else 0
        click.echo(f"exported {table}: {count} rows to {target}{os.sep}", err=True)


def write_result(con: duckdb.DuckDBPyConnection, sql: str, fmt: str, out: TextIO) -> None:
    import duckdb

    try:
        result = con.execute(sql)
        if result.description is None:  # a statement without rows: SET, CREATE, ...
            return
        columns = [str(d[0]) for d in result.description]
        rows = _batches(result)
        if fmt == "json":
            _write_json(columns, rows, out)
        elif fmt == "table":
            _write_table(columns, [row for batch in rows for row in batch], out)
        else:
            _write_csv(columns, rows, out)
    except duckdb.Error as exc:
        raise ConfigError(f"the query failed: {str(exc).strip()}") from exc
    out.flush()


def _batches(result: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[Any, ...]]]:
    """The rows a batch at a time: a fleet's episodes need not fit in memory as objects."""
    while batch := result.fetchmany(_BATCH):
        yield batch


def _write_csv(columns: list[str], rows: Iterator[list[tuple[Any, ...]]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for batch in rows:
        writer.writerows([_plain(v) for v in row] for row in batch)


def _plain(value: Any) -> str:
    """A value as CSV text: NULL empty, numbers plain (no exponent for a DECIMAL)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, list | dict | tuple):
        return _JSON.encode(value).decode()
    if isinstance(value, bytes | datetime.timedelta):  # as in JSON: base64, ISO 8601 duration
        return str(msgspec.json.decode(_JSON.encode(value)))
    return str(value)


def _json_hook(value: Any) -> Any:
    raise NotImplementedError(f"{type(value).__name__} values cannot be written as JSON: CAST them")


#: DECIMAL as a JSON number (its digits as they are); dates, times and INTERVAL ISO 8601; BLOB base64
_JSON = msgspec.json.Encoder(decimal_format="number", enc_hook=_json_hook)


def _write_json(columns: list[str], rows: Iterator[list[tuple[Any, ...]]], out: TextIO) -> None:
    keys = _unique(columns)
    first = True
    out.write("[")
    for batch in rows:
        for row in batch:
            try:
                encoded = _JSON.encode(dict(zip(keys, row, strict=True))).decode()
            except (msgspec.EncodeError, NotImplementedError, OverflowError) as exc:
                raise ConfigError(f"the query's result cannot be written as JSON: {exc}") from exc
            out.write(("\n" if first else ",\n") + encoded)
            first = False
    out.write("]\n" if first else "\n]\n")


def _unique(columns: list[str]) -> list[str]:
    """Column names as JSON keys: a repeated name (`SELECT e.id, s.id`) gets _1, _2, ..."""
    seen: set[str] = set()
    keys: list[str] = []
    for name in columns:
        key, n = name, 0
        while key in seen:
            n += 1
            key = f"{name}_{n}"
        seen.add(key)
        keys.append(key)
    return keys


def _write_table(columns: list[str], rows: list[tuple[Any, ...]], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    numeric = [
        any(v is not None for v in col) and all(v is None or _is_number(v) for v in col)
        for col in zip(*rows, strict=True)
    ] or [False] * len(columns)
    table = Table(*columns, show_edge=False, header_style="bold", row_styles=None)
    for column, right in zip(table.columns, numeric, strict=True):
        column.justify = "right" if right else "left"
        column.overflow = "fold"
    for row in rows:
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(_plain(v)) for v in row))
    # piped, the table keeps its natural width: rich would fold it to 80 columns
    width = None if out.isatty() else 1_000_000
    Console(file=out, width=width, highlight=False, soft_wrap=False).print(table)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def _literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
