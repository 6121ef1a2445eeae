"""Folder items as BaseItemDto JSON: series, seasons and libraries (CollectionFolder).

Each kind is a :class:`~importer.emulator.jellyfin.dto.DtoTable`: its properties in
DtoService's order, each behind the ``Fields`` value (or switch) that writes it. What the
kinds write alike (empty lists, the capabilities, ``"ChannelId":null``) is one shared
:class:`~importer.emulator.jellyfin.dto.Prop`, here or in ``pieces`` (with episodes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final, NamedTuple, TypeVar

from importer.emulator.credits import PRIMARY, Art
from importer.emulator.jellyfin.catalog import Folder
from importer.emulator.jellyfin.dto import (
    IMAGES,
    NO_IMAGES,
    USER,
    DtoTable,
    Prop,
    Renderer,
    always,
)
from importer.emulator.jellyfin.frags import ShowFrags
from importer.emulator.jellyfin.ids import jf_etag, name_guid
from importer.emulator.jellyfin.images import blur_json, inherited, own_images
from importer.emulator.jellyfin.people import (
    community_json,
    critic_json,
    genre_items_json,
    genres_json,
    series_people,
    studios_json,
)
from importer.emulator.jellyfin.pieces import (
    CAN_DELETE,
    CHANNEL,
    NO_GENRE_ITEMS,
    NO_GENRES,
    NO_STUDIOS,
    TAGLINES,
    TAGS,
    TRAILERS,
    external_urls,
    provider_ids,
    sort_name,
    user_data,
)
from importer.emulator.jellyfin.values import date_created, jf_date
from importer.emulator.library import DOUBLE_SECOND, VIRTUAL, Library, Season, Show, View, slot_flags

T = TypeVar("T")


class SeriesItem(NamedTuple):
    lib_index: int
    library: Library
    show: Show
    sf: ShowFrags


class SeasonItem(NamedTuple):
    show: Show
    season: Season
    sf: ShowFrags
    listed: int  # the season's items in the Jellyfin view
    present: int  # ... of which not missing
    art: Art  # the season's own images


# ---------------------------------------------------------------- written alike by folder kinds
_CAN_DOWNLOAD: Final[Prop[object]] = Prop("CanDownload", ',"CanDownload":false')
_NO_EXTERNAL_URLS: Final[Prop[object]] = Prop("ExternalUrls", ',"ExternalUrls":[]')
_NO_PROVIDER_IDS: Final[Prop[object]] = Prop("ProviderIds", ',"ProviderIds":{}')
_IS_FOLDER: Final[Prop[object]] = Prop(None, ',"IsFolder":true')
_NO_PEOPLE: Final[Prop[object]] = Prop("People", ',"People":[]')
_POSTER_RATIO: Final[Prop[object]] = Prop(
    "PrimaryImageAspectRatio", ',"PrimaryImageAspectRatio":0.6666666666666666'
)
_FILE_SYSTEM: Final[Prop[object]] = Prop(None, ',"LocationType":"FileSystem","MediaType":"Unknown"')


def _head(r: Renderer, name_json: str, item_id: str) -> str:
    return '{"Name":' + name_json + r.server.sid_json + ',"Id":"' + item_id + '"'


def _etag(saved_at: int) -> str:
    return ',"Etag":"' + jf_etag(saved_at) + '"'


# ---------------------------------------------------------------- series
def _ended(show: Show) -> bool:
    return show.seed % 3 == 0


def _premiere(r: Renderer, it: SeriesItem) -> str:
    seed, year = it.show.seed, it.show.year
    return (
        f',"PremiereDate":"{year}-{1 + seed % 12:02d}-{1 + seed % 28:02d}T00:00:00.0000000Z"' if year else ""
    )


def _series_images(r: Renderer, it: SeriesItem) -> str:
    tags, blur = own_images(r, it.sf.art)
    return tags + blur_json(it.sf.blurhash, blur)


def _end_date(r: Renderer, it: SeriesItem) -> str:
    year = it.show.year
    if _ended(it.show) and year:
        return f',"EndDate":"{year + 1 + it.show.seed % 6}-05-01T00:00:00.0000000Z"'
    return ""


SERIES: Final[DtoTable[SeriesItem]] = DtoTable(
    always(lambda r, it: _head(r, it.sf.name, it.sf.series_id)),
    Prop("Etag", lambda r, it: _etag(it.show.updated_at)),
    Prop("DateCreated", lambda r, it: date_created(it.show.added_at)),
    CAN_DELETE,
    _CAN_DOWNLOAD,
    Prop("SortName", lambda r, it: ',"SortName":' + r.server.escape(sort_name(it.show.title))),
    always(_premiere),
    Prop(
        "ExternalUrls",
        lambda r, it: external_urls(it.show.ids.imdb, it.show.ids.tmdb, it.show.ids.tvdb, "tv"),
    ),
    always(lambda r, it: critic_json(it.library.credits.show(it.show))),
    Prop("Path", lambda r, it: ',"Path":' + r.server.escape("/data/TV/" + it.show.title)),
    always(lambda r, it: f',"OfficialRating":"{it.show.content_rating}"' if it.show.content_rating else ""),
    CHANNEL,
    Prop(
        "Overview",
        lambda r, it: "" if it.show.summary is None else ',"Overview":' + r.server.escape(it.show.summary),
    ),
    TAGLINES,
    Prop("Genres", lambda r, it: genres_json(r.server, it.library.credits.show(it.show))),
    always(lambda r, it: community_json(it.library.credits.show(it.show))),
    always(lambda r, it: f',"ProductionYear":{it.show.year}' if it.show.year else ""),
    TRAILERS,
    Prop("ProviderIds", lambda r, it: provider_ids(it.show.ids.imdb, it.show.ids.tmdb, it.show.ids.tvdb)),
    _IS_FOLDER,
    Prop("ParentId", lambda r, it: ',"ParentId":"' + r.server.folders[it.lib_index].id + '"'),
    always(',"Type":"Series"'),
    Prop("People", lambda r, it: series_people(r.server, it.lib_index, it.show)),
    Prop("Studios", lambda r, it: studios_json(r.server, it.show.studio)),
    Prop("Genres", lambda r, it: genre_items_json(r.server, it.library.credits.show(it.show))),
    Prop(
        USER,
        lambda r, it: user_data(
            it.sf.user_key, it.sf.series_id, it.library.count(it.show, View.JELLYFIN_PRESENT)
        ),
    ),
    Prop(
        "RecursiveItemCount",
        lambda r, it: f',"RecursiveItemCount":{it.library.count(it.show, View.JELLYFIN)}',
    ),
    Prop("ChildCount", lambda r, it: f',"ChildCount":{len(it.show.season_sizes)}'),
    always(lambda r, it: f',"Status":"{"Ended" if _ended(it.show) else "Continuing"}","AirDays":[]'),
    TAGS,
    _POSTER_RATIO,
    Prop(IMAGES, _series_images),
    Prop(NO_IMAGES, ',"ImageBlurHashes":{}'),
    _FILE_SYSTEM,
    always(_end_date),
    always("}"),
)


# ---------------------------------------------------------------- seasons
def _season_path(r: Renderer, it: SeasonItem) -> str:
    return ',"Path":' + r.server.escape(f"/data/TV/{it.show.title}/Season {it.season.season_number:02d}")


def _season_year(r: Renderer, it: SeasonItem) -> str:
    year = it.show.year
    return f',"ProductionYear":{year + max(it.season.season_number - 1, 0)}' if year else ""


def _season_inherited(r: Renderer, it: SeasonItem) -> str:
    return inherited(r, it.sf, it.art).before_user


def _season_images(r: Renderer, it: SeasonItem) -> str:
    tags, blur = own_images(r, it.art)
    parent = inherited(r, it.sf, it.art)
    sf = it.sf
    series = [("Primary", sf.art.tag(PRIMARY))] if sf.art.primary else []
    return tags + parent.after_tags + blur_json(sf.blurhash, blur, parent.blur, series) + parent.after_blur


SEASONS: Final[DtoTable[SeasonItem]] = DtoTable(
    always(
        lambda r, it: _head(r, it.sf.season_names[it.season.ordinal], it.sf.season_ids[it.season.ordinal])
    ),
    Prop("Etag", lambda r, it: _etag(it.season.updated_at)),
    Prop("DateCreated", lambda r, it: date_created(it.season.added_at)),
    CAN_DELETE,
    _CAN_DOWNLOAD,
    Prop("SortName", lambda r, it: f',"SortName":"{it.season.season_number:04d}"'),
    _NO_EXTERNAL_URLS,
    Prop("Path", _season_path),
    CHANNEL,
    TAGLINES,
    NO_GENRES,
    always(_season_year),
    always(lambda r, it: f',"IndexNumber":{it.season.season_number}'),
    TRAILERS,
    _NO_PROVIDER_IDS,
    _IS_FOLDER,
    Prop("ParentId", lambda r, it: ',"ParentId":"' + it.sf.series_id + '"'),
    always(',"Type":"Season"'),
    _NO_PEOPLE,
    NO_STUDIOS,
    NO_GENRE_ITEMS,
    Prop(IMAGES, _season_inherited),
    Prop(
        USER,
        lambda r, it: user_data(
            f"{it.sf.user_key}{it.season.season_number:03d}", it.sf.season_ids[it.season.ordinal], it.present
        ),
    ),
    Prop("RecursiveItemCount", lambda r, it: f',"RecursiveItemCount":{it.listed}'),
    Prop("ChildCount", lambda r, it: f',"ChildCount":{it.listed}'),
    always(lambda r, it: it.sf.ep_series),
    TAGS,
    _POSTER_RATIO,
    always(lambda r, it: it.sf.ep_series_image),
    Prop(IMAGES, _season_images),
    Prop(NO_IMAGES, lambda r, it: it.sf.ep_blur_series),
    _FILE_SYSTEM,
    always("}"),
)


# ---------------------------------------------------------------- libraries
LIBRARIES: Final[DtoTable[Folder]] = DtoTable(
    always(lambda r, f: _head(r, r.server.escape(f.name), f.id)),
    Prop("Etag", lambda r, f: _etag(1_700_000_000)),
    Prop("DateCreated", lambda r, f: ',"DateCreated":"' + jf_date(1_700_000_000) + '"'),
    CAN_DELETE,
    _CAN_DOWNLOAD,
    Prop("SortName", lambda r, f: ',"SortName":' + r.server.escape(f.name.lower())),
    _NO_EXTERNAL_URLS,
    Prop("Path", lambda r, f: ',"Path":' + r.server.escape("/config/root/default/" + f.name)),
    CHANNEL,
    TAGLINES,
    NO_GENRES,
    TRAILERS,
    _NO_PROVIDER_IDS,
    _IS_FOLDER,
    Prop(
        "ParentId",
        lambda r, f: (
            ',"ParentId":"' + r.server.catalog.item_id(name_guid(r.server.server_id + ":root")) + '"'
        ),
    ),
    always(',"Type":"CollectionFolder"'),
    _NO_PEOPLE,
    NO_STUDIOS,
    NO_GENRE_ITEMS,
    Prop(USER, lambda r, f: user_data(f.id, f.id)),
    Prop(
        "ChildCount",
        lambda r, f: f',"ChildCount":{0 if f.lib is None else len(r.server.catalog.libraries[f.lib].shows)}',
    ),
    TAGS,
    Prop("PrimaryImageAspectRatio", ',"PrimaryImageAspectRatio":1.7777777777777777'),
    always(lambda r, f: f',"CollectionType":"{f.collection_type}"'),
    Prop(IMAGES, ',"ImageTags":{},"BackdropImageTags":[]'),
    always(',"ImageBlurHashes":{},"LocationType":"FileSystem","MediaType":"Unknown"}'),
)


# ---------------------------------------------------------------- rendering
def render_series(r: Renderer, lib_index: int, shows: Iterable[Show], out: list[str]) -> None:
    library = r.server.catalog.libraries[lib_index]
    frags = r.server.frags.get
    items = (SeriesItem(lib_index, library, show, frags(lib_index, show.index)) for show in shows)
    _render(r, SERIES, items, out)


def render_seasons(r: Renderer, lib_index: int, seasons: Iterable[Season], out: list[str]) -> None:
    _render(r, SEASONS, _season_items(r, lib_index, seasons), out)


def render_library(r: Renderer, folder: Folder) -> str:
    """A library; nothing is charged for its (empty) People."""
    return LIBRARIES.template(r.gates).render(r, folder)


def _render(r: Renderer, table: DtoTable[T], items: Iterable[T], out: list[str]) -> None:
    template = table.template(r.gates)
    before = len(out)
    out.extend([template.render(r, item) for item in items])
    if "People" in r.fields:
        r.people_items += len(out) - before


def _season_items(r: Renderer, lib_index: int, seasons: Iterable[Season]) -> Iterator[SeasonItem]:
    library = r.server.catalog.libraries[lib_index]
    show_index = -1
    sf: ShowFrags | None = None
    counts: list[tuple[int, int]] = []
    for season in seasons:
        show = library.shows[season.show_index]
        if show.index != show_index:  # the seasons of a show come together
            show_index = show.index
            sf = r.server.frags.get(lib_index, show_index)
            counts = _season_counts(library, show)
        listed, present = counts[season.ordinal]
        assert sf is not None
        yield SeasonItem(show, season, sf, listed, present, library.credits.season_art(show, season))


def _season_counts(library: Library, show: Show) -> list[tuple[int, int]]:
    """Per season ordinal: (items in the Jellyfin view, present ones), from slot flags."""
    flags = slot_flags(show, library.spec.shape)
    out = []
    at = 0
    for _, count in show.season_sizes:
        chunk = flags[at : at + count]
        at += count
        listed_n = sum(1 for f in chunk if f != DOUBLE_SECOND)
        out.append((listed_n, sum(1 for f in chunk if f not in (DOUBLE_SECOND, VIRTUAL))))
    return out
