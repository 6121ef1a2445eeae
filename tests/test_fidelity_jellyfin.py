"""Does the emulated Jellyfin (and Emby) answer like the real one?

1. Every route it serves answers with a body that the official Jellyfin OpenAPI spec
   (10.10.7, 10.11.11, 12.0.0) accepts for that operation, including virtual and double
   episodes, episodes without SeasonId and items without optional fields; and the routes
   validated here are exactly the routes the server registers.
2. Real clients from PyPI (jellyfin-apiclient-python, aiojellyfin) read the whole library,
   and what they read equals the generator's library.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from jellyfin_helpers import (
    SPEC_VERSIONS,
    TOKEN,
    Http,
    assert_valid,
    expected_provider_ids,
    small_library,
    validation_error,
)

from importer.emulator.jellyfin import EmbyServer, JellyfinServer
from importer.emulator.library import Episode, Library, View

ALL_FIELDS = (
    "Path,MediaSources,MediaSourceCount,MediaStreams,ProviderIds,Overview,DateCreated,Etag,SortName,Genres,"
    "People,ExternalUrls,ParentId,Studios,Tags,Taglines,RemoteTrailers,CanDelete,CanDownload,ChildCount,"
    "RecursiveItemCount,PrimaryImageAspectRatio,Chapters,DateLastSaved,SpecialEpisodeNumbers,NotAField"
)
IMPORTER_FIELDS = "Path,MediaSources,ProviderIds,Overview,DateCreated,Etag,SortName"


@dataclass(frozen=True)
class Case:
    template: str  # the route it exercises
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class Picks:
    """Items of the small library worth asking for one by one."""

    lib: str
    movies: str
    user: str
    series: str  # a show with a virtual and a double episode
    no_season_series: str  # a show whose episodes lack SeasonId
    season: str
    episodes: list[str]  # virtual, double, without SeasonId, two versions, two parts


def picks(server: JellyfinServer) -> Picks:
    lib = small_library()
    eps = list(lib.episodes(View.JELLYFIN))

    def first(pred: Any) -> Episode:
        return next(e for e in eps if pred(e))

    # The smallest show with both a missing and a double episode, to list it whole.
    shows = sorted(lib.shows, key=lambda s: s.slot_count)
    show = next(
        s
        for s in shows
        if any(e.virtual for e in lib.view_of(s, View.JELLYFIN))
        and any(e.episode_number_end for e in lib.view_of(s, View.JELLYFIN))
    )
    virtual = first(lambda e: e.virtual and e.show_index == show.index)
    double = first(lambda e: e.episode_number_end and e.show_index == show.index)
    seasonless = first(lambda e: not e.has_season_id)
    versions = first(lambda e: len({f.media_index for f in e.files}) > 1)
    parts = first(lambda e: len({f.part_index for f in e.files}) > 1)
    unicode_title = first(lambda e: not e.title.isascii())
    chosen = [virtual, double, seasonless, versions, parts, unicode_title]
    return Picks(
        lib=server.folders[0].id,
        movies=server.folders[-1].id,
        user=server.user_id,
        series=lib.jellyfin_id(1, virtual.show_index),
        no_season_series=lib.jellyfin_id(1, seasonless.show_index),
        season=lib.jellyfin_id(2, virtual.show_index, 0),
        episodes=[lib.jellyfin_id(3, e.show_index, e.ordinal) for e in chosen],
    )


def cases(p: Picks) -> list[Case]:
    lib = {"ParentId": p.lib, "Recursive": "true"}
    out = [
        Case("/System/Info/Public", "/System/Info/Public"),
        Case("/System/Info", "/System/Info"),
        Case("/Users", "/Users"),
        Case("/Users/Me", "/Users/Me", status=400),  # an API key has no user
        Case("/Users/{userId}", f"/Users/{p.user}"),
        Case("/Library/VirtualFolders", "/Library/VirtualFolders"),
        Case("/Library/MediaFolders", "/Library/MediaFolders"),
        Case("/UserViews", "/UserViews", {"userId": p.user}),
        Case("/Users/{userId}/Views", f"/Users/{p.user}/Views"),
        Case("/Items", "/Items"),  # the root folder's children: the libraries
        Case("/Items", "/Items", {"ParentId": p.movies, "Recursive": "true"}),
        Case("/Items/{itemId}", f"/Items/{p.lib}"),
        Case("/Shows/{seriesId}/Seasons", f"/Shows/{p.series}/Seasons"),
        Case(
            "/Shows/{seriesId}/Seasons",
            f"/Shows/{p.series}/Seasons",
            {"userId": p.user, "Fields": ALL_FIELDS},
        ),
        Case("/Shows/{seriesId}/Episodes", f"/Shows/{p.series}/Episodes", {"Fields": ALL_FIELDS}),
        Case(
            "/Shows/{seriesId}/Episodes",
            f"/Shows/{p.series}/Episodes",
            {"seasonId": p.season, "userId": p.user},
        ),
        Case(
            "/Shows/{seriesId}/Episodes",
            f"/Shows/{p.no_season_series}/Episodes",
            {"season": 1, "isMissing": "false", "Limit": 100},
        ),
    ]
    for kind in ("Series", "Season", "Episode"):
        # Pages, not whole listings: validating an item costs milliseconds.
        page = {"StartIndex": 20, "Limit": 120}
        out += [
            Case("/Items", "/Items", {**lib, "IncludeItemTypes": kind, **page}),
            Case("/Items", "/Items", {**lib, "IncludeItemTypes": kind, "Fields": ALL_FIELDS, **page}),
            Case(
                "/Items",
                "/Items",
                {
                    **lib,
                    "IncludeItemTypes": kind,
                    "Fields": IMPORTER_FIELDS,
                    "EnableImages": "false",
                    "EnableUserData": "false",
                    "EnableTotalRecordCount": "false",
                    **page,
                },
            ),
            Case(
                "/Users/{userId}/Items",
                f"/Users/{p.user}/Items",
                {**lib, "IncludeItemTypes": kind, "Fields": ALL_FIELDS, **page},
            ),
        ]
    out += [
        Case(
            "/Items",
            "/Items",
            {"ParentId": p.series, "Recursive": "true", "Fields": ALL_FIELDS, "userId": p.user},
        ),
        Case(
            "/Items",
            "/Items",
            {"ParentId": p.no_season_series, "Recursive": "true", "Fields": ALL_FIELDS, "Limit": 100},
        ),
        Case(
            "/Items",
            "/Items",
            {**lib, "IncludeItemTypes": "Episode", "LocationTypes": "Virtual", "Fields": ALL_FIELDS},
        ),
        Case("/Items", "/Items", {"Ids": ",".join([*p.episodes, p.series, p.season]), "Fields": ALL_FIELDS}),
        Case("/Items", "/Items", {**lib, "IncludeItemTypes": "Episode", "Limit": 0}),
        Case("/Items", "/Items", {**lib, "MinDateLastSavedForUser": "2024-06-01T00:00:00Z", "Limit": 50}),
        Case("/Users/{userId}/Items", f"/Users/{p.user}/Items"),
    ]
    for item in [p.series, p.season, *p.episodes]:
        out.append(Case("/Items/{itemId}", f"/Items/{item}"))
        out.append(Case("/Users/{userId}/Items/{itemId}", f"/Users/{p.user}/Items/{item}"))
    return out


@pytest.fixture(scope="module")
def jellyfin() -> Iterator[tuple[JellyfinServer, Http]]:
    server = JellyfinServer(small_library(), token=TOKEN)
    with server.running_in_thread() as url:
        yield server, Http(url)


@pytest.fixture(scope="module")
def emby() -> Iterator[tuple[EmbyServer, Http]]:
    server = EmbyServer(small_library(), token=TOKEN)
    with server.running_in_thread() as url:
        yield server, Http(url, {"X-Emby-Token": TOKEN})


# ----------------------------------------------------------------------------- 1. OpenAPI


def test_every_route_is_validated(jellyfin: tuple[JellyfinServer, Http]) -> None:
    server, _ = jellyfin
    table = cases(picks(server))
    for case in table:  # each case really exercises the route it names
        found = server.match(case.path)
        assert found is not None and found[0].template == case.template, case.path
    assert {c.template for c in table} == {r.template for r in server.routes()}


def _check(server: JellyfinServer, http: Http, case: Case, version: str, prefix: str = "") -> int:
    response = http.get(prefix + case.path, case.params)
    assert response.status_code == case.status, (
        f"{case.path} {case.params}: {response.status_code} {response.text[:200]}"
    )
    operation = server.match(case.path)
    assert operation is not None
    body = response.json()
    assert_valid(version, operation[0].operation, body, str(case.status))
    return len(body["Items"]) if isinstance(body, dict) and "Items" in body else 1


@pytest.mark.parametrize("version", SPEC_VERSIONS)
def test_jellyfin_answers_follow_the_official_spec(
    jellyfin: tuple[JellyfinServer, Http], version: str
) -> None:
    server, http = jellyfin
    server.controls.jellyfin_version = version
    try:
        checked = sum(_check(server, http, case, version) for case in cases(picks(server)))
    finally:
        server.controls.jellyfin_version = "10.10.7"
    assert checked > 1000  # pages of items were validated, not just one item of each


def test_emby_answers_follow_the_jellyfin_spec(emby: tuple[EmbyServer, Http]) -> None:
    """Emby's spec is not vendored (no licence); its shapes are a subset of Jellyfin's."""
    server, http = emby
    for case in cases(picks(server)):
        _check(server, http, case, "10.10.7", prefix="/emby")


def test_the_validator_can_fail(jellyfin: tuple[JellyfinServer, Http]) -> None:
    """The validation above rejects what a real server would never send."""
    server, http = jellyfin
    p = picks(server)
    page = http.json("/Items", {"Ids": p.episodes[0], "Fields": ALL_FIELDS})
    assert validation_error("10.10.7", "/Items", page) is None
    broken: list[tuple[str, Any]] = [
        ("Bogus", 1),  # BaseItemDto allows no unknown properties
        ("LocationType", "Nowhere"),  # not a LocationType
        ("Type", "Show"),  # not a BaseItemKind
        ("IndexNumber", "1"),  # not an integer
        ("DateCreated", "2024-03-05 12:00"),  # not a date-time
        ("Id", "not-a-guid"),
    ]
    for key, value in broken:
        bad = copy.deepcopy(page)
        bad["Items"][0][key] = value
        assert validation_error("10.10.7", "/Items", bad) is not None, key
    bad = copy.deepcopy(page)
    bad["Items"][0]["MediaSources"] = [{"Protocol": "File", "Type": "Main"}]  # not a MediaSourceType
    assert validation_error("10.10.7", "/Items", bad) is not None


# ----------------------------------------------------------------------------- 2. real clients


def _expected_series(lib: Library) -> dict[str, tuple[str, dict[str, str]]]:
    out = {}
    for s in lib.shows:
        ids = {"Imdb": s.ids.imdb, "Tmdb": s.ids.tmdb, "Tvdb": s.ids.tvdb}
        out[lib.jellyfin_id(1, s.index)] = (s.title, {k: v for k, v in ids.items() if v})
    return out


def _episode_summary(e: Episode, lib: Library) -> tuple[Any, ...]:
    first = e.files[0].path if e.files else None
    return (e.title, e.season_number, e.episode_number, e.episode_number_end, expected_provider_ids(e), first)


def _item_summary(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        item["Name"],
        item["ParentIndexNumber"],
        item["IndexNumber"],
        item.get("IndexNumberEnd"),
        item["ProviderIds"],
        item.get("Path"),
    )


def test_jellyfin_apiclient_python_reads_the_library(jellyfin: tuple[JellyfinServer, Http]) -> None:
    from jellyfin_apiclient_python import JellyfinClient

    server, http = jellyfin
    lib = small_library()
    client = JellyfinClient()
    client.config.app("importer-tests", "1.0", "pytest", "device-1")
    client.config.data["auth.ssl"] = False
    state = client.authenticate(
        {"Servers": [{"AccessToken": server.token, "address": http.url, "UserId": server.user_id}]},
        discover=False,
    )
    assert state["State"].name == "SignedIn"
    api = client.jellyfin
    try:
        assert {v["Name"]: v["CollectionType"] for v in api.get_views()["Items"]} == {
            "TV Shows": "tvshows",
            "Movies": "movies",
        }
        folders = api.virtual_folders()
        tv = next(f for f in folders if f["CollectionType"] == "tvshows")
        series = api.get_user_items(
            parent_id=tv["ItemId"], include_item_types="Series", recursive=True, fields="ProviderIds"
        )
        assert series["TotalRecordCount"] == len(lib.shows)
        got = {s["Id"]: (s["Name"], s["ProviderIds"]) for s in series["Items"]}
        assert got == _expected_series(lib)
        listed_eps: list[tuple[Any, ...]] = []
        for s in series["Items"]:
            show = next(x for x in lib.shows if lib.jellyfin_id(1, x.index) == s["Id"])
            seasons = api.get_seasons(s["Id"])["Items"]
            assert [(x["Id"], x["IndexNumber"]) for x in seasons] == [
                (lib.jellyfin_id(2, show.index, x.ordinal), x.season_number) for x in lib.seasons_of(show)
            ]
            for season in seasons:
                eps = api.get_episodes(s["Id"], season_id=season["Id"], fields="ProviderIds,Path")["Items"]
                assert all(e["SeriesId"] == s["Id"] for e in eps)
                listed_eps += [(e["Id"], *_item_summary(e)) for e in eps]
        # A user (not the API key) does not see missing episodes here (DisplayMissingEpisodes).
        expected = [
            (lib.jellyfin_id(3, e.show_index, e.ordinal), *_episode_summary(e, lib))
            for e in lib.episodes(View.JELLYFIN_PRESENT)
        ]
        assert sorted(listed_eps, key=str) == sorted(expected, key=str)
        one = expected[3][0]
        item = api.get_item(one)
        assert item["Id"] == one and item["MediaSources"] and item["Etag"]
        several = api.get_items([expected[0][0], expected[1][0], "0" * 32])
        assert {i["Id"] for i in several["Items"]} == {expected[0][0], expected[1][0]}
    finally:
        client.stop()


async def test_aiojellyfin_streams_every_episode() -> None:
    from aiojellyfin import Connection, ItemFields, ItemType
    from aiojellyfin.builder import ItemQueryBuilder
    from aiojellyfin.session import SessionConfiguration

    lib = small_library()
    server = JellyfinServer(lib, token=TOKEN)
    url = await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            config = SessionConfiguration(session, url, "importer-tests", "1.0", "pytest", "device-2")
            conn = Connection(config, server.user_id, TOKEN)
            folders = await conn.get_media_folders()
            tv = next(f for f in folders["Items"] if f.get("CollectionType") == "tvshows")
            query = (
                ItemQueryBuilder.create(conn._session)
                .parent(tv["Id"])
                .include_item_types(ItemType.Episode)
                .recursive(True)
                .fields(ItemFields.ProviderIds, ItemFields.MediaSources)
            )
            got = [item async for item in query.stream(page_size=97)]  # 97 does not divide the total
        # aiojellyfin's MediaItem keeps neither Path nor IndexNumberEnd: compare what it keeps.
        # An API key sees missing episodes too (no MediaSources).
        expected = [
            (
                lib.jellyfin_id(3, e.show_index, e.ordinal),
                e.title,
                e.season_number,
                e.episode_number,
                expected_provider_ids(e),
                [f.path for f in e.files if f.part_index == 0],
            )
            for e in lib.episodes(View.JELLYFIN)
        ]
        assert [
            (
                i["Id"],
                i["Name"],
                i["ParentIndexNumber"],
                i["IndexNumber"],
                i["ProviderIds"],
                [m["Path"] for m in i["MediaSources"]],
            )
            for i in got
        ] == expected
    finally:
        await server.stop()


def test_emby_lists_the_library_under_emby_with_x_emby_token(emby: tuple[EmbyServer, Http]) -> None:
    _, http = emby
    lib = small_library()
    info = http.json("/emby/System/Info/Public")
    assert info["ProductName"] == "Emby Server" and info["Version"].startswith("4.8")
    folders = http.json("/emby/Library/VirtualFolders")
    tv = next(f for f in folders if f["CollectionType"] == "tvshows")
    params = {"ParentId": tv["ItemId"], "Recursive": "true", "Fields": "ProviderIds,Path"}
    series = list(http.pages("/emby/Items", {**params, "IncludeItemTypes": "Series"}, 4))
    assert {s["Id"]: (s["Name"], s["ProviderIds"]) for s in series} == _expected_series(lib)
    seasons = list(http.pages("/emby/Items", {**params, "IncludeItemTypes": "Season"}, 50))
    assert len(seasons) == lib.season_total()
    eps = list(
        http.pages("/emby/Items", {**params, "IncludeItemTypes": "Episode", "IsMissing": "false"}, 333)
    )
    expected = [
        (lib.jellyfin_id(3, e.show_index, e.ordinal), *_episode_summary(e, lib))
        for e in lib.episodes(View.JELLYFIN_PRESENT)
    ]
    assert [(i["Id"], *_item_summary(i)) for i in eps] == expected
    page = http.json("/emby/Items", {**params, "IncludeItemTypes": "Episode", "Limit": 1})
    assert set(page) == {"Items", "TotalRecordCount"}  # Emby's QueryResult has no StartIndex
