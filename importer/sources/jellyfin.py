"""Jellyfin (and Emby, a small subclass): discovery, page requests, page decoders.

Every stream is one paged ``GET /Items`` over a whole library (``ParentId``,
``Recursive=true``, ``IncludeItemTypes=Series|Season|Episode``) with only the fields the
rows need. Jellyfin counts the whole listing (a full ``COUNT(*)``) only when asked with
``EnableTotalRecordCount=true``; otherwise ``TotalRecordCount`` is just the page length.
Details and sources: shared/research/server-apis.md, "JELLYFIN (and Emby)".
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Callable
from urllib.parse import quote

import msgspec
from msgspec import Struct

from importer.errors import DecodeError
from importer.rows import Row
from importer.sources.base import DecodedPage, HttpGet, LibraryInfo, PageRequest, ServerInfo, StreamKind
from importer.sources.common import PRODUCT, VERSION, content_etag, decode_json, default_client_id
from importer.sources.idlists import IDS_PAGE_SIZE
from importer.speedups import jellyfin_episode_rows, parse_timestamp

KIND = "jellyfin"
#: Jellyfin has no server-side cap; 500 keeps a page well under a second of server work.
PAGE_SIZE = 500
JSON = {"Accept": "application/json"}
_ITEM_TYPE: dict[str, str] = {"shows": "Series", "seasons": "Season", "episodes": "Episode"}
#: Only what the rows need. PremiereDate, ProductionYear, RunTimeTicks, index numbers,
#: SeriesId/SeasonId and LocationType come without asking. Never People: many times slower.
_FIELDS: dict[str, str] = {
    "shows": "ProviderIds,Overview,DateCreated,Etag,SortName",
    "seasons": "Etag",
    "episodes": "ProviderIds,Overview,DateCreated,Etag,MediaSources",
}
#: Items cannot be sorted by id; DateCreated puts items added during a run at the end
#: (SortName breaks ties), which keeps offset paging as stable as the server allows.
_SORT = {"SortBy": "DateCreated,SortName", "SortOrder": "Ascending"}
#: Jellyfin's "0001-01-01T00:00:00..." (DateTime.MinValue) means "no date".
_NO_DATE = "0001-01-01"

# ----------------------------------------------------------------------------- page shapes


class ProviderIds(Struct, gc=False, rename="pascal"):
    imdb: str | None = None
    tmdb: str | None = None
    tvdb: str | None = None


class MediaStream(Struct, gc=False, rename="pascal"):
    type: str | None = None
    codec: str | None = None
    width: int | None = None
    height: int | None = None


class MediaSource(Struct, gc=False, rename="pascal"):
    id: str | None = None
    path: str | None = None
    size: int | None = None
    container: str | None = None
    run_time_ticks: int | None = None
    media_streams: list[MediaStream] | None = None


class Item(Struct, gc=False, rename="pascal"):
    """A BaseItemDto: the fields of Series, Season and Episode items that rows need."""

    id: str
    type: str | None = None
    name: str | None = None
    sort_name: str | None = None
    production_year: int | None = None
    overview: str | None = None
    provider_ids: ProviderIds | None = None
    date_created: str | None = None
    etag: str | None = None
    series_id: str | None = None
    season_id: str | None = None
    parent_index_number: int | None = None
    index_number: int | None = None
    index_number_end: int | None = None
    premiere_date: str | None = None
    run_time_ticks: int | None = None
    location_type: str | None = None
    media_sources: list[MediaSource] | None = None


class QueryResult(Struct, gc=False, rename="pascal"):
    items: list[Item]  # required: a "{}" from a proxy is not an empty page
    total_record_count: int | None = None
    start_index: int | None = None  # Emby leaves it out


class PublicSystemInfo(Struct, rename="pascal"):
    id: str
    server_name: str = ""
    version: str = ""
    product_name: str | None = None  # "Jellyfin Server"; "Emby Server" or absent on Emby


class VirtualFolder(Struct, rename="pascal"):
    name: str = ""
    collection_type: str | None = None
    item_id: str | None = None
    id: str | None = None  # Emby also sends Id


class VirtualFolderQuery(Struct, rename="pascal"):
    items: list[VirtualFolder] = []


_PAGE = msgspec.json.Decoder(QueryResult)
_INFO = msgspec.json.Decoder(PublicSystemInfo)
# Jellyfin answers a plain list; newer Emby versions may wrap it as a query result.
_FOLDERS = msgspec.json.Decoder(list[VirtualFolder] | VirtualFolderQuery)

# ----------------------------------------------------------------------------- decoders


def _seconds(value: str | None, what: str) -> int | None:
    if value is None or value.startswith(_NO_DATE):
        return None
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise DecodeError(f"{what}: a date is not ISO 8601 ({exc})") from exc


def _ids(item: Item) -> tuple[str | None, str | None, str | None]:
    p = item.provider_ids
    if p is None:
        return None, None, None
    # Jellyfin sends "" for a cleared id; store that as no id.
    return p.imdb or None, p.tmdb or None, p.tvdb or None


def _items(body: bytes, stream: str, library_source_id: str) -> tuple[QueryResult, str]:
    what = f"{stream} page of library {library_source_id}"
    result = decode_json(_PAGE, body, what, "Jellyfin or Emby")
    expected = _ITEM_TYPE[stream]
    for item in result.items:
        # A server that ignored IncludeItemTypes would mix kinds; refuse it.
        if item.type is not None and item.type != expected:
            raise DecodeError(f"{what}: asked for {expected} items but the page lists a {item.type!r} item")
    return result, what


def _page(result: QueryResult, stream: str, ids: list[str], with_total: bool) -> DecodedPage:
    return DecodedPage(
        stream=stream,
        offset=-1 if result.start_index is None else result.start_index,
        count=len(result.items),
        # Without EnableTotalRecordCount the server puts the page length here: not a total.
        total=result.total_record_count if with_total else None,
        ids=ids,
    )


def decode_shows(body: bytes, library_source_id: str, with_total: bool = True) -> DecodedPage:
    result, what = _items(body, "shows", library_source_id)
    rows: list[Row] = []
    ids: list[str] = []
    for s in result.items:
        if s.location_type == "Virtual":
            continue
        imdb, tmdb, tvdb = _ids(s)
        row = (
            s.id, None, s.name, s.sort_name or s.name, s.production_year, s.overview,
            imdb, tmdb, tvdb, _seconds(s.date_created, what), None,
        )  # fmt: skip
        rows.append((*row, s.etag or content_etag(row)))
        ids.append(s.id)
    page = _page(result, "shows", ids, with_total)
    page.shows = rows
    return page


def decode_seasons(body: bytes, library_source_id: str, with_total: bool = True) -> DecodedPage:
    result, _ = _items(body, "seasons", library_source_id)
    rows: list[Row] = []
    ids: list[str] = []
    for s in result.items:
        if s.location_type == "Virtual":  # a season of missing episodes only
            continue
        row = (s.id, s.series_id, s.index_number, s.name)
        rows.append((*row, s.etag or content_etag(row)))
        ids.append(s.id)
    page = _page(result, "seasons", ids, with_total)
    page.seasons = rows
    return page


def decode_episodes(body: bytes, library_source_id: str, with_total: bool = True) -> DecodedPage:
    result, what = _items(body, "episodes", library_source_id)
    # the per-item loop (ids, dates, ticks, media sources, etags) is
    # importer.speedups.jellyfin_episode_rows, compiled where available
    try:
        rows, files, ids = jellyfin_episode_rows(result.items)
    except ValueError as exc:  # the only one it raises on a decoded page: a date
        raise DecodeError(f"{what}: a date is not ISO 8601 ({exc})") from exc
    page = _page(result, "episodes", ids, with_total)
    page.episodes = rows
    page.files = files
    return page


DECODERS: dict[str, Callable[[bytes, str, bool], DecodedPage]] = {
    "shows": decode_shows,
    "seasons": decode_seasons,
    "episodes": decode_episodes,
}


def _iso(seconds: int) -> str:
    """Unix seconds as Jellyfin writes times: UTC with seven fractional digits."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(seconds))


def parse_public_info(body: bytes, what: str = "/System/Info/Public") -> PublicSystemInfo:
    return decode_json(_INFO, body, what, "Jellyfin or Emby")


def kind_of(info: PublicSystemInfo) -> str:
    """The kind, "jellyfin" or "emby", from ``/System/Info/Public``. Jellyfin has said "Jellyfin Server"
    since its fork; Emby says "Emby Server" or, in older versions, nothing."""
    product = (info.product_name or "").lower()
    return "jellyfin" if "jellyfin" in product else "emby"


# ----------------------------------------------------------------------------- the sources


class JellyfinSource:
    """A Jellyfin server (10.8 and later), with an API key or a user's access token."""

    kind = KIND
    page_size = PAGE_SIZE
    supports_delta = True
    ids_page_size: int | None = IDS_PAGE_SIZE
    #: below the URL the user gave: Emby's documented API root is /emby
    prefix = ""

    def __init__(
        self, base_url: str = "", *, client_id: str | None = None, info_body: bytes | None = None
    ) -> None:
        self.base_url = base_url
        self.client_id = client_id or default_client_id()
        # /System/Info/Public as fetched by kind detection, so discover() need not ask again
        self._info_body = info_body

    def _client_fields(self) -> str:
        # Values are URL-decoded by the server, so they are URL-encoded here.
        device = quote(platform.node() or "unknown", safe="")
        return f'Client="{PRODUCT}", Device="{device}", DeviceId="{self.client_id}", Version="{VERSION}"'

    def auth_headers(self, token: str) -> dict[str, str]:
        # The MediaBrowser scheme is the only one Jellyfin 12 accepts by default
        # (X-Emby-Token and api_key are "legacy" there).
        return {"Authorization": f'MediaBrowser {self._client_fields()}, Token="{token}"', **JSON}

    async def _public_info(self, http: HttpGet) -> bytes:
        if self._info_body is not None:
            return self._info_body
        return await http.get_bytes(f"{self.prefix}/System/Info/Public", headers=JSON)

    async def discover(self, http: HttpGet) -> tuple[ServerInfo, list[LibraryInfo]]:
        # Independent requests: one round trip, not two (none when detection has the info).
        body, folders_body = await asyncio.gather(
            self._public_info(http), http.get_bytes(f"{self.prefix}/Library/VirtualFolders", headers=JSON)
        )
        info = parse_public_info(body, f"{self.prefix}/System/Info/Public")
        folders = decode_json(
            _FOLDERS, folders_body, f"{self.prefix}/Library/VirtualFolders", "Jellyfin or Emby"
        )
        if isinstance(folders, VirtualFolderQuery):
            folders = folders.items
        server = ServerInfo(
            kind=self.kind,
            machine_id=info.id,
            name=info.server_name,
            version=info.version,
            base_url=self.base_url,
        )
        libraries = [
            LibraryInfo(lib_id, f.name)
            for f in folders
            if f.collection_type == "tvshows" and (lib_id := f.item_id or f.id)
        ]
        return server, libraries

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
        params = {
            "ParentId": library.source_id,
            "IncludeItemTypes": _ITEM_TYPE[stream],
            "Recursive": "true",
            "Fields": _FIELDS[stream],
            "EnableImages": "false",
            "EnableUserData": "false",
            # a full COUNT(*) on every request unless switched off
            "EnableTotalRecordCount": "true" if with_total else "false",
            **_SORT,
            "StartIndex": str(offset),
            "Limit": str(limit),
        }
        if stream != "shows":
            # Leave out missing (virtual) episodes, and seasons that hold only those.
            params["ExcludeLocationTypes"] = "Virtual"
        if stream == "episodes":
            params["IsMissing"] = "false"
        if since is not None:
            # Not plain MinDateLastSaved: on 10.8-10.10 it binds the wrong SQL parameter and
            # matches nothing at all.
            params["MinDateLastSavedForUser"] = _iso(since)
        if ids_only:
            del params["Fields"]  # bare items: Id, Name, Type and a few more
        return PageRequest(path=f"{self.prefix}/Items", params=params, headers=JSON)


class EmbySource(JellyfinSource):
    """An Emby server: Jellyfin's API under ``/emby``, with an ``X-Emby-Token`` API key.

    Emby pages carry no ``StartIndex``: their decoded ``offset`` is -1, "as requested"."""

    kind = "emby"
    # Emby's date filter is unverified: a nightly run lists every item, and unchanged
    # ones (same Etag) cost no write
    supports_delta = False

    def __init__(
        self,
        base_url: str = "",
        *,
        client_id: str | None = None,
        info_body: bytes | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(base_url, client_id=client_id, info_body=info_body)
        if prefix is None:
            # A URL that already ends in /emby needs no second one.
            prefix = "" if base_url.rstrip("/").endswith("/emby") else "/emby"
        self.prefix = prefix

    def auth_headers(self, token: str) -> dict[str, str]:
        # Emby documents X-Emby-Token for API keys; the client fields only name the device.
        return {
            "X-Emby-Token": token,
            "X-Emby-Authorization": f"Emby {self._client_fields()}",
            **JSON,
        }
