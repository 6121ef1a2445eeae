"""Opening the database: pragmas, schema creation and migration, error mapping.

Every apsw error that reaches the rest of the importer goes through :func:`mapped_errors`
and comes out as a :class:`~importer.errors.StoreError` whose message says what to do.

A path that cannot be used (:func:`check_path`, and a file that is not an importer
database of a version we know) raises :class:`~importer.errors.UnusableDatabase` before
anything is written: :func:`connect` reads the file's identity before its first pragma
that could write. :mod:`importer.store.preflight` runs the same checks, read-only, in the
main process before a run takes its lock or starts a worker.
"""

from __future__ import annotations

import contextlib
import math
import os
import shlex
import stat
from collections.abc import Iterator
from contextlib import contextmanager

import apsw

from importer.errors import LockedError, StoreError, UnusableDatabase
from importer.store import migrations

#: 16 KiB pages: measured ~1.3-1.5x faster bulk writes than the 4 KiB default. It only
#: takes effect on a new file (a WAL database cannot change its page size later).
PAGE_SIZE = 16384
DEFAULT_CACHE_MB = 64
#: How long to wait for a lock that another program holds on the database (a sqlite3 shell
#: or a database browser in the middle of a transaction, a backup tool) before giving up
#: with LockedError (exit 4). 20 s: such write transactions last milliseconds to a few
#: seconds, and a backup of a large library's file several; past that the holder is most
#: likely a program left open in a transaction, which no wait fixes, and a user at a
#: terminal or a cron log should learn so within half a minute (the promise: at most
#: MAX_LOCK_WAIT_S). Another importer run never gets this far: ``<db>.lock`` stops it at once.
DEFAULT_LOCK_WAIT_S = 20.0
MAX_LOCK_WAIT_S = 30.0
#: tests shorten the wait with this environment variable (seconds, at most MAX_LOCK_WAIT_S);
#: read once, when this module is imported, in every process of a run
LOCK_WAIT_ENV = "IMPORTER_LOCK_WAIT_S"


def _lock_wait_s() -> float:
    raw = os.environ.get(LOCK_WAIT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_LOCK_WAIT_S
    except ValueError:
        return DEFAULT_LOCK_WAIT_S
    if not math.isfinite(value):
        return DEFAULT_LOCK_WAIT_S
    return min(max(value, 0.0), MAX_LOCK_WAIT_S)


LOCK_WAIT_S = _lock_wait_s()
#: SQLite's busy timeout for every connection: the lock wait above
DEFAULT_BUSY_TIMEOUT_MS = round(LOCK_WAIT_S * 1000)
#: after a checkpoint, truncate the WAL to this size so that one big transaction does
#: not leave a WAL file of hundreds of MB behind
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


def check_path(name: str, *, readonly: bool = False) -> os.stat_result | None:
    """What the file system says about a ``--db`` path, before SQLite opens it.

    Returns the file's stat, or None when there is no file yet (a new database, whose
    folder exists and is writable). Raises :class:`UnusableDatabase` for a missing folder,
    a folder, a file that is not a regular file, and (unless ``readonly``) a read-only file
    or folder: SQLite writes ``-wal`` and ``-shm`` files beside the database, and the
    importer its ``.lock`` and ``.cursor`` files. Reads no file and creates nothing.
    """
    if not name:
        raise UnusableDatabase(
            "the --db path is empty: give the path of a database file, e.g. library.db", path=name
        )
    folder = os.path.dirname(os.path.abspath(name))
    try:
        st = os.stat(name)
    except FileNotFoundError:
        if readonly:
            raise UnusableDatabase(
                f"there is no database at {name}: check the --db path, or run "
                f"`importer sync URL --db {shlex.quote(name)}` to create it",
                path=name,
            ) from None
        _check_new_file(name, folder)
        return None
    except NotADirectoryError:
        raise UnusableDatabase(
            f"{name} cannot be a database: a part of that path is a file, not a folder; "
            "choose another --db path",
            path=name,
        ) from None
    except PermissionError:
        raise UnusableDatabase(
            f"this user may not reach {name}: a folder on the way does not let it in; "
            "fix that folder's permissions, or choose another --db path",
            path=name,
        ) from None
    except OSError as exc:
        raise UnusableDatabase(
            f"cannot look at {name} ({exc.strerror}): choose another --db path", path=name
        ) from None
    _check_file(name, folder, st, readonly=readonly)
    return st


def _check_file(name: str, folder: str, st: os.stat_result, *, readonly: bool) -> None:
    """An existing path: a regular file that this user may read (and write, with its folder)."""
    if stat.S_ISDIR(st.st_mode):
        raise UnusableDatabase(
            f"{name} is a folder, not a database file: give the path of a file, "
            f"e.g. --db {shlex.quote(os.path.join(name, 'library.db'))}",
            path=name,
        )
    if not stat.S_ISREG(st.st_mode):
        raise UnusableDatabase(
            f"{name} is not a regular file (a device, a pipe or a socket): choose another --db path",
            path=name,
        )
    if readonly:
        if not _may(name, os.R_OK):
            raise UnusableDatabase(
                f"this user may not read the database {name}: make it readable "
                f"(chmod u+r {shlex.quote(name)}), or run as its owner",
                path=name,
            )
        return
    if not _may(name, os.R_OK | os.W_OK):
        raise UnusableDatabase(
            f"the database {name} is read-only for this user (its permissions, or a read-only "
            f"file system): make it writable (chmod u+rw {shlex.quote(name)}), or choose another --db path",
            path=name,
        )
    if not _may(folder, os.W_OK | os.X_OK):
        raise UnusableDatabase(_read_only_folder(name, folder), path=name)


def _check_new_file(name: str, folder: str) -> None:
    """A database that does not exist yet: its folder must exist and take new files."""
    try:
        folder_stat = os.stat(folder)
    except FileNotFoundError:
        raise UnusableDatabase(
            f"the folder {folder} does not exist, so the database {name} cannot be created there: "
            f"create it (mkdir -p {shlex.quote(folder)}), or choose another --db path",
            path=name,
        ) from None
    except OSError as exc:
        raise UnusableDatabase(
            f"cannot create the database {name}: its folder {folder} cannot be used "
            f"({exc.strerror}); choose another --db path",
            path=name,
        ) from None
    if not stat.S_ISDIR(folder_stat.st_mode):
        raise UnusableDatabase(
            f"cannot create the database {name}: {folder} is a file, not a folder; choose another --db path",
            path=name,
        )
    if not _may(folder, os.W_OK | os.X_OK):
        raise UnusableDatabase(_read_only_folder(name, folder), path=name)


def _read_only_folder(name: str, folder: str) -> str:
    return (
        f"the folder {folder} of the database {name} is read-only for this user, and the "
        "importer writes beside the database (its -wal, -shm, .lock and .cursor files): "
        f"make the folder writable (chmod u+rwx {shlex.quote(folder)}), or choose another --db path"
    )


def _may(path: str, mode: int) -> bool:
    """os.access for the effective user (the one that will open the file)."""
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


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
    from importer.store.preflight import check_database  # it builds on this module

    name = os.fspath(path)
    # Read-only, creating nothing: a path we refuse is refused before SQLite opens it here.
    check_database(name, readonly=readonly, busy_timeout_ms=busy_timeout_ms)
    # A -wal file that is there before we open: another program's (or a crashed run's)
    # uncommitted pages. If we refuse the file, closing must not checkpoint them into it.
    had_wal = os.path.exists(f"{name}-wal")
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
                # Reads only: a file we refuse (not SQLite, another program's, a newer
                # importer's) is refused here, before the pragmas below can write to it.
                migrations.check_usable(conn, name)
                # both must precede the first table; on an existing file they are no-ops
                # (page_size) or already set (WAL is persistent)
                conn.pragma("page_size", PAGE_SIZE)
                conn.pragma("journal_mode", "wal")
                # with WAL and large transactions NORMAL is within 10% of OFF and
                # cannot corrupt the file on a crash. A power cut may undo the commits
                # since the last sync point (their pages are fetched again); the commit
                # that records a run's end is synced (Writer.begin(durable=True))
                conn.pragma("synchronous", "normal")
                conn.pragma("journal_size_limit", JOURNAL_SIZE_LIMIT)
                migrations.migrate(conn, name)
            # Negative cache_size is in KiB. Set after page_size: on a new file, a
            # cache_size set first keeps its old page count, and a 64 MB cache silently
            # became 256 MB once pages grew from 4 to 16 KiB (measured: 4x the memory).
            conn.pragma("cache_size", -cache_mb * 1024)
        except BaseException:
            _close_untouched(conn, had_wal)
            raise
    return conn


def _close_untouched(conn: apsw.Connection, had_wal: bool) -> None:
    """Close a connection we give up on without writing to its file."""
    if had_wal:
        # the last connection to close checkpoints the WAL into the database file
        with contextlib.suppress(apsw.Error):
            conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
    conn.close()


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
        # Another importer run is kept off by <db>.lock: this is another program.
        return LockedError(
            f"the database {path} is locked by another process (a sqlite3 shell or a database "
            "browser in a transaction, a backup), and it stayed locked while the importer "
            "waited: close that program or let it finish, then run again",
            path=path,
            error=what,
        )
    if isinstance(exc, apsw.FullError):
        message = (
            f"the disk holding {path} is full: free some space and run again "
            "(rows committed so far are kept and the run resumes)"
        )
    elif isinstance(exc, apsw.ReadOnlyError | apsw.PermissionsError):
        return UnusableDatabase(
            f"cannot write to the database {path}: the file or its folder is read-only. "
            "Make both writable by this user, or choose another --db path",
            path=path,
            error=what,
        )
    elif isinstance(exc, apsw.CantOpenError):
        return UnusableDatabase(
            f"cannot open the database {path}: check that its folder exists and that this "
            "user may read and write both the folder and the file (SQLite also creates "
            f"{os.path.basename(path)}-wal and -shm files next to it), or choose another --db path",
            path=path,
            error=what,
        )
    elif isinstance(exc, apsw.NotADBError):
        return UnusableDatabase(not_a_database(path), path=path, error=what)
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


def not_a_database(path: str) -> str:
    return (
        f"{path} is not a SQLite database (or it is encrypted), and it was left as it is: "
        "choose another --db path, or move that file away"
    )
