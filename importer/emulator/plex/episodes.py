"""Episode templates: one ``%``-template per season with everything but the episode's own
values baked in, made from one skeleton per show shape, and the ``Guid[]`` templates."""

from __future__ import annotations

import re

from importer.emulator.plex.formats import Attrs, Format
from importer.emulator.plex.sections import ShowInfo
from importer.emulator.plex.template import Template

#: (hidden seasons, legacy agent, has contentRating, detail, explicit guids: an edited show,
#: the attributes left out)
Shape = tuple[bool, bool, bool, bool, bool, frozenset[str]]

_MARKER = re.compile(rb"@@(\w+)@@")


def episode_skeleton(fmt: Format, section_attrs: Attrs, shape: Shape) -> bytes:
    """The episode template of every show of one shape, with ``@@name@@`` markers where
    show and season values go: per season only the markers are substituted (one regex
    pass), instead of escaping ~30 attributes per season again."""
    hidden, legacy, rated, detail, explicit, excluded = shape
    t = Template(fmt, "Video", excluded).quoted("ratingKey", b"%d").quoted("key", "/library/metadata/", b"%d")
    # Hidden seasons: no parentRatingKey/parentKey/parentGuid/parentTitle (plexapi
    # Episode._loadData; forums.plex.tv/t/.../300553); parentIndex and parentThumb stay.
    if not hidden:
        t.const("parentRatingKey", "@@skey@@")
    t.const("grandparentRatingKey", "@@gkey@@")
    if legacy:
        t.quoted("guid", "@@legacy@@/@@snum@@/", b"%d", "?lang=en")
    elif explicit:  # a moved episode keeps the guid of the show it came from
        t.quoted("guid", b"%s")
    else:
        t.quoted("guid", "plex://episode/@@eprefix@@", b"%08x")
    if not hidden:
        t.const("parentGuid", "@@sguid@@")
    t.const("grandparentGuid", "@@gguid@@").const("type", "episode").text("title")
    for name, value in section_attrs if detail else ():
        t.const(name, value)
    t.const("grandparentKey", "/library/metadata/@@gkey@@")
    if not hidden:
        t.const("parentKey", "/library/metadata/@@skey@@")
    t.const("grandparentTitle", "@@gtitle@@")
    if not hidden:
        t.const("parentTitle", "@@stitle@@")
    if rated:
        t.const("contentRating", "@@crating@@")
    t.optional("summary")
    t.number("index").marker("parentIndex", "snum")
    if hidden:
        t.const("skipParent", True)
    t.optional("audienceRating", "rating").optional("year")
    # artwork a show or season may lack: its whole attribute is the marker's (an episode's
    # still is its own value: most episodes have one)
    t.optional("thumb").optional_marker("art", "artattr").optional_marker("parentThumb", "sthumbattr")
    t.optional_marker("grandparentThumb", "thumbattr").optional_marker("grandparentArt", "gartattr")
    t.const("grandparentTheme", "@@theme@@")
    t.optional("duration").optional("originallyAvailableAt")
    t.number("addedAt").number("updatedAt")
    return t.build(fmt.close("Video", b"%s" * 3))  # groups: Media, tags (tags.py), Guid


class EpisodeTemplates:
    """One show's episode templates, one per season, with everything but the episode's own
    values baked in (show and season keys, titles, guids, thumbs), escaped once."""

    __slots__ = ("by_season", "ep_guids", "ep_key0", "ep_keys", "guids", "legacy")

    def __init__(self, fmt: Format, skeleton: bytes, i: ShowInfo, guids: bool) -> None:
        """``skeleton``: of the show's shape."""
        show = i.show
        self.ep_key0 = i.ep_key0
        self.ep_keys = i.ep_keys
        self.ep_guids = i.ep_guids
        self.legacy = 1 if show.legacy_agent else 0

        def esc(v: str) -> bytes:  # a value inside quotes, in a %-template
            return fmt.inner(v).replace(b"%", b"%%")

        def attr(name: str, v: str | None) -> bytes:  # a whole optional attribute, or nothing
            return fmt.opt(name, v).replace(b"%", b"%%")

        values = {
            b"gkey": str(i.key).encode(),
            b"legacy": esc(i.legacy_base),
            b"eprefix": esc(i.ep_prefix),
            b"gguid": esc(i.guid),
            b"gtitle": esc(show.title),
            b"crating": esc(show.content_rating or ""),
            b"artattr": attr("art", i.art),
            b"thumbattr": attr("grandparentThumb", i.thumb),
            b"gartattr": attr("grandparentArt", i.art),
            b"theme": esc(i.theme),
        }
        self.by_season: dict[int, bytes] = {}  # by season number
        for season in i.seasons:
            values[b"skey"] = str(i.season_keys[season.ordinal]).encode()
            values[b"snum"] = str(season.season_number).encode()
            values[b"sguid"] = esc(i.season_guid(season))
            values[b"stitle"] = esc(season.title)
            values[b"sthumbattr"] = attr("parentThumb", i.season_thumb(season))
            self.by_season[season.season_number] = _MARKER.sub(lambda m: values.get(m[1], m[0]), skeleton)
        self.guids = guids and not show.legacy_agent  # legacy agents have no Guid[]


def guid_templates(fmt: Format) -> list[bytes]:
    """``Guid[]`` templates for each combination of present ids (bit 0 imdb, 1 tmdb, 2 tvdb)."""
    out = []
    for mask in range(8):
        items = [
            Template(fmt, "Guid").quoted("id", f"{scheme}://", b"%s").build(fmt.close("Guid", b""))
            for bit, scheme in enumerate(("imdb", "tmdb", "tvdb"))
            if mask >> bit & 1
        ]
        out.append(fmt.group("Guid", items))
    return out
