"""The plex.tv endpoints of the PIN login, served by the emulated Plex server itself, so
that a test points the importer's plex.tv and clients.plex.tv URLs at it.

As plex.tv answers (research C2; plex-spec "Authenticating with Plex"; plexapi
``MyPlexPinLogin``):

- ``POST /api/v2/pins?strong=true`` (no token) needs ``X-Plex-Client-Identifier`` and
  ``X-Plex-Product``, else a 400 with plex.tv's error JSON; 201 with the PIN, whose
  ``authToken`` is null until the user approves it;
- ``GET /api/v2/pins/{id}`` (no token): the PIN, 404 when unknown;
- ``GET /api/v2/resources`` (the account's token): the server device (``provides``
  ``server``, its machine id, an ``accessToken`` for it, a local connection to its URL)
  and a player that is not a server;
- ``GET /api/v2/user``: 200 for a user's token, 401 otherwise.

The user approving the link in a browser is ``POST /_emulator/pins/{id or code}/authorize``
(body ``{"user": NAME}``, default the first user), or :attr:`PlexTv.approve_after_polls`.
Tokens are the server's user tokens (``server.sessions``): the account's token is issued
to the device ``plex.tv:<client id>``, the server's ``accessToken`` to the client id.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import web
from yarl import URL

from importer.emulator.server import session_of

if TYPE_CHECKING:
    from importer.emulator.plex.server import PlexServer

#: the lifetime of a PIN, as plex.tv states it (``expiresIn``)
PIN_LIFETIME_S: Final = 1799
ACCOUNT_DEVICE: Final = "plex.tv:"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def plex_tv_error(status: int, code: int, message: str) -> web.Response:
    """plex.tv's error document, ``{"errors":[{"code","message","status"}]}``."""
    body = {"errors": [{"code": code, "message": message, "status": status}]}
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json")


@dataclass
class Pin:
    id: int
    code: str
    client_id: str
    product: str
    created: float
    user: str | None = None  # who approved it
    token: str | None = None  # the account's token, once approved
    polls: int = 0


@dataclass
class PlexTv:
    """The PINs of one emulated plex.tv."""

    #: approve a PIN (as the first user) at this poll of it; None: only the control does
    approve_after_polls: int | None = None
    pins: dict[int, Pin] = field(default_factory=dict)
    _next: int = 564964751
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def create(self, client_id: str, product: str, strong: bool, now: float) -> Pin:
        with self._lock:
            self._next += 1
            code = secrets.token_hex(13)[:25] if strong else secrets.token_hex(2).upper()
            pin = Pin(self._next, code, client_id, product, now)
            self.pins[pin.id] = pin
            return pin

    def find(self, key: str) -> Pin | None:
        """A PIN by its id or its code."""
        with self._lock:
            if key.isdigit() and int(key) in self.pins:
                return self.pins[int(key)]
            return next((p for p in self.pins.values() if p.code == key), None)


def pin_json(pin: Pin) -> dict[str, Any]:
    return {
        "id": pin.id,
        "code": pin.code,
        "product": pin.product,
        "trusted": False,
        "qr": f"https://plex.tv/api/v2/pins/qr/{pin.code}",
        "clientIdentifier": pin.client_id,
        "location": {"code": "ZZ", "country": "Emulated", "subdivisions": "", "coordinates": "0, 0"},
        "expiresIn": max(0, int(pin.created + PIN_LIFETIME_S - time.time())),
        "createdAt": _iso(pin.created),
        "expiresAt": _iso(pin.created + PIN_LIFETIME_S),
        "authToken": pin.token,
        "newRegistration": None,
    }


def _answer(value: object, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(value), status=status, content_type="application/json")


def approve(server: PlexServer, pin: Pin, user: str) -> None:
    if pin.token is None:
        pin.user = user
        pin.token = server.sessions.issue(user, ACCOUNT_DEVICE + pin.client_id)


async def post_pins(server: PlexServer, request: web.Request) -> web.Response:
    client_id = request.headers.get("X-Plex-Client-Identifier", "")
    if not client_id:
        return plex_tv_error(400, 1000, "X-Plex-Client-Identifier is missing")
    product = request.headers.get("X-Plex-Product", "")
    if not product:
        return plex_tv_error(400, 1000, "X-Plex-Product is missing")
    strong = request.query.get("strong", "").lower() in ("true", "1")
    pin = server.plextv.create(client_id, product, strong, time.time())
    return _answer(pin_json(pin), status=201)


async def get_pin(server: PlexServer, request: web.Request) -> web.Response:
    pin = server.plextv.find(request.match_info["id"])
    if pin is None or not request.match_info["id"].isdigit():
        return plex_tv_error(404, 1020, "Code not found or expired")
    if time.time() > pin.created + PIN_LIFETIME_S:
        return plex_tv_error(404, 1020, "Code not found or expired")
    pin.polls += 1
    after = server.plextv.approve_after_polls
    if after is not None and pin.polls >= after and server.sessions.users:
        approve(server, pin, next(iter(server.sessions.users)))
    return _answer(pin_json(pin))


def _device(server: PlexServer, token: str | None, base: str) -> dict[str, Any]:
    url = URL(base)
    return {
        "name": server.friendly_name,
        "product": "Plex Media Server",
        "productVersion": "1.41.3.9314-a0bfb8370",
        "platform": "Linux",
        "platformVersion": "6.1",
        "device": "PC",
        "clientIdentifier": server.machine_identifier,
        "createdAt": "2024-01-01T00:00:00Z",
        "lastSeenAt": _iso(time.time()),
        "provides": "server",
        "ownerId": None,
        "sourceTitle": None,
        "publicAddress": "203.0.113.7",
        "accessToken": token,
        "owned": True,
        "home": False,
        "synced": False,
        "relay": True,
        "presence": True,
        "httpsRequired": False,
        "publicAddressMatches": True,
        "dnsRebindingProtection": False,
        "natLoopbackSupported": False,
        "connections": [
            {
                "protocol": url.scheme,
                "address": url.host,
                "port": url.port,
                "uri": base,
                "local": True,
                "relay": False,
                "IPv6": False,
            },
            {
                "protocol": "https",
                "address": "203.0.113.7",
                "port": 8443,
                "uri": "https://203-0-113-7.0123456789abcdef.plex.direct:8443",
                "local": False,
                "relay": True,
                "IPv6": False,
            },
        ],
    }


def _player() -> dict[str, Any]:
    return {
        "name": "Living room TV",
        "product": "Plex for Android (TV)",
        "productVersion": "10.20.0.1234",
        "platform": "Android",
        "platformVersion": "12",
        "device": "BRAVIA 4K",
        "clientIdentifier": "emulated-player-0001",
        "createdAt": "2024-01-01T00:00:00Z",
        "lastSeenAt": _iso(time.time()),
        "provides": "client,player,pubsub-player",
        "ownerId": None,
        "sourceTitle": None,
        "publicAddress": "203.0.113.7",
        "accessToken": secrets.token_hex(10),  # a player's own token: good for nothing here
        "owned": True,
        "home": False,
        "synced": False,
        "relay": False,
        "presence": False,
        "httpsRequired": False,
        "publicAddressMatches": True,
        "dnsRebindingProtection": False,
        "natLoopbackSupported": False,
        "connections": [],
    }


async def get_resources(server: PlexServer, request: web.Request) -> web.Response:
    session = session_of(request)
    if session is None or session.user is None:
        return plex_tv_error(401, 1001, "User could not be authenticated")
    client_id = session.device_id.removeprefix(ACCOUNT_DEVICE)
    token = server.sessions.issue(session.user, client_id)
    return _answer([_player(), _device(server, token, server.url)])


async def get_user(server: PlexServer, request: web.Request) -> web.Response:
    session = session_of(request)
    if session is None or session.user is None:
        return plex_tv_error(401, 1001, "User could not be authenticated")
    names = list(server.sessions.users)
    number = names.index(session.user) + 1 if session.user in names else 1
    return _answer(
        {
            "id": 1000 + number,
            "uuid": f"{number:016x}",
            "username": session.user,
            "title": session.user,
            "email": f"{session.user}@example.invalid",
            "locale": None,
            "emailOnlyAuth": False,
            "hasPassword": True,
            "protected": False,
            "thumb": "",
            "home": False,
            "subscription": {"active": False, "status": "Inactive", "plan": None, "features": []},
        }
    )


async def post_authorize(server: PlexServer, request: web.Request) -> web.Response:
    """The user approves the PIN's link in a browser (test control, the API key's)."""
    pin = server.plextv.find(request.match_info["pin"])
    if pin is None:
        return web.json_response({"error": "no such PIN"}, status=404)
    try:
        body = await request.json() if await request.read() else {}
    except ValueError:
        body = None
    user = body.get("user") if isinstance(body, dict) else None
    if user is None and server.sessions.users:
        user = next(iter(server.sessions.users))
    if not isinstance(user, str) or user not in server.sessions.users:
        return web.json_response({"error": "no such user"}, status=400)
    approve(server, pin, user)
    return web.json_response({"id": pin.id, "user": user})
