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
import re
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import quote

import msgspec
from msgspec import Struct

from importer.errors import DecodeError
from importer.model import LibraryInfo, ListingKind, PageRequest, ServerInfo, StreamKind
from importer.rows import Row
from importer.sources.base import DecodedPage, HttpGet
from importer.sources.common import JSON, PRODUCT, VERSION, content_etag, decode_json, default_client_id
from importer.sources.idlists import IDS_PAGE_SIZE, ITEM_TYPE
from importer.speedups import jellyfin_episode_rows, parse_timestamp

KIND = "jellyfin"
#: Jellyfin has no server-side cap. A thousand items keep a page around a second of a real
#: server's work, and let a library of 5,000 episodes arrive in three round trips (the
#: first page of each stream, then the rest at once, four in flight).
PAGE_SIZE = 1000
#: Only what the rows need. PremiereDate, ProductionYear, RunTimeTicks, index numbers,
#: SeriesId/SeasonId, LocationType and the ratings come without asking. Never People:
#: many times slower (``importer hydrate`` fetches it, in small batches).
_FIELDS = {
    StreamKind.SHOWS: "ProviderIds,Overview,DateCreated,Etag,SortName,Studios",
    StreamKind.SEASONS: "Etag",
    StreamKind.EPISODES: "ProviderIds,Overview,DateCreated,Etag,MediaSources",
}
#: Items cannot be sorted by id; DateCreated puts items added during a run at the end
#: (SortName breaks ties), which keeps offset paging as stable as the server allows.
_SORT = {"SortBy": "DateCreated,SortName", "SortOrder": "Ascending"}
#: the count at the end of a page: ``..."TotalRecordCount":5000,"StartIndex":0}``
_TOTAL_AT_END = re.compile(rb'\],\s*"TotalRecordCount"\s*:\s*(\d+)\s*[,}][^\]]*$')
#: Shows and seasons come with their image tags (a few dozen bytes each); episodes without
#: (their stills come from ``importer hydrate --episodes``).
_IMAGE_STREAMS = frozenset({StreamKind.SHOWS, StreamKind.SEASONS})
#: the image types stored, and their kind in the ``images`` table (Primary: see image_rows)
IMAGE_KINDS = {"Primary": "poster", "Banner": "banner", "Logo": "logo", "Thumb": "thumb"}
_IMAGE_TYPES = "Primary,Backdrop,Banner,Logo,Thumb"
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


class NamePair(Struct, gc=False, rename="pascal"):
    """Jellyfin's NameGuidPair, Emby's NameLongIdPair (an integer Id)."""

    name: str | None = None
    id: str | int | None = None


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
    official_rating: str | None = None
    critic_rating: float | None = None  # 0-100
    community_rating: float | None = None  # 0-10
    studios: list[NamePair] | None = None
    image_tags: dict[str, str] | None = None
    backdrop_image_tags: list[str] | None = None


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


def image_rows(item: Item, primary: str) -> list[Row]:
    """The item's images (``importer.rows.IMAGE_COLUMNS``), each backdrop its own row.
    ``primary`` is what a Primary image is: a show's or season's poster, an episode's still."""
    rows: list[Row] = []
    for image_type, tag in (item.image_tags or {}).items():
        kind = primary if image_type == "Primary" else IMAGE_KINDS.get(image_type)
        if kind is not None:
            rows.append((item.id, kind, f"/Items/{item.id}/Images/{image_type}/0", tag))
    for index, tag in enumerate(item.backdrop_image_tags or ()):
        rows.append((item.id, "backdrop", f"/Items/{item.id}/Images/Backdrop/{index}", tag))
    return rows


def _items(body: bytes | memoryview, stream: StreamKind, library_source_id: str) -> tuple[QueryResult, str]:
    what = f"{stream} page of library {library_source_id}"
    result = decode_json(_PAGE, body, what, "Jellyfin or Emby")
    expected = ITEM_TYPE[stream]
    for item in result.items:
        # A server that ignored IncludeItemTypes would mix kinds; refuse it.
        if item.type is not None and item.type != expected:
            raise DecodeError(f"{what}: asked for {expected} items but the page lists a {item.type!r} item")
    return result, what


def _page(
    result: QueryResult, stream: StreamKind, ids: list[str], rows: list[Row], with_total: bool
) -> DecodedPage:
    return DecodedPage(
        stream=stream,
        offset=-1 if result.start_index is None else result.start_index,
        count=len(result.items),
        # Without EnableTotalRecordCount the server puts the page length here: not a total.
        total=result.total_record_count if with_total else None,
        ids=ids,
        rows=rows,
    )


def decode_shows(body: bytes | memoryview, library_source_id: str, with_total: bool = True) -> DecodedPage:
    result, what = _items(body, StreamKind.SHOWS, library_source_id)
    rows: list[Row] = []
    images: list[Row] = []
    ids: list[str] = []
    for s in result.items:
        if s.location_type == "Virtual":
            continue
        imdb, tmdb, tvdb = _ids(s)
        critic = None if s.critic_rating is None else s.critic_rating / 10
        studio = s.studios[0].name if s.studios else None
        row = (
            s.id, None, s.name, s.sort_name or s.name, s.production_year, s.overview,
            imdb, tmdb, tvdb, _seconds(s.date_created, what), None,
            s.official_rating, studio, critic, s.community_rating,
        )  # fmt: skip
        art = image_rows(s, "poster")
        rows.append((*row, s.etag or content_etag((*row, *art))))
        images.extend(art)
        ids.append(s.id)
    page = _page(result, StreamKind.SHOWS, ids, rows, with_total)
    page.images = images
    return page


def decode_seasons(body: bytes | memoryview, library_source_id: str, with_total: bool = True) -> DecodedPage:
    result, _ = _items(body, StreamKind.SEASONS, library_source_id)
    rows: list[Row] = []
    images: list[Row] = []
    ids: list[str] = []
    for s in result.items:
        if s.location_type == "Virtual":  # a season of missing episodes only
            continue
        row = (s.id, s.series_id, s.index_number, s.name)
        art = image_rows(s, "poster")
        rows.append((*row, s.etag or content_etag((*row, *art))))
        images.extend(art)
        ids.append(s.id)
    page = _page(result, StreamKind.SEASONS, ids, rows, with_total)
    page.images = images
    return page


def decode_episodes(body: bytes | memoryview, library_source_id: str, with_total: bool = True) -> DecodedPage:
    result, what = _items(body, StreamKind.EPISODES, library_source_id)
    # the per-item loop (ids, dates, ticks, media sources, etags) is
    # importer.speedups.jellyfin_episode_rows, compiled where available
    try:
        rows, files, ids = jellyfin_episode_rows(result.items)
    except ValueError as exc:  # the only one it raises on a decoded page: a date
        raise DecodeError(f"{what}: a date is not ISO 8601 ({exc})") from exc
    page = _page(result, StreamKind.EPISODES, ids, rows, with_total)
    page.files = files
    return page


DECODERS: dict[StreamKind, Callable[[bytes | memoryview, str, bool], DecodedPage]] = {
    StreamKind.SHOWS: decode_shows,
    StreamKind.SEASONS: decode_seasons,
    StreamKind.EPISODES: decode_episodes,
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

    def total_hint(self, headers: Mapping[str, str], body: bytes, encoding: str | None) -> int | None:
        # Jellyfin and Emby write TotalRecordCount after the items: the body's last bytes
        # (only when not compressed; a wrong guess costs a drifted listing, never a row)
        if encoding not in (None, "identity"):
            return None
        found = _TOTAL_AT_END.search(body, max(0, len(body) - 256))
        return int(found.group(1)) if found else None

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
        if listing is ListingKind.COUNT:
            limit = 0
        images = stream in _IMAGE_STREAMS and listing in (ListingKind.FULL, ListingKind.DETAILS)
        params = {
            "ParentId": library.source_id,
            "IncludeItemTypes": ITEM_TYPE[stream],
            "Recursive": "true",
            # bare items, and their etags: what changed is fetched by id
            "Fields": "Etag" if listing is ListingKind.IDS else _FIELDS[stream],
            "EnableImages": "true" if images else "false",
            "EnableUserData": "false",
            # a full COUNT(*) on every request unless switched off
            "EnableTotalRecordCount": "true" if with_total else "false",
            **_SORT,
            "StartIndex": str(offset),
            "Limit": str(limit),
        }
        if images:
            params["EnableImageTypes"] = _IMAGE_TYPES
        if listing is ListingKind.DETAILS:
            params.update(Ids=",".join(ids), StartIndex="0", Limit=str(len(ids)))
        if stream != StreamKind.SHOWS:
            # Leave out missing (virtual) episodes, and seasons that hold only those.
            params["ExcludeLocationTypes"] = "Virtual"
        if stream == StreamKind.EPISODES:
            params["IsMissing"] = "false"
        if watermark is not None:
            # Not plain MinDateLastSaved: on 10.8-10.10 it binds the wrong SQL parameter and
            # matches nothing at all.
            params["MinDateLastSavedForUser"] = _iso(watermark)
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
