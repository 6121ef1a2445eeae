"""The emulated Plex server over real HTTP: paging, sorting, filters, auth, shapes, quirks."""

from __future__ import annotations

import json
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from plex_helpers import TOKEN, plex_get, plex_json, plex_xml

from importer.emulator.library import BASE_TIME, Episode, Library, LibrarySpec, View, episode_time_bounds
from importer.emulator.plex import PlexServer, Section
from importer.emulator.server import Controls, TvLibrary

# seed 29, 8 shows: a legacy-agent show, a hidden-season show, unicode titles, a show
# without external ids, double and multi-file episodes (asserted below where it matters)
SPEC = LibrarySpec(shows=8, seed=29)


@pytest.fixture(scope="module")
def lib() -> Library:
    return Library(SPEC)


@pytest.fixture(scope="module")
def server(lib: Library) -> Iterator[PlexServer]:
    srv = PlexServer(lib, token=TOKEN)
    with srv.running_in_thread():
        yield srv


@pytest.fixture
def url(server: PlexServer) -> Iterator[str]:
    server.controls = Controls()
    server.log.clear()
    yield server.url
    server.controls = Controls()


@pytest.fixture(scope="module")
def sec(server: PlexServer) -> Section:
    return server.sections[2]


def _all(url: str, type_: int, query: str = "", **headers: str) -> dict[str, Any]:
    return plex_json(url, f"/library/sections/2/all?type={type_}{query}", **headers)


def _walk(url: str, type_: int, size: int, query: str = "") -> list[dict[str, Any]]:
    """Follow offset/size/totalSize as a client must (pages may be short)."""
    items: list[dict[str, Any]] = []
    start, total = 0, None
    while total is None or start < total:
        page = _all(url, type_, f"{query}&X-Plex-Container-Start={start}&X-Plex-Container-Size={size}")
        assert page["offset"] == start
        total = page["totalSize"]
        got = page.get("Metadata", [])
        assert page["size"] == len(got)
        if not got:
            break
        items += got
        start += len(got)
    return items


def _keys(items: list[dict[str, Any]]) -> list[int]:
    return [int(i["ratingKey"]) for i in items]


# ----------------------------------------------------------------------------- auth, formats
def test_identity_is_public_and_everything_else_needs_the_token(url: str) -> None:
    status, _, body = plex_get(url, "/identity", token=None)
    assert status == 200 and json.loads(body)["MediaContainer"]["machineIdentifier"]
    for token in (None, "wrong"):
        status, headers, body = plex_get(url, "/library/sections", token=token)
        assert (
            status == 401 and b"401 Unauthorized" in body and headers["Content-Type"].startswith("text/html")
        )
    query = urllib.parse.urlencode({"X-Plex-Token": TOKEN})
    status, _, _ = plex_get(url, f"/library/sections?{query}", token=None)
    assert status == 200


def test_xml_by_default_json_when_asked(url: str) -> None:
    status, headers, body = plex_get(url, "/library/sections", json_body=False)
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(body)
    assert root.tag == "MediaContainer" and {d.get("type") for d in root.iter("Directory")} == {
        "movie",
        "show",
    }
    status, headers, body = plex_get(url, "/library/sections")
    assert headers["Content-Type"].startswith("application/json")
    dirs = json.loads(body)["MediaContainer"]["Directory"]
    assert [d["type"] for d in dirs] == ["movie", "show"] and dirs[1]["Location"][0]["path"]


def test_empty_movie_section(url: str) -> None:
    page = plex_json(url, "/library/sections/1/all?type=1&X-Plex-Container-Size=10")
    assert page["totalSize"] == 0 and "Metadata" not in page and page["viewGroup"] == "movie"


# ----------------------------------------------------------------------------- paging
def test_uneven_pages_return_every_episode_once_in_order(url: str, lib: Library, sec: Section) -> None:
    for by_key, sort in ((True, "&sort=id"), (False, "")):
        items = _walk(url, 4, 137, sort + "&includeGuids=1")
        expected = [sec.episode_key(e) for e in lib.episodes(View.PLEX, by_key=by_key)]
        assert _keys(items) == expected
    assert len(set(expected)) == len(expected) == lib.episode_total(View.PLEX)


def test_shows_and_seasons_pages(url: str, lib: Library, sec: Section) -> None:
    shows = _walk(url, 2, 3, "&sort=id")
    assert _keys(shows) == [sec.show_key(lib.shows[i]) for i in lib.key_order]
    assert [s["title"] for s in _walk(url, 2, 5)] == [s.title for s in lib.shows]
    seasons = _walk(url, 3, 7, "&sort=id")
    expected = [sec.season_key(lib.shows[s.show_index], s.ordinal) for s in lib.seasons(by_key=True)]
    assert _keys(seasons) == expected and len(seasons) == lib.season_total()


def test_page_cap_returns_short_pages_that_a_client_can_follow(
    url: str, server: PlexServer, lib: Library
) -> None:
    server.controls.page_cap = 50
    page = _all(url, 4, "&sort=id&X-Plex-Container-Start=120&X-Plex-Container-Size=200")
    assert page["size"] == 50 and page["offset"] == 120 and page["totalSize"] == lib.episode_total(View.PLEX)
    assert _all(url, 4, "&X-Plex-Container-Size=20")["size"] == 20  # smaller pages are not padded
    assert len(_walk(url, 4, 200, "&sort=id")) == lib.episode_total(View.PLEX)


def test_sizes_above_1000_are_clamped(url: str, lib: Library) -> None:
    assert lib.episode_total(View.PLEX) > 1000
    assert _all(url, 4, "&X-Plex-Container-Size=5000")["size"] == 1000


def test_size_zero_returns_the_count_alone(url: str, lib: Library) -> None:
    status, headers, body = plex_get(
        url, "/library/sections/2/all?type=4&X-Plex-Container-Start=0&X-Plex-Container-Size=0"
    )
    assert status == 200
    page = json.loads(body)["MediaContainer"]
    total = lib.episode_total(View.PLEX)
    assert (page["size"], page["totalSize"], page["offset"]) == (0, total, 0) and "Metadata" not in page
    assert headers["X-Plex-Container-Total-Size"] == str(total) and headers["X-Plex-Container-Start"] == "0"
    root = plex_xml(url, "/library/sections/2/all?type=3", **{"X-Plex-Container-Size": "0"})
    assert root.get("totalSize") == str(lib.season_total()) and len(root) == 0


def test_missing_size_is_a_400_on_section_listings_only(url: str, lib: Library, sec: Section) -> None:
    status, _, body = plex_get(url, "/library/sections/2/all?type=4")
    assert status == 400 and body == b"Missing X-Plex-Container-Size header."
    show = lib.shows[0]
    children = plex_json(url, f"/library/metadata/{sec.show_key(show)}/allLeaves")
    assert children["size"] == lib.count(show, View.PLEX) and "totalSize" not in children


def test_paging_in_headers_or_query_is_the_same(url: str) -> None:
    by_query = _all(url, 4, "&sort=id&X-Plex-Container-Start=30&X-Plex-Container-Size=20")
    by_header = _all(url, 4, "&sort=id", **{"X-Plex-Container-Start": "30", "X-Plex-Container-Size": "20"})
    assert by_query == by_header and len(by_query["Metadata"]) == 20


def test_bad_paging_values_are_400s(url: str) -> None:
    for bad in ("X-Plex-Container-Size=x", "X-Plex-Container-Size=5&X-Plex-Container-Start=-1"):
        assert plex_get(url, f"/library/sections/2/all?type=4&{bad}")[0] == 400


def test_head_answers_the_count_in_headers(url: str, lib: Library) -> None:
    import urllib.request

    req = urllib.request.Request(
        f"{url}/library/sections/2/all?type=4",
        method="HEAD",
        headers={"X-Plex-Token": TOKEN, "X-Plex-Container-Size": "1000", "Accept": "application/json"},
    )
    with urllib.request.urlopen(req) as r:
        assert r.headers["X-Plex-Container-Total-Size"] == str(lib.episode_total(View.PLEX))
        assert r.read() == b""


# ----------------------------------------------------------------------------- sorting
@pytest.mark.parametrize("sort", ["id", "id:asc", "episode.id", "ratingKey"])
def test_sort_by_id(url: str, sort: str) -> None:
    keys = _keys(_all(url, 4, f"&sort={sort}&X-Plex-Container-Size=1000")["Metadata"])
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    "sort", ["", "&sort=titleSort", "&sort=titleSort:asc", "&sort=episode.addedAt", "&sort=nonsense"]
)
def test_other_sorts_give_the_default_title_order(url: str, lib: Library, sec: Section, sort: str) -> None:
    keys = _keys(_all(url, 2, f"{sort}&X-Plex-Container-Size=100")["Metadata"])
    assert keys == [sec.show_key(s) for s in lib.shows]


def test_descending_id_sort_reverses(url: str, lib: Library, sec: Section) -> None:
    keys = _keys(_all(url, 4, "&sort=id:desc&X-Plex-Container-Start=5&X-Plex-Container-Size=40")["Metadata"])
    everything = [sec.episode_key(e) for e in lib.episodes(View.PLEX, by_key=True)]
    assert keys == everything[::-1][5:45]


# ----------------------------------------------------------------------------- filters
def _episodes(lib: Library) -> list[Episode]:
    return list(lib.episodes(View.PLEX, by_key=True))


def _median(values: list[int]) -> int:
    return sorted(values)[len(values) // 2]


def test_episode_date_filters_count_and_return_exactly_the_matches(
    url: str, lib: Library, sec: Section
) -> None:
    eps = _episodes(lib)
    t = _median([e.updated_at for e in eps])
    a = _median([e.added_at for e in eps])
    cases = {
        f"episode.updatedAt%3E%3E={t}": [e for e in eps if e.updated_at > t],
        f"episode.updatedAt>>={t}": [e for e in eps if e.updated_at > t],  # not URL-encoded
        f"episode.updatedAt%3C%3C={t}": [e for e in eps if e.updated_at < t],
        f"episode.updatedAt%3E={t}": [e for e in eps if e.updated_at >= t],
        f"episode.addedAt%3C={a}": [e for e in eps if e.added_at <= a],
        f"episode.addedAt>>={a}&episode.updatedAt<<={t}": [
            e for e in eps if e.added_at > a and e.updated_at < t
        ],
    }
    for query, want in cases.items():
        expected = [sec.episode_key(e) for e in want]
        count = _all(url, 4, f"&{query}&X-Plex-Container-Size=0")
        assert count["totalSize"] == len(expected) > 0, query
        assert _keys(_walk(url, 4, 333, f"&sort=id&{query}")) == expected, query


def test_integer_filters_on_ids_and_indexes(url: str, lib: Library, sec: Section) -> None:
    eps = _episodes(lib)
    keys = [sec.episode_key(e) for e in eps]
    picked = keys[10], keys[500], keys[-1]
    got = _walk(url, 4, 100, f"&episode.id={','.join(map(str, picked))}")
    assert sorted(_keys(got)) == sorted(picked)
    assert _all(url, 4, f"&episode.id!={keys[0]}&X-Plex-Container-Size=0")["totalSize"] == len(keys) - 1
    firsts = [e for e in eps if e.episode_number == 1]
    assert _all(url, 4, "&episode.index=1&X-Plex-Container-Size=0")["totalSize"] == len(firsts)


def test_unscoped_fields_refer_to_shows(url: str, lib: Library, sec: Section) -> None:
    """``type=4&updatedAt>>=T``: episodes of shows updated after T (the section's default
    type, DESIGN.md), unlike ``episode.updatedAt``."""
    t = _median([s.updated_at for s in lib.shows])
    shows = {s.index for s in lib.shows if s.updated_at > t}
    expected = [sec.episode_key(e) for e in _episodes(lib) if e.show_index in shows]
    assert _keys(_walk(url, 4, 400, f"&sort=id&updatedAt%3E%3E={t}")) == expected
    assert _keys(_walk(url, 4, 400, f"&sort=id&show.updatedAt%3E%3E={t}")) == expected
    assert len(expected) != len(_walk(url, 4, 1000, f"&episode.updatedAt%3E%3E={t}"))


def test_season_and_show_scoped_filters(url: str, lib: Library, sec: Section) -> None:
    seasons = list(lib.seasons(by_key=True))
    t = _median([s.updated_at for s in seasons])
    matching = [s for s in seasons if s.updated_at > t]
    got = _walk(url, 3, 50, f"&sort=id&season.updatedAt%3E%3E={t}")
    assert _keys(got) == [sec.season_key(lib.shows[s.show_index], s.ordinal) for s in matching]
    numbers = {(s.show_index, s.season_number) for s in matching}
    eps = [e for e in _episodes(lib) if (e.show_index, e.season_number) in numbers]
    assert _all(url, 4, f"&season.updatedAt%3E%3E={t}&X-Plex-Container-Size=0")["totalSize"] == len(eps)
    # shows having an episode added after T
    a = _median([e.added_at for e in _episodes(lib)])
    having = {e.show_index for e in _episodes(lib) if e.added_at > a}
    got = _walk(url, 2, 3, f"&sort=id&episode.addedAt%3E%3E={a}")
    assert sorted(_keys(got)) == sorted(sec.show_key(lib.shows[i]) for i in having)


def test_relative_dates_follow_the_server_clock(url: str, server: PlexServer, lib: Library) -> None:
    eps = _episodes(lib)
    latest = max(e.added_at for e in eps)
    server.controls.clock_offset_s = latest + 86400 * 10 - time.time()  # "now" is 10 days after
    expected = len([e for e in eps if e.added_at > latest + 86400 * 10 - 30 * 86400])
    assert _all(url, 4, "&episode.addedAt%3E%3E=-30d&X-Plex-Container-Size=0")["totalSize"] == expected > 0


def test_a_threshold_after_everything_is_answered_without_a_scan(url: str) -> None:
    started = time.perf_counter()
    page = _all(url, 4, f"&episode.updatedAt%3E%3E={BASE_TIME}&X-Plex-Container-Size=1000")
    assert page["totalSize"] == 0 and "Metadata" not in page
    assert time.perf_counter() - started < 1


def test_limit_bounds_the_total(url: str) -> None:
    page = _all(url, 4, "&limit=25&X-Plex-Container-Start=20&X-Plex-Container-Size=10")
    assert page["totalSize"] == 25 and page["size"] == 5


def test_filters_on_a_million_episodes_skip_shows_by_bounds() -> None:
    srv = PlexServer(LibrarySpec(episodes=1_000_000))
    sec = srv.sections[2]
    from importer.emulator.plex import EPISODE, Filter, Query

    started = time.process_time()
    total, _ = srv.select(
        sec, Query(EPISODE, (Filter(EPISODE, "updatedAt", ">>=", (BASE_TIME - 1,)),)), 0, 1000
    )
    assert total == 0 and time.process_time() - started < 2


def test_time_bounds_hold(lib: Library) -> None:
    """The library's bounds (used to skip shows) must hold for every generated episode."""
    for show in lib.shows:
        a0, a1, u0, u1 = episode_time_bounds(show)
        for e in lib.view_of(show, View.PLEX):
            assert a0 <= e.added_at <= a1 and u0 <= e.updated_at <= u1


# ----------------------------------------------------------------------------- metadata
def test_metadata_comma_list_skips_missing_ids(url: str, lib: Library, sec: Section) -> None:
    show = lib.shows[0]
    ep = lib.view_of(show, View.PLEX)[3]
    keys = [sec.show_key(show), sec.season_key(show, 0), sec.episode_key(ep), 999_999_999]
    got = plex_json(url, f"/library/metadata/{','.join(map(str, keys))}")
    assert [m["type"] for m in got["Metadata"]] == ["show", "season", "episode"]
    assert _keys(got["Metadata"]) == keys[:3] and got["Metadata"][2]["librarySectionID"] == 2
    assert plex_get(url, "/library/metadata/999999999,5")[0] == 404


def test_virtual_slots_do_not_exist(url: str, lib: Library, sec: Section) -> None:
    virtual = next(e for e in lib.episodes(View.JELLYFIN) if e.virtual)
    assert plex_get(url, f"/library/metadata/{sec.episode_key(virtual)}")[0] == 404


def test_children_and_all_leaves(url: str, lib: Library, sec: Section) -> None:
    show = next(s for s in lib.shows if len(s.season_sizes) > 2)
    key = sec.show_key(show)
    children = plex_json(url, f"/library/metadata/{key}/children")
    assert (
        children["Directory"][0]["title"] == "All episodes" and children["size"] == len(show.season_sizes) + 1
    )
    assert children["Directory"][0]["leafCount"] == lib.count(show, View.PLEX)
    assert isinstance(children["key"], str)
    seasons = children["Metadata"]
    assert [s["index"] for s in seasons] == [n for n, _ in show.season_sizes]
    bare = plex_json(url, f"/library/metadata/{key}/children?excludeAllLeaves=1")
    assert "Directory" not in bare and bare["Metadata"] == seasons
    one = plex_json(url, f"/library/metadata/{key}/children?excludeAllLeaves=1&index={seasons[1]['index']}")
    assert one["Metadata"] == [seasons[1]]
    total = 0
    for s in seasons:
        eps = plex_json(url, f"/library/metadata/{s['ratingKey']}/children")
        assert eps["grandparentRatingKey"] == key and isinstance(eps["grandparentRatingKey"], int)
        assert len(eps["Metadata"]) == s["leafCount"]
        assert {e["parentIndex"] for e in eps["Metadata"]} == {s["index"]}
        total += s["leafCount"]
    leaves = plex_json(
        url, f"/library/metadata/{key}/allLeaves?X-Plex-Container-Start=2&X-Plex-Container-Size=5"
    )
    assert leaves["totalSize"] == total == lib.count(show, View.PLEX) and leaves["offset"] == 2
    assert _keys(leaves["Metadata"]) == [sec.episode_key(e) for e in lib.view_of(show, View.PLEX)[2:7]]
    xml = plex_xml(url, f"/library/metadata/{key}/children")
    assert xml[0].tag == "Directory" and xml[0].get("title") == "All episodes" and xml[0].get("type") is None


# ----------------------------------------------------------------------------- quirks
def test_hidden_season_episodes_have_no_parent_keys(url: str, lib: Library, sec: Section) -> None:
    show = next(s for s in lib.shows if s.hidden_seasons)
    season_key = sec.season_key(show, 0)
    eps = plex_json(url, f"/library/metadata/{sec.show_key(show)}/allLeaves")["Metadata"]
    for e in eps:
        for absent in ("parentRatingKey", "parentKey", "parentGuid", "parentTitle"):
            assert absent not in e
        assert e["parentIndex"] == show.season_sizes[0][0]
        assert e["parentThumb"].startswith(f"/library/metadata/{season_key}/thumb/")
    shows = plex_json(url, f"/library/metadata/{sec.show_key(show)}")["Metadata"]
    assert shows[0]["skipChildren"] is True
    seasons = _walk(url, 3, 1000)
    assert season_key in _keys(seasons)


def test_legacy_agent_items_have_old_guids_and_no_guid_list(url: str, lib: Library, sec: Section) -> None:
    show = next(s for s in lib.shows if s.legacy_agent)
    agent = "thetvdb" if show.ids.tvdb else "themoviedb"
    item = plex_json(url, f"/library/metadata/{sec.show_key(show)}?includeGuids=1")["Metadata"][0]
    assert item["guid"] == f"com.plexapp.agents.{agent}://{show.ids.tvdb or show.ids.tmdb}?lang=en"
    assert "Guid" not in item
    eps = plex_json(url, f"/library/metadata/{sec.show_key(show)}/allLeaves?includeGuids=1")["Metadata"]
    first = lib.view_of(show, View.PLEX)[0]
    assert eps[0]["guid"].endswith(f"/{first.season_number}/{first.episode_number}?lang=en")
    assert all("Guid" not in e for e in eps) and "rating" in eps[0] and "audienceRating" not in eps[0]


def test_new_agent_guids_only_with_include_guids(url: str, lib: Library, sec: Section) -> None:
    eps = _all(url, 4, "&sort=id&includeGuids=1&X-Plex-Container-Size=1000")["Metadata"]
    plain = _all(url, 4, "&sort=id&X-Plex-Container-Size=1000")["Metadata"]
    by_key = {sec.episode_key(e): e for e in lib.episodes(View.PLEX)}
    checked = 0
    for item, bare in zip(eps, plain, strict=True):
        assert "Guid" not in bare
        e = by_key[int(item["ratingKey"])]
        if lib.shows[e.show_index].legacy_agent:
            continue
        assert item["guid"].startswith("plex://episode/") and len(item["guid"]) == len("plex://episode/") + 24
        want = [f"{s}://{v}" for s, v in zip(("imdb", "tmdb", "tvdb"), e.ids, strict=True) if v]
        assert [g["id"] for g in item.get("Guid", [])] == want
        checked += 1
    assert checked > 500
    guids = [i["guid"] for i in eps]
    assert len(set(guids)) == len(guids)


def test_double_episodes_share_media_and_part(url: str, lib: Library, sec: Section) -> None:
    eps = list(lib.episodes(View.PLEX))
    k = next(i for i, e in enumerate(eps) if e.episode_number_end is not None)
    first, second = eps[k], eps[k + 1]
    assert second.double_second
    got = plex_json(url, f"/library/metadata/{sec.episode_key(first)},{sec.episode_key(second)}")["Metadata"]
    assert got[0]["Media"] == got[1]["Media"]
    assert got[0]["index"] + 1 == got[1]["index"] and got[0]["ratingKey"] != got[1]["ratingKey"]


def test_multiple_versions_and_parts(url: str, lib: Library, sec: Section) -> None:
    eps = list(lib.episodes(View.PLEX))
    versions = next(e for e in eps if len({f.media_index for f in e.files}) == 2)
    parts = next(e for e in eps if len(e.files) == 2 and e.files[1].part_index == 1)
    got = plex_json(url, f"/library/metadata/{sec.episode_key(versions)},{sec.episode_key(parts)}")[
        "Metadata"
    ]
    assert len(got[0]["Media"]) == 2 and all(len(m["Part"]) == 1 for m in got[0]["Media"])
    assert [m["Part"][0]["file"] for m in got[0]["Media"]] == [f.path for f in versions.files]
    assert len(got[1]["Media"]) == 1 and [p["file"] for p in got[1]["Media"][0]["Part"]] == [
        f.path for f in parts.files
    ]
    assert got[1]["Media"][0]["duration"] == sum(f.duration_ms for f in parts.files)


def test_absent_optional_fields_are_left_out(url: str, lib: Library, sec: Section) -> None:
    eps = list(lib.episodes(View.PLEX))
    no_summary = next(e for e in eps if e.summary is None)
    no_date = next(e for e in eps if e.air_date is None)
    no_duration = next(e for e in eps if e.duration_ms is None)
    keys = ",".join(str(sec.episode_key(e)) for e in (no_summary, no_date, no_duration))
    a, b, c = plex_json(url, f"/library/metadata/{keys}")["Metadata"]
    assert "summary" not in a
    assert "originallyAvailableAt" not in b and "year" not in b
    assert "duration" not in c and c["Media"][0]["duration"] > 0
    with_date = next(e for e in eps if e.air_date)
    day = with_date.air_date or ""
    d = plex_json(url, f"/library/metadata/{sec.episode_key(with_date)}")["Metadata"][0]
    assert d["originallyAvailableAt"] == day and d["year"] == int(day[:4])


def test_every_item_survives_both_renderings(url: str, lib: Library, sec: Section) -> None:
    """Titles with quotes, emoji and CR/LF summaries come back intact from XML and JSON."""
    want = {sec.episode_key(e): e for e in lib.episodes(View.PLEX)}
    for start in range(0, len(want), 1000):
        q = f"&sort=id&X-Plex-Container-Start={start}&X-Plex-Container-Size=1000"
        js = _all(url, 4, q)["Metadata"]
        xml = plex_xml(url, f"/library/sections/2/all?type=4{q}")
        for j, x in zip(js, xml.iter("Video"), strict=True):
            e = want[int(j["ratingKey"])]
            assert j["title"] == x.get("title") == e.title
            assert j.get("summary") == x.get("summary") == e.summary
            assert j["Media"][0]["Part"][0]["file"] == e.files[0].path
    shows = _all(url, 2, "&X-Plex-Container-Size=100")["Metadata"]
    assert [s["title"] for s in shows] == [s.title for s in lib.shows]
    assert any(not s.title.isascii() for s in lib.shows)
    assert any("\r\n" in (e.summary or "") for e in want.values())


def test_exclude_elements_and_fields(url: str) -> None:
    q = "&includeGuids=1&X-Plex-Container-Size=50&excludeFields=summary"
    q += "&excludeElements=Media,Role,Director,Writer,Genre"
    for item in _all(url, 4, q)["Metadata"]:
        assert not {"Media", "Director", "Writer", "summary"} & set(item)
    for item in _all(url, 2, q)["Metadata"]:
        assert not {"Genre", "Role", "summary"} & set(item)


@pytest.mark.parametrize("plex_type", [2, 3, 4])
def test_exclude_fields_leaves_out_exactly_those(url: str, plex_type: int) -> None:
    excluded = {"key", "parentKey", "thumb", "art", "parentTitle", "grandparentTitle", "year", "rating",
                "audienceRating", "contentRating", "grandparentArt"}  # fmt: skip
    q = "&includeGuids=1&X-Plex-Container-Size=300"
    whole = _all(url, plex_type, q)["Metadata"]
    trimmed = _all(url, plex_type, q + "&excludeFields=" + ",".join(sorted(excluded)))["Metadata"]
    xml = plex_xml(url, f"/library/sections/2/all?type={plex_type}{q}&excludeFields={','.join(excluded)}")
    assert any(excluded & set(item) for item in whole)  # there was something to leave out
    assert len(trimmed) == len(whole) == len(xml.findall("./*[@ratingKey]"))
    for full, item, element in zip(whole, trimmed, xml.findall("./*[@ratingKey]"), strict=True):
        assert item == {k: v for k, v in full.items() if k not in excluded}
        assert not excluded & set(element.attrib)
        assert element.get("ratingKey") == item["ratingKey"] and element.get("title") == item["title"]


# ----------------------------------------------------------------------------- server
def test_base_path_and_several_libraries() -> None:
    libs = [
        TvLibrary("TV Shows", Library(LibrarySpec(shows=3, seed=5))),
        TvLibrary("Anime", Library(LibrarySpec(shows=2, seed=5))),
    ]
    srv = PlexServer(libs, token=TOKEN, base_path="/plex")
    with srv.running_in_thread() as url:
        assert url.endswith("/plex")
        assert plex_get(url, "/identity", token=None)[0] == 200
        assert plex_get(url.removesuffix("/plex"), "/library/sections")[0] == 404
        sections = plex_json(url, "/library/sections")["Directory"]
        assert [(s["key"], s["type"]) for s in sections] == [("1", "movie"), ("2", "show"), ("3", "show")]
        keys: list[int] = []
        for key in (2, 3):
            keys += _keys(
                plex_json(url, f"/library/sections/{key}/all?type=4&X-Plex-Container-Size=1000")["Metadata"]
            )
        assert len(keys) == len(set(keys))  # ratingKeys are unique server-wide
        other = plex_json(url, f"/library/metadata/{max(keys)}")["Metadata"][0]
        assert other["librarySectionID"] == 3


def test_request_log_counts_requests_and_items(url: str, server: PlexServer) -> None:
    _all(url, 4, "&X-Plex-Container-Size=30")
    _all(url, 2, "&X-Plex-Container-Size=0")
    plex_get(url, "/library/sections/2/all?type=4")
    entries = server.log.matching("/library/sections/2/all")
    assert [(e.status, e.items) for e in entries] == [(200, 30), (200, 0), (400, 0)]
    assert server.log.counters()["items"] == 30


def test_item_cost_and_latency_apply(url: str, server: PlexServer) -> None:
    server.controls.item_cost_us = 2000
    started = time.perf_counter()
    _all(url, 4, "&X-Plex-Container-Size=50")
    assert time.perf_counter() - started >= 0.1


def test_gzip_when_asked(url: str) -> None:
    import gzip

    status, headers, body = plex_get(
        url, "/library/sections/2/all?type=4&X-Plex-Container-Size=100", headers={"Accept-Encoding": "gzip"}
    )
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(body))["MediaContainer"]["Metadata"]) == 100
