"""Plex notifications: ``/:/websockets/notifications`` and ``/:/eventsource/notifications``.

Websocket messages are ``{"NotificationContainer":{"type":T,"size":N,<payload key>:[…]}}``.
SSE events are ``event: T`` / ``data: <json>``, where the data is one bare payload object
per event (``{"TimelineEntry":{…}}``), as recorded off PMS 1.43.3 (research B1), or the
websocket's whole container when ``Controls.plex_sse_envelope`` is set; plus
``event: ping`` / ``data: {}`` after ``Controls.feed_ping_s`` (10 s) without an event.

What a library change sends (research B1):

- an added item: a ``timeline`` entry with ``state`` 0 and ``metadataState`` "created" at
  once, state 1 with "processing" halfway through ``Controls.plex_ready_ms``, and state 5
  without ``metadataState`` when it is over (not for an item gone by then);
- a removed item: ``state`` 9 with ``metadataState`` "deleted", at once;
- an updated item (its metadata, counts, parents or files changed): no timeline entry,
  only ``activity`` messages ``started``, ``updated``, ``ended`` of a
  ``library.refresh.items`` activity whose ``Context.key`` is ``/library/metadata/<id>``.

Ids in a timeline entry are strings, except (deterministic, so that a test can check a
client parses both): ``itemID`` is an int when the ratingKey is 3 mod 4, ``parentItemID``
and ``rootItemID`` are ints when the ratingKey is odd, ``sectionID`` is an int when the
ratingKey is a multiple of 3.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from importer.emulator.feeds.diff import EPISODE, SEASON, SHOW, Diff, Item, episode_fields, show_fields
from importer.emulator.feeds.hub import FeedConnection, FeedHub, serve
from importer.emulator.library import Library, Show, View
from importer.emulator.server import session_of

if TYPE_CHECKING:
    from importer.emulator.plex.server import PlexServer

LIBRARY: Final = "com.plexapp.plugins.library"
WEBSOCKET_PATHS: Final = ("/:/websockets/notifications", "/:/websocket/notifications")
EVENTSOURCE_PATH: Final = "/:/eventsource/notifications"
PAYLOAD_KEYS: Final = {
    "timeline": "TimelineEntry",
    "activity": "ActivityNotification",
    "status": "StatusNotification",
    "progress": "ProgressNotification",
    "log": "LogSentNotification",
}
_NOT_FOUND: Final = b"<html><head><title>Not Found</title></head><body><h1>404 Not Found</h1></body></html>"


# ----------------------------------------------------------------------------- items
class PlexNaming:
    """Plex's items: ratingKeys of shows, seasons and the episodes Plex lists (no virtual
    ones), per section."""

    def __init__(self, server: PlexServer) -> None:
        self.server = server

    def libraries(self) -> list[Library]:
        return [sec.library for sec in self.server.sections.values()]

    def items(self, lib_index: int, show: Show) -> Iterator[Item]:
        sec = list(self.server.sections.values())[lib_index]
        info = sec.info(show.index)
        show_key = str(info.key)
        yield Item(
            SHOW, show_key, sec.key, None, None, show.title, show.updated_at,
            hash((*show_fields(show), info.leaf_count, len(info.seasons))),
        )  # fmt: skip
        by_number: dict[int, str] = {}
        for season in info.seasons:
            key = str(info.season_keys[season.ordinal])
            by_number[season.season_number] = key
            # the show's title too: a season lists it (parentTitle; Jellyfin's season Path)
            fields = (season.season_number, season.title, season.added_at, season.updated_at, show.title)
            count = info.season_counts[season.ordinal]
            yield Item(
                SEASON, key, sec.key, show_key, show_key, season.title, season.updated_at,
                hash((*fields, count, show_key)),
            )  # fmt: skip
        for ep in sec.library.view_of(show, View.PLEX):
            season_key = by_number.get(ep.season_number)
            yield Item(
                EPISODE, str(sec.episode_key(ep)), sec.key, season_key, show_key, ep.title, ep.updated_at,
                hash((episode_fields(ep), season_key, show_key)),
            )  # fmt: skip


# ----------------------------------------------------------------------------- messages
def container(kind: str, payload: list[dict[str, Any]]) -> dict[str, Any]:
    return {"NotificationContainer": {"type": kind, "size": len(payload), PAYLOAD_KEYS[kind]: payload}}


def _id(value: str, as_int: bool) -> str | int:
    return int(value) if as_int and value.lstrip("-").isdigit() else value


def timeline_entry(it: Item, state: int, metadata_state: str | None, updated_at: int) -> dict[str, Any]:
    key = int(it.id)
    entry: dict[str, Any] = {
        "identifier": LIBRARY,
        "sectionID": _id(str(it.section), key % 3 == 0),
        "itemID": _id(it.id, key % 4 == 3),
    }
    if it.parent is not None:
        entry["parentItemID"] = _id(it.parent, key % 2 == 1)
    if it.root is not None:
        entry["rootItemID"] = _id(it.root, key % 2 == 1)
    entry["type"] = it.type
    entry["title"] = it.title
    entry["state"] = state
    if metadata_state is not None:
        entry["metadataState"] = metadata_state
    entry["updatedAt"] = updated_at
    return entry


def activity(event: str, activity_id: str, it: Item, progress: int) -> dict[str, Any]:
    return container(
        "activity",
        [
            {
                "event": event,
                "uuid": activity_id,
                "Activity": {
                    "uuid": activity_id,
                    "type": "library.refresh.items",
                    "cancellable": False,
                    "userID": 1,
                    "title": "Refreshing",
                    "subtitle": it.title,
                    "progress": progress,
                    "Context": {
                        "key": f"/library/metadata/{it.id}",
                        "accessible": True,
                        "exists": True,
                        "refreshed": event == "ended",
                    },
                },
            }
        ],
    )


def noise(sections: Iterable[int], now: int) -> list[dict[str, Any]]:
    """Messages a client must ignore: a DVR (EPG) entry, a movie in section 1, a section
    scan activity, a status and a log message."""
    scan = str(uuid.uuid4())
    section = str(next(iter(sections), 2))
    return [
        container(
            "timeline",
            [
                {
                    "identifier": "tv.plex.providers.epg",
                    "sectionID": "-1",
                    "itemID": "77",
                    "type": 4,
                    "title": "Live TV",
                    "state": 5,
                    "updatedAt": now,
                },
                {
                    "identifier": LIBRARY,
                    "sectionID": "1",
                    "itemID": "512",
                    "type": 1,
                    "title": "A Movie",
                    "state": 5,
                    "updatedAt": now,
                },
                {
                    "identifier": LIBRARY,
                    "sectionID": section,
                    "itemID": "513",
                    "type": -1,
                    "title": "",
                    "state": 5,
                    "mediaState": "analyzing",
                    "updatedAt": now,
                },
            ],
        ),
        container(
            "activity",
            [
                {
                    "event": "ended",
                    "uuid": scan,
                    "Activity": {
                        "uuid": scan,
                        "type": "library.update.section",
                        "cancellable": True,
                        "userID": 1,
                        "title": "Scanning",
                        "subtitle": "TV Shows",
                        "progress": 100,
                        "Context": {"librarySectionID": section},
                    },
                }
            ],
        ),
        container("status", [{"title": "Library scan complete", "notificationName": "LIBRARY_UPDATE"}]),
        container("log", [{"level": 3, "message": "noise", "source": "emulator"}]),
    ]


class PlexPublisher:
    """Turns a diff into notifications for every open Plex feed."""

    def __init__(self, server: PlexServer, hub: FeedHub) -> None:
        self.server = server
        self.hub = hub

    def __call__(self, diff: Diff) -> None:
        hub = self.hub
        now = int(self.server.controls.now())
        messages: list[dict[str, Any]] = []
        if diff.added:
            entries = [timeline_entry(it, 0, "created", it.updated_at) for it in diff.added]
            messages.append(container("timeline", hub.reorder(entries)))
        if diff.removed:
            entries = [timeline_entry(it, 9, "deleted", now) for it in diff.removed]
            messages.append(container("timeline", hub.reorder(entries)))
        refreshes = [(str(uuid.uuid4()), it) for it in diff.updated]
        messages += [activity("started", u, it, 0) for u, it in refreshes]
        if self.server.controls.feed_noise:
            messages += noise(self.server.sections, now)
        self.send(messages)
        ready = float(self.server.controls.plex_ready_ms) / 1000
        added = [it.id for it in diff.added]
        hub.later(ready / 2, lambda: self._step(added, refreshes, final=False))
        hub.later(ready, lambda: self._step(added, refreshes, final=True))

    def _step(self, added: list[str], refreshes: list[tuple[str, Item]], final: bool) -> None:
        """Half-way and at the end of processing, for items still there."""
        tracker = self.hub.tracker
        if tracker is None:
            return
        now_items = [it for i in added if (it := tracker.index.get(i)) is not None]
        messages: list[dict[str, Any]] = []
        if now_items:
            if final:
                entries = [timeline_entry(it, 5, None, it.updated_at) for it in now_items]
            else:
                entries = [timeline_entry(it, 1, "processing", it.updated_at) for it in now_items]
            messages.append(container("timeline", self.hub.reorder(entries)))
        for u, it in refreshes:
            current = tracker.index.get(it.id)
            if current is not None:
                messages.append(activity("ended" if final else "updated", u, current, 100 if final else 50))
        self.send(messages)

    def send(self, messages: list[dict[str, Any]]) -> None:
        for message in self.hub.reorder(messages):
            body = message["NotificationContainer"]
            kind = body["type"]
            ws_frame = json.dumps(message, separators=(",", ":"))
            self.hub.broadcast(kind, functools.partial(_frames, kind=kind, body=body, ws_frame=ws_frame))


def _frames(conn: FeedConnection, kind: str, body: dict[str, Any], ws_frame: str) -> list[str]:
    if conn.websocket is not None:
        return [ws_frame]
    if conn.hub.server.controls.plex_sse_envelope:
        return [f"event: {kind}\ndata: {ws_frame}\n\n"]
    key = PAYLOAD_KEYS[kind]
    return [f"event: {kind}\ndata: {json.dumps({key: one}, separators=(',', ':'))}\n\n" for one in body[key]]


# ----------------------------------------------------------------------------- endpoints
def accepts(raw: str | None) -> Callable[[str], bool]:
    """``filters``: absent, everything but ``log``; empty, everything; ``a,b`` only those;
    ``-a,b`` everything but those."""
    if raw is None:
        return lambda kind: kind != "log"
    raw = raw.strip()
    if not raw:
        return lambda kind: True
    if raw.startswith("-"):
        excluded = {k.strip() for k in raw[1:].split(",")}
        return lambda kind: kind not in excluded
    only = {k.strip() for k in raw.split(",")}
    return lambda kind: kind in only


def _prepare_hub(server: PlexServer) -> FeedHub:
    return server.feeds.attach(lambda: PlexNaming(server), lambda: PlexPublisher(server, server.feeds))


def _refused(server: PlexServer) -> web.Response:
    server.feeds.stats.refused += 1
    return web.Response(
        status=404, body=_NOT_FOUND, content_type="text/html", headers={"X-Plex-Protocol": "1.0"}
    )


async def websocket(server: PlexServer, request: web.Request) -> web.StreamResponse:
    """``GET /:/websockets/notifications``: a websocket of notifications."""
    if server.controls.feed_refused:
        return _refused(server)
    ws = web.WebSocketResponse(autoping=True)
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, body=b"", headers={"X-Plex-Protocol": "1.0"})
    await ws.prepare(request)
    hub = _prepare_hub(server)
    conn = FeedConnection(hub, request, ws, session_of(request), accepts(request.query.get("filters")))
    hub.open(conn)

    async def receive() -> None:
        async for _ in ws:  # a client has nothing to say; pings are answered by aiohttp
            pass

    try:
        await serve(conn, receive())
    finally:
        hub.close(conn)
    return ws


async def eventsource(server: PlexServer, request: web.Request) -> web.StreamResponse:
    """``GET /:/eventsource/notifications``: the same notifications as server-sent events."""
    if server.controls.feed_refused:
        return _refused(server)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
            "X-Plex-Protocol": "1.0",
        }
    )
    await response.prepare(request)
    hub = _prepare_hub(server)
    conn = FeedConnection(hub, request, response, session_of(request), accepts(request.query.get("filters")))
    hub.open(conn)
    try:
        await conn.pump(lambda: (float(server.controls.feed_ping_s), "event: ping\ndata: {}\n\n"))
    finally:
        hub.close(conn)
    return response
