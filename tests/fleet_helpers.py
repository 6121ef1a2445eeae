"""A fleet of emulated servers on loopback, its config file, and ways to compare databases."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
from ground_truth import read_library

from importer.emulator import Controls, LibrarySpec, make_server
from importer.emulator.server import EmulatedServer

#: id columns: local to one database (the order rows were inserted in), not content
_LOCAL_IDS = ("id", "library_id", "show_id", "season_id", "episode_id", "server_id")


@dataclass
class Member:
    name: str
    server: EmulatedServer
    url: str


@dataclass
class FleetFixture:
    folder: Path
    config: Path
    members: list[Member]
    #: set for every process that a fleet command starts (see :func:`leftover_processes`)
    mark: str

    def db(self, name: str, data_dir: str = "dbs") -> Path:
        return self.folder / data_dir / f"{name}.db"

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def write_config(self, data_dir: str = "dbs", *, extra: str = "", token_files: bool = True) -> Path:
        """The config over every member, into ``data_dir`` (relative to the config)."""
        lines = ["[defaults]", f'data_dir = "{data_dir}"', extra, ""]
        for member in self.members:
            lines += ["[[server]]", f'name = "{member.name}"', f'url = "{member.url}"']
            if token_files:
                lines.append(f'token_file = "tokens/{member.name}.token"')
            lines.append("")
        self.config.write_text("\n".join(lines))
        return self.config

    def command(self, *args: str, data_dir: str = "dbs", env: dict[str, str] | None = None,
                **popen: Any) -> subprocess.Popen[str]:  # fmt: skip
        return subprocess.Popen(
            [sys.executable, "-m", "importer", "fleet", "--config", str(self.config), *args],
            cwd=self.folder,
            env={**os.environ, "FLEET_TEST_MARK": self.mark, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            **popen,
        )

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> Finished:
        proc = self.command(*args, env=env)
        out, err = proc.communicate(timeout=timeout)
        report_path = self.folder / "report.json"
        report = json.loads(report_path.read_text()) if "--report" in args and report_path.exists() else {}
        return Finished(proc.returncode, out, err, report)


@dataclass
class Finished:
    code: int
    out: str
    err: str
    report: dict[str, Any]

    def server(self, name: str) -> dict[str, Any]:
        return next(s for s in self.report["servers"] if s["name"] == name)


@contextlib.contextmanager
def fleet_of(folder: Path, kinds: list[str], *, episodes: int = 600, latency_ms: float = 2.0,
             item_cost_us: float = 0.0) -> Iterator[FleetFixture]:  # fmt: skip
    """Servers of ``kinds`` (each its own library), serving from threads; tokens in files."""
    (folder / "tokens").mkdir(parents=True, exist_ok=True)
    members: list[Member] = []
    with contextlib.ExitStack() as stack:
        for index, kind in enumerate(kinds):
            server = make_server(
                kind,
                LibrarySpec(seed=100 + index, episodes=episodes + 37 * index),
                controls=Controls(latency_ms=latency_ms, item_cost_us=item_cost_us),
            )
            url = stack.enter_context(server.running_in_thread())
            name = f"{kind}-{index}"
            token = folder / "tokens" / f"{name}.token"
            token.write_text(server.token)
            token.chmod(0o600)
            members.append(Member(name, server, url))
        fixture = FleetFixture(folder, folder / "fleet.toml", members, uuid.uuid4().hex)
        fixture.write_config()
        yield fixture


def content(db: Path) -> dict[str, Any]:
    """Every library's rows by source id, without the local integer ids: two databases of
    the same server have equal contents whatever order their rows were inserted in."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert conn.execute("PRAGMA integrity_check").get == "ok"
        out: dict[str, Any] = {}
        for (source_id,) in conn.execute("SELECT source_id FROM libraries ORDER BY source_id").fetchall():
            lib = read_library(conn, source_id)
            out[source_id] = {
                table: {key: _strip(row) for key, row in getattr(lib, table).items()}
                for table in ("shows", "seasons", "episodes")
            } | {"files": {key: [_strip(f) for f in files] for key, files in lib.files.items()}}
        return out
    finally:
        conn.close()


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in _LOCAL_IDS}


def runs(db: Path) -> list[tuple[str, str, int]]:
    """(mode, status, episodes written) of each run, oldest first."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("SELECT mode, status, episodes_written FROM runs ORDER BY id").fetchall()
    finally:
        conn.close()


def leftover_processes(mark: str, timeout: float = 15.0) -> list[str]:
    """The command lines of live processes started with ``FLEET_TEST_MARK=mark`` (every
    process a fleet command starts inherits it: jobs, workers, Ray's own), after
    waiting up to ``timeout`` for them to end."""
    needle = f"FLEET_TEST_MARK={mark}".encode()
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    left.append(
                        (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    )
            except OSError:
                continue  # it ended while we looked, or is not ours to read
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
