"""The servers: :class:`JellyfinServer` and :class:`EmbyServer`, their routes, the quirks
of each version, and the state their endpoints share.

Routing is ASP.NET's: paths and query parameter names are case-insensitive, ids bind as
GUIDs with or without dashes, and ``/emby/...`` and ``/mediabrowser/...`` are rewritten to
``/...`` before 12.0 (``LegacyEmbyRouteRewriteMiddleware``).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from importer.emulator.feeds import jellyfin as feed
from importer.emulator.jellyfin import items, libraries, login, people, quickconnect, system, users
from importer.emulator.jellyfin.auth import emby_token, jellyfin_token
from importer.emulator.jellyfin.catalog import Catalog, Folder
from importer.emulator.jellyfin.frags import ShowFragsCache
from importer.emulator.jellyfin.ids import emby_number, hex_id, normalize_guid
from importer.emulator.jellyfin.listing import Lister
from importer.emulator.jellyfin.params import BadRequest, QueryParams
from importer.emulator.jellyfin.responses import NotFound, json_response, not_found, problem
from importer.emulator.jellyfin.values import js_string, plain_string
from importer.emulator.server import EmulatedServer

Handler = Callable[
    ["JellyfinServer", web.Request, dict[str, str], QueryParams],
    web.StreamResponse | Awaitable[web.StreamResponse],
]
#: what most routes answer (GET and HEAD); a login is a POST
READ: frozenset[str] = frozenset({"GET", "HEAD"})
POST: frozenset[str] = frozenset({"POST"})


@dataclass(frozen=True)
class Route:
    """One route: the path template served, the handler, and the OpenAPI operation (path)
    whose response schema the answer follows (legacy routes have none of their own)."""

    template: str
    handler: Handler
    operation: str
    methods: frozenset[str] = READ

    def regex(self) -> re.Pattern[str]:
        rx = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        return re.compile(rx + "/?", re.IGNORECASE)


class JellyfinServer(EmulatedServer):
    """Jellyfin 10.10-12 over a generated library. ``controls.jellyfin_version`` picks the
    version whose quirks apply."""

    kind: ClassVar[str] = "jellyfin"
    product_name: ClassVar[str] = "Jellyfin Server"
    #: Emby writes no StartIndex in a query result, and no ``ChannelId: null``.
    query_start_index: ClassVar[bool] = True
    null_guids: ClassVar[bool] = True
    #: Emby's shapes of ids: numeric item and person ids, integer studio and genre ids
    numeric_ids: bool = False

    ROUTES: ClassVar[tuple[Route, ...]] = (
        Route("/System/Info/Public", system.get_public_info, "/System/Info/Public"),
        Route("/System/Info", system.get_system_info, "/System/Info"),
        Route("/Users/Me", users.get_me, "/Users/Me"),
        Route("/Users", users.get_users, "/Users"),
        Route("/Library/VirtualFolders", libraries.get_virtual_folders, "/Library/VirtualFolders"),
        Route("/Library/MediaFolders", libraries.get_media_folders, "/Library/MediaFolders"),
        Route("/UserViews", libraries.get_user_views, "/UserViews"),
        Route("/Users/{userId}/Views", libraries.get_user_views, "/UserViews"),
        Route("/Items", items.get_items, "/Items"),
        Route("/Users/{userId}/Items", items.get_items, "/Items"),
        Route("/Items/{itemId}", items.get_item, "/Items/{itemId}"),
        Route("/Users/{userId}/Items/{itemId}", items.get_item, "/Items/{itemId}"),
        Route("/Shows/{seriesId}/Seasons", items.get_seasons, "/Shows/{seriesId}/Seasons"),
        Route("/Shows/{seriesId}/Episodes", items.get_episodes, "/Shows/{seriesId}/Episodes"),
        Route("/Users/{userId}", users.get_user, "/Users/{userId}"),
    )
    #: logging in (not among ``routes()``: the OpenAPI cases there are GETs of the library)
    LOGIN_ROUTES: ClassVar[tuple[Route, ...]] = (
        Route("/Users/AuthenticateByName", login.authenticate_by_name, "/Users/AuthenticateByName", POST),
        Route("/QuickConnect/Enabled", quickconnect.get_enabled, "/QuickConnect/Enabled"),
        Route("/QuickConnect/Initiate", quickconnect.post_initiate, "/QuickConnect/Initiate", POST),
        Route("/QuickConnect/Connect", quickconnect.get_connect, "/QuickConnect/Connect"),
        Route("/QuickConnect/Authorize", quickconnect.post_authorize, "/QuickConnect/Authorize", POST),
        Route(
            "/Users/AuthenticateWithQuickConnect",
            quickconnect.authenticate_with_quick_connect,
            "/Users/AuthenticateWithQuickConnect",
            POST,
        ),
    )
    #: paths that answer without a token (lower case, after the legacy prefix)
    PUBLIC: ClassVar[frozenset[str]] = frozenset(
        {
            "/system/info/public",
            "/users/authenticatebyname",
            "/quickconnect/enabled",
            "/quickconnect/initiate",
            "/quickconnect/connect",
            "/users/authenticatewithquickconnect",
        }
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # EmulatedServer's arguments
        super().__init__(*args, **kwargs)
        # Annotated: the endpoint modules import this one, and mypy reads them first.
        self.server_id: str = hex_id(self.seed, 7, 0)
        self.user_id: str = hex_id(self.seed, 9, 0)
        self.user_name: str = "emulator"
        self.server_name: str = f"importer-emulator-{self.kind}"
        #: Strings as this server writes them; titles repeat across a show's items.
        self.escape: Callable[[str], str] = functools.lru_cache(maxsize=1 << 16)(self.encode_string)
        self.libraries_added()
        self.sid_json: str = f',"ServerId":"{self.server_id}"'
        # the login routes first: /Users/AuthenticateByName is not a /Users/{userId}
        self._compiled = [(route, route.regex()) for route in self.LOGIN_ROUTES + self.ROUTES]
        self.quick_connect: quickconnect.QuickConnect = quickconnect.QuickConnect()
        self._people: dict[str, tuple[int, int]] | None = None  # person id -> (library, place)

    def libraries_added(self) -> None:
        """Index the libraries (at the start, and when one is added)."""
        self.catalog: Catalog = Catalog(
            self.server_id, self.libraries, emby_number if self.numeric_ids else None
        )
        self.folders: list[Folder] = self.catalog.folders
        self.lister: Lister = Lister(self.catalog)
        self.frags: ShowFragsCache = ShowFragsCache(self.catalog.libraries, self.escape, self.catalog.item_id)
        self._people = None

    def person(self, person_id: str) -> tuple[int, int] | None:
        """(library, place in its people pool) of a person's id, or None when the id is not a
        person's (a test asserts that no ``GET /Items/{personId}`` was made)."""
        if self._people is None:
            self._people = {
                people.person_id(self, lib_index, n): (lib_index, n)
                for lib_index, lib in enumerate(self.catalog.libraries)
                for n in range(lib.credits.size)
            }
        key = person_id.strip() if self.numeric_ids else normalize_guid(person_id)
        return None if key is None else self._people.get(key)

    def is_person_id(self, item_id: str) -> bool:
        return self.person(item_id) is not None

    def library_changed(self) -> None:
        super().library_changed()
        self.catalog.forget()
        self.lister.forget()
        self.frags.clear()

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
        return jellyfin_token(request, self.legacy_auth())

    def is_public(self, path: str) -> bool:
        return self._strip_prefix(path).lower().rstrip("/") in self.PUBLIC

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
        if feed.is_upgrade(request):  # the websocket of LibraryChanged (feeds/jellyfin.py)
            return await feed.websocket(self, request)
        found = self.match(self.route_path(request))
        if found is None:
            return web.Response(status=404)
        route, args = found
        if request.method not in route.methods:
            return web.Response(status=405)
        try:
            answer = route.handler(self, request, args, QueryParams(request.query))
            return await answer if inspect.isawaitable(answer) else answer
        except BadRequest as exc:
            return problem(400, "One or more validation errors occurred.", str(exc))
        except NotFound:
            return not_found()

    # ------------------------------------------------------------------ responses
    def query_result(self, items: list[str], total: int, start: int) -> web.Response:
        tail = f',"StartIndex":{start}' if self.query_start_index else ""
        return json_response(f'{{"Items":[{",".join(items)}],"TotalRecordCount":{total}{tail}}}')


class EmbyServer(JellyfinServer):
    """Emby 4.8: the same API under ``/emby`` (and without it), its own auth forms, a query
    result without ``StartIndex``, strings in plain UTF-8, no ``null`` GUIDs."""

    kind: ClassVar[str] = "emby"
    product_name: ClassVar[str] = "Emby Server"
    query_start_index: ClassVar[bool] = False
    null_guids: ClassVar[bool] = False
    emby_version: ClassVar[str] = "4.8.10.0"
    #: a password login; no Quick Connect (Emby 4.8's API has only Emby Connect): a 404
    LOGIN_ROUTES: ClassVar[tuple[Route, ...]] = JellyfinServer.LOGIN_ROUTES[:1]

    def __init__(self, *args: Any, numeric_ids: bool = False, **kwargs: Any) -> None:
        """``numeric_ids``: Emby's own id shapes (research A3): item and person ids are
        numbers in strings, ``Studios`` and ``GenreItems`` ids integers. Off by default:
        the GUIDs of Jellyfin, which older tests of this emulator expect."""
        self.numeric_ids = numeric_ids
        super().__init__(*args, **kwargs)

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
        return emby_token(request)
