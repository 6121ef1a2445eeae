"""Jellyfin and Emby logins: a user name and password (both), or Quick Connect (Jellyfin).

Research C1/C3 (``shared/research/hydration-and-feeds.md``): ``POST /Users/AuthenticateByName``
with ``{"Username","Pw"}`` and the client's four parts (``Client``, ``Device``, ``DeviceId``,
``Version``) in ``Authorization: MediaBrowser …`` (Jellyfin) or ``X-Emby-Authorization: Emby
UserId="", …`` (Emby) answers the ``AccessToken``. Quick Connect: ``Initiate`` gives a code
the user approves in the web UI, ``Connect?secret=`` tells when, and
``AuthenticateWithQuickConnect`` trades the secret for a token. Both tokens belong to our
``DeviceId``: the server revokes that device's earlier tokens when it logs in again.
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Callable
from urllib.parse import quote

import msgspec

from importer.errors import AuthError, ImporterError, NotFoundError
from importer.http import HttpClient
from importer.login.identity import ServerIdentity
from importer.sources.common import JSON, PRODUCT, VERSION, decode_json

#: Jellyfin forgets a Quick Connect request after 10 minutes
QUICK_CONNECT_S = 600.0


class User(msgspec.Struct, rename="pascal"):
    name: str = ""


class AuthenticationResult(msgspec.Struct, rename="pascal"):
    access_token: str
    user: User | None = None


class QuickConnectResult(msgspec.Struct, rename="pascal"):
    secret: str
    code: str = ""
    authenticated: bool = False


_AUTH = msgspec.json.Decoder(AuthenticationResult)
_QUICK = msgspec.json.Decoder(QuickConnectResult)
_BOOL = msgspec.json.Decoder(bool)


def client_headers(kind: str, device_id: str) -> dict[str, str]:
    """The client's description of itself, without a token (a login's header)."""
    device = quote(platform.node() or "unknown", safe="")
    fields = f'Client="{PRODUCT}", Device="{device}", DeviceId="{device_id}", Version="{VERSION}"'
    if kind == "emby":
        return {"X-Emby-Authorization": f'Emby UserId="", {fields}', **JSON}
    return {"Authorization": f"MediaBrowser {fields}", **JSON}


def _what(server: ServerIdentity) -> str:
    return "Emby" if server.kind == "emby" else "Jellyfin"


async def password_login(
    http: HttpClient, server: ServerIdentity, device_id: str, user: str, password: str
) -> tuple[str, str]:
    """(token, user name) for ``user`` and ``password``; AuthError when the server refuses them."""
    path = f"{server.prefix}/Users/AuthenticateByName"
    try:
        body = await http.post_bytes(
            path, {"Username": user, "Pw": password}, headers=client_headers(server.kind, device_id)
        )
    except AuthError as exc:
        raise AuthError(
            f"{http.display_url}: the {_what(server)} server refused the user name or password "
            f"(HTTP {exc.status}): check them and run `importer login` again",
            url=exc.url,
            status=exc.status,
        ) from None
    result = decode_json(_AUTH, body, path, _what(server))
    return result.access_token, (result.user.name if result.user and result.user.name else user)


async def quick_connect(
    http: HttpClient,
    server: ServerIdentity,
    device_id: str,
    *,
    on_code: Callable[[str], None],
    poll_s: float = 2.0,
    patience_s: float = QUICK_CONNECT_S,
) -> tuple[str, str]:
    """(token, user name) once a user approves the code given to ``on_code`` (Jellyfin)."""
    headers = client_headers(server.kind, device_id)
    p = server.prefix
    if not _BOOL.decode(await http.get_bytes(f"{p}/QuickConnect/Enabled", headers=headers)):
        raise ImporterError(
            f"{http.display_url}: Quick Connect is turned off on this Jellyfin server: an administrator "
            "turns it on (Dashboard > General > Quick Connect), or log in with a password"
        )
    started = await http.post_bytes(f"{p}/QuickConnect/Initiate", headers=headers)
    request = decode_json(_QUICK, started, "/QuickConnect/Initiate", "Jellyfin")
    on_code(request.code)
    deadline = time.monotonic() + patience_s
    while True:
        await asyncio.sleep(poll_s)
        try:
            state = await http.get_bytes(
                f"{p}/QuickConnect/Connect", params={"secret": request.secret}, headers=headers
            )
        except NotFoundError:
            state = None
        if state is None or time.monotonic() > deadline:
            raise ImporterError(
                "the Quick Connect code expired before anyone approved it: run "
                "`importer login URL --quick-connect` again, and approve the code within 10 minutes"
            )
        if decode_json(_QUICK, state, "/QuickConnect/Connect", "Jellyfin").authenticated:
            break
    path = f"{p}/Users/AuthenticateWithQuickConnect"
    try:
        body = await http.post_bytes(path, {"Secret": request.secret}, headers=headers)
    except AuthError as exc:
        raise AuthError(
            f"{http.display_url}: the server refused the approved Quick Connect request (HTTP "
            f"{exc.status}); it may have expired: run `importer login URL --quick-connect` again",
            url=exc.url,
            status=exc.status,
        ) from None
    result = decode_json(_AUTH, body, path, "Jellyfin")
    return result.access_token, (result.user.name if result.user else "")
