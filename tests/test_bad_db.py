"""Bad ``--db`` paths, through the real command line: each ends with a last line on stderr
that names the file and says what to do, exits 2 (4: locked by another program, after a
bounded wait), and leaves the file and its folder exactly as they were: the same bytes,
size and mtime, and no -wal, -shm, .lock or .cursor file beside it. Nothing reaches the
server: the path is checked before the lock, the workers and discovery.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apsw
import pytest

from importer.emulator import EmulatedServer, Library, LibrarySpec, make_server
from importer.store import SCHEMA_VERSION, connect
from importer.store.connection import LOCK_WAIT_ENV

AS_ROOT = os.geteuid() == 0
ROOT_WRITES_ANYWAY = pytest.mark.skipif(
    AS_ROOT, reason="root may write to read-only files and folders: the case cannot happen as root"
)
#: the lock wait in the lock tests (the default is 20 s)
LOCK_WAIT_S = 2.0

Snapshot = dict[str, tuple[bytes, int, int]]


@dataclass
class Server:
    url: str
    token: str
    emulated: EmulatedServer


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    emulated = make_server("plex", Library(LibrarySpec(seed=2, shows=2)))
    with emulated.running_in_thread() as url:
        yield Server(url, emulated.token, emulated)


def sync(server: Server, db: Path, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``importer sync`` as a user types it; the token file lives apart from the database's
    folder (which may be missing or read-only)."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    token_file = secrets / "token"
    token_file.write_text(server.token)
    token_file.chmod(0o600)
    out = subprocess.run(
        [sys.executable, "-m", "importer", "sync", server.url, "--db", str(db),
         "--token-file", str(token_file), "--kind", "plex", "--quiet"],
        check=False, capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )  # fmt: skip
    assert server.token not in out.stdout + out.stderr
    return out


def last_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines, f"nothing on stderr (exit {out.returncode})"
    print(f"exit {out.returncode}: {lines[-1]}")  # shown with pytest -rP
    return lines[-1]


def snapshot(folder: Path) -> Snapshot:
    """Every file in ``folder``: its bytes, size and mtime."""
    out: Snapshot = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            st = path.stat()
            out[str(path.relative_to(folder))] = (path.read_bytes(), st.st_size, st.st_mtime_ns)
    return out


def assert_refused(out: subprocess.CompletedProcess[str], db: Path, *what_to_do: str, code: int = 2) -> None:
    line = last_line(out)
    assert out.returncode == code, out.stderr
    assert line.startswith("error: "), line
    assert str(db) in line, f"the message does not name {db}: {line}"
    for words in what_to_do:
        assert words in line, line
    assert "Traceback" not in out.stderr
    assert "writer process" not in out.stderr


def importer_database(db: Path) -> None:
    """A real importer database, closed (so WAL has been checkpointed away)."""
    connect(db).close()
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def refuse(server: Server, tmp_path: Path, db: Path) -> subprocess.CompletedProcess[str]:
    """Run, and check that the database's folder is exactly as it was and that nothing
    reached the server."""
    requests = len(server.emulated.log)
    before = snapshot(db.parent)
    out = sync(server, db, tmp_path)
    after = snapshot(db.parent)
    assert after.keys() == before.keys(), f"files left beside the database: {after.keys() - before.keys()}"
    assert after == before, "the file was changed"
    assert len(server.emulated.log) == requests, "the run talked to the server before refusing"
    return out


# ----------------------------------------------------------------------------- the cases
def test_a_file_that_is_not_sqlite(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "data" / "library.db"
    db.parent.mkdir()
    db.write_bytes(b"these are my notes, not a database\n" * 100)
    out = refuse(server, tmp_path, db)
    assert_refused(out, db, "not a SQLite database", "choose another --db path")


def test_a_database_of_a_newer_importer(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "data" / "library.db"
    db.parent.mkdir()
    importer_database(db)
    conn = apsw.Connection(str(db))
    conn.pragma("user_version", SCHEMA_VERSION + 1)
    conn.close()
    out = refuse(server, tmp_path, db)
    assert_refused(out, db, "newer importer", "upgrade importer")


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_another_programs_database(server: Server, tmp_path: Path, journal: str) -> None:
    db = tmp_path / "data" / "library.db"
    db.parent.mkdir()
    other = sqlite3.connect(db)  # another program, with its own copy of SQLite
    other.execute(f"PRAGMA journal_mode={journal}")
    other.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    other.execute("INSERT INTO notes (text) VALUES ('keep me')")
    other.commit()
    other.close()
    out = refuse(server, tmp_path, db)  # no tables added, not even journal_mode changed
    assert_refused(out, db, "importer did not create", "choose another --db path")
    check = sqlite3.connect(db)
    assert check.execute("SELECT name FROM sqlite_master").fetchall() == [("notes",)]
    check.close()


def test_a_folder_that_does_not_exist(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "data" / "no" / "such" / "library.db"
    db.parent.parent.parent.mkdir()
    out = refuse(server, tmp_path, db)
    assert_refused(out, db, "does not exist", f"mkdir -p {db.parent}")
    assert not (tmp_path / "data" / "no").exists()


def test_a_path_that_is_a_directory(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "data" / "library"
    db.mkdir(parents=True)
    (db / "something.txt").write_text("a file of the user's")
    out = refuse(server, tmp_path, db)  # the snapshot covers the folder's siblings too
    assert_refused(out, db, "is a folder, not a database file", f"--db {db / 'library.db'}")
    assert sorted(p.name for p in db.parent.iterdir()) == ["library"], "a .lock beside the folder"


@ROOT_WRITES_ANYWAY
def test_a_read_only_file(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "data" / "library.db"
    db.parent.mkdir()
    importer_database(db)
    db.chmod(0o444)
    out = refuse(server, tmp_path, db)
    assert_refused(out, db, "read-only", "make it writable")


@ROOT_WRITES_ANYWAY
@pytest.mark.parametrize("exists", [False, True], ids=["new-file", "existing-file"])
def test_a_read_only_folder(server: Server, tmp_path: Path, exists: bool) -> None:
    db = tmp_path / "data" / "library.db"
    db.parent.mkdir()
    if exists:
        importer_database(db)
    db.parent.chmod(0o555)
    try:
        out = refuse(server, tmp_path, db)
    finally:
        db.parent.chmod(0o755)
    assert_refused(out, db, "read-only", "make the folder writable")


@pytest.mark.parametrize(
    "lock",
    [
        # WAL: readers go on, the importer's writer waits for the write lock
        "BEGIN IMMEDIATE",
        # no reader gets in: the importer's check in the main process waits
        "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE",
    ],
    ids=["write-lock", "exclusive-lock"],
)
def test_a_database_another_program_holds_locked(server: Server, tmp_path: Path, lock: str) -> None:
    db = tmp_path / "data" / "library.db"
    db.parent.mkdir()
    importer_database(db)
    holder = subprocess.Popen(  # another program: a sqlite3 shell left in a transaction
        [sys.executable, "-c", HOLD_LOCK, str(db), lock],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = snapshot(db.parent)[db.name]
        started = time.monotonic()
        out = sync(server, db, tmp_path, **{LOCK_WAIT_ENV: str(LOCK_WAIT_S)})
        took = time.monotonic() - started
        assert snapshot(db.parent)[db.name] == before, "the file was changed"
    finally:
        holder.communicate("release\n", timeout=10)
    assert_refused(out, db, "locked by another process", "close that program", code=4)
    assert LOCK_WAIT_S <= took < LOCK_WAIT_S + 8, f"waited {took:.1f} s"
    # the wait was for the lock, and nothing else is wrong: once it is gone, the run succeeds
    again = sync(server, db, tmp_path)
    assert again.returncode == 0, again.stderr


HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.executescript(sys.argv[2])
conn.execute("INSERT INTO servers (kind, machine_id) VALUES ('plex', 'held')")
print("held", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
conn.close()
"""


def test_an_empty_file_is_a_new_database(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "library.db"
    db.touch()
    out = sync(server, db, tmp_path)
    assert out.returncode == 0, out.stderr
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    assert conn.execute("SELECT count(*) FROM episodes").get > 0
    conn.close()


# ----------------------------------------------------------------------------- importer status
@pytest.mark.parametrize("case", ["not-sqlite", "foreign", "folder", "missing", "empty"])
def test_status_refuses_the_same_paths(tmp_path: Path, case: str) -> None:
    db = tmp_path / "data" / "library.db"
    db.parent.mkdir()
    if case == "not-sqlite":
        db.write_text("notes\n" * 100)
    elif case == "foreign":
        other = sqlite3.connect(db)
        other.execute("PRAGMA journal_mode=wal")
        other.execute("CREATE TABLE notes (text)")
        other.commit()
        other.close()
    elif case == "folder":
        db.mkdir()
    elif case == "empty":
        db.touch()
    before = snapshot(db.parent)
    out = subprocess.run(
        [sys.executable, "-m", "importer", "status", "--db", str(db)],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert snapshot(db.parent) == before
    assert_refused(out, db, "--db" if case != "empty" else "importer sync")
