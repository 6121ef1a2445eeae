"""What a server kind provides to the pipeline, and what its decoders produce.

A source knows its server's URLs, auth headers and page shapes; it never does I/O
itself except through the :class:`HttpGet` it is given for discovery, and its
``decode_page`` runs in a worker process on raw page bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import msgspec

from importer.model import LibraryInfo, ListingKind, PageRequest, ServerInfo, StreamKind
from importer.rows import Row


class DecodedPage(msgspec.Struct, gc=False):
    """A page turned into rows, plus what the planner needs to know about it."""

    stream: StreamKind
    offset: int  # the first item's position in the listing, as the server states it; -1: not stated
    count: int  # items on the page (before leaving out virtual ones)
    total: int | None  # the server's total for the listing, when the page carries it
    ids: list[str]  # source ids of the page's items, in page order
    leaf_total: int = 0  # Plex show pages: the sum of the shows' leafCount
    rows: list[Row] = []  # the stream's rows (none on an ids page)
    files: list[Row] = []  # episodes pages: their media files
    images: list[Row] = []  # shows and seasons pages: their images (importer.rows.IMAGE_COLUMNS)
    etags: list[str | None] = []  # an ids page: the etag of each of ``ids``


class HttpGet(Protocol):
    """The part of the HTTP client that discovery needs."""

    async def get_bytes(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> bytes: ...


class Source(Protocol):
    """A server kind: discovery, page requests and the page size that suits it."""

    kind: str
    page_size: int
    #: whether listings can be filtered to items changed since a time (the watermark)
    supports_delta: bool
    #: items per page of an ids listing (``ListingKind.IDS``); None: the server has none
    ids_page_size: int | None
    #: the path of the server's API below the URL ("/emby" for an Emby server that needs it)
    prefix: str
    #: who we are to the server (Plex X-Plex-Client-Identifier, Jellyfin/Emby DeviceId)
    client_id: str

    def auth_headers(self, token: str) -> dict[str, str]:
        """Headers that carry the token (never logged)."""
        ...

    async def discover(self, http: HttpGet) -> tuple[ServerInfo, list[LibraryInfo]]:
        """The server's identity and its TV libraries."""
        ...

    def page_request(
        self,
        library: LibraryInfo,
        stream: StreamKind,
        listing: ListingKind,
        offset: int,
        limit: int,
        *,
        with_total: bool,
        watermark: int | None = None,
        ids: Sequence[str] = (),
    ) -> PageRequest:
        """The request for ``limit`` items of a stream from ``offset``; ``with_total`` asks the
        server to count the whole listing (free on Plex, a COUNT(*) on Jellyfin). With a
        ``watermark`` (unix seconds, the server's clock), only the items changed since then.
        ``listing``: every field (FULL), ids and etags (IDS), the items ``ids`` in full
        (DETAILS), or the count alone (COUNT)."""
        ...

    def total_hint(self, headers: Mapping[str, str], body: bytes, encoding: str | None) -> int | None:
        """The listing's total as an answer states it before its body is decoded (a header,
        or the last bytes of an uncompressed body), or None: the rest of a listing is then
        planned a few milliseconds earlier, before the decoder has read the page."""
        ...
