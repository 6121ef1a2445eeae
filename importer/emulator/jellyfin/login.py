"""Logging in: ``POST /Users/AuthenticateByName`` (Jellyfin and Emby), and what a login
returns (``AuthenticationResult``).

As Jellyfin does (research C1, ``UserController.cs`` L209, ``SessionManager.cs``
L1639-1737): the client names itself in the authorization header (``Authorization:
MediaBrowser …``; ``X-Emby-Authorization`` and the ``Emby`` scheme while legacy
authorization is on, always on Emby) and all four of ``Client``, ``Device``, ``DeviceId``
and ``Version`` must be non-empty (400 otherwise); a wrong user name or password is a 401;
a login revokes the earlier tokens of the same user on the same ``DeviceId``.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Final

from aiohttp import web

from importer.emulator.jellyfin.auth import auth_parts
from importer.emulator.jellyfin.ids import hex_id
from importer.emulator.jellyfin.params import QueryParams
from importer.emulator.jellyfin.responses import encoded, problem
from importer.emulator.jellyfin.users import user_dto
from importer.emulator.jellyfin.values import jf_date

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer

#: the parts of the authorization header a login needs (``ThrowIfNullOrEmpty``)
CLIENT_PARTS: Final = ("Client", "Device", "DeviceId", "Version")


#: the client's own description of itself, from the authorization header
Client = dict[str, str]


def client_of(server: JellyfinServer, request: web.Request) -> Client | None:
    """The header's parts, or None unless all of :data:`CLIENT_PARTS` are there."""
    legacy = server.legacy_auth()
    parts = auth_parts(request.headers.get("Authorization"), legacy)
    if parts is None and legacy:
        parts = auth_parts(request.headers.get("X-Emby-Authorization"), legacy)
    if parts is None or not all(parts.get(name) for name in CLIENT_PARTS):
        return None
    return parts


def missing_client() -> web.Response:
    return problem(400, "Bad Request", f"the authorization header needs {', '.join(CLIENT_PARTS)}")


def user_id_of(server: JellyfinServer, name: str) -> str:
    """A user's id: the first user has the server's ``user_id``, the others their own."""
    names = list(server.sessions.users)
    return hex_id(server.seed, 9, names.index(name)) if name in names else server.user_id


def user_named(server: JellyfinServer, name: str) -> dict[str, object]:
    dto = user_dto(server)
    dto["Name"] = name
    dto["Id"] = user_id_of(server, name)
    return dto


def authentication_result(server: JellyfinServer, user: str, client: Client, token: str) -> web.Response:
    """``AuthenticationResult``: the user, the new session, the token, the server's id."""
    now = int(server.controls.now())
    user_id = user_id_of(server, user)
    session = {
        "PlayState": {"CanSeek": False, "IsPaused": False, "IsMuted": False, "RepeatMode": "RepeatNone"},
        "AdditionalUsers": [],
        "Capabilities": {"PlayableMediaTypes": [], "SupportedCommands": [], "SupportsMediaControl": False},
        "RemoteEndPoint": "127.0.0.1",
        "PlayableMediaTypes": [],
        "Id": uuid.uuid4().hex,
        "UserId": user_id,
        "UserName": user,
        "Client": client["Client"],
        "LastActivityDate": jf_date(now, 0),
        "LastPlaybackCheckIn": "0001-01-01T00:00:00.0000000Z",
        "DeviceName": client["Device"],
        "DeviceId": client["DeviceId"],
        "ApplicationVersion": client["Version"],
        "IsActive": True,
        "SupportsMediaControl": False,
        "SupportsRemoteControl": False,
        "NowPlayingQueue": [],
        "NowPlayingQueueFullItems": [],
        "HasCustomDeviceName": False,
        "ServerId": server.server_id,
        "SupportedCommands": [],
    }
    return encoded(
        {
            "User": user_named(server, user),
            "SessionInfo": session,
            "AccessToken": token,
            "ServerId": server.server_id,
        }
    )


async def json_body(request: web.Request) -> dict[str, object] | None:
    """The request's JSON object, or None when it is not one."""
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def authenticate_by_name(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    client = client_of(server, request)
    if client is None:
        return missing_client()
    body = await json_body(request)
    if body is None:
        return problem(400, "One or more validation errors occurred.", "a JSON body is required")
    name, password = body.get("Username"), body.get("Pw")
    if not isinstance(name, str) or not name:
        return problem(400, "One or more validation errors occurred.", "The Username field is required.")
    if not isinstance(password, str) or not server.sessions.check_password(name, password):
        # AuthenticationException through ExceptionMiddleware
        return web.Response(status=401, text="Error processing request.")
    token = server.sessions.issue(name, client["DeviceId"])
    return authentication_result(server, name, client, token)
