"""The SQLite store: schema, migrations, Writer upserts, link(), runs, errors, read side.

Every test uses a real database file under tmp_path.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.errors import LockedError, StoreError, UnusableDatabase
from importer.model import (
    LibraryInfo,
    ListingKind,
    RunMode,
    RunStatus,
    ServerInfo,
    StreamKind,
    StreamProgress,
)
from importer.rows import EPISODE_COLUMNS, MEDIA_FILE_COLUMNS, SEASON_COLUMNS, SHOW_COLUMNS, Row
from importer.store import SCHEMA_VERSION, WriteCounts, Writer, connect, migrations, queries

ITEM_TABLES = ("shows", "seasons", "episodes", "media_files")


# ------------------------------------------------------------------ row builders


def show(sid: str, etag: str | None = "s1", title: str = "Show") -> Row:
    return (sid, f"plex://show/{sid}", title, f"{title}, The", 2011, "A summary.", "tt0944947",
            "1399", "121361", 1_600_000_000, 1_600_000_100, "TV-MA", "HBO", 9.1, 8.7, etag)  # fmt: skip


def season(sid: str, show_sid: str, number: int | None, etag: str | None = "se1") -> Row:
    return (sid, show_sid, number, f"Season {number}", etag)


def episode(
    sid: str,
    show_sid: str,
    season_sid: str | None,
    number: int = 1,
    *,
    season_number: int | None = 1,
    etag: str | None = "e1",
    title: str = "Pilot",
) -> Row:
    return (sid, show_sid, season_sid, f"plex://episode/{sid}", season_number, number, number + 1,
            title, "What happens.", "2011-04-17", 3_600_000, "tt1480055", "63056", "3254641",
            1_600_000_000, 1_600_000_200, etag)  # fmt: skip


def media_file(episode_sid: str, sid: str, path: str = "/tv/a.mkv", media_index: int = 0) -> Row:
    return (
        episode_sid,
        sid,
        media_index,
        0,
        path,
        1_234_567_890,
        "mkv",
        "hevc",
        "eac3",
        1920,
        1080,
        3_600_000,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "library.db"


@pytest.fixture
def writer(db: Path) -> Iterator[Writer]:
    with Writer.open(db) as w:
        yield w


@pytest.fixture
def library(writer: Writer) -> int:
    server = writer.ensure_server(ServerInfo("plex", "machine-1", "Home", "1.41", "http://plex:32400"))
    return writer.ensure_library(server, LibraryInfo("2", "TV Shows", "show"))


def write_page(
    writer: Writer,
    library_id: int,
    shows: Sequence[Row] = (),
    seasons: Sequence[Row] = (),
    episodes: Sequence[Row] = (),
    files: Sequence[Row] = (),
    adoptable: Callable[[int], bool] | None = None,
) -> WriteCounts:
    """Pages of each stream, one after the other, as the decoder sends them: new or not,
    nothing known in advance (every row's stored id 0: the writer compares them itself)."""
    counts = WriteCounts()
    for stream, rows in (
        (StreamKind.SHOWS, shows),
        (StreamKind.SEASONS, seasons),
        (StreamKind.EPISODES, episodes),
    ):
        if rows:
            page_files = files if stream is StreamKind.EPISODES else ()
            counts += writer.write_rows(
                library_id, stream, rows, files=page_files, adoptable=adoptable
            ).counts
    return counts


@contextmanager
def transaction(writer: Writer) -> Iterator[None]:
    writer.begin()
    try:
        yield
    except BaseException:
        writer.rollback()
        raise
    writer.commit()


def snapshot(conn: apsw.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every item table, rowid included, in id order."""
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ITEM_TABLES}


def small_library() -> tuple[list[Row], list[Row], list[Row], list[Row]]:
    shows = [show("10"), show("20", title="Other")]
    seasons = [season("11", "10", 1), season("12", "10", 2), season("21", "20", 1)]
    episodes = [
        episode("13", "10", "11", 1),
        episode("14", "10", "11", 2),
        episode("15", "10", "12", 1, season_number=2),
        episode("22", "20", "21", 1),
    ]
    files = [
        media_file("13", "p13"),
        media_file("14", "p14"),
        media_file("14", "p14b", "/tv/b.mkv", media_index=1),
        media_file("15", "p15"),
        media_file("22", "p22"),
    ]
    return shows, seasons, episodes, files


# ------------------------------------------------------------------ connection, schema, migrations


def test_new_file_gets_schema_and_pragmas(db: Path) -> None:
    conn = connect(db)
    assert conn.pragma("user_version") == SCHEMA_VERSION
    assert conn.pragma("application_id") == migrations.APPLICATION_ID
    assert conn.pragma("page_size") == 16384
    assert conn.pragma("journal_mode") == "wal"
    assert conn.pragma("synchronous") == 1  # NORMAL
    assert conn.pragma("foreign_keys") == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {"servers", "libraries", "shows", "seasons", "episodes", "media_files", "runs"} <= tables
    episode_columns = [r[1] for r in conn.execute("PRAGMA table_info(episodes)")]
    assert episode_columns == ["id", "library_id", "show_id", "season_id", *EPISODE_COLUMNS, *HYDRATION]
    file_columns = [r[1] for r in conn.execute("PRAGMA table_info(media_files)")]
    assert file_columns == ["id", "episode_id", *MEDIA_FILE_COLUMNS[1:]]
    # the secondary indexes wait for the end of the first bulk load
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    assert "episodes_by_show" not in names
    conn.close()


def test_reopen_keeps_data_and_does_not_migrate(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Writer.open(db) as w:
        w.ensure_server(ServerInfo("jellyfin", "abc", "Box", "10.10", ""))
    monkeypatch.setattr(migrations, "schema_sql", lambda: pytest.fail("schema re-created"))
    conn = connect(db)
    assert conn.pragma("user_version") == SCHEMA_VERSION
    assert conn.execute("SELECT kind, machine_id FROM servers").fetchall() == [("jellyfin", "abc")]
    conn.close()
    ro = connect(db, readonly=True)
    assert ro.execute("SELECT count(*) FROM servers").get == 1
    ro.close()


def test_migration_steps_run_in_order_and_atomically(db: Path) -> None:
    connect(db).close()
    conn = connect(db)
    seen: list[int] = []
    now = SCHEMA_VERSION

    def step_a(c: apsw.Connection) -> None:
        seen.append(now + 1)
        c.execute("ALTER TABLE episodes ADD COLUMN watched INTEGER")

    def step_b(c: apsw.Connection) -> None:
        seen.append(now + 2)
        c.execute("CREATE TABLE extra (x)")

    def broken(c: apsw.Connection) -> None:
        c.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("step failed")

    with pytest.raises(RuntimeError):
        migrations.migrate(conn, str(db), version=now + 2, steps={now + 1: step_a, now + 2: broken})
    # the failed upgrade left nothing behind, not even the first step
    assert conn.pragma("user_version") == now
    assert "watched" not in [r[1] for r in conn.execute("PRAGMA table_info(episodes)")]
    assert conn.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'").get == 0

    seen.clear()
    assert migrations.migrate(conn, str(db), version=now + 2, steps={now + 1: step_a, now + 2: step_b}) == now
    assert seen == [now + 1, now + 2]
    assert conn.pragma("user_version") == now + 2
    assert migrations.migrate(conn, str(db), version=now + 2, steps={}) == now + 2  # nothing to do
    with pytest.raises(StoreError, match="no migration"):
        migrations.migrate(conn, str(db), version=now + 3, steps={})
    conn.close()


HYDRATION = ("hydrated_at", "hydrated_etag")


def _shape(conn: apsw.Connection) -> dict[str, Any]:
    """Every table's columns, and the SQL of every index and trigger."""
    names = conn.execute("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name").fetchall()
    shape: dict[str, Any] = {n: sql for kind, n, sql in names if kind != "table"}
    shape.update(
        {n: conn.execute(f"PRAGMA table_info({n})").fetchall() for kind, n, _ in names if kind == "table"}
    )
    return shape


def _as_version_2(conn: apsw.Connection) -> None:
    """Turn a new file back into version 2 as it shipped: no people, credits, genres or
    images, no ratings or hydration marks."""
    for trigger in ("shows_metadata_gone", "seasons_metadata_gone", "episodes_metadata_gone"):
        conn.execute(f"DROP TRIGGER {trigger}")
    for table in ("credits", "item_genres", "images", "genres", "people"):
        conn.execute(f"DROP TABLE {table}")
    for table, columns in migrations._HYDRATION_COLUMNS.items():
        for column in columns:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column.split()[0]}")
    conn.pragma("user_version", 2)


def test_a_version_1_file_is_upgraded_to_the_schema_of_a_new_one(tmp_path: Path) -> None:
    fresh = connect(tmp_path / "new.db")
    old = connect(tmp_path / "old.db")
    _as_version_2(old)
    # version 1 as it shipped: runs had no watermark column either
    old.execute("ALTER TABLE runs DROP COLUMN watermark")
    old.pragma("user_version", 1)
    old.close()
    upgraded = connect(tmp_path / "old.db")
    assert upgraded.pragma("user_version") == SCHEMA_VERSION
    assert _shape(upgraded) == _shape(fresh)


def test_a_version_2_file_keeps_its_rows_and_gets_the_metadata_tables(tmp_path: Path) -> None:
    old = connect(tmp_path / "old.db")
    _as_version_2(old)
    old.execute("INSERT INTO servers (id, kind, machine_id) VALUES (1, 'plex', 'm')")
    old.execute("INSERT INTO libraries (id, server_id, source_id) VALUES (1, 1, '2')")
    old.execute("INSERT INTO shows (id, library_id, source_id, title, etag) VALUES (7, 1, '70', 'Show', 'e')")
    old.close()
    upgraded = connect(tmp_path / "old.db")
    assert upgraded.pragma("user_version") == SCHEMA_VERSION
    assert _shape(upgraded) == _shape(connect(tmp_path / "new.db"))
    row = upgraded.execute("SELECT title, etag, critic_rating, hydrated_etag FROM shows WHERE id = 7").get
    # its etag cleared: the next full run writes it again, with its ratings and images
    assert row == ("Show", None, None, None)
    # never hydrated, though its etag and hydrated_etag are both NULL
    assert queries.libraries(upgraded)[0].shows_hydrated == 0
    # the triggers work on the upgraded file: a deleted show takes its metadata with it
    upgraded.execute("INSERT INTO people (id, server_id, source_id, name) VALUES (1, 1, 'p', 'P')")
    upgraded.execute("INSERT INTO credits VALUES (1, 'show', 7, 'actor', 'R', 0)")
    upgraded.execute("INSERT INTO images VALUES ('show', 7, 'poster', '/p', '1')")
    upgraded.execute("DELETE FROM shows WHERE id = 7")
    assert upgraded.execute("SELECT (SELECT count(*) FROM credits) + (SELECT count(*) FROM images)").get == 0


def test_late_index_section_is_only_indexes() -> None:
    # ensure_indexes() runs this part of schema.sql on every call: it must be idempotent
    statements = [s.strip() for s in migrations.late_indexes_sql().split(";") if s.strip()]
    code = [
        "\n".join(line for line in s.splitlines() if not line.lstrip().startswith("--")).strip()
        for s in statements
    ]
    assert code and all(c.startswith("CREATE INDEX IF NOT EXISTS") for c in code if c)


def test_newer_schema_is_refused(db: Path) -> None:
    conn = connect(db)
    conn.pragma("user_version", SCHEMA_VERSION + 1)
    conn.close()
    before = db.read_bytes()
    with pytest.raises(UnusableDatabase, match="newer importer") as info:
        connect(db)
    assert info.value.exit_code == 2
    with pytest.raises(UnusableDatabase, match="newer importer"):
        connect(db, readonly=True)
    assert db.read_bytes() == before


def test_foreign_sqlite_file_is_refused(db: Path) -> None:
    other = sqlite3.connect(db)
    other.execute("CREATE TABLE notes (text)")
    other.commit()
    other.close()
    before = db.read_bytes()
    with pytest.raises(UnusableDatabase, match="did not create"):
        connect(db)
    with pytest.raises(UnusableDatabase, match="did not create"):
        connect(db, readonly=True)
    assert db.read_bytes() == before  # not even journal_mode=wal
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]
    assert sqlite3.connect(db).execute("SELECT count(*) FROM sqlite_master").fetchone() == (1,)


def test_not_a_database(db: Path) -> None:
    db.write_bytes(b"this is a text file, not a database\n" * 200)
    with pytest.raises(UnusableDatabase, match="not a SQLite database") as info:
        connect(db)
    assert info.value.details["path"] == str(db)
    with pytest.raises(UnusableDatabase, match="not a SQLite database"):
        connect(db, readonly=True)


def test_readonly_needs_an_existing_importer_database(tmp_path: Path) -> None:
    with pytest.raises(UnusableDatabase, match="no database"):
        connect(tmp_path / "missing.db", readonly=True)
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("PRAGMA user_version").fetchall()
    empty.touch()
    with pytest.raises(UnusableDatabase, match="no importer data"):
        connect(empty, readonly=True)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UnusableDatabase, match=r"does not exist.*mkdir -p"):
        connect(tmp_path / "no" / "such" / "dir.db")
    assert not (tmp_path / "no").exists()


def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UnusableDatabase, match="is a folder, not a database file"):
        connect(tmp_path)
    assert list(tmp_path.parent.glob(f"{tmp_path.name}?*")) == []  # no -wal, -shm, .lock


def test_writing_through_a_read_only_connection(db: Path) -> None:
    connect(db).close()
    ro = Writer(connect(db, readonly=True))
    with pytest.raises(StoreError, match="read-only") as info:
        ro.ensure_server(ServerInfo("plex", "m", "", "", ""))
    assert isinstance(info.value.__cause__, apsw.ReadOnlyError)
    ro.close()


def test_full_disk_maps_to_store_error(writer: Writer, library: int) -> None:
    writer.conn.pragma("max_page_count", writer.conn.pragma("page_count") + 2)
    rows = [episode(str(i), "10", "11", i, title="x" * 500) for i in range(2000)]
    writer.begin()
    with pytest.raises(StoreError, match=r"disk .* is full") as info:
        write_page(writer, library, episodes=rows)
    # SQLite may have rolled back the whole transaction already; rollback() is safe anyway
    writer.rollback()
    # picklable, so it can cross from the writer process to the main one
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is StoreError and again.message == info.value.message


def test_second_writer_gets_locked_error(db: Path, writer: Writer, library: int) -> None:
    writer.begin()
    write_page(writer, library, shows=[show("10")])
    other = Writer.open(db, busy_timeout_ms=50)
    with pytest.raises(LockedError, match="another process"):
        other.begin()
    assert LockedError.exit_code == 4
    writer.commit()
    other.begin()  # free again
    other.rollback()
    other.close()


def test_reader_is_not_blocked_by_an_open_write_transaction(db: Path, writer: Writer, library: int) -> None:
    shows, seasons, episodes, files = small_library()
    write_page(writer, library, shows, seasons)
    reader = connect(db, readonly=True, busy_timeout_ms=0)
    writer.begin()
    write_page(writer, library, episodes=episodes, files=files)
    # WAL: the reader sees the last commit at once, without waiting for the writer
    assert reader.execute("SELECT count(*) FROM shows").get == 2
    assert reader.execute("SELECT count(*) FROM episodes").get == 0
    assert queries.libraries(reader)[0].episodes == 0
    writer.commit()
    assert reader.execute("SELECT count(*) FROM episodes").get == 4
    reader.close()


# ------------------------------------------------------------------ servers, libraries


def test_ensure_server_and_library_are_upserts(writer: Writer) -> None:
    s1 = writer.ensure_server(ServerInfo("plex", "m1", "Old name", "1", "http://a"))
    s2 = writer.ensure_server(ServerInfo("plex", "m1", "New name", "1", "http://b"))
    other = writer.ensure_server(ServerInfo("jellyfin", "m1", "J", "1", ""))
    assert s1 == s2 != other
    assert writer.conn.execute("SELECT name, base_url FROM servers WHERE id = ?", (s1,)).fetchall() == [
        ("New name", "http://b")
    ]
    lib1 = writer.ensure_library(s1, LibraryInfo("2", "TV"))
    assert writer.ensure_library(s1, LibraryInfo("2", "Series")) == lib1
    assert writer.ensure_library(other, LibraryInfo("2", "TV")) != lib1
    assert writer.conn.execute("SELECT title FROM libraries WHERE id = ?", (lib1,)).get == "Series"


# ------------------------------------------------------------------ write_page


def test_round_trip_of_every_column(writer: Writer, library: int) -> None:
    shows, seasons, episodes, files = small_library()
    with transaction(writer):
        counts = write_page(writer, library, shows, seasons, episodes, files)
    assert counts == WriteCounts(shows=2, seasons=3, episodes=4, files=5, unchanged=0)
    assert counts.written == 9
    conn = writer.conn
    ids = dict(conn.execute("SELECT source_id, id FROM shows"))
    season_ids = dict(conn.execute("SELECT source_id, id FROM seasons"))
    episode_ids = dict(conn.execute("SELECT source_id, id FROM episodes"))

    got = conn.execute(f"SELECT library_id, {', '.join(SHOW_COLUMNS)} FROM shows ORDER BY source_id")
    assert got.fetchall() == [(library, *r) for r in shows]
    got = conn.execute(
        f"SELECT library_id, show_id, {', '.join(SEASON_COLUMNS)} FROM seasons ORDER BY source_id"
    )
    assert got.fetchall() == [(library, ids[r[1]], *r) for r in seasons]
    got = conn.execute(
        f"SELECT library_id, show_id, season_id, {', '.join(EPISODE_COLUMNS)} "
        "FROM episodes ORDER BY source_id"
    )
    assert got.fetchall() == [(library, ids[r[1]], season_ids[r[2]], *r) for r in episodes]
    got = conn.execute(
        f"SELECT episode_id, {', '.join(MEDIA_FILE_COLUMNS[1:])} FROM media_files ORDER BY source_id"
    )
    assert got.fetchall() == sorted(((episode_ids[f[0]], *f[1:]) for f in files), key=lambda r: r[1])


def test_second_write_of_the_same_page_changes_nothing(writer: Writer, library: int) -> None:
    page = small_library()
    with transaction(writer):
        write_page(writer, library, *page)
        writer.link(library)
    before = snapshot(writer.conn)
    changes = writer.conn.total_changes()
    with transaction(writer):
        counts = write_page(writer, library, *page)
    assert counts == WriteCounts(unchanged=9)
    assert counts.written == 0
    assert writer.conn.total_changes() == changes  # not a single row was touched
    assert snapshot(writer.conn) == before


def test_changed_etag_rewrites_the_row_and_replaces_its_files(writer: Writer, library: int) -> None:
    shows, seasons, episodes, files = small_library()
    write_page(writer, library, shows, seasons, episodes, files)
    before = snapshot(writer.conn)
    file_ids = {r[2]: r[0] for r in before["media_files"]}

    changed = episode("14", "10", "11", 2, etag="e2", title="Renamed")
    new_files = [media_file("14", "p14c", "/tv/c.mkv")]  # p14 and p14b are gone
    untouched_files = [f for f in files if f[0] == "13"]
    counts = write_page(
        writer,
        library,
        shows=[show("20", etag="s2", title="Retitled"), shows[0]],
        episodes=[episodes[0], changed],
        files=untouched_files + new_files,
    )
    assert counts == WriteCounts(shows=1, episodes=1, files=1, unchanged=2)
    after = snapshot(writer.conn)
    ep = writer.conn.execute("SELECT id, title, etag FROM episodes WHERE source_id = '14'").fetchall()
    assert ep == [(next(r[0] for r in before["episodes"] if r[4] == "14"), "Renamed", "e2")]  # same id
    assert writer.conn.execute("SELECT title FROM shows WHERE source_id = '20'").get == "Retitled"
    got = dict(writer.conn.execute("SELECT source_id, id FROM media_files"))
    assert set(got) == {"p13", "p15", "p22", "p14c"}
    # the unchanged episode's file was not rewritten: same row, same id
    assert got["p13"] == file_ids["p13"]
    assert [r for r in after["media_files"] if r[2] == "p13"] == [
        r for r in before["media_files"] if r[2] == "p13"
    ]
    assert after["seasons"] == before["seasons"]


def test_overlapping_pages(writer: Writer, library: int) -> None:
    # offset paging over a changing library repeats items across pages
    first = write_page(writer, library, episodes=[episode("1", "10", None), episode("2", "10", None)])
    again = write_page(
        writer,
        library,
        episodes=[episode("2", "10", None), episode("3", "10", None)],
        files=[media_file("2", "p2"), media_file("3", "p3")],
    )
    assert (first.episodes, again.episodes, again.unchanged, again.files) == (2, 1, 1, 1)
    assert writer.conn.execute("SELECT group_concat(source_id) FROM episodes ORDER BY id").get == "1,2,3"
    assert writer.conn.execute("SELECT group_concat(source_id) FROM media_files").get == "p3"


def test_null_etag_is_always_rewritten(writer: Writer, library: int) -> None:
    write_page(writer, library, shows=[show("10", etag=None)])
    assert write_page(writer, library, shows=[show("10", etag=None, title="New")]).shows == 1
    assert writer.conn.execute("SELECT title FROM shows").get == "New"


def test_duplicates_within_a_page_last_wins(writer: Writer, library: int) -> None:
    counts = write_page(
        writer,
        library,
        shows=[show("10", title="First"), show("10", title="Second")],
        episodes=[episode("13", "10", None, title="a"), episode("13", "10", None, title="b")],
        files=[media_file("13", "p1", "/x"), media_file("13", "p1", "/y")],
    )
    assert (counts.shows, counts.episodes, counts.files) == (1, 1, 1)
    assert writer.conn.execute("SELECT title FROM shows").get == "Second"
    assert writer.conn.execute("SELECT title FROM episodes").get == "b"
    assert writer.conn.execute("SELECT path FROM media_files").get == "/y"


def test_double_episode_shares_a_file_part(writer: Writer, library: int) -> None:
    write_page(
        writer,
        library,
        episodes=[episode("13", "10", "11", 1), episode("14", "10", "11", 2)],
        files=[media_file("13", "p1"), media_file("14", "p1")],
    )
    rows = writer.conn.execute("SELECT episode_id, source_id FROM media_files ORDER BY episode_id").fetchall()
    assert [r[1] for r in rows] == ["p1", "p1"] and rows[0][0] != rows[1][0]


def test_files_without_their_episodes_are_a_caller_bug(writer: Writer, library: int) -> None:
    with pytest.raises(StoreError, match="without their episodes"):
        writer.write_rows(library, StreamKind.SHOWS, [show("10")], files=[media_file("13", "p1")])
    # files whose episode is not in the page are not written
    done = writer.write_rows(
        library, StreamKind.EPISODES, [episode("13", "10", None)], files=[media_file("99", "p")]
    )
    assert done.counts.files == 0


def test_failed_page_leaves_nothing_behind(writer: Writer, library: int) -> None:
    writer.begin()
    write_page(writer, library, shows=[show("10")])
    with pytest.raises(StoreError, match="ConstraintError"):
        # a file without a source id breaks NOT NULL after the show and the episode were written
        bad = (*media_file("13", "p1")[:1], None, *media_file("13", "p1")[2:])
        write_page(writer, library, shows=[show("20")], episodes=[episode("13", "10", None)], files=[bad])
    writer.commit()
    # the episodes page is written whole or not at all; the pages before it stay
    assert writer.conn.execute("SELECT count(*) FROM episodes").get == 0
    assert [r[0] for r in writer.conn.execute("SELECT source_id FROM shows")] == ["10", "20"]


def test_libraries_are_kept_apart(writer: Writer, library: int) -> None:
    server = writer.conn.execute("SELECT server_id FROM libraries WHERE id = ?", (library,)).get
    other = writer.ensure_library(server, LibraryInfo("3", "Anime"))
    write_page(writer, library, shows=[show("10")], episodes=[episode("13", "10", None)])
    counts = write_page(writer, other, shows=[show("10")], episodes=[episode("13", "10", None)])
    assert counts.written == 2
    writer.link(library)
    writer.link(other)
    rows = writer.conn.execute(
        "SELECT e.library_id, s.library_id FROM episodes e JOIN shows s ON s.id = e.show_id"
    ).fetchall()
    assert sorted(rows) == [(library, library), (other, other)]


# ------------------------------------------------------------------ link


def test_link_resolves_parents_written_after_their_children(writer: Writer, library: int) -> None:
    shows, seasons, episodes, files = small_library()
    # streams arrive in any order: episodes first, then seasons, then shows
    write_page(writer, library, episodes=episodes, files=files)
    write_page(writer, library, seasons=seasons)
    write_page(writer, library, shows=shows)
    nulls = "SELECT count(*) FROM episodes WHERE show_id IS NULL OR season_id IS NULL"
    assert writer.conn.execute(nulls).get == 4
    result = writer.link(library)
    assert (result.seasons_linked, result.episodes_linked) == (3, 4)
    assert result.orphan_episode_count == result.orphan_season_count == 0
    assert writer.conn.execute(nulls).get == 0
    wrong = writer.conn.execute(
        "SELECT count(*) FROM episodes e JOIN shows sh ON sh.id = e.show_id "
        "JOIN seasons se ON se.id = e.season_id "
        "WHERE sh.source_id != e.show_source_id OR se.source_id != e.season_source_id OR se.show_id != sh.id"
    ).get
    assert wrong == 0
    assert writer.link(library).episodes_linked == 0  # nothing left to do


def test_link_resolves_hidden_and_missing_season_ids(writer: Writer, library: int) -> None:
    write_page(
        writer,
        library,
        shows=[show("10"), show("20"), show("30")],
        seasons=[
            season("11", "10", 1),  # Plex: the only, hidden season of show 10
            season("21", "20", 1),
            season("22", "20", 2),
            season("31", "30", 1),
        ],
        episodes=[
            # Plex hidden season: no parentRatingKey, sometimes no season number either
            episode("12", "10", None, 1),
            episode("13", "10", None, 2, season_number=None),
            # Jellyfin without SeasonId: found by (series, season number)
            episode("23", "20", None, 1, season_number=2),
            # the show has no season 5: reported, left NULL
            episode("32", "30", None, 1, season_number=5),
        ],
    )
    result = writer.link(library)
    got = dict(writer.conn.execute("SELECT source_id, season_source_id FROM episodes"))
    assert got == {"12": "11", "13": "11", "23": "22", "32": None}
    resolved = writer.conn.execute(
        "SELECT e.source_id, se.source_id FROM episodes e JOIN seasons se ON se.id = e.season_id"
    ).fetchall()
    assert {a: b for a, b in resolved} == {"12": "11", "13": "11", "23": "22"}
    assert result.orphan_episodes == ["32"] and result.orphan_episode_count == 1
    assert result.episodes_linked == 3
    # its show is still linked
    assert writer.conn.execute("SELECT show_id IS NOT NULL FROM episodes WHERE source_id = '32'").get == 1


def test_link_reports_orphan_seasons(writer: Writer, library: int) -> None:
    write_page(writer, library, seasons=[season("11", "missing", 1)])
    result = writer.link(library)
    assert (result.orphan_seasons, result.orphan_season_count) == (["11"], 1)


def test_changed_episode_moving_season_is_relinked(writer: Writer, library: int) -> None:
    shows, seasons, episodes, files = small_library()
    write_page(writer, library, shows, seasons, episodes, files)
    writer.link(library)
    moved = episode("13", "10", None, 1, season_number=2, etag="e2")  # now in season 2, no SeasonId
    write_page(writer, library, episodes=[moved], files=[media_file("13", "p13")])
    writer.link(library)
    got = writer.conn.execute(
        "SELECT se.source_id FROM episodes e JOIN seasons se ON se.id = e.season_id WHERE e.source_id = '13'"
    ).get
    assert got == "12"


# ------------------------------------------------------------------ indexes, runs, read side


def test_ensure_indexes(writer: Writer, library: int) -> None:
    write_page(writer, library, *small_library())
    writer.ensure_indexes()
    writer.ensure_indexes()  # idempotent
    names = {r[0] for r in writer.conn.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")}
    assert {"episodes_by_show", "episodes_by_season", "episodes_by_guid", "seasons_by_show"} <= names
    plan = writer.conn.execute("EXPLAIN QUERY PLAN SELECT * FROM episodes WHERE show_id = 1").fetchall()
    assert "episodes_by_show" in str(plan)


def test_run_bookkeeping(db: Path, writer: Writer, library: int) -> None:
    run = writer.start_run(library, RunMode.FULL, started_at=1000)
    writer.begin()
    counts = write_page(writer, library, *small_library())
    committed = {StreamKind.EPISODES: StreamProgress(total=4, committed=[(0, 4)])}
    writer.save_progress(run, committed)
    writer.commit()
    writer.begin()
    writer.save_progress(run, {StreamKind.EPISODES: StreamProgress(kind=ListingKind.IDS)})
    writer.rollback()  # progress is kept only with the rows it describes
    writer.finish_run(
        run, RunStatus.DONE, None, {**counts.as_run_counts(), "requests": 7, "bytes": 9000}, finished_at=1005
    )
    failed = writer.start_run(library, RunMode.INCREMENTAL)
    writer.finish_run(failed, RunStatus.FAILED, "the server went away")
    with pytest.raises(ValueError, match="fine"):
        writer.finish_run(run, "fine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dry run"):
        writer.finish_run(run, RunStatus.DRY_RUN)  # reported, never stored
    with pytest.raises(ValueError, match="counts"):
        writer.finish_run(run, RunStatus.DONE, counts={"episodes": 1})

    ro = connect(db, readonly=True)
    runs = queries.last_runs(ro)
    assert [r.id for r in runs] == [failed, run]
    assert runs[0].mode == "incremental" and runs[0].reason == "the server went away"
    r = runs[1]
    assert (r.mode, r.status, r.started_at, r.finished_at) == ("full", "done", 1000, 1005)
    assert (r.shows_written, r.seasons_written, r.episodes_written, r.files_written) == (2, 3, 4, 5)
    assert (r.requests, r.bytes) == (7, 9000)
    assert (
        r.progress == '{"episodes":{"listing":1,"kind":"full","total":4,"committed":[[0,4]],"leaf_total":0}}'
    )
    assert [x.id for x in queries.last_runs(ro, library_id=library)] == [failed, run]
    ro.close()
    # what the next run starts from: no watermark (none was given), a failed run to supersede
    stored = writer.stored_library(library)
    assert (stored.watermark, stored.verified_at) == (None, 1000)
    assert (stored.unfinished_run, stored.unfinished_mode) == (failed, RunMode.INCREMENTAL)
    assert stored.populated == list(StreamKind)


def test_status_queries(db: Path, writer: Writer, library: int) -> None:
    write_page(writer, library, *small_library())
    run = writer.start_run(library, RunMode.FULL)
    writer.finish_run(run, RunStatus.DONE, finished_at=1234)
    server = writer.conn.execute("SELECT server_id FROM libraries").get
    writer.ensure_library(server, LibraryInfo("9", "Empty"))
    ro = connect(db, readonly=True)
    assert [(s.kind, s.machine_id, s.name) for s in queries.servers(ro)] == [("plex", "machine-1", "Home")]
    libs = queries.libraries(ro)
    assert [(x.title, x.shows, x.seasons, x.episodes, x.files, x.last_synced_at) for x in libs] == [
        ("TV Shows", 2, 3, 4, 5, 1234),
        ("Empty", 0, 0, 0, 0, None),
    ]
    assert queries.stored_rows(ro, library, StreamKind.SHOWS, ["10", "20", "30"]) == {
        "10": (1, "s1"),
        "20": (2, "s1"),
    }
    report = queries.status_report(db)
    assert "plex server 'Home'" in report
    assert "'TV Shows': 2 shows, 3 seasons, 4 episodes, 5 files; last complete sync 1970-01-01" in report
    assert f"#{run} " in report and ": done (" in report
    ro.close()


def test_deleting_an_episode_cascades_to_its_files(writer: Writer, library: int) -> None:
    write_page(writer, library, *small_library())
    writer.conn.execute("DELETE FROM episodes WHERE source_id = '14'")
    assert writer.conn.execute("SELECT count(*) FROM media_files").get == 3


# ------------------------------------------------------------------ property: the store is a map


ids = st.sampled_from(["a", "b", "c", "d"])
episode_rows = st.builds(
    lambda sid, etag, title, nfiles: (episode(sid, "S", "T", etag=etag, title=title), nfiles),
    ids,
    st.sampled_from(["1", "2", None]),
    st.sampled_from(["x", "y"]),
    st.integers(0, 2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pages=st.lists(st.lists(episode_rows, max_size=5), max_size=5))
def test_pages_in_any_order_leave_the_last_version_of_each_item(tmp_path_factory: Any, pages: Any) -> None:
    path = tmp_path_factory.mktemp("prop") / "p.db"
    expected: dict[str, tuple[Row, list[Row]]] = {}
    with Writer.open(path) as w:
        lib = w.ensure_library(w.ensure_server(ServerInfo("plex", "m", "", "", "")), LibraryInfo("1", ""))
        for page in pages:
            episodes = [row for row, _ in page]
            files = [
                media_file(row[0], f"{row[0]}-{n}-{row[7]}") for row, nfiles in page for n in range(nfiles)
            ]
            with transaction(w):
                counts = write_page(w, lib, episodes=episodes, files=files)
            last = {row[0]: (row, nfiles) for row, nfiles in page}
            unchanged = 0
            for sid, (row, _) in last.items():
                old = expected.get(sid)
                if old is not None and old[0][-1] == row[-1] and row[-1] is not None:
                    unchanged += 1
                    continue
                expected[sid] = (row, [f for f in files if f[0] == sid])
            assert counts.unchanged == unchanged + len(episodes) - len(last)
        got = {r[0]: r for r in w.conn.execute(f"SELECT {', '.join(EPISODE_COLUMNS)} FROM episodes")}
        assert got == {sid: row for sid, (row, _) in expected.items()}
        got_files = w.conn.execute(
            "SELECT e.source_id, f.source_id FROM media_files f JOIN episodes e ON e.id = f.episode_id"
        ).fetchall()
        want = {(sid, f[1]) for sid, (_, fs) in expected.items() for f in fs}
        assert sorted(got_files) == sorted(want)


# ------------------------------------------------------------------ images of shows and seasons
def _images(writer: Writer) -> set[tuple[Any, ...]]:
    sql = "SELECT s.source_id, i.kind, i.path, i.tag FROM images i JOIN shows s ON s.id = i.item_id"
    return set(writer.conn.execute(sql + " WHERE i.item_type = 'show'"))


def test_images_follow_their_show_written_changed_unchanged_and_deleted(writer: Writer, library: int) -> None:
    poster, backdrop = ("1", "poster", "/m/1/thumb/5", "5"), ("1", "backdrop", "/m/1/art/6", "6")
    other = ("2", "poster", "/m/2/thumb/7", "7")
    with transaction(writer):
        writer.write_rows(library, StreamKind.SHOWS, [show("1"), show("2")], images=[poster, backdrop, other])
    assert _images(writer) == {poster, backdrop, other}
    ids = dict(writer.conn.execute("SELECT source_id, id FROM shows"))
    # show 1 changed and lost its backdrop; show 2 is on the page unchanged (same etag): the
    # compared path writes nothing of it, and keeps its images
    new_poster = ("1", "poster", "/m/1/thumb/9", "9")
    with transaction(writer):
        done = writer.write_rows(
            library, StreamKind.SHOWS, [show("1", etag="s2"), show("2")], images=[new_poster, other]
        )
    assert done.counts.shows == 1
    assert _images(writer) == {new_poster, other}
    # the decoder's path: show 2 known to be changed, and sent without images
    with transaction(writer):
        writer.write_rows(library, StreamKind.SHOWS, [show("2", etag="s3")], [ids["2"]])
    assert _images(writer) == {new_poster}
    with transaction(writer):
        writer.delete_rows(StreamKind.SHOWS, [ids["1"]])
    assert writer.conn.execute("SELECT count(*) FROM images").get == 0


def test_episode_images_are_refused_from_a_listing(writer: Writer, library: int) -> None:
    with pytest.raises(StoreError, match="hydrate"):
        writer.write_rows(library, StreamKind.EPISODES, [], images=[("e", "thumb", "/p", "1")])
