"""A deterministic, seeded TV library that any emulated server can render.

Nothing here knows about HTTP. The library is a list of shows (cheap: a few
hundred bytes each); seasons and episodes are derived on demand from the
show's seed, so a 1,000,000-episode library costs a few MB until someone asks
for a page. The same seed always gives the same library, byte for byte.

Episodes are stored as *slots*, the Plex view of a season: a double episode is
two slots that share one file part (Plex lists both; Jellyfin lists the first
with ``episode_number_end``), and a virtual slot is a missing episode that only
Jellyfin lists (``LocationType: Virtual``, no file).
"""

from __future__ import annotations

import bisect
import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Literal, NamedTuple, TypeVar

if TYPE_CHECKING:
    from importer.emulator.changes import ShowEdit
    from importer.emulator.credits import Credits

Shape = Literal["varied", "seed"]

#: Every generated timestamp lies before this one (2025-01-01T00:00:00Z).
BASE_TIME = 1_735_689_600
_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps); stable across Python versions."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (p & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & _MASK
        h ^= h >> 29
    return h


class View(Enum):
    """Which episodes a server lists."""

    PLEX = "plex"  # every slot but virtual ones
    JELLYFIN = "jellyfin"  # one item per double episode, virtual ones included
    JELLYFIN_PRESENT = "jellyfin_present"  # as JELLYFIN, without virtual ones


class MediaFile(NamedTuple):
    """One part of one version of an episode's video."""

    media_index: int
    part_index: int
    path: str
    size_bytes: int
    container: str
    video_codec: str
    audio_codec: str
    width: int
    height: int
    duration_ms: int
    media_key: int  # shared by the two slots of a double episode
    part_key: int


class ExternalIds(NamedTuple):
    imdb: str | None
    tmdb: str | None
    tvdb: str | None


class Episode(NamedTuple):
    show_index: int
    ordinal: int  # position of the slot within its show
    season_number: int
    episode_number: int
    episode_number_end: int | None  # set on the first slot of a double episode
    double_second: bool  # second slot of a double episode (Plex lists it, Jellyfin does not)
    virtual: bool  # missing on disk: Jellyfin lists it as Virtual, Plex not at all
    title: str
    summary: str | None
    air_date: str | None  # YYYY-MM-DD
    duration_ms: int | None
    ids: ExternalIds
    added_at: int
    updated_at: int
    files: tuple[MediaFile, ...]
    has_season_id: bool  # False: Jellyfin lists it without SeasonId


@dataclass(frozen=True, slots=True)
class Season:
    show_index: int
    ordinal: int  # position within the show
    season_number: int
    title: str
    episode_count: int  # slots, Plex view
    added_at: int
    updated_at: int


@dataclass(slots=True)
class Show:
    index: int  # position in title order
    title: str
    sort_title: str
    year: int | None
    summary: str | None
    studio: str | None
    content_rating: str | None
    ids: ExternalIds
    legacy_agent: bool  # Plex: old agent guid, no Guid[]
    hidden_seasons: bool  # Plex: episodes carry no parentRatingKey
    added_at: int
    updated_at: int
    seed: int
    season_sizes: tuple[tuple[int, int], ...]  # (season_number, slots)
    plain: bool = False  # no virtual, double or multi-file episodes (the seed shape, a trimmed tail)
    key_order: int = 0  # position in the order the server added shows (Plex ratingKey order)
    counts: dict[View, int] = field(default_factory=dict)
    edit: ShowEdit | None = None  # set once a change touched the show (see changes.py)

    @property
    def slot_count(self) -> int:
        return sum(n for _, n in self.season_sizes)


_WORDS = [
    "Harbor",
    "Night",
    "Signal",
    "Winter",
    "Empire",
    "Glass",
    "River",
    "Orbit",
    "Frontier",
    "Echo",
    "Hollow",
    "Crown",
    "Summit",
    "Lantern",
    "Paper",
    "Silver",
    "Static",
    "Garden",
    "North",
    "Atlas",
    "Quiet",
    "Ember",
    "Tide",
    "Copper",
    "Wild",
    "Mirror",
    "Stone",
    "Falcon",
    "Velvet",
    "Meridian",
    "Ridge",
    "Archive",
    "Cinder",
    "Drift",
    "Harvest",
    "Pioneer",
    "Saint",
    "Voyage",
    "Kingdom",
]
_UNICODE_TITLES = (
    "Ça va, Amélie?",
    "Смешарики",
    "進撃の巨人",
    "La Casa de Papel — Parte",
    "Ðoktor Ŵho",
    "Straße der Träume",
    "Café 🌶️ Caliente",
    "Space 🚀 Cadets",
    "नमस्ते दुनिया",
    "Ελληνικά Νέα",
    "שלום עולם",
    "Zürich Nächte",
    "東京 Tokyo 24/7",
    "Niño Perdido",
    "Crème brûlée",
)
_EP_TITLE_WORDS = [
    "Pilot",
    "Reunion",
    "Aftermath",
    "Homecoming",
    "Crossroads",
    "Descent",
    "Awakening",
    "Ghosts",
    "Blackout",
    "Exodus",
    "Reckoning",
    "Origins",
    "Threshold",
    "Undertow",
    "Vigil",
    "Mirage",
    "Sanctuary",
    "Fracture",
    "Paradox",
    "Legacy",
]
_STUDIOS = ("HBO", "The CW", "BBC One", "NHK", "Netflix", "AMC", "FX", None)
_RATINGS = ("TV-14", "TV-MA", "TV-PG", "TV-Y7", None)
_CONTAINERS = (
    ("mkv", "h264", "aac"),
    ("mkv", "hevc", "eac3"),
    ("mp4", "h264", "aac"),
    ("avi", "mpeg4", "mp3"),
)
_RESOLUTIONS = ((1920, 1080), (1280, 720), (3840, 2160), (720, 480))
_LOREM = (
    "The crew follows a faint signal across the northern sea while old rivalries "
    "resurface and a secret from the first season finally comes to light. "
)


@functools.lru_cache(maxsize=64)
def _summary(kind: int) -> str | None:
    """A small pool of summaries: most short, some empty or absent, a few of 10 kB."""
    if kind == 0:
        return None
    if kind == 1:
        return ""
    if kind == 2:
        return (_LOREM * 80)[:10_240]  # a 10 kB summary
    if kind == 3:
        return 'Line one.\r\nLine two with "quotes", <tags> & ampersands.\tTabbed — “curly”.'
    return _LOREM * (1 + kind % 3) + f"(variant {kind})"


def _summary_kind(h: int) -> int:
    r = h % 100
    if r < 5:
        return 0
    if r < 7:
        return 1
    if r == 7:
        return 2
    if r == 8:
        return 3
    return 4 + (h >> 8) % 20


@dataclass(frozen=True)
class LibrarySpec:
    """What to generate. ``episodes`` (when set) trims the library to exactly that many
    Plex-view episodes; otherwise ``shows`` shows are generated."""

    seed: int = 1
    shows: int = 100
    shape: Shape = "varied"
    episodes: int | None = None


class Library:
    """A generated library: shows in title order, episodes derived on demand."""

    def __init__(self, spec: LibrarySpec | None = None) -> None:
        self.spec = spec or LibrarySpec()
        self.shows: list[Show] = self._make_shows()
        #: how many shows were generated (later changes may delete some): sizes the people pool
        self.generated_shows = len(self.shows)
        # Two orders over the same shows: title order (Plex default, Jellyfin SortName)
        # and the order the server added them in (Plex ratingKey / sort=id).
        self.title_order: list[int] = list(range(len(self.shows)))
        rank = sorted(range(len(self.shows)), key=lambda i: mix(self.spec.seed, 77, i))
        self.key_order: list[int] = rank
        for pos, i in enumerate(rank):
            self.shows[i].key_order = pos
        self._prefix: dict[tuple[View, bool], list[int]] = {}
        # Episodes are rebuilt from the show's seed when needed; a page touches a few shows, and
        # a larger cache only gives the cyclic GC more to scan.
        self._view = functools.lru_cache(maxsize=16)(self._build_view)
        # Plex ratingKeys: each show takes one contiguous block (show, seasons, slots)
        # in the order it was added.
        self._key_base: list[int] = [0] * len(self.shows)
        key = 1000
        for i in rank:
            self._key_base[i] = key
            key += 1 + len(self.shows[i].season_sizes) + self.shows[i].slot_count + 1
        # Items added later take ratingKeys from a counter, as a real server does, in room
        # kept above the generated ones (a second section's keys start after it).
        self.first_new_key = key
        self.max_rating_key = key + KEY_ROOM
        self._next_key = key
        self.next_media = 0  # Media and Part ids of new files (changes.NEW_MEDIA_BASE + n)
        #: every Plex key of an edited show's seasons and episodes -> its show
        self.key_owner: dict[int, Show] = {}
        self.version = 0  # bumped by every change
        #: called after every change (servers drop what they rendered or counted)
        self.listeners: list[Callable[[], None]] = []

    @functools.cached_property
    def credits(self) -> Credits:
        """Cast, crew, genres, ratings and artwork, derived on demand (see credits.py)."""
        from importer.emulator.credits import Credits

        return Credits(self)

    # ------------------------------------------------------------------ generation
    def _make_shows(self) -> list[Show]:
        spec = self.spec
        shows: list[Show] = []
        total = 0
        i = 0
        while True:
            if spec.episodes is None and i >= spec.shows:
                break
            if spec.episodes is not None and total >= spec.episodes:
                break
            show = self._make_show(i)
            if spec.episodes is not None and total + show.slot_count > spec.episodes:
                # The last show is cut to fit, and kept plain so that every slot counts.
                show.season_sizes = _trim(show.season_sizes, spec.episodes - total)
                show.plain = True
            total += self.count(show, View.PLEX)
            shows.append(show)
            i += 1
        # Title order, the order a server lists shows in by default.
        shows.sort(key=lambda s: (s.sort_title.casefold(), s.seed))
        for pos, s in enumerate(shows):
            s.index = pos
        return shows

    def _make_show(self, n: int) -> Show:
        seed = mix(self.spec.seed, 1, n)
        h = [mix(seed, k) for k in range(12)]
        if h[0] % 9 == 0:
            title = _UNICODE_TITLES[h[1] % len(_UNICODE_TITLES)]
        else:
            title = " ".join(_WORDS[h[1 + k] % len(_WORDS)] for k in range(1 + h[9] % 3))
            if h[10] % 4 == 0:
                title = "The " + title
        title = f"{title} {n}" if n >= 1 else title
        sort_title = title[4:] if title.startswith("The ") else title
        seed_shape = self.spec.shape == "seed"
        no_ids = not seed_shape and h[2] % 20 == 0
        legacy = not seed_shape and h[2] % 10 == 1
        ids = ExternalIds(
            imdb=None if no_ids else f"tt{1_000_000 + h[3] % 8_999_999:07d}",
            tmdb=None if no_ids else str(1000 + h[4] % 300_000),
            tvdb=None if no_ids or (h[4] % 13 == 0 and not seed_shape) else str(70000 + h[5] % 400_000),
        )
        added = BASE_TIME - 400 * 86400 + h[6] % (300 * 86400)
        if seed_shape:
            sizes: tuple[tuple[int, int], ...] = tuple((s, 10) for s in range(1, 6))
            hidden = False
        elif n == 1:  # a long-running show: 24 seasons and specials
            sizes = ((0, 6), *tuple((s, 12 + mix(seed, 20, s) % 12) for s in range(1, 25)))
            hidden = False
        elif n == 2:  # a single-season daily show with more than 1,000 episodes
            sizes = ((1, 1040),)
            hidden = False
        else:
            n_seasons = 1 + h[7] % 8
            sizes = tuple((s, 6 + mix(seed, 20, s) % 19) for s in range(1, n_seasons + 1))
            if h[8] % 10 < 3:
                sizes = ((0, 1 + h[8] % 5), *sizes)
            hidden = n_seasons == 1 and h[8] % 10 >= 6
        return Show(
            index=n,
            title=title,
            sort_title=sort_title,
            year=None if h[11] % 40 == 0 and not seed_shape else 1960 + h[11] % 64,
            summary=_summary(_summary_kind(h[9])),
            studio=_STUDIOS[h[10] % len(_STUDIOS)],
            content_rating=_RATINGS[h[11] % len(_RATINGS)],
            ids=ids,
            legacy_agent=legacy,
            hidden_seasons=hidden,
            added_at=added,
            updated_at=added + h[7] % (30 * 86400),
            seed=seed,
            season_sizes=sizes,
        )

    # ------------------------------------------------------------------ per show
    def seasons_of(self, show: Show) -> list[Season]:
        if show.edit is not None:
            return list(show.edit.seasons)
        out = []
        for ordinal, (number, count) in enumerate(show.season_sizes):
            h = mix(show.seed, 30, number)
            out.append(
                Season(
                    show_index=show.index,
                    ordinal=ordinal,
                    season_number=number,
                    title="Specials" if number == 0 else f"Season {number}",
                    episode_count=count,
                    added_at=show.added_at + number * 86400,
                    updated_at=show.added_at + number * 86400 + h % 86400,
                )
            )
        return out

    def episodes_of(self, show: Show) -> list[Episode]:
        """Every slot of a show, in season and episode order."""
        if show.edit is not None:
            return list(show.edit.slots)
        return list(_episodes(self.spec.shape, show))

    def view_of(self, show: Show, view: View) -> tuple[Episode, ...]:
        return self._view(show.index, view)

    def _build_view(self, show_index: int, view: View) -> tuple[Episode, ...]:
        eps = self.episodes_of(self.shows[show_index])
        if view is View.PLEX:
            return tuple(e for e in eps if not e.virtual)
        if view is View.JELLYFIN:
            return tuple(e for e in eps if not e.double_second)
        return tuple(e for e in eps if not e.double_second and not e.virtual)

    def count(self, show: Show, view: View) -> int:
        got = show.counts.get(view)
        if got is None:
            flags = slot_flags(show, self.spec.shape)
            n_virtual = flags.count(VIRTUAL)
            n_second = flags.count(DOUBLE_SECOND)
            show.counts[View.PLEX] = len(flags) - n_virtual
            show.counts[View.JELLYFIN] = len(flags) - n_second
            show.counts[View.JELLYFIN_PRESENT] = len(flags) - n_second - n_virtual
            got = show.counts[view]
        return got

    # ------------------------------------------------------------------ library-wide
    def order(self, by_key: bool) -> list[int]:
        return self.key_order if by_key else self.title_order

    def seasons(self, by_key: bool = False) -> Iterator[Season]:
        for i in self.order(by_key):
            yield from self.seasons_of(self.shows[i])

    def season_total(self) -> int:
        return sum(len(s.season_sizes) for s in self.shows)

    def episode_total(self, view: View) -> int:
        return self._prefixes(view, False)[-1]

    def _prefixes(self, view: View, by_key: bool) -> list[int]:
        got = self._prefix.get((view, by_key))
        if got is None:
            got = [0]
            for i in self.order(by_key):
                got.append(got[-1] + self.count(self.shows[i], view))
            self._prefix[(view, by_key)] = got
        return got

    def episodes(
        self, view: View, start: int = 0, stop: int | None = None, by_key: bool = False
    ) -> Iterator[Episode]:
        """Episodes ``start:stop`` of the library-wide listing, without building the rest."""
        prefix = self._prefixes(view, by_key)
        total = prefix[-1]
        stop = total if stop is None else min(stop, total)
        if start >= stop:
            return
        order = self.order(by_key)
        pos = bisect.bisect_right(prefix, start) - 1
        at = start
        while at < stop and pos < len(order):
            eps = self._view(order[pos], view)
            first = at - prefix[pos]
            take = eps[first : first + (stop - at)]
            yield from take
            at += len(take)
            pos += 1

    # ------------------------------------------------------------------ ids
    def plex_show_key(self, show: Show) -> int:
        return self._key_base[show.index]

    def plex_season_key(self, season: Season) -> int:
        return self.plex_season_key_at(self.shows[season.show_index], season.ordinal)

    def plex_season_key_at(self, show: Show, ordinal: int) -> int:
        if show.edit is not None:
            return show.edit.season_keys[ordinal]
        return self._key_base[show.index] + 1 + ordinal

    def plex_episode_key(self, episode: Episode) -> int:
        show = self.shows[episode.show_index]
        if show.edit is not None:
            return show.edit.idents[episode.ordinal].plex_key
        return self._key_base[episode.show_index] + 1 + len(show.season_sizes) + episode.ordinal

    def plex_guid_source(self, episode: Episode) -> tuple[int, int]:
        """(seed, n) of an episode's Plex guid: plex://episode/<prefix of seed><n:08x>."""
        show = self.shows[episode.show_index]
        if show.edit is not None:
            return show.edit.idents[episode.ordinal].guid
        return show.seed, episode.ordinal

    def plex_lookup(self, key: int) -> tuple[str, Show, int] | None:
        """Which item a ratingKey names: ("show"|"season"|"episode", show, ordinal)."""
        owner = self.key_owner.get(key)
        if owner is not None and owner.edit is not None:
            kind, ordinal = owner.edit.key_pos[key]
            return kind, owner, ordinal
        bases = self._bases
        pos = bisect.bisect_right(bases, (key, len(self.shows))) - 1
        if pos < 0:
            return None
        base, i = bases[pos]
        show = self.shows[i]
        off = key - base
        n_seasons = len(show.season_sizes)
        if off == 0:
            return ("show", show, 0)
        if show.edit is not None:  # its keys are all in key_owner: this one is gone
            return None
        if off <= n_seasons:
            return ("season", show, off - 1)
        if off <= n_seasons + show.slot_count:
            return ("episode", show, off - 1 - n_seasons)
        return None

    @functools.cached_property
    def _bases(self) -> list[tuple[int, int]]:
        return sorted((b, i) for i, b in enumerate(self._key_base))

    def jellyfin_id(self, kind: int, show_index: int, ordinal: int = 0) -> str:
        """A 32-hex Jellyfin id; kind 1 = series, 2 = season, 3 = episode."""
        show = self.shows[show_index]
        seed = show.seed
        if kind == 3 and show.edit is not None:
            seed, ordinal = show.edit.idents[ordinal].jf
        return f"{mix(seed, 50 + kind, ordinal):016x}{mix(seed, 60 + kind, ordinal):016x}"

    # ------------------------------------------------------------------ changes (changes.py)
    def add_episode(self, show_index: int, now: int) -> Episode:
        """A new episode at the end of the show's last season, added and updated ``now``."""
        from importer.emulator import changes

        return self._changed(changes.add_episode(self, show_index, now))

    def update_episode(self, show_index: int, ordinal: int, now: int) -> Episode:
        """A new title (" (rev N)"); updatedAt / DateLastSaved ``now``."""
        from importer.emulator import changes

        return self._changed(changes.update_episode(self, show_index, ordinal, now))

    def delete_episode(self, show_index: int, ordinal: int) -> Episode:
        from importer.emulator import changes

        return self._changed(changes.delete_episode(self, show_index, ordinal))

    def move_episode(
        self, show_index: int, ordinal: int, to_show_index: int, to_season_number: int, now: int
    ) -> Episode:
        """To the end of a season of this or another show; ids stay, parents change."""
        from importer.emulator import changes

        return self._changed(
            changes.move_episode(self, show_index, ordinal, to_show_index, to_season_number, now)
        )

    def rename_show(self, show_index: int, title: str, now: int) -> Show:
        """A new title, updated ``now``; it keeps its place in the listings."""
        from importer.emulator import changes

        return self._changed(changes.rename_show(self, show_index, title, now))

    def add_season(self, show_index: int, episodes: int, now: int) -> Season:
        """A season after the last one, with ``episodes`` new episodes, all stamped ``now``."""
        from importer.emulator import changes

        return self._changed(changes.add_season(self, show_index, episodes, now))

    def replace_file(self, show_index: int, ordinal: int, now: int) -> Episode:
        """A new file for the episode: Plex makes a new item with the old guid, Jellyfin a new Id."""
        from importer.emulator import changes

        return self._changed(changes.replace_file(self, show_index, ordinal, now))

    def delete_show(self, show_index: int) -> Show:
        """The show goes; later shows move up one index (their ids do not change)."""
        from importer.emulator import changes

        return self._changed(changes.delete_show(self, show_index))

    def new_plex_key(self) -> int:
        if self._next_key >= self.max_rating_key:
            raise RuntimeError("no ratingKeys left for new items")
        self._next_key += 1
        return self._next_key - 1

    def remove_show(self, show_index: int) -> None:
        """Drop a show; every id is derived from seeds and key bases, not from indexes."""
        del self.shows[show_index]
        del self._key_base[show_index]
        for pos, s in enumerate(self.shows[show_index:], start=show_index):
            s.index = pos
            if s.edit is not None:
                from importer.emulator.changes import refresh

                refresh(self, s)
        self.title_order = list(range(len(self.shows)))
        self.key_order = [i - (i > show_index) for i in self.key_order if i != show_index]
        for pos, i in enumerate(self.key_order):
            self.shows[i].key_order = pos

    def _changed(self, result: _T) -> _T:
        """Forget everything derived from the shows, and tell the servers."""
        self._view.cache_clear()
        self._prefix.clear()
        self.__dict__.pop("_bases", None)
        self.version += 1
        for listener in self.listeners:
            listener()
        return result


_T = TypeVar("_T")
#: ratingKeys kept free above the generated ones, for items added later
KEY_ROOM = 10_000_000


def _trim(sizes: tuple[tuple[int, int], ...], keep: int) -> tuple[tuple[int, int], ...]:
    out = []
    for number, count in sizes:
        if keep <= 0:
            break
        out.append((number, min(count, keep)))
        keep -= count
    return tuple(out)


def slot_flags(show: Show, shape: Shape) -> list[int]:
    """Per slot: 0 plain, VIRTUAL, DOUBLE_FIRST or DOUBLE_SECOND. Cheap, so that counts
    never need the episodes themselves."""
    if show.edit is not None:
        return show.edit.flags
    flags: list[int] = []
    if shape == "seed" or show.plain:
        return [0] * show.slot_count
    rng = random.Random(show.seed ^ 0xF1A6)
    bits = rng.getrandbits
    for season_number, count in show.season_sizes:
        k = 0
        while k < count:
            r = bits(16)
            if season_number > 0 and r % 31 == 0:
                flags.append(VIRTUAL)
            elif r % 37 == 1 and k + 1 < count:
                flags += (DOUBLE_FIRST, DOUBLE_SECOND)
                k += 1
            else:
                flags.append(0)
            k += 1
    return flags


VIRTUAL, DOUBLE_FIRST, DOUBLE_SECOND = 1, 2, 3


def _episodes(shape: Shape, show: Show) -> Iterator[Episode]:
    seed_shape = shape == "seed"
    plain = seed_shape or show.plain
    flags = slot_flags(show, shape)
    rng = random.Random(show.seed)
    bits = rng.getrandbits
    show_title = show.title
    no_season_ids = not plain and show.seed % 17 == 0
    ordinal = 0
    base_time = BASE_TIME - 390 * 86400 + show.seed % (200 * 86400)
    key_base = (show.seed % 1_000_000_000) * 1000
    n_words = len(_EP_TITLE_WORDS)
    for season_number, count in show.season_sizes:
        folder = f"/data/TV/{show_title}/Season {season_number:02d}/{show_title} - S{season_number:02d}E"
        pending_double: tuple[MediaFile, ...] | None = None
        for k in range(count):
            number = k + 1
            h = bits(64)
            g = bits(64)
            flag = flags[ordinal]
            virtual = flag == VIRTUAL
            duration = 1_200_000 + h % 2_400_000
            files: tuple[MediaFile, ...]
            if virtual:
                files = ()
            elif flag == DOUBLE_SECOND and pending_double is not None:
                files = pending_double
                pending_double = None
            else:
                container, vcodec, acodec = _CONTAINERS[(h >> 8) % len(_CONTAINERS)]
                width, height = _RESOLUTIONS[(h >> 12) % len(_RESOLUTIONS)]
                base = (
                    f"{folder}{number:02d}-E{number + 1:02d}"
                    if flag == DOUBLE_FIRST
                    else f"{folder}{number:02d}"
                )
                shape_roll = 99 if plain else g % 50
                if shape_roll >= 2:  # the common case: one version, one part
                    files = (
                        MediaFile(
                            0,
                            0,
                            f"{base}.{container}",
                            200_000_000 + (g >> 4) % 3_000_000_000,
                            container,
                            vcodec,
                            acodec,
                            width,
                            height,
                            duration,
                            key_base + ordinal * 4,
                            key_base + ordinal * 4,
                        ),
                    )
                else:
                    n_media, n_parts = (2, 1) if shape_roll == 0 else (1, 2)
                    files = tuple(
                        MediaFile(
                            m,
                            p,
                            f"{base}{' - 4K' if m else ''}{f' - pt{p + 1}' if n_parts > 1 else ''}"
                            f".{container}",
                            200_000_000 + (g >> 4) % 3_000_000_000 + m * 5_000_000_000,
                            container,
                            "hevc" if m else vcodec,
                            acodec,
                            3840 if m else width,
                            2160 if m else height,
                            duration // n_parts,
                            key_base + ordinal * 4 + m,
                            key_base + ordinal * 4 + m * 2 + p,
                        )
                        for m in range(n_media)
                        for p in range(n_parts)
                    )
                if flag == DOUBLE_FIRST:
                    pending_double = files
            no_ids = not plain and (h >> 20) % 12 == 0
            if not plain and (h >> 24) % 11 == 0:
                title = f"Épisode {number} — «{_EP_TITLE_WORDS[h % n_words]}» 🎬"
            else:
                title = f"{_EP_TITLE_WORDS[h % n_words]} {_EP_TITLE_WORDS[(h >> 5) % n_words]}"
            added = base_time + ordinal * 3600
            yield Episode(
                show.index,
                ordinal,
                season_number,
                number,
                number + 1 if flag == DOUBLE_FIRST else None,
                flag == DOUBLE_SECOND,
                virtual,
                title,
                _summary(_summary_kind(g)),
                None if not plain and (h >> 30) % 25 == 0 else _ymd(added - 30 * 86400),
                None if virtual or (not plain and (h >> 34) % 30 == 0) else duration,
                ExternalIds(
                    None
                    if no_ids or (not plain and (h >> 40) % 3 == 0)
                    else f"tt{1_000_000 + (g >> 3) % 8_999_999:07d}",
                    None if no_ids else str(100_000 + (g >> 9) % 4_000_000),
                    None if no_ids else str(1_000_000 + (g >> 17) % 9_000_000),
                ),
                added,
                added + (h >> 44) % (20 * 86400),
                files,
                not (no_season_ids and season_number > 0),
            )
            ordinal += 1


def episode_time_bounds(show: Show) -> tuple[int, int, int, int]:
    """(min addedAt, max addedAt, min updatedAt, max updatedAt) over a show's episodes,
    bounds that hold without generating them (they mirror the formulas of ``_episodes``):
    a server's date filters skip whole shows with them."""
    if show.edit is not None:
        return show.edit.bounds
    first = BASE_TIME - 390 * 86400 + show.seed % (200 * 86400)
    last = first + max(show.slot_count - 1, 0) * 3600
    return first, last, first, last + 20 * 86400 - 1


@functools.lru_cache(maxsize=4096)
def _ymd_day(day: int) -> str:
    import datetime

    return (datetime.date(1970, 1, 1) + datetime.timedelta(days=day)).isoformat()


def _ymd(ts: int) -> str:
    return _ymd_day(ts // 86400)
