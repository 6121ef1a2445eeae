"""What a server kind provides to the pipeline, and what its decoders produce.

A source knows its server's URLs, auth headers and page shapes; it never does I/O
itself except through the :class:`HttpGet` it is given for discovery, and its
``decode_page`` runs in a worker process on raw page bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import msgspec

from importer.rows import Row

StreamKind = Literal["shows", "seasons", "episodes"]
STREAMS: tuple[StreamKind, ...] = ("shows", "seasons", "episodes")


@dataclass(frozen=True)
class ServerInfo:
    kind: str  # "plex" | "jellyfin" | "emby"
    machine_id: str  # Plex machineIdentifier, Jellyfin/Emby server Id
    name: str
    version: str
    base_url: str  # as given by the user, without credentials


@dataclass(frozen=True)
class LibraryInfo:
    source_id: str  # Plex section key, Jellyfin library (CollectionFolder) ItemId
    title: str
    kind: str = "show"


@dataclass(frozen=True)
class PageRequest:
    """One GET: a path below the server's base URL, its query and extra headers."""

    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str] = field(default_factory=dict)


class DecodedPage(msgspec.Struct, array_like=True, gc=False):
    """A page turned into rows, plus what the planner needs to know about it."""

    stream: str
    offset: int  # the first item's position in the listing, as the server states it
    count: int  # items on the page (before filtering virtual ones)
    total: int | None  # the server's total for the listing, when the page carries it
    ids: list[str]  # source ids of the page's items, for completeness checks and sweeps
    leaf_total: int = 0  # Plex show pages: the sum of the shows' leafCount
    ids_only: bool = False  # an id-only listing's page: ``ids`` and no rows
    shows: list[Row] = []
    seasons: list[Row] = []
    episodes: list[Row] = []
    files: list[Row] = []


class HttpGet(Protocol):
    """The part of the HTTP client that discovery needs."""

    async def get_bytes(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> bytes: ...


class Source(Protocol):
    """A server kind: discovery, page requests and the page size that suits it."""

    kind: str
    page_size: int
    #: whether listings can be filtered to items changed since a time (``since``)
    supports_delta: bool
    #: items per page of an id-only listing (``ids_only``); None: the server has none
    ids_page_size: int | None

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
        offset: int,
        limit: int,
        *,
        with_total: bool,
        since: int | None = None,
        ids_only: bool = False,
    ) -> PageRequest:
        """The request for ``limit`` items of a stream from ``offset``; ``with_total`` asks the
        server to count the whole listing (free on Plex, a COUNT(*) on Jellyfin). With
        ``since`` (unix seconds, the server's clock), only the items changed since then;
        with ``ids_only``, bare items (see ``ids_page_size``)."""
        ...
