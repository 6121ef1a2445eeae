"""Nightly runs: an incremental run fetches what changed, finds what is gone, and never
lets a glitch empty a library."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import apsw
import pytest
from processes import sync_command
from test_sync import check_database, serving

import importer
from importer import SyncOptions, SyncResult
from importer.emulator import Library, LibrarySpec, make_server
from importer.emulator.server import EmulatedServer

pytestmark = pytest.mark.usefixtures("implementation")  # compiled and pure-Python (conftest.py)

CHANGES = ("add", "update", "delete", "move_season", "move_show", "rename", "add_season", "replace",
           "delete_show", "mixed")  # fmt: skip


async def sync(server: EmulatedServer, url: str, db: Path, **options: Any) -> SyncResult:
    return await importer.sync(url, db, token=server.token, options=SyncOptions(**options))


def listing_requests(server: EmulatedServer) -> list[str]:
    return [e.path for e in server.log if e.path.endswith(("/all", "/Items"))]


def runs(db: Path) -> list[tuple[Any, ...]]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute(
            "SELECT mode, status, deleted, watermark, reason FROM runs ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def count_rows(db: Path, table: str) -> int:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").get)
    finally:
        conn.close()


@pytest.mark.parametrize("change", CHANGES)
@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_an_incremental_run_follows_every_kind_of_change(
    kind: str, change: str, tmp_path: Path
) -> None:
    server = make_server(kind, Library(LibrarySpec(seed=21, shows=12)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        first = await sync(server, url, db)
        assert first.libraries[0].mode == "full" and first.exit_code == 0
        done = server.apply_changes(change, 3, seed=5)
        assert done, "the emulator made no change"
        second = await sync(server, url, db)
    lib = second.libraries[0]
    assert (lib.mode, lib.status, second.exit_code) == ("incremental", "done", 0), lib.reason
    assert lib.written > 0 or lib.deleted > 0
    check_database(server, db)


async def test_a_replaced_plex_file_keeps_its_local_id(tmp_path: Path) -> None:
    server = make_server("plex", Library(LibrarySpec(seed=21, shows=6)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await sync(server, url, db)
        conn = apsw.Connection(str(db))
        before = dict(conn.execute("SELECT guid, id FROM episodes WHERE guid LIKE 'plex://%'").fetchall())
        (done,) = server.apply_changes("replace", 1, seed=3)
        await sync(server, url, db)
    check_database(server, db)
    after = dict(conn.execute("SELECT guid, id FROM episodes WHERE guid LIKE 'plex://%'").fetchall())
    conn.close()
    assert after == before, f"a replaced file changed local ids ({done})"


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
def test_a_quiet_night_costs_six_requests_per_library(kind: str, tmp_path: Path) -> None:
    server = make_server(kind, Library(LibrarySpec(seed=3, episodes=100_000)))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        import asyncio

        asyncio.run(sync(server, url, db))
        server.log.clear()
        result = asyncio.run(sync(server, url, db))
    listings = listing_requests(server)
    assert result.libraries[0].mode == "incremental"
    assert len(listings) <= 6, listings
    assert len(server.log) - len(listings) <= 2, [e.path for e in server.log]  # discovery
    assert result.libraries[0].written == 0
    assert [r[:2] for r in runs(db)] == [("full", "done"), ("incremental", "done")]


async def test_emby_sweeps_every_item_by_etag(tmp_path: Path) -> None:
    server = make_server("emby", Library(LibrarySpec(seed=4, shows=5)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await sync(server, url, db)
        server.apply_changes("mixed", 4, seed=2)
        server.log.clear()
        result = await sync(server, url, db)
    lib = result.libraries[0]
    assert (lib.mode, lib.status) == ("full", "done")
    assert lib.unchanged > 0  # unchanged items cost no write
    check_database(server, db)


async def test_a_stale_verification_makes_the_run_full(tmp_path: Path) -> None:
    server = make_server("plex", Library(LibrarySpec(seed=8, shows=4)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await sync(server, url, db)
        assert (await sync(server, url, db)).libraries[0].mode == "incremental"
        assert (await sync(server, url, db, verify_after_days=0)).libraries[0].mode == "full"
        assert (await sync(server, url, db, full=True)).libraries[0].mode == "full"
    assert [r[0] for r in runs(db)] == ["full", "incremental", "full", "full"]


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_changes_are_found_when_the_server_clock_lags_ours(kind: str, tmp_path: Path) -> None:
    server = make_server(kind, Library(LibrarySpec(seed=8, shows=5)))
    server.controls.clock_offset_s = -3 * 3600
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await sync(server, url, db)
        server.apply_changes("update", 5, seed=1)
        result = await sync(server, url, db)
    assert result.libraries[0].mode == "incremental"
    check_database(server, db)


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_a_library_that_suddenly_lists_empty_is_not_emptied(kind: str, tmp_path: Path) -> None:
    server = make_server(kind, Library(LibrarySpec(seed=6, shows=10)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await sync(server, url, db)
        stored = count_rows(db, "episodes")
        server.apply_changes("delete_show", 10, seed=1)
        stopped = await sync(server, url, db)
        assert count_rows(db, "episodes") == stored, "the guard let rows go"
        lib = stopped.libraries[0]
        assert (lib.status, stopped.exit_code) == ("stopped", 3)
        assert "--allow-mass-delete" in (lib.reason or "")

        dry = await sync(server, url, db, dry_run=True)
        assert dry.exit_code == 0 and count_rows(db, "episodes") == stored
        assert len(dry.libraries[0].gone["episodes"]) == stored

        allowed = await sync(server, url, db, allow_mass_delete=True)
    assert allowed.exit_code == 0 and allowed.libraries[0].deleted > stored
    assert count_rows(db, "episodes") == 0
    check_database(server, db)
    assert [r[1] for r in runs(db)] == ["done", "stopped", "stopped", "done"]


async def test_a_few_deletions_pass_the_guard(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(LibrarySpec(seed=6, shows=10)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await sync(server, url, db)
        server.apply_changes("delete", 5, seed=1)
        result = await sync(server, url, db)
    assert result.libraries[0].deleted == 5
    assert runs(db)[-1][:3] == ("incremental", "done", 5)
    check_database(server, db)


def test_dry_run_lists_what_would_go_library_by_library(tmp_path: Path) -> None:
    server = make_server("plex", Library(LibrarySpec(seed=6, shows=5)))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        cli = sync_command(url, db, server.token)
        subprocess.run(cli, check=True, capture_output=True)
        (gone,) = server.apply_changes("delete", 1, seed=9)
        out = subprocess.run([*cli, "--dry-run"], capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr
        assert "1 item would be deleted" in out.stdout
        named = f"{gone['show_title']} S{gone['season_number']}E{gone['episode_number']} {gone['title']}"
        assert named in out.stdout
        assert out.stderr == ""
        quiet = subprocess.run([*cli, "--quiet"], capture_output=True, text=True, check=False)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")  # cron: silent success
    check_database(server, db)


def test_a_kill_during_a_sweep_loses_nothing(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(LibrarySpec(seed=12, shows=8)))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        cli = sync_command(url, db, server.token, "-q")
        subprocess.run(cli, check=True)
        server.apply_changes("delete", 3, seed=4)
        server.apply_changes("update", 3, seed=4)
        stored = count_rows(db, "episodes")
        killed = subprocess.run(
            cli, env={**os.environ, "IMPORTER_CRASH_AT": "in_sweep"}, start_new_session=True, check=False
        )
        assert killed.returncode == -9  # killed in the sweep, the only place that point is
        assert count_rows(db, "episodes") == stored  # its deletions rolled back
        assert runs(db)[-1][1] == "running"
        subprocess.run(cli, check=True)
    check_database(server, db)
    assert runs(db)[-1][:2] == ("incremental", "done")


@pytest.mark.parametrize("mode", ["full", "incremental"])
@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_changes_during_a_run_are_caught_by_the_next(kind: str, mode: str, tmp_path: Path) -> None:
    import asyncio

    from importer.emulator import Controls

    server = make_server(kind, Library(LibrarySpec(seed=17, shows=40)), controls=Controls(latency_ms=20))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        if mode == "incremental":
            await sync(server, url, db, page_size=200)
            server.apply_changes("mixed", 20, seed=8)
        server.log.clear()
        run = asyncio.create_task(sync(server, url, db, page_size=200))
        while len(listing_requests(server)) < 4:
            await asyncio.sleep(0.005)
        server.apply_changes("mixed", 20, seed=9)
        during = await run
        assert during.exit_code in (0, 75)
        after = await sync(server, url, db)
    assert after.exit_code == 0
    check_database(server, db)


async def test_jellyfin_finds_deletions_with_bare_ids(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(LibrarySpec(seed=6, shows=10)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await sync(server, url, db)
        server.apply_changes("delete", 2, seed=3)
        server.log.clear()
        result = await sync(server, url, db)
    listings = [e.query for e in server.log if e.path.endswith("/Items")]
    # ids and etags only, 5,000 a page (a season's full listing asks for its Etag alone too)
    bare = [q for q in listings if q.get("Fields") == "Etag" and q["Limit"] == "5000"]
    assert bare, listings
    assert all(q["IncludeItemTypes"] == "Episode" for q in bare)  # only the stream that lost items
    assert result.libraries[0].deleted == 2
    check_database(server, db)


async def test_a_change_the_delta_missed_is_found_by_a_full_listing(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(LibrarySpec(seed=6, shows=10)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await sync(server, url, db)
        server.controls.clock_offset_s = -30 * 86400  # saved "a month ago": before the watermark
        server.apply_changes("add", 1, seed=3)
        server.controls.clock_offset_s = 0
        server.log.clear()
        result = await sync(server, url, db)
    listings = [
        e.query for e in server.log if e.path.endswith("/Items") and e.query["IncludeItemTypes"] == "Episode"
    ]
    assert any(q.get("Fields") == "Etag" for q in listings)  # ids and etags first: one is unknown here
    # then that one in full, by id
    assert any("Ids" in q and "MediaSources" in q["Fields"] for q in listings), listings
    assert result.libraries[0].status == "done"
    check_database(server, db)
