"""Sections and their keys: where each section's ratingKeys start, what a key names, and
the per-show values (keys, guids, thumbs, counts) that every item of a show repeats."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from importer.emulator.library import VIRTUAL, Episode, Library, Season, Show, View, mix, slot_flags
from importer.emulator.plex.memo import Lru

MOVIE_SECTION: Final = 1  # an empty Movies section, so that clients must filter by type


class Heading(NamedTuple):
    """What a container says about the section it comes from."""

    key: int
    title: str
    uuid: str
    kind: str  # "show" or "movie"


@dataclass
class Section:
    """One TV section: a generated library, where its ratingKeys start, its id."""

    key: int
    title: str
    library: Library
    key_offset: int  # added to the library's ratingKeys (libraries each count from 1000)
    media_offset: int  # added to Media and Part ids, for the same reason
    uuid: str
    # an LRU: a scan of a million episodes passes 15k shows
    _infos: Lru[int, ShowInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._infos = Lru(lambda index: ShowInfo(self, self.library.shows[index]), limit=4096)

    @property
    def heading(self) -> Heading:
        return Heading(self.key, self.title, self.uuid, "show")

    @property
    def min_key(self) -> int:
        return self.key_offset + 1000

    @property
    def max_key(self) -> int:
        return self.key_offset + self.library.max_rating_key

    def show_key(self, show: Show) -> int:
        return self.key_offset + self.library.plex_show_key(show)

    def season_key(self, show: Show, ordinal: int) -> int:
        return self.key_offset + self.library.plex_season_key_at(show, ordinal)

    def episode_key(self, episode: Episode) -> int:
        return self.key_offset + self.library.plex_episode_key(episode)

    def forget(self) -> None:
        """Drop every show's values (the library changed)."""
        self.__post_init__()

    def info(self, show_index: int) -> ShowInfo:
        """A show's repeated values."""
        return self._infos[show_index]

    def lookup(self, key: int) -> tuple[str, Show, object] | None:
        """What a ratingKey of this section names: (kind, show, Show | Season | Episode)."""
        found = self.library.plex_lookup(key - self.key_offset)
        if found is None:
            return None
        kind, show, ordinal = found
        if kind == "show":
            return kind, show, show
        if kind == "season":
            return kind, show, self.info(show.index).seasons[ordinal]
        view = self.library.view_of(show, View.PLEX)
        at = bisect.bisect_left(view, ordinal, key=lambda e: e.ordinal)
        if at < len(view) and view[at].ordinal == ordinal:  # virtual slots do not exist on Plex
            return kind, show, view[at]
        return None


def episode_guid(seed: int, n: int) -> str:
    """A new-agent episode guid: ``n`` after the prefix of the show of ``seed``."""
    return f"plex://episode/{_hex_id(seed, 83, '5f')}{n:08x}"


def _hex_id(seed: int, salt: int, lead: str) -> str:
    """16 hex digits that start like a real Plex (MongoDB ObjectId) guid."""
    return f"{lead}{mix(seed, salt) % 16**14:014x}"


class ShowInfo:
    """Per-show values every item of the show repeats: keys, guids, thumbs, counts."""

    __slots__ = (
        "art",
        "banner",
        "credits",
        "ep_guids",
        "ep_key0",
        "ep_keys",
        "ep_prefix",
        "guid",
        "key",
        "leaf_count",
        "legacy_base",
        "season_counts",
        "season_keys",
        "season_prefix",
        "seasons",
        "show",
        "theme",
        "thumb",
    )

    def __init__(self, sec: Section, show: Show) -> None:
        lib = sec.library
        self.show = show
        self.key = sec.show_key(show)
        self.seasons: list[Season] = lib.seasons_of(show)
        self.season_keys = [sec.season_key(show, s.ordinal) for s in self.seasons]
        self.ep_key0 = self.key + 1 + len(self.seasons)
        # An edited show's episodes name their keys and guids (changes.Ident); None: the formulas.
        self.ep_keys: list[int] | None = None
        self.ep_guids: list[bytes] | None = None
        if show.edit is not None:
            self.ep_keys = [sec.key_offset + i.plex_key for i in show.edit.idents]
            self.ep_guids = [episode_guid(*i.guid).encode() for i in show.edit.idents]
        # Artwork paths end in the item's updatedAt (a new one with every change); a show
        # without a poster, backdrop or banner has no such attribute (credits.py says which).
        self.credits = lib.credits
        art = self.credits.show_art(show)
        ts = art.stamp
        base = f"/library/metadata/{self.key}"
        self.thumb: str | None = f"{base}/thumb/{ts}" if art.primary else None
        self.art: str | None = f"{base}/art/{ts}" if art.backdrops else None
        self.banner: str | None = f"{base}/banner/{ts}" if art.banner else None
        self.theme = f"{base}/theme/{ts}"
        # Plex counts what it lists: virtual (missing) slots are not there.
        flags = slot_flags(show, lib.spec.shape)
        counts, at = [], 0
        for _, n in show.season_sizes:
            counts.append(n - flags[at : at + n].count(VIRTUAL))
            at += n
        self.season_counts: list[int] = counts
        self.leaf_count = sum(counts)
        ids = show.ids
        if show.legacy_agent:  # the old agents: one guid per item, no Guid[] (plex-api-rs fixtures)
            self.legacy_base = (
                f"com.plexapp.agents.thetvdb://{ids.tvdb}"
                if ids.tvdb
                else f"com.plexapp.agents.themoviedb://{ids.tmdb}"
            )
            self.guid = f"{self.legacy_base}?lang=en"
        else:
            self.legacy_base = ""
            self.guid = f"plex://show/{_hex_id(show.seed, 81, '5d')}{show.seed & 0xFFFFFFFF:08x}"
        self.season_prefix = _hex_id(show.seed, 82, "5e")
        self.ep_prefix = _hex_id(show.seed, 83, "5f")

    def season_guid(self, season: Season) -> str:
        if self.legacy_base:
            return f"{self.legacy_base}/{season.season_number}?lang=en"
        return f"plex://season/{self.season_prefix}{season.ordinal:08x}"

    def season_thumb(self, season: Season) -> str | None:
        """The season's poster, or else its show's (as Plex falls back), or none."""
        if self.credits.season_art(self.show, season).primary:
            return f"/library/metadata/{self.season_keys[season.ordinal]}/thumb/{season.updated_at}"
        return self.thumb

    def season_art(self, season: Season) -> str | None:
        """The season's own backdrop, or else its show's (the recorded seasons inherit it)."""
        if self.credits.season_art(self.show, season).backdrops:
            return f"/library/metadata/{self.season_keys[season.ordinal]}/art/{season.updated_at}"
        return self.art
