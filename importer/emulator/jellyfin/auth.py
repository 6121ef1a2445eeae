"""Where a request carries its token, as Jellyfin's ``AuthorizationContext`` and Emby look.

Jellyfin: ``Authorization: MediaBrowser Token="…"`` (quoted, comma separated, URL-decoded
values) or the ``ApiKey`` query parameter, and while ``EnableLegacyAuthorization`` is on
(always before 12.0) also ``X-Emby-Authorization``, the ``Emby`` scheme, ``X-Emby-Token``,
``X-MediaBrowser-Token`` and ``api_key``. Emby: ``X-Emby-Token``, ``api_key``, or the token
inside ``X-Emby-Authorization`` / ``Authorization: Emby …``.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from aiohttp import web

from importer.emulator.jellyfin.params import QueryParams


def parse_auth_parts(value: str) -> dict[str, str]:
    """``AuthorizationContext.GetParts``: ``Key="value", …``; quotes make commas literal,
    values are URL-decoded, keys are case-sensitive."""
    result: dict[str, str] = {}
    escaped = False
    start = 0
    key = ""
    i = 0
    for i, ch in enumerate(value):
        if ch in ('"', ","):
            escaped = (not escaped) == (ch == '"')
            if ch == "," and not escaped:
                if start < i:
                    result[key] = unquote_plus(value[start:i].strip('"'))
                    key = ""
                start = i + 1
        elif not escaped and ch == "=":
            key = value[start:i].strip()
            start = i + 1
    end = len(value)
    if start < end:
        result[key] = unquote_plus(value[start:end].strip('"'))
    return result


def auth_parts(header: str | None, allow_emby_scheme: bool) -> dict[str, str] | None:
    """``AuthorizationContext.GetAuthorization`` + ``GetParts``: None unless the header names
    a scheme the server reads."""
    if not header:
        return None
    scheme, sep, rest = header.partition(" ")
    if not sep:
        return None
    if scheme.lower() != "mediabrowser" and not (allow_emby_scheme and scheme.lower() == "emby"):
        return None
    return parse_auth_parts(rest)


def jellyfin_token(request: web.Request, legacy: bool) -> str | None:
    """The token Jellyfin reads, ``legacy`` when ``EnableLegacyAuthorization`` is on."""
    parts = auth_parts(request.headers.get("Authorization"), legacy)
    if parts is None and legacy:
        parts = auth_parts(request.headers.get("X-Emby-Authorization"), legacy)
    token = (parts or {}).get("Token")
    if not token and legacy:
        token = request.headers.get("X-Emby-Token") or request.headers.get("X-MediaBrowser-Token")
    query = QueryParams(request.query)
    if not token:
        token = query.get("ApiKey")
    if not token and legacy:
        token = query.get("api_key")
    return token or None


def emby_token(request: web.Request) -> str | None:
    """The token Emby reads."""
    token = request.headers.get("X-Emby-Token")
    if not token:
        token = QueryParams(request.query).get("api_key")
    if not token:
        for header in ("X-Emby-Authorization", "Authorization"):
            parts = auth_parts(request.headers.get(header), True)
            if parts and parts.get("Token"):
                token = parts["Token"]
                break
    return token or None
