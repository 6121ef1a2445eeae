"""Full imports over real HTTP on loopback, with real worker processes and a real SQLite file:
the database equals the generator's ground truth field by field, in few requests.

Every test runs twice: on the compiled build and on the pure-Python twin (``implementation``
in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import apsw
import pytest
from aiohttp import web
from ground_truth import assert_library_equal, expected, read_library, read_metadata
from processes import children_of

import importer
from importer.emulator import Controls, EmulatedServer, Library, LibrarySpec, make_server
from importer.emulator.plex import PlexServer
from importer.emulator.server import TvLibrary
from importer.pipeline import SyncOptions, SyncResult

pytestmark = pytest.mark.usefixtures("implementation")

#: 6 shows with every odd shape: hidden seasons, legacy agent, doubles, virtual, multi-part, …
FEATURED = LibrarySpec(seed=149, shows=6)
SEED_LIBRARY = LibrarySpec(shows=100, shape="seed")


@asynccontextmanager
async def serving(server: EmulatedServer) -> AsyncIterator[str]:
    url = await server.start()
    try:
        yield url
    finally:
        await server.stop()


async def run_sync(server: EmulatedServer, db: Path, **options: Any) -> SyncResult:
    async with serving(server) as url:
        return await importer.sync(url, db, token=server.token, options=SyncOptions(**options))


def check_database(server: EmulatedServer, db: Path) -> None:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert conn.execute("PRAGMA integrity_check").get == "ok"
        for truth in expected(server):
            assert_library_equal(read_library(conn, truth.source_id), truth)
            # a sync alone stores the images of shows and seasons (the listings carry
            # them whole) and no cast, crew or genres (hydrate's part)
            got = read_metadata(conn, truth.source_id)
            assert got.images == {k: v for k, v in truth.images.items() if k[0] in ("show", "season")}
            assert not got.credits and not got.genres and not got.people
    finally:
        conn.close()


def pages_requested(server: EmulatedServer) -> int:
    return sum(1 for e in server.log if e.path.endswith("/all") or e.path.endswith("/Items"))


@pytest.mark.parametrize(
    ("kind", "options", "controls"),
    [
        pytest.param("plex", {}, {}, id="plex"),
        pytest.param("plex", {"page_size": 237}, {"page_cap": 100}, id="plex-capped-pages"),
        pytest.param("jellyfin", {}, {}, id="jellyfin"),
        pytest.param("jellyfin", {"page_size": 173, "concurrency": 2}, {}, id="jellyfin-odd-pages"),
        pytest.param("emby", {"kind": "auto"}, {}, id="emby-detected"),
    ],
)
async def test_database_equals_the_library(
    tmp_path: Path, kind: str, options: dict[str, Any], controls: dict[str, Any]
) -> None:
    server = make_server(kind, Library(FEATURED), controls=Controls(**controls))
    result = await run_sync(server, tmp_path / "lib.db", **{"kind": kind, **options})
    assert [lib.status for lib in result.libraries] == ["done"]
    assert result.libraries[0].complete
    assert result.libraries[0].unlinked == 0
    assert result.requests == len(server.log)  # detection included
    check_database(server, tmp_path / "lib.db")
    if controls.get("page_cap"):  # a capped server made the importer ask for the rest
        assert any(
            int(e.query.get("X-Plex-Container-Size", 0)) < 237 for e in server.log if e.path.endswith("/all")
        )


async def test_several_libraries_and_a_base_path(tmp_path: Path) -> None:
    libraries = [
        TvLibrary("TV Shows", Library(FEATURED)),
        TvLibrary("Animé", Library(LibrarySpec(seed=5, shows=3))),
    ]
    server = make_server("jellyfin", libraries, base_path="/jellyfin")
    result = await run_sync(server, tmp_path / "lib.db", kind="auto")
    assert [lib.title for lib in result.libraries] == ["TV Shows", "Animé"]
    assert result.exit_code == 0
    check_database(server, tmp_path / "lib.db")


async def test_library_filter(tmp_path: Path) -> None:
    libraries = [
        TvLibrary("TV Shows", Library(FEATURED)),
        TvLibrary("Kids", Library(LibrarySpec(seed=5, shows=2))),
    ]
    server = make_server("plex", libraries)
    result = await run_sync(server, tmp_path / "lib.db", kind="plex", libraries=("kids",))
    assert [lib.title for lib in result.libraries] == ["Kids"]
    conn = apsw.Connection(str(tmp_path / "lib.db"))
    assert [r[0] for r in conn.execute("SELECT title FROM libraries")] == ["Kids"]


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_seed_library_takes_few_requests(tmp_path: Path, kind: str) -> None:
    server = make_server(kind, Library(SEED_LIBRARY))
    result = await run_sync(server, tmp_path / "lib.db", kind=kind)
    paths = [e.path for e in server.log]
    # No per-show or per-season request, ever.
    assert not [p for p in paths if "/metadata/" in p or "/Shows/" in p or "/Seasons" in p]
    if kind == "plex":
        assert len(paths) <= 12, paths  # the seed's client: 701
    else:  # discovery (2) + one count probe per stream + the pages
        pages = sum(-(-n // 500) for n in (100, 500, 5000))
        assert len(paths) <= 2 + 3 + pages, paths
    assert result.requests == len(paths)
    assert result.libraries[0].totals == {"shows": 100, "seasons": 500, "episodes": 5000}
    # Transactions grow with pages, not rows: 5,600 items in far fewer commits than pages.
    assert 1 <= result.commits <= pages_requested(server)
    check_database(server, tmp_path / "lib.db")


async def test_commits_grow_with_pages_not_rows(tmp_path: Path) -> None:
    small = make_server("plex", Library(LibrarySpec(seed=2, episodes=2_000)))
    large = make_server("plex", Library(LibrarySpec(seed=2, episodes=40_000)))
    r_small = await run_sync(small, tmp_path / "small.db", kind="plex")
    r_large = await run_sync(large, tmp_path / "large.db", kind="plex")
    assert r_large.commits <= pages_requested(large)
    assert r_large.commits < 40_000 / 1000  # far fewer than one per 1,000 rows
    assert r_small.commits <= pages_requested(small)


async def test_second_full_sync_rewrites_nothing(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(FEATURED))
    db = tmp_path / "lib.db"
    first = await run_sync(server, db, kind="jellyfin")
    before = dump(db)
    second = await run_sync(server, db, kind="jellyfin", full=True)
    assert first.libraries[0].written > 0 and first.libraries[0].unchanged == 0
    assert second.libraries[0].written == 0
    assert second.libraries[0].unchanged == first.libraries[0].written
    assert dump(db) == before


def dump(db: Path) -> dict[str, list[Any]]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    tables = ("libraries", "shows", "seasons", "episodes", "media_files")
    out = {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in tables}
    # the emulator listens on a new port each time: base_url may change, nothing else
    out["servers"] = conn.execute("SELECT id, kind, machine_id, name FROM servers").fetchall()
    return out


READER = """
import sys, time, apsw
seen = set()
deadline = time.time() + 60
while time.time() < deadline:
    try:
        conn = apsw.Connection(sys.argv[1], flags=apsw.SQLITE_OPEN_READONLY)
        seen.add(conn.execute("SELECT count(*) FROM episodes").get)
        conn.close()
    except apsw.Error:  # the file or its schema is not there yet
        pass
    if int(sys.argv[2]) in seen:
        break
    time.sleep(0.02)
print(sorted(seen))
"""


async def test_a_second_process_reads_while_the_import_runs(tmp_path: Path) -> None:
    server = make_server(
        "plex", Library(LibrarySpec(seed=4, episodes=6_000)), controls=Controls(latency_ms=40)
    )
    db = tmp_path / "lib.db"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db), "6000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Small transactions, so that there is something to see before the end.
        result = await run_sync(
            server, db, kind="plex", page_size=500, concurrency=1, writer={"commit_rows": 1500}
        )
        out, err = reader.communicate(timeout=60)
    finally:
        reader.kill()
    assert result.exit_code == 0
    assert out, err
    seen = json.loads(out)
    assert 6000 in seen, err
    assert any(0 < n < 6000 for n in seen), f"the reader never saw the import in progress: {seen}"


# ----------------------------------------------------------------------------- the command line
def cli(*args: str, token: str | None = None, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "IMPORTER_TOKEN"}
    if token is not None:
        env["IMPORTER_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "importer", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def test_cli_json_progress_and_summary(tmp_path: Path) -> None:
    server = make_server("plex", Library(LibrarySpec(seed=9, shows=20)))
    with server.running_in_thread() as url:
        out = cli("sync", url, "--db", str(tmp_path / "lib.db"), "--progress", "json", token=server.token)
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stderr.splitlines()]
    assert events[-1]["event"] == "done"
    assert (
        events[-1]["overall_done"]
        == events[-1]["overall_total"]
        == server.libraries[0].library.episode_total(importer_view("plex"))
        + len(server.libraries[0].library.shows)
        + server.libraries[0].library.season_total()
    )
    summary = json.loads(out.stdout)
    assert summary["libraries"][0]["status"] == "done"
    assert server.token not in out.stdout + out.stderr


def importer_view(kind: str) -> Any:
    from importer.emulator.library import View

    return View.PLEX if kind == "plex" else View.JELLYFIN_PRESENT


def test_cli_quiet_prints_nothing_and_status_reports(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(LibrarySpec(seed=9, shows=5)))
    token_file = tmp_path / "token"
    token_file.write_text(server.token + "\n")
    token_file.chmod(0o600)
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        out = cli("sync", url, "--db", str(db), "--quiet", "--token-file", str(token_file))
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    status = cli("status", "--db", str(db))
    assert status.returncode == 0
    episodes = server.libraries[0].library.episode_total(importer_view("jellyfin"))
    assert f"{episodes:,} episodes" in status.stdout


def test_cli_errors(tmp_path: Path) -> None:
    server = make_server("plex", Library(LibrarySpec(seed=9, shows=2)))
    db = str(tmp_path / "lib.db")
    with server.running_in_thread() as url:
        no_token = cli("sync", url, "--db", db)
        wrong = cli("sync", url, "--db", db, token="not-the-token-123")
        readable = tmp_path / "token"
        readable.write_text(server.token)
        readable.chmod(0o644)
        warned = cli("sync", url, "--db", db, "--token-file", str(readable), "--quiet")
    assert no_token.returncode == 2 and "IMPORTER_TOKEN" in no_token.stderr
    assert wrong.returncode == 1 and "token" in wrong.stderr.lower()
    assert "not-the-token-123" not in wrong.stdout + wrong.stderr
    assert warned.returncode == 0 and "chmod 600" in warned.stderr
    # Nothing listens on port 9 of loopback: a temporary failure, resumable.
    refused = cli("sync", "http://127.0.0.1:9", "--db", db, token="x")
    assert refused.returncode == 75, refused.stderr
    usage = cli("sync", "--db", db)
    assert usage.returncode == 2


def test_demo_command(tmp_path: Path) -> None:
    out = cli("demo", "--db", str(tmp_path / "demo.db"), "--shows", "10", "--progress", "none", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "requests" in out.stdout and "SELECT" in out.stdout
    conn = apsw.Connection(str(tmp_path / "demo.db"))
    assert conn.execute("SELECT count(*) FROM shows").get == 10
    assert conn.execute("SELECT count(*) FROM episodes WHERE show_id IS NULL OR season_id IS NULL").get == 0
    # and the shows hydrated: the query the demo suggests for a cast has rows to show
    assert conn.execute("SELECT count(*) FROM shows WHERE hydrated_at IS NULL").get == 0
    assert conn.execute("SELECT count(*) FROM credits WHERE item_type = 'show'").get > 0
    assert "hydrated" in out.stdout


def child_pids() -> set[int]:
    return children_of(os.getpid())


async def test_workers_do_not_outlive_the_run(tmp_path: Path, implementation: str) -> None:
    before = child_pids()
    server = make_server("plex", Library(LibrarySpec(seed=9, shows=3)))
    result = await run_sync(server, tmp_path / "lib.db", kind="plex")
    assert result.exit_code == 0
    assert {"writer"} <= set(result.peak_rss_kb) and any(k.startswith("decoder") for k in result.peak_rss_kb)
    # each worker says which hot path it ran: the one the environment chose
    expected_impl = {"compiled": "c", "python": "python"}[implementation]
    assert set(result.implementations) == {"writer", "decoder"}
    assert set(result.implementations.values()) == {expected_impl}
    assert child_pids() - before == set()


HOST_SCRIPT = """
import asyncio, sys
import importer
from importer.emulator import LibrarySpec, make_server

server = make_server("jellyfin", LibrarySpec(seed=3, shows=2))
with server.running_in_thread() as url:
    ticks = 0

    async def host() -> None:
        global ticks
        task = asyncio.ensure_future(importer.sync(url, sys.argv[1], token=server.token))
        while not task.done():  # the host's own work keeps running during the import
            ticks += 1
            await asyncio.sleep(0.005)
        print(task.result().libraries[0].status, ticks > 5)

    asyncio.run(host())
"""


def test_library_api_in_a_host_script_without_a_main_guard(tmp_path: Path) -> None:
    # spawn re-imports a parent's __main__ in each worker; the importer must not let it.
    script = tmp_path / "host.py"
    script.write_text(HOST_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "lib.db")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["done", "True"]


async def test_a_later_run_remembers_the_server_kind(tmp_path: Path) -> None:
    server = make_server("plex", Library(LibrarySpec(seed=9, shows=2)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        await importer.sync(url, db, token=server.token)
        first = [e.path for e in server.log]
        server.log.clear()
        await importer.sync(url, db, token=server.token, options=importer.SyncOptions(full=True))
        second = [e.path for e in server.log]
    assert "/identity" in first  # detection asked the server what it is
    assert "/identity" not in second and "/System/Info/Public" not in second
    assert len(second) == len(first) - 3  # the three probes, sent at once


class DriftingPlex(PlexServer):
    """Overstates the episode total of its first ``drifts`` episode listings by one, as a
    library does when an episode is added and another deleted while it is being read."""

    def __init__(self, *args: Any, drifts: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drifts = drifts

    def make_app(self) -> web.Application:
        app = super().make_app()
        app.middlewares.insert(0, self._drift)
        return app

    @web.middleware
    async def _drift(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        first_episode_page = (
            request.query.get("type") == "4" and request.query.get("X-Plex-Container-Start") == "0"
        )
        if first_episode_page and self.drifts > 0 and isinstance(response, web.Response) and response.body:
            self.drifts -= 1
            page = json.loads(bytes(response.body))  # type: ignore[arg-type]
            page["MediaContainer"]["totalSize"] += 1
            response.body = json.dumps(page).encode()
        return response


async def test_a_drifted_listing_is_read_again(tmp_path: Path) -> None:
    server = DriftingPlex(Library(FEATURED), drifts=1)
    result = await run_sync(server, tmp_path / "lib.db", kind="plex")
    assert result.libraries[0].status == "done" and result.exit_code == 0
    first_pages = [
        e for e in server.log if e.query.get("type") == "4" and e.query.get("X-Plex-Container-Start") == "0"
    ]
    assert len(first_pages) == 2, "the episode stream was listed twice"
    check_database(server, tmp_path / "lib.db")


async def test_a_library_that_keeps_changing_is_kept_but_incomplete(tmp_path: Path) -> None:
    server = DriftingPlex(Library(FEATURED), drifts=99)
    result = await run_sync(server, tmp_path / "lib.db", kind="plex")
    lib = result.libraries[0]
    assert (lib.status, lib.complete, result.exit_code) == ("incomplete", False, 75)
    assert "changing" in (lib.reason or "")
    check_database(server, tmp_path / "lib.db")  # every row is there all the same
    conn = apsw.Connection(str(tmp_path / "lib.db"))
    assert conn.execute("SELECT status FROM runs").get == "incomplete"


async def test_a_token_in_the_url_is_not_stored(tmp_path: Path) -> None:
    server = make_server("jellyfin", Library(LibrarySpec(seed=9, shows=2)))
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        # a user pasting a URL with credentials in it: they serve, and are stored nowhere
        noisy = url.replace("http://", "http://user:hunter2@") + f"?api_key={server.token}"
        with pytest.raises(importer.errors.ConfigError) as raised:
            await importer.sync(noisy, db, token=server.token, options=SyncOptions(kind="jellyfin"))
        assert server.token not in str(raised.value) and "hunter2" not in str(raised.value)
        assert "token goes in --token-file" in str(raised.value)
        result = await importer.sync(url, db, token=server.token, options=SyncOptions(kind="jellyfin"))
    assert result.exit_code == 0
    for path in tmp_path.iterdir():
        data = path.read_bytes()
        assert server.token.encode() not in data and b"hunter2" not in data, path


async def test_a_finished_run_leaves_no_listing_behind(tmp_path: Path) -> None:
    server = make_server("plex", Library(LibrarySpec(seed=9, shows=3)))
    await run_sync(server, tmp_path / "lib.db", kind="plex")
    conn = apsw.Connection(str(tmp_path / "lib.db"))
    assert conn.execute("SELECT count(*) FROM run_listing").get == 0


# ----------------------------------------------------------------------------- the implementation
#: a line of /proc/<pid>/maps that maps the compiled build, wherever it was imported from
COMPILED_BUILD = re.compile(r"/importer/_speedups\.[^/\s]*\.so$", re.MULTILINE)


def maps_the_compiled_build(pid: int) -> bool | None:
    """Whether process ``pid`` has loaded ``importer._speedups`` (None: it has ended)."""
    try:
        return COMPILED_BUILD.search(Path(f"/proc/{pid}/maps").read_text()) is not None
    except OSError:
        return None


async def test_the_workers_run_the_implementation_under_test(tmp_path: Path, implementation: str) -> None:
    """The ``implementation`` parameter reaches the processes that decode.

    Seen from outside, as nothing in a run reports it yet: every worker of a slow run is
    looked at (its /proc/<pid>/maps) as long as it lives, from the moment the first pages
    are in (so the decoder has imported its hot path). The compiled build is mapped in a
    worker exactly when the parameter says "compiled".
    """
    server = make_server(
        "jellyfin", Library(LibrarySpec(seed=4, episodes=5_000)), controls=Controls(latency_ms=50)
    )
    before = child_pids()
    decoding = threading.Event()  # set from whichever thread reports progress
    compiled: dict[int, bool] = {}  # worker pid -> the compiled build was seen mapped

    def progress(event: Any) -> None:
        if event.overall_done > 0:
            decoding.set()

    async with serving(server) as url:
        options = SyncOptions(kind="jellyfin", page_size=200, concurrency=1)
        run = asyncio.ensure_future(
            importer.sync(url, tmp_path / "lib.db", token=server.token, options=options, progress=progress)
        )
        looks_while_decoding = 0
        while not run.done():
            if decoding.is_set():
                for pid in child_pids() - before:
                    mapped = maps_the_compiled_build(pid)
                    if mapped is not None:
                        compiled[pid] = compiled.get(pid, False) or mapped
                looks_while_decoding += 1
            await asyncio.sleep(0.02)
        result = await run
    assert result.exit_code == 0
    assert looks_while_decoding >= 5 and compiled, "the run ended before its workers could be looked at"
    if implementation == "compiled":
        assert any(compiled.values()), f"no worker loaded importer._speedups: {compiled}"
    else:
        assert not any(compiled.values()), f"IMPORTER_PURE_PYTHON=1, yet a worker loaded it: {compiled}"
    check_database(server, tmp_path / "lib.db")


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_a_version_2_database_gets_its_ratings_and_art_at_the_next_full_run(
    tmp_path: Path, kind: str
) -> None:
    from test_store import _as_version_2

    from importer.store import connect

    server = make_server(kind, Library(FEATURED))
    db = tmp_path / "lib.db"
    await run_sync(server, db, kind=kind)
    old = connect(db)
    _as_version_2(old)  # as the last release left it: no images, no ratings
    old.close()
    # Jellyfin's etags are the server's: unchanged, the shows would never be written again
    result = await run_sync(server, db, kind=kind, full=True)
    assert result.exit_code == 0
    check_database(server, db)
