"""Episodes as BaseItemDto JSON: the hot path (a million of them in a full listing).

Series, seasons and libraries are rendered from :class:`~importer.emulator.jellyfin.dto.DtoTable`
templates; an episode has too many properties that vary per item for a call per property,
so each is one f-string of pre-encoded pieces, and a field that was not asked for costs one
test. The property order is DtoService's, as in the tables, and the fixed properties are
the tables' own props (``Renderer.fixed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from importer.emulator.credits import PRIMARY
from importer.emulator.jellyfin import pieces
from importer.emulator.jellyfin.dto import NULL_GUIDS, Prop, Renderer
from importer.emulator.jellyfin.frags import ShowFrags
from importer.emulator.jellyfin.ids import C1, C2, M64, NUMBER_HEX, jf_etag
from importer.emulator.jellyfin.images import NOTHING, Inherited, blur_json, inherited, limit
from importer.emulator.jellyfin.media import media_sources, media_streams, part_count, path_json, source_count
from importer.emulator.jellyfin.people import episode_people
from importer.emulator.jellyfin.pieces import external_urls, provider_ids, user_data
from importer.emulator.jellyfin.values import created_fraction, jf_date
from importer.emulator.library import Episode

_CAN_DOWNLOAD: Final[Prop[object]] = Prop("CanDownload", ',"CanDownload":true')
_CHAPTERS: Final[Prop[object]] = Prop("Chapters", ',"Chapters":[]')
_NULL_SEASON: Final[Prop[object]] = Prop(NULL_GUIDS, ',"SeasonId":null')  # an episode outside any season
_FILE_TAIL: Final = ',"LocationType":"FileSystem","MediaType":"Video"}'
_VIRTUAL_TAIL: Final = ',"LocationType":"Virtual","MediaType":"Video"}'


def render_episodes(r: Renderer, lib_index: int, eps: Iterable[Episode], out: list[str]) -> None:
    """Episodes of one library, appended to ``out`` in order."""
    server = r.server
    library = server.catalog.libraries[lib_index]
    show_frags = server.frags.get
    esc = server.escape
    c1, c2, m64 = C1, C2, M64
    fields = r.fields
    want_etag = "Etag" in fields
    want_created = "DateCreated" in fields
    want_sort = "SortName" in fields
    want_urls = "ExternalUrls" in fields
    want_sources = "MediaSources" in fields
    want_path = "Path" in fields
    want_overview = "Overview" in fields
    want_ids = "ProviderIds" in fields
    want_parent = "ParentId" in fields
    want_people = "People" in fields
    want_streams = "MediaStreams" in fields
    want_count = "MediaSourceCount" in fields
    can = r.fixed(pieces.CAN_DELETE, _CAN_DOWNLOAD)
    lists1 = r.fixed(pieces.TAGLINES, pieces.NO_GENRES)
    trailers = r.fixed(pieces.TRAILERS)
    lists2 = r.fixed(pieces.NO_STUDIOS, pieces.NO_GENRE_ITEMS)
    tags = r.fixed(pieces.TAGS)
    chapters = r.fixed(_CHAPTERS)
    images = r.images
    # the still, per episode; what the series passes down, per show (images.py)
    stills = library.credits.episode_art if images and limit(r, "Primary") > 0 else None
    parent: Inherited = NOTHING
    no_backdrops = ',"BackdropImageTags":[]' if images and limit(r, "Backdrop") > 0 else ""
    blur_still = blur_none = ""  # per show: the blurhashes with (a placeholder for) a still, without
    numeric = server.numeric_ids
    user = r.user
    sid = server.sid_json
    channel = r.fixed(pieces.CHANNEL)
    null_season = r.fixed(_NULL_SEASON)
    append = out.append
    cur = -1
    sf = show_frags(lib_index, 0) if library.shows else None
    s1 = s2 = 0
    ep_ids: list[str] | None = None
    n = 0
    for ep in eps:
        if ep.show_index != cur:
            cur = ep.show_index
            sf = show_frags(lib_index, cur)
            s1, s2 = sf.id_states
            ep_ids = sf.ep_ids
            if images:
                parent = inherited(r, sf, None)
                series_blur = [("Primary", sf.art.tag(PRIMARY))] if sf.art.primary else []
                blur_still = blur_json(sf.blurhash, [("Primary", "\0")], parent.blur, series_blur)
                blur_none = blur_json(sf.blurhash, parent.blur, series_blur)
        assert sf is not None
        o = ep.ordinal
        if ep_ids is None:
            # library.jellyfin_id(3, show, ordinal), with last_round() inlined (the hot path).
            h = (s1 ^ o) * c1 & m64
            h = (h ^ (h >> 31)) * c2 & m64
            g = (s2 ^ o) * c1 & m64
            g = (g ^ (g >> 31)) * c2 & m64
            eid = f"{h ^ (h >> 29):016x}{g ^ (g >> 29):016x}"
            if numeric:  # Emby's number for it (ids.emby_number)
                eid = str(int(eid[:NUMBER_HEX], 16))
        else:  # an edited show: the episode's own id
            eid = ep_ids[o]
        files = ep.files
        first = files[0] if files else None
        sn = ep.season_number
        number = ep.episode_number
        title = esc(ep.title)
        air = ep.air_date
        ms = ep.duration_ms
        ids = ep.ids
        in_season = ep.has_season_id
        # Computed once: the item and its first MediaSource share the path and the etag.
        path = path_json(server, first.path) if first is not None and (want_path or want_sources) else ""
        etag = jf_etag(ep.updated_at) if want_etag or want_sources else ""
        if images:
            art = stills(ep) if stills is not None else None
            if art is not None and art.primary:
                tag = art.tag(PRIMARY)  # the episode's own still: new when the episode changes
                own_image = ',"ImageTags":{"Primary":"' + tag + '"}' + no_backdrops + parent.after_tags
                blur = blur_still.replace("\0", tag) + parent.after_blur
            else:
                own_image = ',"ImageTags":{}' + no_backdrops + parent.after_tags
                blur = blur_none + parent.after_blur
            before_user = parent.before_user
        else:
            before_user = own_image = ""
            blur = sf.ep_blur_series
        etag_f = ',"Etag":"' + etag + '"' if want_etag else ""
        created = (
            ',"DateCreated":"' + jf_date(ep.added_at, created_fraction(ep.added_at)) + '"'
            if want_created
            else ""
        )
        container = ',"Container":"' + first.container + '"' if first is not None else ""
        sort = f',"SortName":"{sn:03d} - {number:04d} - ' + title[1:] if want_sort else ""
        premiere = ',"PremiereDate":"' + air + 'T00:00:00.0000000Z"' if air else ""
        urls = external_urls(ids.imdb, ids.tmdb, ids.tvdb, "tv") if want_urls else ""
        sources = media_sources(server, ep, eid, path, etag) if want_sources else ""
        path_f = ',"Path":' + path if want_path and first is not None else ""
        overview = ',"Overview":' + esc(ep.summary) if want_overview and ep.summary is not None else ""
        runtime = f',"RunTimeTicks":{ms * 10_000}' if ms is not None else ""
        year = ',"ProductionYear":' + air[:4] if air else ""
        end = f',"IndexNumberEnd":{ep.episode_number_end}' if ep.episode_number_end else ""
        provider = provider_ids(ids.imdb, ids.tmdb, ids.tvdb) if want_ids else ""
        parent_f = _parent_id(sf, ep) if want_parent else ""
        people = episode_people(server, lib_index, ep) if want_people else ""
        user_f = user_data(f"{sf.user_key}{sn:03d}{number:03d}", eid) if user else ""
        season = sf.ep_season[sn] if in_season else null_season
        season_name = sf.ep_season_name[sn] if in_season else ""
        streams = media_streams(first) if want_streams and first is not None else ""
        parts = part_count(files) if len(files) > 1 else ""
        versions = source_count(files) if want_count and len(files) > 1 else ""
        location = _VIRTUAL_TAIL if ep.virtual else _FILE_TAIL
        # One BUILD_STRING, in DtoService's property order (and no tuple for the GC).
        append(
            f'{{"Name":{title}{sid},"Id":"{eid}"{etag_f}{created}{can}{container}{sort}{premiere}{urls}'
            f"{sources}{path_f}{channel}{overview}{lists1}{runtime}{year}"
            f',"IndexNumber":{number}{end},"ParentIndexNumber":{sn}{trailers}{provider}'
            f',"IsFolder":false{parent_f},"Type":"Episode"{people}{lists2}{before_user}{user_f}'
            f"{sf.ep_series}{season}{tags}{sf.ep_series_image}{season_name}{streams}"
            f',"VideoType":"VideoFile"{parts}{versions}{own_image}{blur}{chapters}{location}'
        )
        n += 1
    if want_people:
        r.people_items += n


def _parent_id(sf: ShowFrags, ep: Episode) -> str:
    # DisplayParentId: the season, or the series for an episode outside any season.
    if ep.has_season_id:
        return f',"ParentId":"{sf.season_ids[sf.season_ordinal[ep.season_number]]}"'
    return f',"ParentId":"{sf.series_id}"'
