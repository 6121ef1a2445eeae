"""What every emulated server shares: controls, the request log, auth, base paths.

A server kind (``plex/``, ``jellyfin/``) subclasses :class:`EmulatedServer`,
adds its routes in :meth:`EmulatedServer.add_routes`, and reads its token from
the request in :meth:`EmulatedServer.token_of`. Handlers report how many items
they listed with :func:`listed`, so the log counts items as well as requests,
and the per-item server cost is charged.

Tests and the bench read the log in process (``server.log``) or over HTTP
(``GET /_emulator/log``, authenticated like any other request), change the
controls at run time with ``POST /_emulator/controls``, and change the library
with ``POST /_emulator/changes`` (or :meth:`EmulatedServer.apply_changes`), and revoke
every user token with ``POST /_emulator/sessions/revoke``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from email.utils import formatdate
from typing import Any, ClassVar, TypeVar

from aiohttp import web

from importer.emulator import churn, faults
from importer.emulator.cache import ResponseCache
from importer.emulator.faults import FaultPlan
from importer.emulator.feeds.hub import FeedHub
from importer.emulator.library import Library, LibrarySpec
from importer.emulator.sessions import Session, Sessions

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Typed request keys: aiohttp 3.14 warns (NotAppKeyWarning) about plain string keys.
_ITEMS_KEY = web.RequestKey("emulator.items", int)
_COST_KEY = web.RequestKey("emulator.cost_us", float)
_PEOPLE_KEY = web.RequestKey("emulator.people_cost_us", float)
_SESSION_KEY = web.RequestKey("emulator.session", Session)
#: aiohttp's own request-line limit (8190 by default) would answer first, and not as a
#: real server does: the emulator's limit is ``Controls.url_limit``
_MAX_LINE = 1 << 20
_T = TypeVar("_T")


@dataclass
class Controls:
    """Knobs that make the emulated server behave like a slow, busy or odd real one."""

    latency_ms: float = 0.0  # added to every request, as network + server overhead
    item_cost_us: float = 0.0  # server time per item listed
    count_cost_ms: float = 0.0  # Jellyfin: a total count is a full COUNT(*) per request
    people_cost_factor: float = 27.0  # Jellyfin: Fields=People multiplies the item cost
    #: Jellyfin: seconds per item rendered with People (GetPeople per item on 10.10/10.11);
    #: charged as server time and counted apart (LoggedRequest.people_cost_us)
    people_cost_s: float = 0.0
    #: the longest path + query answered; longer is a 400 (Plex) or 414 (Jellyfin, Emby).
    #: None: the server's default (EmulatedServer.default_url_limit)
    url_limit: int | None = None
    clock_offset_s: float = 0.0  # the server's clock minus ours
    page_cap: int | None = None  # Plex: silently return at most this many items per page
    gzip: bool = True  # compress when the client asks for it
    jellyfin_version: str = "10.10.7"  # 10.8-10.10: plain MinDateLastSaved returns no items
    cache_responses: bool = False  # answer a repeated request from disk (see cache.py)
    faults: FaultPlan | None = None  # misbehave on demand (see faults.py)
    # Live change feeds (see feeds/): Jellyfin/Emby LibraryChanged debounce (LibraryUpdateDuration)
    feed_debounce_s: float = 30.0
    feed_keepalive_s: float = 60.0  # Jellyfin ForceKeepAlive Data; a silent socket is dropped after it
    plex_ready_ms: float = 300.0  # Plex: from timeline state 0 (created) to state 5 (processed)
    feed_ping_s: float = 10.0  # Plex SSE: "event: ping" after this long without an event
    plex_sse_envelope: bool = False  # Plex SSE data: the websocket's NotificationContainer
    feed_refused: bool = False  # the feed's upgrade / SSE request is a 404 (a server without it)
    feed_duplicates: float = 0.0  # probability that a feed message is sent twice
    feed_reorder: bool = False  # the entries and messages of one change in shuffled order
    feed_noise: bool = False  # messages and entries a client must ignore

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` as posted to ``/_emulator/controls``: ``faults`` in its JSON form
        (a list, or null for none) with an optional ``fault_seed``."""
        changes = dict(changes)
        if "fault_seed" in changes and "faults" not in changes:
            raise ValueError("fault_seed goes with faults")
        if "faults" in changes and not isinstance(changes["faults"], FaultPlan | None):
            changes["faults"] = FaultPlan.from_json(changes["faults"], changes.pop("fault_seed", 0))
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown controls: {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        plan = self.faults
        out["faults"] = None if plan is None else plan.to_json()
        if plan is not None:
            out["fault_seed"] = plan.seed
        return out

    def now(self) -> float:
        """The server's clock."""
        return time.time() + self.clock_offset_s


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str  # without the base path
    query: dict[str, str]
    status: int
    items: int  # items listed in the response
    bytes: int  # body bytes, before any compression
    started: float
    seconds: float
    cost_us: float = 0.0  # server time charged: items x item_cost_us plus charge()
    people_cost_us: float = 0.0  # the part of cost_us that Fields=People cost (people_cost_s)
    fault: str | None = None  # the kind of fault injected into the answer (status 0: reset)


@dataclass
class RequestLog:
    """Every request the server answered, in order."""

    entries: list[LoggedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.entries.append(entry)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(list(self.entries))

    def matching(self, path_prefix: str = "") -> list[LoggedRequest]:
        return [e for e in self if e.path.startswith(path_prefix)]

    def counters(self) -> dict[str, int]:
        entries = list(self)
        by_status = Counter(str(e.status) for e in entries)
        by_fault = Counter(e.fault for e in entries if e.fault is not None)
        return {
            "requests": len(entries),
            "items": sum(e.items for e in entries),
            "bytes": sum(e.bytes for e in entries),
            "cost_us": round(sum(e.cost_us for e in entries)),
            "people_cost_us": round(sum(e.people_cost_us for e in entries)),
            **{f"status_{k}": v for k, v in sorted(by_status.items())},
            **{f"fault_{k}": v for k, v in sorted(by_fault.items())},
        }

    def as_json(self) -> dict[str, Any]:
        return {"counters": self.counters(), "entries": [asdict(e) for e in self]}


def _logged_status(response: web.StreamResponse) -> int:
    return response.logged_status if isinstance(response, faults.Scripted) else response.status


def _logged_bytes(response: web.StreamResponse) -> int:
    if isinstance(response, faults.Scripted):
        return response.logged_bytes
    body = response.body if isinstance(response, web.Response) else None
    return len(body) if isinstance(body, bytes) else 0


def listed(request: web.Request, items: int) -> None:
    """Record that this response lists ``items`` items (for the log and the item cost)."""
    request[_ITEMS_KEY] = request.get(_ITEMS_KEY, 0) + items


def session_of(request: web.Request) -> Session | None:
    """Whose token an authorized request carries (None on a public path)."""
    return request.get(_SESSION_KEY)


def charge(request: web.Request, microseconds: float) -> None:
    """Charge extra server time to this request (a COUNT(*), an expensive field), on top of
    the per-item cost; the middleware sleeps it off and logs the total as ``cost_us``."""
    request[_COST_KEY] = request.get(_COST_KEY, 0.0) + microseconds


def charge_people(request: web.Request, microseconds: float) -> None:
    """Charge server time that ``Fields=People`` cost: part of ``cost_us``, and also counted
    on its own (``people_cost_us``) so that a bench can tell what hydration costs a server."""
    charge(request, microseconds)
    request[_PEOPLE_KEY] = request.get(_PEOPLE_KEY, 0.0) + microseconds


@dataclass(frozen=True)
class TvLibrary:
    """One TV library of a server: its name and generated content."""

    name: str
    library: Library


class EmulatedServer:
    """An aiohttp application that answers like one kind of media server."""

    kind: ClassVar[str] = ""
    #: paths that answer without a token, as on the real server
    public_paths: ClassVar[frozenset[str]] = frozenset()
    #: how long :meth:`stop` lets requests in flight finish before it cancels them, and
    #: then waits for them to end (aiohttp's default is 60 s, twice: a stalled request
    #: would hold a stop for two minutes)
    stop_grace_s: ClassVar[float] = 2.0
    #: the longest path + query this kind of server answers (``Controls.url_limit``)
    default_url_limit: ClassVar[int] = 8192

    def __init__(
        self,
        libraries: list[TvLibrary] | Library | LibrarySpec | None = None,
        *,
        token: str | None = None,
        controls: Controls | None = None,
        base_path: str = "",
        seed: int = 1,
        users: dict[str, str] | None = None,
    ) -> None:
        """``token`` is the server's API key (random by default); ``users`` maps user names to
        passwords for logins (default: one user, ``emulator``, with a random password)."""
        if libraries is None:
            libraries = LibrarySpec(seed=seed)
        if isinstance(libraries, LibrarySpec):
            libraries = Library(libraries)
        if isinstance(libraries, Library):
            libraries = [TvLibrary("TV Shows", libraries)]
        self.libraries: list[TvLibrary] = libraries
        self.token = token or secrets.token_hex(16)
        if users is None:
            users = {"emulator": secrets.token_urlsafe(12)}
        self.sessions = Sessions(self.token, dict(users))
        self.controls = controls or Controls()
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.seed = seed
        self.log = RequestLog()
        self.cache = ResponseCache()
        #: live change feeds: open connections, counters (``feeds.stats``), what changed
        self.feeds = FeedHub(self)
        self.url = ""  # set once started
        #: server time charged for Fields=People since the start (µs), whatever the log holds
        self.people_cost_us = 0.0
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        for lib in self.libraries:
            lib.library.listeners.append(self.library_changed)

    def library_changed(self) -> None:
        """A library changed: drop whatever was rendered or counted from it (subclasses
        drop their own caches too)."""
        self.cache.clear()
        self.feeds.changed()  # nothing unless a feed is open

    # -------------------------------------------------------------- changing the library
    def mutate(self, fn: Callable[[], _T], timeout: float = 60) -> _T:
        """Run ``fn`` (which changes a library) where requests are handled: on the server's
        loop when it runs in another thread, so that no handler sees a half-made change."""
        loop = self._loop
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if loop is None or not loop.is_running() or here is loop:
            return fn()

        async def run() -> _T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout)

    def apply_changes(self, kind: str, count: int, seed: int, library: int = 0) -> list[dict[str, Any]]:
        """``count`` random changes of ``kind`` (see ``churn.KINDS``) to one library, chosen
        from ``seed`` and stamped with the server's clock; what was done, in order."""
        lib = self.libraries[library].library
        return self.mutate(lambda: churn.apply(lib, kind, count, seed, int(self.controls.now())))

    def add_library(self, name: str, library: Library) -> int:
        """A TV library added to the server (as an admin adds one); its index."""

        def add() -> int:
            self.libraries.append(TvLibrary(name, library))
            library.listeners.append(self.library_changed)
            self.libraries_added()
            self.library_changed()
            return len(self.libraries) - 1

        return self.mutate(add)

    # -------------------------------------------------------------- for subclasses
    def libraries_added(self) -> None:
        """Index libraries appended to :attr:`libraries` (subclasses)."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    def token_of(self, request: web.Request) -> str | None:
        raise NotImplementedError

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, text="Unauthorized")

    def is_public(self, path: str) -> bool:
        """Whether ``path`` (without the base path) answers without a token."""
        return path in self.public_paths

    def url_limit(self) -> int:
        limit = self.controls.url_limit
        return self.default_url_limit if limit is None else limit

    def url_too_long(self, request: web.Request) -> web.StreamResponse:
        """The answer to a path + query longer than :meth:`url_limit` (before any auth, as
        the HTTP layer or a proxy in front answers it)."""
        return web.Response(status=414)

    # -------------------------------------------------------------- the application
    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        routes = app
        if self.base_path:  # as behind a reverse proxy: http://host/jellyfin/...
            routes = web.Application()
        self.add_routes(routes.router)
        routes.router.add_get("/_emulator/log", self._get_log)
        routes.router.add_post("/_emulator/controls", self._post_controls)
        routes.router.add_post("/_emulator/changes", self._post_changes)
        self.feeds.add_routes(routes.router)  # GET (counters), POST {"drop": true}
        routes.router.add_post("/_emulator/sessions/revoke", self._post_revoke)
        if routes is not app:
            app.add_subapp(self.base_path, routes)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.time()
        path = request.path
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path) :] or "/"
        if self.controls.latency_ms:
            await asyncio.sleep(self.controls.latency_ms / 1000)
        plan = self.controls.faults
        injection = None
        if plan is not None and not path.startswith("/_emulator/"):
            injection = plan.choose(path)
        # A fault that replaces the answer stands in front of the server, like a proxy: no auth.
        replaced = await faults.replace(injection, request) if injection is not None else None
        if replaced is not None:
            response: web.StreamResponse = replaced
        elif len(request.raw_path) > self.url_limit() and not path.startswith("/_emulator/"):
            response = self.url_too_long(request)
        elif not self.is_public(path) and not self._authorize(request):
            response = self.unauthorized(request)
        else:
            try:
                response = await self._maybe_cached(request, handler)
            except web.HTTPException as exc:
                response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
        items = request.get(_ITEMS_KEY, 0)
        cost_us = items * self.controls.item_cost_us + request.get(_COST_KEY, 0.0)
        people_us = request.get(_PEOPLE_KEY, 0.0)
        self.people_cost_us += people_us
        if cost_us > 0:
            await asyncio.sleep(cost_us / 1e6)
        if plan is not None:
            original = response
            if injection is not None:
                faulty = faults.rewrite(plan, injection, path, response)
                if faulty is None:
                    plan.refund(injection)
                    injection = None
                else:
                    response = faulty
            if plan.observes:
                plan.observe(path, original)
        # The Date header follows the server's clock: incremental runs take watermarks from it.
        response.headers["Date"] = formatdate(self.controls.now(), usegmt=True)
        if (
            self.controls.gzip
            and isinstance(response, web.Response)
            and response.body is not None
            and "Content-Encoding" not in response.headers  # a gzip bomb is compressed already
            and "gzip" in request.headers.get("Accept-Encoding", "")
        ):
            response.enable_compression(web.ContentCoding.gzip)
        if not path.startswith("/_emulator/"):
            self.log.add(
                LoggedRequest(
                    method=request.method,
                    path=path,
                    query=dict(request.query),
                    status=_logged_status(response),
                    items=items,
                    bytes=_logged_bytes(response),
                    started=started,
                    seconds=time.time() - started,
                    cost_us=cost_us,
                    people_cost_us=people_us,
                    fault=injection.fault.kind if injection is not None else None,
                )
            )
        return response

    def _authorize(self, request: web.Request) -> bool:
        session = self.sessions.of(self.token_of(request))
        if session is None:
            return False
        request[_SESSION_KEY] = session
        return True

    async def _maybe_cached(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.controls.cache_responses or request.method != "GET":
            return await handler(request)
        key = self.cache.key(request.method, request.path, dict(request.query), dict(request.headers))
        hit = self.cache.get(key)
        if hit is not None:
            entry, body = hit
            request[_ITEMS_KEY] = entry.items
            request[_COST_KEY] = entry.cost_us
            request[_PEOPLE_KEY] = entry.people_cost_us
            return web.Response(body=body, status=entry.status, headers=dict(entry.headers))
        response = await handler(request)
        if isinstance(response, web.Response) and isinstance(response.body, bytes) and response.status == 200:
            self.cache.put(
                key, response.body, response.status, dict(response.headers),
                request.get(_ITEMS_KEY, 0), request.get(_COST_KEY, 0.0), request.get(_PEOPLE_KEY, 0.0),
            )  # fmt: skip
        return response

    async def _get_log(self, request: web.Request) -> web.Response:
        return web.json_response(self.log.as_json())

    async def _post_controls(self, request: web.Request) -> web.Response:
        try:
            self.controls.update(await request.json())
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.cache.clear()  # answers may differ now
        return web.json_response(self.controls.as_json())

    async def _post_revoke(self, request: web.Request) -> web.Response:
        """Every user token stops working (an admin signed all devices out); the API key stays."""
        return web.json_response({"revoked": self.sessions.revoke_user_tokens()})

    async def _post_changes(self, request: web.Request) -> web.Response:
        """``{"kind": ..., "count": ..., "seed": ..., "library": 0}``: random changes, applied
        here on the loop, between two requests."""
        try:
            body = await request.json()
            kind, count, seed = str(body["kind"]), int(body.get("count", 1)), int(body.get("seed", 1))
            done = self.apply_changes(kind, count, seed, int(body.get("library", 0)))
        except (ValueError, KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
            return web.json_response({"error": f"{type(exc).__name__}: {exc}"}, status=400)
        return web.json_response({"changes": done, "version": self.libraries[0].library.version})

    # -------------------------------------------------------------- running
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: any free port) in the running loop; returns the URL."""
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(
            self.make_app(), access_log=None, shutdown_timeout=self.stop_grace_s, max_line_size=_MAX_LINE
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.url = f"http://{host}:{bound}{self.base_path}"
        return self.url

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish (``stop_grace_s``), cancel the rest."""
        if self._runner is not None:
            await self.feeds.close_all()  # long-lived feeds would hold the stop for stop_grace_s
            await self._runner.cleanup()
            self._runner = None
        self._loop = None

    @contextmanager
    def running_in_thread(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Serve from a background thread with its own event loop (for synchronous callers)."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start(host, port))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name=f"emulator-{self.kind}", daemon=True)
        thread.start()
        ready.wait(30)
        try:
            yield self.url
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(30)
