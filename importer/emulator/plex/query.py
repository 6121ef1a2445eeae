"""What a request asks for, read from its query string and headers: the listing's level,
media-query filters, sort and limit, the page, the format and what to include."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, NamedTuple

from aiohttp import web

from importer.emulator.plex.formats import JSON, XML, Format

SHOW, SEASON, EPISODE = 2, 3, 4
LEVELS: Final = {"show": SHOW, "season": SEASON, "episode": EPISODE}
#: The largest page Plex serves; larger sizes are clamped (research: "Max page size: 1000").
MAX_PAGE: Final = 1000
MISSING_SIZE: Final = "Missing X-Plex-Container-Size header."


class BadRequest(Exception):
    """Answered with a 400."""


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
        out.append(Filter(LEVELS[scope] if scope else default_level, field, op, values))
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


def int_param(request: web.Request, name: str) -> int | None:
    """A non-negative integer from the query string, or else from the headers."""
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


def parse_page(request: web.Request, required: bool, cap: int | None) -> Page:
    """``X-Plex-Container-Start``/``-Size``; ``cap``: the most a busy server returns."""
    start = int_param(request, "X-Plex-Container-Start") or 0
    size = int_param(request, "X-Plex-Container-Size")
    if size is None:
        if required:  # PMS >= 1.28 warned, newer ones answer 400 (server-apis.md)
            raise BadRequest(MISSING_SIZE)
        size_or_all: int | None = None
    else:
        size_or_all = min(size, MAX_PAGE)
    if cap is not None:  # a busy server may silently return fewer items than asked
        size_or_all = cap if size_or_all is None else min(size_or_all, cap)
    if request.method == "HEAD":  # the headers carry the count; skip rendering items
        size_or_all = 0
    return Page(start, size_or_all, size is not None)


#: attributes ``excludeFields`` may leave out of an item: what identifies it and what
#: places it in the hierarchy stay whatever a request asks (Plex treats these parameters
#: "as requests, not guarantees")
EXCLUDABLE = frozenset(
    {
        "key", "parentKey", "grandparentKey", "guid", "parentGuid", "grandparentGuid",
        "title", "parentTitle", "grandparentTitle", "titleSort", "studio", "parentStudio",
        "contentRating", "summary", "rating", "audienceRating", "audienceRatingImage", "ratingImage",
        "year", "parentYear", "thumb", "art", "banner", "theme", "parentThumb", "parentTheme",
        "grandparentThumb", "grandparentArt", "grandparentTheme", "duration",
        "originallyAvailableAt", "viewedLeafCount", "childCount", "leafCount", "addedAt", "updatedAt",
    }
)  # fmt: skip


#: the tag groups of an item, each left out when ``excludeElements`` names it
TAG_ELEMENTS: Final = frozenset({"Genre", "Role", "Director", "Writer", "Producer", "Rating"})


class Options(NamedTuple):
    """What a request asked to include."""

    guids: bool = False  # includeGuids=1
    detail: bool = False  # a /library/metadata fetch: items carry their section, tags in full
    media: bool = True  # excludeElements=Media leaves it out
    tags: bool = True  # False: no tag group at all (whatever ``elements`` says)
    #: excludeFields: attributes of the items left out (never ratingKey, type or the like)
    excluded: frozenset[str] = frozenset()
    #: excludeElements: the tag groups (TAG_ELEMENTS) left out, each on its own
    elements: frozenset[str] = frozenset()

    @property
    def summary(self) -> bool:
        return "summary" not in self.excluded

    def wants(self, element: str) -> bool:
        """Whether the tag group ``element`` (Genre, Role, ...) is rendered."""
        return self.tags and element not in self.elements


def parse_options(request: web.Request, detail: bool = False) -> Options:
    q = request.query
    excluded = {e.strip() for e in q.get("excludeElements", "").split(",")}
    elements = frozenset(excluded & TAG_ELEMENTS)
    return Options(
        guids=q.get("includeGuids") == "1",
        detail=detail,
        media="Media" not in excluded,
        tags=elements != TAG_ELEMENTS,
        excluded=frozenset(f.strip() for f in q.get("excludeFields", "").split(",")) & EXCLUDABLE,
        elements=elements,
    )


def format_of(request: web.Request) -> Format:
    return JSON if "application/json" in request.headers.get("Accept", "") else XML
