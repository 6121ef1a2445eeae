"""The emulated server: its sections, its routes, and the handlers that read a request,
select its items and answer in the format asked for."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Final, cast

from aiohttp import web

from importer.emulator.feeds import plex as feed
from importer.emulator.library import Episode, Season, Show, View, mix
from importer.emulator.plex import containers, documents, meta, plextv
from importer.emulator.plex.formats import Format, Group
from importer.emulator.plex.items import Renderer
from importer.emulator.plex.memo import Memo
from importer.emulator.plex.query import (
    EPISODE,
    MISSING_SIZE,
    SEASON,
    SHOW,
    BadRequest,
    Options,
    Page,
    Query,
    format_of,
    int_param,
    parse_filters,
    parse_options,
    parse_page,
    parse_sort,
)
from importer.emulator.plex.sections import MOVIE_SECTION, Heading, Section
from importer.emulator.plex.selection import Selection
from importer.emulator.server import EmulatedServer, listed


def _html(code: int, reason: str) -> bytes:
    """The HTML error page PMS answers with, whatever format was asked for."""
    return b"<html><head><title>%s</title></head><body><h1>%d %s</h1></body></html>" % (
        reason.encode(),
        code,
        reason.encode(),
    )


_HTML_400: Final = _html(400, "Bad Request")
_HTML_401: Final = _html(401, "Unauthorized")
_HTML_404: Final = _html(404, "Not Found")


class PlexServer(EmulatedServer):
    """An emulated Plex Media Server: one TV section per library, plus an empty Movies one."""

    kind = "plex"
    public_paths: ClassVar[frozenset[str]] = frozenset({"/identity"})
    #: thousands of ratingKeys in one URL got a 400 (Kometa #2284); where exactly PMS or a
    #: proxy gives up is not known: 4096 by default, ``Controls.url_limit`` to change it
    default_url_limit: ClassVar[int] = 4096

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # EmulatedServer's arguments
        super().__init__(*args, **kwargs)
        self.machine_identifier = (
            f"{mix(self.seed, 71):016x}{mix(self.seed, 72):016x}{mix(self.seed, 73) >> 32:08x}"
        )
        self.friendly_name = "Emulated Plex"
        self.movie_uuid = f"{mix(self.seed, 75) >> 32:08x}-0000-4000-8000-000000000001"
        self.movies = Heading(MOVIE_SECTION, "Movies", self.movie_uuid, "movie")
        self.sections: dict[int, Section] = {}
        self._renderers: Memo[tuple[int, Format], Renderer] = Memo(
            lambda key: Renderer(self.sections[key[0]], key[1])
        )
        self.libraries_added()
        #: the plex.tv PIN login, served here for tests (see plextv.py)
        self.plextv = plextv.PlexTv()

    def libraries_added(self) -> None:
        """One section per TV library, keys from 2 (1 is the movies); a library added later
        gets the next key and ratingKeys above every earlier section's."""
        offset = sum(sec.library.max_rating_key for sec in self.sections.values())
        for n, lib in enumerate(self.libraries[len(self.sections) :], start=len(self.sections)):
            key = n + 2
            u = f"{mix(self.seed, 74, key):016x}{mix(self.seed, 76, key):016x}"
            uuid = f"{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:32]}"
            self.sections[key] = Section(key, lib.name, lib.library, offset, n * 10**13, uuid)
            offset += lib.library.max_rating_key
        self._selections = {key: Selection(sec) for key, sec in self.sections.items()}
        self._renderers.clear()

    def library_changed(self) -> None:
        super().library_changed()
        for sec in self.sections.values():
            sec.forget()
        self._selections = {key: Selection(sec) for key, sec in self.sections.items()}
        self._renderers.clear()

    # ------------------------------------------------------------------ plumbing
    def token_of(self, request: web.Request) -> str | None:
        return request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token")

    def is_public(self, path: str) -> bool:
        # plex.tv's PINs need no token
        return path in self.public_paths or path == "/api/v2/pins" or path.startswith("/api/v2/pins/")

    def unauthorized(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(f"{self.base_path}/api/v2/"):
            return plextv.plex_tv_error(401, 1001, "User could not be authenticated")
        # As recorded (watchstate fixture sections_get_401): HTML, whatever was asked for.
        return self._plain(401, _HTML_401, "text/html")

    def url_too_long(self, request: web.Request) -> web.StreamResponse:
        return self._plain(400, _HTML_400, "text/html")

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
        for path in feed.WEBSOCKET_PATHS:  # live notifications (feeds/plex.py)
            get(path, functools.partial(feed.websocket, self))
        get(feed.EVENTSOURCE_PATH, functools.partial(feed.eventsource, self))
        # plex.tv and clients.plex.tv, for the PIN login (plextv.py)
        router.add_post("/api/v2/pins", functools.partial(plextv.post_pins, self))
        get("/api/v2/pins/{id}", functools.partial(plextv.get_pin, self))
        get("/api/v2/resources", functools.partial(plextv.get_resources, self))
        get("/api/v2/user", functools.partial(plextv.get_user, self))
        router.add_post("/_emulator/pins/{pin}/authorize", functools.partial(plextv.post_authorize, self))

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
    def _answer(fmt: Format, body: bytes, page: tuple[int, int] | None = None) -> web.Response:
        """``page``: (offset, total) for the paging headers."""
        headers = {"X-Plex-Protocol": "1.0"}
        if page is not None:
            headers["X-Plex-Container-Start"] = str(page[0])
            headers["X-Plex-Container-Total-Size"] = str(page[1])
        return web.Response(
            body=body, content_type=fmt.content_type, charset=None if fmt.json else "utf-8", headers=headers
        )

    def _section_of(self, request: web.Request) -> Section | None:
        """The TV section named in the path; None for the Movies section; 404 otherwise."""
        raw = request.match_info["section"]
        if raw == str(MOVIE_SECTION):
            return None
        try:
            return self.sections[int(raw)]
        except (ValueError, KeyError):
            raise web.HTTPNotFound() from None

    def _page(self, request: web.Request, required: bool) -> Page:
        return parse_page(request, required, self.controls.page_cap)

    def renderer(self, sec: Section, fmt: Format) -> Renderer:
        return self._renderers[sec.key, fmt]

    def select(self, sec: Section, q: Query, start: int, size: int | None) -> tuple[int, list[object]]:
        """(total, ``size`` items from ``start``) of a listing: Show, (Show, Season) or Episode
        items; ``size`` None: all of them."""
        return self._selections[sec.key].select(q, start, size)

    # ------------------------------------------------------------------ server-level
    def _root(self, request: web.Request) -> web.Response:
        fmt = format_of(request)
        now = int(self.controls.now())
        return self._answer(fmt, documents.root(fmt, self.friendly_name, self.machine_identifier, now))

    def _identity(self, request: web.Request) -> web.Response:
        """Public: no token needed (plex-spec-lh ``/identity`` has ``security: - {}``)."""
        fmt = format_of(request)
        return self._answer(fmt, documents.identity(fmt, self.machine_identifier))

    def _library(self, request: web.Request) -> web.Response:
        fmt = format_of(request)
        return self._answer(fmt, documents.library(fmt))

    def _sections(self, request: web.Request) -> web.Response:
        fmt = format_of(request)
        return self._answer(fmt, documents.sections(fmt, self.movies, self.sections.values()))

    def _section(self, request: web.Request) -> web.Response:
        fmt = format_of(request)
        sec = self._section_of(request)
        return self._answer(fmt, documents.section_menu(fmt, sec.heading if sec else self.movies))

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
        fmt = format_of(request)
        sec = self._section_of(request)
        q = request.query
        by_key, desc = parse_sort(q.get("sort"))
        limit = int_param(request, "limit")
        filters = parse_filters(q.items(), default_level, self.controls.now())
        query = Query(level, filters, by_key, desc, limit)
        if sec is None or level not in (SHOW, SEASON, EPISODE):
            total, items = 0, list[object]()
        else:
            total, items = self.select(sec, query, page.start, page.size)
        rendered = self._render(fmt, sec, level, items, parse_options(request)) if sec else []
        listed(request, len(rendered))
        head = sec.heading if sec else self.movies
        groups: list[Group] = []
        if q.get("includeMeta") == "1":
            groups.append(("Meta", meta.listing_meta(fmt, head.key, sec is not None)))
        groups.append(("Metadata", rendered))
        pairs = containers.listing(head, len(rendered), total, page.start)
        return self._answer(fmt, fmt.document(pairs, groups), (page.start, total))

    def _render(
        self, fmt: Format, sec: Section, level: int, items: list[object], opts: Options
    ) -> list[bytes]:
        r = self.renderer(sec, fmt)
        if level == EPISODE:
            return r.episodes(cast(list[Episode], items), opts)
        if level == SEASON:
            return [r.season(show, season, opts) for show, season in cast(list[tuple[Show, Season]], items)]
        return [r.show(show, opts) for show in cast(list[Show], items)]

    def _collections(self, request: web.Request) -> web.Response:
        """No collections; with ``includeMeta=1`` the collection type."""
        fmt = format_of(request)
        sec = self._section_of(request)
        page = self._page(request, required=False)
        head = sec.heading if sec else self.movies
        groups: list[Group] = []
        if request.query.get("includeMeta") == "1":
            groups.append(("Meta", meta.collections_meta(fmt, head.key)))
        pairs = containers.listing(head, 0, 0, page.start)
        return self._answer(fmt, fmt.document(pairs, groups), (page.start, 0))

    # ------------------------------------------------------------------ metadata
    def lookup(self, key: int) -> tuple[Section, str, Show, object] | None:
        """What a ratingKey names: (section, kind, show, Show | Season | Episode)."""
        for sec in self.sections.values():
            if sec.min_key <= key < sec.max_key:
                found = sec.lookup(key)
                return None if found is None else (sec, *found)
        return None

    @staticmethod
    def _ids(raw: str) -> list[int]:
        try:
            return list(dict.fromkeys(int(k) for k in raw.split(",") if k.strip()))
        except ValueError:
            raise BadRequest("ratingKeys are integers") from None

    def _metadata(self, request: web.Request) -> web.Response:
        """``/library/metadata/{id[,id...]}``: missing ids are skipped; all missing is a 404."""
        fmt = format_of(request)
        # a detail fetch carries Guid[] without includeGuids (python-plexapi reloads items
        # with /library/metadata/{id} and still finds their guids)
        opts = parse_options(request, detail=True)._replace(guids=True)
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
        pairs = containers.metadata(found[0][0].heading, len(items))
        return self._answer(fmt, fmt.document(pairs, [("Metadata", items)]))

    def _children(self, request: web.Request) -> web.Response:
        """A show's seasons, after the synthetic "All episodes" directory unless
        ``excludeAllLeaves=1``; a season's episodes. ``index=N`` picks one (python-plexapi)."""
        return self._descendants(request, leaves=False)

    def _all_leaves(self, request: web.Request) -> web.Response:
        """A show's or a season's episodes."""
        return self._descendants(request, leaves=True)

    def _descendants(self, request: web.Request, leaves: bool) -> web.Response:
        """The children (``leaves``: the episodes) of one item; an episode has none."""
        ids = self._ids(request.match_info["id"])
        hit = self.lookup(ids[0]) if len(ids) == 1 else None
        if hit is None:
            raise web.HTTPNotFound()
        sec, kind, show, item = hit
        index = None if leaves else int_param(request, "index")
        season: Season | None = None
        items: Sequence[object]
        if kind == "season":
            season = cast(Season, item)
            number = season.season_number
            episodes = [e for e in sec.library.view_of(show, View.PLEX) if e.season_number == number]
            if index is not None:
                episodes = [e for e in episodes if e.episode_number == index]
            items = episodes
        elif kind == "episode":
            items, leaves = [], True
        elif leaves:
            items = sec.library.view_of(show, View.PLEX)
        else:
            seasons = [s for s in sec.info(show.index).seasons if index is None or s.season_number == index]
            lead: list[object] = [] if request.query.get("excludeAllLeaves") == "1" else ["all"]
            items = lead + [(show, s) for s in seasons]
        return self._hierarchy(request, sec, show, season, items, leaves)

    def _hierarchy(
        self,
        request: web.Request,
        sec: Section,
        show: Show,
        season: Season | None,
        items: Sequence[object],
        leaves: bool,
    ) -> web.Response:
        """A page of a show's or a season's children."""
        fmt = format_of(request)
        page = self._page(request, required=False)
        opts = parse_options(request)
        total = len(items)
        window = items[page.start : page.stop(total)]
        r = self.renderer(sec, fmt)
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
        size = len(directories) + len(metadata)
        listed(request, size)
        paging = (total, page.start) if page.paged else None
        pairs = containers.hierarchy(sec.heading, sec.info(show.index), season, leaves, size, paging)
        groups: list[Group] = [("Directory", directories), ("Metadata", metadata)]
        if not fmt.json:  # in XML the children keep their order: the directory comes first
            groups = [("Metadata", directories + metadata)]
        return self._answer(fmt, fmt.document(pairs, groups), (page.start, total))
