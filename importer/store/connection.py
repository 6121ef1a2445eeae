"""Opening the database: pragmas, schema creation and migration, error mapping.

Every apsw error that reaches the rest of the importer goes through :func:`mapped_errors`
and comes out as a :class:`~importer.errors.StoreError` whose message says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import apsw

from importer.errors import LockedError, StoreError
from importer.store import migrations

#: 16 KiB pages: measured ~1.3-1.5x faster bulk writes than the 4 KiB default. It only
#: takes effect on a new file (a WAL database cannot change its page size later).
PAGE_SIZE = 16384
DEFAULT_CACHE_MB = 64
DEFAULT_BUSY_TIMEOUT_MS = 5000
#: after a checkpoint, truncate the WAL to this size so that one big transaction does
#: not leave a WAL file of hundreds of MB behind
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


def connect(
    path: str | os.PathLike[str],
    *,
    readonly: bool = False,
    cache_mb: int = DEFAULT_CACHE_MB,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
) -> apsw.Connection:
    """Open (and create or upgrade, unless ``readonly``) the database at ``path``.

    A read-only connection never creates the file nor changes its schema; it refuses a
    database that is older or newer than this version of the importer understands.
    """
    name = os.fspath(path)
    if readonly and not os.path.exists(name):
        raise StoreError(
            f"there is no database at {name}: check the --db path, or run `importer sync` to create it",
            path=name,
        )
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    with mapped_errors(name):
        conn = apsw.Connection(name, flags=flags)
        try:
            conn.setbusytimeout(busy_timeout_ms)
            # the schema declares REFERENCES with cascades; enforcing them costs a
            # rowid lookup per reference and keeps deletes (the sweep) consistent
            conn.pragma("foreign_keys", True)
            if readonly:
                conn.pragma("query_only", True)
                migrations.check_readable(conn, name)
            else:
                # both must precede the first table; on an existing file they are no-ops
                # (page_size) or already set (WAL is persistent)
                conn.pragma("page_size", PAGE_SIZE)
                conn.pragma("journal_mode", "wal")
                # with WAL and large transactions NORMAL is within 10% of OFF and
                # cannot corrupt the file on a crash (it may lose the last commit on
                # power loss, which the cursor file tolerates: it is written after)
                conn.pragma("synchronous", "normal")
                conn.pragma("journal_size_limit", JOURNAL_SIZE_LIMIT)
                migrations.migrate(conn, name)
            # Negative cache_size is in KiB. Set after page_size: on a new file, a
            # cache_size set first keeps its old page count, and a 64 MB cache silently
            # became 256 MB once pages grew from 4 to 16 KiB (measured: 4x the memory).
            conn.pragma("cache_size", -cache_mb * 1024)
        except BaseException:
            conn.close()
            raise
    return conn


@contextmanager
def mapped_errors(path: str) -> Iterator[None]:
    """Turn apsw errors into StoreError (LockedError when another process holds the lock)."""
    try:
        yield
    except StoreError:
        raise
    except apsw.Error as exc:
        raise _store_error(exc, path) from exc


def _store_error(exc: apsw.Error, path: str) -> StoreError:
    what = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, apsw.BusyError):
        return LockedError(
            f"the database {path} is busy: another process is writing to it. Wait for that "
            "run to finish (or stop it), then run again",
            path=path,
            error=what,
        )
    if isinstance(exc, apsw.FullError):
        message = (
            f"the disk holding {path} is full: free some space and run again "
            "(rows committed so far are kept and the run resumes)"
        )
    elif isinstance(exc, apsw.ReadOnlyError | apsw.PermissionsError):
        message = (
            f"cannot write to the database {path}: the file or its directory is read-only. "
            "Make both writable by this user, or choose another --db path"
        )
    elif isinstance(exc, apsw.CantOpenError):
        message = (
            f"cannot open the database {path}: check that its directory exists and that this "
            "user may read and write both the directory and the file (SQLite also creates "
            f"{os.path.basename(path)}-wal and -shm files next to it)"
        )
    elif isinstance(exc, apsw.NotADBError):
        message = (
            f"{path} is not a SQLite database (or it is encrypted): choose another --db path, "
            "or move that file away"
        )
    elif isinstance(exc, apsw.CorruptError):
        message = (
            f"the database {path} is damaged: restore a backup, or delete it (and its -wal and "
            "-shm files) and run a full sync to rebuild it"
        )
    elif isinstance(exc, apsw.IOError):
        message = (
            f"the disk reported an I/O error on {path}: check the disk and the file system, then run again"
        )
    elif isinstance(exc, apsw.LockedError):
        message = f"a table of {path} is locked by this same process: this is a bug, please report it"
    else:
        message = f"unexpected database error on {path} ({what}): please report it"
    return StoreError(message, path=path, error=what)
