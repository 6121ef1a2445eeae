"""Behaviour of the emulated Jellyfin and Emby servers: paging, counts, filters, fields,
the 10.10 date-filter bug, auth, base paths, the request log and charged costs."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from jellyfin_helpers import TOKEN, Http, auth_header, episode_ids, expected_provider_ids, small_library

from importer.emulator.jellyfin import (
    EmbyServer,
    JellyfinServer,
    jf_etag,
    js_string,
    last_round,
    parse_auth_parts,
)
from importer.emulator.library import Library, LibrarySpec, View, mix

EPISODES = {"IncludeItemTypes": "Episode", "Recursive": "true"}


@pytest.fixture(scope="module")
def jf() -> Iterator[tuple[JellyfinServer, Http]]:
    server = JellyfinServer(small_library(), token=TOKEN)
    with server.running_in_thread() as url:
        yield server, Http(url)


@pytest.fixture(scope="module")
def lib_id(jf: tuple[JellyfinServer, Http]) -> str:
    _, http = jf
    folders = http.json("/Library/VirtualFolders")
    return str(next(f["ItemId"] for f in folders if f["CollectionType"] == "tvshows"))


@contextmanager
def version(server: JellyfinServer, value: str) -> Iterator[None]:
    old = server.controls.jellyfin_version
    server.controls.jellyfin_version = value
    try:
        yield
    finally:
        server.controls.jellyfin_version = old


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- paging and counts


def test_paging_with_a_limit_that_does_not_divide_the_total(
    jf: tuple[JellyfinServer, Http], lib_id: str
) -> None:
    _, http = jf
    lib = small_library()
    got = [i["Id"] for i in http.pages("/Items", {"ParentId": lib_id, **EPISODES}, 97)]
    expected = episode_ids(lib)
    assert len(expected) % 97 != 0
    assert got == expected  # every episode once, in a stable order, missing ones included


def test_total_record_count_is_the_page_length_when_not_counted(
    jf: tuple[JellyfinServer, Http], lib_id: str
) -> None:
    _, http = jf
    total = small_library().episode_total(View.JELLYFIN)
    params = {"ParentId": lib_id, **EPISODES, "Limit": 10, "StartIndex": 5}
    counted = http.json("/Items", params)
    assert (counted["TotalRecordCount"], counted["StartIndex"], len(counted["Items"])) == (total, 5, 10)
    uncounted = http.json("/Items", {**params, "EnableTotalRecordCount": "false"})
    assert uncounted["TotalRecordCount"] == 10
    tail = http.json("/Items", {**params, "StartIndex": total - 3, "EnableTotalRecordCount": "false"})
    assert tail["TotalRecordCount"] == len(tail["Items"]) == 3


def test_count_probe_lists_nothing(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    server, http = jf
    probe = http.json("/Items", {"ParentId": lib_id, **EPISODES, "Limit": 0})
    assert probe["Items"] == [] and probe["TotalRecordCount"] == small_library().episode_total(View.JELLYFIN)
    assert server.log.entries[-1].items == 0


def test_series_and_seasons_of_a_library(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    _, http = jf
    lib = small_library()
    series = http.json("/Items", {"ParentId": lib_id, "IncludeItemTypes": "Series", "Recursive": "true"})
    assert [s["Id"] for s in series["Items"]] == [lib.jellyfin_id(1, s.index) for s in lib.shows]
    seasons = http.json("/Items", {"ParentId": lib_id, "IncludeItemTypes": "Season", "Recursive": "true"})
    assert [(s["Id"], s["SeriesId"], s["IndexNumber"]) for s in seasons["Items"]] == [
        (lib.jellyfin_id(2, s.show_index, s.ordinal), lib.jellyfin_id(1, s.show_index), s.season_number)
        for s in lib.seasons()
    ]
    # Not recursive: the library's children are its series, whatever IncludeItemTypes says.
    flat = http.json("/Items", {"ParentId": lib_id, "IncludeItemTypes": "Episode"})
    assert flat["Items"] == [] and flat["TotalRecordCount"] == 0
    children = http.json("/Items", {"ParentId": lib_id})
    assert {i["Type"] for i in children["Items"]} == {"Series"}


def test_recursive_defaults_to_true_from_12_0(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    server, http = jf
    params = {"ParentId": lib_id, "IncludeItemTypes": "Episode", "Limit": 5}
    with version(server, "10.11.11"):
        assert http.json("/Items", params)["Items"] == []
    with version(server, "12.0.0"):
        assert len(http.json("/Items", params)["Items"]) == 5


def test_descending_order_reverses_the_listing(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    _, http = jf
    page = http.json("/Items", {"ParentId": lib_id, **EPISODES, "SortOrder": "Descending", "Limit": 4})
    assert [i["Id"] for i in page["Items"]] == episode_ids(small_library())[::-1][:4]


def test_root_items_are_the_libraries_including_movies(jf: tuple[JellyfinServer, Http]) -> None:
    server, http = jf
    root = http.json("/Items")
    assert [(i["Type"], i["CollectionType"]) for i in root["Items"]] == [
        ("CollectionFolder", "tvshows"),
        ("CollectionFolder", "movies"),
    ]
    movies = server.folders[-1].id
    assert http.json("/Items", {"ParentId": movies, "Recursive": "true"})["TotalRecordCount"] == 0


# ----------------------------------------------------------------------------- filters


def test_missing_episodes_can_be_left_out(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    _, http = jf
    lib = small_library()
    present = episode_ids(lib, View.JELLYFIN_PRESENT)
    virtual = [lib.jellyfin_id(3, e.show_index, e.ordinal) for e in lib.episodes(View.JELLYFIN) if e.virtual]
    base = {"ParentId": lib_id, **EPISODES}
    for extra in (
        {"IsMissing": "false"},
        {"ExcludeLocationTypes": "Virtual"},
        {"LocationTypes": "FileSystem,Remote"},
    ):
        items = list(http.pages("/Items", {**base, **extra}, 250))
        assert [i["Id"] for i in items] == present, extra
        assert all(i["LocationType"] == "FileSystem" for i in items)
    only = http.json("/Items", {**base, "LocationTypes": "Virtual", "Fields": "Path,MediaSources"})
    assert [i["Id"] for i in only["Items"]] == virtual and only["TotalRecordCount"] == len(virtual)
    for item in only["Items"]:  # missing: no file, no container, no media sources
        assert item["LocationType"] == "Virtual" and "Path" not in item and "Container" not in item
        assert item["MediaSources"] == []
    assert (
        http.json("/Items", {**base, "IsMissing": "true", "ExcludeLocationTypes": "Virtual"})["Items"] == []
    )


def _saved_after(lib: Library, bound: int) -> list[str]:
    return [
        lib.jellyfin_id(3, e.show_index, e.ordinal)
        for e in lib.episodes(View.JELLYFIN)
        if e.updated_at >= bound
    ]


def test_min_date_last_saved_binding_bug_in_10_10(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    server, http = jf
    lib = small_library()
    saved = sorted(e.updated_at for e in lib.episodes(View.JELLYFIN))
    bound = saved[len(saved) // 2]
    expected = _saved_after(lib, bound)
    assert 0 < len(expected) < len(saved)
    base = {"ParentId": lib_id, **EPISODES}
    with version(server, "10.10.7"):
        broken = http.json("/Items", {**base, "MinDateLastSaved": iso(bound)})
        assert broken["Items"] == [] and broken["TotalRecordCount"] == 0
        for_user = list(http.pages("/Items", {**base, "MinDateLastSavedForUser": iso(bound)}, 200))
        assert [i["Id"] for i in for_user] == expected
        # Both: both conditions compare with the ForUser value.
        both = http.json(
            "/Items", {**base, "MinDateLastSaved": iso(0), "MinDateLastSavedForUser": iso(bound)}
        )
        assert both["TotalRecordCount"] == len(expected)
    with version(server, "10.11.11"):
        fixed = list(http.pages("/Items", {**base, "MinDateLastSaved": iso(bound)}, 200))
        assert [i["Id"] for i in fixed] == expected
    shows = http.json(
        "/Items", {"ParentId": lib_id, "IncludeItemTypes": "Series", "MinDateLastSavedForUser": iso(bound)}
    )
    assert [s["Id"] for s in shows["Items"]] == [
        lib.jellyfin_id(1, s.index) for s in lib.shows if s.updated_at >= bound
    ]


def test_date_filter_skips_whole_shows_without_generating_them() -> None:
    lib = Library(LibrarySpec(episodes=200_000, seed=3))
    server = JellyfinServer(lib, token=TOKEN)
    with server.running_in_thread() as url:
        http = Http(url)
        future = http.json(
            "/Items",
            {
                **EPISODES,
                "ParentId": server.folders[0].id,
                "MinDateLastSavedForUser": "2030-01-01",
                "Limit": 1,
            },
        )
        assert future["TotalRecordCount"] == 0
        everything = http.json(
            "/Items",
            {
                **EPISODES,
                "ParentId": server.folders[0].id,
                "MinDateLastSavedForUser": "2000-01-01",
                "Limit": 1,
            },
        )
        assert everything["TotalRecordCount"] == lib.episode_total(View.JELLYFIN)
    assert lib._view.cache_info().currsize <= 2  # only the page's show was generated


def test_ids_return_only_those_that_exist(jf: tuple[JellyfinServer, Http]) -> None:
    _, http = jf
    lib = small_library()
    all_ids = episode_ids(lib)
    wanted = [all_ids[50], all_ids[3], all_ids[700], lib.jellyfin_id(1, 2), "0" * 32, "not-a-guid"]
    got = http.json("/Items", {"Ids": ",".join(wanted)})
    # In listing order (series first), not in the order asked for; unknown ids dropped.
    assert [i["Id"] for i in got["Items"]] == [lib.jellyfin_id(1, 2), all_ids[3], all_ids[50], all_ids[700]]
    dashed = str(__import__("uuid").UUID(all_ids[9]))
    assert [i["Id"] for i in http.json("/Items", {"Ids": dashed})["Items"]] == [all_ids[9]]


def test_parent_series_and_season(jf: tuple[JellyfinServer, Http]) -> None:
    _, http = jf
    lib = small_library()
    show = next(s for s in lib.shows if any(not e.has_season_id for e in lib.view_of(s, View.JELLYFIN)))
    series_id = lib.jellyfin_id(1, show.index)
    seasons = http.json("/Items", {"ParentId": series_id})["Items"]
    assert [s["Type"] for s in seasons] == ["Season"] * len(show.season_sizes)
    season = lib.seasons_of(show)[-1]
    season_id = lib.jellyfin_id(2, show.index, season.ordinal)
    in_season = [e for e in lib.view_of(show, View.JELLYFIN) if e.season_number == season.season_number]
    assert any(not e.has_season_id for e in in_season)
    children = http.json("/Items", {"ParentId": season_id})["Items"]
    assert [c["Id"] for c in children] == [
        lib.jellyfin_id(3, e.show_index, e.ordinal) for e in in_season if e.has_season_id
    ]
    # /Shows/{id}/Episodes?seasonId= also takes the season's episodes filed outside it.
    by_season = http.json(f"/Shows/{series_id}/Episodes", {"seasonId": season_id})["Items"]
    assert [e["Id"] for e in by_season] == [lib.jellyfin_id(3, e.show_index, e.ordinal) for e in in_season]
    assert any(e["SeasonId"] is None and "SeasonName" not in e for e in by_season)
    by_number = http.json(f"/Shows/{series_id}/Episodes", {"season": season.season_number})["Items"]
    assert by_number == by_season
    recursive = http.json(
        "/Items", {"ParentId": series_id, "Recursive": "true", "IncludeItemTypes": "Episode"}
    )
    assert recursive["TotalRecordCount"] == lib.count(show, View.JELLYFIN)


def test_users_see_no_missing_episodes_in_show_listings(jf: tuple[JellyfinServer, Http]) -> None:
    server, http = jf
    lib = small_library()
    show = next(s for s in lib.shows if any(e.virtual for e in lib.view_of(s, View.JELLYFIN)))
    path = f"/Shows/{lib.jellyfin_id(1, show.index)}/Episodes"
    assert http.json(path)["TotalRecordCount"] == lib.count(show, View.JELLYFIN)  # an API key sees them
    as_user = http.json(path, {"userId": server.user_id})
    assert as_user["TotalRecordCount"] == lib.count(show, View.JELLYFIN_PRESENT)
    assert all("UserData" in e for e in as_user["Items"])


# ----------------------------------------------------------------------------- fields and item shapes

ALWAYS = {
    "Name",
    "ServerId",
    "Id",
    "Type",
    "IsFolder",
    "IndexNumber",
    "ParentIndexNumber",
    "SeriesId",
    "SeriesName",
    "LocationType",
    "MediaType",
    "ChannelId",
    "VideoType",
    "ImageBlurHashes",
    "SeriesPrimaryImageTag",
}
ON_REQUEST = {
    "Path",
    "MediaSources",
    "ProviderIds",
    "Overview",
    "DateCreated",
    "Etag",
    "SortName",
    "People",
    "Genres",
    "ExternalUrls",
    "ParentId",
    "Studios",
    "Tags",
    "MediaStreams",
}


def test_fields_are_left_out_unless_asked_for(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    _, http = jf
    base = {"ParentId": lib_id, **EPISODES, "Limit": 60, "EnableImages": "false", "EnableUserData": "false"}
    bare = http.json("/Items", base)["Items"]
    for item in bare:
        assert set(item) >= ALWAYS, ALWAYS - set(item)
        assert not set(item) & ON_REQUEST, set(item) & ON_REQUEST
        assert item["ChannelId"] is None and "UserData" not in item and "ImageTags" not in item
    with_path = http.json("/Items", {**base, "Fields": "path,NoSuchField"})["Items"]
    assert all(
        set(a) - set(b) == ({"Path"} if b["LocationType"] == "FileSystem" else set())
        for a, b in zip(with_path, bare, strict=True)
    )
    with_images = http.json("/Items", {**base, "EnableImages": "true"})["Items"]
    assert all("ImageTags" in i and "BackdropImageTags" in i for i in with_images)


def test_episode_values_follow_the_generator(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    _, http = jf
    lib = small_library()
    fields = "Path,MediaSources,ProviderIds,Overview,DateCreated,Etag,SortName"
    items = list(http.pages("/Items", {"ParentId": lib_id, **EPISODES, "Fields": fields}, 400))
    eps = list(lib.episodes(View.JELLYFIN))
    assert len(items) == len(eps)
    date = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
    for item, e in zip(items, eps, strict=True):
        assert item["Name"] == e.title and item["IndexNumber"] == e.episode_number
        assert (
            item["ParentIndexNumber"] == e.season_number
            and item.get("IndexNumberEnd") == e.episode_number_end
        )
        assert item["ProviderIds"] == expected_provider_ids(e)
        assert item.get("PremiereDate") == (f"{e.air_date}T00:00:00.0000000Z" if e.air_date else None)
        assert item.get("RunTimeTicks") == (e.duration_ms * 10_000 if e.duration_ms else None)
        assert date.match(item["DateCreated"]) and item["DateCreated"][:19] == iso(e.added_at)[:19]
        assert item["Etag"] == jf_etag(e.updated_at) and re.fullmatch(r"[0-9a-f]{32}", item["Etag"])
        assert item.get("Overview") == e.summary
        assert item["SortName"] == f"{e.season_number:03d} - {e.episode_number:04d} - {e.title}"
        assert (item["SeasonId"] is None) == (not e.has_season_id)
        versions = sorted({f.media_index for f in e.files})
        sources = item["MediaSources"]
        assert [s["Path"] for s in sources] == [f.path for f in e.files if f.part_index == 0]
        assert item.get("Path") == (e.files[0].path if e.files else None)
        assert len(sources) == len(versions)
        parts = sum(1 for f in e.files if f.media_index == 0)
        assert item.get("PartCount") == (parts if parts > 1 else None)
        for source, f in zip(sources, [f for f in e.files if f.part_index == 0], strict=True):
            assert (source["Size"], source["Container"]) == (f.size_bytes, f.container)
            video, audio = source["MediaStreams"]
            assert (video["Codec"], video["Width"], video["Height"], audio["Codec"]) == (
                f.video_codec,
                f.width,
                f.height,
                f.audio_codec,
            )
        if sources:
            assert sources[0]["Id"] == item["Id"]


def test_etag_follows_the_last_saved_time() -> None:
    assert jf_etag(1_700_000_000) == jf_etag(1_700_000_000)
    assert jf_etag(1_700_000_000) != jf_etag(1_700_000_001)


def test_single_items_carry_every_field(jf: tuple[JellyfinServer, Http]) -> None:
    _, http = jf
    lib = small_library()
    e = next(e for e in lib.episodes(View.JELLYFIN) if e.files)
    item = http.json(f"/Items/{lib.jellyfin_id(3, e.show_index, e.ordinal)}", {"Fields": "Path"})
    assert {"Path", "MediaSources", "ProviderIds", "Etag", "DateCreated", "People"} <= set(item)
    assert http.get(f"/Items/{'1' * 32}").status_code == 404
    folder = http.json(f"/Items/{http.json('/Library/VirtualFolders')[0]['ItemId']}")
    assert folder["Type"] == "CollectionFolder" and folder["CollectionType"] == "tvshows"


def test_strings_are_escaped_like_system_text_json(jf: tuple[JellyfinServer, Http]) -> None:
    assert js_string(
        "a\"b<c>&'+`\\\n\té😀"
    ) == '"a\\u0022b\\u003Cc\\u003E\\u0026\\u0027\\u002B\\u0060\\\\\\n\\té\\uD83D\\uDE00"'.replace(
        "é", "\\u00E9"
    )
    _, http = jf
    lib = small_library()
    e = next(e for e in lib.episodes(View.JELLYFIN) if not e.title.isascii())
    raw = http.get(f"/Items/{lib.jellyfin_id(3, e.show_index, e.ordinal)}").content
    assert raw.isascii() and b"\\u" in raw
    assert json.loads(raw)["Name"] == e.title


@given(st.text())
def test_escaped_strings_decode_to_themselves(value: str) -> None:
    encoded = js_string(value)
    assert encoded.isascii() and json.loads(encoded) == value


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 10**7))
def test_last_round_continues_mix(seed: int, kind: int, ordinal: int) -> None:
    assert last_round(mix(seed, kind), ordinal) == mix(seed, kind, ordinal)


# ----------------------------------------------------------------------------- users and libraries


def test_users_and_views(jf: tuple[JellyfinServer, Http]) -> None:
    server, http = jf
    users = http.json("/Users")
    assert [u["Id"] for u in users] == [server.user_id] and users[0]["Policy"]["IsAdministrator"]
    me = http.get("/Users/Me")  # an API key is not a user: 400, "Token is not owned by a user"
    assert me.status_code == 400 and me.headers["Content-Type"].startswith("application/problem+json")
    assert http.get("/UserViews").status_code == 404
    views = http.json("/UserViews", {"userId": server.user_id})["Items"]
    assert [(v["Name"], v["CollectionType"]) for v in views] == [
        ("TV Shows", "tvshows"),
        ("Movies", "movies"),
    ]
    assert http.json(f"/Users/{server.user_id}/Views") == {
        **http.json("/UserViews", {"userId": server.user_id})
    }
    assert http.get(f"/Users/{'2' * 32}/Items").status_code == 404


def test_virtual_folders_list_every_library_and_a_movie_one(jf: tuple[JellyfinServer, Http]) -> None:
    server, http = jf
    folders = http.json("/Library/VirtualFolders")
    assert [(f["Name"], f["CollectionType"]) for f in folders] == [
        ("TV Shows", "tvshows"),
        ("Movies", "movies"),
    ]
    assert [f["ItemId"] for f in folders] == [f.id for f in server.folders]


# ----------------------------------------------------------------------------- auth, paths, log


def _status(
    url: str, path: str, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> int:
    return requests.get(url + path, headers=headers or {}, params=params, timeout=30).status_code


def test_auth_forms_by_version(jf: tuple[JellyfinServer, Http]) -> None:
    server, http = jf
    url = http.url
    legacy = [
        ({"X-Emby-Token": TOKEN}, None),
        ({"X-MediaBrowser-Token": TOKEN}, None),
        ({"X-Emby-Authorization": f'MediaBrowser Token="{TOKEN}"'}, None),
        ({"Authorization": f'Emby Client="x", Token="{TOKEN}"'}, None),
        (None, {"api_key": TOKEN}),
    ]
    current = [(auth_header(), None), (None, {"ApiKey": TOKEN}), (None, {"apikey": TOKEN})]
    with version(server, "10.10.7"):
        for headers, params in legacy + current:
            assert _status(url, "/Items", headers, params) == 200, (headers, params)
    with version(server, "12.0.0"):
        for headers, params in legacy:
            assert _status(url, "/Items", headers, params) == 401, (headers, params)
        for headers, params in current:
            assert _status(url, "/Items", headers, params) == 200, (headers, params)
    assert _status(url, "/Items") == 401
    assert _status(url, "/Items", auth_header("wrong")) == 401
    assert (
        _status(url, "/Items", {"Authorization": f'MediaBrowser token="{TOKEN}"'}) == 401
    )  # keys are case-sensitive
    assert _status(url, "/System/Info/Public") == 200
    assert _status(url, "/system/info/public") == 200
    assert _status(url, "/System/Info") == 401


def test_authorization_header_parsing() -> None:
    parts = parse_auth_parts('Client="A, B", Device="d%20x", DeviceId=abc, Version="1.0", Token="t%2Bk"')
    assert parts == {"Client": "A, B", "Device": "d x", "DeviceId": "abc", "Version": "1.0", "Token": "t+k"}


def test_paths_and_parameters_are_case_insensitive(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    server, http = jf
    page = http.json(
        "/items", {"parentid": lib_id, "includeitemtypes": "episode", "RECURSIVE": "True", "limit": 3}
    )
    assert len(page["Items"]) == 3
    with version(server, "10.10.7"):
        assert http.get("/emby/Items", {"Limit": 1}).status_code == 200  # LegacyEmbyRouteRewriteMiddleware
    with version(server, "12.0.0"):
        assert http.get("/emby/Items", {"Limit": 1}).status_code == 404
    assert http.get("/Items", {"Recursive": "maybe"}).status_code == 400
    assert http.get("/NoSuchEndpoint").status_code == 404


def test_base_path() -> None:
    server = JellyfinServer(small_library(), token=TOKEN, base_path="/jellyfin")
    with server.running_in_thread() as url:
        assert url.endswith("/jellyfin")
        http = Http(url)
        info = http.json("/System/Info/Public")
        assert info["LocalAddress"].endswith("/jellyfin")
        assert http.json("/Items", {"Limit": 1})["Items"]
        assert _status(url.removesuffix("/jellyfin"), "/Items", auth_header()) == 404
        assert server.log.entries[-2].path == "/Items"


def test_request_log_counts_items_and_charged_costs(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    server, http = jf
    controls = server.controls
    saved = (controls.item_cost_us, controls.count_cost_ms, controls.people_cost_factor)
    controls.item_cost_us, controls.count_cost_ms, controls.people_cost_factor = 1.0, 0.5, 27.0
    try:
        server.log.clear()
        base = {"ParentId": lib_id, **EPISODES, "Limit": 20}
        http.json("/Items", {**base, "EnableTotalRecordCount": "false"})
        http.json("/Items", base)  # counted: one COUNT(*)
        http.json("/Items", {**base, "EnableTotalRecordCount": "false", "Fields": "People"})
        plain, counted, people = server.log.entries
        assert (plain.items, counted.items, people.items) == (20, 20, 20)
        assert plain.cost_us == pytest.approx(20 * 1.0)
        assert counted.cost_us == pytest.approx(20 * 1.0 + 500)
        assert people.cost_us == pytest.approx(20 * 1.0 * 27)
        assert all(json.loads(json.dumps(e.query)) for e in (plain, counted))
        assert server.log.counters()["items"] == 60 and server.log.counters()["status_200"] == 3
    finally:
        controls.item_cost_us, controls.count_cost_ms, controls.people_cost_factor = saved


def test_gzip_when_asked(jf: tuple[JellyfinServer, Http], lib_id: str) -> None:
    _, http = jf
    raw = http.get(
        "/Items",
        {"ParentId": lib_id, **EPISODES, "Limit": 50},
        headers={"Accept-Encoding": "gzip"},
        stream=True,
    )
    assert raw.headers["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(raw.raw.read()))["Items"]) == 50
    assert raw.headers["Content-Type"] == "application/json; charset=utf-8"


# ----------------------------------------------------------------------------- Emby


@pytest.fixture(scope="module")
def emby() -> Iterator[tuple[EmbyServer, str]]:
    server = EmbyServer(small_library(), token=TOKEN)
    with server.running_in_thread() as url:
        yield server, url


def test_emby_paths_and_auth(emby: tuple[EmbyServer, str]) -> None:
    _, url = emby
    for prefix in ("/emby", ""):
        assert _status(url, f"{prefix}/Items", {"X-Emby-Token": TOKEN}) == 200
        assert _status(url, f"{prefix}/Items", None, {"api_key": TOKEN}) == 200
        assert (
            _status(
                url, f"{prefix}/Items", {"Authorization": f'Emby UserId="u", Client="c", Token="{TOKEN}"'}
            )
            == 200
        )
        assert (
            _status(url, f"{prefix}/Items", {"X-Emby-Authorization": f'Emby Client="c", Token="{TOKEN}"'})
            == 200
        )
        assert _status(url, f"{prefix}/Items", {"X-Emby-Token": "nope"}) == 401
        assert _status(url, f"{prefix}/System/Info/Public") == 200


def test_emby_answers(emby: tuple[EmbyServer, str]) -> None:
    server, url = emby
    http = Http(url, {"X-Emby-Token": TOKEN})
    lib = small_library()
    page = http.json("/emby/Items", {"ParentId": server.folders[0].id, **EPISODES, "Limit": 40})
    assert set(page) == {"Items", "TotalRecordCount"}
    assert all("ChannelId" not in i for i in page["Items"])
    info = http.json("/emby/System/Info")
    assert info["ProductName"] == "Emby Server" and info["Version"] == "4.8.10.0"
    e = next(e for e in lib.episodes(View.JELLYFIN) if not e.title.isascii())
    raw = http.get(f"/emby/Items/{lib.jellyfin_id(3, e.show_index, e.ordinal)}").content
    assert e.title.encode() in raw  # plain UTF-8, not \u escapes
