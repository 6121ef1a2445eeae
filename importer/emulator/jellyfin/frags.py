"""Pre-encoded pieces of a show that its series, season and episode items share.

A page touches a few shows and renders many items of each: what is the same for all of a
show's items (its name, ids, series image tags and hashes, season names) is encoded once
here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from importer.emulator.credits import PRIMARY, Art
from importer.emulator.jellyfin.images import blur_json
from importer.emulator.library import Library, mix

_BLURHASH_CHARS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _blurhash(seed: int) -> str:
    h = mix(seed, 88)
    chars = [_BLURHASH_CHARS[(h >> (k * 6)) % 83] for k in range(10)]
    return "WJC$" + "".join(chars) * 2 + "9F"


@dataclass
class ShowFrags:
    """Pre-encoded pieces of one show, shared by its series, season and episode items."""

    series_id: str  # as served (an Emby number where the server writes numbers)
    id_states: tuple[int, int]  # mix(seed, 53), mix(seed, 63): episode ids need one round more
    name: str  # JSON string
    user_key: str  # UserData Key: the TVDB id, else the item id
    art: Art  # the series' own images (credits.py)
    blurhash: str
    season_ids: list[str]
    season_ordinal: dict[int, int]  # season number -> ordinal
    season_names: list[str]  # JSON strings
    ep_series: str  # ',"SeriesName":…,"SeriesId":"…"'
    ep_season: dict[int, str]  # season number -> ',"SeasonId":"…"'
    ep_season_name: dict[int, str]  # season number -> ',"SeasonName":…'
    ep_series_image: str  # ',"SeriesPrimaryImageTag":"…"' (empty: the series has no poster)
    ep_blur_series: str  # ',"ImageBlurHashes":…' with only the series' primary image
    ep_ids: list[str] | None = None  # an edited show's episode ids by ordinal (changes.Ident)


def build_show_frags(
    library: Library, show_index: int, escape: Callable[[str], str], item_id: Callable[[str], str]
) -> ShowFrags:
    show = library.shows[show_index]
    series_id = item_id(library.jellyfin_id(1, show_index))
    seasons = library.seasons_of(show)
    season_ids = [item_id(library.jellyfin_id(2, show_index, s.ordinal)) for s in seasons]
    art = library.credits.show_art(show)
    primary = art.tag(PRIMARY) if art.primary else None
    blur = _blurhash(show.seed)
    name = escape(show.title)
    return ShowFrags(
        series_id=series_id,
        id_states=(mix(show.seed, 53), mix(show.seed, 63)),
        name=name,
        user_key=show.ids.tvdb or series_id,
        art=art,
        blurhash=blur,
        season_ids=season_ids,
        season_ordinal={s.season_number: s.ordinal for s in seasons},
        season_names=[escape(s.title) for s in seasons],
        ep_series=f',"SeriesName":{name},"SeriesId":"{series_id}"',
        ep_season={s.season_number: f',"SeasonId":"{season_ids[s.ordinal]}"' for s in seasons},
        ep_season_name={s.season_number: f',"SeasonName":{escape(s.title)}' for s in seasons},
        ep_series_image=f',"SeriesPrimaryImageTag":"{primary}"' if primary else "",
        # DtoService fills the series poster's hash even without EnableImages
        ep_blur_series=blur_json(blur, [("Primary", primary)] if primary else []),
        ep_ids=None
        if show.edit is None
        else [item_id(library.jellyfin_id(3, show_index, o)) for o in range(len(show.edit.slots))],
    )


class ShowFragsCache:
    """The pieces of recently rendered shows of one server."""

    def __init__(
        self, libraries: list[Library], escape: Callable[[str], str], item_id: Callable[[str], str]
    ) -> None:
        self._libraries = libraries
        self._escape = escape
        self._item_id = item_id
        self._frags: dict[tuple[int, int], ShowFrags] = {}

    def clear(self) -> None:
        self._frags.clear()

    def get(self, lib_index: int, show_index: int) -> ShowFrags:
        key = (lib_index, show_index)
        got = self._frags.get(key)
        if got is None:
            if len(self._frags) > 2048:  # a page touches a few shows; keep the cache small
                self._frags.clear()
            got = build_show_frags(self._libraries[lib_index], show_index, self._escape, self._item_id)
            self._frags[key] = got
        return got
