"""The servers' change feeds: where each kind's is, how it is kept alive, and what its
messages mean (sources: ``research/hydration-and-feeds.md`` section B).

- Plex: a websocket on ``/:/websockets/notifications?filters=timeline,activity``. A
  library item is ready to fetch at timeline ``state`` 5 and gone at 9; some edits come
  only as an ``activity`` (``library.refresh.items`` ended). Ids may be strings or ints.
  Plex documents no keepalive: websocket pings.
- Jellyfin: a websocket on ``/socket``, with the token in the ``Authorization`` header.
  ``LibraryChanged`` (debounced by the server, 30 s by default) reaches sessions that have
  a user only. The server asks for ``{"MessageType": "KeepAlive"}`` every ``Data / 2`` s
  in ``ForceKeepAlive``, and drops a silent socket after ``Data`` s.
- Emby: ``/embywebsocket?api_key=…&DeviceId=…``, the same ``LibraryChanged``, kept alive
  with websocket pings.

Every feed is live only: what happens while it is down is found by a catch-up sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from importer.errors import TransportError
from importer.http import HttpClient
from importer.model import StreamKind
from importer.sources import Source
from importer.watching.changes import Action, ItemChange

log = logging.getLogger(__name__)

PLEX_LIBRARY = "com.plexapp.plugins.library"
_PLEX_TYPES = {2: StreamKind.SHOWS, 3: StreamKind.SEASONS, 4: StreamKind.EPISODES}
_PLEX_READY = 5
_PLEX_DELETED = 9
_METADATA_PATH = "/library/metadata/"
#: a ping this often keeps a socket (and the NAT and proxies on its way) alive
PING_S = 30.0
#: Emby's own clients ping every 10 s
EMBY_PING_S = 10.0
#: Jellyfin's ForceKeepAlive when the server has not said yet
JELLYFIN_KEEPALIVE_S = 60.0


@dataclass(frozen=True)
class FeedSpec:
    """Where a server's feed is and how to keep it."""

    path: str
    params: dict[str, str]
    heartbeat: float  # websocket ping interval (seconds)
    json_keepalive: bool  # Jellyfin: send {"MessageType": "KeepAlive"} as the server asks


def feed_spec(source: Source, token: str) -> FeedSpec:
    prefix = source.prefix
    if source.kind == "plex":
        return FeedSpec("/:/websockets/notifications", {"filters": "timeline,activity"}, PING_S, False)
    if source.kind == "jellyfin":
        return FeedSpec(f"{prefix}/socket", {}, PING_S, True)
    device = source.client_id
    # Emby reads the token of a websocket from the query (its own clients send it there)
    return FeedSpec(f"{prefix}/embywebsocket", {"api_key": token, "DeviceId": device}, EMBY_PING_S, False)


# ----------------------------------------------------------------------------- messages
def _id(value: Any) -> str | None:
    """An id as Plex sends it: a string or an int (or -1 / "" for none)."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text if text and text != "-1" else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def plex_changes(message: dict[str, Any]) -> list[ItemChange]:
    """The library items a Plex notification names (every entry, not just the first)."""
    container = message.get("NotificationContainer")
    if not isinstance(container, dict):
        return []
    kind = container.get("type")
    changes: list[ItemChange] = []
    if kind == "timeline":
        for entry in container.get("TimelineEntry") or ():
            if not isinstance(entry, dict) or entry.get("identifier") != PLEX_LIBRARY:
                continue
            stream = _PLEX_TYPES.get(_int(entry.get("type")) or 0)
            item = _id(entry.get("itemID"))
            if stream is None or item is None:
                continue  # movies, music, photos, collections: not a TV library's
            state = _int(entry.get("state"))
            metadata_state = entry.get("metadataState")
            if state == _PLEX_DELETED or metadata_state == "deleted":
                action = Action.REMOVED
            elif state == _PLEX_READY and not metadata_state:
                action = Action.CHANGED
            else:
                continue  # created, matching, downloading...: state 5 follows
            changes.append(ItemChange(item, action, stream, _id(entry.get("sectionID"))))
    elif kind == "activity":
        for note in container.get("ActivityNotification") or ():
            if not isinstance(note, dict) or note.get("event") != "ended":
                continue
            activity = note.get("Activity")
            if not isinstance(activity, dict) or activity.get("type") != "library.refresh.items":
                continue
            context = activity.get("Context")
            key = context.get("key") if isinstance(context, dict) else None
            if isinstance(key, str) and key.startswith(_METADATA_PATH):
                item = _id(key[len(_METADATA_PATH) :].split("/", 1)[0])
                if item is not None:
                    changes.append(ItemChange(item, Action.CHANGED))
    return changes


def mediabrowser_changes(data: Any) -> list[ItemChange]:
    """The items of a Jellyfin/Emby ``LibraryChanged`` message's ``Data``."""
    if not isinstance(data, dict):
        return []
    changes: list[ItemChange] = []
    for key, action in (
        ("ItemsAdded", Action.CHANGED),
        ("ItemsUpdated", Action.CHANGED),
        ("ItemsRemoved", Action.REMOVED),
    ):
        for item in data.get(key) or ():
            source_id = _id(item)
            if source_id is not None:
                changes.append(ItemChange(source_id, action))
    return changes


# ----------------------------------------------------------------------------- the socket
class FeedLost(TransportError):
    """The feed's socket closed or went silent: reconnect, then catch up."""


async def follow(
    http: HttpClient,
    spec: FeedSpec,
    kind: str,
    on_changes: Callable[[list[ItemChange]], None],
    on_open: Callable[[], None],
) -> None:
    """Connect to the feed, call ``on_open`` once it is subscribed, then hand every
    notification's items to ``on_changes`` until the socket ends (:class:`FeedLost`).
    Connection errors are raised as the HTTP client maps them."""
    ws = await http.websocket(spec.path, spec.params, heartbeat=spec.heartbeat)
    keepalive: asyncio.Task[None] | None = None
    try:
        on_open()
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                if msg.type is aiohttp.WSMsgType.ERROR:
                    break
                continue  # binary frames: nothing a client reads
            try:
                message = orjson.loads(msg.data)
            except orjson.JSONDecodeError:
                log.warning("%s feed: a message that is not JSON was skipped", kind)
                continue
            if not isinstance(message, dict):
                continue
            if kind == "plex":
                changes = plex_changes(message)
            else:
                message_type = message.get("MessageType")
                if message_type == "ForceKeepAlive" and spec.json_keepalive:
                    interval = (_int(message.get("Data")) or int(JELLYFIN_KEEPALIVE_S)) / 2
                    if keepalive is not None:
                        keepalive.cancel()
                    keepalive = asyncio.ensure_future(_keep_alive(ws, max(interval, 0.5)))
                    await ws.send_str('{"MessageType":"KeepAlive"}')
                    continue
                changes = (
                    mediabrowser_changes(message.get("Data")) if message_type == "LibraryChanged" else []
                )
            if changes:
                on_changes(changes)
    finally:
        if keepalive is not None:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
        with contextlib.suppress(Exception):
            await ws.close()
    raise FeedLost(f"the {kind} change feed closed (code {ws.close_code})")


async def _keep_alive(ws: aiohttp.ClientWebSocketResponse, interval: float) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        while not ws.closed:
            await asyncio.sleep(interval)
            await ws.send_str('{"MessageType":"KeepAlive"}')
