"""Jellyfin's Quick Connect (Emby has none): a device asks for a code, a logged-in user
approves the code elsewhere, and the device trades its secret for a token.

As Jellyfin does (research C1, ``QuickConnectController.cs``, ``QuickConnectManager.cs``):

1. ``GET /QuickConnect/Enabled``: ``true``.
2. ``POST /QuickConnect/Initiate`` with the four client parts of a login in the
   authorization header: ``QuickConnectResult`` with a 6-digit ``Code`` and a ``Secret``.
3. ``POST /QuickConnect/Authorize?code=``: a user's token approves it (the API key has no
   user: 403); an unknown code is a 404.
4. ``GET /QuickConnect/Connect?secret=``: the request, ``Authenticated`` once approved;
   404 once unknown or expired (10 minutes, or 1 minute after the approval).
5. ``POST /Users/AuthenticateWithQuickConnect`` ``{"Secret"}``: an ``AuthenticationResult``
   whose token belongs to the approving user on the initiating ``DeviceId``.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from aiohttp import web

from importer.emulator.jellyfin.login import (
    Client,
    authentication_result,
    client_of,
    json_body,
    missing_client,
)
from importer.emulator.jellyfin.params import QueryParams
from importer.emulator.jellyfin.responses import encoded, json_response, not_found, problem
from importer.emulator.jellyfin.values import jf_date
from importer.emulator.server import session_of

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer

#: an unapproved request lives this long; an approved one this much longer (L152)
EXPIRY_S: Final = 600.0
AFTER_APPROVAL_S: Final = 60.0


@dataclass
class Request:
    secret: str
    code: str
    client: Client
    created: float
    user: str | None = None  # who approved it
    approved: float | None = None


@dataclass
class QuickConnect:
    """The pending requests of one server (server clock: ``Controls.now``)."""

    requests: dict[str, Request] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def expired(self, request: Request, now: float) -> bool:
        if request.approved is not None:
            return now > request.approved + AFTER_APPROVAL_S
        return now > request.created + EXPIRY_S

    def initiate(self, client: Client, now: float) -> Request:
        with self._lock:
            self._expire(now)
            codes = {r.code for r in self.requests.values()}
            code = f"{secrets.randbelow(10**6):06d}"
            while code in codes:
                code = f"{secrets.randbelow(10**6):06d}"
            request = Request(secrets.token_hex(32), code, client, now)
            self.requests[request.secret] = request
            return request

    def find(self, secret: str, now: float) -> Request | None:
        with self._lock:
            self._expire(now)
            return self.requests.get(secret)

    def approve(self, code: str, user: str, now: float) -> bool:
        with self._lock:
            self._expire(now)
            for request in self.requests.values():
                if secrets.compare_digest(request.code, code):
                    request.user, request.approved = user, now
                    return True
        return False

    def take(self, secret: str, now: float) -> Request | None:
        """The approved request of ``secret``, removed (a secret is good for one token)."""
        with self._lock:
            self._expire(now)
            request = self.requests.get(secret)
            if request is None or request.user is None:
                return None
            del self.requests[secret]
            return request

    def _expire(self, now: float) -> None:
        for secret in [s for s, r in self.requests.items() if self.expired(r, now)]:
            del self.requests[secret]


def result(server: JellyfinServer, request: Request) -> dict[str, object]:
    """``QuickConnectResult``."""
    return {
        "Authenticated": request.user is not None,
        "Secret": request.secret,
        "Code": request.code,
        "DeviceId": request.client["DeviceId"],
        "DeviceName": request.client["Device"],
        "AppName": request.client["Client"],
        "AppVersion": request.client["Version"],
        "DateAdded": jf_date(int(request.created), 0),
    }


def get_enabled(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    return json_response("true")


def post_initiate(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    client = client_of(server, request)
    if client is None:
        return missing_client()
    return encoded(result(server, server.quick_connect.initiate(client, server.controls.now())))


def get_connect(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    found = server.quick_connect.find(q.get("secret") or "", server.controls.now())
    return not_found() if found is None else encoded(result(server, found))


def post_authorize(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    session = session_of(request)
    if session is None or session.user is None:
        return web.Response(status=403, text="Error processing request.")
    if not server.quick_connect.approve(q.get("code") or "", session.user, server.controls.now()):
        return not_found()
    return json_response("true")


async def authenticate_with_quick_connect(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    body = await json_body(request)
    secret = body.get("Secret") if body is not None else None
    if not isinstance(secret, str) or not secret:
        return problem(400, "One or more validation errors occurred.", "The Secret field is required.")
    found = server.quick_connect.take(secret, server.controls.now())
    if found is None or found.user is None:
        return web.Response(status=401, text="Error processing request.")
    token = server.sessions.issue(found.user, found.client["DeviceId"])
    return authentication_result(server, found.user, found.client, token)
