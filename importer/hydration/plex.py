"""Plex: the details of many items in one ``GET /library/metadata/{k1,k2,...}``, decoded
into :class:`ItemMetadata`.

Listings truncate ``Role``/``Genre`` to a few ``{tag}`` names; the detail endpoint gives
the full tags (``id``, ``tag``, ``role``, ``thumb``), ``Director``, ``Writer``,
``Producer`` and ``Rating[]``. A show's ``Role`` is its cast; an episode's, its guest
stars. Sources: shared/research/hydration-and-feeds.md, A1.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from msgspec import Struct, field

from importer.hydration.model import CAST, Answer, Credit, Image, ItemMetadata, Person, ShowFields
from importer.model import ItemType, PageRequest
from importer.sources.common import JSON, as_id, decode_json, strip_token
from importer.sources.plex import image_rows

#: ratingKeys a request: ~700 characters of URL (very long ones get a 400 from Plex or
#: from a reverse proxy in front of it)
BATCH_SIZE = 100
#: keep the detail call cheap for the server: no file check, no refresh, no extras; and
#: leave out what is never stored here (media, streams, guids, summaries, the parents'
#: keys and artwork): half the bytes of an episode. Plex treats exclusions as requests: a
#: server that ignores them costs bytes, never a row.
_PARAMS = {
    "checkFiles": "0",
    "skipRefresh": "1",
    "includeExtras": "0",
    "includeRelated": "0",
    "includeReviews": "0",
    "excludeElements": (
        "Media,Guid,Image,UltraBlurColors,Chapter,Marker,Country,Collection,Label,Similar,Mood,Style,"
        "Location,Field"
    ),
    "excludeFields": (
        "summary,tagline,key,parentKey,grandparentKey,parentTitle,grandparentTitle,parentGuid,"
        "grandparentGuid,parentThumb,grandparentThumb,grandparentArt,grandparentTheme,parentTheme,theme"
    ),
}


class Tag(Struct, gc=False):
    id: int | str | None = None
    tag: str | None = None
    role: str | None = None
    thumb: str | None = None


class RatingTag(Struct, gc=False):
    type: str | None = None  # 'critic' or 'audience'
    value: float | None = None


class Item(Struct, gc=False, rename="camel"):
    rating_key: str | int
    type: str | None = None
    thumb: str | None = None
    art: str | None = None
    banner: str | None = None
    content_rating: str | None = None
    studio: str | None = None
    rating: float | None = None  # the critics', 0-10
    audience_rating: float | None = None  # 0-10
    ratings: list[RatingTag] = field(name="Rating", default_factory=list)
    roles: list[Tag] = field(name="Role", default_factory=list)
    directors: list[Tag] = field(name="Director", default_factory=list)
    writers: list[Tag] = field(name="Writer", default_factory=list)
    producers: list[Tag] = field(name="Producer", default_factory=list)
    genres: list[Tag] = field(name="Genre", default_factory=list)


class Container(Struct, gc=False):
    metadata: list[Item] = field(name="Metadata", default_factory=list)


class Document(Struct, gc=False):
    container: Container = field(name="MediaContainer")


_DOCUMENT = msgspec.json.Decoder(Document)


def batch_request(keys: Sequence[str]) -> PageRequest:
    """The details of up to :data:`BATCH_SIZE` items, whatever their type."""
    return PageRequest(path=f"/library/metadata/{','.join(keys)}", params=_PARAMS, headers=JSON)


def decode(body: bytes | memoryview, item_type: ItemType) -> Answer:
    """The items of ``item_type`` in a ``/library/metadata`` answer (others are skipped: a
    ratingKey that now names another kind of item is not the item we asked about)."""
    items = decode_json(_DOCUMENT, body, "Plex /library/metadata", "Plex").container.metadata
    return Answer([_metadata(item, item_type) for item in items if item.type in (None, item_type)])


def _metadata(item: Item, item_type: ItemType) -> ItemMetadata:
    sid = as_id(item.rating_key)
    credits = [
        *_credits(item.roles, "actor" if item_type == "show" else "guest_star"),
        *_credits(item.directors, "director"),
        *_credits(item.writers, "writer"),
        *_credits(item.producers, "producer"),
    ]
    # the same rows as the sync's listings make (one function, which keeps the item's
    # own images only: an episode repeats its show's art), so that the two agree
    primary = "poster" if item_type != "episode" else "thumb"
    art = ((sid, primary, item.thumb), (sid, "backdrop", item.art), (sid, "banner", item.banner))
    images = [Image(kind, path, tag) for _, kind, path, tag in image_rows(art)]
    genres = [g.tag for g in item.genres if g.tag]
    show = _show_fields(item) if item_type == "show" else None
    return ItemMetadata(sid, credits, genres, images, show)


def _credits(tags: list[Tag], kind: str) -> list[Credit]:
    """Credits in the server's order; position is the index in its list. A tag without an
    id (only listings send those) names nobody we can keep apart from a namesake: skipped,
    its position left as a gap. ``role`` is a character: actors' and guest stars' only."""
    cast = kind in CAST
    return [
        Credit(_person(tag), kind, (tag.role or None) if cast else None, position)
        for position, tag in enumerate(tags)
        if tag.id is not None and tag.tag
    ]


def _person(tag: Tag) -> Person:
    assert tag.id is not None and tag.tag is not None
    return Person(as_id(tag.id), tag.tag, strip_token(tag.thumb) if tag.thumb else None)


def _show_fields(item: Item) -> ShowFields:
    """The item's own ``rating``/``audienceRating`` first; ``Rating[]`` (critic/audience,
    0-10) where those are missing."""
    critic, audience = item.rating, item.audience_rating
    for entry in item.ratings:
        if entry.type == "critic" and critic is None:
            critic = entry.value
        elif entry.type == "audience" and audience is None:
            audience = entry.value
    return ShowFields(item.content_rating, item.studio, critic, audience)
