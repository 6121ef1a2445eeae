"""Emulated Jellyfin and Emby servers over a generated library.

What the real servers do, and where that is written down (``shared/research/server-apis.md``
"JELLYFIN (and Emby)", the OpenAPI files in ``shared/reference/jellyfin``, and the Jellyfin
sources they cite):

- Routing is ASP.NET's: paths and query parameter names are case-insensitive, ids bind as
  GUIDs with or without dashes, ``/emby/...`` and ``/mediabrowser/...`` are rewritten to
  ``/...`` before 12.0 (``LegacyEmbyRouteRewriteMiddleware``).
- Auth follows ``AuthorizationContext.cs``: ``Authorization: MediaBrowser Token="…"``
  (quoted, comma separated, URL-decoded values), the ``ApiKey`` query parameter, and the
  legacy forms (``X-Emby-Token``, ``X-MediaBrowser-Token``, ``api_key``, ``X-Emby-Authorization``,
  the ``Emby`` scheme) while ``EnableLegacyAuthorization`` is on: always before 12.0.
- A BaseItemDto carries a fixed set of properties and the others only when asked for with
  ``Fields`` (``DtoService.AttachBasicFields``). Nulls are left out (``WhenWritingNull``),
  except that an empty GUID in a ``Guid?`` property is written as ``null``
  (``JsonNullableGuidConverter``): every item says ``"ChannelId":null`` and an episode
  without a season says ``"SeasonId":null``. Dates are ``yyyy-MM-ddTHH:mm:ss.fffffffZ``
  (``JsonDateTimeConverter``). Strings go through System.Text.Json's default encoder, which
  escapes everything outside printable ASCII, and the quote and ``& ' < > + ` `` too, as
  ``\\uXXXX`` (the backslash as ``\\\\``). ``Etag`` is the MD5 of the item's
  ``DateLastSaved`` ticks (``BaseItem.GetEtag``).
- With an API key there is no user: ``/Users/Me`` is a 400, ``/UserViews`` needs a
  ``userId``, items carry no ``UserData``, and ``/Shows/{id}/Episodes`` lists missing
  episodes (a user sees them only with DisplayMissingEpisodes, off here). A missing episode
  has no Path, Container or file and, when asked for, ``"MediaSources":[]``.
- ``/Items`` pages with ``StartIndex``/``Limit`` and no cap; ``TotalRecordCount`` is a full
  ``COUNT(*)`` unless ``EnableTotalRecordCount=false``, when it is the page length. On
  10.8-10.10 a plain ``MinDateLastSaved`` binds the wrong SQL parameter and matches nothing.

Listing order is fixed: per library, series in title order, then their seasons, then their
episodes (season and episode order); ``SortOrder=Descending`` reverses it. ``SortBy`` is
accepted and does not change it: Jellyfin cannot sort by id and its SortName order across a
whole library interleaves shows, so clients must not depend on the order anyway. Accepted
and ignored: ``SortBy``, ``IsUnaired``/``IsVirtualUnaired`` (nothing is unaired),
``Has*Id``, ``ImageTypeLimit``/``EnableImageTypes``, ``ParentIndexNumber``/``IndexNumber``.

Pages are rendered from pre-encoded fragments (per server, per show, per season, per
distinct string) spliced into one f-string per item: no dict per item, no re-serialisation.

Emby is the same API with a few differences, kept in :class:`EmbyServer`'s overrides.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
import secrets
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Final, NamedTuple

import msgspec
from aiohttp import web

from importer.emulator.library import (
    DOUBLE_SECOND,
    VIRTUAL,
    Episode,
    Library,
    LibrarySpec,
    MediaFile,
    Season,
    Show,
    View,
    episode_time_bounds,
    mix,
    slot_flags,
)
from importer.emulator.server import Controls, EmulatedServer, TvLibrary, charge, listed

# ============================================================================ JSON values

#: What System.Text.Json's default JavaScriptEncoder escapes: everything outside printable
#: ASCII, the quote and backslash, and the HTML-sensitive characters.
_JS_NEEDS: Final = re.compile(r"[^\x20-\x7e]|[\"\\&'<>+`]")
_JS_SHORT: Final = {
    '"': "\\u0022",
    "\\": "\\\\",
    "&": "\\u0026",
    "'": "\\u0027",
    "<": "\\u003C",
    ">": "\\u003E",
    "+": "\\u002B",
    "`": "\\u0060",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _js_char(m: re.Match[str]) -> str:
    c = m.group()
    short = _JS_SHORT.get(c)
    if short is not None:
        return short
    o = ord(c)
    if o > 0xFFFF:  # astral: a UTF-16 surrogate pair, as .NET strings hold it
        o -= 0x10000
        return f"\\u{0xD800 + (o >> 10):04X}\\u{0xDC00 + (o & 0x3FF):04X}"
    return f"\\u{o:04X}"


def js_string(value: str) -> str:
    """A JSON string as Jellyfin writes it (System.Text.Json, default encoder)."""
    if _JS_NEEDS.search(value) is None:
        return f'"{value}"'
    return '"' + _JS_NEEDS.sub(_js_char, value) + '"'


def plain_string(value: str) -> str:
    """A JSON string as Emby writes it: UTF-8, only what JSON requires escaped."""
    return msgspec.json.encode(value).decode()


_TICKS_AT_EPOCH: Final = 621_355_968_000_000_000  # DateTime ticks of 1970-01-01T00:00:00Z


@functools.lru_cache(maxsize=16384)
def _ymd(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")


@functools.cache
def _clock() -> list[str]:
    """``THH:mm:ss.`` for every second of a day (5 MB, built once: dates are on the hot path)."""
    return [f"T{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)]


def jf_date(ts: int, fraction: int = 0) -> str:
    """``yyyy-MM-ddTHH:mm:ss.fffffffZ`` (``JsonDateTimeConverter``): 7 digits, always."""
    day, sec = divmod(ts, 86400)
    return f"{_ymd(day)}{_clock()[sec]}{fraction:07d}Z"


def _fraction(ts: int) -> int:
    """Sub-second ticks of a creation time (file times have them; ours are whole seconds)."""
    return (ts * 2_654_435_761) % 10_000_000


def _guid_n(digest: bytes) -> str:
    """``Guid.ToString("N")`` of 16 bytes: .NET stores the first three fields little-endian."""
    return (digest[3::-1] + digest[5:3:-1] + digest[7:5:-1] + digest[8:]).hex()


def jf_etag(saved_at: int) -> str:
    """``BaseItem.GetEtag``: MD5 (of the UTF-16 text) of ``DateLastSaved.Ticks``, as a GUID."""
    ticks = saved_at * 10_000_000 + _TICKS_AT_EPOCH
    return _guid_n(hashlib.md5(str(ticks).encode("utf-16-le"), usedforsecurity=False).digest())


def name_guid(text: str) -> str:
    """A stable 32-hex id for things that are not generated items (libraries, people, users)."""
    return _guid_n(hashlib.md5(text.encode(), usedforsecurity=False).digest())


_M64: Final = (1 << 64) - 1
_C1: Final = 0xBF58476D1CE4E5B9
_C2: Final = 0x94D049BB133111EB


def last_round(state: int, part: int) -> int:
    """``mix(*parts, part)`` given ``state = mix(*parts)``: mix is a fold, so the state after
    the first parts is its value, and a per-show state leaves one round per episode."""
    h = (state ^ part) * _C1 & _M64
    h = (h ^ (h >> 31)) * _C2 & _M64
    return h ^ (h >> 29)


def _hex_id(seed: int, kind: int, n: int) -> str:
    return f"{mix(seed, kind, n):016x}{mix(seed, kind + 1000, n):016x}"


def _normalize_guid(text: str) -> str | None:
    """A GUID in any form ASP.NET binds ("N", "D", braces), as 32 lower-case hex digits."""
    try:
        return uuid.UUID(text.strip()).hex
    except ValueError:
        return None


_BLURHASH_CHARS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _blurhash(seed: int) -> str:
    h = mix(seed, 88)
    chars = [_BLURHASH_CHARS[(h >> (k * 6)) % 83] for k in range(10)]
    return "WJC$" + "".join(chars) * 2 + "9F"


# ============================================================================ requests


class BadRequest(Exception):
    """A parameter that ASP.NET model binding rejects: 400 with a ProblemDetails body."""


class QueryParams:
    """Query parameters as ASP.NET binds them: names case-insensitive, lists comma-separated
    (``CommaDelimitedCollectionModelBinder``), the first value for a scalar."""

    def __init__(self, query: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        pairs = query.items() if isinstance(query, Mapping) else query
        for key, value in pairs:
            self._values.setdefault(key.lower(), []).append(value)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values

    def get(self, name: str) -> str | None:
        values = self._values.get(name.lower())
        return values[0] if values else None

    def csv(self, name: str) -> list[str]:
        out: list[str] = []
        for value in self._values.get(name.lower(), ()):
            out.extend(v.strip() for v in value.split(",") if v.strip())
        return out

    def flag(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None or value == "":
            return None
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise BadRequest(f"The value '{value}' is not valid for {name}.")

    def int(self, name: str) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"The value '{value}' is not valid for {name}.") from None

    def date(self, name: str) -> float | None:
        """An ISO date as unix seconds (``.ToUniversalTime()``: no offset means UTC here)."""
        value = self.get(name)
        if value is None or value == "":
            return None
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise BadRequest(f"The value '{value}' is not valid for {name}.") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()


# ============================================================================ item references

SERIES, SEASON, EPISODE = 0, 1, 2


class Ref(NamedTuple):
    """An item of a library, in listing order: kind, library, show (title order) and the
    position within the show (season ordinal, or index in the show's Jellyfin view)."""

    kind: int
    lib: int
    show: int
    pos: int


@dataclass
class _ShowFrags:
    """Pre-encoded pieces of one show, shared by its series, season and episode items."""

    series_id: str
    id_states: tuple[int, int]  # mix(seed, 53), mix(seed, 63): episode ids need one round more
    name: str  # JSON string
    user_key: str  # UserData Key: the TVDB id, else the item id
    primary_tag: str
    backdrop_tag: str
    blurhash: str
    season_ids: list[str]
    season_ordinal: dict[int, int]  # season number -> ordinal
    season_names: list[str]  # JSON strings
    ep_series: str  # ',"SeriesName":…,"SeriesId":"…"'
    ep_season: dict[int, str]  # season number -> ',"SeasonId":"…"'
    ep_season_name: dict[int, str]  # season number -> ',"SeasonName":…'
    ep_images: str  # inherited image fields of an episode (images enabled)
    ep_series_image: str  # ',"SeriesPrimaryImageTag":"…"'
    ep_blur_tail: str  # ImageBlurHashes after the episode's own primary tag
    ep_blur_series: str  # ',"ImageBlurHashes":…' with only the series' primary image


class _IdIndex:
    """Episode id -> Ref for one library: the first 64 bits of every episode id, sorted, with
    the episode's show and position. Built on the first lookup of an episode id (a couple of
    seconds for a million episodes); series and seasons are in a small dict instead."""

    def __init__(self, lib: Library, lib_index: int) -> None:
        keys = array("Q")
        shows = array("I")
        poss = array("I")
        for show in lib.shows:
            state = mix(show.seed, 53)
            pos = 0
            for ordinal, flag in enumerate(slot_flags(show, lib.spec.shape)):
                if flag == DOUBLE_SECOND:  # Jellyfin lists a double episode once
                    continue
                keys.append(last_round(state, ordinal))  # the first half of jellyfin_id(3, …)
                shows.append(show.index)
                poss.append(pos)
                pos += 1
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = array("Q", (keys[i] for i in order))
        self._shows = array("I", (shows[i] for i in order))
        self._poss = array("I", (poss[i] for i in order))
        self._lib_index = lib_index

    def find(self, hex_id: str) -> Ref | None:
        key = int(hex_id[:16], 16)
        at = bisect.bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            return Ref(EPISODE, self._lib_index, self._shows[at], self._poss[at])
        return None


def _folder_ids(lib: Library, lib_index: int) -> dict[str, Ref]:
    """Series and season ids of a library (a few per show: cheap to list)."""
    out: dict[str, Ref] = {}
    for show in lib.shows:
        out[lib.jellyfin_id(1, show.index)] = Ref(SERIES, lib_index, show.index, 0)
        for ordinal in range(len(show.season_sizes)):
            out[lib.jellyfin_id(2, show.index, ordinal)] = Ref(SEASON, lib_index, show.index, ordinal)
    return out


# ============================================================================ listings


class _Renderer:
    """Renders items of one request: which fields, images and user data it asked for."""

    def __init__(
        self,
        server: JellyfinServer,
        fields: frozenset[str],
        images: bool,
        user: bool,
    ) -> None:
        self.server = server
        self.fields = fields
        self.images = images
        self.user = user
        self.people_items = 0  # items rendered with People (charged extra)


class _Source:
    """A run of items of one kind, in listing order, that renders any slice of itself."""

    def __len__(self) -> int:
        raise NotImplementedError

    def render(self, r: _Renderer, start: int, stop: int, out: list[str]) -> None:
        raise NotImplementedError

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        """The refs of the items that pass the query's virtual and date filters."""
        raise NotImplementedError


class _Listing:
    """Sources one after the other: what a query lists, paged without materialising it."""

    def __init__(self, sources: list[_Source]) -> None:
        self.sources = [s for s in sources if len(s)]
        self.total = sum(len(s) for s in self.sources)

    def render(self, r: _Renderer, start: int, stop: int, descending: bool, out: list[str]) -> None:
        start, stop = max(start, 0), min(stop, self.total)
        if start >= stop:
            return
        if descending:
            first = len(out)
            self._render(r, self.total - stop, self.total - start, out)
            out[first:] = out[first:][::-1]
        else:
            self._render(r, start, stop, out)

    def _render(self, r: _Renderer, start: int, stop: int, out: list[str]) -> None:
        at = 0
        for source in self.sources:
            n = len(source)
            if at + n > start and at < stop:
                source.render(r, max(start - at, 0), min(stop - at, n), out)
            at += n
            if at >= stop:
                break


# ============================================================================ the server

_SUPPORTED_FIELDS: Final = frozenset(
    {
        "CanDelete",
        "CanDownload",
        "ChildCount",
        "Chapters",
        "DateCreated",
        "Etag",
        "ExternalUrls",
        "Genres",
        "MediaSourceCount",
        "MediaSources",
        "MediaStreams",
        "Overview",
        "ParentId",
        "Path",
        "People",
        "PrimaryImageAspectRatio",
        "ProviderIds",
        "RecursiveItemCount",
        "RemoteTrailers",
        "SortName",
        "Studios",
        "Taglines",
        "Tags",
    }
)
_FIELD_BY_LOWER: Final = {f.lower(): f for f in _SUPPORTED_FIELDS}
#: IncludeItemTypes this TV library has (others are accepted and match nothing).
_ITEM_TYPES: Final = {"series": SERIES, "season": SEASON, "episode": EPISODE}
_GENRES: Final = ("Drama", "Comedy", "Crime", "Documentary", "Science Fiction", "Animation", "Mystery")
_FIRST_NAMES: Final = ("Ana", "Bruno", "Chloé", "Dmitri", "Eun-ji", "Farid", "Grace", "Hiro", "Ines", "Jonas")
_LAST_NAMES: Final = ("Okafor", "Lindqvist", "Moreau", "Nakamura", "O'Brien", "Petrov", "Quinn", "Rossi")

_AUTH_PROVIDER: Final = "Jellyfin.Server.Implementations.Users.DefaultAuthenticationProvider"
_RESET_PROVIDER: Final = "Jellyfin.Server.Implementations.Users.DefaultPasswordResetProvider"
_PROBLEM_400: Final = "https://tools.ietf.org/html/rfc9110#section-15.5.1"


@dataclass(frozen=True)
class Route:
    """One route: the path template served, the handler, and the OpenAPI operation (path)
    whose response schema the answer follows (legacy routes have none of their own)."""

    template: str
    handler: str
    operation: str

    def regex(self) -> re.Pattern[str]:
        rx = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        return re.compile(rx + "/?", re.IGNORECASE)


@dataclass(frozen=True)
class _Folder:
    """A library as a CollectionFolder / VirtualFolder."""

    id: str
    name: str
    collection_type: str  # "tvshows" or "movies"
    path: str
    lib: int | None  # index into server.libs for TV libraries


class JellyfinServer(EmulatedServer):
    """Jellyfin 10.10-12 over a generated library. ``controls.jellyfin_version`` picks the
    version whose quirks apply."""

    kind: ClassVar[str] = "jellyfin"
    product_name: ClassVar[str] = "Jellyfin Server"
    #: Emby writes no StartIndex in a query result, and no ``ChannelId: null``.
    query_start_index: ClassVar[bool] = True
    null_guids: ClassVar[bool] = True

    ROUTES: ClassVar[tuple[Route, ...]] = (
        Route("/System/Info/Public", "get_public_info", "/System/Info/Public"),
        Route("/System/Info", "get_system_info", "/System/Info"),
        Route("/Users/Me", "get_me", "/Users/Me"),
        Route("/Users", "get_users", "/Users"),
        Route("/Library/VirtualFolders", "get_virtual_folders", "/Library/VirtualFolders"),
        Route("/Library/MediaFolders", "get_media_folders", "/Library/MediaFolders"),
        Route("/UserViews", "get_user_views", "/UserViews"),
        Route("/Users/{userId}/Views", "get_user_views", "/UserViews"),
        Route("/Items", "get_items", "/Items"),
        Route("/Users/{userId}/Items", "get_items", "/Items"),
        Route("/Items/{itemId}", "get_item", "/Items/{itemId}"),
        Route("/Users/{userId}/Items/{itemId}", "get_item", "/Items/{itemId}"),
        Route("/Shows/{seriesId}/Seasons", "get_seasons", "/Shows/{seriesId}/Seasons"),
        Route("/Shows/{seriesId}/Episodes", "get_episodes", "/Shows/{seriesId}/Episodes"),
        Route("/Users/{userId}", "get_user", "/Users/{userId}"),
    )

    def __init__(
        self,
        libraries: list[TvLibrary] | Library | LibrarySpec | None = None,
        *,
        token: str | None = None,
        controls: Controls | None = None,
        base_path: str = "",
        seed: int = 1,
    ) -> None:
        super().__init__(libraries, token=token, controls=controls, base_path=base_path, seed=seed)
        self.server_id = _hex_id(self.seed, 7, 0)
        self.user_id = _hex_id(self.seed, 9, 0)
        self.user_name = "emulator"
        self.server_name = f"importer-emulator-{self.kind}"
        self.libs = [(i, lib.name, lib.library) for i, lib in enumerate(self.libraries)]
        self.folders = [
            _Folder(name_guid(f"{self.server_id}:tvshows:{i}:{name}"), name, "tvshows", f"/data/{name}", i)
            for i, name, _ in self.libs
        ]
        # A movie library a TV importer must leave alone.
        self.folders.append(
            _Folder(name_guid(f"{self.server_id}:movies"), "Movies", "movies", "/data/Movies", None)
        )
        self._compiled = [(route, route.regex()) for route in self.ROUTES]
        self._frags: dict[tuple[int, int], _ShowFrags] = {}
        self._id_indexes: dict[int, _IdIndex] = {}
        self._folder_id_maps: dict[int, dict[str, Ref]] = {}
        self._filtered: OrderedDict[tuple[object, ...], list[Ref]] = OrderedDict()
        self._season_prefix: dict[int, list[int]] = {}
        self._sid = f',"ServerId":"{self.server_id}"'
        self._channel = ',"ChannelId":null' if self.null_guids else ""
        self.escape = functools.lru_cache(maxsize=1 << 16)(self.encode_string)

    # ------------------------------------------------------------------ version quirks
    @property
    def version(self) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", self.controls.jellyfin_version)[:3])

    def version_string(self) -> str:
        return self.controls.jellyfin_version

    def legacy_auth(self) -> bool:
        """``EnableLegacyAuthorization``: no switch in 10.10, default true in 10.11, false in
        12.0 (and a migration turns it off on upgrade)."""
        return self.version < (12,)

    def legacy_prefixes(self) -> tuple[str, ...]:
        """``LegacyEmbyRouteRewriteMiddleware`` strips these before 12.0 (#15669 removed it)."""
        return ("/emby", "/mediabrowser") if self.version < (12,) else ()

    def min_date_bug(self) -> bool:
        """10.8-10.10: ``MinDateLastSaved`` alone binds the wrong SQL parameter (NULL)."""
        return (10, 8) <= self.version < (10, 11)

    def default_recursive(self) -> bool:
        """12.0 lists a library's contents recursively when the client does not say."""
        return self.version >= (12,)

    def encode_string(self, value: str) -> str:
        return js_string(value)

    # ------------------------------------------------------------------ auth
    def token_of(self, request: web.Request) -> str | None:
        legacy = self.legacy_auth()
        parts = self._auth_parts(request.headers.get("Authorization"), legacy)
        if parts is None and legacy:
            parts = self._auth_parts(request.headers.get("X-Emby-Authorization"), legacy)
        token = (parts or {}).get("Token")
        if not token and legacy:
            token = request.headers.get("X-Emby-Token") or request.headers.get("X-MediaBrowser-Token")
        query = QueryParams(request.query)
        if not token:
            token = query.get("ApiKey")
        if not token and legacy:
            token = query.get("api_key")
        return token or None

    @staticmethod
    def _auth_parts(header: str | None, allow_emby_scheme: bool) -> dict[str, str] | None:
        """``AuthorizationContext.GetAuthorization`` + ``GetParts``."""
        if not header:
            return None
        scheme, sep, rest = header.partition(" ")
        if not sep:
            return None
        if scheme.lower() != "mediabrowser" and not (allow_emby_scheme and scheme.lower() == "emby"):
            return None
        return parse_auth_parts(rest)

    def is_public(self, path: str) -> bool:
        return self._strip_prefix(path).lower().rstrip("/") == "/system/info/public"

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, text="Unauthorized")

    # ------------------------------------------------------------------ routing
    def add_routes(self, router: web.UrlDispatcher) -> None:
        # One catch-all route: ASP.NET matches paths case-insensitively, aiohttp does not.
        router.add_route("*", r"/{tail:(?!_emulator/).*}", self._dispatch)

    def routes(self) -> list[Route]:
        """The routes this server answers (for tests: every one must be validated)."""
        return list(self.ROUTES)

    def _strip_prefix(self, path: str) -> str:
        low = path.lower()
        for prefix in self.legacy_prefixes():
            if low == prefix or low.startswith(prefix + "/"):
                return path[len(prefix) :] or "/"
        return path

    def route_path(self, request: web.Request) -> str:
        path = request.path
        if self.base_path and path.startswith(self.base_path):
            path = path[len(self.base_path) :] or "/"
        return self._strip_prefix(path)

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        for route, rx in self._compiled:
            m = rx.fullmatch(path)
            if m is not None:
                return route, m.groupdict()
        return None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        found = self.match(self.route_path(request))
        if found is None:
            return web.Response(status=404)
        route, args = found
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405)
        handler: Callable[[web.Request, dict[str, str], QueryParams], web.StreamResponse] = getattr(
            self, route.handler
        )
        try:
            return handler(request, args, QueryParams(request.query))
        except BadRequest as exc:
            return self.problem(400, "One or more validation errors occurred.", str(exc))

    # ------------------------------------------------------------------ responses
    @staticmethod
    def json(body: str | bytes, status: int = 200) -> web.Response:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(body=data, status=status, content_type="application/json", charset="utf-8")

    @staticmethod
    def problem(status: int, title: str, detail: str | None = None) -> web.Response:
        """ASP.NET's ProblemDetails ([ApiController] on a bare BadRequest()/NotFound())."""
        body: dict[str, object] = {"type": _PROBLEM_400, "title": title, "status": status}
        if detail:
            body["errors"] = {"request": [detail]}
        body["traceId"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
        return web.Response(
            body=msgspec.json.encode(body),
            status=status,
            content_type="application/problem+json",
            charset="utf-8",
        )

    @staticmethod
    def not_found() -> web.Response:
        # ResourceNotFoundException through Jellyfin's ExceptionMiddleware (not in development).
        return web.Response(status=404, text="Error processing request.")

    def query_result(self, items: list[str], total: int, start: int) -> web.Response:
        tail = f',"StartIndex":{start}' if self.query_start_index else ""
        return self.json(f'{{"Items":[{",".join(items)}],"TotalRecordCount":{total}{tail}}}')

    # ------------------------------------------------------------------ users
    def _user(self, request_user: str | None) -> bool:
        """Whether the request has a user: a ``userId`` (query or path) naming ours. The
        token is an API key, which has no user of its own; an unknown user id is a 404."""
        if request_user is None or request_user == "":
            return False
        if _normalize_guid(request_user) != self.user_id:
            raise _NotFound
        return True

    def user_dto(self) -> dict[str, object]:
        return {
            "Name": self.user_name,
            "ServerId": self.server_id,
            "Id": self.user_id,
            "HasPassword": True,
            "HasConfiguredPassword": True,
            "HasConfiguredEasyPassword": False,
            "EnableAutoLogin": False,
            "LastLoginDate": jf_date(1_735_000_000, 1234567),
            "LastActivityDate": jf_date(1_735_000_100, 7654321),
            "Configuration": {
                "AudioLanguagePreference": "",
                "PlayDefaultAudioTrack": True,
                "SubtitleLanguagePreference": "",
                "DisplayMissingEpisodes": False,
                "GroupedFolders": [],
                "SubtitleMode": "Default",
                "DisplayCollectionsView": False,
                "EnableLocalPassword": False,
                "OrderedViews": [],
                "LatestItemsExcludes": [],
                "MyMediaExcludes": [],
                "HidePlayedInLatest": True,
                "RememberAudioSelections": True,
                "RememberSubtitleSelections": True,
                "EnableNextEpisodeAutoPlay": True,
            },
            "Policy": {
                "IsAdministrator": True,
                "IsHidden": False,
                "EnableCollectionManagement": True,
                "EnableSubtitleManagement": True,
                "EnableLyricManagement": True,
                "IsDisabled": False,
                "BlockedTags": [],
                "AllowedTags": [],
                "EnableUserPreferenceAccess": True,
                "AccessSchedules": [],
                "BlockUnratedItems": [],
                "EnableRemoteControlOfOtherUsers": True,
                "EnableSharedDeviceControl": True,
                "EnableRemoteAccess": True,
                "EnableLiveTvManagement": True,
                "EnableLiveTvAccess": True,
                "EnableMediaPlayback": True,
                "EnableAudioPlaybackTranscoding": True,
                "EnableVideoPlaybackTranscoding": True,
                "EnablePlaybackRemuxing": True,
                "ForceRemoteSourceTranscoding": False,
                "EnableContentDeletion": True,
                "EnableContentDeletionFromFolders": [],
                "EnableContentDownloading": True,
                "EnableSyncTranscoding": True,
                "EnableMediaConversion": True,
                "EnabledDevices": [],
                "EnableAllDevices": True,
                "EnabledChannels": [],
                "EnableAllChannels": True,
                "EnabledFolders": [],
                "EnableAllFolders": True,
                "InvalidLoginAttemptCount": 0,
                "LoginAttemptsBeforeLockout": -1,
                "MaxActiveSessions": 0,
                "EnablePublicSharing": True,
                "BlockedMediaFolders": [],
                "BlockedChannels": [],
                "RemoteClientBitrateLimit": 0,
                "AuthenticationProviderId": _AUTH_PROVIDER,
                "PasswordResetProviderId": _RESET_PROVIDER,
                "SyncPlayAccess": "CreateAndJoinGroups",
            },
        }

    # ------------------------------------------------------------------ system endpoints
    def _local_address(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{self.base_path}"

    def public_info(self, request: web.Request) -> dict[str, object]:
        return {
            "LocalAddress": self._local_address(request),
            "ServerName": self.server_name,
            "Version": self.version_string(),
            "ProductName": self.product_name,
            "OperatingSystem": "",
            "Id": self.server_id,
            "StartupWizardCompleted": True,
        }

    def get_public_info(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        return self.json(msgspec.json.encode(self.public_info(request)))

    def get_system_info(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        info = self.public_info(request)
        info.update(
            {
                "OperatingSystemDisplayName": "Linux",
                "PackageName": "importer-emulator",
                "HasPendingRestart": False,
                "IsShuttingDown": False,
                "SupportsLibraryMonitor": True,
                "WebSocketPortNumber": request.url.port or 8096,
                "CompletedInstallations": [],
                "CanSelfRestart": True,
                "CanLaunchWebBrowser": False,
                "ProgramDataPath": "/config",
                "WebPath": "/usr/share/jellyfin/web",
                "ItemsByNamePath": "/config/metadata",
                "CachePath": "/cache",
                "LogPath": "/config/log",
                "InternalMetadataPath": "/config/metadata",
                "TranscodingTempPath": "/cache/transcodes",
                "CastReceiverApplications": [],
                "HasUpdateAvailable": False,
                "EncoderLocation": "System",
                "SystemArchitecture": "X64",
            }
        )
        return self.json(msgspec.json.encode(info))

    def get_users(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        return self.json(msgspec.json.encode([self.user_dto()]))

    def get_user(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        if _normalize_guid(args["userId"]) != self.user_id:
            return self.not_found()
        return self.json(msgspec.json.encode(self.user_dto()))

    def get_me(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        # UserController.GetCurrentUser: "400: Token is not owned by a user". An API key
        # (the only token this emulator issues) has no user.
        return self.problem(400, "Bad Request")

    def get_virtual_folders(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        return self.json(msgspec.json.encode([self.virtual_folder(f) for f in self.folders]))

    def virtual_folder(self, folder: _Folder) -> dict[str, object]:
        return {
            "Name": folder.name,
            "Locations": [folder.path],
            "CollectionType": folder.collection_type,
            "LibraryOptions": {
                "Enabled": True,
                "EnablePhotos": True,
                "EnableRealtimeMonitor": True,
                "EnableLUFSScan": True,
                "EnableChapterImageExtraction": False,
                "ExtractChapterImagesDuringLibraryScan": False,
                "EnableTrickplayImageExtraction": False,
                "ExtractTrickplayImagesDuringLibraryScan": False,
                "PathInfos": [{"Path": folder.path}],
                "SaveLocalMetadata": False,
                "EnableInternetProviders": True,
                "EnableAutomaticSeriesGrouping": False,
                "EnableEmbeddedTitles": False,
                "EnableEmbeddedExtrasTitles": False,
                "EnableEmbeddedEpisodeInfos": False,
                "AutomaticRefreshIntervalDays": 0,
                "PreferredMetadataLanguage": "en",
                "MetadataCountryCode": "US",
                "SeasonZeroDisplayName": "Specials",
                "MetadataSavers": [],
                "DisabledLocalMetadataReaders": [],
                "LocalMetadataReaderOrder": ["Nfo"],
                "DisabledSubtitleFetchers": [],
                "SubtitleFetcherOrder": [],
                "DisabledMediaSegmentProviders": [],
                "SkipSubtitlesIfEmbeddedSubtitlesPresent": False,
                "SkipSubtitlesIfAudioTrackMatches": False,
                "SubtitleDownloadLanguages": [],
                "RequirePerfectSubtitleMatch": True,
                "SaveSubtitlesWithMedia": True,
                "SaveLyricsWithMedia": False,
                "SaveTrickplayWithMedia": False,
                "DisabledLyricFetchers": [],
                "LyricFetcherOrder": [],
                "PreferNonstandardArtistsTag": False,
                "UseCustomTagDelimiters": False,
                "CustomTagDelimiters": ["/", "|", ";", "\\"],
                "DelimiterWhitelist": [],
                "AutomaticallyAddToCollection": False,
                "AllowEmbeddedSubtitles": "AllowAll",
                "TypeOptions": [],
            },
            "ItemId": folder.id,
            "PrimaryImageItemId": folder.id,
            "RefreshStatus": "Idle",
        }

    def get_media_folders(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        r = self.renderer(q, all_fields=False, user=False)
        items = [self.render_folder(r, f) for f in self.folders]
        return self.query_result(items, len(items), 0)

    def get_user_views(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        # UserViewsController: the user comes from the path, the query or the token; an API
        # key has none, and GetUserById(Guid.Empty) throws ResourceNotFoundException.
        try:
            has_user = self._user(args.get("userId") or q.get("userId"))
        except _NotFound:
            return self.not_found()
        if not has_user:
            return self.not_found()
        r = self.renderer(q, all_fields=True, user=True)
        items = [self.render_folder(r, f) for f in self.folders]
        return self.query_result(items, len(items), 0)

    # ------------------------------------------------------------------ renderers
    def renderer(self, q: QueryParams, *, all_fields: bool, user: bool) -> _Renderer:
        if all_fields:  # new DtoOptions(): every field (single items, views)
            fields = _SUPPORTED_FIELDS
        else:
            fields = frozenset(
                _FIELD_BY_LOWER[f.lower()] for f in q.csv("Fields") if f.lower() in _FIELD_BY_LOWER
            )
        images = q.flag("EnableImages")
        user_data = q.flag("EnableUserData")
        return _Renderer(self, fields, images is not False, user and user_data is not False)

    def show_frags(self, lib_index: int, show_index: int) -> _ShowFrags:
        key = (lib_index, show_index)
        got = self._frags.get(key)
        if got is None:
            if len(self._frags) > 2048:  # a page touches a few shows; keep the cache small
                self._frags.clear()
            got = self._build_frags(lib_index, show_index)
            self._frags[key] = got
        return got

    def _build_frags(self, lib_index: int, show_index: int) -> _ShowFrags:
        library = self.libs[lib_index][2]
        show = library.shows[show_index]
        esc = self.escape
        series_id = library.jellyfin_id(1, show_index)
        seasons = library.seasons_of(show)
        season_ids = [library.jellyfin_id(2, show_index, s.ordinal) for s in seasons]
        primary = _hex_id(show.seed, 80, 0)
        backdrop = _hex_id(show.seed, 81, 0)
        blur = _blurhash(show.seed)
        name = esc(show.title)
        series_image = f',"SeriesPrimaryImageTag":"{primary}"'
        return _ShowFrags(
            series_id=series_id,
            id_states=(mix(show.seed, 53), mix(show.seed, 63)),
            name=name,
            user_key=show.ids.tvdb or series_id,
            primary_tag=primary,
            backdrop_tag=backdrop,
            blurhash=blur,
            season_ids=season_ids,
            season_ordinal={s.season_number: s.ordinal for s in seasons},
            season_names=[esc(s.title) for s in seasons],
            ep_series=f',"SeriesName":{name},"SeriesId":"{series_id}"',
            ep_season={s.season_number: f',"SeasonId":"{season_ids[s.ordinal]}"' for s in seasons},
            ep_season_name={s.season_number: f',"SeasonName":{esc(s.title)}' for s in seasons},
            ep_images=f',"ParentBackdropItemId":"{series_id}","ParentBackdropImageTags":["{backdrop}"]',
            ep_series_image=series_image,
            # DtoService fills the hashes in this order: the item's own primary image, the
            # inherited backdrop, then the series poster (done even without EnableImages).
            ep_blur_tail=f'":"{blur}","{primary}":"{blur}"}},"Backdrop":{{"{backdrop}":"{blur}"}}}}',
            ep_blur_series=f',"ImageBlurHashes":{{"Primary":{{"{primary}":"{blur}"}}}}',
        )

    # -- episodes: the hot path (a million of them in a full listing)
    def render_episodes(self, r: _Renderer, lib_index: int, eps: Iterable[Episode], out: list[str]) -> None:
        """Episodes as BaseItemDto JSON, in DtoService's property order. Each item is one
        f-string of pre-encoded pieces; a field that was not asked for costs one test."""
        library = self.libs[lib_index][2]
        esc = self.escape
        path_json = self._path_json
        c1, c2, m64 = _C1, _C2, _M64
        fields = r.fields
        want_etag = "Etag" in fields
        want_created = "DateCreated" in fields
        want_sort = "SortName" in fields
        want_urls = "ExternalUrls" in fields
        want_sources = "MediaSources" in fields
        want_path = "Path" in fields
        want_overview = "Overview" in fields
        want_ids = "ProviderIds" in fields
        want_parent = "ParentId" in fields
        want_people = "People" in fields
        want_streams = "MediaStreams" in fields
        want_count = "MediaSourceCount" in fields
        can = (',"CanDelete":false' if "CanDelete" in fields else "") + (
            ',"CanDownload":true' if "CanDownload" in fields else ""
        )
        lists1 = (',"Taglines":[]' if "Taglines" in fields else "") + (
            ',"Genres":[]' if "Genres" in fields else ""
        )
        trailers = ',"RemoteTrailers":[]' if "RemoteTrailers" in fields else ""
        lists2 = (',"Studios":[]' if "Studios" in fields else "") + (
            ',"GenreItems":[]' if "Genres" in fields else ""
        )
        tags = ',"Tags":[]' if "Tags" in fields else ""
        chapters = ',"Chapters":[]' if "Chapters" in fields else ""
        images = r.images
        user = r.user
        sid = self._sid
        channel = self._channel
        null_season = ',"SeasonId":null' if self.null_guids else ""
        append = out.append
        cur = -1
        sf = self.show_frags(lib_index, 0) if library.shows else None
        s1 = s2 = 0
        n = 0
        for ep in eps:
            if ep.show_index != cur:
                cur = ep.show_index
                sf = self.show_frags(lib_index, cur)
                s1, s2 = sf.id_states
            assert sf is not None
            # library.jellyfin_id(3, show, ordinal), with last_round() inlined (the hot path).
            o = ep.ordinal
            h = (s1 ^ o) * c1 & m64
            h = (h ^ (h >> 31)) * c2 & m64
            g = (s2 ^ o) * c1 & m64
            g = (g ^ (g >> 31)) * c2 & m64
            eid = f"{h ^ (h >> 29):016x}{g ^ (g >> 29):016x}"
            files = ep.files
            first = files[0] if files else None
            sn = ep.season_number
            number = ep.episode_number
            title = esc(ep.title)
            air = ep.air_date
            ms = ep.duration_ms
            ids = ep.ids
            in_season = ep.has_season_id
            # Computed once: the item and its first MediaSource share the path and the etag.
            path = path_json(first.path) if first is not None and (want_path or want_sources) else ""
            etag = jf_etag(ep.updated_at) if want_etag or want_sources else ""
            if images:
                inherited = sf.ep_images
                if first is not None:
                    tag = eid[16:] + eid[:16]  # the episode's own thumbnail
                    own_image = ',"ImageTags":{"Primary":"' + tag + '"},"BackdropImageTags":[]'
                    blur = ',"ImageBlurHashes":{"Primary":{"' + tag + sf.ep_blur_tail
                else:
                    own_image = ',"ImageTags":{},"BackdropImageTags":[]'
                    blur = sf.ep_blur_series
            else:
                inherited = own_image = ""
                blur = sf.ep_blur_series
            etag_f = ',"Etag":"' + etag + '"' if want_etag else ""
            created = (
                ',"DateCreated":"' + jf_date(ep.added_at, _fraction(ep.added_at)) + '"'
                if want_created
                else ""
            )
            container = ',"Container":"' + first.container + '"' if first is not None else ""
            sort = f',"SortName":"{sn:03d} - {number:04d} - ' + title[1:] if want_sort else ""
            premiere = ',"PremiereDate":"' + air + 'T00:00:00.0000000Z"' if air else ""
            urls = _external_urls(ids.imdb, ids.tmdb, ids.tvdb, "tv") if want_urls else ""
            sources = self._media_sources(ep, eid, path, etag) if want_sources else ""
            path_f = ',"Path":' + path if want_path and first is not None else ""
            overview = ',"Overview":' + esc(ep.summary) if want_overview and ep.summary is not None else ""
            runtime = f',"RunTimeTicks":{ms * 10_000}' if ms is not None else ""
            year = ',"ProductionYear":' + air[:4] if air else ""
            end = f',"IndexNumberEnd":{ep.episode_number_end}' if ep.episode_number_end else ""
            provider = _provider_ids(ids.imdb, ids.tmdb, ids.tvdb) if want_ids else ""
            parent = self._parent_frag(sf, ep) if want_parent else ""
            people = self._episode_people(ep) if want_people else ""
            user_data = _user_data(f"{sf.user_key}{sn:03d}{number:03d}", eid) if user else ""
            season = sf.ep_season[sn] if in_season else null_season
            season_name = sf.ep_season_name[sn] if in_season else ""
            streams = _media_streams(first) if want_streams and first is not None else ""
            parts = _part_count(files) if len(files) > 1 else ""
            versions = _source_count(files) if want_count and len(files) > 1 else ""
            location = _VIRTUAL_TAIL if ep.virtual else _FILE_TAIL
            # One BUILD_STRING, in DtoService's property order (and no tuple for the GC).
            append(
                f'{{"Name":{title}{sid},"Id":"{eid}"{etag_f}{created}{can}{container}{sort}{premiere}{urls}'
                f"{sources}{path_f}{channel}{overview}{lists1}{runtime}{year}"
                f',"IndexNumber":{number}{end},"ParentIndexNumber":{sn}{trailers}{provider}'
                f',"IsFolder":false{parent},"Type":"Episode"{people}{lists2}{inherited}{user_data}'
                f"{sf.ep_series}{season}{tags}{sf.ep_series_image}{season_name}{streams}"
                f',"VideoType":"VideoFile"{parts}{versions}{own_image}{blur}{chapters}{location}'
            )
            n += 1
        if want_people:
            r.people_items += n

    def _path_json(self, path: str) -> str:
        """A path as JSON: its season folder part is escaped once and cached (a path repeats
        the show's title, which may be anything but ASCII)."""
        head, sep, tail = path.rpartition(" - S")
        if not sep:
            return self.escape(path)
        return self.escape(head)[:-1] + self.encode_string(sep + tail)[1:]

    def _parent_frag(self, sf: _ShowFrags, ep: Episode) -> str:
        # DisplayParentId: the season, or the series for an episode outside any season.
        if ep.has_season_id:
            return f',"ParentId":"{sf.season_ids[sf.season_ordinal[ep.season_number]]}"'
        return f',"ParentId":"{sf.series_id}"'

    def _media_sources(self, ep: Episode, item_id: str, first_path: str, etag: str) -> str:
        """One MediaSource per version, each pointing at the version's first part (a video
        with more parts says so with ``PartCount`` on the item). Missing episodes have none.
        ``first_path`` is the JSON of the first file's path, ``etag`` the item's."""
        files = ep.files
        if not files:
            return ',"MediaSources":[]'
        ticks = f',"RunTimeTicks":{ep.duration_ms * 10_000}' if ep.duration_ms else ""
        if len(files) == 1:
            return ',"MediaSources":[' + self._media_source(files[0], item_id, first_path, ticks, etag) + "]"
        sources = []
        for f in files:
            if f.part_index:
                continue
            if f.media_index == 0:
                source_id, path = item_id, first_path
            else:  # an alternate version is an item of its own
                source_id, path = _hex_id(f.media_key, 84, f.media_index), self._path_json(f.path)
            sources.append(self._media_source(f, source_id, path, ticks, etag))
        return ',"MediaSources":[' + ",".join(sources) + "]"

    @staticmethod
    def _media_source(f: MediaFile, source_id: str, path: str, ticks: str, etag: str) -> str:
        # Name: the file name without its extension (GetMediaSourceName), cut from the
        # already escaped path: escaping leaves "/" and "." alone.
        name = '"' + path[path.rindex("/") + 1 : path.rindex(".")] + '"'
        bitrate = f.size_bytes * 8000 // max(f.duration_ms, 1)
        middle = _source_middle(f.video_codec, f.audio_codec, f.width, f.height)
        return (
            f'{{"Protocol":"File","Id":"{source_id}","Path":{path},"Type":"Default","Container":"{f.container}"'
            f',"Size":{f.size_bytes},"Name":{name},"IsRemote":false,"ETag":"{etag}"{ticks}{middle}{bitrate}{_SOURCE_TAIL}'
        )

    def _episode_people(self, ep: Episode) -> str:
        h = mix(ep.added_at, ep.ordinal, 99)
        director = _person_name(h)
        writer = _person_name(h >> 16)
        return (
            f',"People":[{{"Name":{self.escape(director)},"Id":"{name_guid("person:" + director)}",'
            f'"Type":"Director"}},{{"Name":{self.escape(writer)},"Id":"{name_guid("person:" + writer)}",'
            f'"Type":"Writer"}}]'
        )

    # -- series and seasons
    def render_series(self, r: _Renderer, lib_index: int, shows: Iterable[Show], out: list[str]) -> None:
        library = self.libs[lib_index][2]
        folder_id = self.folders[lib_index].id
        esc = self.escape
        fields = r.fields
        n = 0
        for show in shows:
            sf = self.show_frags(lib_index, show.index)
            ids = show.ids
            year = show.year
            premiere = f"{year}-{1 + show.seed % 12:02d}-{1 + show.seed % 28:02d}" if year else None
            genres = [_GENRES[(show.seed >> k) % len(_GENRES)] for k in (3, 11)[: 1 + show.seed % 2]]
            n_seasons = len(show.season_sizes)
            n_eps = library.count(show, View.JELLYFIN)
            ended = show.seed % 3 == 0
            parts = [f'{{"Name":{sf.name}{self._sid},"Id":"{sf.series_id}"']
            if "Etag" in fields:
                parts.append(f',"Etag":"{jf_etag(show.updated_at)}"')
            if "DateCreated" in fields:
                parts.append(f',"DateCreated":"{jf_date(show.added_at, _fraction(show.added_at))}"')
            if "CanDelete" in fields:
                parts.append(',"CanDelete":false')
            if "CanDownload" in fields:
                parts.append(',"CanDownload":false')
            if "SortName" in fields:
                parts.append(f',"SortName":{esc(_sort_name(show.title))}')
            if premiere:
                parts.append(f',"PremiereDate":"{premiere}T00:00:00.0000000Z"')
            if "ExternalUrls" in fields:
                parts.append(_external_urls(ids.imdb, ids.tmdb, ids.tvdb, "tv"))
            if "Path" in fields:
                parts.append(f',"Path":{esc("/data/TV/" + show.title)}')
            if show.content_rating:
                parts.append(f',"OfficialRating":"{show.content_rating}"')
            parts.append(self._channel)
            if "Overview" in fields and show.summary is not None:
                parts.append(f',"Overview":{esc(show.summary)}')
            if "Taglines" in fields:
                parts.append(',"Taglines":[]')
            if "Genres" in fields:
                parts.append(f',"Genres":[{",".join(esc(g) for g in genres)}]')
            if year:
                parts.append(f',"ProductionYear":{year}')
            if "RemoteTrailers" in fields:
                parts.append(',"RemoteTrailers":[]')
            if "ProviderIds" in fields:
                parts.append(_provider_ids(ids.imdb, ids.tmdb, ids.tvdb))
            parts.append(',"IsFolder":true')
            if "ParentId" in fields:
                parts.append(f',"ParentId":"{folder_id}"')
            parts.append(',"Type":"Series"')
            if "People" in fields:
                parts.append(self._series_people(show))
            if "Studios" in fields:
                studio = show.studio
                parts.append(
                    f',"Studios":[{{"Name":{esc(studio)},"Id":"{name_guid("studio:" + studio)}"}}]'
                    if studio
                    else ',"Studios":[]'
                )
            if "Genres" in fields:
                items = ",".join(f'{{"Name":{esc(g)},"Id":"{name_guid("genre:" + g)}"}}' for g in genres)
                parts.append(f',"GenreItems":[{items}]')
            if r.user:
                parts.append(_user_data(sf.user_key, sf.series_id, self._present(library, show)))
            if "RecursiveItemCount" in fields:
                parts.append(f',"RecursiveItemCount":{n_eps}')
            if "ChildCount" in fields:
                parts.append(f',"ChildCount":{n_seasons}')
            parts.append(f',"Status":"{"Ended" if ended else "Continuing"}","AirDays":[]')
            if "Tags" in fields:
                parts.append(',"Tags":[]')
            if "PrimaryImageAspectRatio" in fields:
                parts.append(',"PrimaryImageAspectRatio":0.6666666666666666')
            if r.images:
                parts.append(
                    f',"ImageTags":{{"Primary":"{sf.primary_tag}"}},"BackdropImageTags":["{sf.backdrop_tag}"]'
                    f',"ImageBlurHashes":{{"Backdrop":{{"{sf.backdrop_tag}":"{sf.blurhash}"}},'
                    f'"Primary":{{"{sf.primary_tag}":"{sf.blurhash}"}}}}'
                )
            else:
                parts.append(',"ImageBlurHashes":{}')
            parts.append(',"LocationType":"FileSystem","MediaType":"Unknown"')
            if ended and year:
                parts.append(f',"EndDate":"{year + 1 + show.seed % 6}-05-01T00:00:00.0000000Z"')
            parts.append("}")
            out.append("".join(parts))
            n += 1
        if "People" in fields:
            r.people_items += n

    def _series_people(self, show: Show) -> str:
        people = []
        for k in range(3):
            h = mix(show.seed, 70, k)
            name = _person_name(h)
            role = self.escape(_FIRST_NAMES[(h >> 20) % len(_FIRST_NAMES)])
            person_id = name_guid("person:" + name)
            people.append(f'{{"Name":{self.escape(name)},"Id":"{person_id}","Role":{role},"Type":"Actor"}}')
        return f',"People":[{",".join(people)}]'

    def _present(self, library: Library, show: Show) -> int:
        return library.count(show, View.JELLYFIN_PRESENT)

    def render_seasons(self, r: _Renderer, lib_index: int, seasons: Iterable[Season], out: list[str]) -> None:
        library = self.libs[lib_index][2]
        fields = r.fields
        esc = self.escape
        n = 0
        for season in seasons:
            show = library.shows[season.show_index]
            sf = self.show_frags(lib_index, show.index)
            season_id = sf.season_ids[season.ordinal]
            parts = [f'{{"Name":{sf.season_names[season.ordinal]}{self._sid},"Id":"{season_id}"']
            if "Etag" in fields:
                parts.append(f',"Etag":"{jf_etag(season.updated_at)}"')
            if "DateCreated" in fields:
                parts.append(f',"DateCreated":"{jf_date(season.added_at, _fraction(season.added_at))}"')
            if "CanDelete" in fields:
                parts.append(',"CanDelete":false')
            if "CanDownload" in fields:
                parts.append(',"CanDownload":false')
            if "SortName" in fields:
                parts.append(f',"SortName":"{season.season_number:04d}"')
            if "ExternalUrls" in fields:
                parts.append(',"ExternalUrls":[]')
            if "Path" in fields:
                parts.append(f',"Path":{esc(f"/data/TV/{show.title}/Season {season.season_number:02d}")}')
            parts.append(self._channel)
            if "Taglines" in fields:
                parts.append(',"Taglines":[]')
            if "Genres" in fields:
                parts.append(',"Genres":[]')
            if show.year:
                parts.append(f',"ProductionYear":{show.year + max(season.season_number - 1, 0)}')
            parts.append(f',"IndexNumber":{season.season_number}')
            if "RemoteTrailers" in fields:
                parts.append(',"RemoteTrailers":[]')
            if "ProviderIds" in fields:
                parts.append(',"ProviderIds":{}')
            parts.append(',"IsFolder":true')
            if "ParentId" in fields:
                parts.append(f',"ParentId":"{sf.series_id}"')
            parts.append(',"Type":"Season"')
            if "People" in fields:
                parts.append(',"People":[]')
            if "Studios" in fields:
                parts.append(',"Studios":[]')
            if "Genres" in fields:
                parts.append(',"GenreItems":[]')
            if r.images:
                parts.append(sf.ep_images)
            counts = self._season_counts(library, show)
            if r.user:
                parts.append(
                    _user_data(
                        f"{sf.user_key}{season.season_number:03d}", season_id, counts[season.ordinal][1]
                    )
                )
            if "RecursiveItemCount" in fields:
                parts.append(f',"RecursiveItemCount":{counts[season.ordinal][0]}')
            if "ChildCount" in fields:
                parts.append(f',"ChildCount":{counts[season.ordinal][0]}')
            parts.append(f',"SeriesName":{sf.name},"SeriesId":"{sf.series_id}"')
            if "Tags" in fields:
                parts.append(',"Tags":[]')
            if "PrimaryImageAspectRatio" in fields:
                parts.append(',"PrimaryImageAspectRatio":0.6666666666666666')
            parts.append(sf.ep_series_image)
            if r.images:
                tag = _hex_id(show.seed, 83, season.ordinal)
                parts.append(
                    f',"ImageTags":{{"Primary":"{tag}"}},"BackdropImageTags":[]'
                    f',"ImageBlurHashes":{{"Primary":{{"{tag}":"{sf.blurhash}","{sf.primary_tag}":"{sf.blurhash}"}},'
                    f'"Backdrop":{{"{sf.backdrop_tag}":"{sf.blurhash}"}}}}'
                )
            else:
                parts.append(sf.ep_blur_series)
            parts.append(',"LocationType":"FileSystem","MediaType":"Unknown"}')
            out.append("".join(parts))
            n += 1
        if "People" in fields:
            r.people_items += n

    def _season_counts(self, library: Library, show: Show) -> list[tuple[int, int]]:
        """Per season ordinal: (items in the Jellyfin view, present ones), from slot flags."""
        flags = slot_flags(show, library.spec.shape)
        out = []
        at = 0
        for _, count in show.season_sizes:
            chunk = flags[at : at + count]
            at += count
            listed_n = sum(1 for f in chunk if f != DOUBLE_SECOND)
            out.append((listed_n, sum(1 for f in chunk if f not in (DOUBLE_SECOND, VIRTUAL))))
        return out

    def render_folder(self, r: _Renderer, folder: _Folder) -> str:
        fields = r.fields
        esc = self.escape
        parts = [f'{{"Name":{esc(folder.name)}{self._sid},"Id":"{folder.id}"']
        if "Etag" in fields:
            parts.append(f',"Etag":"{jf_etag(1_700_000_000)}"')
        if "DateCreated" in fields:
            parts.append(f',"DateCreated":"{jf_date(1_700_000_000)}"')
        if "CanDelete" in fields:
            parts.append(',"CanDelete":false')
        if "CanDownload" in fields:
            parts.append(',"CanDownload":false')
        if "SortName" in fields:
            parts.append(f',"SortName":{esc(folder.name.lower())}')
        if "ExternalUrls" in fields:
            parts.append(',"ExternalUrls":[]')
        if "Path" in fields:
            parts.append(f',"Path":{esc("/config/root/default/" + folder.name)}')
        parts.append(self._channel)
        if "Taglines" in fields:
            parts.append(',"Taglines":[]')
        if "Genres" in fields:
            parts.append(',"Genres":[]')
        if "RemoteTrailers" in fields:
            parts.append(',"RemoteTrailers":[]')
        if "ProviderIds" in fields:
            parts.append(',"ProviderIds":{}')
        parts.append(',"IsFolder":true')
        if "ParentId" in fields:
            parts.append(f',"ParentId":"{name_guid(self.server_id + ":root")}"')
        parts.append(',"Type":"CollectionFolder"')
        if "People" in fields:
            parts.append(',"People":[]')
        if "Studios" in fields:
            parts.append(',"Studios":[]')
        if "Genres" in fields:
            parts.append(',"GenreItems":[]')
        if r.user:
            parts.append(_user_data(folder.id, folder.id))
        if "ChildCount" in fields:
            library = self.libs[folder.lib][2] if folder.lib is not None else None
            parts.append(f',"ChildCount":{len(library.shows) if library else 0}')
        if "Tags" in fields:
            parts.append(',"Tags":[]')
        if "PrimaryImageAspectRatio" in fields:
            parts.append(',"PrimaryImageAspectRatio":1.7777777777777777')
        parts.append(f',"CollectionType":"{folder.collection_type}"')
        if r.images:
            parts.append(',"ImageTags":{},"BackdropImageTags":[]')
        parts.append(',"ImageBlurHashes":{},"LocationType":"FileSystem","MediaType":"Unknown"}')
        return "".join(parts)

    # ------------------------------------------------------------------ item lookup
    def id_index(self, lib_index: int) -> _IdIndex:
        got = self._id_indexes.get(lib_index)
        if got is None:
            got = _IdIndex(self.libs[lib_index][2], lib_index)
            self._id_indexes[lib_index] = got
        return got

    def folder_ids(self, lib_index: int) -> dict[str, Ref]:
        got = self._folder_id_maps.get(lib_index)
        if got is None:
            got = _folder_ids(self.libs[lib_index][2], lib_index)
            self._folder_id_maps[lib_index] = got
        return got

    def lookup(self, item_id: str) -> Ref | _Folder | None:
        """What an id names: a library, or a series/season/episode of one."""
        hex_id = _normalize_guid(item_id)
        if hex_id is None:
            return None
        for folder in self.folders:
            if folder.id == hex_id:
                return folder
        for lib_index, _, _ in self.libs:
            ref = self.folder_ids(lib_index).get(hex_id)
            if ref is not None:
                return ref
        for lib_index, _, _ in self.libs:
            ref = self.id_index(lib_index).find(hex_id)
            if ref is not None and self.ref_id(ref) == hex_id:
                return ref
        return None

    def ref_id(self, ref: Ref) -> str:
        library = self.libs[ref.lib][2]
        if ref.kind == SERIES:
            return library.jellyfin_id(1, ref.show)
        if ref.kind == SEASON:
            return library.jellyfin_id(2, ref.show, ref.pos)
        return library.jellyfin_id(3, ref.show, self.episode(ref).ordinal)

    def episode(self, ref: Ref) -> Episode:
        library = self.libs[ref.lib][2]
        return library.view_of(library.shows[ref.show], View.JELLYFIN)[ref.pos]

    def render_refs(self, r: _Renderer, refs: Sequence[Ref], out: list[str]) -> None:
        """Render refs in order, handing runs of episodes of one library to the hot loop."""
        at = 0
        while at < len(refs):
            ref = refs[at]
            end = at + 1
            while end < len(refs) and refs[end].kind == ref.kind and refs[end].lib == ref.lib:
                end += 1
            run = refs[at:end]
            library = self.libs[ref.lib][2]
            if ref.kind == EPISODE:
                self.render_episodes(r, ref.lib, (self.episode(x) for x in run), out)
            elif ref.kind == SEASON:
                self.render_seasons(
                    r, ref.lib, (library.seasons_of(library.shows[x.show])[x.pos] for x in run), out
                )
            else:
                self.render_series(r, ref.lib, (library.shows[x.show] for x in run), out)
            at = end

    # ------------------------------------------------------------------ /Items
    def get_items(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        try:
            user = self._user(args.get("userId") or q.get("userId"))
        except _NotFound:
            return self.not_found()
        query = ItemsQuery.parse(q, self)
        r = self.renderer(q, all_fields=False, user=user)
        if query.root_listing:
            # ItemsController: not recursive, no ids, no parent -> the root folder's
            # children (the libraries), whatever the other filters say.
            items = [self.render_folder(r, f) for f in self.folders]
            listed(request, len(items))
            return self.query_result(items, len(items), query.start)
        listing = self.listing(query)
        out: list[str] = []
        stop = listing.total if query.limit is None else query.start + max(query.limit, 0)
        listing.render(r, query.start, stop, query.descending, out)
        total = len(out)
        if query.count:
            total = listing.total
            if query.limit is not None or query.start:
                # BaseItemRepository: a paged query with the count on runs a full COUNT(*).
                charge(request, self.controls.count_cost_ms * 1000)
        self._charge_people(request, r)
        listed(request, len(out))
        return self.query_result(out, total, query.start)

    def _charge_people(self, request: web.Request, r: _Renderer) -> None:
        # Fields=People costs people_cost_factor times the item cost (listed() charges 1x).
        if r.people_items:
            extra = r.people_items * self.controls.item_cost_us * max(self.controls.people_cost_factor - 1, 0)
            charge(request, extra)

    def listing(self, query: ItemsQuery) -> _Listing:
        if query.empty:
            return _Listing([])
        if query.ids is not None:
            return _Listing([_RefSource(self, self._id_refs(query))])
        sources = self._scope_sources(query)
        if not query.needs_filter:
            return _Listing(sources)
        # A filter no view expresses (a date, only missing episodes): list the matching refs
        # once and keep them for the following pages of the same query.
        key = query.cache_key()
        refs = self._filtered.get(key)
        if refs is None:
            refs = [ref for source in sources for ref in source.filtered(query)]
            self._filtered[key] = refs
            if len(self._filtered) > 16:
                self._filtered.popitem(last=False)
        else:
            self._filtered.move_to_end(key)
        return _Listing([_RefSource(self, refs)])

    def _id_refs(self, query: ItemsQuery) -> list[Ref]:
        refs = set()
        for item_id in query.ids or ():
            found = self.lookup(item_id)
            if isinstance(found, Ref) and found.kind in query.kinds and self.passes(found, query):
                refs.add(found)
        return sorted(refs)  # listing order, not the order asked for

    def passes(self, ref: Ref, query: ItemsQuery) -> bool:
        """Whether one item passes the query's virtual and date filters."""
        library = self.libs[ref.lib][2]
        if ref.kind == EPISODE:
            ep = self.episode(ref)
            if query.virtual is not None and ep.virtual != query.virtual:
                return False
            saved = ep.updated_at
        else:
            if query.virtual:  # only episodes can be missing
                return False
            show = library.shows[ref.show]
            saved = show.updated_at if ref.kind == SERIES else library.seasons_of(show)[ref.pos].updated_at
        return query.min_saved is None or saved >= query.min_saved

    def _scope_sources(self, query: ItemsQuery) -> list[_Source]:
        kinds = query.kinds
        view = View.JELLYFIN_PRESENT if query.virtual is False else View.JELLYFIN
        out: list[_Source] = []
        parent = query.parent
        if parent is None:  # recursive from the root: every TV library
            for lib_index, _, library in self.libs:
                out += self._library_sources(lib_index, library, kinds, True, view)
            return out
        if isinstance(parent, _Folder):
            if parent.lib is None:  # the movie library holds no TV items
                return out
            lib_index = parent.lib
            return self._library_sources(lib_index, self.libs[lib_index][2], kinds, query.recursive, view)
        library = self.libs[parent.lib][2]
        show = library.shows[parent.show]
        if parent.kind == SERIES:
            if SEASON in kinds:
                out.append(_SeasonSource(self, parent.lib, [show.index]))
            if EPISODE in kinds and query.recursive:
                out.append(_EpisodeListSource(self, parent.lib, list(library.view_of(show, view))))
        elif parent.kind == SEASON and EPISODE in kinds:
            # The season's children: episodes filed under it (not those without a SeasonId).
            number = library.seasons_of(show)[parent.pos].season_number
            eps = [e for e in library.view_of(show, view) if e.season_number == number and e.has_season_id]
            out.append(_EpisodeListSource(self, parent.lib, eps))
        return out

    def _library_sources(
        self, lib_index: int, library: Library, kinds: frozenset[int], recursive: bool, view: View
    ) -> list[_Source]:
        out: list[_Source] = []
        if SERIES in kinds:
            out.append(_SeriesSource(self, lib_index, range(len(library.shows))))
        if recursive and SEASON in kinds:
            out.append(_SeasonSource(self, lib_index, range(len(library.shows))))
        if recursive and EPISODE in kinds:
            out.append(_EpisodeLibrarySource(self, lib_index, view))
        return out

    def season_prefix(self, lib_index: int) -> list[int]:
        got = self._season_prefix.get(lib_index)
        if got is None:
            got = [0]
            for show in self.libs[lib_index][2].shows:
                got.append(got[-1] + len(show.season_sizes))
            self._season_prefix[lib_index] = got
        return got

    # ------------------------------------------------------------------ single items, shows
    def get_item(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        try:
            user = self._user(args.get("userId") or q.get("userId"))
        except _NotFound:
            return self.not_found()
        found = self.lookup(args["itemId"])
        if found is None:
            return self.not_found()
        # UserLibraryController.GetItem uses new DtoOptions(): every field, whatever is asked.
        r = self.renderer(QueryParams({}), all_fields=True, user=user)
        out: list[str] = []
        if isinstance(found, _Folder):
            out.append(self.render_folder(r, found))
        else:
            self.render_refs(r, [found], out)
        self._charge_people(request, r)
        listed(request, 1)
        return self.json(out[0])

    def _series_ref(self, series_id: str) -> Ref | None:
        found = self.lookup(series_id)
        return found if isinstance(found, Ref) and found.kind == SERIES else None

    def get_seasons(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        try:
            user = self._user(q.get("userId"))
        except _NotFound:
            return self.not_found()
        ref = self._series_ref(args["seriesId"])
        if ref is None:
            return self.not_found()
        r = self.renderer(q, all_fields=False, user=user)
        library = self.libs[ref.lib][2]
        seasons = library.seasons_of(library.shows[ref.show])
        special = q.flag("isSpecialSeason")
        if special is not None:
            seasons = [s for s in seasons if (s.season_number == 0) == special]
        out: list[str] = []
        self.render_seasons(r, ref.lib, seasons, out)
        self._charge_people(request, r)
        listed(request, len(out))
        return self.query_result(out, len(out), 0)

    def get_episodes(self, request: web.Request, args: dict[str, str], q: QueryParams) -> web.Response:
        try:
            user = self._user(q.get("userId"))
        except _NotFound:
            return self.not_found()
        ref = self._series_ref(args["seriesId"])
        if ref is None:
            return self.not_found()
        library = self.libs[ref.lib][2]
        show = library.shows[ref.show]
        # TvShowsController: an API key sees missing episodes; a user only with the
        # DisplayMissingEpisodes preference (off for ours).
        eps: list[Episode] = list(library.view_of(show, View.JELLYFIN if not user else View.JELLYFIN_PRESENT))
        season_id = q.get("seasonId")
        season_number = q.int("season")
        if season_id:
            found = self.lookup(season_id)
            if not (
                isinstance(found, Ref)
                and found.kind == SEASON
                and found.lib == ref.lib
                and found.show == ref.show
            ):
                return self.not_found()
            season_number = library.seasons_of(show)[found.pos].season_number
        if season_number is not None:
            # Season.GetEpisodes also takes episodes of the series with that season number
            # that sit outside the season folder (no SeasonId).
            eps = [e for e in eps if e.season_number == season_number]
        missing = q.flag("isMissing")
        if missing is not None:
            eps = [e for e in eps if e.virtual == missing]
        total = len(eps)
        start = q.int("startIndex")
        limit = q.int("limit")
        if start is not None or limit is not None:
            begin = start or 0
            eps = eps[begin : None if limit is None else begin + limit]
        r = self.renderer(q, all_fields=False, user=user)
        out: list[str] = []
        self.render_episodes(r, ref.lib, eps, out)
        self._charge_people(request, r)
        listed(request, len(out))
        return self.query_result(out, total, start or 0)


class _NotFound(Exception):
    """A user id or item id that does not exist: 404."""


def parse_auth_parts(value: str) -> dict[str, str]:
    """``AuthorizationContext.GetParts``: ``Key="value", …``; quotes make commas literal,
    values are URL-decoded, keys are case-sensitive."""
    from urllib.parse import unquote_plus

    result: dict[str, str] = {}
    escaped = False
    start = 0
    key = ""
    i = 0
    for i, ch in enumerate(value):
        if ch in ('"', ","):
            escaped = (not escaped) == (ch == '"')
            if ch == "," and not escaped:
                if start < i:
                    result[key] = unquote_plus(value[start:i].strip('"'))
                    key = ""
                start = i + 1
        elif not escaped and ch == "=":
            key = value[start:i].strip()
            start = i + 1
    end = len(value)
    if start < end:
        result[key] = unquote_plus(value[start:end].strip('"'))
    return result


# ============================================================================ the /Items query


@dataclass
class ItemsQuery:
    """The parameters of ``/Items`` that shape what is listed."""

    parent: Ref | _Folder | None
    kinds: frozenset[int]
    recursive: bool
    start: int
    limit: int | None
    count: bool
    descending: bool
    ids: tuple[str, ...] | None
    virtual: bool | None  # False: no missing episodes; True: only them
    min_saved: float | None
    empty: bool  # a filter that nothing passes (an unknown parent, the 10.10 date bug)
    root_listing: bool

    @property
    def needs_filter(self) -> bool:
        return self.min_saved is not None or self.virtual is True

    def cache_key(self) -> tuple[object, ...]:
        return (self.parent, self.kinds, self.recursive, self.virtual, self.min_saved)

    @classmethod
    def parse(cls, q: QueryParams, server: JellyfinServer) -> ItemsQuery:
        parent_text = q.get("ParentId")
        parent: Ref | _Folder | None = None
        empty = False
        if parent_text:
            found = server.lookup(parent_text)
            if found is None:
                # ItemsController with an API key: no such folder, so the query runs from the
                # root with ParentId = that id, and nothing has it as parent.
                empty = True
            elif isinstance(found, Ref) and found.kind == EPISODE:
                empty = True  # not a folder: no children
            else:
                parent = found
        types = {t.lower() for t in q.csv("IncludeItemTypes")}
        kinds = (
            {SERIES, SEASON, EPISODE} if not types else {_ITEM_TYPES[t] for t in types if t in _ITEM_TYPES}
        )
        kinds -= {_ITEM_TYPES[t.lower()] for t in q.csv("ExcludeItemTypes") if t.lower() in _ITEM_TYPES}
        recursive = q.flag("Recursive")
        if recursive is None:
            recursive = server.default_recursive() and bool(types)
        ids_list = [i for i in q.csv("Ids") if _normalize_guid(i) is not None]
        ids = tuple(ids_list) if "Ids" in q and q.csv("Ids") else None
        start = max(q.int("StartIndex") or 0, 0)
        limit = q.int("Limit")
        count = q.flag("EnableTotalRecordCount")
        order = q.csv("SortOrder")
        descending = bool(order) and order[0].lower() == "descending"
        virtual, contradiction = _virtual_filter(q)
        min_saved, nothing = _min_saved(q, server)
        return cls(
            parent=parent,
            kinds=frozenset(kinds),
            recursive=recursive,
            start=start,
            limit=limit,
            count=count is not False,
            descending=descending,
            ids=ids,
            virtual=virtual,
            min_saved=min_saved,
            empty=empty or nothing or contradiction or not kinds,
            root_listing=not parent_text and not recursive and ids is None,
        )


def _virtual_filter(q: QueryParams) -> tuple[bool | None, bool]:
    """``IsMissing`` and the location types, as ItemsController turns them into
    ``IsVirtualItem``: excluding Virtual, or naming up to three types without it, hides
    missing episodes; naming Virtual among fewer than four keeps only them. Returns (the
    filter, whether two of them contradict each other so that nothing passes)."""
    virtual: bool | None = None
    if any(t.lower() == "virtual" for t in q.csv("ExcludeLocationTypes")):
        virtual = False
    location_types = {t.lower() for t in q.csv("LocationTypes")}
    if 0 < len(location_types) < 4:
        virtual = "virtual" in location_types
    missing = q.flag("IsMissing")
    if missing is not None:
        if virtual is not None and virtual != missing:
            return None, True
        virtual = missing
    return virtual, False


def _min_saved(q: QueryParams, server: JellyfinServer) -> tuple[float | None, bool]:
    """(the effective last-saved bound, whether the query matches nothing at all)."""
    plain = q.date("MinDateLastSaved")
    for_user = q.date("MinDateLastSavedForUser")
    if server.min_date_bug():
        # SqliteItemRepository (10.8-10.10) writes both conditions against
        # @MinDateLastSavedForUser but binds @MinDateLastSaved: alone, the plain one
        # compares with NULL and matches nothing; with both, both use the ForUser value.
        if plain is not None and for_user is None:
            return None, True
        return for_user, False
    bounds = [d for d in (plain, for_user) if d is not None]
    return (max(bounds) if bounds else None), False


# ============================================================================ sources


class _SeriesSource(_Source):
    def __init__(self, server: JellyfinServer, lib_index: int, shows: Sequence[int]) -> None:
        self.server, self.lib_index, self.shows = server, lib_index, shows

    def __len__(self) -> int:
        return len(self.shows)

    def render(self, r: _Renderer, start: int, stop: int, out: list[str]) -> None:
        library = self.server.libs[self.lib_index][2]
        self.server.render_series(r, self.lib_index, (library.shows[i] for i in self.shows[start:stop]), out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        for i in self.shows:
            ref = Ref(SERIES, self.lib_index, i, 0)
            if self.server.passes(ref, query):
                yield ref


class _SeasonSource(_Source):
    """Seasons of some shows (all of a library, or one), paged through prefix sums."""

    def __init__(self, server: JellyfinServer, lib_index: int, shows: Sequence[int]) -> None:
        self.server, self.lib_index, self.shows = server, lib_index, shows
        library = server.libs[lib_index][2]
        if len(shows) == len(library.shows):
            self.prefix = server.season_prefix(lib_index)
        else:
            self.prefix = [0]
            for i in shows:
                self.prefix.append(self.prefix[-1] + len(library.shows[i].season_sizes))

    def __len__(self) -> int:
        return self.prefix[-1]

    def _seasons(self, start: int, stop: int) -> Iterator[Season]:
        library = self.server.libs[self.lib_index][2]
        pos = bisect.bisect_right(self.prefix, start) - 1
        at = start
        while at < stop and pos < len(self.shows):
            seasons = library.seasons_of(library.shows[self.shows[pos]])
            first = at - self.prefix[pos]
            take = seasons[first : first + (stop - at)]
            yield from take
            at += len(take)
            pos += 1

    def render(self, r: _Renderer, start: int, stop: int, out: list[str]) -> None:
        self.server.render_seasons(r, self.lib_index, self._seasons(start, stop), out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        library = self.server.libs[self.lib_index][2]
        for i in self.shows:
            for ordinal in range(len(library.shows[i].season_sizes)):
                ref = Ref(SEASON, self.lib_index, i, ordinal)
                if self.server.passes(ref, query):
                    yield ref


class _EpisodeLibrarySource(_Source):
    """Every episode of a library in one view, paged by the library without building the rest."""

    def __init__(self, server: JellyfinServer, lib_index: int, view: View) -> None:
        self.server, self.lib_index, self.view = server, lib_index, view
        self.library = server.libs[lib_index][2]

    def __len__(self) -> int:
        return self.library.episode_total(self.view)

    def render(self, r: _Renderer, start: int, stop: int, out: list[str]) -> None:
        self.server.render_episodes(r, self.lib_index, self.library.episodes(self.view, start, stop), out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        """Shows whose episodes were all saved before the date bound are skipped, and shows
        saved entirely after it are taken whole, from their time bounds and slot flags: only
        shows that straddle the bound are generated (as an indexed query would)."""
        library = self.library
        bound = query.min_saved
        want_virtual = query.virtual
        for show in library.shows:
            whole = True
            if bound is not None:
                _, _, first_saved, last_saved = episode_time_bounds(show)
                if last_saved < bound:
                    continue
                whole = first_saved >= bound
            if whole:
                pos = 0
                for flag in slot_flags(show, library.spec.shape):
                    if flag == DOUBLE_SECOND:
                        continue
                    if want_virtual is None or (flag == VIRTUAL) == want_virtual:
                        yield Ref(EPISODE, self.lib_index, show.index, pos)
                    pos += 1
            else:
                assert bound is not None
                for pos, ep in enumerate(library.view_of(show, View.JELLYFIN)):
                    if (want_virtual is None or ep.virtual == want_virtual) and ep.updated_at >= bound:
                        yield Ref(EPISODE, self.lib_index, show.index, pos)


class _EpisodeListSource(_Source):
    """Episodes already at hand (one show's, one season's)."""

    def __init__(self, server: JellyfinServer, lib_index: int, eps: list[Episode]) -> None:
        self.server, self.lib_index, self.eps = server, lib_index, eps

    def __len__(self) -> int:
        return len(self.eps)

    def render(self, r: _Renderer, start: int, stop: int, out: list[str]) -> None:
        self.server.render_episodes(r, self.lib_index, self.eps[start:stop], out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        library = self.server.libs[self.lib_index][2]
        positions: dict[int, dict[int, int]] = {}
        for ep in self.eps:
            where = positions.get(ep.show_index)
            if where is None:
                view = library.view_of(library.shows[ep.show_index], View.JELLYFIN)
                where = positions[ep.show_index] = {e.ordinal: k for k, e in enumerate(view)}
            if query.virtual is not None and ep.virtual != query.virtual:
                continue
            if query.min_saved is not None and ep.updated_at < query.min_saved:
                continue
            yield Ref(EPISODE, self.lib_index, ep.show_index, where[ep.ordinal])


class _RefSource(_Source):
    """A materialised, filtered listing."""

    def __init__(self, server: JellyfinServer, refs: list[Ref]) -> None:
        self.server, self.items = server, refs

    def __len__(self) -> int:
        return len(self.items)

    def render(self, r: _Renderer, start: int, stop: int, out: list[str]) -> None:
        self.server.render_refs(r, self.items[start:stop], out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        return (ref for ref in self.items if self.server.passes(ref, query))


# ============================================================================ small pieces


def _user_data(key: str, item_id: str, unplayed: int | None = None) -> str:
    count = f'"UnplayedItemCount":{unplayed},' if unplayed is not None else ""
    return (
        f',"UserData":{{{count}"PlaybackPositionTicks":0,"PlayCount":0,"IsFavorite":false,'
        f'"Played":false,"Key":"{key}","ItemId":"{item_id}"}}'
    )


def _external_urls(imdb: str | None, tmdb: str | None, tvdb: str | None, tmdb_kind: str) -> str:
    urls = []
    if imdb:
        urls.append(f'{{"Name":"IMDb","Url":"https://www.imdb.com/title/{imdb}"}}')
    if tmdb:
        urls.append(f'{{"Name":"TheMovieDb","Url":"https://www.themoviedb.org/{tmdb_kind}/{tmdb}"}}')
    if tvdb:
        urls.append(f'{{"Name":"TheTVDB","Url":"https://thetvdb.com/?tab=series&id={tvdb}"}}')
    return f',"ExternalUrls":[{",".join(urls)}]'


def _media_streams(f: MediaFile) -> str:
    return ',"MediaStreams":' + _streams_json(f.video_codec, f.audio_codec, f.width, f.height)


def _provider_ids(imdb: str | None, tmdb: str | None, tvdb: str | None) -> str:
    """ProviderIds: only the ids the item has (``{}`` when none)."""
    if imdb and tmdb and tvdb:
        return ',"ProviderIds":{"Imdb":"' + imdb + '","Tmdb":"' + tmdb + '","Tvdb":"' + tvdb + '"}'
    parts = []
    if imdb:
        parts.append(f'"Imdb":"{imdb}"')
    if tmdb:
        parts.append(f'"Tmdb":"{tmdb}"')
    if tvdb:
        parts.append(f'"Tvdb":"{tvdb}"')
    return f',"ProviderIds":{{{",".join(parts)}}}'


def _part_count(files: tuple[MediaFile, ...]) -> str:
    parts = sum(1 for f in files if f.media_index == 0)
    return f',"PartCount":{parts}' if parts > 1 else ""


def _source_count(files: tuple[MediaFile, ...]) -> str:
    versions = len({f.media_index for f in files})
    return f',"MediaSourceCount":{versions}' if versions > 1 else ""


def _sort_name(title: str) -> str:
    """``BaseItem.CreateSortName``: lower case, a leading article dropped."""
    low = title.strip().lower()
    for article in ("the ", "a ", "an "):
        if low.startswith(article):
            return low[len(article) :]
    return low


def _person_name(h: int) -> str:
    return f"{_FIRST_NAMES[h % len(_FIRST_NAMES)]} {_LAST_NAMES[(h >> 5) % len(_LAST_NAMES)]}"


_CODEC_PROFILE: Final = {"h264": "High", "hevc": "Main 10", "mpeg4": "Advanced Simple Profile"}
_AUDIO_LAYOUT: Final = {
    "aac": ("stereo", 2, 192_000),
    "eac3": ("5.1", 6, 640_000),
    "mp3": ("stereo", 2, 320_000),
}


@functools.lru_cache(maxsize=256)
def _source_middle(vcodec: str, acodec: str, width: int, height: int) -> str:
    """The constant part of a MediaSource between RunTimeTicks and Bitrate."""
    return (
        ',"ReadAtNativeFramerate":false,"IgnoreDts":false,"IgnoreIndex":false,"GenPtsInput":false,'
        '"SupportsTranscoding":true,"SupportsDirectStream":true,"SupportsDirectPlay":true,'
        '"IsInfiniteStream":false,"UseMostCompatibleTranscodingProfile":false,"RequiresOpening":false,'
        '"RequiresClosing":false,"RequiresLooping":false,"SupportsProbing":true,"VideoType":"VideoFile",'
        f'"MediaStreams":{_streams_json(vcodec, acodec, width, height)},"MediaAttachments":[],"Formats":[],'
        '"Bitrate":'
    )


_FILE_TAIL: Final = ',"LocationType":"FileSystem","MediaType":"Video"}'
_VIRTUAL_TAIL: Final = ',"LocationType":"Virtual","MediaType":"Video"}'
_SOURCE_TAIL: Final = (
    ',"RequiredHttpHeaders":{},"TranscodingSubProtocol":"http",'
    '"DefaultAudioStreamIndex":1,"HasSegments":false}'
)


@functools.lru_cache(maxsize=256)
def _streams_json(vcodec: str, acodec: str, width: int, height: int) -> str:
    """The MediaStreams of a version: one video and one audio stream (constant per codec and
    resolution, so encoded once)."""
    label = "4K" if width >= 3840 else "1080p" if height >= 1080 else "720p" if height >= 720 else "480p"
    layout, channels, abitrate = _AUDIO_LAYOUT.get(acodec, ("stereo", 2, 192_000))
    video = {
        "Codec": vcodec,
        "TimeBase": "1/1000",
        "VideoRange": "SDR",
        "VideoRangeType": "SDR",
        "AudioSpatialFormat": "None",
        "DisplayTitle": f"{label} {vcodec.upper()} SDR",
        "IsInterlaced": False,
        "IsAVC": vcodec == "h264",
        "BitRate": 4_000_000 if width < 3840 else 16_000_000,
        "BitDepth": 10 if vcodec == "hevc" else 8,
        "RefFrames": 1,
        "IsDefault": True,
        "IsForced": False,
        "IsHearingImpaired": False,
        "Height": height,
        "Width": width,
        "AverageFrameRate": 23.976025,
        "RealFrameRate": 23.976025,
        "Profile": _CODEC_PROFILE.get(vcodec, "Main"),
        "Type": "Video",
        "AspectRatio": "16:9" if width * 9 == height * 16 else "3:2",
        "Index": 0,
        "IsExternal": False,
        "IsTextSubtitleStream": False,
        "SupportsExternalStream": False,
        "PixelFormat": "yuv420p10le" if vcodec == "hevc" else "yuv420p",
        "Level": 150 if vcodec == "hevc" else 41,
        "IsAnamorphic": False,
    }
    audio = {
        "Codec": acodec,
        "Language": "eng",
        "TimeBase": "1/1000",
        "VideoRange": "Unknown",
        "VideoRangeType": "Unknown",
        "AudioSpatialFormat": "None",
        "LocalizedDefault": "Default",
        "LocalizedExternal": "External",
        "DisplayTitle": f"English - {acodec.upper()} - {layout} - Default",
        "IsInterlaced": False,
        "IsAVC": False,
        "ChannelLayout": layout,
        "BitRate": abitrate,
        "Channels": channels,
        "SampleRate": 48000,
        "IsDefault": True,
        "IsForced": False,
        "IsHearingImpaired": False,
        "Type": "Audio",
        "Index": 1,
        "IsExternal": False,
        "IsTextSubtitleStream": False,
        "SupportsExternalStream": False,
        "Level": 0,
    }
    return msgspec.json.encode([video, audio]).decode()


# ============================================================================ Emby


class EmbyServer(JellyfinServer):
    """Emby 4.8: the same API under ``/emby`` (and without it), its own auth forms, a query
    result without ``StartIndex``, strings in plain UTF-8, no ``null`` GUIDs."""

    kind: ClassVar[str] = "emby"
    product_name: ClassVar[str] = "Emby Server"
    query_start_index: ClassVar[bool] = False
    null_guids: ClassVar[bool] = False
    emby_version: ClassVar[str] = "4.8.10.0"

    def version_string(self) -> str:
        return self.emby_version

    def legacy_auth(self) -> bool:
        return True

    def legacy_prefixes(self) -> tuple[str, ...]:
        return ("/emby",)

    def min_date_bug(self) -> bool:
        return False  # Jellyfin's SQL bug came after the fork

    def default_recursive(self) -> bool:
        return False

    def encode_string(self, value: str) -> str:
        return plain_string(value)

    def token_of(self, request: web.Request) -> str | None:
        """Emby: ``X-Emby-Token`` or ``api_key``; or the token inside ``Authorization: Emby …``
        / ``X-Emby-Authorization``."""
        token = request.headers.get("X-Emby-Token")
        if not token:
            token = QueryParams(request.query).get("api_key")
        if not token:
            for header in ("X-Emby-Authorization", "Authorization"):
                parts = self._auth_parts(request.headers.get(header), True)
                if parts and parts.get("Token"):
                    token = parts["Token"]
                    break
        return token or None


__all__ = ["EmbyServer", "JellyfinServer", "Route", "jf_date", "jf_etag", "js_string"]
