"""The ``MediaContainer`` attributes of item answers (section listings, metadata fetches,
a show's or a season's children), in the order recorded from real servers."""

from __future__ import annotations

from typing import Final

from importer.emulator.library import Season
from importer.emulator.plex.formats import Attrs, Scalar
from importer.emulator.plex.sections import Heading, ShowInfo

IDENTIFIER: Final = "com.plexapp.plugins.library"
MEDIA_TAG_VERSION: Final = 1734567890
MEDIA_TAG_PREFIX: Final = "/system/bundle/media/flags/"


def section_art(kind: str) -> tuple[str, str]:
    """(art, thumb) of a section of ``kind``."""
    return f"/:/resources/{kind}-fanart.jpg", f"/:/resources/{kind}.png"


def _section(head: Heading) -> Attrs:
    """The section and media-tag attributes every item container carries."""
    return [
        ("librarySectionID", head.key),
        ("librarySectionTitle", head.title),
        ("librarySectionUUID", head.uuid),
        ("mediaTagPrefix", MEDIA_TAG_PREFIX),
        ("mediaTagVersion", MEDIA_TAG_VERSION),
    ]


def listing(head: Heading, size: int, total: int, offset: int) -> Attrs:
    """As home-assistant's recorded count-only answer, in its attribute order. Every
    listing type says "All Shows"/viewGroup show there and in watchstate's type=4 page."""
    art, thumb = section_art(head.kind)
    return [
        ("size", size),
        ("totalSize", total),
        ("allowSync", True),
        ("art", art),
        ("identifier", IDENTIFIER),
        *_section(head),
        ("nocache", True),
        ("offset", offset),
        ("sortAsc", True),
        ("thumb", thumb),
        ("title1", head.title),
        ("title2", "All Shows" if head.kind == "show" else "All Movies"),
        ("viewGroup", head.kind),
        ("viewMode", 65592),
    ]


def metadata(head: Heading, size: int) -> Attrs:
    """A ``/library/metadata`` answer, named after its first item's section."""
    return [("size", size), ("allowSync", True), ("identifier", IDENTIFIER), *_section(head)]


def hierarchy(
    head: Heading,
    i: ShowInfo,
    season: Season | None,
    leaves: bool,
    size: int,
    paging: tuple[int, int] | None,
) -> Attrs:
    """A page of a show's or a season's children, in the shape recorded in plex-api-rs
    tv_seasons.json / tv_episodes.json (hoisted keys are numbers there); ``paging``:
    (total, offset) when the client asked for a page size."""
    show = i.show
    pairs: list[tuple[str, Scalar | None]] = [("size", size)]
    if paging is not None:
        pairs += [("totalSize", paging[0]), ("offset", paging[1])]
    pairs += [("allowSync", True), ("art", i.art), ("banner", i.banner)]
    if season is not None or leaves:
        pairs += [
            ("grandparentContentRating", show.content_rating),
            ("grandparentRatingKey", i.key),  # a number here, a string on items
            ("grandparentStudio", show.studio),
            ("grandparentTheme", i.theme),
            ("grandparentThumb", i.thumb),
            ("grandparentTitle", show.title),
        ]
    key = i.season_keys[season.ordinal] if season is not None else i.key
    pairs += [("identifier", IDENTIFIER), ("key", str(key)), *_section(head), ("nocache", True)]
    if season is not None:
        pairs += [("parentIndex", season.season_number), ("parentTitle", ""), ("theme", i.theme)]
        pairs += [("thumb", i.season_thumb(season)), ("title1", show.title), ("title2", season.title)]
        pairs += [("viewGroup", "episode"), ("viewMode", 65592)]
    else:
        pairs += [("parentIndex", 1), ("parentTitle", show.title), ("parentYear", show.year)]
        if not leaves:
            pairs += [("summary", show.summary)]
        pairs += [
            ("theme", i.theme),
            ("thumb", i.thumb),
            ("title1", head.title if not leaves else show.title),
        ]
        pairs += [("title2", show.title if not leaves else "All episodes")]
        pairs += [
            ("viewGroup", "episode" if leaves else "season"),
            ("viewMode", 65592 if leaves else 65593),
        ]
    return pairs
