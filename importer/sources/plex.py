"""Plex Media Server: discovery, library-level page requests, and page decoders.

Every stream is one paged listing of a whole TV section:
``GET /library/sections/{id}/all?type=2|3|4`` (shows, seasons, episodes), in ratingKey
order (``sort=id``) so that items added during a run land at the end. Pages are JSON
(``Accept: application/json``) ``MediaContainer`` objects with ``offset``, ``size``
and ``totalSize``. Details and sources: shared/research/server-apis.md, "PLEX".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import msgspec
from msgspec import Struct, field

from importer.errors import DecodeError, NotFoundError
from importer.model import LibraryInfo, ListingKind, PageRequest, ServerInfo, StreamKind
from importer.rows import Row
from importer.sources.base import DecodedPage, HttpGet
from importer.sources.common import (
    JSON,
    PRODUCT,
    VERSION,
    as_id,
    content_etag,
    decode_json,
    default_client_id,
    strip_token,
)
from importer.speedups import plex_episode_rows, plex_external_ids

KIND = "plex"
#: Plex's documented maximum page size; larger sizes are due to become a 400.
PAGE_SIZE = 1000
#: the type of each stream's items: its number in queries, its name in answers
_TYPE_NUMBER = {StreamKind.SHOWS: "2", StreamKind.SEASONS: "3", StreamKind.EPISODES: "4"}
_TYPE_NAME = {StreamKind.SHOWS: "show", StreamKind.SEASONS: "season", StreamKind.EPISODES: "episode"}
#: Flags that keep a bulk listing cheap for the server (as PlexKodiConnect pins them),
#: and the tag lists and attributes we never store, left out to shrink the page (a third
#: of an episode's bytes are artwork paths, keys and the parents' titles and guids). Plex
#: treats the exclusions as requests: a server that ignores them costs bytes, not rows.
#: Listings truncate tags to a few names each, so cast, crew and genres always come from
#: ``importer hydrate``; a show's and a season's own artwork and ratings are whole here.
_LISTING_FLAGS: dict[str, str] = {
    "includeGuids": "1",
    "sort": "id",
    "checkFiles": "0",
    "includeExtras": "0",
    "includeRelated": "0",
    "skipRefresh": "1",
    "excludeElements": (
        "Role,Director,Writer,Producer,Genre,Country,Collection,Label,Similar,Mood,Style,"
        "Rating,Image,UltraBlurColors"
    ),
    "excludeFields": (
        "key,parentKey,grandparentKey,parentGuid,grandparentGuid,parentTitle,grandparentTitle,"
        "studio,parentStudio,contentRating,rating,audienceRating,audienceRatingImage,parentYear,"
        "thumb,art,banner,theme,parentThumb,parentTheme,grandparentThumb,grandparentArt,grandparentTheme,"
        "viewedLeafCount,childCount"
    ),
}
#: what the shows and seasons streams keep of those attributes: their artwork and ratings
#: (a few hundred bytes an item, and there are ~20 episodes for every season)
_STORED_FIELDS = {
    StreamKind.SHOWS: {"studio", "contentRating", "rating", "audienceRating", "thumb", "art", "banner"},
    StreamKind.SEASONS: {"thumb", "art"},
    StreamKind.EPISODES: set(),
}
_EXCLUDED_FIELDS = {
    stream: ",".join(f for f in _LISTING_FLAGS["excludeFields"].split(",") if f not in keep)
    for stream, keep in _STORED_FIELDS.items()
}

# ----------------------------------------------------------------------------- page shapes
# Only the fields the rows need; msgspec skips the rest without building them.
# Items send ids as strings, containers as numbers: ids are typed ``str | int``.


class Guid(Struct, gc=False):
    id: str


class Part(Struct, gc=False):
    id: str | int
    file: str | None = None
    size: int | None = None
    duration: int | None = None
    container: str | None = None


class Media(Struct, gc=False, rename="camel"):
    duration: int | None = None
    width: int | None = None
    height: int | None = None
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    parts: list[Part] = field(name="Part", default_factory=list)


class Show(Struct, gc=False, rename="camel"):
    rating_key: str | int
    type: str | None = None
    guid: str | None = None
    title: str | None = None
    title_sort: str | None = None
    year: int | None = None
    summary: str | None = None
    leaf_count: int | None = None
    added_at: int | None = None
    updated_at: int | None = None
    content_rating: str | None = None
    studio: str | None = None
    rating: float | None = None  # the critics', 0-10
    audience_rating: float | None = None  # 0-10
    thumb: str | None = None
    art: str | None = None
    banner: str | None = None
    guids: list[Guid] = field(name="Guid", default_factory=list)


class Season(Struct, gc=False, rename="camel"):
    rating_key: str | int
    type: str | None = None
    parent_rating_key: str | int | None = None
    index: int | None = None
    title: str | None = None
    thumb: str | None = None
    art: str | None = None


class Episode(Struct, gc=False, rename="camel"):
    rating_key: str | int
    type: str | None = None
    grandparent_rating_key: str | int | None = None
    parent_rating_key: str | int | None = None
    guid: str | None = None
    title: str | None = None
    summary: str | None = None
    index: int | None = None
    parent_index: int | None = None
    originally_available_at: str | None = None
    duration: int | None = None
    added_at: int | None = None
    updated_at: int | None = None
    guids: list[Guid] = field(name="Guid", default_factory=list)
    media: list[Media] = field(name="Media", default_factory=list)


ItemT = TypeVar("ItemT", Show, Season, Episode)


class Container(Struct, Generic[ItemT], gc=False, rename="camel"):
    offset: int | None = None
    total_size: int | None = None
    metadata: list[ItemT] = field(name="Metadata", default_factory=list)


class Page(Struct, Generic[ItemT], gc=False):
    container: Container[ItemT] = field(name="MediaContainer")


class Identity(Struct):
    machine_identifier: str = field(name="machineIdentifier")
    version: str = ""
    friendly_name: str | None = field(name="friendlyName", default=None)


class IdentityPage(Struct):
    container: Identity = field(name="MediaContainer")


class Section(Struct):
    key: str | int
    title: str = ""
    type: str = ""


class Sections(Struct):
    directory: list[Section] = field(name="Directory", default_factory=list)


class SectionsPage(Struct):
    container: Sections = field(name="MediaContainer")


_SHOWS = msgspec.json.Decoder(Page[Show])
_SEASONS = msgspec.json.Decoder(Page[Season])
_EPISODES = msgspec.json.Decoder(Page[Episode])
_IDENTITY = msgspec.json.Decoder(IdentityPage)
_SECTIONS = msgspec.json.Decoder(SectionsPage)

# ----------------------------------------------------------------------------- external ids

#: Legacy-agent show guids name one external id: "com.plexapp.agents.thetvdb://268592?lang=en".
_LEGACY_AGENT_SLOT = {
    "com.plexapp.agents.thetvdb": 2,
    "com.plexapp.agents.themoviedb": 1,
    "com.plexapp.agents.imdb": 0,
}


def external_ids(guids: list[Guid]) -> tuple[str | None, str | None, str | None]:
    """(imdb, tmdb, tvdb) from ``Guid[]`` entries such as ``imdb://tt0944947``."""
    return plex_external_ids(guids)


def legacy_show_ids(guid: str | None) -> tuple[str | None, str | None, str | None]:
    """(imdb, tmdb, tvdb) from a legacy-agent show guid, which has no ``Guid[]``.

    Only show guids: an episode's legacy guid names the *show's* id plus S/E numbers."""
    ids: list[str | None] = [None, None, None]
    if guid and guid.startswith("com.plexapp.agents."):
        agent, sep, rest = guid.partition("://")
        slot = _LEGACY_AGENT_SLOT.get(agent)
        value = rest.split("?", 1)[0].split("/", 1)[0]
        if sep and slot is not None and value:
            ids[slot] = value
    return ids[0], ids[1], ids[2]


# ----------------------------------------------------------------------------- decoders


def _check_type(item_type: str | None, stream: StreamKind, what: str) -> None:
    # A server that ignored ``type=`` would list shows under every stream; refuse it.
    if item_type is not None and item_type != _TYPE_NAME[stream]:
        raise DecodeError(f"{what}: asked for {stream} but the page lists a {item_type!r} item")


def _page(container: Container[ItemT], stream: StreamKind, ids: list[str], rows: list[Row]) -> DecodedPage:
    return DecodedPage(
        stream=stream,
        offset=-1 if container.offset is None else container.offset,
        count=len(container.metadata),
        total=container.total_size,
        ids=ids,
        rows=rows,
    )


def decode_shows(body: bytes | memoryview, library_source_id: str) -> DecodedPage:
    what = f"Plex shows page of section {library_source_id}"
    container = decode_json(_SHOWS, body, what, "Plex").container
    rows: list[Row] = []
    images: list[Row] = []
    ids: list[str] = []
    leaves = 0
    for s in container.metadata:
        _check_type(s.type, StreamKind.SHOWS, what)
        sid = as_id(s.rating_key)
        if s.guids:
            imdb, tmdb, tvdb = external_ids(s.guids)
        else:
            imdb, tmdb, tvdb = legacy_show_ids(s.guid)
        row = (
            sid, s.guid, s.title, s.title_sort or s.title, s.year, s.summary,
            imdb, tmdb, tvdb, s.added_at, s.updated_at,
            s.content_rating, s.studio, s.rating, s.audience_rating,
        )  # fmt: skip
        art = ((sid, "poster", s.thumb), (sid, "backdrop", s.art), (sid, "banner", s.banner))
        # the artwork is in the etag: a new poster alone rewrites the show and its images
        rows.append((*row, content_etag((*row, s.thumb, s.art, s.banner))))
        images.extend(image_rows(art))
        ids.append(sid)
        leaves += s.leaf_count or 0
    page = _page(container, StreamKind.SHOWS, ids, rows)
    page.leaf_total = leaves
    page.images = images
    return page


def decode_seasons(body: bytes | memoryview, library_source_id: str) -> DecodedPage:
    what = f"Plex seasons page of section {library_source_id}"
    container = decode_json(_SEASONS, body, what, "Plex").container
    rows: list[Row] = []
    images: list[Row] = []
    ids: list[str] = []
    for s in container.metadata:
        _check_type(s.type, StreamKind.SEASONS, what)
        sid = as_id(s.rating_key)
        parent = None if s.parent_rating_key is None else as_id(s.parent_rating_key)
        row = (sid, parent, s.index, s.title)
        rows.append((*row, content_etag((*row, s.thumb, s.art))))
        images.extend(image_rows(((sid, "poster", s.thumb), (sid, "backdrop", s.art))))
        ids.append(sid)
    page = _page(container, StreamKind.SEASONS, ids, rows)
    page.images = images
    return page


def image_tag(path: str) -> str | None:
    """The trailing number of a Plex artwork path (``/library/metadata/12/thumb/1700000000``):
    it changes whenever the image does."""
    tail = path.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return tail if tail.isdigit() else None


def image_rows(images: Sequence[tuple[str, str, str | None]]) -> list[Row]:
    """Image rows (``importer.rows.IMAGE_COLUMNS``) of (item source id, kind, path): the
    item's own only. Plex repeats a parent's artwork on its children under their own
    attributes (a season's ``art`` is its show's; so is a season's ``thumb`` when it has
    no poster), and such a path names the parent's ratingKey. A path is stored as served,
    without any token in its query."""
    return [
        (sid, kind, strip_token(path), image_tag(path))
        for sid, kind, path in images
        if path and path.startswith(f"/library/metadata/{sid}/")
    ]


def decode_episodes(body: bytes | memoryview, library_source_id: str) -> DecodedPage:
    what = f"Plex episodes page of section {library_source_id}"
    container = decode_json(_EPISODES, body, what, "Plex").container
    # the per-item loop (one file row per Media x Part, external ids, etags) is
    # importer.speedups.plex_episode_rows, compiled where available
    rows, files, ids, bad_type = plex_episode_rows(container.metadata, _TYPE_NAME[StreamKind.EPISODES])
    if bad_type is not None:
        _check_type(bad_type, StreamKind.EPISODES, what)
    page = _page(container, StreamKind.EPISODES, ids, rows)
    page.files = files
    return page


DECODERS: dict[StreamKind, Callable[[bytes | memoryview, str], DecodedPage]] = {
    StreamKind.SHOWS: decode_shows,
    StreamKind.SEASONS: decode_seasons,
    StreamKind.EPISODES: decode_episodes,
}


def parse_identity(body: bytes, what: str = "Plex /identity") -> Identity:
    """``/identity`` (public, no token needed) or ``/``: machineIdentifier and version
    (and, from ``/`` only, friendlyName)."""
    return decode_json(_IDENTITY, body, what, "Plex").container


# ----------------------------------------------------------------------------- the source


class PlexSource:
    """A Plex Media Server."""

    kind = KIND
    page_size = PAGE_SIZE
    supports_delta = True
    ids_page_size: int | None = None  # every Plex item comes with its details
    prefix = ""

    def __init__(
        self, base_url: str = "", *, client_id: str | None = None, identity_body: bytes | None = None
    ) -> None:
        self.base_url = base_url
        self.client_id = client_id or default_client_id()
        # /identity as fetched by kind detection, the fallback for a server that refuses /
        self._identity_body = identity_body

    def auth_headers(self, token: str) -> dict[str, str]:
        return {
            "X-Plex-Token": token,
            "X-Plex-Client-Identifier": self.client_id,
            "X-Plex-Product": PRODUCT,
            "X-Plex-Version": VERSION,
            "Accept": "application/json",
        }

    async def _root(self, http: HttpGet) -> Identity:
        try:
            return parse_identity(await http.get_bytes("/", headers=JSON), "Plex /")
        except NotFoundError:
            body = self._identity_body
            if body is None:
                body = await http.get_bytes("/identity", headers=JSON)
            return parse_identity(body)

    async def discover(self, http: HttpGet) -> tuple[ServerInfo, list[LibraryInfo]]:
        # "/" names the server (friendlyName) besides its id and version; the public
        # /identity that detection reads does not, so it is only the fallback. The two
        # requests are independent: one round trip, not two.
        paging = {"X-Plex-Container-Start": "0", "X-Plex-Container-Size": str(PAGE_SIZE)}
        root, sections_body = await asyncio.gather(
            self._root(http), http.get_bytes("/library/sections", headers={**JSON, **paging})
        )
        identity = root
        sections = decode_json(_SECTIONS, sections_body, "Plex /library/sections", "Plex").container
        server = ServerInfo(
            kind=KIND,
            machine_id=identity.machine_identifier,
            name=identity.friendly_name or "Plex Media Server",
            version=identity.version,
            base_url=self.base_url,
        )
        libraries = [LibraryInfo(as_id(s.key), s.title) for s in sections.directory if s.type == "show"]
        return server, libraries

    def total_hint(self, headers: Mapping[str, str], body: bytes, encoding: str | None) -> int | None:
        # Plex states the listing's total in a header of every page, as in its body
        value = headers.get("X-Plex-Container-Total-Size", "")
        return int(value) if value.isdigit() else None

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
        # Every Plex page states totalSize: with_total costs nothing and changes nothing.
        # The paging values go both as query arguments and as headers, as Plex documents
        # both (and watchstate sends both); size 0 asks for the count alone.
        if listing in (ListingKind.IDS, ListingKind.DETAILS):
            raise ValueError("Plex has no ids listing: every item comes with its details")
        if listing is ListingKind.COUNT:
            limit = 0
        paging = {"X-Plex-Container-Start": str(offset), "X-Plex-Container-Size": str(limit)}
        params = {
            "type": _TYPE_NUMBER[stream],
            **_LISTING_FLAGS,
            "excludeFields": _EXCLUDED_FIELDS[stream],
            **paging,
        }
        if watermark is not None:
            # Scoped to the listed type: unscoped, the field would apply to shows. An added
            # item is updated when added, so updatedAt alone also finds new items.
            params[f"{_TYPE_NAME[stream]}.updatedAt>>"] = str(watermark)
        return PageRequest(
            path=f"/library/sections/{library.source_id}/all", params=params, headers={**JSON, **paging}
        )

    def items_request(self, ids: Sequence[str]) -> PageRequest:
        """The items with these ratingKeys, whatever their type and section, in full
        (``/library/metadata/{id,id,…}``; at most ``ITEMS_PER_REQUEST``): what a change
        notification names. Missing ids are left out; none found is a 404."""
        flags = {k: v for k, v in _LISTING_FLAGS.items() if k not in ("sort", "excludeFields")}
        return PageRequest(path=f"/library/metadata/{','.join(ids)}", params=flags, headers=JSON)


#: ratingKeys per ``/library/metadata`` request (python-plexapi fetches ~100 at a time)
ITEMS_PER_REQUEST = 100
