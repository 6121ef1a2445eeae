"""The endpoints that list items: ``/Items``, ``/Items/{id}``, ``/Shows/{id}/Seasons`` and
``/Shows/{id}/Episodes`` (and their ``/Users/{userId}/…`` forms).

``/Items`` pages with ``StartIndex``/``Limit`` and no cap; ``TotalRecordCount`` is a full
``COUNT(*)`` unless ``EnableTotalRecordCount=false``, when it is the page length. With an
API key there is no user: items carry no ``UserData``, and ``/Shows/{id}/Episodes`` lists
missing episodes (a user sees them only with DisplayMissingEpisodes, off here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from importer.emulator.jellyfin.catalog import SEASON, SERIES, Folder, Ref
from importer.emulator.jellyfin.dto import Renderer, renderer
from importer.emulator.jellyfin.episodes import render_episodes
from importer.emulator.jellyfin.folders import render_library, render_seasons
from importer.emulator.jellyfin.listing import render_refs
from importer.emulator.jellyfin.params import QueryParams
from importer.emulator.jellyfin.query import ItemsQuery
from importer.emulator.jellyfin.responses import NotFound, json_response, not_found
from importer.emulator.jellyfin.users import request_user
from importer.emulator.library import Episode, View
from importer.emulator.server import charge, charge_people, listed

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer


def get_items(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    user = request_user(server, args.get("userId") or q.get("userId"))
    query = ItemsQuery.parse(q, server)
    r = renderer(server, q, all_fields=False, user=user)
    if query.root_listing:
        # ItemsController: not recursive, no ids, no parent -> the root folder's
        # children (the libraries), whatever the other filters say.
        items = [render_library(r, f) for f in server.folders]
        return _page(server, request, r, items, len(items), query.start)
    listing = server.lister.listing(query)
    out: list[str] = []
    stop = listing.total if query.limit is None else query.start + max(query.limit, 0)
    listing.render(r, query.start, stop, query.descending, out)
    total = len(out)
    if query.count:
        total = listing.total
        if query.limit is not None or query.start:
            # BaseItemRepository: a paged query with the count on runs a full COUNT(*).
            charge(request, server.controls.count_cost_ms * 1000)
    return _page(server, request, r, out, total, query.start)


def get_item(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    user = request_user(server, args.get("userId") or q.get("userId"))
    found = server.catalog.lookup(args["itemId"])
    if found is None:
        return not_found()
    # UserLibraryController.GetItem uses new DtoOptions(): every field, whatever is asked.
    r = renderer(server, QueryParams({}), all_fields=True, user=user)
    out: list[str] = []
    if isinstance(found, Folder):
        out.append(render_library(r, found))
    else:
        render_refs(r, server.catalog, [found], out)
    _charge_people(server, request, r)
    listed(request, 1)
    return json_response(out[0])


def get_seasons(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    user = request_user(server, q.get("userId"))
    ref = _series(server, args["seriesId"])
    r = renderer(server, q, all_fields=False, user=user)
    library = server.catalog.libraries[ref.lib]
    seasons = library.seasons_of(library.shows[ref.show])
    special = q.flag("isSpecialSeason")
    if special is not None:
        seasons = [s for s in seasons if (s.season_number == 0) == special]
    out: list[str] = []
    render_seasons(r, ref.lib, seasons, out)
    return _page(server, request, r, out, len(out), 0)


def get_episodes(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    user = request_user(server, q.get("userId"))
    ref = _series(server, args["seriesId"])
    library = server.catalog.libraries[ref.lib]
    show = library.shows[ref.show]
    # TvShowsController: an API key sees missing episodes; a user only with the
    # DisplayMissingEpisodes preference (off for ours).
    eps: list[Episode] = list(library.view_of(show, View.JELLYFIN if not user else View.JELLYFIN_PRESENT))
    season_id = q.get("seasonId")
    season_number = q.int("season")
    if season_id:
        found = server.catalog.lookup(season_id)
        if not (
            isinstance(found, Ref)
            and found.kind == SEASON
            and found.lib == ref.lib
            and found.show == ref.show
        ):
            return not_found()
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
    r = renderer(server, q, all_fields=False, user=user)
    out: list[str] = []
    render_episodes(r, ref.lib, eps, out)
    return _page(server, request, r, out, total, start or 0)


def _series(server: JellyfinServer, series_id: str) -> Ref:
    found = server.catalog.lookup(series_id)
    if not (isinstance(found, Ref) and found.kind == SERIES):
        raise NotFound
    return found


def _page(
    server: JellyfinServer, request: web.Request, r: Renderer, items: list[str], total: int, start: int
) -> web.Response:
    """A query result, with the items logged and charged for."""
    _charge_people(server, request, r)
    listed(request, len(items))
    return server.query_result(items, total, start)


def _charge_people(server: JellyfinServer, request: web.Request, r: Renderer) -> None:
    # Fields=People costs people_cost_factor times the item cost (listed() charges 1x), and
    # people_cost_s per item on top: GetPeople ran once per item on 10.10 and 10.11.
    if r.people_items:
        controls = server.controls
        extra = r.people_items * controls.item_cost_us * max(controls.people_cost_factor - 1, 0)
        charge(request, extra)
        if controls.people_cost_s:
            charge_people(request, r.people_items * controls.people_cost_s * 1e6)
