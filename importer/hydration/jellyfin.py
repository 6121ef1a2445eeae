"""Jellyfin and Emby: the people, genres, studios and artwork of up to 50 items in one
``GET {prefix}/Items?Ids=...&Fields=People,Genres,Studios``, decoded into
:class:`ItemMetadata`; and a show's episodes in one listing, for a show on demand.

``People`` costs the server one query per item on 10.10 and 10.11 (12.0 batches it):
small batches, one in flight. Never ``GET /Items/{personId}``: on a person without an
image it queues a remote metadata refresh. Emby sends the same shapes with integer ids
in ``Studios``/``GenreItems`` and ``PersonType`` names. Sources:
shared/research/hydration-and-feeds.md, A2 and A3.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec
from msgspec import Struct

from importer.hydration.model import CAST, Answer, Credit, Image, ItemMetadata, Person, ShowFields
from importer.model import ItemType, PageRequest
from importer.sources import jellyfin as source
from importer.sources.common import JSON, as_id, decode_json

#: ids a request: ~1.7 KB of URL at 33 characters an id, far below the ~8 KB where
#: Jellyfin answers 414 (jellyfin-web sends 25)
BATCH_SIZE = 50
#: episodes a page when listing one show's episodes on demand
SHOW_PAGE_SIZE = 100
_FIELDS = "People,Genres,Studios"
_COMMON = {
    "Fields": _FIELDS,
    "EnableImages": "true",
    "EnableImageTypes": "Primary,Backdrop,Banner,Logo,Thumb",
    "EnableUserData": "false",
}
#: Emby's PersonType as a number, in its enum's order, should a server send it so
_EMBY_PERSON_TYPES = (
    "Actor",
    "Director",
    "Writer",
    "Producer",
    "GuestStar",
    "Composer",
    "Conductor",
    "Lyricist",
)
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class PersonDto(Struct, gc=False, rename="pascal"):
    """Jellyfin's BaseItemPerson, Emby's (``Type`` a PersonType)."""

    name: str | None = None
    id: str | int | None = None
    role: str | None = None
    type: str | int | None = None
    primary_image_tag: str | None = None


class Item(source.Item, gc=False, rename="pascal"):
    """A BaseItemDto with what hydration reads on top of what the sync's listings read."""

    people: list[PersonDto] | None = None
    genres: list[str] | None = None
    genre_items: list[source.NamePair] | None = None


class Result(Struct, gc=False, rename="pascal"):
    items: list[Item]
    total_record_count: int | None = None


_RESULT = msgspec.json.Decoder(Result)


def batch_request(prefix: str, ids: Sequence[str]) -> PageRequest:
    """Up to :data:`BATCH_SIZE` items by id, whatever their type (ids alone select them)."""
    params = {"Ids": ",".join(ids), **_COMMON, "EnableTotalRecordCount": "false"}
    return PageRequest(path=f"{prefix}/Items", params=params, headers=JSON)


def show_episodes_request(prefix: str, show_id: str, start: int, limit: int = SHOW_PAGE_SIZE) -> PageRequest:
    """One page of a show's present episodes (virtual ones left out, as the sync does),
    with the count on the first page only (a show's count is cheap, a library's is not)."""
    params = {
        "ParentId": show_id,
        "Recursive": "true",
        "IncludeItemTypes": "Episode",
        **_COMMON,
        "ExcludeLocationTypes": "Virtual",
        "IsMissing": "false",
        "SortBy": "DateCreated,SortName",
        "SortOrder": "Ascending",
        "EnableTotalRecordCount": "true" if start == 0 else "false",
        "StartIndex": str(start),
        "Limit": str(limit),
    }
    return PageRequest(path=f"{prefix}/Items", params=params, headers=JSON)


def decode(body: bytes | memoryview, item_type: ItemType) -> Answer:
    """The answer's items as :class:`ItemMetadata`, and its TotalRecordCount (meaningful
    only when asked for)."""
    result = decode_json(_RESULT, body, "/Items", "Jellyfin or Emby")
    return Answer([_metadata(item, item_type) for item in result.items], result.total_record_count)


def _metadata(item: Item, item_type: ItemType) -> ItemMetadata:
    # the same rows as the sync's listings make (one function), so that the two agree
    primary = "poster" if item_type != "episode" else "thumb"
    images = [Image(kind, path, tag) for _, kind, path, tag in source.image_rows(item, primary)]
    genres = item.genres if item.genres is not None else [g.name for g in item.genre_items or () if g.name]
    show = None
    if item_type == "show":
        studio = next((s.name for s in item.studios or () if s.name), None)
        critic = None if item.critic_rating is None else item.critic_rating / 10
        show = ShowFields(item.official_rating, studio, critic, item.community_rating)
    return ItemMetadata(item.id, _credits(item.people or ()), [g for g in genres if g], images, show)


def _credits(people: Sequence[PersonDto]) -> list[Credit]:
    """One credit per entry; position counts within each kind, in the server's order."""
    credits: list[Credit] = []
    positions: dict[str, int] = {}
    for dto in people:
        kind = person_kind(dto.type)
        position = positions.get(kind, 0)
        positions[kind] = position + 1
        if dto.id is None or not dto.name:
            continue  # nobody to name: its position stays a gap
        person_id = as_id(dto.id)
        thumb = (
            f"/Items/{person_id}/Images/Primary?tag={dto.primary_image_tag}"
            if dto.primary_image_tag
            else None
        )
        role = (dto.role or None) if kind in CAST else None  # a character, not a crew job
        credits.append(Credit(Person(person_id, dto.name, thumb), kind, role, position))
    return credits


def person_kind(value: str | int | None) -> str:
    """``GuestStar`` -> ``guest_star``; an Emby PersonType number by its name; none -> unknown."""
    if isinstance(value, int):
        value = _EMBY_PERSON_TYPES[value] if 0 <= value < len(_EMBY_PERSON_TYPES) else None
    if not value:
        return "unknown"
    return _CAMEL_HUMP.sub("_", value).lower()
