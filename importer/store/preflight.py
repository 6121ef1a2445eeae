"""The ``--db`` path, checked in the main process before a run takes its lock or starts a
worker, so that a path that cannot be used fails at once with one clear message.

:func:`check_database` never writes: it looks at the path (:func:`connection.check_path`),
reads the file's 100-byte header, then reads the file through a read-only SQLite
connection. A WAL-mode file that nobody has open (no ``-wal`` beside it: every WAL
connection keeps one) is read with ``immutable=1``, because a plain read-only connection
would leave ``-wal`` and ``-shm`` files beside it. The read also waits, at most
:data:`connection.LOCK_WAIT_S`, for a lock that another program holds on the file.

:func:`connection.connect` (the writer process's, ``importer status``'s) calls this first,
then checks the same things again on its own connection before its first pragma that could
write: a file swapped in meanwhile is refused too.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import apsw

from importer.errors import UnusableDatabase
from importer.store import connection, migrations

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100


def check_database(
    path: str | os.PathLike[str], *, readonly: bool = False, busy_timeout_ms: int | None = None
) -> None:
    """Raise :class:`UnusableDatabase` (exit 2) when ``path`` cannot be the importer's
    database, :class:`LockedError` (exit 4) when another program holds it locked past the
    wait. A missing or empty (0-byte) file is a new database. ``readonly`` (``importer
    status``): the file must exist and be an importer database; it need not be writable.
    ``busy_timeout_ms``: the wait for another program's lock (default: the lock wait).
    """
    name = os.fspath(path)
    st = connection.check_path(name, readonly=readonly)
    if st is None:
        return  # a new database: its folder exists and takes new files
    if st.st_size == 0:
        if readonly:
            raise migrations.no_importer_data(name)
        return  # `touch library.db`: a new database too
    with connection.mapped_errors(name):
        try:
            with open(name, "rb") as file:
                header = file.read(HEADER_SIZE)
        except OSError as exc:
            raise UnusableDatabase(
                f"cannot read {name} ({exc.strerror}): check its permissions, or choose another --db path",
                path=name,
            ) from None
        if len(header) < HEADER_SIZE or not header.startswith(SQLITE_MAGIC):
            raise UnusableDatabase(connection.not_a_database(name), path=name)
        # user_version and application_id as the file holds them (PRAGMA reads them as
        # signed); a WAL may hold newer ones, which the read below sees
        (have,) = struct.unpack_from(">i", header, 60)
        (app,) = struct.unpack_from(">i", header, 68)
        migrations.check_identity(name, have, app, None)
        wait_ms = connection.DEFAULT_BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
        _check_contents(name, wal=header[18] == 2 or header[19] == 2, readonly=readonly, wait_ms=wait_ms)


def _check_contents(name: str, *, wal: bool, readonly: bool, wait_ms: int) -> None:
    if wal and not os.path.exists(f"{name}-wal"):
        # Nobody has it open: read the file as it is, without creating -wal and -shm.
        uri = f"{Path(os.path.abspath(name)).as_uri()}?immutable=1"
        conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    else:
        # A rollback-journal file, or a WAL file in use: a plain read-only connection
        # creates nothing here and waits for another program's lock (busy timeout).
        conn = apsw.Connection(name, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        conn.setbusytimeout(wait_ms)
        conn.pragma("query_only", True)
        if readonly:
            migrations.check_readable(conn, name)
        else:
            migrations.check_usable(conn, name)
    finally:
        conn.close()
