"""``importer fleet query``: one SQL over every server's SQLite file, through DuckDB.

The databases are made once per module by the real ``importer sync`` against emulated
servers (a Plex and a Jellyfin with the same library, so that shows are on two servers,
and an Emby with over a thousand episodes); a fourth server of the config was never
synced. Every query goes through the real CLI and the real config loader, and its answer
is checked against each SQLite file read on its own with sqlite3.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from importer.emulator import LibrarySpec, make_server
from importer.fleet import query as fleet_query

#: name -> (kind, library); "attic" is in the config and never synced
SYNCED = {
    "home": ("plex", LibrarySpec(seed=7, shows=12)),
    "cabin": ("jellyfin", LibrarySpec(seed=7, shows=8)),
    "office": ("emby", LibrarySpec(seed=9, episodes=1100)),
}
NEVER_SYNCED = "attic"
HYDRATED = ("home", "cabin")
SCHEMA = Path(__file__).parent.parent / "importer" / "store" / "schema.sql"


def importer_command() -> list[str]:
    script = Path(sys.executable).with_name("importer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "importer"]


@dataclass
class Fleet:
    folder: Path
    config: Path
    env: dict[str, str]

    def db(self, name: str) -> Path:
        return self.folder / "dbs" / f"{name}.db"

    def query(self, *args: str, config: Path | None = None, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [*importer_command(), "fleet", "query", "--config", str(config or self.config), *args],
            check=False,
            cwd=self.folder,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def rows(self, name: str, sql: str) -> list[tuple[Any, ...]]:
        """``sql`` over one server's own file, read-only."""
        with contextlib.closing(sqlite3.connect(f"file:{self.db(name)}?mode=ro", uri=True)) as conn:
            return conn.execute(sql).fetchall()

    def columns(self, name: str, table: str) -> list[str]:
        return [row[1] for row in self.rows(name, f"PRAGMA table_info({table})")]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def csv(self) -> list[dict[str, str]]:
        assert self.code == 0, self.err
        return list(csv.DictReader(io.StringIO(self.out)))


def write_config(path: Path, names: list[str]) -> Path:
    """A config of ``names`` (a query never talks to a server: the URL is not used)."""
    lines = ["[defaults]", 'data_dir = "dbs"', ""]
    for name in names:
        lines += ["[[server]]", f'name = "{name}"', 'url = "http://127.0.0.1:9"']
        lines += [f'token_file = "tokens/{name}.token"', ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    folder = tmp_path_factory.mktemp("fleet-query")
    (folder / "tokens").mkdir()
    (folder / "home").mkdir()  # HOME: where DuckDB would put an extension it downloaded
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPORTER_")}
    env |= {"HOME": str(folder / "home"), "XDG_CONFIG_HOME": str(folder / "xdg")}
    (folder / "dbs").mkdir()
    # no token file for the server never synced: a query reads databases, it needs no token
    for name, (kind, spec) in SYNCED.items():
        server = make_server(kind, spec)
        token_file = folder / "tokens" / f"{name}.token"
        token_file.write_text(server.token)
        token_file.chmod(0o600)
        with server.running_in_thread() as url:
            db = folder / "dbs" / f"{name}.db"
            sync = [*importer_command(), "sync", url, "--db", str(db), "--token-file", str(token_file)]
            # and cast, crew and genres for two servers: credits and item_genres have no ROWID
            hydrate = [*importer_command(), "hydrate", url, "--db", str(db), "--token-file", str(token_file)]
            for command in [sync, hydrate] if name in HYDRATED else [sync]:
                proc = subprocess.run(
                    command, check=False, env=env, capture_output=True, text=True, timeout=120
                )
                assert proc.returncode == 0, proc.stderr
    config = write_config(folder / "fleet.toml", [*SYNCED, NEVER_SYNCED])
    return Fleet(folder, config, env)


def per_server_counts(fleet: Fleet, table: str) -> dict[str, int]:
    return {name: fleet.rows(name, f"SELECT count(*) FROM {table}")[0][0] for name in SYNCED}


# ------------------------------------------------------------------------------ the views
def test_the_views_are_the_schemas_tables_but_its_internal_one() -> None:
    declared = re.findall(r"^CREATE TABLE (\w+)", SCHEMA.read_text(), flags=re.MULTILINE)
    assert "run_listing" in declared  # the schema calls it internal: not part of the contract
    assert list(fleet_query.TABLES) == [t for t in declared if t != "run_listing"]


def test_each_without_rowid_table_has_its_not_null_column() -> None:
    tables = re.findall(r"^CREATE TABLE (\w+) \((.*?)^\)([^;]*);", SCHEMA.read_text(), flags=re.M | re.S)
    without_rowid = {name: body for name, body, after in tables if "WITHOUT ROWID" in after}
    assert set(without_rowid) - {"run_listing"} == set(fleet_query.WITHOUT_ROWID)
    for name, column in fleet_query.WITHOUT_ROWID.items():
        assert re.search(rf"^\s+{column}\s+\w+\s+NOT NULL", without_rowid[name], flags=re.M), name


def test_the_total_is_the_sum_of_each_file_and_the_unsynced_server_is_skipped(fleet: Fleet) -> None:
    counts = per_server_counts(fleet, "episodes")
    assert all(counts.values()) and counts["office"] > 1000
    result = fleet.query("SELECT count(*) AS episodes FROM episodes")
    assert result.csv() == [{"episodes": str(sum(counts.values()))}]
    warnings = result.err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning:"), result.err
    assert NEVER_SYNCED in warnings[0] and not any(name in warnings[0] for name in SYNCED)
    assert not fleet.db(NEVER_SYNCED).exists()  # a query creates no database


def test_group_by_server_matches_each_file(fleet: Fleet) -> None:
    for table in fleet_query.TABLES:  # credits, item_genres and images have no ROWID
        rows = fleet.query(f"SELECT server, count(*) AS n FROM {table} GROUP BY server").csv()
        expected = {name: n for name, n in per_server_counts(fleet, table).items() if n}
        assert expected, f"no rows in any {table}: the test proves nothing"
        assert {row["server"]: int(row["n"]) for row in rows} == expected, table


def test_server_is_the_first_column_of_every_view(fleet: Fleet) -> None:
    header = fleet.query("SELECT * FROM episodes LIMIT 1").out.splitlines()[0]
    assert header.split(",") == ["server", *fleet.columns("home", "episodes")]
    rows = fleet.query(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE database_name = 'memory' AND column_index = 1 ORDER BY table_name",
        "--format",
        "json",
    )
    assert rows.code == 0, rows.err
    assert json.loads(rows.out) == [
        {"table_name": t, "column_name": "server"} for t in sorted(fleet_query.TABLES)
    ]


def test_json_rows_equal_the_sqlite_rows(fleet: Fleet) -> None:
    for name in SYNCED:
        result = fleet.query(f"SELECT * FROM shows WHERE server = '{name}' ORDER BY id", "--format", "json")
        assert result.code == 0, result.err
        columns = fleet.columns(name, "shows")
        expected = [
            {"server": name, **dict(zip(columns, row, strict=True))}
            for row in fleet.rows(name, "SELECT * FROM shows ORDER BY id")
        ]
        assert json.loads(result.out) == expected


def test_csv_numbers_are_plain(fleet: Fleet) -> None:
    ids = sum(fleet.rows(name, "SELECT sum(id) FROM episodes")[0][0] for name in SYNCED)
    sizes = sum(fleet.rows(name, "SELECT sum(size_bytes) FROM media_files")[0][0] for name in SYNCED)
    assert ids > 1000 and sizes > 1000
    result = fleet.query(
        "SELECT (SELECT sum(id) FROM episodes) AS ids, (SELECT sum(size_bytes) FROM media_files) AS sizes"
    )
    assert result.out.splitlines() == ["ids,sizes", f"{ids},{sizes}"]


def test_table_format_is_aligned(fleet: Fleet) -> None:
    counts = per_server_counts(fleet, "episodes")
    result = fleet.query(
        "SELECT server, count(*) AS episodes FROM episodes GROUP BY server ORDER BY server",
        "--format",
        "table",
    )
    assert result.code == 0, result.err
    lines = [line.rstrip() for line in result.out.splitlines() if line.strip()]
    assert "server" in lines[0] and "episodes" in lines[0]
    body = [line for line in lines if line.split()[0] in SYNCED]
    assert [line.split()[0] for line in body] == sorted(SYNCED)
    for line in body:
        assert line.split()[-1] == str(counts[line.split()[0]])
    assert len({len(line) for line in body}) == 1  # numbers right-aligned in one column


# ------------------------------------------------------------------------------ mistakes
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELEC count(*) FROM episodes", "syntax error"),
        ("SELECT count(*) FROM episode", "episode"),
        ("SELECT no_such_column FROM shows", "no_such_column"),
    ],
)
def test_a_bad_query_exits_2_with_duckdbs_message(fleet: Fleet, sql: str, expected: str) -> None:
    result = fleet.query(sql)
    assert result.code == 2
    assert "error: the query failed: " in result.err and expected in result.err
    assert "Traceback" not in result.err and result.out == ""


def test_no_sql_and_no_export_exits_2(fleet: Fleet) -> None:
    result = fleet.query()
    assert result.code == 2 and "error: give the SQL to run" in result.err
    assert "Traceback" not in result.err


def test_a_fleet_never_synced_exits_2(fleet: Fleet) -> None:
    config = write_config(fleet.folder / "unsynced.toml", [NEVER_SYNCED])
    result = fleet.query("SELECT 1", config=config)
    assert result.code == 2 and "no server of the config has a database yet" in result.err


def test_a_file_that_is_not_sqlite_exits_2_naming_its_server(fleet: Fleet, tmp_path: Path) -> None:
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "broken.token").write_text("t")
    (tmp_path / "dbs").mkdir()
    (tmp_path / "dbs" / "broken.db").write_text("not a database " * 400)
    result = fleet.query("SELECT 1", config=write_config(tmp_path / "fleet.toml", ["broken"]))
    assert result.code == 2, result.err
    assert "server broken" in result.err and "cannot be read" in result.err and "Traceback" not in result.err


def test_a_sync_writing_meanwhile_does_not_block_the_query(fleet: Fleet) -> None:
    before = per_server_counts(fleet, "episodes")
    writer = sqlite3.connect(fleet.db("home"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM episodes WHERE id IN (SELECT id FROM episodes LIMIT 5)")
        rows = fleet.query("SELECT server, count(*) AS n FROM episodes GROUP BY server").csv()
        assert {row["server"]: int(row["n"]) for row in rows} == before  # the last committed state
    finally:
        writer.execute("ROLLBACK")
        writer.close()


# ------------------------------------------------------------------------------ packaging
def test_no_extension_is_ever_downloaded(fleet: Fleet) -> None:
    settings = fleet.query(
        "SELECT current_setting('autoinstall_known_extensions') AS install, "
        "current_setting('autoload_known_extensions') AS load"
    )
    assert settings.csv() == [{"install": "false", "load": "false"}]
    # a remote file needs httpfs: with autoinstall on, DuckDB would download it into ~/.duckdb
    result = fleet.query("SELECT * FROM 'https://127.0.0.1:9/episodes.parquet'")
    assert result.code == 2 and "httpfs" in result.err and "Traceback" not in result.err
    assert not (fleet.folder / "home" / ".duckdb").exists()


@pytest.mark.parametrize("missing", ["duckdb", "extension", "version"])
def test_a_missing_or_mismatched_duckdb_says_how_to_install_it(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    if missing == "duckdb":
        monkeypatch.setitem(sys.modules, "duckdb", None)  # `import duckdb` raises ImportError
    elif missing == "extension":
        monkeypatch.setitem(sys.modules, "duckdb_extension_sqlite", None)
    else:
        monkeypatch.setattr(duckdb, "__version__", "9.9.9")  # no extension built for it
    with pytest.raises(SystemExit) as exit_info:
        fleet_query.command_main(fleet.config, "SELECT 1", fmt="csv", export_dir=None)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pip install 'importer[query]'" in err
    if missing == "version":
        assert "9.9.9" in err and duckdb.__version__ in err


# ------------------------------------------------------------------------------ --export
def sqlite_rows(fleet: Fleet, table: str) -> Counter[tuple[Any, ...]]:
    """Every server's rows of ``table``, each with its server name first."""
    columns = ", ".join(fleet.columns("home", table))
    return Counter(
        (name, *row) for name in SYNCED for row in fleet.rows(name, f"SELECT {columns} FROM {table}")
    )


def parquet_rows(folder: Path, table: str, columns: list[str]) -> Counter[tuple[Any, ...]]:
    with contextlib.closing(duckdb.connect()) as con:
        relation = con.execute(
            f"SELECT server, {', '.join(columns)} FROM read_parquet(?, hive_partitioning = true)",
            [str(folder / table / "*" / "*.parquet")],
        )
        return Counter(relation.fetchall())


def test_export_writes_parquet_by_server_equal_to_the_databases(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "export"
    for _ in range(2):  # a second export replaces the first (no row twice)
        result = fleet.query("--export", str(out))
        assert result.code == 0, result.err
        assert result.out == ""
    summary = [line for line in result.err.splitlines() if line.startswith("exported ")]
    assert [line.split()[1].rstrip(":") for line in summary] == list(fleet_query.TABLES)
    episodes = sum(per_server_counts(fleet, "episodes").values())
    assert f"exported episodes: {episodes} rows" in result.err
    assert sorted(p.name for p in (out / "episodes").iterdir()) == sorted(f"server={n}" for n in SYNCED)
    for table in ("episodes", "shows", "media_files"):
        assert parquet_rows(out, table, fleet.columns("home", table)) == sqlite_rows(fleet, table), table


def test_export_then_query_and_the_export_reads_back_through_the_cli(fleet: Fleet, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = fleet.query("--export", str(out), "SELECT count(*) AS n FROM episodes")
    total = sum(per_server_counts(fleet, "episodes").values())
    assert result.csv() == [{"n": str(total)}] and "exported episodes" in result.err
    back = fleet.query(
        f"SELECT count(*) AS n FROM read_parquet('{out}/episodes/*/*.parquet', hive_partitioning = true)"
    )
    assert back.csv() == [{"n": str(total)}]
