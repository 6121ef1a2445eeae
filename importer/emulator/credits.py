"""Cast, crew, genres, ratings and artwork of a generated library: what ``importer
hydrate`` fetches, which listings leave out or cut short.

Derived like the rest of the library from seeds, on demand, and never stored per
episode: a show's metadata from its seed, an episode's from the seed of its identity
(``Library.plex_guid_source``: it stays with the episode when a change moves it), a
season's from its show and number. What a server calls these things (Plex tag ids,
Jellyfin GUIDs, Emby numbers) is the server's business; here a person is an index into
the library's pool.

The pool holds ``40 + 6 x shows`` people (at most :data:`MAX_PEOPLE`), shared by every
show. A few of them share a name with someone else (two people, one name: a database must
not merge them), and about one in five has no picture.

Artwork carries a stamp, the item's ``updated_at``: a change to the item gives every
image of it a new tag (and a new Plex path), as a real server's refresh does.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final, NamedTuple

from importer.emulator.library import Episode, Season, Show, mix

if TYPE_CHECKING:
    from importer.emulator.library import Library

MAX_PEOPLE: Final = 20_000
_MASK: Final = (1 << 64) - 1

ACTOR, GUEST_STAR, DIRECTOR, WRITER, PRODUCER, CREATOR = (
    "actor", "guest_star", "director", "writer", "producer", "creator",
)  # fmt: skip

#: The genres a show draws from; a show's order is its own (the first is its main genre).
GENRES: Final = (
    "Drama", "Comedy", "Crime", "Mystery", "Science Fiction", "Animation", "Documentary",
    "Action & Adventure", "Family", "Reality", "War & Politics", "Thriller", "Romance",
    "Western", "Fantasy", "Soap",
)  # fmt: skip

_FIRST: Final = (
    "Ana", "Bruno", "Chloé", "Dmitri", "Eun-ji", "Farid", "Grace", "Hiro", "Inès", "Jonas",
    "Kwame", "Lena", "Marco", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tala",
    "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zoë", "Amélie", "Björn", "Carmen", "Diego",
    "Elif", "Fionn", "Giulia", "Hamid", "Ingrid", "Jamal", "Keiko", "Luís", "Mira", "Nikolai",
    "Olga", "Pablo", 'Lee "Sparky"', "Ravi", "Sven", "Tomás", "Uma", "Valentina",
)  # fmt: skip
_LAST: Final = (
    "Okafor", "Lindqvist", "Moreau", "Nakamura", "O'Brien", "Petrov", "Quinn", "Rossi",
    "Santos", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zieliński", "Andersson",
    "Brennan", "Castillo", "D'Souza", "Eriksen", "Fischer", "García", "Haddad", "Ivanova",
    "Jensen", "Kowalski", "Larsen", "Mensah", "Novak", "Ortega", "Park", "Quispe", "Reyes",
    "Schmidt", "Thompson", "Ünal", "Volkov", "Walsh", "Yamamoto", "Zhang", "Abe", "Holm",
    "Ferreira", "Mbeki", "Dubois", "Kaur", "Ng",
)  # fmt: skip
_INITIALS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CHARACTER_FIRST: Final = (
    "Alex", "Sam", "Jordan", "Morgan", "Casey", "Riley", "Jamie", "Quinn", "Avery", "Rowan",
    "Sasha", "Noa", "Kai", "Elena", "Marcus", "Iris", "Theo", "June", "Felix", "Maya",
)  # fmt: skip
_CHARACTER_LAST: Final = (
    "Hart", "Vance", "Cole", "Reed", "Frost", "Lane", "Stone", "Blake", "Cruz", "Wolfe",
    "Marsh", "Grey", "Knox", "Shaw", "Pike", "Moss",
)  # fmt: skip
#: characters that are not "First Last": titles, voices, quotes and ampersands
_SPECIAL_ROLES: Final = (
    "Himself", "Herself", "Narrator (voice)", 'Detective "Doc" Reed', "Dr. Ana Frost",
    "Bartender", "Guard #2", "Mother & Daughter", "Captain Nils Ø. Berg", "Young Theo",
)  # fmt: skip


class Person(NamedTuple):
    number: int  # in the library's pool: the basis of every server's person id
    name: str
    image: bool  # has a picture


class Credit(NamedTuple):
    person: int  # index in the pool
    kind: str  # ACTOR, GUEST_STAR, DIRECTOR, WRITER, PRODUCER or CREATOR
    role: str | None  # the character of an actor or guest star ("" when none is known); None for crew


class ShowMeta(NamedTuple):
    cast: tuple[Credit, ...]  # actors in billing order; one person may hold two roles
    crew: tuple[Credit, ...]  # producers, then creators
    genres: tuple[str, ...]
    critic: int | None  # tenths: 0..100 (7.3 is 73)
    audience: int | None  # tenths: 0..100

    @property
    def critic_rating(self) -> float | None:
        return None if self.critic is None else self.critic / 10

    @property
    def audience_rating(self) -> float | None:
        return None if self.audience is None else self.audience / 10


class EpisodeMeta(NamedTuple):
    directors: tuple[Credit, ...]
    writers: tuple[Credit, ...]
    guests: tuple[Credit, ...]  # guest stars with their roles


class Art(NamedTuple):
    """An item's own images (not those it inherits from its show)."""

    primary: bool  # a show's or season's poster, an episode's still
    backdrops: int
    banner: bool
    logo: bool
    thumb: bool  # Jellyfin's landscape Thumb
    stamp: int  # the item's updated_at: every tag and Plex path ends in it
    seed: int  # which item: tags hash it with the stamp

    def tag(self, image_type: int, index: int = 0) -> str:
        """A 32-hex image tag (Jellyfin's form) of one image: new whenever the stamp is."""
        which = self.seed + (image_type << 8) + index
        return f"{_round(which, self.stamp):016x}{_round(which, 0x7A6):016x}"


#: image types, for Art.tag
PRIMARY, BACKDROP, BANNER, LOGO, THUMB = range(5)
_NO_ART: Final = Art(False, 0, False, False, False, 0, 0)


class Credits:
    """The metadata of one library's shows, seasons and episodes."""

    def __init__(self, lib: Library) -> None:
        self.lib = lib
        self.seed = lib.spec.seed
        # fixed when the library is made: deleting a show does not shrink the pool
        self.size = min(40 + 6 * lib.generated_shows, MAX_PEOPLE)
        self._shows: dict[int, ShowMeta] = {}
        self._regulars: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._states: dict[tuple[int, int], int] = {}

    # ------------------------------------------------------------------ people
    @functools.cached_property
    def people(self) -> list[Person]:
        seed, n_first, n_last = self.seed, len(_FIRST), len(_LAST)
        s1, s2 = mix(seed, 101) % n_first, mix(seed, 102) % n_last
        out: list[Person] = []
        for i in range(self.size):
            # a bijection of i onto (first, last, initial): unique names, in a seeded order
            r, q = i % n_first, (i // n_first) % n_last
            first, last = _FIRST[(r + s1) % n_first], _LAST[(q + 7 * r + s2) % n_last]
            middle = i // (n_first * n_last)
            name = f"{first} {_INITIALS[(middle - 1) % 26]}. {last}" if middle else f"{first} {last}"
            if i and mix(seed, 98, i) % 25 == 0:  # someone else of the same name
                name = out[mix(seed, 99, i) % i].name
            out.append(Person(i, name, mix(seed, 100, i) % 5 != 0))
        return out

    # ------------------------------------------------------------------ shows
    def show(self, show: Show) -> ShowMeta:
        got = self._shows.get(show.seed)
        if got is None:
            if len(self._shows) >= 4096:
                self._shows.clear()
            got = self._shows[show.seed] = self._make_show(show.seed)
        return got

    def _make_show(self, seed: int) -> ShowMeta:
        h = mix(seed, 110)
        n_cast = 3 + h % 13
        actors = self._distinct(seed, 111, n_cast)
        cast = [Credit(p, ACTOR, _role(mix(seed, 112, k))) for k, p in enumerate(actors)]
        if (h >> 8) % 6 == 0:  # one actor holds a second role, billed later
            k = (h >> 12) % n_cast
            cast.insert(min(n_cast, k + 1 + (h >> 16) % 3), Credit(actors[k], ACTOR, _role(mix(seed, 113))))
        crew: list[Credit] = []
        roll = (h >> 20) % 10
        if roll < 4:
            crew += [Credit(p, PRODUCER, None) for p in self._distinct(seed, 114, 1 + (h >> 24) % 2)]
        if 2 <= roll < 6:
            crew += [Credit(p, CREATOR, None) for p in self._distinct(seed, 115, 1 + (h >> 26) % 2)]
        n_genres = 1 + (h >> 28) % 4
        genres: list[str] = []
        k = 0
        while len(genres) < n_genres:
            g = GENRES[mix(seed, 116, k) % len(GENRES)]
            if g not in genres:
                genres.append(g)
            k += 1
        critic = None if (h >> 32) % 7 == 0 else (h >> 36) % 101
        audience = None if (h >> 44) % 9 == 0 else (h >> 48) % 101
        return ShowMeta(tuple(cast), tuple(crew), tuple(genres), critic, audience)

    def _distinct(self, seed: int, salt: int, n: int) -> list[int]:
        """``n`` different people of the pool, picked by ``seed``."""
        out: list[int] = []
        k = 0
        while len(out) < n:
            p = mix(seed, salt, k) % self.size
            if p not in out:
                out.append(p)
            k += 1
        return out

    # ------------------------------------------------------------------ episodes
    def episode(self, ep: Episode) -> EpisodeMeta:
        """Directors and writers from the show's regulars, guest stars from anyone."""
        seed, h = self.episode_hash(ep)
        directors, writers = self.episode_crew(seed, h)
        return EpisodeMeta(
            tuple(Credit(p, DIRECTOR, None) for p in directors),
            tuple(Credit(p, WRITER, None) for p in writers),
            tuple(
                Credit(p, GUEST_STAR, _role(mix(h, 131, k)))
                for k, p in enumerate(self._distinct(h, 132, (h >> 8) % 5))
            ),
        )

    def episode_crew(self, seed: int, h: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """An episode's directors and writers (people), ``h`` its hash: a listing's tags need
        no more, and this is ten times cheaper than :meth:`episode`."""
        directors, writers = self._show_regulars(seed)
        d = (0, 1, 1, 1, 1, 1, 1, 1, 1, 2)[h % 10]
        w = (0, 1, 1, 1, 1, 2, 2, 2, 3, 1)[(h >> 4) % 10]
        return _take(directors, h >> 12, d), _take(writers, h >> 20, w)

    def episode_hash(self, ep: Episode) -> tuple[int, int]:
        """(show seed, hash) of an episode's identity, for :meth:`episode_crew`."""
        seed, n = self.lib.plex_guid_source(ep)
        return seed, _round(self._state(seed, 130), n)

    def _state(self, seed: int, salt: int) -> int:
        """``mix(seed, salt)``, kept: ``mix(seed, salt, n)`` is one round on top of it, and
        listings ask for it once per episode."""
        got = self._states.get((seed, salt))
        if got is None:
            if len(self._states) >= 8192:
                self._states.clear()
            got = self._states[seed, salt] = mix(seed, salt)
        return got

    def _show_regulars(self, seed: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """A show's directors and writers: episodes share a few (2 to 5 of each)."""
        got = self._regulars.get(seed)
        if got is None:
            if len(self._regulars) >= 4096:
                self._regulars.clear()
            h = mix(seed, 133)
            directors = tuple(self._distinct(seed, 134, 2 + h % 4))
            got = directors, tuple(self._distinct(seed, 135, 2 + (h >> 4) % 4))
            self._regulars[seed] = got
        return got

    # ------------------------------------------------------------------ artwork
    def show_art(self, show: Show) -> Art:
        h = mix(show.seed, 150)
        return Art(
            primary=h % 100 < 97,
            backdrops=(0, 1, 1, 1, 2, 2, 3, 1, 2, 1)[(h >> 8) % 10],
            banner=(h >> 16) % 10 < 4,
            logo=(h >> 24) % 20 < 7,
            thumb=(h >> 32) % 4 == 0,
            stamp=show.updated_at,
            seed=mix(show.seed, 151),
        )

    def season_art(self, show: Show, season: Season) -> Art:
        h = mix(show.seed, 152, season.season_number)
        return Art(
            # hidden seasons: clients find the season's key in its poster path alone
            primary=show.hidden_seasons or h % 100 < 85,
            backdrops=1 if (h >> 8) % 5 == 0 else 0,
            banner=False,
            logo=False,
            thumb=False,
            stamp=season.updated_at,
            seed=mix(show.seed, 153, season.season_number),
        )

    def episode_art(self, ep: Episode) -> Art:
        if ep.virtual:  # missing on disk: nothing to take a still from
            return _NO_ART._replace(stamp=ep.updated_at)
        seed, n = self.lib.plex_guid_source(ep)
        h = _round(self._state(seed, 154), n)
        return Art(h % 10 != 0, 0, False, False, False, ep.updated_at, h)

    def has_still(self, ep: Episode) -> bool:
        """``episode_art(ep).primary``, for listings (one hash round)."""
        if ep.virtual:
            return False
        seed, n = self.lib.plex_guid_source(ep)
        return _round(self._state(seed, 154), n) % 10 != 0


def _round(state: int, part: int) -> int:
    """``mix(*parts, part)`` given ``state = mix(*parts)`` (mix is a fold)."""
    h = (state ^ part) * 0xBF58476D1CE4E5B9 & _MASK
    h = (h ^ (h >> 31)) * 0x94D049BB133111EB & _MASK
    return h ^ (h >> 29)


def _take(regulars: tuple[int, ...], h: int, n: int) -> tuple[int, ...]:
    """``n`` different regulars (fewer if there are not that many), picked by ``h``."""
    if n == 1:
        return (regulars[h % len(regulars)],)
    start = h % len(regulars)
    return tuple(regulars[(start + k) % len(regulars)] for k in range(min(n, len(regulars))))


def _role(h: int) -> str:
    """A character: usually "First Last", sometimes a title or a voice, now and then none."""
    r = h % 100
    if r < 8:
        return ""
    if r < 18:
        return _SPECIAL_ROLES[(h >> 8) % len(_SPECIAL_ROLES)]
    first = _CHARACTER_FIRST[(h >> 8) % len(_CHARACTER_FIRST)]
    return f"{first} {_CHARACTER_LAST[(h >> 16) % len(_CHARACTER_LAST)]}"
