"""``importer login`` as a library: log in to a server once, save its token, find it again.

    server = await identify_server(url)                 # public endpoints, no token
    saved = await login_with_password(url, server, "me", password)        # Jellyfin, Emby
    saved = await login_with_quick_connect(url, server, on_code=print)    # Jellyfin
    saved = await login_with_plex(url, server, on_link=print)             # Plex (PIN)
    saved_login(url)          # the SavedLogin for this URL, or None (no request)
    logout(url)               # forget it

Modules, one job each: ``identity`` (which server a URL leads to), ``mediabrowser``
(Jellyfin/Emby password and Quick Connect), ``plex`` (the plex.tv PIN flow), ``saved`` (the
saved logins file), and ``importer.userdir`` (the config folder and the device id every
login uses, so that a new login replaces importer's previous token and no other).
"""

from __future__ import annotations

from collections.abc import Callable

from importer.errors import AuthError, ConfigError
from importer.http import HttpClient, RetryPolicy
from importer.login import mediabrowser, plex
from importer.login.identity import ServerIdentity, identify
from importer.login.saved import SavedLogin, find, forget, normalize_url, save
from importer.sources.plex import PlexSource
from importer.targets import check_url
from importer.userdir import device_id

__all__ = [
    "SavedLogin",
    "ServerIdentity",
    "identify_server",
    "login_with_password",
    "login_with_plex",
    "login_with_quick_connect",
    "logout",
    "normalize_url",
    "saved_login",
]

#: a login is interactive: a server that does not answer is reported in seconds, not minutes
_RETRY = RetryPolicy(attempts=3, max_elapsed=20.0)


def _client(url: str, verify_tls: bool, headers: dict[str, str] | None = None) -> HttpClient:
    return HttpClient(url, headers=headers, verify_tls=verify_tls, concurrency=1, retry=_RETRY)


def saved_login(url: str) -> SavedLogin | None:
    """The login saved for ``url``, or None; no request is made."""
    return find(url)


def logout(url: str) -> SavedLogin | None:
    """Forget the login saved for ``url`` (every URL of that server); what was forgotten."""
    return forget(url)


async def identify_server(url: str, kind: str = "auto", *, verify_tls: bool = True) -> ServerIdentity:
    """The server at ``url``: kind, id, name (public endpoints; no token is sent)."""
    check_url(url)
    async with _client(url, verify_tls) as http:
        return await identify(http, url.rstrip("/"), kind)


async def login_with_password(
    url: str, server: ServerIdentity, user: str, password: str, *, verify_tls: bool = True
) -> SavedLogin:
    """Jellyfin or Emby: log in as ``user`` and save the token. AuthError: refused."""
    if server.kind == "plex":
        raise ConfigError("Plex logs in through plex.tv: run `importer login URL` without --user")
    device = device_id()
    async with _client(url, verify_tls) as http:
        token, name = await mediabrowser.password_login(http, server, device, user, password)
    return save(server.server_id, server.kind, url, name, token, device)


async def login_with_quick_connect(
    url: str,
    server: ServerIdentity,
    *,
    on_code: Callable[[str], None],
    poll_s: float = 2.0,
    verify_tls: bool = True,
) -> SavedLogin:
    """Jellyfin: show the code (``on_code``), wait until a user approves it, save the token."""
    if server.kind != "jellyfin":
        raise ConfigError(
            f"{'Emby' if server.kind == 'emby' else 'Plex'} has no Quick Connect (only Jellyfin has): "
            + (
                "log in with a user name and password: importer login URL --user NAME"
                if server.kind == "emby"
                else "run `importer login URL` and open the link it prints"
            )
        )
    device = device_id()
    async with _client(url, verify_tls) as http:
        token, name = await mediabrowser.quick_connect(http, server, device, on_code=on_code, poll_s=poll_s)
    return save(server.server_id, server.kind, url, name, token, device)


async def login_with_plex(
    url: str,
    server: ServerIdentity,
    *,
    on_link: Callable[[str], None],
    poll_s: float = 1.0,
    verify_tls: bool = True,
) -> SavedLogin:
    """Plex: show the link (``on_link``), wait until the user approves it on plex.tv, check
    that the server's access token works at ``url``, save it."""
    device = device_id()
    token, user = await plex.pin_login(server, device, on_link=on_link, poll_s=poll_s, verify_tls=verify_tls)
    headers = PlexSource(url, client_id=device).auth_headers(token)
    async with _client(url, verify_tls, headers) as http:
        try:
            await http.get_bytes("/")
        except AuthError as exc:
            raise AuthError(
                f"{http.display_url}: the server refused the token plex.tv gave for it (HTTP "
                f"{exc.status}): check that {user!r} may use this server, then log in again",
                url=exc.url,
                status=exc.status,
            ) from None
    return save(server.server_id, server.kind, url, user, token, device)
