"""The vocabulary of hydration: what a server says about an item's people, genres,
artwork and ratings (in the server's own ids), and the items a run asks about.

Nothing here does I/O or imports anything heavy: the decoders build these values, the
store (:mod:`importer.store.metadata`) writes them, the runner passes them between.
"""

from __future__ import annotations

import msgspec

#: the credit kinds whose ``role`` is a character (the schema's ``credits.role``); a crew
#: member's "role" (a job: "Screenplay") is not stored
CAST = frozenset({"actor", "guest_star"})


class Person(msgspec.Struct, frozen=True, gc=False):
    """One person as the server names them: one ``people`` row per server."""

    source_id: str  # Plex tag id, Jellyfin/Emby person Id
    name: str
    thumb: str | None  # a server path or URL without any token, or None


class Credit(msgspec.Struct, frozen=True, gc=False):
    """One credit of a person on an item (a ``credits`` row before ids are resolved)."""

    person: Person
    kind: str  # 'actor', 'guest_star', 'director', 'writer', 'producer', ...
    role: str | None  # the character, for actors and guest stars (CAST); None for crew
    position: int  # 0-based index in the server's own list for this item and kind


class Image(msgspec.Struct, frozen=True, gc=False):
    kind: str  # 'poster', 'backdrop', 'thumb', 'banner', 'logo'
    path: str  # below the server's API root, never with a token
    tag: str | None  # changes when the image does


class ShowFields(msgspec.Struct, frozen=True, gc=False):
    """What hydration sets on a show's own row (ratings on a 0-10 scale)."""

    content_rating: str | None = None
    studio: str | None = None
    critic_rating: float | None = None
    audience_rating: float | None = None


class ItemMetadata(msgspec.Struct, frozen=True, gc=False):
    """Everything hydration stores about one item, as one server answer gave it."""

    source_id: str
    credits: list[Credit]
    genres: list[str]  # in the server's order, the main genre first
    images: list[Image]
    show: ShowFields | None = None  # shows only


class Answer(msgspec.Struct, frozen=True, gc=False):
    """One answer of the server, decoded."""

    items: list[ItemMetadata]  # as listed, asked about or not
    total: int | None = None  # a listing's count of all its items, where it states one


class Target(msgspec.Struct, frozen=True, gc=False):
    """An item to hydrate, as the database holds it when its batch is chosen."""

    id: int  # the local id (shows.id or episodes.id)
    source_id: str
    #: the etag read when the batch was chosen: stored as hydrated_etag, so an item that a
    #: sync changes meanwhile is hydrated again by the next run
    etag: str | None


class Hydrated(msgspec.Struct, frozen=True, gc=False):
    """A target and what the server said about it."""

    target: Target
    metadata: ItemMetadata
