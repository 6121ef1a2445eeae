"""The emulated servers' live change feeds, over real sockets: Plex notifications (websocket
and SSE), Jellyfin's and Emby's LibraryChanged; their faults; and the check that matters
most: a client that applies every notification to a full listing ends with what a fresh
full listing gives."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from importer.emulator import make_server
from importer.emulator.jellyfin import EmbyServer, JellyfinServer
from importer.emulator.library import Library, LibrarySpec
from importer.emulator.plex import PlexServer

PLEX_TOKEN = "plex-feed-token"
JF_TOKEN = "0123456789abcdef0123456789abcdef"
LIBRARY = "com.plexapp.plugins.library"
NOTIFICATIONS = "/:/websockets/notifications"
EVENTS = "/:/eventsource/notifications"

pytestmark = pytest.mark.timeout(120)


def _spec(shows: int = 6, seed: int = 3) -> Library:
    return Library(LibrarySpec(shows=shows, seed=seed))


@pytest.fixture
async def plex() -> AsyncIterator[tuple[PlexServer, str, aiohttp.ClientSession]]:
    srv = make_server("plex", _spec(), token=PLEX_TOKEN)
    assert isinstance(srv, PlexServer)
    srv.controls.plex_ready_ms = 80
    url = await srv.start()
    async with aiohttp.ClientSession(headers={"X-Plex-Token": PLEX_TOKEN}) as session:
        yield srv, url, session
    await srv.stop()


async def _jelly(kind: str, **options: Any) -> tuple[JellyfinServer, str]:
    srv = make_server(kind, _spec(), token=JF_TOKEN, **options)
    assert isinstance(srv, JellyfinServer)
    srv.controls.feed_debounce_s = 0.15
    return srv, await srv.start()


async def _messages(ws: aiohttp.ClientWebSocketResponse, quiet: float = 0.4) -> list[dict[str, Any]]:
    """Every message until ``quiet`` seconds pass without one."""
    out: list[dict[str, Any]] = []
    while True:
        try:
            msg = await ws.receive(timeout=quiet)
        except TimeoutError:
            return out
        if msg.type != aiohttp.WSMsgType.TEXT:
            return out
        out.append(json.loads(msg.data))


async def _change(session: aiohttp.ClientSession, url: str, kind: str, count: int = 1, seed: int = 1) -> Any:
    r = await session.post(f"{url}/_emulator/changes", json={"kind": kind, "count": count, "seed": seed})
    assert r.status == 200, await r.text()
    return (await r.json())["changes"]


def _entries(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e
        for m in messages
        if m["NotificationContainer"]["type"] == "timeline"
        for e in m["NotificationContainer"]["TimelineEntry"]
    ]


def _activities(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        a
        for m in messages
        if m["NotificationContainer"]["type"] == "activity"
        for a in m["NotificationContainer"]["ActivityNotification"]
    ]


# ----------------------------------------------------------------------------- Plex
async def test_plex_add_ready_delete_and_edit(plex: tuple[PlexServer, str, aiohttp.ClientSession]) -> None:
    _, url, session = plex
    ws = await session.ws_connect(f"{url}{NOTIFICATIONS}?filters=timeline,activity")
    [added] = await _change(session, url, "add")
    key = str(added["plex_key"])
    got = await _messages(ws)
    for m in got:
        body = m["NotificationContainer"]
        assert body["size"] == len(
            body["TimelineEntry" if body["type"] == "timeline" else "ActivityNotification"]
        )
    states = [(e["state"], e.get("metadataState")) for e in _entries(got) if str(e["itemID"]) == key]
    assert states == [(0, "created"), (1, "processing"), (5, None)]
    entry = next(e for e in _entries(got) if str(e["itemID"]) == key)
    assert entry["identifier"] == LIBRARY and entry["type"] == 4 and str(entry["sectionID"]) == "2"
    assert entry["title"] == added["title"] and isinstance(entry["updatedAt"], int)
    # the show and the season count one more episode: updated, as activities only
    show_key = str(entry["rootItemID"])
    season_key = str(entry["parentItemID"])
    refreshed = {a["Activity"]["Context"]["key"] for a in _activities(got) if a["event"] == "ended"}
    assert refreshed == {f"/library/metadata/{show_key}", f"/library/metadata/{season_key}"}
    assert {str(e["itemID"]) for e in _entries(got)} == {key}
    for a in _activities(got):
        assert a["Activity"]["type"] == "library.refresh.items" and a["uuid"] == a["Activity"]["uuid"]
    events = [
        a["event"] for a in _activities(got) if a["Activity"]["Context"]["key"].endswith(f"/{show_key}")
    ]
    assert events == ["started", "updated", "ended"]

    [deleted] = await _change(session, url, "delete", seed=2)
    got = await _messages(ws)
    gone = [e for e in _entries(got) if str(e["itemID"]) == str(deleted["plex_key"])]
    assert [(e["state"], e["metadataState"]) for e in gone] == [(9, "deleted")]

    [updated] = await _change(session, url, "update", seed=3)
    got = await _messages(ws)
    assert _entries(got) == []  # an edit is no timeline entry
    ended = [a for a in _activities(got) if a["event"] == "ended"]
    assert f"/library/metadata/{updated['plex_key']}" in {a["Activity"]["Context"]["key"] for a in ended}
    assert all(a["Activity"]["progress"] == 100 and a["Activity"]["Context"]["refreshed"] for a in ended)
    await ws.close()


async def test_plex_filters_noise_and_ids(plex: tuple[PlexServer, str, aiohttp.ClientSession]) -> None:
    srv, url, session = plex
    srv.controls.feed_noise = True
    sockets = {
        name: await session.ws_connect(f"{url}{NOTIFICATIONS}{query}")
        for name, query in [
            ("timeline", "?filters=timeline"),
            ("default", ""),
            ("all", "?filters="),
            ("no_activity", "?filters=-activity,log"),
        ]
    }
    await _change(session, url, "mixed", count=6, seed=11)
    got = {name: await _messages(ws) for name, ws in sockets.items()}
    types = {name: {m["NotificationContainer"]["type"] for m in msgs} for name, msgs in got.items()}
    assert types["timeline"] == {"timeline"}
    assert types["default"] == {"timeline", "activity", "status"}
    assert types["all"] == {"timeline", "activity", "status", "log"}
    assert types["no_activity"] == {"timeline", "status"}
    entries = _entries(got["all"])
    assert {e["identifier"] for e in entries} == {LIBRARY, "tv.plex.providers.epg"}
    assert any(e["type"] == 1 and str(e["sectionID"]) == "1" for e in entries)
    # ids: strings, some ints, chosen from the ratingKey
    for e in entries:
        if e["identifier"] != LIBRARY or e["type"] not in (2, 3, 4):
            continue
        key = int(e["itemID"])
        assert isinstance(e["itemID"], int) == (key % 4 == 3)
        assert isinstance(e["sectionID"], int) == (key % 3 == 0)
        for field in ("parentItemID", "rootItemID"):
            if field in e:
                assert isinstance(e[field], int) == (key % 2 == 1)
    kinds = {(isinstance(e["itemID"], int), isinstance(e.get("rootItemID", ""), int)) for e in entries}
    assert len(kinds) > 1
    for ws in sockets.values():
        await ws.close()


async def _sse_events(response: aiohttp.ClientResponse, span: float) -> list[tuple[str, Any]]:
    """(event, data) of every SSE event read in ``span`` seconds."""
    out: list[tuple[str, Any]] = []
    event = ""
    end = time.monotonic() + span
    while (left := end - time.monotonic()) > 0:
        try:
            line = (await asyncio.wait_for(response.content.readline(), left)).decode()
        except TimeoutError:
            return out
        if not line:
            return out
        line = line.rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            out.append((event, json.loads(line[6:])))
    return out


async def test_plex_eventsource(plex: tuple[PlexServer, str, aiohttp.ClientSession]) -> None:
    srv, url, session = plex
    srv.controls.feed_ping_s = 0.2
    async with aiohttp.ClientSession() as bare:  # the token in the query this time
        sse = await bare.get(
            f"{url}{EVENTS}?X-Plex-Token={PLEX_TOKEN}", headers={"Accept": "text/event-stream"}
        )
        assert sse.status == 200 and sse.headers["Content-Type"] == "text/event-stream"
        assert "Content-Encoding" not in sse.headers
        events = await _sse_events(sse, 0.5)
        assert events and all(e == ("ping", {}) for e in events)
        [added] = await _change(session, url, "add", seed=4)
        events = [e for e in await _sse_events(sse, 0.5) if e[0] != "ping"]
        timeline = [d["TimelineEntry"] for name, d in events if name == "timeline"]
        assert all(isinstance(t, dict) for t in timeline)  # one bare entry per event
        mine = [t for t in timeline if str(t["itemID"]) == str(added["plex_key"])]
        assert [t["state"] for t in mine] == [0, 1, 5]
        assert any(name == "activity" and "ActivityNotification" in d for name, d in events)
        srv.controls.plex_sse_envelope = True
        await _change(session, url, "delete", seed=5)
        events = [e for e in await _sse_events(sse, 0.5) if e[0] != "ping"]
        assert events and all(d["NotificationContainer"]["type"] == name for name, d in events)
        sse.close()
    assert srv.feeds.stats.pings >= 2


async def test_plex_refused_unauthorized_and_logged(
    plex: tuple[PlexServer, str, aiohttp.ClientSession],
) -> None:
    srv, url, session = plex
    async with aiohttp.ClientSession() as bare:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await bare.ws_connect(f"{url}{NOTIFICATIONS}")
        assert err.value.status == 401
    srv.controls.feed_refused = True
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await session.ws_connect(f"{url}{NOTIFICATIONS}")
    assert err.value.status == 404
    assert (await session.get(f"{url}{EVENTS}")).status == 404
    srv.controls.feed_refused = False
    ws = await session.ws_connect(f"{url}{NOTIFICATIONS}", headers={"Accept-Encoding": "gzip"})
    await _change(session, url, "add")
    assert await _messages(ws)
    await ws.close()
    await asyncio.sleep(0.1)
    feeds = [e for e in srv.log if e.path == NOTIFICATIONS]
    assert [e.status for e in feeds] == [401, 404, 101]
    assert srv.feeds.stats.refused == 2


async def test_plex_duplicates_and_reorder(plex: tuple[PlexServer, str, aiohttp.ClientSession]) -> None:
    srv, url, session = plex
    srv.controls.feed_duplicates = 1.0
    ws = await session.ws_connect(f"{url}{NOTIFICATIONS}")
    await _change(session, url, "add", seed=6)
    got = await _messages(ws)
    assert got and len(got) % 2 == 0
    assert all(got[i] == got[i + 1] for i in range(0, len(got), 2))
    assert srv.feeds.stats.duplicates == len(got) // 2
    srv.controls.feed_duplicates = 0.0
    srv.controls.feed_reorder = True
    await _change(session, url, "delete_show", seed=7)
    got = await _messages(ws)
    gone = [e for e in _entries(got) if e["state"] == 9]
    assert {e["type"] for e in gone} == {2, 3, 4}  # the show, its seasons, its episodes
    assert [e["type"] for e in gone] != sorted((e["type"] for e in gone), reverse=True)
    await ws.close()


async def test_no_work_without_a_feed(plex: tuple[PlexServer, str, aiohttp.ClientSession]) -> None:
    srv, url, session = plex
    await _change(session, url, "mixed", count=5)
    assert srv.feeds.tracker is None and srv.feeds.stats.diffs == 0
    ws = await session.ws_connect(f"{url}{NOTIFICATIONS}")
    assert srv.feeds.tracker is not None
    await ws.close()
    await asyncio.sleep(0.1)
    assert srv.feeds.tracker is None and srv.feeds.stats.open == 0


async def test_many_changes_per_second_while_subscribed() -> None:
    """100 changes, one loop iteration each, on a 50-show library: well under a second."""
    srv = make_server("plex", _spec(shows=50, seed=8), token=PLEX_TOKEN)
    url = await srv.start()
    async with aiohttp.ClientSession(headers={"X-Plex-Token": PLEX_TOKEN}) as session:
        ws = await session.ws_connect(f"{url}{NOTIFICATIONS}")
        started = time.perf_counter()
        for n in range(100):
            srv.apply_changes("mixed", 1, seed=n)
            await asyncio.sleep(0)  # the diff of this change
        spent = time.perf_counter() - started
        assert srv.feeds.stats.diffs >= 90
        assert spent < 1.0, spent
        await ws.close()
    await srv.stop()


# ----------------------------------------------------------------------------- Jellyfin, Emby
def _mb(token: str, device: str = "dev1") -> dict[str, str]:
    parts = f'Client="test", Device="t", DeviceId="{device}", Version="1", Token="{token}"'
    return {"Authorization": f"MediaBrowser {parts}"}


async def test_jellyfin_user_sessions_only_and_debounce() -> None:
    srv, url = await _jelly("jellyfin")
    user = srv.sessions.issue("emulator", "dev1")
    async with aiohttp.ClientSession() as session:
        api = await session.ws_connect(f"{url}/socket", headers=_mb(JF_TOKEN, "server"))
        mine = await session.ws_connect(f"{url}/socket?ApiKey={user}")
        for ws in (api, mine):
            first = json.loads((await ws.receive(timeout=2)).data)
            assert first["MessageType"] == "ForceKeepAlive" and first["Data"] == 60
        srv.controls.feed_debounce_s = 0.5
        lib = srv.libraries[0].library
        done = []
        for n in range(3):  # each change pushes the timer back
            done += srv.apply_changes("add", 1, seed=n)
            await asyncio.sleep(0.2)
        started = time.monotonic()
        got = await _messages(mine, quiet=1.0)
        assert [m["MessageType"] for m in got] == ["LibraryChanged"]
        assert time.monotonic() - started >= 0.2
        data = got[0]["Data"]
        assert len(got[0]["MessageId"]) == 32
        folders = {"FoldersAddedTo", "FoldersRemovedFrom", "CollectionFolders"}
        assert set(data) == {"ItemsAdded", "ItemsRemoved", "ItemsUpdated", *folders}
        assert {d["jellyfin_id"] for d in done} <= set(data["ItemsAdded"])
        assert not set(data["ItemsUpdated"]) & set(data["ItemsAdded"])
        assert data["CollectionFolders"] == [srv.folders[0].id]
        assert data["FoldersAddedTo"] and data["ItemsRemoved"] == []
        assert await _messages(api, quiet=0.3) == []  # the API key's socket hears nothing
        # added then removed in one window: only in ItemsRemoved
        ep = lib.add_episode(0, int(srv.controls.now()))
        new_id = lib.jellyfin_id(3, 0, ep.ordinal)
        await asyncio.sleep(0)
        lib.delete_episode(0, ep.ordinal)
        [msg] = await _messages(mine, quiet=1.0)
        assert new_id in msg["Data"]["ItemsRemoved"] and new_id not in msg["Data"]["ItemsAdded"]
        await api.close()
        await mine.close()
    await srv.stop()


async def test_jellyfin_keepalive() -> None:
    srv, url = await _jelly("jellyfin")
    srv.controls.feed_keepalive_s = 1.0
    user = srv.sessions.issue("emulator", "dev2")
    async with aiohttp.ClientSession() as session:
        silent = await session.ws_connect(f"{url}/socket", headers=_mb(user, "dev2"))
        alive = await session.ws_connect(f"{url}/socket", headers=_mb(JF_TOKEN, "other"))
        first = json.loads((await silent.receive(timeout=2)).data)
        assert first == {"MessageType": "ForceKeepAlive", "MessageId": first["MessageId"], "Data": 1}

        async def keep(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
            got = []
            end = time.monotonic() + 2.5
            while time.monotonic() < end:
                await ws.send_str('{"MessageType":"KeepAlive"}')
                got += await _messages(ws, quiet=0.3)
            return got

        keeper = asyncio.ensure_future(keep(alive))
        started = time.monotonic()
        types = []
        while True:
            msg = await silent.receive(timeout=3)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            types.append(json.loads(msg.data)["MessageType"])
        lost_after = time.monotonic() - started
        assert types == ["ForceKeepAlive"]  # again after 3/4 of the silence
        assert 0.7 <= lost_after <= 1.8, lost_after
        echoed = await keeper
        assert [m["MessageType"] for m in echoed].count("KeepAlive") >= 5
        assert not alive.closed
        assert srv.feeds.stats.lost == 1 and srv.feeds.stats.keepalives >= 5
        await alive.close()
    await srv.stop()


async def test_emby_socket_numeric_ids_and_pings() -> None:
    srv, url = await _jelly("emby", numeric_ids=True)
    assert isinstance(srv, EmbyServer)
    srv.controls.feed_keepalive_s = 1.0
    user = srv.sessions.issue("emulator", "kodi")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(f"{url}/socket?api_key={user}")
        assert err.value.status == 404
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(f"{url}/embywebsocket?api_key=nope&DeviceId=kodi")
        assert err.value.status == 401
        ws = await session.ws_connect(f"{url}/emby/embywebsocket?api_key={user}&DeviceId=kodi", autoping=True)
        api = await session.ws_connect(f"{url}/embywebsocket?api_key={JF_TOKEN}&DeviceId=x")
        await ws.send_str('{"MessageType":"ScheduledTasksInfoStart","Data":"0,1500"}')
        done = srv.apply_changes("mixed", 4, seed=9)
        pinged = []
        for _ in range(8):  # pings alone keep it open past feed_keepalive_s
            await ws.ping()
            pinged += await _messages(ws, quiet=0.2)
        assert not ws.closed
        [msg] = [m for m in pinged if m["MessageType"] == "LibraryChanged"]
        ids = [i for key in ("ItemsAdded", "ItemsRemoved", "ItemsUpdated") for i in msg["Data"][key]]
        assert ids and all(i.isdigit() for i in ids)
        assert all(not m["MessageType"].startswith("ForceKeepAlive") for m in pinged)
        assert done
        msg = await api.receive(timeout=3)  # silent, no LibraryChanged, then dropped
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)
        await ws.close()
    await srv.stop()


# ----------------------------------------------------------------------------- faults, restarts
async def test_drop_endpoint_and_restart_on_the_same_port() -> None:
    plex = make_server("plex", _spec(), token=PLEX_TOKEN)
    url = await plex.start()
    jf, jf_url = await _jelly("jellyfin")
    async with aiohttp.ClientSession(headers={"X-Plex-Token": PLEX_TOKEN}) as session:
        ws = await session.ws_connect(f"{url}{NOTIFICATIONS}")
        sse = await session.get(f"{url}{EVENTS}")
        jws = await session.ws_connect(f"{jf_url}/socket?ApiKey={JF_TOKEN}")
        await jws.receive(timeout=2)  # ForceKeepAlive
        r = await session.post(f"{url}/_emulator/feed", json={"drop": True})
        assert (await r.json())["dropped"] == 2
        r = await session.post(f"{jf_url}/_emulator/feed", json={"drop": True}, headers=_mb(JF_TOKEN))
        assert (await r.json())["dropped"] == 1
        for sock in (ws, jws):
            msg = await sock.receive(timeout=2)
            assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
            assert sock.close_code != 1001  # no close frame from the server
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(sse.content.read(), 2)
        await asyncio.sleep(0.1)
        assert plex.feeds.stats.drops == 2 and plex.feeds.stats.open == 0
        # a server with open feeds stops at once, and another starts on its port
        ws = await session.ws_connect(f"{url}{NOTIFICATIONS}")
        sse = await session.get(f"{url}{EVENTS}")
        port = int(url.rsplit(":", 1)[1])
        started = time.monotonic()
        await plex.stop()
        assert time.monotonic() - started < 1.5
        msg = await ws.receive(timeout=2)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert await asyncio.wait_for(sse.content.read(), 2) == b""
        again = make_server("plex", _spec(), token=PLEX_TOKEN)
        assert await again.start(port=port) == url
        ws = await session.ws_connect(f"{url}{NOTIFICATIONS}")
        await _change(session, url, "add")
        assert await _messages(ws)
        await again.stop()
        assert plex.feeds.stats.closed == 2
    await jf.stop()


# ----------------------------------------------------------------------------- end to end
def _plex_item(m: dict[str, Any]) -> tuple[Any, ...]:
    if m["type"] == "show":
        return ("show", m["title"], m["updatedAt"], m["leafCount"], m["childCount"])
    if m["type"] == "season":
        return ("season", m["title"], m["parentRatingKey"], m["index"], m["leafCount"], m.get("updatedAt"))
    parts = tuple(p["file"] for media in m.get("Media", []) for p in media["Part"])
    return (
        "episode", m["title"], m.get("parentRatingKey"), m["grandparentRatingKey"], m["parentIndex"],
        m["index"], m["addedAt"], m["updatedAt"], parts,
    )  # fmt: skip


async def _plex_listing(session: aiohttp.ClientSession, url: str) -> dict[str, tuple[Any, ...]]:
    out = {}
    for type_ in (2, 3, 4):
        start = 0
        while True:  # pages of at most 1000, as PMS caps them
            r = await session.get(
                f"{url}/library/sections/2/all?type={type_}&X-Plex-Container-Start={start}"
                "&X-Plex-Container-Size=500",
                headers={"Accept": "application/json"},
            )
            page = (await r.json())["MediaContainer"].get("Metadata", [])
            out.update((m["ratingKey"], _plex_item(m)) for m in page)
            start += len(page)
            if not page:
                break
    return out


async def _plex_apply(
    session: aiohttp.ClientSession, url: str, view: dict[str, tuple[Any, ...]], messages: list[dict[str, Any]]
) -> set[str]:
    """What a client does: drop deleted items, refetch the ones that are ready or refreshed."""
    fetch: set[str] = set()
    for m in messages:
        body = m["NotificationContainer"]
        for e in body.get("TimelineEntry", []) if body["type"] == "timeline" else []:
            if e["identifier"] != LIBRARY or e["type"] not in (2, 3, 4) or str(e["sectionID"]) != "2":
                continue
            key = str(e["itemID"])
            if e["state"] == 9:
                view.pop(key, None)
                fetch.discard(key)
            elif e["state"] == 5 and "metadataState" not in e and "mediaState" not in e:
                fetch.add(key)
        for a in body.get("ActivityNotification", []) if body["type"] == "activity" else []:
            if a["event"] == "ended" and a["Activity"]["type"] == "library.refresh.items":
                fetch.add(a["Activity"]["Context"]["key"].rsplit("/", 1)[1])
    keys = sorted(fetch)
    for at in range(0, len(keys), 50):
        chunk = keys[at : at + 50]
        r = await session.get(
            f"{url}/library/metadata/{','.join(chunk)}", headers={"Accept": "application/json"}
        )
        found = {}
        if r.status == 200:
            found = {m["ratingKey"]: _plex_item(m) for m in (await r.json())["MediaContainer"]["Metadata"]}
        for key in chunk:
            if key in found:
                view[key] = found[key]
            else:
                view.pop(key, None)
    return fetch


@pytest.mark.parametrize(("seed", "faulty"), [(1, False), (2, False), (3, True), (4, True)])
async def test_plex_feed_keeps_a_client_in_step(seed: int, faulty: bool) -> None:
    srv = make_server("plex", _spec(shows=10, seed=20 + seed), token=PLEX_TOKEN)
    srv.controls.plex_ready_ms = 60
    srv.controls.feed_duplicates = 0.3 if faulty else 0.0
    srv.controls.feed_reorder = faulty
    srv.controls.feed_noise = faulty
    url = await srv.start()
    async with aiohttp.ClientSession(headers={"X-Plex-Token": PLEX_TOKEN}) as session:
        ws = await session.ws_connect(f"{url}{NOTIFICATIONS}?filters=timeline,activity")
        view = await _plex_listing(session, url)
        for round_ in range(4):
            await _change(session, url, "mixed", count=6, seed=seed * 100 + round_)
        srv.apply_changes("mixed", 8, seed=seed * 1000)  # in process, one diff for all of them
        messages = await _messages(ws, quiet=0.5)
        fetched = await _plex_apply(session, url, view, messages)
        assert view == await _plex_listing(session, url)
        assert len(fetched) < len(view)  # the feed names the changes, not everything
        await ws.close()
    await srv.stop()


def _jf_item(m: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("Type", "Name", "Etag", "Path", "SeriesId", "SeasonId", "ParentIndexNumber", "IndexNumber")
    counts = ("RecursiveItemCount", "ChildCount") if m["Type"] != "Episode" else ()
    return tuple(m.get(k) for k in keys + counts)


_JF_FIELDS = "Etag,Path,RecursiveItemCount,ChildCount"


async def _jf_listing(
    session: aiohttp.ClientSession, url: str, srv: JellyfinServer
) -> dict[str, tuple[Any, ...]]:
    params = {
        "ParentId": srv.folders[0].id,
        "Recursive": "true",
        "IncludeItemTypes": "Series,Season,Episode",
        "Fields": _JF_FIELDS,
    }
    r = await session.get(f"{url}/Items", params=params)
    assert r.status == 200
    return {m["Id"]: _jf_item(m) for m in (await r.json())["Items"]}


@pytest.mark.parametrize(
    ("kind", "seed", "faulty"), [("jellyfin", 1, False), ("jellyfin", 2, True), ("emby", 3, True)]
)
async def test_jellyfin_feed_keeps_a_client_in_step(kind: str, seed: int, faulty: bool) -> None:
    options: dict[str, Any] = {"numeric_ids": True} if kind == "emby" else {}
    srv = make_server(kind, _spec(shows=10, seed=40 + seed), token=JF_TOKEN, **options)
    assert isinstance(srv, JellyfinServer)
    srv.controls.feed_debounce_s = 0.1
    srv.controls.feed_duplicates = 0.5 if faulty else 0.0
    srv.controls.feed_reorder = faulty
    srv.controls.feed_noise = faulty
    url = await srv.start()
    user = srv.sessions.issue("emulator", "e2e")
    path = "/embywebsocket" if kind == "emby" else "/socket"
    async with (
        aiohttp.ClientSession(headers={"X-Emby-Token": JF_TOKEN}) as session,
        aiohttp.ClientSession() as bare,
    ):
        # Emby reads X-Emby-Token before api_key: this socket carries the user's token only
        ws = await bare.ws_connect(f"{url}{path}?api_key={user}&DeviceId=e2e", headers=_mb(user, "e2e"))
        view = await _jf_listing(session, url, srv)
        for round_ in range(4):
            await _change(session, url, "mixed", count=6, seed=seed * 100 + round_)
            await asyncio.sleep(0.15 if round_ % 2 else 0.0)  # some in one window, some in the next
        messages = [m for m in await _messages(ws, quiet=0.6) if m["MessageType"] == "LibraryChanged"]
        assert len(messages) >= 2
        fetch: set[str] = set()
        for m in messages:
            for gone in m["Data"]["ItemsRemoved"]:
                view.pop(gone, None)
                fetch.discard(gone)
            fetch.update(m["Data"]["ItemsAdded"] + m["Data"]["ItemsUpdated"])
        keys = sorted(fetch)
        for at in range(0, len(keys), 40):
            chunk = keys[at : at + 40]
            r = await session.get(f"{url}/Items", params={"Ids": ",".join(chunk), "Fields": _JF_FIELDS})
            found = {m["Id"]: _jf_item(m) for m in (await r.json())["Items"]}
            for key in chunk:
                if key in found:
                    view[key] = found[key]
                else:
                    view.pop(key, None)
        assert view == await _jf_listing(session, url, srv)
        assert len(fetch) < len(view)
        await ws.close()
    await srv.stop()
