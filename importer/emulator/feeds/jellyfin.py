"""Jellyfin's and Emby's websocket: ``LibraryChanged`` to user sessions (research B2, B3).

Jellyfin takes a websocket upgrade on any path (clients use ``/socket``), authenticated
as any request (``Authorization: MediaBrowser …, Token="…"`` or ``?ApiKey=``). On connect
it sends ``{"MessageType":"ForceKeepAlive","Data":<Controls.feed_keepalive_s>}``; the
client sends ``{"MessageType":"KeepAlive"}`` (echoed); a socket without one for
``feed_keepalive_s`` is dropped (checked every fifth of it), and gets ForceKeepAlive again
after three quarters of it.

Emby: ``/embywebsocket?api_key=…&DeviceId=…`` (also under ``/emby``); no JSON keepalive
is needed: any frame from the client, websocket pings included, keeps it open for
``feed_keepalive_s``.

Both send ``{"MessageType":"LibraryChanged","MessageId":"<32 hex>","Data":{"FoldersAddedTo":
[…],"FoldersRemovedFrom":[…],"ItemsAdded":[…],"ItemsRemoved":[…],"ItemsUpdated":[…],
"CollectionFolders":[…]}}`` only to sockets whose token is a user's (never the API key),
debounced as ``LibraryUpdateDuration``: every change pushes the timer back by
``Controls.feed_debounce_s`` (30 s by default); when it fires, one message holds the
window. ``ItemsUpdated`` leaves out what ``ItemsAdded`` has; an item added and removed in
one window is only in ``ItemsRemoved``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from aiohttp import WSMsgType, web

from importer.emulator.feeds.diff import EPISODE, SEASON, SHOW, Diff, Item, episode_fields, show_fields
from importer.emulator.feeds.hub import FeedConnection, FeedHub, serve
from importer.emulator.library import DOUBLE_SECOND, VIRTUAL, Library, Show, View, slot_flags
from importer.emulator.server import session_of

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer

EMBY_PATH: Final = "/embywebsocket"
#: the shortest watchdog period, whatever feed_keepalive_s says
_MIN_CHECK_S: Final = 0.02


class JellyfinNaming:
    """Jellyfin's items: series, seasons and the episodes it lists (one per double episode,
    virtual ones included), with ids as served (Emby: numbers)."""

    def __init__(self, server: JellyfinServer) -> None:
        self.server = server

    def libraries(self) -> list[Library]:
        return self.server.catalog.libraries

    def items(self, lib_index: int, show: Show) -> Iterator[Item]:
        lib = self.server.catalog.libraries[lib_index]
        served = self.server.catalog.item_id
        folder = self.server.folders[lib_index].id
        series = served(lib.jellyfin_id(1, show.index))
        counts = (lib.count(show, View.JELLYFIN), lib.count(show, View.JELLYFIN_PRESENT))
        yield Item(
            SHOW, series, lib_index, folder, None, show.title, show.updated_at,
            hash((*show_fields(show), *counts, len(show.season_sizes))),
        )  # fmt: skip
        flags = slot_flags(show, lib.spec.shape)
        at = 0
        by_number: dict[int, str] = {}
        for season in lib.seasons_of(show):
            chunk = flags[at : at + season.episode_count]
            at += season.episode_count
            listed = sum(1 for f in chunk if f != DOUBLE_SECOND)
            present = sum(1 for f in chunk if f not in (DOUBLE_SECOND, VIRTUAL))
            season_id = served(lib.jellyfin_id(2, show.index, season.ordinal))
            by_number[season.season_number] = season_id
            # the show's title too: a season lists it (parentTitle; Jellyfin's season Path)
            fields = (season.season_number, season.title, season.added_at, season.updated_at, show.title)
            yield Item(
                SEASON, season_id, lib_index, series, series, season.title, season.updated_at,
                hash((*fields, listed, present, series)),
            )  # fmt: skip
        for ep in lib.view_of(show, View.JELLYFIN):
            parent = by_number.get(ep.season_number)
            yield Item(
                EPISODE, served(lib.jellyfin_id(3, show.index, ep.ordinal)), lib_index, parent, series,
                ep.title, ep.updated_at, hash((episode_fields(ep), parent, series)),
            )  # fmt: skip


def _message(kind: str, data: Any = None, with_data: bool = True) -> str:
    body: dict[str, Any] = {"MessageType": kind, "MessageId": uuid.uuid4().hex}
    if with_data:
        body["Data"] = data
    return json.dumps(body, separators=(",", ":"))


def _seconds(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


class LibraryChanges:
    """The debounced ``LibraryChanged`` window of one server (``LibraryChangedNotifier``)."""

    def __init__(self, server: JellyfinServer, hub: FeedHub) -> None:
        self.server = server
        self.hub = hub
        self.added: dict[str, Item] = {}
        self.updated: dict[str, Item] = {}
        self.removed: dict[str, Item] = {}
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, diff: Diff) -> None:
        for it in diff.removed:
            if self.added.pop(it.id, None) is None:
                self.updated.pop(it.id, None)
            self.removed[it.id] = it
        for it in diff.added:
            if self.removed.pop(it.id, None) is not None:
                self.updated[it.id] = it  # there before the window, and again now
            else:
                self.added[it.id] = it
        for it in diff.updated:
            if it.id in self.added:
                self.added[it.id] = it
            else:
                self.updated[it.id] = it
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(float(self.server.controls.feed_debounce_s), 0.0), self.fire)

    def fire(self) -> None:
        self._timer = None
        added, updated, removed = list(self.added.values()), list(self.updated.values()), self.removed
        self.added, self.updated, self.removed = {}, {}, {}
        if not (added or updated or removed):
            return
        folders = self.server.folders
        reorder = self.hub.reorder
        gone = list(removed.values())
        data = {
            "FoldersAddedTo": reorder(list(dict.fromkeys(it.parent for it in added if it.parent))),
            "FoldersRemovedFrom": reorder(list(dict.fromkeys(it.parent for it in gone if it.parent))),
            "ItemsAdded": reorder([it.id for it in added]),
            "ItemsRemoved": reorder(list(removed)),
            "ItemsUpdated": reorder([it.id for it in updated]),
            "CollectionFolders": reorder(
                list(dict.fromkeys(folders[it.section].id for it in [*added, *updated, *gone]))
            ),
        }
        if self.server.controls.feed_noise:
            noise = [
                _message("RefreshProgress", {"ItemId": folders[0].id, "Progress": "100"}),
                _message("ScheduledTasksInfo", []),
            ]
            self.hub.broadcast("noise", lambda conn: noise)
        frame = _message("LibraryChanged", data)
        self.hub.broadcast("LibraryChanged", lambda conn: [frame] if conn.user() is not None else [])

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _prepare_hub(server: JellyfinServer) -> FeedHub:
    return server.feeds.attach(lambda: JellyfinNaming(server), lambda: LibraryChanges(server, server.feeds))


def is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def websocket(server: JellyfinServer, request: web.Request) -> web.StreamResponse:
    """A websocket upgrade (any path on Jellyfin; ``/embywebsocket`` on Emby)."""
    emby = server.kind == "emby"
    if emby and server.route_path(request).lower().rstrip("/") != EMBY_PATH:
        return web.Response(status=404)
    if server.controls.feed_refused:
        server.feeds.stats.refused += 1
        return web.Response(status=404)
    ws = web.WebSocketResponse(autoping=not emby)
    if not ws.can_prepare(request).ok:
        return web.Response(status=400)
    await ws.prepare(request)
    hub = _prepare_hub(server)
    conn = FeedConnection(hub, request, ws, session_of(request))
    hub.open(conn)
    if not emby:
        conn.send("ForceKeepAlive", [_message("ForceKeepAlive", _seconds(server.controls.feed_keepalive_s))])
        hub.stats.force_keepalives += 1

    async def receive() -> None:
        async for msg in ws:
            if emby:
                conn.last_alive = time.monotonic()
                conn.forced = False
            if msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.TEXT:
                _received(conn, msg.data)

    watchdog = asyncio.ensure_future(_watch(server, conn, emby))
    try:
        await serve(conn, receive())
    finally:
        watchdog.cancel()
        hub.close(conn)
    return ws


def _received(conn: FeedConnection, text: str) -> None:
    try:
        message = json.loads(text)
    except ValueError:
        return
    if isinstance(message, dict) and message.get("MessageType") == "KeepAlive":
        conn.last_alive = time.monotonic()
        conn.forced = False
        conn.hub.stats.keepalives += 1
        conn.send("KeepAlive", [_message("KeepAlive", with_data=False)])


async def _watch(server: JellyfinServer, conn: FeedConnection, emby: bool) -> None:
    """Drop the socket after ``feed_keepalive_s`` of silence; on Jellyfin, ask for a
    KeepAlive again after three quarters of it."""
    while not conn.ended:
        limit = float(server.controls.feed_keepalive_s)
        await asyncio.sleep(max(limit / 5, _MIN_CHECK_S))
        silent = time.monotonic() - conn.last_alive
        if silent >= limit:
            conn.hub.stats.lost += 1
            conn.abort()
            return
        if not emby and not conn.forced and silent >= 0.75 * limit:
            conn.forced = True
            conn.hub.stats.force_keepalives += 1
            conn.send("ForceKeepAlive", [_message("ForceKeepAlive", _seconds(limit))])
