"""The Plex PIN login: the user approves a link in a browser, and plex.tv hands over the
server's access token.

Research C2 (``shared/research/hydration-and-feeds.md``; plex-spec "Authenticating with
Plex", plexapi ``MyPlexPinLogin``):

1. ``POST {plex.tv}/api/v2/pins?strong=true`` with ``X-Plex-Client-Identifier`` (our
   device id, kept) and ``X-Plex-Product`` → ``{id, code, expiresAt, …}``;
2. the user opens ``https://app.plex.tv/auth#?clientID=…&code=…`` and approves;
3. ``GET {plex.tv}/api/v2/pins/{id}`` every second or so until ``authToken`` is set (or the
   PIN expires): the account's token;
4. ``GET {clients.plex.tv}/api/v2/resources`` with it: the device whose ``clientIdentifier``
   is the server's ``machineIdentifier`` and whose ``provides`` names ``server`` carries the
   ``accessToken`` for that server. That one is saved; the account's token is not.

The plex.tv URLs come from ``IMPORTER_PLEX_TV_URL`` and ``IMPORTER_PLEX_CLIENTS_URL`` when
set (tests point both at the emulated Plex server, which serves these endpoints too).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import time
from collections.abc import Callable
from datetime import datetime
from typing import Final
from urllib.parse import urlencode

import msgspec

from importer.errors import AuthError, ImporterError, NotFoundError
from importer.http import HttpClient
from importer.login.identity import ServerIdentity
from importer.sources.common import PRODUCT, VERSION, decode_json

PLEX_TV_ENV: Final = "IMPORTER_PLEX_TV_URL"
CLIENTS_ENV: Final = "IMPORTER_PLEX_CLIENTS_URL"
PLEX_TV: Final = "https://plex.tv"
CLIENTS: Final = "https://clients.plex.tv"
APP_AUTH: Final = "https://app.plex.tv/auth#?"
#: how long a PIN is good for when plex.tv does not say (it says 1799 s)
PIN_LIFETIME_S: Final = 1800.0


class Pin(msgspec.Struct, rename="camel"):
    id: int
    code: str
    expires_at: str | None = None
    expires_in: int | None = None
    auth_token: str | None = None


class Connection(msgspec.Struct):
    uri: str = ""
    local: bool = False
    relay: bool = False


class Resource(msgspec.Struct, rename="camel"):
    client_identifier: str = ""
    provides: str = ""
    name: str = ""
    access_token: str | None = None
    connections: list[Connection] = []


class Account(msgspec.Struct):
    username: str = ""
    title: str = ""


_PIN = msgspec.json.Decoder(Pin)
_RESOURCES = msgspec.json.Decoder(list[Resource])
_ACCOUNT = msgspec.json.Decoder(Account)


def plex_tv_url() -> str:
    return (os.environ.get(PLEX_TV_ENV) or PLEX_TV).rstrip("/")


def clients_url() -> str:
    return (os.environ.get(CLIENTS_ENV) or CLIENTS).rstrip("/")


def client_headers(device_id: str) -> dict[str, str]:
    return {
        "Accept": "application/json",  # plex.tv answers XML without it
        "X-Plex-Client-Identifier": device_id,
        "X-Plex-Product": PRODUCT,
        "X-Plex-Version": VERSION,
        "X-Plex-Device-Name": platform.node() or PRODUCT,
    }


def auth_link(device_id: str, code: str) -> str:
    """The page where the user approves the PIN (plex.tv's own login page)."""
    query = urlencode({"clientID": device_id, "code": code, "context[device][product]": PRODUCT})
    return APP_AUTH + query


def _deadline(pin: Pin) -> float:
    """When the PIN expires, on the monotonic clock."""
    left = PIN_LIFETIME_S
    if pin.expires_in is not None:
        left = float(pin.expires_in)
    elif pin.expires_at:
        with contextlib.suppress(ValueError):
            left = datetime.fromisoformat(pin.expires_at).timestamp() - time.time()
    return time.monotonic() + max(left, 1.0)


async def _approved(tv: HttpClient, pin: Pin, poll_s: float) -> str:
    """The account's token once the user approved the PIN."""
    deadline = _deadline(pin)
    while time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        try:
            state = decode_json(_PIN, await tv.get_bytes(f"/api/v2/pins/{pin.id}"), "plex.tv PIN", "plex.tv")
        except NotFoundError:
            break  # plex.tv forgot it: expired
        if state.auth_token:
            return state.auth_token
    raise ImporterError(
        "the Plex link expired before it was approved: run `importer login URL` again, and open "
        "the link it prints within 30 minutes"
    )


def pick_server(resources: list[Resource], server: ServerIdentity) -> Resource | None:
    """The account's device that is this server (its machine id, providing ``server``)."""
    for resource in resources:
        if resource.client_identifier == server.server_id and "server" in resource.provides.split(","):
            return resource
    return None


async def pin_login(
    server: ServerIdentity,
    device_id: str,
    *,
    on_link: Callable[[str], None],
    poll_s: float = 1.0,
    verify_tls: bool = True,
) -> tuple[str, str]:
    """(the server's access token, the account's user name) once the user approved the link
    given to ``on_link``."""
    headers = client_headers(device_id)
    async with HttpClient(plex_tv_url(), headers=headers, verify_tls=verify_tls) as tv:
        created = await tv.post_bytes("/api/v2/pins", params={"strong": "true"})
        pin = decode_json(_PIN, created, "plex.tv PIN", "plex.tv")
        on_link(auth_link(device_id, pin.code))
        account_token = await _approved(tv, pin, poll_s)
        mine = {"X-Plex-Token": account_token}
        about = await tv.get_bytes("/api/v2/user", headers=mine)
        account = decode_json(_ACCOUNT, about, "plex.tv user", "plex.tv")
    user = account.username or account.title
    async with HttpClient(clients_url(), headers=headers, verify_tls=verify_tls) as clients:
        listed = await clients.get_bytes(
            "/api/v2/resources",
            params={"includeHttps": "1", "includeRelay": "1", "includeIPv6": "1"},
            headers=mine,
        )
    found = pick_server(decode_json(_RESOURCES, listed, "plex.tv resources", "plex.tv"), server)
    if found is None or not found.access_token:
        raise AuthError(
            f"the Plex account {user!r} has no access to the server {server.name!r} (id "
            f"{server.server_id}): log in with the server owner's account or one it is shared with"
        )
    return found.access_token, user
