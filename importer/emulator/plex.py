"""An emulated Plex Media Server over generated TV libraries.

It answers the requests a library importer and python-plexapi make, with the shapes
and quirks recorded from real servers (``shared/research/server-apis.md``, "PLEX";
``shared/reference/plex/``):

- XML by default, JSON with ``Accept: application/json``; every endpoint renders both;
- ids are strings on items but numbers where the container hoists them;
- ``X-Plex-Container-Start``/``-Size`` as headers or query arguments; sizes above 1000
  are clamped, ``controls.page_cap`` caps lower still, size 0 returns the count alone,
  and ``/library/sections/{id}/all`` without a size is a 400;
- episodes of shows with hidden seasons carry no ``parentRatingKey``/``parentKey``;
- legacy-agent items have a ``com.plexapp.agents.*`` guid and never a ``Guid[]``;
- a double episode is two items that share one Media and Part.

Pages of a million-episode library are rendered from per-season byte templates (show
and season constants escaped once, per-episode values spliced in with ``%``): no
per-item dicts, no generic serialiser in the hot path.
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, NamedTuple, cast

import orjson
from aiohttp import web

from importer.emulator.library import (
    VIRTUAL,
    Episode,
    Library,
    MediaFile,
    Season,
    Show,
    View,
    episode_time_bounds,
    mix,
    slot_flags,
)
from importer.emulator.server import EmulatedServer, listed

Scalar = str | int | float | bool
Attrs = Sequence[tuple[str, Scalar | None]]
#: (JSON key, items) of one child group; a bytes "items" is a single JSON object (Meta)
Group = tuple[str, Sequence[bytes] | bytes]

VERSION: Final = "1.41.3.9314-a0bfb8370"
MEDIA_TAG_VERSION: Final = 1734567890
MEDIA_TAG_PREFIX: Final = "/system/bundle/media/flags/"
IDENTIFIER: Final = "com.plexapp.plugins.library"
#: The largest page Plex serves; larger sizes are clamped (research: "Max page size: 1000").
MAX_PAGE: Final = 1000
MISSING_SIZE: Final = "Missing X-Plex-Container-Size header."
SHOW, SEASON, EPISODE = 2, 3, 4
_LEVELS: Final = {"show": SHOW, "season": SEASON, "episode": EPISODE}
_MOVIE_SECTION: Final = 1  # an empty Movies section, so that clients must filter by type

_HTML_401: Final = (
    b"<html><head><title>Unauthorized</title></head><body><h1>401 Unauthorized</h1></body></html>"
)
_HTML_404: Final = b"<html><head><title>Not Found</title></head><body><h1>404 Not Found</h1></body></html>"
_HTML_400: Final = (
    b"<html><head><title>Bad Request</title></head><body><h1>400 Bad Request</h1></body></html>"
)


# ============================================================================ formats
_XML_ESCAPES: dict[int, str | None] = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    # attribute-value normalisation would turn literal whitespace into spaces
    ord("\n"): "&#10;",
    ord("\r"): "&#13;",
    ord("\t"): "&#9;",
}
# other C0 controls cannot appear in XML 1.0 at all
_XML_ESCAPES.update({c: None for c in range(32) if c not in _XML_ESCAPES})


class Format:
    """One rendering, JSON or XML: values, attributes, elements and containers.

    The same calls build both, so attribute names in XML always equal JSON keys.
    Strings that repeat (titles, summaries, dates) are escaped once and cached."""

    json: ClassVar[bool]
    content_type: ClassVar[str]

    def __init__(self) -> None:
        self._text: dict[str, bytes] = {}

    # --- values
    def inner(self, s: str) -> bytes:
        """A string escaped to stand between double quotes."""
        raise NotImplementedError

    def text(self, s: str) -> bytes:
        """``inner`` with a bounded cache, for strings that repeat across items."""
        got = self._text.get(s)
        if got is None:
            if len(self._text) >= 100_000:
                self._text.clear()
            got = self._text[s] = self.inner(s)
        return got

    def scalar(self, v: Scalar) -> bytes:
        raise NotImplementedError

    # --- structure
    def attr(self, name: str, v: Scalar) -> bytes:
        raise NotImplementedError

    def attrs(self, pairs: Attrs) -> bytes:
        raise NotImplementedError

    def opt(self, name: str, v: Scalar | None) -> bytes:
        """An optional attribute spliced into a template (empty when absent)."""
        raise NotImplementedError

    def group(self, key: str, items: Sequence[bytes] | bytes) -> bytes:
        raise NotImplementedError

    def close(self, tag: str, children: bytes) -> bytes:
        """What follows the attributes of an element: its children and its end."""
        raise NotImplementedError

    def end(self, tag: str, groups: int) -> bytes:
        """A template's end with ``groups`` placeholders for pre-rendered child groups."""
        raise NotImplementedError

    def element(self, tag: str, pairs: Attrs, groups: Sequence[Group] = ()) -> bytes:
        return self.open(tag) + self.attrs(pairs) + self.close(tag, self.groups(groups))

    def groups(self, groups: Sequence[Group]) -> bytes:
        return b"".join(self.group(k, items) for k, items in groups if items)

    def open(self, tag: str) -> bytes:
        raise NotImplementedError

    def document(self, pairs: Attrs, groups: Sequence[Group]) -> bytes:
        raise NotImplementedError


class JsonFormat(Format):
    json = True
    content_type = "application/json"

    def inner(self, s: str) -> bytes:
        if '"' not in s and "\\" not in s and s.isprintable():
            return s.encode()  # the common case: nothing to escape (JSON allows raw UTF-8)
        return orjson.dumps(s)[1:-1]

    def scalar(self, v: Scalar) -> bytes:
        if v is True:
            return b"true"
        if v is False:
            return b"false"
        if isinstance(v, str):
            return b'"' + self.text(v) + b'"'
        return repr(v).encode()

    def attr(self, name: str, v: Scalar) -> bytes:
        return b'"%s":%s' % (name.encode(), self.scalar(v))

    def attrs(self, pairs: Attrs) -> bytes:
        return b",".join(self.attr(n, v) for n, v in pairs if v is not None)

    def opt(self, name: str, v: Scalar | None) -> bytes:
        return b"" if v is None else self.attr(name, v) + b","

    def group(self, key: str, items: Sequence[bytes] | bytes) -> bytes:
        if isinstance(items, bytes):
            return b',"%s":%s' % (key.encode(), items)
        return b',"%s":[%s]' % (key.encode(), b",".join(items))

    def open(self, tag: str) -> bytes:
        return b"{"

    def close(self, tag: str, children: bytes) -> bytes:
        return children + b"}"

    def end(self, tag: str, groups: int) -> bytes:
        return b"%s" * groups + b"}"

    def document(self, pairs: Attrs, groups: Sequence[Group]) -> bytes:
        # one join over the pieces: a page is megabytes, each extra concatenation a copy
        parts = [b'{"MediaContainer":{', self.attrs(pairs)]
        for key, items in groups:
            if isinstance(items, bytes):
                parts.append(b',"%s":%s' % (key.encode(), items))
            elif items:
                parts += (b',"%s":[' % key.encode(), b",".join(items), b"]")
        parts.append(b"}}")
        return b"".join(parts)


class XmlFormat(Format):
    json = False
    content_type = "text/xml"

    def inner(self, s: str) -> bytes:
        if '"' not in s and "&" not in s and "<" not in s and ">" not in s and s.isprintable():
            return s.encode()
        return s.translate(_XML_ESCAPES).encode()

    def scalar(self, v: Scalar) -> bytes:
        if v is True:
            return b"1"
        if v is False:
            return b"0"
        if isinstance(v, str):
            return self.text(v)
        return repr(v).encode()

    def attr(self, name: str, v: Scalar) -> bytes:
        return b' %s="%s"' % (name.encode(), self.scalar(v))

    def attrs(self, pairs: Attrs) -> bytes:
        return b"".join(self.attr(n, v) for n, v in pairs if v is not None)

    def opt(self, name: str, v: Scalar | None) -> bytes:
        return b"" if v is None else self.attr(name, v)

    def group(self, key: str, items: Sequence[bytes] | bytes) -> bytes:
        return items if isinstance(items, bytes) else b"".join(items)

    def open(self, tag: str) -> bytes:
        return b"<" + tag.encode()

    def close(self, tag: str, children: bytes) -> bytes:
        if not children:
            return b"/>\n"
        return b">\n" + children + b"</" + tag.encode() + b">\n"

    def end(self, tag: str, groups: int) -> bytes:
        # with every group empty this is <Video ...>\n</Video>: the same XML as "/>"
        return b">\n" + b"%s" * groups + b"</" + tag.encode() + b">\n"

    def document(self, pairs: Attrs, groups: Sequence[Group]) -> bytes:
        # PMS never self-closes the container, even when it is empty (count-only answers).
        parts = [b'<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer', self.attrs(pairs), b">\n"]
        for _, items in groups:
            if isinstance(items, bytes):
                parts.append(items)
            else:
                parts += items
        parts.append(b"</MediaContainer>\n")
        return b"".join(parts)


JSON: Final = JsonFormat()
XML: Final = XmlFormat()


class Template:
    """Builds a ``%``-template of one element's attributes: constants are escaped once,
    placeholders take per-item values in the order they were added, and the element's
    end (children, closing tag) is always the last value."""

    def __init__(self, fmt: Format, tag: str) -> None:
        self.fmt = fmt
        self.tag = tag
        self._parts: list[tuple[bool, bytes]] = []  # (mandatory, bytes)

    def const(self, name: str, v: Scalar | None) -> Template:
        if v is not None:
            self._parts.append((True, self.fmt.attr(name, v).replace(b"%", b"%%")))
        return self

    def number(self, name: str) -> Template:
        """An int placeholder (a JSON number)."""
        return self._mandatory(name, b"%d")

    def text(self, name: str) -> Template:
        """A string placeholder for a value escaped with ``Format.text`` or ``inner``."""
        return self._mandatory(name, b'"%s"')

    def quoted(self, name: str, *pieces: str | bytes) -> Template:
        """A string made of constant pieces (str, escaped here) and format specs (bytes)."""
        spec = b"".join(self.fmt.inner(p).replace(b"%", b"%%") if isinstance(p, str) else p for p in pieces)
        return self._mandatory(name, b'"' + spec + b'"')

    def marker(self, name: str, key: str) -> Template:
        """A number that ``@@key@@`` stands for until a later substitution."""
        return self._mandatory(name, b"@@%s@@" % key.encode())

    def optional(self) -> Template:
        """A placeholder for a pre-rendered ``Format.opt`` part (possibly empty)."""
        self._parts.append((False, b"%s"))
        return self

    def _mandatory(self, name: str, spec: bytes) -> Template:
        if self.fmt.json:
            self._parts.append((True, b'"%s":%s' % (name.encode(), spec)))
        else:
            self._parts.append(
                (True, b" %s=%s" % (name.encode(), spec if spec.startswith(b'"') else b'"%s"' % spec))
            )
        return self

    def build(self, end: bytes = b"%s") -> bytes:
        """The template; ``end`` follows the attributes (by default one placeholder for
        the element's end, which ``Format.close`` renders)."""
        if not self._parts or not self._parts[-1][0]:
            raise ValueError("a template must end with a mandatory attribute")
        if self.fmt.json:
            # optional parts carry their own trailing comma; mandatory ones get one here
            body = b"".join(p + b"," if mandatory else p for mandatory, p in self._parts)[:-1]
        else:
            body = b"".join(p for _, p in self._parts)
        return self.fmt.open(self.tag) + body + end


# ============================================================================ static tables
_GENRES = ("Drama", "Comedy", "Action", "Science Fiction", "Mystery", "Documentary", "Animation", "Crime")
_PEOPLE = (
    "Ada Brennan",
    "Marco D'Souza",
    "Yuki Tanaka",
    "Zoë Ferreira",
    "Kwame Mensah",
    "Ingrid Holm",
    'Lee "Sparky" Park',
    "Olga Petrova",
    "Ravi & Sons",
)


class _Codec(NamedTuple):
    resolution: str
    aspect: float
    frame_rate: str
    video_profile: str
    audio_channels: int
    audio_profile: str | None


def _codec(vcodec: str, acodec: str, height: int) -> _Codec:
    return _Codec(
        resolution={2160: "4k", 1080: "1080", 720: "720"}.get(height, "480"),
        aspect=1.33 if height == 480 else 1.78,
        frame_rate="NTSC" if height == 480 else "24p",
        video_profile={"h264": "high", "hevc": "main 10", "mpeg4": "advanced simple"}.get(vcodec, "main"),
        audio_channels=6 if acodec in ("eac3", "ac3", "dca") else 2,
        audio_profile="lc" if acodec == "aac" else None,
    )


def _hex_id(seed: int, salt: int, lead: str) -> str:
    """16 hex digits that start like a real Plex (MongoDB ObjectId) guid."""
    return f"{lead}{mix(seed, salt) % 16**14:014x}"


# ============================================================================ sections
@dataclass
class Section:
    """One TV section: a generated library, where its ratingKeys start, its id."""

    key: int
    title: str
    library: Library
    key_offset: int  # added to the library's ratingKeys (libraries each count from 1000)
    media_offset: int  # added to Media and Part ids, for the same reason
    uuid: str

    @property
    def min_key(self) -> int:
        return self.key_offset + 1000

    @property
    def max_key(self) -> int:
        return self.key_offset + self.library.max_rating_key

    def show_key(self, show: Show) -> int:
        return self.key_offset + self.library.plex_show_key(show)

    def season_key(self, show: Show, ordinal: int) -> int:
        return self.key_offset + self.library.plex_show_key(show) + 1 + ordinal

    def episode_key(self, episode: Episode) -> int:
        show = self.library.shows[episode.show_index]
        return (
            self.key_offset + self.library.plex_show_key(show) + 1 + len(show.season_sizes) + episode.ordinal
        )


class ShowInfo:
    """Per-show values every item of the show repeats: keys, guids, thumbs, counts."""

    __slots__ = (
        "art",
        "banner",
        "ep_key0",
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
        self.season_keys = [self.key + 1 + s.ordinal for s in self.seasons]
        self.ep_key0 = self.key + 1 + len(self.seasons)
        ts = show.updated_at
        self.thumb = f"/library/metadata/{self.key}/thumb/{ts}"
        self.art = f"/library/metadata/{self.key}/art/{ts}"
        self.banner = f"/library/metadata/{self.key}/banner/{ts}"
        self.theme = f"/library/metadata/{self.key}/theme/{ts}"
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

    def season_thumb(self, season: Season) -> str:
        return f"/library/metadata/{self.season_keys[season.ordinal]}/thumb/{season.updated_at}"


class Options(NamedTuple):
    """What a request asked to include."""

    guids: bool = False  # includeGuids=1
    detail: bool = False  # a /library/metadata fetch: items carry their section
    media: bool = True  # excludeElements=Media leaves it out
    tags: bool = True  # excludeElements=Genre,Role,Director,Writer leaves those out
    summary: bool = True  # excludeFields=summary


# ============================================================================ items
class Renderer:
    """Renders shows, seasons and episodes of one section in one format."""

    def __init__(self, sec: Section, fmt: Format, info: Callable[[int], ShowInfo]) -> None:
        self.sec = sec
        self.fmt = fmt
        self.info = info
        self._templates: OrderedDict[tuple[int, Options], EpisodeTemplates] = OrderedDict()
        self._single: dict[tuple[object, ...], bytes] = {}  # by (container, codecs, size)
        self._multi: dict[tuple[object, ...], tuple[bytes, bytes]] = {}
        self._skeletons: dict[tuple[bool, bool, bool, bool, bool], bytes] = {}
        self._tags: dict[tuple[str, ...], list[bytes]] = {}
        self._summaries: dict[str | None, bytes] = {}
        self._dates: dict[str | None, tuple[bytes, bytes]] = {}
        self._duration = fmt.opt("duration", 0).replace(b"0", b"%d")
        self._guid_templates = _guid_templates(fmt)
        # new agents rate with audienceRating, the old ones with rating (the fixtures)
        self._ratings = [
            (fmt.opt("audienceRating", round(5.0 + r / 10, 1)), fmt.opt("rating", round(5.0 + r / 10, 1)))
            for r in range(41)
        ]
        self.section_attrs = (
            ("librarySectionTitle", sec.title),
            ("librarySectionID", sec.key),
            ("librarySectionKey", f"/library/sections/{sec.key}"),
        )

    # ----------------------------------------------------------------- shows
    def show(self, show: Show, opts: Options) -> bytes:
        fmt, i = self.fmt, self.info(show.index)
        rating = round(5.0 + mix(show.seed, 84) % 41 / 10, 1)
        year = show.year
        pairs: list[tuple[str, Scalar | None]] = [
            ("ratingKey", str(i.key)),
            ("key", f"/library/metadata/{i.key}/children"),
            ("guid", i.guid),
            ("studio", show.studio),
            ("type", "show"),
            ("title", show.title),
            ("titleSort", show.sort_title if show.sort_title != show.title else None),
            *(self.section_attrs if opts.detail else ()),
            ("contentRating", show.content_rating),
            ("summary", show.summary if opts.summary else None),
            ("index", 1),
            ("rating" if show.legacy_agent else "audienceRating", rating),
            ("audienceRatingImage", None if show.legacy_agent else "themoviedb://image.rating"),
            ("year", year),
            ("thumb", i.thumb),
            ("art", i.art),
            ("banner", i.banner),
            ("theme", i.theme),
            ("duration", 1_200_000 + mix(show.seed, 85) % 40 * 60_000),
            (
                "originallyAvailableAt",
                f"{year}-{1 + show.seed % 12:02d}-{1 + show.seed % 28:02d}" if year else None,
            ),
            ("leafCount", i.leaf_count),
            ("viewedLeafCount", 0),
            ("childCount", len(i.seasons)),
            # seasons hidden: Plex Web goes straight to the episodes (watchstate fixture)
            ("skipChildren", True if show.hidden_seasons else None),
            ("addedAt", show.added_at),
            ("updatedAt", show.updated_at),
        ]
        groups: list[Group] = []
        if opts.tags:
            groups.append(
                ("Genre", [fmt.element("Genre", [("tag", g)]) for g in _pick(_GENRES, show.seed, 2)])
            )
            groups.append(("Role", [fmt.element("Role", [("tag", p)]) for p in _pick(_PEOPLE, show.seed, 3)]))
        if opts.guids and not show.legacy_agent:
            groups.append(("Guid", self._guids(show.ids.imdb, show.ids.tmdb, show.ids.tvdb)))
        return fmt.element("Directory", pairs, groups)

    def _guids(self, imdb: str | None, tmdb: str | None, tvdb: str | None) -> list[bytes]:
        fmt = self.fmt
        return [
            fmt.element("Guid", [("id", f"{scheme}://{value}")])
            for scheme, value in (("imdb", imdb), ("tmdb", tmdb), ("tvdb", tvdb))
            if value
        ]

    # ----------------------------------------------------------------- seasons
    def season(self, show: Show, season: Season, opts: Options) -> bytes:
        i = self.info(show.index)
        key = i.season_keys[season.ordinal]
        pairs: list[tuple[str, Scalar | None]] = [
            ("ratingKey", str(key)),
            ("key", f"/library/metadata/{key}/children"),
            ("parentRatingKey", str(i.key)),
            ("guid", i.season_guid(season)),
            ("parentGuid", i.guid),
            ("parentStudio", show.studio),
            ("type", "season"),
            ("title", season.title),
            *(self.section_attrs if opts.detail else ()),
            ("parentKey", f"/library/metadata/{i.key}"),
            ("parentTitle", show.title),
            ("summary", "" if opts.summary else None),
            ("index", season.season_number),
            ("parentIndex", 1),
            ("parentYear", show.year),
            ("thumb", i.season_thumb(season)),
            ("art", i.art),
            ("parentThumb", i.thumb),
            ("parentTheme", i.theme),
            ("leafCount", i.season_counts[season.ordinal]),
            ("viewedLeafCount", 0),
            ("addedAt", season.added_at),
            ("updatedAt", season.updated_at),
        ]
        return self.fmt.element("Directory", pairs)

    def all_leaves(self, show: Show) -> bytes:
        """The synthetic first child of a show (plex-api-rs tv_seasons.json)."""
        i = self.info(show.index)
        return self.fmt.element(
            "Directory",
            [
                ("leafCount", i.leaf_count),
                ("thumb", i.thumb),
                ("viewedLeafCount", 0),
                ("key", f"/library/metadata/{i.key}/allLeaves"),
                ("title", "All episodes"),
            ],
        )

    # ----------------------------------------------------------------- episodes
    def skeleton(self, shape: tuple[bool, bool, bool, bool, bool]) -> bytes:
        got = self._skeletons.get(shape)
        if got is None:
            got = self._skeletons[shape] = episode_skeleton(self, shape)
        return got

    def episode_tags(self, show: Show) -> list[bytes]:
        """Director and Writer groups (three variants, picked by episode)."""
        people = tuple(_pick(_PEOPLE, show.seed ^ 0x5EED, 4))
        got = self._tags.get(people)
        if got is None:
            fmt = self.fmt
            got = self._tags[people] = [
                fmt.group("Director", [fmt.element("Director", [("tag", people[k])])])
                + fmt.group("Writer", [fmt.element("Writer", [("tag", people[k + 1])])])
                for k in range(3)
            ]
        return got

    def templates(self, show_index: int, opts: Options) -> EpisodeTemplates:
        key = (show_index, opts)
        got = self._templates.get(key)
        if got is None:
            got = self._templates[key] = EpisodeTemplates(self, self.info(show_index), opts)
            if len(self._templates) > 512:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(key)
        return got

    def episodes(self, episodes: Iterable[Episode], opts: Options) -> list[bytes]:
        """The hot path: one ``%`` per episode on its season's template, plus its media.
        Everything that repeats (titles, summaries, dates, show and season parts) comes
        from caches, already escaped."""
        out: list[bytes] = []
        append = out.append
        current = -1
        by_season: dict[int, bytes] = {}
        ep_key0 = legacy = 0
        guids = False
        tags = [b""]
        text = self.fmt.text
        summaries, summary_part = self._summaries, self.summary_part
        dates, date_parts = self._dates, self.date_parts
        duration_tpl = self._duration
        media = self.media
        guid_group = self.guid_group
        ratings = self._ratings
        with_summary, with_media = opts.summary, opts.media
        for ep in episodes:
            (
                show_index,
                ordinal,
                season,
                number,
                _,
                _,
                _,
                title,
                summary,
                air,
                duration,
                ids,
                added,
                updated,
            ) = ep[:14]
            if show_index != current:
                current = show_index
                t = self.templates(current, opts)
                by_season = t.by_season
                ep_key0, legacy, guids = t.ep_key0, t.legacy, t.guids
                tags = t.tags or [b""]
            rk = ep_key0 + ordinal
            year, day = dates.get(air) or date_parts(air)
            append(
                by_season[season]
                % (
                    rk,
                    rk,
                    number if legacy else ordinal,
                    text(title),
                    (summaries.get(summary) or summary_part(summary)) if with_summary else b"",
                    number,
                    ratings[(rk * 40503) % 41][legacy],
                    year,
                    rk,
                    updated,
                    b"" if duration is None else duration_tpl % duration,
                    day,
                    added,
                    updated,
                    media(ep.files) if with_media else b"",
                    tags[ordinal % 3],
                    guid_group(ids) if guids else b"",
                )
            )
        return out

    def summary_part(self, summary: str | None) -> bytes:
        got = self._summaries.get(summary)
        if got is None:
            if len(self._summaries) > 10_000:
                self._summaries.clear()
            got = self._summaries[summary] = self.fmt.opt("summary", summary)
        return got

    def date_parts(self, air_date: str | None) -> tuple[bytes, bytes]:
        """(year, originallyAvailableAt) parts of an air date."""
        got = self._dates.get(air_date)
        if got is None:
            if len(self._dates) > 50_000:
                self._dates.clear()
            fmt = self.fmt
            got = self._dates[air_date] = (
                (b"", b"")
                if air_date is None
                else (fmt.opt("year", int(air_date[:4])), fmt.opt("originallyAvailableAt", air_date))
            )
        return got

    def guid_group(self, ids: tuple[str | None, str | None, str | None]) -> bytes:
        """An episode's ``Guid[]``. Generated ids are ASCII digits (imdb: "tt" and digits):
        the common cases skip escaping; anything else goes through ``Format.inner``."""
        imdb, tmdb, tvdb = ids
        if tmdb is not None and tvdb is not None and tmdb.isalnum() and tvdb.isalnum():
            if imdb is None:
                return self._guid_templates[6] % (tmdb.encode(), tvdb.encode())
            if imdb.isalnum():
                return self._guid_templates[7] % (imdb.encode(), tmdb.encode(), tvdb.encode())
        inner = self.fmt.inner
        present = tuple(inner(v) for v in ids if v is not None)
        if not present:
            return b""
        return (
            self._guid_templates[(imdb is not None) | (tmdb is not None) << 1 | (tvdb is not None) << 2]
            % present
        )

    def media(self, files: tuple[MediaFile, ...]) -> bytes:
        """The ``Media`` group: one element per version, each with its parts. The common
        case (one version, one part) is one ``%`` on a template with both. The two slots
        of a double episode pass the same file, so they show the same Media and Part ids."""
        off = self.sec.media_offset
        if len(files) == 1:
            f = files[0]
            tpl = self._single.get(f[4:9])
            if tpl is None:
                tpl = self._single[f[4:9]] = self._media_template(f, single=True)
            duration = f.duration_ms
            part = f.part_key + off
            return tpl % (
                f.media_key + off,
                duration,
                f.size_bytes * 8 // max(duration, 1),  # kbit/s
                part,
                part,
                duration,
                self.fmt.inner(f.path),
                f.size_bytes,
            )
        versions: dict[int, list[MediaFile]] = {}
        for f in files:
            versions.setdefault(f.media_index, []).append(f)
        fmt = self.fmt
        items = []
        for parts in versions.values():
            first = parts[0]
            media_tpl, part_tpl = self._multi.get(first[4:9]) or self._multi_templates(first)
            rendered = [
                part_tpl
                % (p.part_key + off, p.part_key + off, p.duration_ms, fmt.inner(p.path), p.size_bytes)
                for p in parts
            ]
            duration = sum(p.duration_ms for p in parts)
            size = sum(p.size_bytes for p in parts)
            items.append(
                media_tpl
                % (first.media_key + off, duration, size * 8 // max(duration, 1), fmt.group("Part", rendered))
            )
        return fmt.group("Media", items)

    def _multi_templates(self, f: MediaFile) -> tuple[bytes, bytes]:
        got = self._multi[f[4:9]] = (self._media_template(f, single=False), self._part_template(f))
        return got

    def _media_template(self, f: MediaFile, single: bool) -> bytes:
        """A Media element; ``single``: inside its group and with its one Part (values:
        media id, duration, bitrate, then the Part's), else ending with a Part group."""
        c = _codec(f.video_codec, f.audio_codec, f.height)
        fmt = self.fmt
        t = Template(fmt, "Media").number("id").number("duration").number("bitrate")
        t.const("width", f.width).const("height", f.height).const("aspectRatio", c.aspect)
        t.const("audioChannels", c.audio_channels).const("audioCodec", f.audio_codec)
        t.const("videoCodec", f.video_codec).const("videoResolution", c.resolution)
        t.const("container", f.container).const("videoFrameRate", c.frame_rate)
        t.const("audioProfile", c.audio_profile).const("videoProfile", c.video_profile)
        if not single:
            return t.build(fmt.end("Media", 1))
        part = self._part_template(f)
        if fmt.json:
            return b',"Media":[' + t.build(b',"Part":[' + part + b"]}]")
        return t.build(b">\n" + part + b"</Media>\n")

    def _part_template(self, f: MediaFile) -> bytes:
        """A Part element, complete (values: id, id, duration, file, size). Its key's middle
        number is a change stamp: one for every file is enough here."""
        c = _codec(f.video_codec, f.audio_codec, f.height)
        fmt = self.fmt
        t = Template(fmt, "Part").number("id")
        t.quoted("key", "/library/parts/", b"%d", f"/1700000000/file.{f.container}")
        t.number("duration").text("file").number("size").const("audioProfile", c.audio_profile)
        t.const("container", f.container).const("videoProfile", c.video_profile)
        return t.build(fmt.end("Part", 0) if fmt.json else b"/>\n")


_MARKER = re.compile(rb"@@(\w+)@@")


def episode_skeleton(r: Renderer, shape: tuple[bool, bool, bool, bool, bool]) -> bytes:
    """The episode template of every show of one shape, with ``@@name@@`` markers where
    show and season values go: per season only the markers are substituted (one regex
    pass), instead of escaping ~30 attributes per season again.

    ``shape``: (hidden seasons, legacy agent, has contentRating, detail)."""
    hidden, legacy, rated, detail, _ = shape
    t = Template(r.fmt, "Video").quoted("ratingKey", b"%d").quoted("key", "/library/metadata/", b"%d")
    # Hidden seasons: no parentRatingKey/parentKey/parentGuid/parentTitle (plexapi
    # Episode._loadData; forums.plex.tv/t/.../300553); parentIndex and parentThumb stay.
    if not hidden:
        t.const("parentRatingKey", "@@skey@@")
    t.const("grandparentRatingKey", "@@gkey@@")
    if legacy:
        t.quoted("guid", "@@legacy@@/@@snum@@/", b"%d", "?lang=en")
    else:
        t.quoted("guid", "plex://episode/@@eprefix@@", b"%08x")
    if not hidden:
        t.const("parentGuid", "@@sguid@@")
    t.const("grandparentGuid", "@@gguid@@").const("type", "episode").text("title")
    for name, value in r.section_attrs if detail else ():
        t.const(name, value)
    t.const("grandparentKey", "/library/metadata/@@gkey@@")
    if not hidden:
        t.const("parentKey", "/library/metadata/@@skey@@")
    t.const("grandparentTitle", "@@gtitle@@")
    if not hidden:
        t.const("parentTitle", "@@stitle@@")
    if rated:
        t.const("contentRating", "@@crating@@")
    t.optional()  # summary
    t.number("index").marker("parentIndex", "snum")
    if hidden:
        t.const("skipParent", True)
    t.optional().optional()  # rating, year
    t.quoted("thumb", "/library/metadata/", b"%d/thumb/%d")
    t.const("art", "@@art@@").const("parentThumb", "@@sthumb@@").const("grandparentThumb", "@@thumb@@")
    t.const("grandparentArt", "@@art@@").const("grandparentTheme", "@@theme@@")
    t.optional().optional()  # duration, originallyAvailableAt
    t.number("addedAt").number("updatedAt")
    return t.build(r.fmt.end("Video", 3))  # groups: Media, Director and Writer, Guid


class EpisodeTemplates:
    """One show's episode templates, one per season, with everything but the episode's own
    values baked in (show and season keys, titles, guids, thumbs), escaped once."""

    __slots__ = ("by_season", "ep_key0", "guids", "legacy", "tags")

    def __init__(self, r: Renderer, i: ShowInfo, opts: Options) -> None:
        fmt, show = r.fmt, i.show
        self.ep_key0 = i.ep_key0
        self.legacy = 1 if show.legacy_agent else 0
        skeleton = r.skeleton(
            (show.hidden_seasons, show.legacy_agent, show.content_rating is not None, opts.detail, fmt.json)
        )

        def esc(v: str) -> bytes:  # a value inside quotes, in a %-template
            return fmt.inner(v).replace(b"%", b"%%")

        values = {
            b"gkey": str(i.key).encode(),
            b"legacy": esc(i.legacy_base),
            b"eprefix": esc(i.ep_prefix),
            b"gguid": esc(i.guid),
            b"gtitle": esc(show.title),
            b"crating": esc(show.content_rating or ""),
            b"art": esc(i.art),
            b"thumb": esc(i.thumb),
            b"theme": esc(i.theme),
        }
        self.by_season: dict[int, bytes] = {}  # by season number
        for season in i.seasons:
            values[b"skey"] = str(i.season_keys[season.ordinal]).encode()
            values[b"snum"] = str(season.season_number).encode()
            values[b"sguid"] = esc(i.season_guid(season))
            values[b"stitle"] = esc(season.title)
            values[b"sthumb"] = esc(i.season_thumb(season))
            self.by_season[season.season_number] = _MARKER.sub(lambda m: values.get(m[1], m[0]), skeleton)
        self.tags = r.episode_tags(show) if opts.tags else [b"", b"", b""]
        self.guids = opts.guids and not show.legacy_agent  # legacy agents have no Guid[]


def _guid_templates(fmt: Format) -> list[bytes]:
    """``Guid[]`` templates for each combination of present ids (bit 0 imdb, 1 tmdb, 2 tvdb)."""
    out = []
    for mask in range(8):
        items = [
            Template(fmt, "Guid").quoted("id", f"{scheme}://", b"%s").build(fmt.close("Guid", b""))
            for bit, scheme in enumerate(("imdb", "tmdb", "tvdb"))
            if mask >> bit & 1
        ]
        out.append(fmt.group("Guid", items) if items else b"")
    return out


def _pick(pool: Sequence[str], seed: int, n: int) -> list[str]:
    start = seed % len(pool)
    return [pool[(start + k * 3) % len(pool)] for k in range(n)]


# ============================================================================ queries
class Filter(NamedTuple):
    """One media-query condition, e.g. ``episode.updatedAt>>=1700000000``.

    Operators for integers and dates (official spec, "Media Queries / Operators"):
    ``=`` and ``!=`` (a comma list is an OR), ``>>=`` greater, ``<<=`` less, ``>=``, ``<=``."""

    level: int  # SHOW, SEASON or EPISODE: the item the field belongs to
    field: str  # addedAt, updatedAt, id (the ratingKey) or index
    op: str
    values: tuple[int, ...]

    def test(self, v: int) -> bool:
        op, values = self.op, self.values
        if op == "=":
            return v in values
        if op == "!=":
            return v not in values
        if op == ">>=":
            return v > min(values)
        if op == ">=":
            return v >= min(values)
        if op == "<<=":
            return v < max(values)
        return v <= max(values)

    def decide(self, lo: int, hi: int) -> bool | None:
        """Whether every value in ``lo..hi`` passes (True), none does (False), or unknown."""
        if self.op in ("=", "!="):
            outside = all(v < lo or v > hi for v in self.values)
            if outside:
                return self.op == "!="
            if lo == hi:
                return self.test(lo)
            return None
        if self.test(lo) and self.test(hi):  # the other operators are monotonic
            return True
        if not self.test(lo) and not self.test(hi):
            return False
        return None


class Query(NamedTuple):
    level: int
    filters: tuple[Filter, ...] = ()
    by_key: bool = False  # sort=id: ratingKey order
    desc: bool = False
    limit: int | None = None

    def at(self, level: int) -> tuple[Filter, ...]:
        return tuple(f for f in self.filters if f.level == level)


_FILTER_KEY = re.compile(r"(?:(show|season|episode)\.)?(addedAt|updatedAt|id|index)([!<>=]*)")
_RELATIVE = re.compile(r"([-+])(\d+)(mon|[smhdwy])?")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mon": 30 * 86400, "y": 365 * 86400}
_OPERATORS = frozenset({"=", "!=", ">>=", "<<=", ">=", "<="})


class BadRequest(Exception):
    """Answered with a 400."""


def parse_filters(query: Iterable[tuple[str, str]], default_level: int, now: float) -> tuple[Filter, ...]:
    """The media-query filters of a request. The operator's characters arrive as the end of
    the key (``episode.updatedAt>>=5`` is key ``episode.updatedAt>>``, value ``5``). An
    unscoped field refers to ``default_level`` (DESIGN: the section's default type, shows,
    unless ``sourceType`` says otherwise). Unknown parameters are ignored, as Plex treats
    most of its options as requests."""
    out = []
    for key, value in query:
        m = _FILTER_KEY.fullmatch(key)
        if not m:
            continue
        scope, field, suffix = m.groups()
        op = suffix + "=" if not suffix.endswith("=") else suffix
        if op not in _OPERATORS:
            raise BadRequest(f"unknown operator {op!r} for {field}")
        values = tuple(_filter_value(v, field, now) for v in value.split(","))
        out.append(Filter(_LEVELS[scope] if scope else default_level, field, op, values))
    return tuple(out)


def _filter_value(v: str, field: str, now: float) -> int:
    v = v.strip()
    m = _RELATIVE.fullmatch(v)
    if m and field in ("addedAt", "updatedAt") and (m.group(3) or v[0] in "+-"):
        # relative dates: "-3y" is three years ago, "+N" N seconds from now (spec "Relative Values")
        sign, n, unit = m.groups()
        delta = int(n) * _UNITS[unit or "s"]
        return int(now) + (delta if sign == "+" else -delta)
    try:
        return int(v)
    except ValueError:
        raise BadRequest(f"bad value {v!r} for {field}") from None


def parse_sort(sort: str | None) -> tuple[bool, bool]:
    """(by ratingKey, descending). ``id``/``ratingKey`` sort by key; ``titleSort``/``title``
    and anything unknown keep the default (title) order; ``:desc`` reverses."""
    if not sort:
        return False, False
    first = sort.split(",")[0]
    name, _, features = first.partition(":")
    name = name.rsplit(".", 1)[-1]
    return name in ("id", "ratingKey"), "desc" in features.split(":")


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        raw = request.headers.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if value < 0:
        raise BadRequest(f"{name} must not be negative")
    return value


class Page(NamedTuple):
    start: int
    size: int | None  # None: everything from start
    paged: bool  # the client sent a size: the container states offset and totalSize

    def stop(self, total: int) -> int:
        return total if self.size is None else min(total, self.start + self.size)


# ============================================================================ the server
class PlexServer(EmulatedServer):
    """An emulated Plex Media Server: one TV section per library, plus an empty Movies one."""

    kind = "plex"
    public_paths: ClassVar[frozenset[str]] = frozenset({"/identity"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # EmulatedServer's arguments
        super().__init__(*args, **kwargs)
        self.machine_identifier = (
            f"{mix(self.seed, 71):016x}{mix(self.seed, 72):016x}{mix(self.seed, 73) >> 32:08x}"
        )
        self.friendly_name = "Emulated Plex"
        self.movie_uuid = f"{mix(self.seed, 75) >> 32:08x}-0000-4000-8000-000000000001"
        self.sections: dict[int, Section] = {}
        offset = 0
        for n, lib in enumerate(self.libraries):
            key = n + 2
            u = f"{mix(self.seed, 74, key):016x}{mix(self.seed, 76, key):016x}"
            uuid = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:32]}"
            self.sections[key] = Section(key, lib.name, lib.library, offset, n * 10**13, uuid)
            offset += lib.library.max_rating_key
        self._info: dict[int, OrderedDict[int, ShowInfo]] = {k: OrderedDict() for k in self.sections}
        self._renderers: dict[tuple[int, bool], Renderer] = {}
        self._counts: OrderedDict[tuple[int, Query], list[int]] = OrderedDict()
        self._season_prefix: dict[tuple[int, bool], list[int]] = {}
        self._latest: dict[int, dict[tuple[int, str], int]] = {}

    # ------------------------------------------------------------------ plumbing
    def token_of(self, request: web.Request) -> str | None:
        return request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token")

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        # As recorded (watchstate fixture sections_get_401): HTML, whatever was asked for.
        return web.Response(
            status=401, body=_HTML_401, content_type="text/html", headers={"X-Plex-Protocol": "1.0"}
        )

    def add_routes(self, router: web.UrlDispatcher) -> None:
        get = router.add_get
        get("/", self._route(self._root))
        get("/identity", self._route(self._identity))
        get("/library", self._route(self._library))
        get("/library/sections", self._route(self._sections))
        get("/library/sections/all", self._route(self._sections))  # the official spec's path
        get("/library/sections/{section}", self._route(self._section))
        get("/library/sections/{section}/all", self._route(self._section_all))
        get("/library/sections/{section}/allLeaves", self._route(self._section_leaves))
        get("/library/sections/{section}/collections", self._route(self._collections))
        get("/library/metadata/{ids}", self._route(self._metadata))
        get("/library/metadata/{id}/children", self._route(self._children))
        get("/library/metadata/{id}/allLeaves", self._route(self._all_leaves))

    def _route(
        self, fn: Callable[[web.Request], web.Response]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                return fn(request)
            except BadRequest as exc:
                text = str(exc)
                if text == MISSING_SIZE:
                    return self._plain(400, text.encode(), "text/plain")
                return self._plain(400, _HTML_400, "text/html")

        return handler

    @staticmethod
    def _plain(status: int, body: bytes, content_type: str) -> web.Response:
        return web.Response(
            status=status, body=body, content_type=content_type, headers={"X-Plex-Protocol": "1.0"}
        )

    @staticmethod
    def _format(request: web.Request) -> Format:
        return JSON if "application/json" in request.headers.get("Accept", "") else XML

    def _answer(self, fmt: Format, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=body,
            content_type=fmt.content_type,
            charset="utf-8" if not fmt.json else None,
            headers={"X-Plex-Protocol": "1.0", **(headers or {})},
        )

    def _section_of(self, request: web.Request) -> Section | None:
        """The TV section named in the path; None for the Movies section; 404 otherwise."""
        raw = request.match_info["section"]
        if raw == str(_MOVIE_SECTION):
            return None
        try:
            return self.sections[int(raw)]
        except (ValueError, KeyError):
            raise web.HTTPNotFound() from None

    def info(self, sec: Section, show_index: int) -> ShowInfo:
        """A show's repeated values (an LRU: a scan of a million episodes passes 15k shows)."""
        cache = self._info[sec.key]
        got = cache.get(show_index)
        if got is None:
            got = cache[show_index] = ShowInfo(sec, sec.library.shows[show_index])
            if len(cache) > 4096:
                cache.popitem(last=False)
        else:
            cache.move_to_end(show_index)
        return got

    def renderer(self, sec: Section, fmt: Format) -> Renderer:
        key = (sec.key, fmt.json)
        got = self._renderers.get(key)
        if got is None:
            got = self._renderers[key] = Renderer(sec, fmt, lambda i: self.info(sec, i))
        return got

    @staticmethod
    def _options(request: web.Request, detail: bool = False) -> Options:
        q = request.query
        excluded = {e.strip() for e in q.get("excludeElements", "").split(",")}
        return Options(
            guids=q.get("includeGuids") == "1",
            detail=detail,
            media="Media" not in excluded,
            tags=not excluded & {"Genre", "Role", "Director", "Writer"},
            summary="summary" not in {f.strip() for f in q.get("excludeFields", "").split(",")},
        )

    def _page(self, request: web.Request, required: bool) -> Page:
        start = _int_param(request, "X-Plex-Container-Start") or 0
        size = _int_param(request, "X-Plex-Container-Size")
        if size is None:
            if required:  # PMS >= 1.28 warned, newer ones answer 400 (server-apis.md)
                raise BadRequest(MISSING_SIZE)
            size_or_all: int | None = None
        else:
            size_or_all = min(size, MAX_PAGE)
        cap = self.controls.page_cap
        if cap is not None:  # a busy server may silently return fewer items than asked
            size_or_all = cap if size_or_all is None else min(size_or_all, cap)
        if request.method == "HEAD":  # the headers carry the count; skip rendering items
            size_or_all = 0
        return Page(start, size_or_all, size is not None)

    @staticmethod
    def _paging_headers(offset: int, total: int) -> dict[str, str]:
        return {"X-Plex-Container-Start": str(offset), "X-Plex-Container-Total-Size": str(total)}

    # ------------------------------------------------------------------ server-level
    def _root(self, request: web.Request) -> web.Response:
        """``/``: what python-plexapi's PlexServer reads (home-assistant plex_server_base.xml)."""
        fmt = self._format(request)
        keys = "activities butler channels clients diagnostics hubs library media metadata playlists search"
        keys += " server servers statistics system"
        dirs = [fmt.element("Directory", [("count", 1), ("key", k), ("title", k)]) for k in keys.split()]
        pairs: list[tuple[str, Scalar | None]] = [
            ("size", len(dirs)),
            ("allowCameraUpload", False),
            ("allowChannelAccess", True),
            ("allowMediaDeletion", True),
            ("allowSharing", True),
            ("allowSync", True),
            ("allowTuners", False),
            ("backgroundProcessing", True),
            ("certificate", False),
            ("companionProxy", True),
            ("countryCode", "usa"),
            ("diagnostics", "logs,databases,streaminglogs"),
            ("eventStream", True),
            ("friendlyName", self.friendly_name),
            ("hubSearch", True),
            ("itemClusters", True),
            ("livetv", 7),
            ("machineIdentifier", self.machine_identifier),
            ("mediaProviders", True),
            ("multiuser", True),
            ("myPlex", True),
            ("myPlexMappingState", "mapped"),
            ("myPlexSigninState", "ok"),
            ("myPlexSubscription", False),
            ("myPlexUsername", "emulator@example.invalid"),
            ("offlineTranscode", 1),
            ("ownerFeatures", "collections,content_filter,federated-auth,home,item_clusters,webhooks"),
            ("platform", "Linux"),
            ("platformVersion", "6.1.0"),
            ("pluginHost", True),
            ("pushNotifications", False),
            ("readOnlyLibraries", False),
            ("streamingBrainABRVersion", 3),
            ("streamingBrainVersion", 2),
            ("sync", True),
            ("transcoderActiveVideoSessions", 0),
            ("transcoderAudio", True),
            ("transcoderLyrics", True),
            ("transcoderPhoto", True),
            ("transcoderSubtitles", True),
            ("transcoderVideo", True),
            ("transcoderVideoBitrates", "64,96,208,320,720,1500,2000,3000,4000,8000,10000,12000,20000"),
            ("transcoderVideoQualities", "0,1,2,3,4,5,6,7,8,9,10,11,12"),
            ("transcoderVideoResolutions", "128,128,160,240,320,480,768,720,720,1080,1080,1080,1080"),
            ("updatedAt", int(self.controls.now())),
            ("updater", True),
            ("version", VERSION),
            ("voiceSearch", True),
        ]
        return self._answer(fmt, fmt.document(pairs, [("Directory", dirs)]))

    def _identity(self, request: web.Request) -> web.Response:
        """Public: no token needed (plex-spec-lh ``/identity`` has ``security: - {}``)."""
        fmt = self._format(request)
        pairs: Attrs = [
            ("size", 0),
            ("claimed", True),
            ("machineIdentifier", self.machine_identifier),
            ("version", VERSION),
        ]
        return self._answer(fmt, fmt.document(pairs, []))

    def _library(self, request: web.Request) -> web.Response:
        fmt = self._format(request)
        dirs = [
            fmt.element("Directory", [("key", k), ("title", t)])
            for k, t in (
                ("sections", "Library Sections"),
                ("recentlyAdded", "Recently Added Content"),
                ("onDeck", "On Deck Content"),
            )
        ]
        pairs: Attrs = [
            ("size", len(dirs)),
            ("allowSync", False),
            ("art", "/:/resources/library-art.png"),
            ("content", ""),
            ("identifier", IDENTIFIER),
            ("mediaTagPrefix", MEDIA_TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("title1", "Plex Library"),
            ("title2", ""),
        ]
        return self._answer(fmt, fmt.document(pairs, [("Directory", dirs)]))

    def _sections(self, request: web.Request) -> web.Response:
        """``/library/sections``: the TV sections and an empty Movies section."""
        fmt = self._format(request)
        dirs = [self._movie_section(fmt)] + [self._tv_section(fmt, s) for s in self.sections.values()]
        # as watchstate's recorded sections_get_200
        pairs: Attrs = [("size", len(dirs)), ("allowSync", False), ("title1", "Plex Library")]
        return self._answer(fmt, fmt.document(pairs, [("Directory", dirs)]))

    def _tv_section(self, fmt: Format, sec: Section) -> bytes:
        shows = sec.library.shows
        updated = max((s.updated_at for s in shows), default=0)
        added = max((s.added_at for s in shows), default=0)
        return self._section_dir(
            fmt,
            key=sec.key,
            kind="show",
            title=sec.title,
            agent="tv.plex.agents.series",
            scanner="Plex TV Series",
            uuid=sec.uuid,
            updated=updated,
            scanned=max(updated, added),
            changed=sec.max_key,  # looks like a change counter in real answers
            path=f"/data/TV/{sec.title}" if sec.key > 2 else "/data/TV",
        )

    def _movie_section(self, fmt: Format) -> bytes:
        return self._section_dir(
            fmt,
            key=_MOVIE_SECTION,
            kind="movie",
            title="Movies",
            agent="tv.plex.agents.movie",
            scanner="Plex Movie",
            uuid=self.movie_uuid,
            updated=1_730_000_000,
            scanned=1_730_000_000,
            changed=1,
            path="/data/Movies",
        )

    @staticmethod
    def _section_dir(
        fmt: Format,
        *,
        key: int,
        kind: str,
        title: str,
        agent: str,
        scanner: str,
        uuid: str,
        updated: int,
        scanned: int,
        changed: int,
        path: str,
    ) -> bytes:
        art, thumb = _section_art(kind)
        pairs: list[tuple[str, Scalar | None]] = [
            ("allowSync", True),
            ("art", art),
            ("composite", f"/library/sections/{key}/composite/{scanned}"),
            ("filters", True),
            ("refreshing", False),
            ("thumb", thumb),
            ("key", str(key)),
            ("type", kind),
            ("title", title),
            ("agent", agent),
            ("scanner", scanner),
            ("language", "en-US"),
            ("uuid", uuid),
            ("updatedAt", updated),
            ("createdAt", 1_600_000_000),
            ("scannedAt", scanned),
            ("content", True),
            ("directory", True),
            ("contentChangedAt", changed),
            ("hidden", 0),  # an int in the recorded answers, though the spec says boolean
        ]
        location = fmt.element("Location", [("id", key), ("path", path)])
        return fmt.element("Directory", pairs, [("Location", [location])])

    def _section(self, request: web.Request) -> web.Response:
        """``/library/sections/{id}``: the section's menu of listings."""
        fmt = self._format(request)
        sec = self._section_of(request)
        key = sec.key if sec else _MOVIE_SECTION
        kind = "show" if sec else "movie"
        art, thumb = _section_art(kind)
        entries = [
            ("all", "All Shows" if sec else "All Movies"),
            ("unwatched", "Unplayed"),
            ("newest", "Recently Released"),
            ("recentlyAdded", "Recently Added"),
            ("onDeck", "On Deck"),
            ("collection", "By Collection"),
            ("firstCharacter", "By Starting Letter"),
            ("folder", "By Folder"),
        ]
        dirs = [fmt.element("Directory", [("key", k), ("title", t)]) for k, t in entries]
        pairs: Attrs = [
            ("size", len(dirs)),
            ("allowSync", True),
            ("art", art),
            ("content", "secondary"),
            ("identifier", IDENTIFIER),
            ("librarySectionID", key),
            ("mediaTagPrefix", MEDIA_TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("thumb", thumb),
            ("title1", sec.title if sec else "Movies"),
            ("viewGroup", "secondary"),
            ("viewMode", 65592),
        ]
        return self._answer(fmt, fmt.document(pairs, [("Directory", dirs)]))

    # ------------------------------------------------------------------ section listings
    def _section_all(self, request: web.Request) -> web.Response:
        """``/library/sections/{id}/all?type=2|3|4``: the library-wide listings."""
        page = self._page(request, required=True)
        q = request.query
        try:
            level = int(q.get("type", SHOW))
            default_level = int(q.get("sourceType", SHOW))
        except ValueError:
            raise BadRequest("type must be an integer") from None
        if default_level not in (SHOW, SEASON, EPISODE):
            default_level = SHOW
        return self._listing(request, page, level, default_level)

    def _section_leaves(self, request: web.Request) -> web.Response:
        """``/library/sections/{id}/allLeaves``: every episode (PlexKodiConnect's way)."""
        return self._listing(request, self._page(request, required=False), EPISODE, SHOW)

    def _listing(self, request: web.Request, page: Page, level: int, default_level: int) -> web.Response:
        fmt = self._format(request)
        sec = self._section_of(request)
        q = request.query
        by_key, desc = parse_sort(q.get("sort"))
        limit = _int_param(request, "limit")
        filters = parse_filters(q.items(), default_level, self.controls.now())
        query = Query(level, filters, by_key, desc, limit)
        if sec is None or level not in (SHOW, SEASON, EPISODE):
            total, items = 0, list[object]()
        else:
            total, items = self.select(sec, query, page.start, page.size)
        rendered = self._render(fmt, sec, level, items, self._options(request)) if sec else []
        listed(request, len(rendered))
        pairs = self._listing_container(sec, len(rendered), total, page.start)
        groups: list[Group] = []
        if q.get("includeMeta") == "1":
            groups.append(("Meta", self._meta(fmt, sec.key if sec else _MOVIE_SECTION, sec is not None)))
        groups.append(("Metadata", rendered))
        return self._answer(fmt, fmt.document(pairs, groups), self._paging_headers(page.start, total))

    def _listing_container(self, sec: Section | None, size: int, total: int, offset: int) -> Attrs:
        """As home-assistant's recorded count-only answer, in its attribute order. Every
        listing type says "All Shows"/viewGroup show there and in watchstate's type=4 page."""
        art, thumb = _section_art("show" if sec else "movie")
        return [
            ("size", size),
            ("totalSize", total),
            ("allowSync", True),
            ("art", art),
            ("identifier", IDENTIFIER),
            ("librarySectionID", sec.key if sec else _MOVIE_SECTION),
            ("librarySectionTitle", sec.title if sec else "Movies"),
            ("librarySectionUUID", sec.uuid if sec else self.movie_uuid),
            ("mediaTagPrefix", MEDIA_TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("nocache", True),
            ("offset", offset),
            ("sortAsc", True),
            ("thumb", thumb),
            ("title1", sec.title if sec else "Movies"),
            ("title2", "All Shows" if sec else "All Movies"),
            ("viewGroup", "show" if sec else "movie"),
            ("viewMode", 65592),
        ]

    def _collections(self, request: web.Request) -> web.Response:
        """No collections; with ``includeMeta=1`` the collection type (python-plexapi asks)."""
        fmt = self._format(request)
        sec = self._section_of(request)
        page = self._page(request, required=False)
        pairs = self._listing_container(sec, 0, 0, page.start)
        groups: list[Group] = []
        if request.query.get("includeMeta") == "1":
            key = sec.key if sec else _MOVIE_SECTION
            t = fmt.element(
                "Type",
                [
                    ("key", f"/library/sections/{key}/collections"),
                    ("type", "collection"),
                    ("title", "Collections"),
                    ("active", False),
                ],
            )
            groups.append(("Meta", _meta_element(fmt, [t], [])))
        return self._answer(fmt, fmt.document(pairs, groups), self._paging_headers(page.start, 0))

    def _meta(self, fmt: Format, key: int, tv: bool) -> bytes:
        """``includeMeta=1``: the types, sorts and fields python-plexapi validates searches
        against (home-assistant library_movies_filtertypes.xml); operators per the spec."""
        types = []
        levels = (("show", "TV Shows", SHOW), ("season", "Seasons", SEASON), ("episode", "Episodes", EPISODE))
        for kind, title, number in levels if tv else (("movie", "Movies", 1),):
            prefix = "" if kind in ("show", "movie") else f"{kind}."
            sorts = [
                fmt.element(
                    "Sort",
                    [
                        ("default", "asc"),
                        ("defaultDirection", "asc"),
                        ("descKey", f"{prefix}titleSort:desc"),
                        ("key", f"{prefix}titleSort"),
                        ("title", "Title"),
                    ],
                ),
                fmt.element(
                    "Sort",
                    [
                        ("defaultDirection", "desc"),
                        ("descKey", f"{prefix}addedAt:desc"),
                        ("key", f"{prefix}addedAt"),
                        ("title", "Date Added"),
                    ],
                ),
            ]
            fields = [
                fmt.element("Field", [("key", f"{prefix}title"), ("title", "Title"), ("type", "string")]),
                fmt.element(
                    "Field", [("key", f"{prefix}addedAt"), ("title", "Date Added"), ("type", "date")]
                ),
            ]
            pairs: Attrs = [
                ("key", f"/library/sections/{key}/all?type={number}"),
                ("type", kind),
                ("title", title),
                ("active", number == SHOW),
            ]
            types.append(fmt.element("Type", pairs, [("Sort", sorts), ("Field", fields)]))
        types.append(
            fmt.element(
                "Type",
                [
                    ("key", f"/library/sections/{key}/folder"),
                    ("type", "folder"),
                    ("title", "Folders"),
                    ("active", False),
                ],
            )
        )
        operators = {
            "integer": (
                ("=", "is"),
                ("!=", "is not"),
                (">>=", "is greater than"),
                ("<<=", "is less than"),
                ("<=", "is less than or equal to"),
                (">=", "is greater than or equal to"),
            ),
            "date": (("=", "is"), ("!=", "is not"), (">>=", "is after"), ("<<=", "is before")),
            "string": (
                ("=", "contains"),
                ("!=", "does not contain"),
                ("==", "is"),
                ("!==", "is not"),
                ("<=", "begins with"),
                (">=", "ends with"),
            ),
            "boolean": (("=", "is true"), ("!=", "is false")),
            "tag": (("=", "is"), ("!=", "is not")),
        }
        field_types = [
            fmt.element(
                "FieldType",
                [("type", t)],
                [("Operator", [fmt.element("Operator", [("key", k), ("title", ti)]) for k, ti in ops])],
            )
            for t, ops in operators.items()
        ]
        return _meta_element(fmt, types, field_types)

    # ------------------------------------------------------------------ selection
    def select(self, sec: Section, q: Query, start: int, size: int | None) -> tuple[int, list[object]]:
        """(total, ``size`` items from ``start``) of a listing: Show, (Show, Season) or Episode
        items; ``size`` None: all of them."""
        total = self._total(sec, q)
        if q.limit is not None:  # "the minimum of the limit and the actual total" (spec, Pagination)
            shown = min(total, q.limit)
        else:
            shown = total
        stop = shown if size is None else min(start + size, shown)
        if start >= stop:
            return shown, []
        if q.desc:
            items = self._range(sec, q, total - stop, total - start)
            items.reverse()
        else:
            items = self._range(sec, q, start, stop)
        return shown, items

    def _total(self, sec: Section, q: Query) -> int:
        lib = sec.library
        if q.filters:
            if self._nothing_after(sec, q):
                return 0
            return self._filtered_prefix(sec, q)[-1]
        if q.level == SHOW:
            return len(lib.shows)
        if q.level == SEASON:
            return lib.season_total()
        return lib.episode_total(View.PLEX)

    def _range(self, sec: Section, q: Query, start: int, stop: int) -> list[object]:
        lib = sec.library
        order = lib.order(q.by_key)
        if q.filters:
            prefix = self._filtered_prefix(sec, q)
        elif q.level == SHOW:
            return [lib.shows[i] for i in order[start:stop]]
        elif q.level == EPISODE:
            return list(lib.episodes(View.PLEX, start, stop, by_key=q.by_key))
        else:
            prefix = self._season_prefixes(sec, q.by_key)
        out: list[object] = []
        pos = bisect.bisect_right(prefix, start) - 1
        at = start
        while at < stop and pos < len(order):
            if prefix[pos + 1] > at:
                show = lib.shows[order[pos]]
                items = self._show_items(sec, show, q)
                first = at - prefix[pos]
                take = items[first : first + (stop - at)]
                out.extend(take)
                at += len(take)
            pos += 1
        return out

    def _nothing_after(self, sec: Section, q: Query) -> bool:
        """A date threshold after every item's date (the usual nightly probe when nothing
        changed) is answered from the latest dates, computed once, without a scan."""
        return any(
            f.op in (">>=", ">=")
            and f.field in ("addedAt", "updatedAt")
            and not f.test(self._latest_date(sec, f.level, f.field))
            for f in q.filters
        )

    def _latest_date(self, sec: Section, level: int, field: str) -> int:
        latest = self._latest.setdefault(sec.key, {})
        got = latest.get((level, field))
        if got is None:
            lib = sec.library
            if level == SHOW:
                values: Iterable[int] = (
                    s.added_at if field == "addedAt" else s.updated_at for s in lib.shows
                )
            elif level == SEASON:
                values = (s.added_at if field == "addedAt" else s.updated_at for s in lib.seasons())
            else:  # bounds: episodes are not generated for this
                at = 1 if field == "addedAt" else 3
                values = (episode_time_bounds(s)[at] for s in lib.shows)
            got = latest[(level, field)] = max(values, default=0)
        return got

    def _season_prefixes(self, sec: Section, by_key: bool) -> list[int]:
        key = (sec.key, by_key)
        got = self._season_prefix.get(key)
        if got is None:
            lib = sec.library
            got = [0]
            for i in lib.order(by_key):
                got.append(got[-1] + len(lib.shows[i].season_sizes))
            self._season_prefix[key] = got
        return got

    def _filtered_prefix(self, sec: Section, q: Query) -> list[int]:
        """Matching items per show, summed in listing order; cached per query, as paging
        through a filtered listing asks the same query once per page."""
        key = (sec.key, q._replace(desc=False, limit=None))
        got = self._counts.get(key)
        if got is None:
            lib = sec.library
            got = [0]
            for i in lib.order(q.by_key):
                got.append(got[-1] + self._show_count(sec, lib.shows[i], q))
            self._counts[key] = got
            if len(self._counts) > 16:
                self._counts.popitem(last=False)
        else:
            self._counts.move_to_end(key)
        return got

    # per show ------------------------------------------------------------
    def _show_passes(self, sec: Section, show: Show, filters: tuple[Filter, ...]) -> bool:
        values = {
            "addedAt": show.added_at,
            "updatedAt": show.updated_at,
            "id": sec.show_key(show),
            "index": 1,
        }
        return all(f.test(values[f.field]) for f in filters)

    @staticmethod
    def _season_passes(i: ShowInfo, season: Season, filters: tuple[Filter, ...]) -> bool:
        values = {
            "addedAt": season.added_at,
            "updatedAt": season.updated_at,
            "id": i.season_keys[season.ordinal],
            "index": season.season_number,
        }
        return all(f.test(values[f.field]) for f in filters)

    @staticmethod
    def _episode_passes(i: ShowInfo, ep: Episode, filters: tuple[Filter, ...]) -> bool:
        for f in filters:
            field = f.field
            if field == "updatedAt":
                v = ep.updated_at
            elif field == "addedAt":
                v = ep.added_at
            elif field == "id":
                v = i.ep_key0 + ep.ordinal
            else:
                v = ep.episode_number
            if not f.test(v):
                return False
        return True

    @staticmethod
    def _episodes_decided(sec: Section, show: Show, filters: tuple[Filter, ...]) -> bool | None:
        """Whether all (True) or none (False) of a show's episodes pass, from bounds alone:
        incremental filters skip most shows without generating their episodes."""
        a0, a1, u0, u1 = episode_time_bounds(show)
        key0 = sec.show_key(show) + 1 + len(show.season_sizes)
        ranges = {
            "addedAt": (a0, a1),
            "updatedAt": (u0, u1),
            "id": (key0, key0 + max(show.slot_count - 1, 0)),
            "index": (1, max((n for _, n in show.season_sizes), default=1)),
        }
        verdict: bool | None = True
        for f in filters:
            d = f.decide(*ranges[f.field])
            if d is False:
                return False
            if d is None:
                verdict = None
        return verdict

    def _show_count(self, sec: Section, show: Show, q: Query) -> int:
        if not self._show_passes(sec, show, q.at(SHOW)):
            return 0
        f3, f4 = q.at(SEASON), q.at(EPISODE)
        decided = self._episodes_decided(sec, show, f4) if f4 else True
        if decided is False:
            return 0
        if not f3 and decided is True:  # the counts are known without the items
            if q.level == SHOW:
                return 1
            if q.level == EPISODE:
                return sec.library.count(show, View.PLEX)
            if not f4:
                return len(show.season_sizes)
        i = self.info(sec, show.index)
        seasons = [s for s in i.seasons if self._season_passes(i, s, f3)]
        if decided is True:
            with_episodes = [s for s in seasons if i.season_counts[s.ordinal]]
            if q.level == SHOW:
                return 1 if with_episodes else 0
            if q.level == SEASON:
                return len(seasons) if not f4 else len(with_episodes)
            return sum(i.season_counts[s.ordinal] for s in seasons)
        return len(self._show_items(sec, show, q))

    def _show_items(self, sec: Section, show: Show, q: Query) -> Sequence[object]:
        """The show's items that match, in listing order."""
        i = self.info(sec, show.index)
        if q.filters and not self._show_passes(sec, show, q.at(SHOW)):
            return []
        f3, f4 = q.at(SEASON), q.at(EPISODE)
        if q.level == EPISODE:
            view = sec.library.view_of(show, View.PLEX)
            if not f3 and not f4:
                return view
            ok = {s.season_number for s in i.seasons if self._season_passes(i, s, f3)}
            return [e for e in view if e.season_number in ok and self._episode_passes(i, e, f4)]
        seasons = [s for s in i.seasons if self._season_passes(i, s, f3)]
        if f4:
            decided = self._episodes_decided(sec, show, f4)
            if decided is False:
                seasons = []
            elif decided is None:
                hit = {
                    e.season_number
                    for e in sec.library.view_of(show, View.PLEX)
                    if self._episode_passes(i, e, f4)
                }
                seasons = [s for s in seasons if s.season_number in hit]
            else:
                seasons = [s for s in seasons if i.season_counts[s.ordinal]]
        if q.level == SHOW:
            return [show] if seasons or not (f3 or f4) else []
        return [(show, s) for s in seasons]

    def _render(
        self, fmt: Format, sec: Section, level: int, items: list[object], opts: Options
    ) -> list[bytes]:
        r = self.renderer(sec, fmt)
        if level == EPISODE:
            return r.episodes(cast(list[Episode], items), opts)
        if level == SEASON:
            return [r.season(show, season, opts) for show, season in cast(list[tuple[Show, Season]], items)]
        return [r.show(show, opts) for show in cast(list[Show], items)]

    # ------------------------------------------------------------------ metadata
    def lookup(self, key: int) -> tuple[Section, str, Show, object] | None:
        """What a ratingKey names: (section, kind, show, Show | Season | Episode)."""
        for sec in self.sections.values():
            if not sec.min_key <= key < sec.max_key:
                continue
            found = sec.library.plex_lookup(key - sec.key_offset)
            if found is None:
                return None
            kind, show, ordinal = found
            if kind == "show":
                return sec, kind, show, show
            if kind == "season":
                return sec, kind, show, self.info(sec, show.index).seasons[ordinal]
            view = sec.library.view_of(show, View.PLEX)
            at = bisect.bisect_left(view, ordinal, key=lambda e: e.ordinal)
            if at < len(view) and view[at].ordinal == ordinal:  # virtual slots do not exist on Plex
                return sec, kind, show, view[at]
            return None
        return None

    def _ids(self, raw: str) -> list[int]:
        try:
            return list(dict.fromkeys(int(k) for k in raw.split(",") if k.strip()))
        except ValueError:
            raise BadRequest("ratingKeys are integers") from None

    def _metadata(self, request: web.Request) -> web.Response:
        """``/library/metadata/{id[,id...]}``: missing ids are skipped; all missing is a 404."""
        fmt = self._format(request)
        # a detail fetch carries Guid[] without includeGuids (python-plexapi reloads items
        # with /library/metadata/{id} and still finds their guids)
        opts = self._options(request, detail=True)._replace(guids=True)
        found = [hit for k in self._ids(request.match_info["ids"]) if (hit := self.lookup(k)) is not None]
        if not found:
            return self._plain(404, _HTML_404, "text/html")
        items: list[bytes] = []
        for sec, kind, show, item in found:
            r = self.renderer(sec, fmt)
            if kind == "show":
                items.append(r.show(show, opts))
            elif kind == "season":
                items.append(r.season(show, cast(Season, item), opts))
            else:
                items.extend(r.episodes([cast(Episode, item)], opts))
        listed(request, len(items))
        sec = found[0][0]
        pairs: Attrs = [
            ("size", len(items)),
            ("allowSync", True),
            ("identifier", IDENTIFIER),
            ("librarySectionID", sec.key),
            ("librarySectionTitle", sec.title),
            ("librarySectionUUID", sec.uuid),
            ("mediaTagPrefix", MEDIA_TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
        ]
        return self._answer(fmt, fmt.document(pairs, [("Metadata", items)]))

    def _one(self, request: web.Request) -> tuple[Section, str, Show, object]:
        ids = self._ids(request.match_info["id"])
        hit = self.lookup(ids[0]) if len(ids) == 1 else None
        if hit is None:
            raise web.HTTPNotFound()
        return hit

    def _children(self, request: web.Request) -> web.Response:
        """A show's seasons, after the synthetic "All episodes" directory unless
        ``excludeAllLeaves=1``; a season's episodes. ``index=N`` picks one (python-plexapi)."""
        sec, kind, show, item = self._one(request)
        index = _int_param(request, "index")
        if kind == "show":
            i = self.info(sec, show.index)
            seasons = [s for s in i.seasons if index is None or s.season_number == index]
            lead: list[object] = [] if request.query.get("excludeAllLeaves") == "1" else ["all"]
            items = lead + [(show, s) for s in seasons]
            return self._hierarchy(request, sec, show, season=None, items=items, leaves=False)
        if kind == "season":
            season = cast(Season, item)
            eps = self._season_episodes(sec, show, season)
            if index is not None:
                eps = [e for e in eps if e.episode_number == index]
            return self._hierarchy(request, sec, show, season=season, items=eps, leaves=False)
        return self._hierarchy(request, sec, show, season=None, items=[], leaves=True)

    def _all_leaves(self, request: web.Request) -> web.Response:
        """A show's or a season's episodes (an episode has none)."""
        sec, kind, show, item = self._one(request)
        if kind == "show":
            items: Sequence[object] = sec.library.view_of(show, View.PLEX)
            return self._hierarchy(request, sec, show, season=None, items=items, leaves=True)
        if kind == "season":
            season = cast(Season, item)
            items = self._season_episodes(sec, show, season)
            return self._hierarchy(request, sec, show, season=season, items=items, leaves=True)
        return self._hierarchy(request, sec, show, season=None, items=[], leaves=True)

    @staticmethod
    def _season_episodes(sec: Section, show: Show, season: Season) -> list[Episode]:
        number = season.season_number
        return [e for e in sec.library.view_of(show, View.PLEX) if e.season_number == number]

    def _hierarchy(
        self,
        request: web.Request,
        sec: Section,
        show: Show,
        *,
        season: Season | None,
        items: Sequence[object],
        leaves: bool,
    ) -> web.Response:
        """A page of a show's or a season's children, in the container shape recorded in
        plex-api-rs tv_seasons.json / tv_episodes.json (hoisted keys are numbers there)."""
        fmt = self._format(request)
        page = self._page(request, required=False)
        opts = self._options(request)
        total = len(items)
        window = items[page.start : page.stop(total)]
        r = self.renderer(sec, fmt)
        i = self.info(sec, show.index)
        directories: list[bytes] = []
        metadata: list[bytes] = []
        episodes = [e for e in window if isinstance(e, Episode)]
        if episodes:
            metadata = r.episodes(episodes, opts)
        for it in window:
            if isinstance(it, Episode):  # a NamedTuple: test it before seasons' tuples
                continue
            if it == "all":
                directories.append(r.all_leaves(show))
            else:
                metadata.append(r.season(show, cast(tuple[Show, Season], it)[1], opts))
        listed(request, len(directories) + len(metadata))
        art, thumb = i.art, i.thumb
        pairs: list[tuple[str, Scalar | None]] = [("size", len(directories) + len(metadata))]
        if page.paged:
            pairs += [("totalSize", total), ("offset", page.start)]
        pairs += [("allowSync", True), ("art", art), ("banner", i.banner)]
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
        pairs += [
            ("identifier", IDENTIFIER),
            ("key", str(key)),
            ("librarySectionID", sec.key),
            ("librarySectionTitle", sec.title),
            ("librarySectionUUID", sec.uuid),
            ("mediaTagPrefix", MEDIA_TAG_PREFIX),
            ("mediaTagVersion", MEDIA_TAG_VERSION),
            ("nocache", True),
        ]
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
                ("thumb", thumb),
                ("title1", sec.title if not leaves else show.title),
            ]
            pairs += [("title2", show.title if not leaves else "All episodes")]
            pairs += [
                ("viewGroup", "episode" if leaves else "season"),
                ("viewMode", 65592 if leaves else 65593),
            ]
        groups: list[Group] = [("Directory", directories), ("Metadata", metadata)]
        if not fmt.json:  # in XML the children keep their order: the directory comes first
            groups = [("Metadata", directories + metadata)]
        return self._answer(fmt, fmt.document(pairs, groups), self._paging_headers(page.start, total))


def _meta_element(fmt: Format, types: list[bytes], field_types: list[bytes]) -> bytes:
    """``Meta``: an element without attributes in XML, an object in JSON."""
    if fmt.json:
        body = b'{"Type":[' + b",".join(types) + b"]"
        return body + (b',"FieldType":[' + b",".join(field_types) + b"]}" if field_types else b"}")
    return b"<Meta>\n" + b"".join(types) + b"".join(field_types) + b"</Meta>\n"


def _section_art(kind: str) -> tuple[str, str]:
    return f"/:/resources/{kind}-fanart.jpg", f"/:/resources/{kind}.png"
