"""Tag groups (Genre, Director, Writer, Producer, Rating, Role) of shows and episodes: cut
short in listings, whole on ``/library/metadata/{ids}``, as a real server sends them.

Listings carry at most three ``Role``, two ``Genre``, one ``Director`` and two ``Writer``
tags, each only ``{tag}`` (plex-api-rs ``tv_library.json``; python-plexapi #409: "Search
results only show 3 items ... call reload()"). A detail fetch carries every tag with its
``id``, ``filter``, ``tagKey``, ``role`` and ``thumb`` (``metadata_1036`` fixture), in the
recorded group order: Genre, Director, Writer, Producer, Rating, Role. A show's ``Role``
is its cast, an episode's its guest stars; a show may carry ``Producer``; Plex has no
creators.
"""

from __future__ import annotations

from typing import Final

from importer.emulator.credits import GENRES, PRODUCER, Credit, Credits
from importer.emulator.library import Episode, Show, mix
from importer.emulator.plex.formats import Format, Group, Scalar
from importer.emulator.plex.memo import Memo
from importer.emulator.plex.query import Options

#: tags per group in a listing
LISTING_LIMITS: Final = {"Genre": 2, "Role": 3, "Director": 1, "Writer": 2}
#: person tag ids of a section start at section key x PERSON_SPAN (a pool never fills it)
PERSON_SPAN: Final = 1_000_000
#: genre tag ids (server-wide, as Plex numbers each distinct tag once)
GENRE_BASE: Final = 1000


def person_tag_id(section_key: int, person: int) -> int:
    """The tag id of a person of a section's library: the same on every item."""
    return section_key * PERSON_SPAN + 1 + person


def person_from_tag_id(tag_id: int) -> tuple[int, int] | None:
    """(section key, person index) of a person's tag id."""
    section, rest = divmod(tag_id, PERSON_SPAN)
    return (section, rest - 1) if section and rest else None


def genre_tag_id(name: str) -> int:
    return GENRE_BASE + GENRES.index(name)


def person_thumb(credits: Credits, person: int) -> str | None:
    """The picture of a person as a detail fetch names it (absolute, plex.tv's), or None."""
    if not credits.people[person].image:
        return None
    h = mix(credits.seed, 104, person)
    return f"https://metadata-static.plex.tv/{h & 15:x}/people/{h:016x}{mix(h, 105):016x}.jpg"


class Tagger:
    """Renders the tag groups of one section's items in one format."""

    def __init__(self, section_key: int, credits: Credits, fmt: Format) -> None:
        self.section_key = section_key
        self.credits = credits
        self.fmt = fmt
        self._names: Memo[tuple[str, str], bytes] = Memo(lambda k: fmt.element(k[0], [("tag", k[1])]))
        # an episode listing's Director and Writer groups, by (directors, writers)
        self._crews: Memo[tuple[tuple[int, ...], tuple[int, ...]], bytes] = Memo(self._crew, limit=50_000)

    # ------------------------------------------------------------------ people
    def person_thumb(self, person: int) -> str | None:
        return person_thumb(self.credits, person)

    def _person(self, element: str, credit: Credit) -> bytes:
        filter_name = {"Role": "actor"}.get(element, element.lower())
        tag_id = person_tag_id(self.section_key, credit.person)
        pairs: list[tuple[str, Scalar | None]] = [
            ("id", tag_id),
            ("filter", f"{filter_name}={tag_id}"),
            ("tag", self.credits.people[credit.person].name),
            ("tagKey", f"5d7768{mix(self.credits.seed, 103, credit.person):016x}{credit.person % 256:02x}"),
            ("role", credit.role or None),
            ("thumb", self.person_thumb(credit.person)),
        ]
        return self.fmt.element(element, pairs)

    def _people(self, element: str, credits: tuple[Credit, ...], detail: bool) -> Group:
        if detail:
            return element, [self._person(element, c) for c in credits]
        people = self.credits.people
        cut = credits[: LISTING_LIMITS[element]]
        return element, [self._names[element, people[c.person].name] for c in cut]

    # ------------------------------------------------------------------ shows
    def show_groups(self, show: Show, opts: Options) -> list[Group]:
        meta = self.credits.show(show)
        detail = opts.detail
        groups: list[Group] = []
        if opts.wants("Genre"):
            genres = meta.genres if detail else meta.genres[: LISTING_LIMITS["Genre"]]
            if detail:
                groups.append(("Genre", [self._genre(g) for g in genres]))
            else:
                groups.append(("Genre", [self._names["Genre", g] for g in genres]))
        if detail and opts.wants("Producer"):
            producers = tuple(c for c in meta.crew if c.kind == PRODUCER)
            groups.append(self._people("Producer", producers, True))
        if detail and opts.wants("Rating"):
            groups.append(("Rating", self._ratings(show.legacy_agent, meta.critic, meta.audience)))
        if opts.wants("Role"):
            groups.append(self._people("Role", meta.cast, detail))
        return groups

    def _genre(self, name: str) -> bytes:
        tag_id = genre_tag_id(name)
        return self.fmt.element("Genre", [("id", tag_id), ("filter", f"genre={tag_id}"), ("tag", name)])

    def _ratings(self, legacy: bool, critic: int | None, audience: int | None) -> list[bytes]:
        out = []
        if critic is not None:
            image = "rottentomatoes://image.rating." + ("ripe" if critic >= 60 else "rotten")
            out.append(
                self.fmt.element("Rating", [("image", image), ("value", critic / 10), ("type", "critic")])
            )
        if audience is not None and not legacy:
            pairs: list[tuple[str, Scalar | None]] = [
                ("image", "themoviedb://image.rating"),
                ("value", audience / 10),
                ("type", "audience"),
            ]
            out.append(self.fmt.element("Rating", pairs))
        return out

    # ------------------------------------------------------------------ episodes
    def episode_tags(self, ep: Episode, opts: Options) -> bytes:
        """The groups that follow an episode's Media: Director and Writer (and, in full, its
        guest stars as Role)."""
        fmt = self.fmt
        if not opts.detail:
            directors, writers = self.credits.episode_crew(*self.credits.episode_hash(ep))
            if opts.elements:  # some of them left out: not the cached pair
                return self._crew_groups(directors, writers, opts)
            return self._crews[directors, writers]
        meta = self.credits.episode(ep)
        groups = [
            self._people(element, credits, True)
            for element, credits in (
                ("Director", meta.directors),
                ("Writer", meta.writers),
                ("Role", meta.guests),
            )
            if opts.wants(element)
        ]
        return fmt.groups(groups)

    def _crew(self, key: tuple[tuple[int, ...], tuple[int, ...]]) -> bytes:
        return self._crew_groups(key[0], key[1], Options())

    def _crew_groups(self, directors: tuple[int, ...], writers: tuple[int, ...], opts: Options) -> bytes:
        people = self.credits.people
        groups: list[Group] = []
        for element, who in (("Director", directors), ("Writer", writers)):
            if opts.wants(element):
                cut = who[: LISTING_LIMITS[element]]
                groups.append((element, [self._names[element, people[p].name] for p in cut]))
        return self.fmt.groups(groups)
