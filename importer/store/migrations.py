"""Schema creation and forward migrations, versioned by ``PRAGMA user_version``.

``schema.sql`` is always the *current* schema: a new file is created from it and jumps
straight to :data:`SCHEMA_VERSION`. An older file is upgraded by the steps in
:data:`STEPS`, where step ``n`` takes a database from version ``n - 1`` to ``n``. To
change the schema, edit ``schema.sql`` *and* add the step that brings an existing file
to the same shape (``tests/test_store.py`` checks that both agree).

The part of ``schema.sql`` after the ``-- @late-indexes`` line is not run at creation:
:func:`ensure_indexes` runs it at the end of a bulk load.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources

import apsw

from importer.errors import StoreError, UnusableDatabase

SCHEMA_VERSION = 3
#: marks our files (PRAGMA application_id), so a foreign SQLite file is never "upgraded"
APPLICATION_ID = 0x496D7052  # "ImpR"
LATE_INDEXES_MARK = "-- @late-indexes"
#: memory an index build may sort in (KiB)
INDEX_SORT_KIB = 32 * 1024

Step = Callable[[apsw.Connection], None]


def _add_run_watermark(conn: apsw.Connection) -> None:
    conn.execute("ALTER TABLE runs ADD COLUMN watermark INTEGER")


_HYDRATION_COLUMNS = {
    "shows": (
        "content_rating TEXT", "studio TEXT", "critic_rating REAL", "audience_rating REAL",
        "hydrated_at INTEGER", "hydrated_etag TEXT",
    ),
    "seasons": ("hydrated_at INTEGER", "hydrated_etag TEXT"),
    "episodes": ("hydrated_at INTEGER", "hydrated_etag TEXT"),
}  # fmt: skip


def _add_metadata(conn: apsw.Connection) -> None:
    """Version 3: people, credits, genres, images; ratings on shows; hydration marks.

    The etags of shows and seasons are cleared: a server's own etag (Jellyfin) does not
    change with our schema, and the next full run (``sync --full``, or the weekly one)
    must write them again with the ratings and images their listings now carry."""
    for table, columns in _HYDRATION_COLUMNS.items():
        for column in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    conn.execute(_marked_part("-- @tables of version 3", "-- @end"))
    conn.execute("UPDATE shows SET etag = NULL")
    conn.execute("UPDATE seasons SET etag = NULL")


#: step n upgrades a database from version n-1 to n; version 1 has no predecessor
STEPS: dict[int, Step] = {2: _add_run_watermark, 3: _add_metadata}


@cache
def _schema_parts() -> tuple[str, str]:
    text = resources.files("importer.store").joinpath("schema.sql").read_text(encoding="utf-8")
    tables, _, indexes = text.partition(LATE_INDEXES_MARK)
    return tables, indexes


def _marked_part(start: str, end: str) -> str:
    """The statements of ``schema.sql`` between two marker lines: a step that adds
    tables runs them from the one source, so a new and an upgraded file cannot differ."""
    tables = _schema_parts()[0]
    begin = tables.index(start)
    return tables[begin : tables.index(end, begin)]


def schema_sql() -> str:
    """The tables (and the indexes they need from the start) of the current schema."""
    return _schema_parts()[0]


def late_indexes_sql() -> str:
    """The secondary indexes built after a bulk load (all ``CREATE INDEX IF NOT EXISTS``)."""
    return _schema_parts()[1]


def _version(conn: apsw.Connection) -> tuple[int, int]:
    return int(conn.pragma("user_version")), int(conn.pragma("application_id"))


def _has_tables(conn: apsw.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").get
    return bool(row)


def migrate(
    conn: apsw.Connection,
    path: str,
    *,
    version: int = SCHEMA_VERSION,
    steps: Mapping[int, Step] = STEPS,
) -> int:
    """Create or upgrade the schema; returns the version the file had before.

    ``version`` and ``steps`` exist for tests of the migration machinery.
    """
    before, app = _version(conn)
    if before == version and app == APPLICATION_ID:
        return before  # the common case: no write lock taken
    # BEGIN IMMEDIATE: two processes opening a new file at once must not both create it;
    # the second one waits, then sees the version the first one set
    conn.execute("BEGIN IMMEDIATE")
    try:
        before, app = _version(conn)
        _check(conn, path, before, app, version)
        if before == 0:
            conn.execute(schema_sql())
        else:
            for n in range(before + 1, version + 1):
                if n not in steps:
                    raise StoreError(
                        f"no migration from schema version {n - 1} to {n} for {path}: this is a bug",
                        path=path,
                    )
                steps[n](conn)
        conn.pragma("application_id", APPLICATION_ID)
        conn.pragma("user_version", version)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return before


def check_usable(conn: apsw.Connection, path: str, *, want: int = SCHEMA_VERSION) -> None:
    """Before anything writes to the file: it must be new (no tables), or an importer
    database no newer than ``want``. Reads only; raises :class:`UnusableDatabase`."""
    have, app = _version(conn)
    check_identity(path, have, app, lambda: _has_tables(conn), want=want)


def check_identity(
    path: str, have: int, app: int, has_tables: Callable[[], bool] | None, *, want: int = SCHEMA_VERSION
) -> None:
    """Refuse a file by its ``user_version``, ``application_id`` and, when both are 0,
    by whether it has tables (``has_tables`` None: not known yet, let it pass)."""
    if have == 0 and app == 0:
        if has_tables is not None and has_tables():
            raise UnusableDatabase(
                f"{path} is a SQLite database that importer did not create (it holds another "
                "program's tables), and it was left as it is: choose another --db path",
                path=path,
            )
        return
    if app != APPLICATION_ID:
        raise UnusableDatabase(
            f"{path} is a SQLite database of another program, and it was left as it is: "
            "choose another --db path",
            path=path,
        )
    if have > want:
        raise UnusableDatabase(
            f"{path} was written by a newer importer (schema version {have}, this one knows "
            f"{want}), and it was left as it is: upgrade importer, or choose another --db path",
            path=path,
        )


def _check(conn: apsw.Connection, path: str, have: int, app: int, want: int) -> None:
    check_identity(path, have, app, lambda: _has_tables(conn), want=want)


def no_importer_data(path: str) -> UnusableDatabase:
    return UnusableDatabase(
        f"{path} holds no importer data yet: run `importer sync URL --db {shlex.quote(path)}` first",
        path=path,
    )


def check_readable(conn: apsw.Connection, path: str) -> None:
    """For read-only connections: the file must be an importer database of this version."""
    have, app = _version(conn)
    if have == 0 and app == 0:
        check_identity(path, have, app, lambda: _has_tables(conn))
        raise no_importer_data(path)
    _check(conn, path, have, app, SCHEMA_VERSION)
    if have < SCHEMA_VERSION:
        raise UnusableDatabase(
            f"{path} has an older schema (version {have}): run `importer sync` once to upgrade it",
            path=path,
        )


def ensure_indexes(conn: apsw.Connection) -> None:
    """Create the secondary indexes that a bulk load leaves out, and refresh statistics.

    Cheap when they exist. Run outside a large write transaction's hot loop: building an
    index over a million rows takes seconds and holds the write lock meanwhile.
    """
    # An index build sorts its keys in memory up to the page cache's size, on top of the
    # cache itself: at a million episodes the writer's peak went from ~200 MB to 320 MB.
    # The cache is clean after the load's last commit: give it back, sort in 32 MB (the
    # rest spills to a temporary file; measured no slower), then restore it.
    cache_size = conn.pragma("cache_size")
    conn.execute("PRAGMA shrink_memory")
    conn.pragma("cache_size", max(int(cache_size), -INDEX_SORT_KIB))
    try:
        conn.execute(late_indexes_sql())
    finally:
        conn.pragma("cache_size", cache_size)
    # statistics for the planner; analysis_limit keeps this to milliseconds on big tables
    conn.pragma("analysis_limit", 1000)
    conn.execute("PRAGMA optimize(0x10002)")
