"""Feed connections of one server, and what a library change sends them.

The server's library listener calls :meth:`FeedHub.changed`. With no feed connection
open that is all it does (the benches change million-episode libraries). With one open,
it marks the libraries dirty and, once per loop iteration (``loop.call_soon``), asks the
:class:`~importer.emulator.feeds.diff.Tracker` what changed and hands the
:class:`~importer.emulator.feeds.diff.Diff` to the server kind's publisher
(``feeds/plex.py``, ``feeds/jellyfin.py``), which turns it into messages for the open
connections (:meth:`FeedConnection.send`).

Faults of the feed (``Controls.feed_*``): duplicated and reordered messages, a refused
feed (the protocol modules), every connection dropped at once (``POST /_emulator/feed``
``{"drop": true}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from importer.emulator.feeds.diff import Diff, Naming, Tracker
from importer.emulator.sessions import Session

if TYPE_CHECKING:
    from importer.emulator.server import EmulatedServer

Publisher = Callable[[Diff], None]
_T = TypeVar("_T")
#: how long :meth:`FeedHub.close_all` waits for a websocket's closing handshake
CLOSE_WAIT_S = 1.0


@dataclass
class FeedStats:
    """Counters for tests."""

    connections: int = 0  # feed connections opened since the start
    open: int = 0  # open now
    refused: int = 0  # feed requests answered 404 (Controls.feed_refused)
    messages: int = 0  # messages (websocket frames, SSE events) written, duplicates and pings included
    duplicates: int = 0  # messages written twice (Controls.feed_duplicates)
    pings: int = 0  # SSE ping events
    keepalives: int = 0  # KeepAlive messages received (Jellyfin)
    force_keepalives: int = 0  # ForceKeepAlive messages sent (Jellyfin)
    lost: int = 0  # sockets dropped for want of a keepalive
    drops: int = 0  # connections aborted by POST /_emulator/feed {"drop": true}
    closed: int = 0  # connections closed by EmulatedServer.stop()
    diffs: int = 0  # changes published (non-empty diffs)

    def as_json(self) -> dict[str, int]:
        return asdict(self)


class FeedConnection:
    """One open feed: a websocket or an SSE stream, and the frames queued for it."""

    def __init__(
        self,
        hub: FeedHub,
        request: web.Request,
        response: web.StreamResponse,
        session: Session | None,
        accepts: Callable[[str], bool] = lambda kind: True,
    ) -> None:
        self.hub = hub
        self.request = request
        self.response = response
        self.session = session
        self.token = hub.server.token_of(request)
        self.accepts = accepts
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.opened = time.monotonic()
        self.last_alive = self.opened  # the last KeepAlive (Jellyfin) or frame (Emby)
        self.forced = False  # a ForceKeepAlive was sent for the current silence
        self.ended = False

    @property
    def websocket(self) -> web.WebSocketResponse | None:
        return self.response if isinstance(self.response, web.WebSocketResponse) else None

    def user(self) -> str | None:
        """The user whose token opened the feed, while that token is valid (None: API key)."""
        session = self.hub.server.sessions.of(self.token)
        return None if session is None else session.user

    def send(self, kind: str, frames: list[str]) -> None:
        """Queue the frames of one message of type ``kind`` (dropped unless accepted); each is
        sent twice with probability ``Controls.feed_duplicates``."""
        if self.ended or not self.accepts(kind):
            return
        twice = self.hub.controls_float("feed_duplicates")
        for frame in frames:
            self.queue.put_nowait(frame)
            if twice > 0 and self.hub.rng.random() < twice:
                self.queue.put_nowait(frame)
                self.hub.stats.duplicates += 1

    async def pump(self, ping: Callable[[], tuple[float, str] | None] = lambda: None) -> None:
        """Write queued frames until the connection ends; ``ping`` gives (seconds of quiet
        after which to write a frame, the frame) for SSE."""
        write = self._write
        while not self.ended:
            every = ping()
            if every is None:
                frame = await self.queue.get()
            else:
                try:
                    frame = await asyncio.wait_for(self.queue.get(), every[0])
                except TimeoutError:
                    frame = every[1]
                    self.hub.stats.pings += 1
            if frame is None:
                return
            try:
                await write(frame)
            except (ConnectionError, RuntimeError):  # the peer is gone
                self.ended = True
                return
            self.hub.stats.messages += 1

    async def _write(self, frame: str) -> None:
        ws = self.websocket
        if ws is not None:
            await ws.send_str(frame)
        else:
            await self.response.write(frame.encode())

    def abort(self) -> None:
        """Cut the connection: no close frame, no end of stream."""
        self.ended = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()
        self.queue.put_nowait(None)

    async def close(self) -> None:
        """End the connection cleanly (a close frame; the end of an SSE stream)."""
        self.ended = True
        self.queue.put_nowait(None)
        ws = self.websocket
        if ws is None:
            return
        try:
            await asyncio.wait_for(ws.close(code=1001, message=b"server stopping"), CLOSE_WAIT_S)
        except (TimeoutError, ConnectionError, RuntimeError):
            self.abort()


class FeedHub:
    """The server's feed connections, what changed since they opened, and the counters."""

    def __init__(self, server: EmulatedServer) -> None:
        self.server = server
        self.stats = FeedStats()
        self.rng = random.Random(server.seed ^ 0xFEED)
        self.connections: set[FeedConnection] = set()
        #: set by the server kind's feed module when its first connection opens
        self.naming: Naming | None = None
        self.publisher: Publisher | None = None
        self.tracker: Tracker | None = None
        self._dirty = False
        self._timers: set[asyncio.TimerHandle] = set()

    def attach(self, naming: Callable[[], Naming], publisher: Callable[[], Publisher]) -> FeedHub:
        """The server kind's naming and publisher, made on its first feed request."""
        if self.naming is None:
            self.naming = naming()
        if self.publisher is None:
            self.publisher = publisher()
        return self

    # ------------------------------------------------------------------ controls
    def controls_float(self, name: str) -> float:
        return float(getattr(self.server.controls, name))

    def reorder(self, items: list[_T]) -> list[_T]:
        """``items`` shuffled when ``Controls.feed_reorder`` asks for it."""
        if self.server.controls.feed_reorder and len(items) > 1:
            items = list(items)
            self.rng.shuffle(items)
        return items

    # ------------------------------------------------------------------ connections
    def open(self, conn: FeedConnection) -> None:
        if self.tracker is None and self.naming is not None:
            self.tracker = Tracker(self.naming)  # the state every later diff starts from
        self.connections.add(conn)
        self.stats.connections += 1
        self.stats.open = len(self.connections)

    def close(self, conn: FeedConnection) -> None:
        conn.ended = True
        self.connections.discard(conn)
        self.stats.open = len(self.connections)
        if not self.connections:
            self.tracker = None  # nothing to tell: no diff until a feed opens again

    def broadcast(self, kind: str, frames: Callable[[FeedConnection], list[str]]) -> None:
        """One message to every open connection, as ``frames`` encodes it for each."""
        for conn in list(self.connections):
            conn.send(kind, frames(conn))

    def drop_all(self) -> int:
        """Abort every connection (a socket dropped mid-stream); how many."""
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        self.stats.drops += len(conns)
        return len(conns)

    async def close_all(self) -> None:
        """Close every connection and cancel what was scheduled (the server stops)."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        cancel = getattr(self.publisher, "cancel", None)
        if callable(cancel):
            cancel()
        conns = list(self.connections)
        self.stats.closed += len(conns)
        await asyncio.gather(*(conn.close() for conn in conns), return_exceptions=True)

    # ------------------------------------------------------------------ changes
    def changed(self) -> None:
        """The library listener: schedule one diff for the changes of this loop iteration."""
        if not self.connections or self._dirty:
            return
        loop = self.server._loop
        if loop is None or loop.is_closed():
            return
        self._dirty = True
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            loop.call_soon(self._flush)
        else:  # a change made from another thread
            loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        self._dirty = False
        tracker, publisher = self.tracker, self.publisher
        if tracker is None or publisher is None:
            return
        diff = tracker.diff()
        if diff:
            self.stats.diffs += 1
            publisher(diff)

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` seconds on the server's loop, unless the server stops."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def run() -> None:
            if handle is not None:
                self._timers.discard(handle)
            fn()

        handle = loop.call_later(max(delay, 0.0), run)
        self._timers.add(handle)

    # ------------------------------------------------------------------ the control endpoint
    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/_emulator/feed", self._get)
        router.add_post("/_emulator/feed", self._post)

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_json())

    async def _post(self, request: web.Request) -> web.Response:
        """``{"drop": true}``: abort every open feed connection."""
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or set(body) - {"drop"}:
            return web.json_response({"error": 'expected {"drop": true}'}, status=400)
        dropped = self.drop_all() if body.get("drop") else 0
        return web.json_response({"dropped": dropped, **self.stats.as_json()})


async def serve(conn: FeedConnection, receive: Awaitable[None]) -> None:
    """Run a websocket's receive loop and its writer together until either ends."""
    writer = asyncio.ensure_future(conn.pump())
    try:
        await receive
    finally:
        conn.ended = True
        conn.queue.put_nowait(None)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
