"""``importer watch``: changes reach the database through the servers' change feeds, over
real sockets, and the database ends equal to what a full sync gives, whatever happens to
the feed (drops, restarts, duplicated and reordered notices, an item already gone).

Most tests run the watch in this test's event loop, with the emulator on the same loop
(``serving``); the command line's tests run it as a process, with real signals."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_incremental import count_rows
from test_sync import check_database, serving

import importer
from importer import SyncOptions
from importer.emulator import Controls, Library, LibrarySpec, make_server
from importer.emulator.server import EmulatedServer
from importer.errors import AuthError, Interrupted
from importer.watching import AnyEvent, Batch, CaughtUp, Notice, Ready, Watcher, WatchOptions

KINDS = ("plex", "jellyfin", "emby")
#: the feeds' debounce on the emulated Jellyfin and Emby (30 s on a real server)
DEBOUNCE_S = 0.2


def emulator(
    kind: str, shows: int = 30, seed: int = 21, users: dict[str, str] | None = None, **controls: Any
) -> EmulatedServer:
    if kind != "plex":
        controls.setdefault("feed_debounce_s", DEBOUNCE_S)
    library = Library(LibrarySpec(seed=seed, shows=shows))
    return make_server(kind, library, controls=Controls(**controls), users=users)


def user_token(server: EmulatedServer) -> str:
    """What ``importer login`` gets: Jellyfin and Emby send library changes to users only."""
    return server.token if server.kind == "plex" else server.sessions.issue("emulator", "test-device")


class Watching:
    """A watch running in this loop, what it reported, and ways to wait for it."""

    def __init__(self, url: str, db: Path, token: str, **options: Any) -> None:
        # a random change may delete a show of a fifth of the library: the guard's own test
        # says when it stops a watch; elsewhere what is gone goes
        options.setdefault("sync", SyncOptions(allow_mass_delete=True))
        options.setdefault("debounce_s", 0.1)
        options.setdefault("reconnect_min_s", 0.1)
        options.setdefault("reconnect_max_s", 0.5)
        self.events: list[AnyEvent] = []
        self.watcher = Watcher(url, str(db), token, WatchOptions(**options), on_event=self.events.append)
        self.task: asyncio.Future[None] | None = None
        self.reported = False  # the error that ended the watch was raised to the test

    async def __aenter__(self) -> Watching:
        self.task = asyncio.ensure_future(self.watcher.run())
        await self.until(lambda: self.of(Ready))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if not self.task.done():
            self.watcher.cancel()
        with contextlib.suppress(Interrupted):
            if not self.reported:
                await self.task

    def of(self, kind: type[AnyEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, predicate: Callable[[], object], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.task is not None
            if self.task.done():
                self.reported = True
                self.task.result()  # the error that ended the watch
                raise AssertionError("the watch ended")
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s; events: {self.events[-5:]}")
            await asyncio.sleep(0.05)

    async def equal(self, server: EmulatedServer, db: Path, timeout: float = 30) -> None:
        """Wait until the database equals the server's library (what a full sync gives)."""
        failure: AssertionError | None = None

        def matches() -> bool:
            nonlocal failure
            try:
                check_database(server, db)
            except AssertionError as exc:
                failure = exc
                return False
            except apsw.BusyError:  # the watch's writer holds a lock for a moment: look again
                return False
            return True

        try:
            await self.until(matches, timeout)
        except AssertionError:
            raise failure or AssertionError("never equal") from None


def runs(db: Path) -> list[tuple[Any, ...]]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("SELECT mode, status, watermark FROM runs ORDER BY id").fetchall()
    finally:
        conn.close()


def requests_since(server: EmulatedServer, mark: int) -> list[str]:
    return [f"{e.method} {e.path}" for e in list(server.log)[mark:]]


# ----------------------------------------------------------------------------- the feed
@pytest.mark.parametrize("kind", KINDS)
async def test_changes_arrive_through_the_feed(kind: str, tmp_path: Path) -> None:
    server = emulator(kind)
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, user_token(server)) as watching:
        assert watching.of(Ready)[0].feed, watching.events
        mark = len(server.log)
        for seed in range(4):
            assert server.apply_changes("mixed", 5, seed=seed)
            await asyncio.sleep(0.05)
        await watching.equal(server, db)
        batches = watching.of(Batch)
        assert batches and watching.watcher.catch_ups == 1, watching.events  # the feed did it all
        # the changes were fetched by id, never listed
        assert not [r for r in requests_since(server, mark) if r.endswith(("/all", "/VirtualFolders"))]
        assert watching.watcher.batch_requests == len(requests_since(server, mark))
    assert [status for _, status, _ in runs(db)] == ["done"]  # one run: the catch-up; none per batch


async def test_a_batch_names_what_it_added_updated_and_removed(tmp_path: Path) -> None:
    server = emulator("plex")
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, server.token) as watching:
        added = server.apply_changes("add", 1, seed=1)[0]
        await watching.until(lambda: watching.of(Batch))
        removed = server.apply_changes("delete", 1, seed=2)[0]
        await watching.until(lambda: any(b.removed for b in watching.of(Batch)))
    offset = 0  # the first library's ratingKeys are the library's own
    added_keys = {i.source_id for b in watching.of(Batch) for i in b.added if i.type == "episode"}
    removed_keys = {i.source_id for b in watching.of(Batch) for i in b.removed if i.type == "episode"}
    assert str(added["plex_key"] + offset) in added_keys
    assert str(removed["plex_key"] + offset) in removed_keys
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        stored = dict(conn.execute("SELECT source_id, id FROM episodes").fetchall())
    finally:
        conn.close()
    for batch in watching.of(Batch):
        for item in batch.added + batch.updated:
            if item.type == "episode" and item.source_id in stored:
                assert stored[item.source_id] == item.id  # the local id a host app looks up


async def test_what_changes_while_it_catches_up_is_not_lost(tmp_path: Path) -> None:
    # Every request takes 50 ms: the start's catch-up is slow, and changes land during it.
    server = emulator("plex", latency_ms=50)
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        watching = Watching(url, db, server.token)
        watching.task = asyncio.ensure_future(watching.watcher.run())
        await watching.until(lambda: watching.watcher.catch_ups == 0 and len(server.log) >= 3)
        for seed in range(3):
            server.apply_changes("mixed", 4, seed=seed)
            await asyncio.sleep(0.1)
        await watching.until(lambda: watching.of(Ready))
        await watching.equal(server, db)
        await watching.__aexit__()


# ----------------------------------------------------------------------------- no feed
async def test_an_api_key_on_jellyfin_falls_back_to_polling(tmp_path: Path) -> None:
    server = emulator("jellyfin")
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, server.token, poll_minutes=0.02) as watching:
        ready = watching.of(Ready)[0]
        assert not ready.feed
        notices = [n.message for n in watching.of(Notice)]
        assert len(notices) == 1 and "importer login" in notices[0], notices  # said once
        server.apply_changes("mixed", 5, seed=3)
        await watching.equal(server, db)
        assert watching.of(CaughtUp)[-1].why == "poll" and not watching.of(Batch)


async def test_a_server_that_refuses_its_feed_is_polled(tmp_path: Path) -> None:
    server = emulator("plex", feed_refused=True)
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, server.token, poll_minutes=0.02) as watching:
        assert not watching.of(Ready)[0].feed
        server.apply_changes("mixed", 5, seed=4)
        await watching.equal(server, db)
        assert len(watching.of(Notice)) == 1


# ----------------------------------------------------------------------------- faults
@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_a_dropped_feed_reconnects_and_catches_up(kind: str, tmp_path: Path) -> None:
    server = emulator(kind)
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, user_token(server)) as watching:
        server.feeds.drop_all()  # mid-stream: no close frame
        server.apply_changes("mixed", 6, seed=7)  # while no socket listens
        await watching.until(lambda: watching.watcher.catch_ups >= 2)
        await watching.equal(server, db)
        assert any("reconnecting" in n.message for n in watching.of(Notice))


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_a_server_restart_is_caught_up(kind: str, tmp_path: Path) -> None:
    server = emulator(kind)
    db = tmp_path / "lib.db"
    url = await server.start()
    port = int(url.rsplit(":", 1)[1])
    try:
        async with Watching(url, db, user_token(server)) as watching:
            await server.stop()
            server.apply_changes("mixed", 6, seed=8)
            await asyncio.sleep(0.3)  # it tries, and fails, to reconnect
            await server.start(port=port)
            await watching.until(lambda: watching.watcher.catch_ups >= 2)
            await watching.equal(server, db)
            server.apply_changes("mixed", 3, seed=9)  # and the new socket works
            await watching.equal(server, db)
    finally:
        await server.stop()


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_duplicated_and_reordered_notices_change_nothing(kind: str, tmp_path: Path) -> None:
    server = emulator(kind, feed_duplicates=0.5, feed_reorder=True, feed_noise=True)
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, user_token(server)) as watching:
        for seed in range(5):
            server.apply_changes("mixed", 4, seed=seed)
        await watching.equal(server, db)
        assert watching.watcher.catch_ups == 1


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_a_notice_for_an_item_already_gone(kind: str, tmp_path: Path) -> None:
    server = emulator(kind)
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, user_token(server), debounce_s=0.5) as watching:
        # added, then its whole show deleted before the batch fetches it
        record = server.apply_changes("add", 1, seed=11)[0]
        lib = server.libraries[0].library
        server.mutate(lambda: lib.delete_show(record["show_index"]))
        await watching.equal(server, db)


async def test_a_batch_over_the_guard_runs_a_verified_sync_and_watching_goes_on(tmp_path: Path) -> None:
    server = emulator("plex")
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, server.token, sync=SyncOptions()) as watching:
        stored = sum(count_rows(db, table) for table in ("shows", "seasons", "episodes"))
        server.apply_changes("delete_show", 15, seed=12)  # half the library, notice by notice
        await watching.until(lambda: any(n.exit_code == 3 for n in watching.of(Notice)))
        caught = watching.of(CaughtUp)[-1]
        assert (caught.why, caught.exit_code) == ("verification", 3)
        assert caught.deleted == 0
        # batches deleted no more than the guard allows, all of them together
        removed = sum(len(b.removed) for b in watching.of(Batch))
        assert removed <= 0.1 * stored
        assert sum(count_rows(db, t) for t in ("shows", "seasons", "episodes")) == stored - removed
        server.apply_changes("add", 2, seed=13)  # still watching
        await watching.until(lambda: any(b.added for b in watching.of(Batch)))
    modes = [(mode, status) for mode, status, _ in runs(db)]
    assert modes == [("full", "done"), ("full", "stopped")]


async def test_batches_never_move_the_watermark(tmp_path: Path) -> None:
    server = emulator("jellyfin")
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, user_token(server)) as watching:
        before = runs(db)
        server.apply_changes("mixed", 8, seed=14)
        await watching.equal(server, db)
        assert watching.of(Batch)
        assert runs(db) == before


async def test_an_idle_watch_makes_no_requests(tmp_path: Path) -> None:
    server = emulator("jellyfin", feed_keepalive_s=1.0)  # keepalives every 0.5 s: on the socket
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, user_token(server)) as watching:
        mark = len(server.log)
        await asyncio.sleep(3)  # six keepalive periods: the server would drop a silent socket
        assert requests_since(server, mark) == []
        assert not [n for n in watching.of(Notice) if "reconnecting" in n.message]
        server.apply_changes("add", 1, seed=15)  # and the socket still carries changes
        await watching.equal(server, db)


async def test_a_thousand_changes_at_a_hundred_a_second(tmp_path: Path) -> None:
    server = emulator("plex", shows=40)
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, server.token) as watching:
        for tick in range(100):  # 10 changes every 0.1 s
            server.apply_changes("mixed", 10, seed=1000 + tick)
            await asyncio.sleep(0.1)
        await watching.equal(server, db, timeout=60)
        assert watching.watcher.catch_ups == 1


#: one step of a property run: a change, a dropped socket, a server restart, or a pause
STEPS = st.one_of(
    st.tuples(
        st.just("change"),
        st.sampled_from(["mixed", "add", "delete", "move_show", "replace"]),
        st.integers(1, 6),
        st.integers(0, 10_000),
    ),
    st.tuples(st.just("drop")),
    st.tuples(st.just("restart")),
    st.tuples(st.just("pause"), st.floats(0, 0.3)),
)


def test_any_sequence_of_changes_and_faults_ends_equal(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Random sequences of changes, drops, restarts and pauses, with duplicated and
    reordered notices: the database ends equal to the library. ``pytest --campaign N``
    runs N sequences (CI: 6)."""

    @settings(
        max_examples=request.config.getoption("--campaign") or 6,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(kind=st.sampled_from(["plex", "jellyfin"]), steps=st.lists(STEPS, min_size=1, max_size=8))
    def sequence(kind: str, steps: list[tuple[Any, ...]]) -> None:
        db = tmp_path_factory.mktemp("watch") / "lib.db"
        server = emulator(kind, shows=8, feed_duplicates=0.2, feed_reorder=True)

        async def run() -> None:
            url = await server.start()
            port = int(url.rsplit(":", 1)[1])
            try:
                async with Watching(url, db, user_token(server)) as watching:
                    for step in steps:
                        if step[0] == "change":
                            server.apply_changes(step[1], step[2], seed=step[3])
                        elif step[0] == "drop":
                            server.feeds.drop_all()
                        elif step[0] == "restart":
                            await server.stop()
                            await server.start(port=port)
                        else:
                            await asyncio.sleep(step[1])
                    await watching.equal(server, db)
            finally:
                await server.stop()

        asyncio.run(run())

    sequence()


# ----------------------------------------------------------------------------- the command
def watch_process(url: str, db: Path, token: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "IMPORTER_TOKEN": token}
    return subprocess.Popen(
        [sys.executable, "-m", "importer", "watch", url, "--db", str(db), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def read_until(
    proc: subprocess.Popen[str], predicate: Callable[[str], bool], timeout: float = 30
) -> list[str]:
    """Lines of stdout until one matches (the process keeps running)."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(
                f"stdout ended: {lines}; stderr: {proc.stderr.read() if proc.stderr else ''}"
            )
        lines.append(line.rstrip("\n"))
        if predicate(lines[-1]):
            return lines
    raise AssertionError(f"no such line within {timeout} s: {lines}")


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_command_prints_json_events_and_stops_cleanly(
    sig: signal.Signals, code: int, tmp_path: Path
) -> None:
    server = emulator("plex")
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        proc = watch_process(url, db, server.token, "--progress", "json")
        try:
            read_until(proc, lambda line: json.loads(line)["event"] == "ready")
            # it holds the database's lock: a cron sync would exit 4
            locked = subprocess.run(
                [sys.executable, "-m", "importer", "sync", url, "--db", str(db)],
                env={**os.environ, "IMPORTER_TOKEN": server.token}, capture_output=True, text=True,
                timeout=60, check=False,
            )  # fmt: skip
            assert locked.returncode == 4, locked.stderr
            server.apply_changes("add", 2, seed=16)
            lines = read_until(proc, lambda line: json.loads(line)["event"] == "batch")
            batch = json.loads(lines[-1])
            assert set(batch) >= {"event", "server", "library", "added", "updated", "removed"}
            assert {"id", "source_id", "type"} <= set(batch["added"][0])
            proc.send_signal(sig)
            assert proc.wait(timeout=15) == code
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        check_database(server, db)


def test_a_killed_watch_restarts_and_converges(tmp_path: Path) -> None:
    server = emulator("jellyfin")
    db = tmp_path / "lib.db"
    token = user_token(server)
    with server.running_in_thread() as url:
        proc = watch_process(url, db, token)
        try:
            read_until(proc, lambda line: line.startswith("watching "))
            server.apply_changes("mixed", 20, seed=17)
            time.sleep(DEBOUNCE_S + 0.1)  # the batch is in flight, or being written
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            server.apply_changes("mixed", 10, seed=18)  # while nobody watches
            proc = watch_process(url, db, token)
            read_until(proc, lambda line: line.startswith("watching "))
            check_database(server, db)  # the start's catch-up found everything
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def test_a_refused_token_ends_the_watch(tmp_path: Path) -> None:
    server = emulator("jellyfin")
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        watching = Watching(url, db, user_token(server))
        async with watching:
            server.sessions.revoke_user_tokens()
            server.feeds.drop_all()  # the reconnection's handshake meets the refusal
            with pytest.raises(AuthError):
                await watching.until(lambda: False)


async def test_the_library_api_yields_events(tmp_path: Path) -> None:
    server = emulator("plex")
    db = tmp_path / "lib.db"
    async with serving(server) as url:
        seen: list[str] = []
        options = WatchOptions(debounce_s=0.1)
        async with contextlib.aclosing(
            importer.watch(url, db, token=server.token, options=options)
        ) as events:
            async for event in events:
                seen.append(type(event).__name__)
                if isinstance(event, Ready):
                    server.apply_changes("add", 1, seed=19)
                if isinstance(event, Batch):
                    break  # leaving the block stops the watch, and releases the lock
        assert seen[-1] == "Batch" and "Ready" in seen
        again = await importer.sync(url, db, token=server.token)  # the lock is free
        assert again.exit_code == 0


def test_a_saved_login_is_used_and_a_revoked_one_says_to_log_in_again(tmp_path: Path) -> None:
    server = emulator("jellyfin", users={"alice": "s3cret pass"})
    db = tmp_path / "lib.db"
    env = {k: v for k, v in os.environ.items() if k != "IMPORTER_TOKEN"}
    with server.running_in_thread() as url:
        login = subprocess.run(
            [sys.executable, "-m", "importer", "login", url, "--user", "alice"],
            env={**env, "IMPORTER_PASSWORD": "s3cret pass"}, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert login.returncode == 0, login.stderr
        proc = subprocess.Popen(
            [sys.executable, "-m", "importer", "watch", url, "--db", str(db)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            lines = read_until(proc, lambda line: line.startswith("watching "))
            assert "polling" not in lines[-1]  # a user's token: the feed is followed
            server.sessions.revoke_user_tokens()  # signed out on the server
            server.feeds.drop_all()  # the reconnection meets the refusal
            assert proc.wait(timeout=30) == 1
            assert proc.stderr is not None
            stderr = proc.stderr.read()
            assert f"importer login {url}" in stderr, stderr
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def test_a_due_verification_runs_a_full_sync(tmp_path: Path) -> None:
    server = emulator("plex", shows=8)
    db = tmp_path / "lib.db"
    # verified a second ago counts as stale; not sooner than a poll interval (1.2 s) apart
    sync = SyncOptions(verify_after_days=1 / 86400)
    async with (
        serving(server) as url,
        Watching(url, db, server.token, sync=sync, poll_minutes=0.02) as watching,
    ):
        await watching.until(lambda: any(c.why == "verification" for c in watching.of(CaughtUp)))
    assert [mode for mode, _, _ in runs(db)][:2] == ["full", "full"]
    assert watching.watcher.catch_ups >= 2


async def test_hydrate_follows_what_batches_change(tmp_path: Path) -> None:
    server = emulator("plex", shows=8)
    db = tmp_path / "lib.db"

    def stale() -> int:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            return int(conn.execute("SELECT count(*) FROM shows WHERE hydrated_etag IS NOT etag").get)
        finally:
            conn.close()

    async with serving(server) as url, Watching(url, db, server.token, hydrate=True) as watching:
        assert stale() == 0  # the start's catch-up hydrated every show
        server.apply_changes("rename", 2, seed=20)
        await watching.until(lambda: watching.of(Batch))
        await watching.until(lambda: stale() == 0)
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        cast = conn.execute("SELECT count(*) FROM credits WHERE item_type = 'show'").get
    finally:
        conn.close()
    assert cast  # hydrated: the shows have their cast


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
async def test_a_new_library_is_imported_at_the_next_check(kind: str, tmp_path: Path) -> None:
    server = emulator(kind, shows=6)
    db = tmp_path / "lib.db"
    options = {"library_check_minutes": 0.01}  # every 0.6 s
    async with serving(server) as url, Watching(url, db, user_token(server), **options) as watching:
        server.add_library("Kids", Library(LibrarySpec(seed=77, shows=4)))
        await watching.until(lambda: watching.watcher.catch_ups >= 2)
        await watching.equal(server, db)  # both libraries, the new one in full
        new = server.libraries[1].library
        server.mutate(lambda: new.add_episode(0, int(server.controls.now())))  # and it is watched
        await watching.until(lambda: any(b.library == "Kids" for b in watching.of(Batch)))
        await watching.equal(server, db)


async def test_emby_catches_up_at_most_once_per_poll(tmp_path: Path) -> None:
    server = emulator("emby", shows=8)
    db = tmp_path / "lib.db"
    async with serving(server) as url, Watching(url, db, user_token(server), poll_minutes=0.05) as watching:
        started = time.monotonic()
        server.feeds.drop_all()
        server.apply_changes("mixed", 3, seed=21)  # while the feed is down
        await watching.until(lambda: watching.watcher.catch_ups >= 2, timeout=30)
        # Emby's catch-up lists every item's Etag: not sooner than a poll interval (3 s)
        assert time.monotonic() - started >= 3 - 0.5
        await watching.equal(server, db)
