"""``importer hydrate`` over real HTTP on loopback against the emulated servers, into real
SQLite files: what it stores, what it costs in requests, what it skips, how it stops and
resumes, and how it refuses what it must refuse."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import apsw
import ground_truth
import pytest
from hydrate_helpers import dangling, read_metadata, scalar, start_runner, token_file
from test_sync import cli

import importer
from importer import HydrateOptions, HydrateResult
from importer.emulator import Controls, EmulatedServer, Library, LibrarySpec, make_server
from importer.emulator.faults import Fault, FaultPlan
from importer.emulator.server import LoggedRequest, TvLibrary
from importer.errors import LockedError, TransportError, UnusableDatabase
from importer.http import RetryPolicy
from importer.lock import DatabaseLock
from importer.pipeline import SyncOptions

#: 6 shows with every odd shape (hidden seasons, legacy agent, doubles, virtual episodes)
FEATURED = LibrarySpec(seed=149, shows=6)
#: 120 shows of 5 seasons x 10 episodes: several batches of shows
MANY = LibrarySpec(shows=120, shape="seed")
MINI = LibrarySpec(seed=5, shows=3)
KINDS = ("plex", "jellyfin", "emby")


@asynccontextmanager
async def synced(server: EmulatedServer, db: Path) -> AsyncIterator[str]:
    """The server running, and ``db`` synced from it; the log cleared after the sync."""
    url = await server.start()
    try:
        result = await importer.sync(url, db, token=server.token, options=SyncOptions(kind=server.kind))
        assert result.exit_code == 0
        server.log.clear()
        yield url
    finally:
        await server.stop()


async def run_hydrate(server: EmulatedServer, db: Path, **kwargs: object) -> tuple[HydrateResult, list[str]]:
    """A hydration, and the paths it requested (with their Ids / ratingKeys)."""
    mark = len(server.log)
    result = await importer.hydrate(db, token=server.token, **kwargs)  # type: ignore[arg-type]
    requests = list(server.log)[mark:]
    assert result.requests == len(requests), "the result counts every request the server saw"
    return result, [described(e) for e in requests]


def without_seasons(truth: ground_truth.LibraryTruth) -> ground_truth.LibraryTruth:
    """The metadata of shows and episodes alone (hydrate never writes a season's)."""
    out = ground_truth.LibraryTruth(truth.title, truth.source_id, people=truth.people)
    for name in ("credits", "genres", "images"):
        setattr(out, name, {k: v for k, v in getattr(truth, name).items() if k[0] != "season"})
    return out


def described(e: LoggedRequest) -> str:
    ids = e.query.get("Ids") or e.query.get("ParentId")
    return f"{e.path}?{ids}" if ids else e.path


def batch_ids(paths: list[str]) -> list[str]:
    """The item ids each batch request named, in order."""
    out: list[str] = []
    for path in paths:
        if path.startswith("/library/metadata/"):
            out += path.removeprefix("/library/metadata/").split(",")
        elif "Items?" in path:
            out += path.split("?", 1)[1].split(",")
    return out


def person_requests(server: EmulatedServer) -> list[str]:
    """``GET /Items/{id}`` of any kind: a person's would queue a remote refresh."""
    return [e.path for e in server.log if re.search(r"/Items/[^/]+$", e.path)]


def counts(db: Path) -> dict[str, int]:
    return {
        table: scalar(db, f"SELECT count(*) FROM {table}")
        for table in ("people", "credits", "item_genres", "images", "genres")
    }


# ----------------------------------------------------------------------------- what it stores


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        pytest.param("plex", {}, id="plex"),
        pytest.param("jellyfin", {}, id="jellyfin"),
        pytest.param("emby", {}, id="emby"),
        pytest.param("emby", {"numeric_ids": True, "base_path": "/emby-proxy"}, id="emby-numeric-ids"),
    ],
)
async def test_after_sync_and_hydrate_the_database_equals_the_ground_truth(
    tmp_path: Path, kind: str, options: dict[str, object]
) -> None:
    libraries = [
        TvLibrary("TV Shows", Library(FEATURED)),
        TvLibrary("Kids", Library(LibrarySpec(seed=5, shows=3))),
    ]
    server = make_server(kind, libraries, **options)
    db = tmp_path / "lib.db"
    async with synced(server, db):
        result, _ = await run_hydrate(server, db, episodes=True)
    assert result.missing == 0 and [lib.title for lib in result.libraries] == ["TV Shows", "Kids"]
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        for truth in ground_truth.expected(server):
            # sync's rows, with the shows' ratings, content ratings and studios hydrate set
            ground_truth.assert_library_equal(ground_truth.read_library(conn, truth.source_id), truth)
            # people, credits, genres and images, field by field: first of the items hydrate
            # writes (shows, episodes), then with the seasons' images (sync's listings write them)
            got = ground_truth.read_metadata(conn, truth.source_id)
            ground_truth.assert_metadata_equal(without_seasons(got), without_seasons(truth))
            ground_truth.assert_metadata_equal(got, truth)
    finally:
        conn.close()
    people = ground_truth.person_ids(server)
    assert people and not [e.path for e in server.log if e.path.rsplit("/", 1)[-1] in people]
    assert not person_requests(server)


@pytest.mark.parametrize("kind", KINDS)
async def test_every_show_and_episode_is_hydrated_and_marked(tmp_path: Path, kind: str) -> None:
    server = make_server(kind, Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        result, paths = await run_hydrate(server, db, episodes=True)
    shows = scalar(db, "SELECT count(*) FROM shows")
    episodes = scalar(db, "SELECT count(*) FROM episodes")
    assert (result.shows, result.episodes, result.missing) == (shows, episodes, 0)
    # every item marked with the etag it had when it was hydrated; seasons never
    assert scalar(db, "SELECT count(*) FROM shows WHERE hydrated_etag IS NOT etag") == 0
    assert scalar(db, "SELECT count(*) FROM episodes WHERE hydrated_etag IS NOT etag") == 0
    assert scalar(db, "SELECT count(*) FROM seasons WHERE hydrated_at IS NOT NULL") == 0
    got = read_metadata(db)
    assert all(("show", sid) in got.credits for sid, _ in got.ratings.items()), "a show without a cast"
    kinds = {kind for credits in got.credits.values() for _, kind, *_ in credits}
    assert kinds >= {"actor", "director", "writer"}
    assert result.credits == sum(map(len, got.credits.values()))
    assert result.people == len(got.people) and result.people_pruned == 0
    assert not dangling(db)
    assert not person_requests(server)
    batch = 100 if kind == "plex" else 50
    assert len(paths) == 1 + math.ceil(shows / batch) + math.ceil(episodes / batch), paths[:3]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_second_run_hydrates_nothing(tmp_path: Path, kind: str) -> None:
    server = make_server(kind, Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        await run_hydrate(server, db, episodes=True)
        before = read_metadata(db)
        result, paths = await run_hydrate(server, db, episodes=True)
    assert len(paths) <= 3 and len(paths) == 1, paths  # the identity check alone
    assert (result.shows, result.episodes, result.people, result.credits) == (0, 0, 0, 0)
    assert read_metadata(db) == before


# ----------------------------------------------------------------------------- what it costs


@pytest.mark.parametrize("kind", KINDS)
async def test_request_counts(tmp_path: Path, kind: str) -> None:
    server = make_server(kind, Library(MANY))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        shows, paths = await run_hydrate(server, db)
        again, paths_again = await run_hydrate(server, db)
        show = scalar(db, "SELECT source_id FROM shows ORDER BY id LIMIT 1 OFFSET 7")
        one, paths_one = await run_hydrate(server, db, show=show, episodes=True)
    # the bounds, per library: ceil(shows / 50) + 3 on Plex, ceil(shows / 25) + 3 on Jellyfin
    bound = math.ceil(120 / (50 if kind == "plex" else 25)) + 3
    assert shows.shows == 120 and len(paths) <= bound, paths
    assert len(paths) == 1 + math.ceil(120 / (100 if kind == "plex" else 50))  # measured
    assert again.shows == 0 and len(paths_again) <= 3
    # one show on demand, its 50 episodes with it: identity, the show, its episodes
    assert (one.shows, one.episodes, one.missing) == (1, 50, 0)
    assert len(paths_one) <= 3, paths_one
    assert not person_requests(server)


# ----------------------------------------------------------------------------- incremental


@pytest.mark.parametrize("kind", KINDS)
async def test_only_what_a_sync_changed_is_hydrated_again(tmp_path: Path, kind: str) -> None:
    server = make_server(kind, Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db) as url:
        await run_hydrate(server, db, episodes=True)
        (renamed,) = server.apply_changes("rename", 1, seed=4)
        (updated,) = server.apply_changes("update", 1, seed=4)
        result = await importer.sync(url, db, token=server.token, options=SyncOptions(kind=kind))
        assert result.exit_code == 0
        changed_show = scalar(db, "SELECT source_id FROM shows WHERE hydrated_etag IS NOT etag")
        changed_episodes = scalar(
            db, "SELECT group_concat(source_id) FROM episodes WHERE hydrated_etag IS NOT etag"
        )
        assert changed_show is not None, renamed
        assert changed_episodes is not None and "," not in changed_episodes, updated
        hydrated, paths = await run_hydrate(server, db, episodes=True)
    assert batch_ids(paths) == [changed_show, changed_episodes], paths
    assert (hydrated.shows, hydrated.episodes) == (1, 1)
    assert scalar(db, "SELECT count(*) FROM shows WHERE hydrated_etag IS NOT etag") == 0


async def test_items_the_server_no_longer_has_stay_unmarked(tmp_path: Path) -> None:
    # Plex answers 404 when none of a batch's keys exists: that is not a failure either
    server = make_server("plex", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        server.apply_changes("delete_show", 1, seed=2)  # gone from the server, not yet synced
        result, paths = await run_hydrate(server, db, options=HydrateOptions(batch_size=1))
    assert result.missing == 1 and result.shows == 5 and len(paths) == 7
    assert scalar(db, "SELECT count(*) FROM shows WHERE hydrated_at IS NULL") == 1
    assert [e.status for e in server.log if e.path.startswith("/library/metadata/")].count(404) == 1


async def test_people_nobody_credits_are_pruned(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db) as url:
        await run_hydrate(server, db)
        # a person the server no longer credits: the show's credits are replaced whole
        # when it is hydrated again, and nobody credits them any more
        conn = apsw.Connection(str(db))
        conn.execute(
            "INSERT INTO people (server_id, source_id, name) VALUES (1, 'ghost', 'Ghost');"
            "INSERT INTO credits SELECT p.id, 'show', s.id, 'actor', 'Boo', 99 FROM people p, shows s "
            "WHERE p.source_id = 'ghost' AND s.id = (SELECT min(id) FROM shows);"
            "UPDATE shows SET hydrated_at = NULL WHERE id = (SELECT min(id) FROM shows)"
        )
        conn.close()
        result, paths = await run_hydrate(server, db)
        assert result.shows == 1 and result.people_pruned == 1 and len(paths) == 2
        assert scalar(db, "SELECT count(*) FROM people WHERE source_id = 'ghost'") == 0
        # the people only deleted shows credited go too (with the sync's sweep, or here)
        server.apply_changes("delete_show", 2, seed=3)
        await importer.sync(url, db, token=server.token, options=SyncOptions(kind="jellyfin", full=True))
        await run_hydrate(server, db)
    assert (
        scalar(
            db,
            "SELECT count(*) FROM people p WHERE NOT EXISTS (SELECT 1 FROM credits WHERE person_id = p.id)",
        )
        == 0
    )
    assert not dangling(db)


# ----------------------------------------------------------------------------- one show, now


@pytest.mark.parametrize("kind", KINDS)
async def test_one_show_on_demand_whatever_its_etag(tmp_path: Path, kind: str) -> None:
    server = make_server(kind, Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        await run_hydrate(server, db, episodes=True)
        full = read_metadata(db)
        sid, title = scalar(db, "SELECT source_id || char(9) || title FROM shows ORDER BY id LIMIT 1").split(
            "\t"
        )
        count = scalar(
            db, "SELECT count(*) FROM episodes e JOIN shows s ON s.id = e.show_id WHERE s.source_id = ?", sid
        )
        by_id, paths = await run_hydrate(server, db, show=sid)
        by_title, paths_title = await run_hydrate(server, db, show=title, episodes=True)
    assert (by_id.shows, by_id.episodes) == (1, 0) and len(paths) == 2
    assert (by_title.shows, by_title.episodes, by_title.missing) == (1, count, 0)
    pages = 1 + math.ceil(count / 100) if kind == "plex" or count >= 100 else 2
    assert len(paths_title) == 1 + pages, paths_title
    assert read_metadata(db) == full  # the same answers: nothing moved


async def test_show_value_that_is_an_id_and_a_title_is_the_id(tmp_path: Path) -> None:
    server = make_server("plex", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        first, second = [
            scalar(db, f"SELECT source_id FROM shows ORDER BY id LIMIT 1 OFFSET {i}") for i in (0, 1)
        ]
        conn = apsw.Connection(str(db))
        conn.execute("UPDATE shows SET title = ? WHERE source_id = ?", (first, second))
        conn.close()
        _, paths = await run_hydrate(server, db, show=first)
    assert batch_ids(paths) == [first]


def test_show_matching_several_titles_or_none_exits_2(tmp_path: Path) -> None:
    server = make_server("plex", Library(FEATURED))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        assert cli("sync", url, "--db", str(db), "--quiet", token=server.token).returncode == 0
        conn = apsw.Connection(str(db))
        conn.execute(
            "UPDATE shows SET title = 'Twice' WHERE id IN (SELECT id FROM shows ORDER BY id LIMIT 2)"
        )
        rows = conn.execute("SELECT source_id, year FROM shows ORDER BY id LIMIT 2").fetchall()
        conn.close()
        server.log.clear()
        twice = cli("hydrate", "--db", str(db), "--show", "Twice", token=server.token)
        nothing = cli("hydrate", "--db", str(db), "--show", "No Such Show", token=server.token)
    assert twice.returncode == 2, twice.stderr
    for source_id, year in rows:
        assert re.search(rf"^\s+{source_id}\tTwice\t{year}\tTV Shows$", twice.stderr, re.M), twice.stderr
    assert nothing.returncode == 2 and "No Such Show" in nothing.stderr
    assert len(server.log) == 0, "a wrong --show costs no request"


# ----------------------------------------------------------------------------- stop and resume


@pytest.mark.parametrize(
    ("kind", "sig", "code"),
    [
        ("plex", signal.SIGKILL, -9),
        ("jellyfin", signal.SIGKILL, -9),
        ("plex", signal.SIGINT, 130),
        ("emby", signal.SIGTERM, 143),
    ],
)
def test_stopped_then_rerun_ends_equal_to_an_uninterrupted_run(
    tmp_path: Path, kind: str, sig: signal.Signals, code: int
) -> None:
    server = make_server(kind, Library(FEATURED))
    db, reference = tmp_path / "lib.db", tmp_path / "reference.db"
    with server.running_in_thread() as url:
        assert cli("sync", url, "--db", str(db), "--quiet", token=server.token).returncode == 0
        for suffix in ("", "-wal"):
            if Path(f"{db}{suffix}").exists():
                shutil.copy(f"{db}{suffix}", f"{reference}{suffix}")
        assert (
            cli("hydrate", "--db", str(reference), "--episodes", "--quiet", token=server.token).returncode
            == 0
        )
        server.controls.latency_ms = 20  # ~800 requests of 2 items: about 20 s, stopped long before
        proc = start_runner(url, db, server.token, 2, "--episodes")
        deadline = time.monotonic() + 30
        while (scalar(db, "SELECT count(*) FROM episodes WHERE hydrated_at IS NOT NULL") or 0) < 20:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        os.killpg(proc.pid, sig) if sig == signal.SIGKILL else os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == code, err
        if sig != signal.SIGKILL:
            assert "run the same command again" in err
        kept = scalar(db, "SELECT count(*) FROM episodes WHERE hydrated_at IS NOT NULL")
        assert 20 <= kept < scalar(db, "SELECT count(*) FROM episodes")
        assert not dangling(db)
        server.controls.latency_ms = 0
        server.log.clear()
        rerun = start_runner(url, db, server.token, 2, "--episodes")
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
    # the rerun fetched only what was not committed (2 items a request) and ended equal
    assert len([e for e in server.log if "metadata/" in e.path or e.path.endswith("/Items")]) <= (
        math.ceil((scalar(db, "SELECT count(*) FROM episodes") - kept + 6) / 2) + 1
    )
    assert read_metadata(db) == read_metadata(reference)
    assert counts(db) == counts(reference)
    assert not dangling(db)


# ----------------------------------------------------------------------------- a server that misbehaves


async def test_retry_after_is_honoured_and_a_mangled_answer_fetched_again(tmp_path: Path) -> None:
    server = make_server("plex", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        server.controls.faults = FaultPlan([
            Fault("status", status=503, retry_after=1, path="/library/metadata/", requests=[1]),
            Fault("malformed_json", path="/library/metadata/", requests=[3]),
        ])  # fmt: skip
        started = time.monotonic()
        result, paths = await run_hydrate(server, db, options=HydrateOptions(batch_size=2))
        took = time.monotonic() - started
    assert result.shows == 6 and result.missing == 0
    # 3 batches, plus the 503 and the mangled answer asked again
    assert len(paths) == 1 + 3 + 2, paths
    assert took >= 1.0, "waited the Retry-After"
    statuses = [e.status for e in server.log if e.path.startswith("/library/metadata/")]
    assert statuses[0] == 503 and statuses.count(200) == 4


def test_retries_used_up_exit_75_and_keep_what_was_committed(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(FEATURED))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        assert cli("sync", url, "--db", str(db), "--quiet", token=server.token).returncode == 0
        # the first batch is answered, then the server keeps failing
        server.controls.faults = FaultPlan(
            [Fault("status", status=502, path="/Items$", requests=range(2, 99))]
        )
        runner = start_runner(url, db, server.token, 2, "--attempts=3")
        _, err = runner.communicate(timeout=120)
    assert runner.returncode == 75, err
    assert "HTTP 502" in err and "try again later" in err
    assert scalar(db, "SELECT count(*) FROM shows WHERE hydrated_at IS NOT NULL") == 2
    assert [e.status for e in server.log][-3:] == [502, 502, 502]


async def test_an_unreachable_server_is_a_transient_error(tmp_path: Path) -> None:
    server = make_server("plex", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        pass
    with pytest.raises(TransportError) as raised:
        await importer.hydrate(db, token=server.token, options=HydrateOptions(retry=RetryPolicy(attempts=2)))
    assert raised.value.exit_code == 75 and "check that the server is running" in str(raised.value)


# ----------------------------------------------------------------------------- refusals


def test_a_different_server_at_the_url_exits_2_naming_both_ids(tmp_path: Path) -> None:
    synced_from = make_server("plex", Library(FEATURED))
    other = make_server("plex", Library(LibrarySpec(seed=3, shows=2)), seed=2)
    db = tmp_path / "lib.db"
    with synced_from.running_in_thread() as url:
        assert cli("sync", url, "--db", str(db), "--quiet", token=synced_from.token).returncode == 0
    held = scalar(db, "SELECT machine_id FROM servers")
    with other.running_in_thread() as other_url:
        out = cli("hydrate", other_url, "--db", str(db), token=other.token)
    assert out.returncode == 2, out.stderr
    assert held != other.machine_identifier  # type: ignore[attr-defined]
    assert held in out.stderr and other.machine_identifier in out.stderr  # type: ignore[attr-defined]
    assert [e.path for e in other.log] == ["/identity"], "refused after one identity request"
    assert scalar(db, "SELECT count(*) FROM shows WHERE hydrated_at IS NOT NULL") == 0


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_the_server_at_a_new_url_is_recognised_by_its_id(tmp_path: Path, kind: str) -> None:
    server = make_server(kind, Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db) as url:
        moved = url.replace("127.0.0.1", "localhost")
        result, paths = await run_hydrate(server, db, url=moved)
    assert result.shows == 6 and len(paths) == 2
    assert scalar(db, "SELECT base_url FROM servers") == url  # hydrate does not move the server


async def test_a_database_of_several_servers_hydrates_each_or_the_one_asked_for(tmp_path: Path) -> None:
    # one token for both: a hydration of several servers uses one token
    token = "one-token-for-both"
    plex = make_server(
        "plex", [TvLibrary("TV", Library(FEATURED)), TvLibrary("Kids", Library(MINI))], token=token
    )
    jelly = make_server("jellyfin", Library(MINI), token=token)
    db = tmp_path / "lib.db"
    plex_url, jelly_url = await plex.start(), await jelly.start()
    try:
        for server, url in ((plex, plex_url), (jelly, jelly_url)):
            await importer.sync(url, db, token=server.token, options=SyncOptions(kind=server.kind))
        plex.log.clear()
        jelly.log.clear()
        # --kind: one of them, at the URL it was synced from; --library: one of its libraries
        kids = await importer.hydrate(
            db, token=token, options=HydrateOptions(kind="plex", libraries=("kids",))
        )
        assert [(lib.kind, lib.title, lib.shows) for lib in kids.libraries] == [("plex", "Kids", 3)]
        assert len(jelly.log) == 0 and len(plex.log) == 2
        # a URL: the server that answers there
        one = await importer.hydrate(db, token=token, url=jelly_url)
        assert [(lib.kind, lib.shows) for lib in one.libraries] == [("jellyfin", 3)]
        # neither: each server in turn, at the URL it was synced from
        both = await importer.hydrate(db, token=token, episodes=True)
        assert [(lib.kind, lib.title) for lib in both.libraries] == [
            ("plex", "TV"), ("plex", "Kids"), ("jellyfin", "TV Shows")
        ]  # fmt: skip
        assert both.shows == 6 and both.episodes == scalar(db, "SELECT count(*) FROM episodes")
    finally:
        await plex.stop()
        await jelly.stop()


async def test_a_held_lock_is_locked_error_and_exit_4(tmp_path: Path) -> None:
    server = make_server("plex", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        with DatabaseLock(str(db)):
            with pytest.raises(LockedError):
                await importer.hydrate(db, token=server.token)
            out = cli("hydrate", "--db", str(db), token=server.token)
    assert out.returncode == 4 and "another importer run" in out.stderr
    assert len(server.log) == 0


async def test_a_database_never_synced_is_a_usage_error(tmp_path: Path) -> None:
    out = cli("hydrate", "--db", str(tmp_path / "missing.db"), token="t")
    assert out.returncode == 2 and "importer sync" in out.stderr
    with pytest.raises(UnusableDatabase):
        await importer.hydrate(tmp_path / "missing.db", token="t")
    assert list(tmp_path.iterdir()) == [], "nothing created: no database, no lock file"


def test_the_token_never_shows(tmp_path: Path) -> None:
    secret = "s3cr3t-" + "7" * 20
    server = make_server("plex", Library(FEATURED), token=secret)
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        runs = [
            cli("sync", url, "--db", str(db), "--hydrate", "--progress", "plain", token=secret),
            cli("hydrate", "--db", str(db), "--episodes", "--progress", "json", token=secret),
        ]
        show = scalar(db, "SELECT source_id FROM shows LIMIT 1")
        runs += [
            # a refused token: the error names the URL, never the token
            cli("hydrate", url, "--db", str(db), "--show", show, token="wrong-" + secret[::-1]),
            cli("hydrate", secret, "--db", str(db), token=None),  # a token where the URL goes
            cli("hydrate", "--db", str(db), "--token-file", str(token_file(db, secret)), "--show", "x"),
        ]
    assert [r.returncode for r in runs] == [0, 0, 1, 2, 2], [r.stderr for r in runs]
    for run in runs:
        assert secret not in run.stdout + run.stderr and secret[::-1] not in run.stderr
    conn = apsw.Connection(str(db))
    dump = "\n".join(map(str, conn.execute("SELECT * FROM people UNION ALL SELECT * FROM images")))
    conn.close()
    assert dump and secret not in dump


# ----------------------------------------------------------------------------- options


def test_sync_hydrate_hydrates_the_shows_after_the_sync(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(FEATURED))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        out = cli("sync", url, "--db", str(db), "--hydrate", "--progress", "json", token=server.token)
    assert out.returncode == 0, out.stderr
    sync_line, hydrate_line = out.stdout.strip().splitlines()
    assert sync_line.startswith('{"kind":"jellyfin"')
    assert '"command":"hydrate"' in hydrate_line and '"shows":6' in hydrate_line
    assert scalar(db, "SELECT count(*) FROM shows WHERE hydrated_at IS NOT NULL") == 6
    assert scalar(db, "SELECT count(*) FROM episodes WHERE hydrated_at IS NOT NULL") == 0


def test_a_large_jellyfin_episodes_run_says_what_it_will_cost(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(FEATURED))
    db = tmp_path / "lib.db"
    unmark = "UPDATE episodes SET hydrated_at = NULL"
    with server.running_in_thread() as url:
        assert cli("sync", url, "--db", str(db), "--quiet", token=server.token).returncode == 0
        as_json = cli("hydrate", "--db", str(db), "--episodes", "--progress", "json", token=server.token)
        apsw.Connection(str(db)).execute(unmark)
        plain = cli("hydrate", "--db", str(db), "--episodes", token=server.token)
        apsw.Connection(str(db)).execute(unmark)
        quiet = cli("hydrate", "--db", str(db), "--episodes", "--quiet", token=server.token)
    episodes = scalar(db, "SELECT count(*) FROM episodes")
    assert episodes >= 200
    (line,) = [x for x in plain.stderr.splitlines() if "server time" in x]
    assert f"{episodes:,} items" in line and f"{math.ceil(episodes / 50):,} requests" in line
    assert "10.10.7" in line and "People" in line
    assert plain.stdout.startswith("hydrated jellyfin")
    # among JSON lines, a JSON line
    events = [json.loads(x) for x in as_json.stderr.splitlines()]
    (notice,) = [e for e in events if e["event"] == "notice"]
    assert notice["message"] == line
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout == ""


async def test_rate_caps_requests_per_second(tmp_path: Path) -> None:
    server = make_server("plex", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db):
        await run_hydrate(server, db, options=HydrateOptions(batch_size=1, rate=20))
    starts = [e.started for e in server.log if e.path.startswith("/library/metadata/")]
    assert len(starts) == 6
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.045, gaps


async def test_concurrency_keeps_several_batches_in_flight(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(FEATURED), controls=Controls(latency_ms=50))
    db, serial = tmp_path / "lib.db", tmp_path / "serial.db"
    async with synced(server, db) as url:
        await importer.sync(url, serial, token=server.token, options=SyncOptions(kind="jellyfin"))
        server.log.clear()
        await run_hydrate(server, serial, episodes=True)
        alone = overlap(server.log)
        server.log.clear()
        await run_hydrate(server, db, episodes=True, options=HydrateOptions(concurrency=4))
        together = overlap(server.log)
    assert alone == 1 and together >= 3, (alone, together)
    assert read_metadata(db) == read_metadata(serial)


def overlap(log: Iterable[LoggedRequest]) -> int:
    """The most requests the server was answering at once."""
    spans = [(e.started, e.started + e.seconds) for e in log]
    return max(sum(1 for a, b in spans if a <= start < b) for start, _ in spans)


# ----------------------------------------------------------------------------- a real client agrees
Credits = dict[tuple[str, str, str], list[tuple[str, str, str | None]]]


def _plexapi_credits(url: str, token: str) -> tuple[Credits, dict[tuple[str, str], list[str]]]:
    """What python-plexapi reads after ``reload()`` (the detail endpoint), per (item type,
    ratingKey, kind): (tag id, name, role) in the server's order; and the shows' genres."""
    from plexapi import media
    from plexapi.server import PlexServer as PlexApiServer

    credits: Credits = {}
    genres: dict[tuple[str, str], list[str]] = {}

    def add(item_type: str, key: object, kind: str, tags: list[Any], cast: bool) -> None:
        if tags:
            credits[item_type, str(key), kind] = [(str(t.id), t.tag, t.role if cast else None) for t in tags]

    plex = PlexApiServer(url, token)  # type: ignore[no-untyped-call]
    for section in plex.library.sections():
        for show in section.all():
            show.reload()
            add("show", show.ratingKey, "actor", show.roles, True)
            # plexapi's Show has no ``producers``: its own Producer tags, read as Movie does
            add("show", show.ratingKey, "producer", show.findItems(show._data, media.Producer), False)
            genres["show", str(show.ratingKey)] = [g.tag for g in show.genres]
            for ep in show.episodes():
                ep.reload()
                add("episode", ep.ratingKey, "guest_star", ep.roles, True)
                add("episode", ep.ratingKey, "director", ep.directors, False)
                add("episode", ep.ratingKey, "writer", ep.writers, False)
    return credits, {k: v for k, v in genres.items() if v}


def _stored_credits(db: Path) -> tuple[Credits, dict[tuple[str, str], list[str]]]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        item = (
            "CASE c.item_type WHEN 'show' THEN (SELECT source_id FROM shows WHERE id = c.item_id) "
            "ELSE (SELECT source_id FROM episodes WHERE id = c.item_id) END"
        )
        credits: Credits = {}
        for item_type, sid, kind, pid, name, role in conn.execute(
            f"SELECT c.item_type, {item}, c.kind, p.source_id, p.name, c.role FROM credits c "
            "JOIN people p ON p.id = c.person_id ORDER BY c.item_type, c.item_id, c.kind, c.position"
        ):
            credits.setdefault((item_type, sid, kind), []).append((pid, name, role))
        genres: dict[tuple[str, str], list[str]] = {}
        for sid, name in conn.execute(
            "SELECT s.source_id, g.name FROM item_genres ig JOIN genres g ON g.id = ig.genre_id "
            "JOIN shows s ON ig.item_type = 'show' AND s.id = ig.item_id ORDER BY s.id, ig.position"
        ):
            genres.setdefault(("show", sid), []).append(name)
        return credits, genres
    finally:
        conn.close()


async def test_python_plexapi_reads_what_hydrate_stored(tmp_path: Path) -> None:
    server = make_server("plex", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db) as url:
        await run_hydrate(server, db, episodes=True)
        # plexapi blocks: it runs on a thread while this loop serves it
        read = await asyncio.to_thread(_plexapi_credits, url, server.token)
    stored = _stored_credits(db)
    kinds = {kind for _, _, kind in read[0]}
    assert kinds == {"actor", "guest_star", "director", "writer", "producer"} and read[1]
    assert read == stored


async def test_status_counts_what_is_hydrated_as_of_its_etag(tmp_path: Path) -> None:
    from importer.store import queries

    server = make_server("jellyfin", Library(FEATURED))
    db = tmp_path / "lib.db"
    async with synced(server, db) as url:
        assert "hydrated 0 of 6 shows" in queries.status_report(db)
        await run_hydrate(server, db, episodes=True)
        episodes = scalar(db, "SELECT count(*) FROM episodes")
        assert f"hydrated 6 of 6 shows, {episodes:,} of {episodes:,} episodes" in queries.status_report(db)
        server.apply_changes("rename", 1, seed=4)  # a show changed: hydrated no more, once synced
        result = await importer.sync(url, db, token=server.token, options=SyncOptions(kind="jellyfin"))
        assert result.exit_code == 0
    assert "hydrated 5 of 6 shows" in queries.status_report(db)
