"""People, genres, studios and ratings of series and episodes, as Jellyfin and Emby write
them (research A2, A3).

- ``People``: ``BaseItemPerson {Name, Id, Role, Type, PrimaryImageTag}``, ordered as
  ``DtoService.AttachPeople`` orders them: actors, guest stars, directors, writers,
  producers, then the rest (creators), each kind in the show's own order. A person
  without a picture has no ``PrimaryImageTag``; crew have no ``Role``. Emby's
  ``PersonType`` has no ``Creator``: Emby lists none.
- ``Genres`` (names) and ``GenreItems``/``Studios`` (``{Name, Id}``: a GUID on Jellyfin,
  an integer on Emby with numeric ids).
- ``CriticRating`` (0-100) and ``CommunityRating`` (when above 0) are written whatever
  ``Fields`` says.

Person ids: a GUID from the library's seed and the person's place in its pool, or on
Emby with numeric ids a number (:data:`PERSON_NUMBER_BASE` + library x 10**6 + place).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from importer.emulator.credits import ACTOR, CREATOR, DIRECTOR, GUEST_STAR, PRODUCER, WRITER, Credit, ShowMeta
from importer.emulator.jellyfin.ids import hex_id, name_guid
from importer.emulator.library import Episode, Show, mix

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer

#: PersonKind (Jellyfin) / PersonType (Emby) of each credit kind
PERSON_TYPES: Final = {
    ACTOR: "Actor",
    GUEST_STAR: "GuestStar",
    DIRECTOR: "Director",
    WRITER: "Writer",
    PRODUCER: "Producer",
    CREATOR: "Creator",
}
#: DtoService.AttachPeople: by this rank (others 10), then in the item's own order
_RANK: Final = {"Actor": 0, "GuestStar": 1, "Director": 2, "Writer": 3, "Producer": 4}
#: Emby's PersonType (emby-sdk swagger)
EMBY_PERSON_TYPES: Final = frozenset(
    {"Actor", "Director", "Writer", "Producer", "GuestStar", "Composer", "Conductor", "Lyricist"}
)
PERSON_NUMBER_BASE: Final = 1_000_000_000
_PERSON_SPAN: Final = 1_000_000


def person_id(server: JellyfinServer, lib_index: int, person: int) -> str:
    """A person's id on this server: the same on every item that credits them."""
    if server.numeric_ids:
        return str(PERSON_NUMBER_BASE + lib_index * _PERSON_SPAN + person)
    return hex_id(server.catalog.libraries[lib_index].spec.seed, 95, person)


def person_image_tag(server: JellyfinServer, lib_index: int, person: int) -> str | None:
    """The tag of a person's picture, or None: a person without one has no tag."""
    credits = server.catalog.libraries[lib_index].credits
    if not credits.people[person].image:
        return None
    return f"{mix(credits.seed, 106, person):016x}{mix(credits.seed, 107, person):016x}"


def person_types(server: JellyfinServer) -> frozenset[str]:
    """The PersonKind values this server writes."""
    return EMBY_PERSON_TYPES if server.kind == "emby" else frozenset(PERSON_TYPES.values())


def ordered(server: JellyfinServer, credits: Iterable[Credit]) -> list[tuple[Credit, str]]:
    """(credit, Type) in the order the server lists them, the kinds it cannot name left out."""
    allowed = person_types(server)
    typed = [(c, PERSON_TYPES[c.kind]) for c in credits if PERSON_TYPES[c.kind] in allowed]
    return sorted(typed, key=lambda ct: _RANK.get(ct[1], 10))  # stable: each kind keeps its order


def people_json(server: JellyfinServer, lib_index: int, credits: Iterable[Credit]) -> str:
    """``,"People":[…]``."""
    escape = server.escape
    people = server.catalog.libraries[lib_index].credits.people
    blurhashes = server.kind != "emby"  # Emby's BaseItemPerson has no ImageBlurHashes
    out = []
    for credit, kind in ordered(server, credits):
        pid = person_id(server, lib_index, credit.person)
        entry = f'{{"Name":{escape(people[credit.person].name)},"Id":"{pid}"'
        if credit.role is not None:
            entry += f',"Role":{escape(credit.role)}'
        entry += f',"Type":"{kind}"'
        tag = person_image_tag(server, lib_index, credit.person)
        if tag is not None:
            entry += f',"PrimaryImageTag":"{tag}"'
            if blurhashes:
                entry += f',"ImageBlurHashes":{{"Primary":{{"{tag}":"{_PERSON_BLURHASH}"}}}}'
        out.append(entry + "}")
    return ',"People":[' + ",".join(out) + "]"


_PERSON_BLURHASH: Final = "dCF5?hIA9G%M~qWBM{WB00ae-;ay"


def series_people(server: JellyfinServer, lib_index: int, show: Show) -> str:
    meta = server.catalog.libraries[lib_index].credits.show(show)
    return people_json(server, lib_index, (*meta.cast, *meta.crew))


def episode_people(server: JellyfinServer, lib_index: int, ep: Episode) -> str:
    meta = server.catalog.libraries[lib_index].credits.episode(ep)
    return people_json(server, lib_index, (*meta.guests, *meta.directors, *meta.writers))


# ----------------------------------------------------------------------------- genres and studios
def name_id(server: JellyfinServer, kind: str, name: str) -> str:
    """The JSON of a genre's or studio's Id: a GUID, or on Emby an integer."""
    guid = name_guid(f"{kind}:{name}")
    return str(int(guid[:8], 16)) if server.numeric_ids else f'"{guid}"'


def genres_json(server: JellyfinServer, meta: ShowMeta) -> str:
    return ',"Genres":[' + ",".join(server.escape(g) for g in meta.genres) + "]"


def genre_items_json(server: JellyfinServer, meta: ShowMeta) -> str:
    items = [f'{{"Name":{server.escape(g)},"Id":{name_id(server, "genre", g)}}}' for g in meta.genres]
    return ',"GenreItems":[' + ",".join(items) + "]"


def studios_json(server: JellyfinServer, studio: str | None) -> str:
    if not studio:
        return ',"Studios":[]'
    return f',"Studios":[{{"Name":{server.escape(studio)},"Id":{name_id(server, "studio", studio)}}}]'


# ----------------------------------------------------------------------------- ratings
def critic_json(meta: ShowMeta) -> str:
    """``CriticRating``: 0-100 (the critics' 0-10 x 10)."""
    return "" if meta.critic is None else f',"CriticRating":{meta.critic}'


def community_json(meta: ShowMeta) -> str:
    """``CommunityRating``: 0-10, only when above 0 (DtoService)."""
    if not meta.audience:
        return ""
    return f',"CommunityRating":{meta.audience / 10:g}'
