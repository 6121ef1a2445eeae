"""Which server a URL leads to, from its public endpoints (no token sent): its kind, its own
id (what a saved login is keyed by) and, for Emby, the path its API lives under."""

from __future__ import annotations

from dataclasses import dataclass

from importer.http import HttpClient
from importer.sources import detect_source, make_source
from importer.sources.common import JSON
from importer.sources.jellyfin import parse_public_info
from importer.sources.plex import parse_identity


@dataclass(frozen=True)
class ServerIdentity:
    kind: str  # plex | jellyfin | emby
    server_id: str  # Plex machineIdentifier, Jellyfin/Emby Id
    name: str
    prefix: str = ""  # below the URL: "/emby" for an Emby server's API


async def identify(http: HttpClient, url: str, kind: str = "auto") -> ServerIdentity:
    """The server at ``url`` (``http`` is a client on it); ``kind`` "auto" asks the server
    what it is (``detect_source``), otherwise it must be that kind."""
    source = await detect_source(http, url) if kind == "auto" else make_source(kind, url)
    if source.kind == "plex":
        identity = parse_identity(await http.get_bytes("/identity", headers=JSON))
        name = identity.friendly_name or "Plex Media Server"
        return ServerIdentity("plex", identity.machine_identifier, name)
    prefix = source.prefix
    where = f"{prefix}/System/Info/Public"
    info = parse_public_info(await http.get_bytes(where, headers=JSON), where)
    return ServerIdentity(source.kind, info.id, info.server_name, prefix)
