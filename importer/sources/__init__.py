"""Server kinds: pick one (``make_source``), tell one from its public endpoints
(``detect_source``), and decode pages in worker processes (``decode_page``).

Importing this package is cheap (msgspec, xxhash; no aiohttp): decode workers import it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from importer.errors import (
    AuthError,
    ConfigError,
    DecodeError,
    NotFoundError,
    ServerError,
    UnexpectedResponse,
)
from importer.model import STREAMS, ListingKind, StreamKind
from importer.sources import jellyfin, plex
from importer.sources.base import DecodedPage, HttpGet, Source
from importer.sources.common import JSON
from importer.sources.idlists import decode_id_page
from importer.sources.jellyfin import EmbySource, JellyfinSource
from importer.sources.plex import PlexSource

KINDS = ("plex", "jellyfin", "emby")

__all__ = ["KINDS", "DecodedPage", "Source", "decode_page", "detect_source", "make_source"]


def make_source(kind: str, base_url: str = "", *, client_id: str | None = None) -> Source:
    """The source for ``kind`` ("plex", "jellyfin" or "emby"). ``base_url`` is the URL the
    user gave (only recorded in ServerInfo, and for Emby: a URL ending in /emby)."""
    if kind == "plex":
        return PlexSource(base_url, client_id=client_id)
    if kind == "jellyfin":
        return JellyfinSource(base_url, client_id=client_id)
    if kind == "emby":
        return EmbySource(base_url, client_id=client_id)
    raise ConfigError(f"unknown server kind {kind!r}; use one of: auto, {', '.join(KINDS)}")


def decode_page(
    kind: str,
    stream: StreamKind,
    body: bytes | memoryview,
    library_source_id: str,
    *,
    listing: ListingKind = ListingKind.FULL,
    with_total: bool = True,
) -> DecodedPage:
    """Rows of one page (runs in a worker; ``body`` is inflated already).

    ``with_total`` should repeat the page request's: a Jellyfin/Emby page requested without
    it carries the page length where the total would be, and False turns that into
    ``total=None``. (Left at True, such a page's ``total`` is its length: use totals only
    from pages requested with_total.) Plex pages always carry their real total.

    ``offset`` is -1 when the page does not state it (Emby always, Plex when the container
    has no ``offset``): the offset is then the one requested.

    ``listing`` repeats the request's: an ids page (Jellyfin, Emby) has ids and etags and
    no rows; a count page is decoded as the listing it counts.

    Raises DecodeError for anything but the documented shape."""
    if stream not in STREAMS or kind not in KINDS:
        raise ValueError(f"no decoder for {kind!r} / {stream!r}")
    if kind == "plex":
        return plex.DECODERS[stream](body, library_source_id)
    if listing is ListingKind.IDS:
        return decode_id_page(body, stream, library_source_id, with_total)
    return jellyfin.DECODERS[stream](body, library_source_id, with_total)


# ----------------------------------------------------------------------------- detection

#: A failed probe of the wrong kind answers 404, 401 or something that is not its JSON.
_NOT_THIS_KIND = (NotFoundError, AuthError, UnexpectedResponse, DecodeError)


async def _get(http: HttpGet, path: str) -> bytes | None:
    try:
        return await http.get_bytes(path, headers=JSON)
    except _NOT_THIS_KIND:
        return None


async def _probe_plex(http: HttpGet, base_url: str, client_id: str | None) -> Source | None:
    body = await _get(http, "/identity")
    if body is None:
        return None
    try:
        plex.parse_identity(body)
    except DecodeError:
        return None
    return PlexSource(base_url, client_id=client_id, identity_body=body)


async def _probe_mediabrowser(
    http: HttpGet, prefix: str, base_url: str, client_id: str | None
) -> Source | None:
    body = await _get(http, f"{prefix}/System/Info/Public")
    if body is None:
        return None
    try:
        info = jellyfin.parse_public_info(body)
    except DecodeError:
        return None
    if jellyfin.kind_of(info) == "jellyfin":
        return JellyfinSource(base_url, client_id=client_id, info_body=body)
    return EmbySource(base_url, client_id=client_id, info_body=body, prefix=prefix)


async def detect_source(http: HttpGet, base_url: str = "", *, client_id: str | None = None) -> Source:
    """The source for whatever server answers, holding the public identity it fetched, so
    that a Jellyfin/Emby discover() makes one request (the library list) instead of two.

    Probes Jellyfin/Emby ``/System/Info/Public``, Plex ``/identity`` and Emby
    ``/emby/System/Info/Public`` at once, and takes the first that answers in that order
    (Plex first when the URL has Plex's port 32400). The public endpoints need no token,
    so none is sent to a server of unknown kind. (Plex's discover() still reads ``/``:
    only it names the server.)"""
    probes: list[Awaitable[Source | None]] = [
        _probe_mediabrowser(http, "", base_url, client_id),
        _probe_plex(http, base_url, client_id),
        _probe_mediabrowser(http, "/emby", base_url, client_id),
    ]
    if ":32400" in base_url:
        probes.insert(0, probes.pop(1))
    # all at once: one round trip, whichever kind it is (they are small public documents)
    answers = await asyncio.gather(*probes, return_exceptions=True)
    busy: ServerError | None = None
    for answer in answers:
        if isinstance(answer, ServerError):  # 5xx on one path need not mean the server is down
            busy = answer
        elif isinstance(answer, BaseException):
            raise answer
        elif answer is not None:
            return answer
    if busy is not None:
        raise busy
    raise UnexpectedResponse(
        "the server answers neither as Plex (/identity) nor as Jellyfin or Emby "
        "(/System/Info/Public); check the URL, or name the kind with --kind plex|jellyfin|emby"
    )
