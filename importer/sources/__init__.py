"""Server kinds: pick one (``make_source``), tell one from its public endpoints
(``detect_source``), and decode pages in worker processes (``decode_page``).

Importing this package is cheap (msgspec, xxhash; no aiohttp): decode workers import it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from importer.errors import (
    AuthError,
    ConfigError,
    DecodeError,
    NotFoundError,
    ServerError,
    UnexpectedResponse,
)
from importer.sources import jellyfin, plex
from importer.sources.base import DecodedPage, HttpGet, Source, StreamKind
from importer.sources.idlists import decode_id_page
from importer.sources.jellyfin import EmbySource, JellyfinSource
from importer.sources.plex import PlexSource

KINDS = ("plex", "jellyfin", "emby")

__all__ = ["KINDS", "DecodedPage", "Source", "decode_page", "detect_kind", "detect_source", "make_source"]


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
    body: bytes,
    library_source_id: str,
    *,
    with_total: bool = True,
    ids_only: bool = False,
) -> DecodedPage:
    """Rows of one page (runs in a worker). ``body`` may still be gzip-compressed.

    ``with_total`` should repeat the page request's: a Jellyfin/Emby page requested without
    it carries the page length where the total would be, and False turns that into
    ``total=None``. (Left at True, such a page's ``total`` is its length: use totals only
    from pages requested with_total.) Plex pages always carry their real total.

    ``offset`` is -1 when the page does not state it (Emby always, Plex when the container
    has no ``offset``): the offset is then the one requested.

    ``ids_only``: a page of an id-only listing (``Source.page_request(ids_only=True)``).

    Raises DecodeError for anything but the documented shape."""
    if ids_only and kind in ("jellyfin", "emby"):
        return decode_id_page(body, stream, library_source_id, with_total)
    if kind == "plex":
        decode = plex.DECODERS.get(stream)
        if decode is not None:
            return decode(body, library_source_id)
    elif kind in ("jellyfin", "emby"):
        decode_mb = jellyfin.DECODERS.get(stream)
        if decode_mb is not None:
            return decode_mb(body, library_source_id, with_total)
    raise ValueError(f"no decoder for {kind!r} / {stream!r}")


# ----------------------------------------------------------------------------- detection

#: A failed probe of the wrong kind answers 404, 401 or something that is not its JSON.
_NOT_THIS_KIND = (NotFoundError, AuthError, UnexpectedResponse, DecodeError)


async def _get(http: HttpGet, path: str) -> bytes | None:
    try:
        return await http.get_bytes(path, headers={"Accept": "application/json"})
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

    Probes, stopping at the first that answers: Jellyfin/Emby ``/System/Info/Public``,
    Plex ``/identity``, Emby ``/emby/System/Info/Public`` (Plex first when the URL has
    Plex's port 32400). Both public endpoints need no token, so none is sent to a server
    of unknown kind. One request for the kind probed first, at most three. (Plex's
    discover() still reads ``/``: only it names the server.)"""
    probes: list[Callable[[], Awaitable[Source | None]]] = [
        lambda: _probe_mediabrowser(http, "", base_url, client_id),
        lambda: _probe_plex(http, base_url, client_id),
        lambda: _probe_mediabrowser(http, "/emby", base_url, client_id),
    ]
    if ":32400" in base_url:
        probes.insert(0, probes.pop(1))
    busy: ServerError | None = None
    for probe in probes:
        try:
            found = await probe()
        except ServerError as exc:  # 5xx on one path need not mean the server is down
            busy = exc
            continue
        if found is not None:
            return found
    if busy is not None:
        raise busy
    raise UnexpectedResponse(
        "the server answers neither as Plex (/identity) nor as Jellyfin or Emby "
        "(/System/Info/Public); check the URL, or name the kind with --kind plex|jellyfin|emby"
    )


async def detect_kind(http: HttpGet, base_url: str = "") -> str:
    """The server's kind: "plex", "jellyfin" or "emby". Prefer :func:`detect_source`,
    whose result also saves discover() a request."""
    return (await detect_source(http, base_url)).kind
