"""Server sources: requests, decoders, detection; recorded real pages, hostile input, and
round trips over real HTTP against the emulated servers, checked field by field against
the library generator's ground truth.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from ground_truth import expected
from reference_data import REFERENCE

from importer.emulator.jellyfin import EmbyServer, JellyfinServer, jf_etag
from importer.emulator.library import Episode, Library, LibrarySpec, Show, View
from importer.emulator.plex import VERSION as PLEX_VERSION
from importer.emulator.plex import PlexServer
from importer.emulator.server import EmulatedServer, TvLibrary
from importer.errors import AuthError, ConfigError, DecodeError, NotFoundError, UnexpectedResponse
from importer.http import HttpClient
from importer.model import LibraryInfo, ListingKind, PageRequest, StreamKind
from importer.rows import EPISODE_COLUMNS, MEDIA_FILE_COLUMNS, SEASON_COLUMNS, SHOW_COLUMNS
from importer.sources import decode_page, detect_source, make_source
from importer.sources.base import DecodedPage, Source
from importer.sources.jellyfin import EmbySource, JellyfinSource
from importer.sources.plex import PlexSource

FIXTURES = Path(__file__).parent / "fixtures"


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def as_dict(columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    assert len(row) == len(columns)
    return dict(zip(columns, row, strict=True))


# ----------------------------------------------------------------------------- fake HTTP


class FakeHttp:
    """An HttpGet that answers from a table: bytes, or an exception to raise."""

    def __init__(self, routes: Mapping[str, bytes | Exception]) -> None:
        self.routes = routes
        self.calls: list[str] = []

    async def get_bytes(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> bytes:
        self.calls.append(path)
        answer = self.routes.get(path)
        if answer is None:
            raise NotFoundError(f"{path}: not found (HTTP 404)", status=404)
        if isinstance(answer, Exception):
            raise answer
        return answer


PLEX_IDENTITY = body(
    {"MediaContainer": {"size": 0, "claimed": True, "machineIdentifier": "abc123", "version": "1.41.3"}}
)
PLEX_SECTIONS = body(
    {
        "MediaContainer": {
            "size": 3,
            "Directory": [
                {"key": "1", "title": "Movies", "type": "movie"},
                {"key": "2", "title": "TV Shows", "type": "show"},
                {"key": 7, "title": "Anime", "type": "show"},
            ],
        }
    }
)
JF_INFO = body({"Id": "f00d", "ServerName": "den", "Version": "10.10.7", "ProductName": "Jellyfin Server"})
EMBY_INFO = body({"Id": "e3b", "ServerName": "attic", "Version": "4.8.11.0", "ProductName": "Emby Server"})
FOLDERS = body(
    [
        {"Name": "Films", "CollectionType": "movies", "ItemId": "m1"},
        {"Name": "Series", "CollectionType": "tvshows", "ItemId": "t1"},
        {"Name": "Mixed", "ItemId": "x1"},
    ]
)


# ----------------------------------------------------------------------------- detection + discovery


async def test_detects_jellyfin_in_one_round_trip_and_discover_reuses_it() -> None:
    http = FakeHttp({"/System/Info/Public": JF_INFO, "/Library/VirtualFolders": FOLDERS})
    source = await detect_source(http, "http://den:8096")
    probes = ["/System/Info/Public", "/identity", "/emby/System/Info/Public"]  # at once
    assert source.kind == "jellyfin" and http.calls == probes
    server, libraries = await source.discover(http)
    assert http.calls == [*probes, "/Library/VirtualFolders"]  # no second info request
    assert (server.kind, server.machine_id, server.name, server.version) == (
        "jellyfin",
        "f00d",
        "den",
        "10.10.7",
    )
    assert server.base_url == "http://den:8096"
    assert libraries == [LibraryInfo("t1", "Series")]


async def test_detects_plex_after_a_failed_jellyfin_probe() -> None:
    http = FakeHttp(
        {
            "/System/Info/Public": AuthError("401", status=401),
            "/identity": PLEX_IDENTITY,
            "/library/sections": PLEX_SECTIONS,
        }
    )
    source = await detect_source(http)
    probes = ["/System/Info/Public", "/identity", "/emby/System/Info/Public"]
    assert source.kind == "plex" and http.calls == probes
    server, libraries = await source.discover(http)
    # "/" is not routed here: discover falls back on the /identity detection read
    assert http.calls[3:] == ["/", "/library/sections"]
    assert (server.machine_id, server.version, server.name) == ("abc123", "1.41.3", "Plex Media Server")
    assert libraries == [LibraryInfo("2", "TV Shows"), LibraryInfo("7", "Anime")]


async def test_plex_port_is_probed_as_plex_first() -> None:
    # every kind is probed at once (one round trip); on Plex's port Plex's answer wins
    http = FakeHttp({"/identity": PLEX_IDENTITY, "/System/Info/Public": EMBY_INFO})
    assert (await detect_source(http, "http://nas:32400")).kind == "plex"
    assert http.calls[0] == "/identity" and len(http.calls) == 3


async def test_detects_emby_unprefixed_and_under_emby() -> None:
    http = FakeHttp({"/System/Info/Public": EMBY_INFO})
    source = await detect_source(http)
    assert isinstance(source, EmbySource) and source.prefix == ""
    http = FakeHttp({"/emby/System/Info/Public": EMBY_INFO, "/emby/Library/VirtualFolders": FOLDERS})
    source = await detect_source(http)
    assert isinstance(source, EmbySource) and source.prefix == "/emby"
    assert http.calls == ["/System/Info/Public", "/identity", "/emby/System/Info/Public"]
    server, libraries = await source.discover(http)
    assert server.kind == "emby" and server.machine_id == "e3b" and libraries == [LibraryInfo("t1", "Series")]
    # Older Emby has no ProductName: still Emby, not Jellyfin.
    old = body({"Id": "e", "ServerName": "x", "Version": "4.7.0.0"})
    assert (await detect_source(FakeHttp({"/System/Info/Public": old}))).kind == "emby"


async def test_emby_folders_as_a_query_result_and_id_fallback() -> None:
    folders = body({"Items": [{"Name": "TV", "CollectionType": "tvshows", "Id": "9"}], "TotalRecordCount": 1})
    http = FakeHttp({"/emby/System/Info/Public": EMBY_INFO, "/emby/Library/VirtualFolders": folders})
    _, libraries = await make_source("emby").discover(http)
    assert libraries == [LibraryInfo("9", "TV")]


async def test_detection_gives_up_with_advice() -> None:
    html = b"<!doctype html><html><body>login</body></html>"
    http = FakeHttp({"/System/Info/Public": html, "/identity": UnexpectedResponse("html")})
    with pytest.raises(UnexpectedResponse, match="--kind"):
        await detect_source(http)
    assert len(http.calls) == 3


def test_make_source() -> None:
    assert isinstance(make_source("plex"), PlexSource)
    assert type(make_source("jellyfin")) is JellyfinSource
    assert make_source("emby", "http://h:8096/emby/").prefix == ""  # type: ignore[attr-defined]
    assert make_source("emby", "http://h:8096").prefix == "/emby"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError):
        make_source("kodi")


# ----------------------------------------------------------------------------- requests


def test_plex_requests() -> None:
    source = PlexSource(client_id="cid")
    headers = source.auth_headers("SECRET")
    assert headers == {
        "X-Plex-Token": "SECRET",
        "X-Plex-Client-Identifier": "cid",
        "X-Plex-Product": "importer",
        "X-Plex-Version": headers["X-Plex-Version"],
        "Accept": "application/json",
    }
    lib = LibraryInfo("2", "TV")
    for stream, number in (("shows", "2"), ("seasons", "3"), ("episodes", "4")):
        req = source.page_request(lib, stream, ListingKind.FULL, 2000, 1000, with_total=False)  # type: ignore[arg-type]
        assert req.path == "/library/sections/2/all"
        assert req.params["type"] == number
        assert req.params["sort"] == "id" and req.params["includeGuids"] == "1"
        assert req.params["checkFiles"] == "0" and req.params["includeExtras"] == "0"
        assert "Guid" not in req.params["excludeElements"].split(",")
        assert "Media" not in req.params["excludeElements"].split(",")
        for where in (req.params, req.headers):
            assert where["X-Plex-Container-Start"] == "2000" and where["X-Plex-Container-Size"] == "1000"
    count = source.page_request(lib, "episodes", ListingKind.FULL, 0, 0, with_total=True)
    assert count.params["X-Plex-Container-Size"] == "0"
    assert source.page_size == 1000


def test_jellyfin_requests() -> None:
    source = JellyfinSource(client_id="dev1")
    auth = source.auth_headers("SECRET")["Authorization"]
    assert auth.startswith('MediaBrowser Client="importer", Device="')
    assert 'DeviceId="dev1"' in auth and auth.endswith('Token="SECRET"')
    lib = LibraryInfo("libid", "TV")
    req = source.page_request(lib, "episodes", ListingKind.FULL, 500, 500, with_total=False)
    assert req.path == "/Items"
    p = req.params
    assert p["ParentId"] == "libid" and p["IncludeItemTypes"] == "Episode" and p["Recursive"] == "true"
    assert (p["StartIndex"], p["Limit"]) == ("500", "500")
    assert (
        p["EnableTotalRecordCount"] == "false"
        and p["EnableImages"] == "false"
        and p["EnableUserData"] == "false"
    )
    assert "People" not in p["Fields"] and {"ProviderIds", "MediaSources", "Etag"} <= set(
        p["Fields"].split(",")
    )
    assert p["ExcludeLocationTypes"] == "Virtual" and p["IsMissing"] == "false"
    assert p["SortBy"]
    shows = source.page_request(lib, "shows", ListingKind.FULL, 0, 1, with_total=True).params
    assert shows["IncludeItemTypes"] == "Series" and shows["EnableTotalRecordCount"] == "true"
    assert "MediaSources" not in shows["Fields"] and "IsMissing" not in shows
    assert (
        source.page_request(lib, "seasons", ListingKind.FULL, 0, 1, with_total=True).params[
            "IncludeItemTypes"
        ]
        == "Season"
    )
    assert source.page_size == 1000
    # an ids listing asks for bare items with their etags, five times as many a page
    ids = source.page_request(lib, "episodes", ListingKind.IDS, 0, 5000, with_total=True).params
    assert ids["Fields"] == "Etag" and ids["Limit"] == "5000" and source.ids_page_size == 5000
    # the changed ones come back in full, by id
    details = source.page_request(
        lib, "episodes", ListingKind.DETAILS, -1, 0, with_total=False, ids=["a", "b"]
    )
    assert details.params["Ids"] == "a,b" and details.params["Limit"] == "2"
    assert "MediaSources" in details.params["Fields"] and details.params["StartIndex"] == "0"
    count = source.page_request(lib, "episodes", ListingKind.COUNT, 0, 1000, with_total=True).params
    assert count["Limit"] == "0" and count["EnableTotalRecordCount"] == "true"


def test_emby_requests() -> None:
    source = EmbySource(client_id="dev1")
    headers = source.auth_headers("SECRET")
    assert headers["X-Emby-Token"] == "SECRET"
    assert "SECRET" not in headers["X-Emby-Authorization"] and "Authorization" not in headers
    req = source.page_request(LibraryInfo("l", "TV"), "episodes", ListingKind.FULL, 0, 500, with_total=False)
    assert req.path == "/emby/Items" and req.params["ParentId"] == "l"


# ----------------------------------------------------------------------------- Plex decoding


def plex_page(items: list[dict[str, Any]], **container: Any) -> bytes:
    return body({"MediaContainer": {"size": len(items), **container, "Metadata": items}})


PLEX_EPISODE: dict[str, Any] = {
    "ratingKey": "5",
    "type": "episode",
    "guid": "plex://episode/5",
    "grandparentRatingKey": "3",
    "parentRatingKey": "4",
    "title": "Ça commence 🎬",
    "summary": "",
    "index": 1,
    "parentIndex": 2,
    "originallyAvailableAt": "2002-01-01",
    "duration": 2654912,
    "addedAt": 1105631952,
    "updatedAt": 1691510335,
    "Guid": [{"id": "imdb://tt0000004"}, {"id": "tmdb://4"}, {"id": "tvdb://44"}],
    "Media": [
        {
            "id": 1,
            "duration": 2654912,
            "width": 1920,
            "height": 1080,
            "container": "mkv",
            "videoCodec": "hevc",
            "audioCodec": "ac3",
            "Part": [
                {
                    "id": 598189,
                    "file": "/tv/a.mkv",
                    "size": 3109472188,
                    "duration": 2654912,
                    "container": "mkv",
                }
            ],
        }
    ],
}


def test_plex_episode_rows() -> None:
    page = decode_page("plex", "episodes", plex_page([PLEX_EPISODE], offset=3000, totalSize=4321), "2")
    assert (page.stream, page.offset, page.count, page.total, page.ids) == ("episodes", 3000, 1, 4321, ["5"])
    row = as_dict(EPISODE_COLUMNS, page.rows[0])
    etag = row.pop("etag")
    assert isinstance(etag, str) and etag
    assert row == {
        "source_id": "5",
        "show_source_id": "3",
        "season_source_id": "4",
        "guid": "plex://episode/5",
        "season_number": 2,
        "episode_number": 1,
        "episode_number_end": None,
        "title": "Ça commence 🎬",
        "summary": "",
        "air_date": "2002-01-01",
        "duration_ms": 2654912,
        "imdb_id": "tt0000004",
        "tmdb_id": "4",
        "tvdb_id": "44",
        "added_at": 1105631952,
        "updated_at": 1691510335,
    }
    assert [as_dict(MEDIA_FILE_COLUMNS, f) for f in page.files] == [
        {
            "episode_source_id": "5",
            "source_id": "598189",
            "media_index": 0,
            "part_index": 0,
            "path": "/tv/a.mkv",
            "size_bytes": 3109472188,
            "container": "mkv",
            "video_codec": "hevc",
            "audio_codec": "ac3",
            "width": 1920,
            "height": 1080,
            "duration_ms": 2654912,
        }
    ]


def test_plex_hidden_season_ids_as_numbers_and_multipart() -> None:
    episode = {
        **PLEX_EPISODE,
        "ratingKey": 6,  # numbers where strings are usual: parsed leniently
        "grandparentRatingKey": 3,
        "Guid": [],
        "Media": [
            {
                "duration": 3000,
                "container": "avi",
                "Part": [
                    {"id": 1, "file": "/a - pt1.avi", "duration": 1500},
                    {"id": 2, "file": "/a - pt2.avi"},
                ],
            },
            {
                "duration": 3000,
                "videoCodec": "hevc",
                "Part": [{"id": 3, "file": "/a - 4K.mkv", "container": "mkv"}],
            },
        ],
    }
    del episode["parentRatingKey"]  # shows with hidden seasons: the writer links by number
    page = decode_page("plex", "episodes", plex_page([episode]), "2")
    row = as_dict(EPISODE_COLUMNS, page.rows[0])
    assert (row["source_id"], row["show_source_id"], row["season_source_id"]) == ("6", "3", None)
    assert (row["imdb_id"], row["tmdb_id"], row["tvdb_id"]) == (None, None, None)
    assert page.offset == -1 and page.total is None  # the container did not say
    files = [as_dict(MEDIA_FILE_COLUMNS, f) for f in page.files]
    assert [(f["source_id"], f["media_index"], f["part_index"]) for f in files] == [
        ("1", 0, 0),
        ("2", 0, 1),
        ("3", 1, 0),
    ]
    # a part's own duration; the Media's duration only for a single-part Media
    assert [f["duration_ms"] for f in files] == [1500, None, 3000]
    assert [f["container"] for f in files] == ["avi", "avi", "mkv"]


def test_plex_double_episode_shares_a_part() -> None:
    first = {**PLEX_EPISODE, "ratingKey": "10", "index": 1}
    second = {**PLEX_EPISODE, "ratingKey": "11", "index": 2}
    page = decode_page("plex", "episodes", plex_page([first, second]), "2")
    assert [r[5] for r in page.rows] == [1, 2]
    assert [(f[0], f[1]) for f in page.files] == [("10", "598189"), ("11", "598189")]


def test_plex_etag_follows_stored_content_only() -> None:
    base = decode_page("plex", "episodes", plex_page([PLEX_EPISODE]), "2").rows[0][-1]
    watched = {**PLEX_EPISODE, "viewCount": 3, "lastViewedAt": 1700000000}
    assert decode_page("plex", "episodes", plex_page([watched]), "2").rows[0][-1] == base
    moved = json.loads(json.dumps(PLEX_EPISODE))
    moved["Media"][0]["Part"][0]["file"] = "/tv/b.mkv"
    assert decode_page("plex", "episodes", plex_page([moved]), "2").rows[0][-1] != base


def test_plex_shows_and_seasons() -> None:
    shows = [
        {
            "ratingKey": "3",
            "type": "show",
            "guid": "plex://show/3",
            "title": "The Office",
            "titleSort": "Office",
            "year": 2005,
            "summary": "s",
            "leafCount": 201,
            "addedAt": 10,
            "updatedAt": 20,
            "contentRating": "TV-14",
            "studio": "NBC",
            "rating": 8.5,
            "audienceRating": 9.0,
            "thumb": "/library/metadata/3/thumb/1700000000",
            "art": "/library/metadata/3/art/1700000001?X-Plex-Token=secret",
            "Guid": [{"id": "imdb://tt0386676"}, {"id": "tmdb://2316"}, {"id": "tvdb://73244"}],
        },
        {
            "ratingKey": "22",
            "type": "show",
            "guid": "com.plexapp.agents.thetvdb://268592?lang=en",
            "title": "The 100",
            "leafCount": 18,
        },
    ]
    page = decode_page("plex", "shows", plex_page(shows, offset=0, totalSize=2), "2")
    assert page.leaf_total == 219 and page.total == 2
    a, b = (as_dict(SHOW_COLUMNS, r) for r in page.rows)
    assert (a["title"], a["sort_title"], a["year"], a["imdb_id"], a["tmdb_id"], a["tvdb_id"]) == (
        "The Office", "Office", 2005, "tt0386676", "2316", "73244",
    )  # fmt: skip
    assert (a["content_rating"], a["studio"], a["critic_rating"], a["audience_rating"]) == (
        "TV-14",
        "NBC",
        8.5,
        9.0,
    )
    # the artwork as served, tagged by its trailing number, never with a token
    assert page.images == [
        ("3", "poster", "/library/metadata/3/thumb/1700000000", "1700000000"),
        ("3", "backdrop", "/library/metadata/3/art/1700000001", "1700000001"),
    ]
    # legacy agent: no Guid[]; the show guid names the TVDB id; no titleSort means the title
    assert (b["sort_title"], b["imdb_id"], b["tmdb_id"], b["tvdb_id"]) == ("The 100", None, None, "268592")
    assert b["content_rating"] is b["critic_rating"] is None
    # a new poster alone changes the etag: the show and its images are written again
    shows[0]["thumb"] = "/library/metadata/3/thumb/1700000099"
    again = decode_page("plex", "shows", plex_page(shows, offset=0, totalSize=2), "2")
    assert again.rows[0][-1] != page.rows[0][-1] and again.rows[1][-1] == page.rows[1][-1]
    # a season repeats its show's art: not an image of its own
    seasons = [{"ratingKey": "4", "type": "season", "parentRatingKey": 3, "index": 0, "title": "Specials",
                "thumb": "/library/metadata/4/thumb/17",
                "art": "/library/metadata/3/art/1700000001"}]  # fmt: skip
    page = decode_page("plex", "seasons", plex_page(seasons), "2")
    assert page.images == [("4", "poster", "/library/metadata/4/thumb/17", "17")]
    row = as_dict(SEASON_COLUMNS, page.rows[0])
    assert (row["source_id"], row["show_source_id"], row["season_number"], row["title"]) == (
        "4",
        "3",
        0,
        "Specials",
    )


def test_plex_count_only_page() -> None:
    page = decode_page(
        "plex", "episodes", body({"MediaContainer": {"size": 0, "totalSize": 10, "offset": 0}}), "2"
    )
    assert (page.count, page.total, page.ids, page.rows) == (0, 10, [], [])


@pytest.mark.parametrize(
    ("name", "stream", "count"),
    [
        ("plex-api-rs-tv_episodes.json", "episodes", 3),
        ("plex-api-rs-tv_seasons.json", "seasons", 2),
        ("plex-api-rs-tv_library.json", "shows", 2),
    ],
)
def test_recorded_plex_pages_decode(name: str, stream: str, count: int) -> None:
    page = decode_page("plex", stream, (REFERENCE / "plex/fixtures" / name).read_bytes(), "2")  # type: ignore[arg-type]
    assert page.count == count == len(page.ids)
    rows = page.rows
    assert len(rows) == count
    if stream == "episodes":
        # legacy agent: hoisted container keys are numbers, item keys strings
        assert page.rows[0][:3] == ("90", "22", "89")
        assert page.files[0][1:5] == ("76", 0, 0, "/data/TV-Shows/The 100/The.100.S01E01.mkv")
    if stream == "shows":
        assert page.leaf_total == 36 and page.rows[0][8] == "268592"


def test_recorded_watchstate_pages_decode() -> None:
    data = json.loads((REFERENCE / "plex/fixtures/watchstate-plex_data.json").read_bytes())
    page = decode_page("plex", "episodes", body(data["library_episodes_get_200"]["response"]["body"]), "2")
    row = as_dict(EPISODE_COLUMNS, page.rows[0])
    assert (row["source_id"], row["show_source_id"], row["season_source_id"]) == ("5", "3", "4")
    assert (row["imdb_id"], row["tmdb_id"], row["tvdb_id"]) == ("tt0000004", "4", "4")
    assert (page.offset, page.total) == (0, 1)
    assert page.files[0][1] == "598189" and page.files[0][5] == 3109472188
    page = decode_page("plex", "shows", body(data["library_show_get_200"]["response"]["body"]), "2")
    assert page.leaf_total == 13 and page.rows[0][:3] == (
        "3",
        "plex://show/300000000000000000000003",
        "Ferengi StandUp Comedy",
    )
    sections = body(data["sections_get_200"]["response"]["body"])
    identity = body(data["server_info_get_200"]["response"]["body"])
    source = PlexSource(identity_body=identity)

    async def discover() -> Any:
        return await source.discover(FakeHttp({"/library/sections": sections}))

    server, libraries = asyncio.run(discover())
    assert server.machine_id == "plex-server-1" and server.name == "Plex Test"
    assert [lib.source_id for lib in libraries] == ["2", "3"]


# ----------------------------------------------------------------------------- Jellyfin decoding


def jf_page(items: list[dict[str, Any]], start: int | None = 0, total: int | None = None) -> bytes:
    out: dict[str, Any] = {"Items": items, "TotalRecordCount": len(items) if total is None else total}
    if start is not None:
        out["StartIndex"] = start
    return body(out)


def jf_episode(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "Name": "Épisode 1 — «Pilot» 🎬",
        "Id": "e1",
        "Etag": "etag-e1",
        "DateCreated": "2023-09-13T20:23:45.1234567Z",
        "PremiereDate": "2014-03-19T00:00:00.0000000Z",
        "RunTimeTicks": 26549120000,
        "IndexNumber": 1,
        "ParentIndexNumber": 2,
        "Type": "Episode",
        "SeriesId": "s1",
        "SeasonId": "se1",
        "LocationType": "FileSystem",
        "Overview": "Line one.\r\nLine two.",
        "ProviderIds": {"Tvdb": "44", "Imdb": "tt0000004", "Tmdb": "4", "TvRage": "x"},
        "People": [{"Name": "someone"}],
        "MediaSources": [
            {
                "Protocol": "File",
                "Id": "ms1",
                "Path": "/tv/a.mkv",
                "Container": "mkv",
                "Size": 3109472188,
                "RunTimeTicks": 26549120000,
                "MediaStreams": [
                    {"Codec": "subrip", "Type": "Subtitle"},
                    {"Codec": "ac3", "Type": "Audio", "Channels": 6},
                    {"Codec": "hevc", "Type": "Video", "Width": 1920, "Height": 1080},
                    {"Codec": "aac", "Type": "Audio"},
                ],
            }
        ],
    }
    item.update(changes)
    return item


def test_jellyfin_episode_rows() -> None:
    page = decode_page("jellyfin", "episodes", jf_page([jf_episode()], start=500, total=9000), "lib")
    assert (page.offset, page.count, page.total, page.ids) == (500, 1, 9000, ["e1"])
    row = as_dict(EPISODE_COLUMNS, page.rows[0])
    assert row == {
        "source_id": "e1",
        "show_source_id": "s1",
        "season_source_id": "se1",
        "guid": None,
        "season_number": 2,
        "episode_number": 1,
        "episode_number_end": None,
        "title": "Épisode 1 — «Pilot» 🎬",
        "summary": "Line one.\r\nLine two.",
        "air_date": "2014-03-19",
        "duration_ms": 2654912,
        "imdb_id": "tt0000004",
        "tmdb_id": "4",
        "tvdb_id": "44",
        "added_at": 1694636625,
        "updated_at": None,
        "etag": "etag-e1",
    }
    assert [as_dict(MEDIA_FILE_COLUMNS, f) for f in page.files] == [
        {
            "episode_source_id": "e1",
            "source_id": "ms1",
            "media_index": 0,
            "part_index": 0,
            "path": "/tv/a.mkv",
            "size_bytes": 3109472188,
            "container": "mkv",
            "video_codec": "hevc",
            "audio_codec": "ac3",
            "width": 1920,
            "height": 1080,
            "duration_ms": 2654912,
        }
    ]


def test_jellyfin_virtual_double_no_season_no_dates() -> None:
    items = [
        jf_episode(Id="v", LocationType="Virtual", MediaSources=[]),
        jf_episode(Id="d", IndexNumberEnd=2, SeasonId=None),
        jf_episode(
            Id="n",
            PremiereDate=None,
            DateCreated="0001-01-01T00:00:00.0000000Z",
            ProviderIds={},
            RunTimeTicks=None,
            Etag=None,
        ),
    ]
    del items[2]["MediaSources"]
    page = decode_page("jellyfin", "episodes", jf_page(items), "lib", with_total=False)
    assert page.count == 3 and page.ids == ["d", "n"] and page.total is None
    d, n = (as_dict(EPISODE_COLUMNS, r) for r in page.rows)
    assert (d["episode_number"], d["episode_number_end"], d["season_source_id"]) == (1, 2, None)
    assert (n["air_date"], n["added_at"], n["duration_ms"], n["imdb_id"]) == (None, None, None, None)
    assert n["etag"]  # no Etag field: a content hash stands in
    assert [f[0] for f in page.files] == ["d"]


def test_jellyfin_series_and_seasons() -> None:
    series = {
        "Id": "s1",
        "Type": "Series",
        "Name": "The Office",
        "SortName": "office",
        "ProductionYear": 2005,
        "Overview": None,
        "DateCreated": "2020-01-02T00:00:00Z",
        "Etag": "x",
        "ProviderIds": {"Imdb": "tt0386676", "Tvdb": ""},
        "OfficialRating": "TV-14",
        "CriticRating": 85,
        "CommunityRating": 8.1,
        "Studios": [{"Name": "NBC", "Id": "ab12"}, {"Name": "Universal", "Id": "cd34"}],
        "ImageTags": {"Primary": "p1", "Logo": "l1", "Art": "a1"},
        "BackdropImageTags": ["b0", "b1"],
    }
    page = decode_page("jellyfin", "shows", jf_page([series]), "lib")
    # Art is no kind of ours; each backdrop is its own row, numbered as Jellyfin numbers them
    assert sorted(page.images) == [
        ("s1", "backdrop", "/Items/s1/Images/Backdrop/0", "b0"),
        ("s1", "backdrop", "/Items/s1/Images/Backdrop/1", "b1"),
        ("s1", "logo", "/Items/s1/Images/Logo/0", "l1"),
        ("s1", "poster", "/Items/s1/Images/Primary/0", "p1"),
    ]
    row = as_dict(SHOW_COLUMNS, page.rows[0])
    assert row == {
        "source_id": "s1",
        "guid": None,
        "title": "The Office",
        "sort_title": "office",
        "year": 2005,
        "summary": None,
        "imdb_id": "tt0386676",
        "tmdb_id": None,
        "tvdb_id": None,
        "added_at": 1577923200,
        "updated_at": None,
        "content_rating": "TV-14",
        "studio": "NBC",
        "critic_rating": 8.5,
        "audience_rating": 8.1,
        "etag": "x",
    }
    seasons = [
        {"Id": "se1", "Type": "Season", "SeriesId": "s1", "IndexNumber": 1, "Name": "Season 1", "Etag": "y"},
        {"Id": "se9", "Type": "Season", "SeriesId": "s1", "IndexNumber": 9, "LocationType": "Virtual"},
    ]
    page = decode_page("jellyfin", "seasons", jf_page(seasons), "lib")
    assert page.rows == [("se1", "s1", 1, "Season 1", "y")] and page.count == 2


def test_emby_page_has_no_start_index() -> None:
    page = decode_page("emby", "episodes", jf_page([jf_episode()], start=None, total=7), "lib")
    assert page.offset == -1 and page.total == 7 and page.ids == ["e1"]


def test_recorded_jellyfin_item_decodes() -> None:
    item = json.loads((REFERENCE / "jellyfin/fixtures/aiojellyfin-track-thrown_away.json").read_bytes())
    item["Type"] = "Episode"  # a real recorded BaseItemDto (an audio track): same shapes
    page = decode_page("jellyfin", "episodes", jf_page([item]), "lib")
    f = as_dict(MEDIA_FILE_COLUMNS, page.files[0])
    assert (f["path"], f["size_bytes"], f["audio_codec"], f["video_codec"]) == (
        "/media/music/Papa Roach/Infest/11 Thrown Away.m4a", 11283443, "mp3", None,
    )  # fmt: skip
    assert page.rows[0][10] == 577776  # RunTimeTicks // 10_000
    data = json.loads((REFERENCE / "jellyfin/fixtures/watchstate-mediabrowser_data.json").read_bytes())
    episode = {**data["metadata_episode"], "Type": "Episode"}
    row = as_dict(EPISODE_COLUMNS, decode_page("jellyfin", "episodes", jf_page([episode]), "lib").rows[0])
    assert (row["tvdb_id"], row["added_at"], row["season_number"]) == ("234", 1577923200, 1)


# ----------------------------------------------------------------------------- hostile input


BAD_BODIES = {
    "html": b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>SECRET-TOKEN</body></html>",
    "truncated": b'{"MediaContainer": {"size": 1, "Metadata": [{"ratingKey": "5", "title": "SECRET-TOK',
    "empty": b"",
    "not json": b"SECRET-TOKEN is not json",
    "array": b"[1, 2, 3]",
}


@pytest.mark.parametrize("kind", ["plex", "jellyfin", "emby"])
@pytest.mark.parametrize("stream", ["shows", "seasons", "episodes"])
@pytest.mark.parametrize("bad", sorted(BAD_BODIES))
def test_malformed_bodies_raise_decode_error(kind: str, stream: str, bad: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_page(kind, stream, BAD_BODIES[bad], "lib")  # type: ignore[arg-type]
    message = str(info.value)
    assert stream in message and "SECRET" not in message and len(message) < 400


def test_wrong_types_raise_decode_error() -> None:
    wrong = {**PLEX_EPISODE, "index": "one"}
    with pytest.raises(DecodeError, match=r"Metadata\[0\]\.index"):
        decode_page("plex", "episodes", plex_page([wrong]), "2")
    with pytest.raises(DecodeError, match="totalSize"):
        decode_page("plex", "episodes", plex_page([], totalSize="many"), "2")
    with pytest.raises(DecodeError, match="RunTimeTicks"):
        decode_page("jellyfin", "episodes", jf_page([jf_episode(RunTimeTicks="long")]), "lib")
    with pytest.raises(DecodeError, match="date"):
        decode_page("jellyfin", "episodes", jf_page([jf_episode(DateCreated="yesterday")]), "lib")
    with pytest.raises(DecodeError, match="Items"):
        decode_page("jellyfin", "episodes", body({"Items": {"a": 1}}), "lib")


def test_wrong_item_kind_raises_decode_error() -> None:
    # a server that ignored type= / IncludeItemTypes would list other items
    with pytest.raises(DecodeError, match="show"):
        decode_page("plex", "episodes", plex_page([{"ratingKey": "1", "type": "show"}]), "2")
    with pytest.raises(DecodeError, match="Series"):
        decode_page("jellyfin", "episodes", jf_page([{"Id": "1", "Type": "Series"}]), "lib")


def test_unknown_kind_or_stream() -> None:
    with pytest.raises(ValueError):
        decode_page("kodi", "episodes", b"{}", "x")
    with pytest.raises(ValueError):
        decode_page("plex", "movies", b"{}", "x")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- emulated servers
# Real HTTP on loopback through the project's HttpClient; every stream listed in pages and
# compared with what the generator says the library holds.

#: 6 shows, ~1,600 episodes, with every shape the decoders must handle (asserted below)
FEATURED = LibrarySpec(seed=149, shows=6)


@pytest.fixture(scope="module")
def featured() -> Library:
    lib = Library(FEATURED)
    episodes = [e for s in lib.shows for e in lib.episodes_of(s)]
    present = {
        "hidden-season show": any(s.hidden_seasons for s in lib.shows),
        "legacy-agent show": any(s.legacy_agent for s in lib.shows),
        "unicode title": any(not s.title.isascii() for s in lib.shows),
        "double episode": any(e.episode_number_end for e in episodes),
        "two versions": any(f.media_index for e in episodes for f in e.files),
        "two parts": any(f.part_index for e in episodes for f in e.files),
        "virtual episode": any(e.virtual for e in episodes),
        "episode without SeasonId": any(not e.has_season_id for e in episodes),
        "unicode episode title": any(not e.title.isascii() for e in episodes),
        "no air date": any(e.air_date is None for e in episodes),
    }
    missing = [name for name, ok in present.items() if not ok]
    assert not missing, f"the generator changed: pick another seed for {missing}"
    assert len({s.title for s in lib.shows}) == len(lib.shows)
    return lib


@asynccontextmanager
async def serving(server: EmulatedServer, source: Source) -> AsyncIterator[HttpClient]:
    url = await server.start()
    try:
        async with HttpClient(url, headers=source.auth_headers(server.token)) as http:
            yield http
    finally:
        await server.stop()


async def list_stream(
    http: HttpClient, source: Source, lib: LibraryInfo, stream: StreamKind, page_size: int
) -> DecodedPage:
    """Every page of one stream, as one merged page; checks offsets and totals on the way."""
    merged = DecodedPage(stream=stream, offset=0, count=0, total=None, ids=[])
    offset = 0
    while merged.total is None or offset < merged.total:
        first = offset == 0
        fetched = await http.fetch(
            source.page_request(lib, stream, ListingKind.FULL, offset, page_size, with_total=first)
        )
        page = decode_page(source.kind, stream, fetched.body, lib.source_id, with_total=first)
        assert page.offset in (offset, -1)  # -1: Emby states no offset
        if first:
            assert page.total is not None
            merged.total = page.total
        assert page.count <= page_size and (page.count == page_size or offset + page.count == merged.total)
        for name in ("ids", "rows", "files", "images"):
            getattr(merged, name).extend(getattr(page, name))
        merged.count += page.count
        merged.leaf_total += page.leaf_total
        offset += page.count
        if page.count == 0:
            break
    assert len(set(merged.ids)) == len(merged.ids)
    return merged


def by_source_id(rows: list[tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
    return {row[0]: row for row in rows}


RATINGS = ("content_rating", "studio", "critic_rating", "audience_rating")


def assert_listed_art_and_ratings(server: EmulatedServer, shows: DecodedPage, seasons: DecodedPage) -> None:
    """The shows' ratings and the images of shows and seasons, as the listings carry them,
    equal the ground truth (which hydrate completes: it has nothing more of these)."""
    truth = expected(server)[0]
    for sid, row in by_source_id(shows.rows).items():
        got = as_dict(SHOW_COLUMNS, row)
        assert {k: got[k] for k in RATINGS} == {k: truth.shows[sid][k] for k in RATINGS}, sid
    listed: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    for item_type, page in (("show", shows), ("season", seasons)):
        for sid, kind, path, tag in page.images:
            listed.setdefault((item_type, sid), set()).add((kind, path, tag))
    want = {key: images for key, images in truth.images.items() if key[0] in ("show", "season")}
    assert listed == want
    assert sum(len(v) for v in listed.values()) > len(shows.rows)  # posters, backdrops and more


def legacy_ids(show: Show) -> tuple[str | None, str | None, str | None]:
    """A legacy-agent show names one id in its guid: TVDB, or else TMDB."""
    return (None, None, show.ids.tvdb) if show.ids.tvdb else (None, show.ids.tmdb, None)


async def test_plex_discovery_and_detection_over_http(featured: Library) -> None:
    other = Library(LibrarySpec(seed=3, shows=2))
    server = PlexServer([TvLibrary("TV Shows", featured), TvLibrary("Animé", other)])
    source = make_source("plex", "http://x")
    async with serving(server, source) as http:
        detected = await detect_source(http, server.url)
        assert detected.kind == "plex"
        info, libraries = await detected.discover(http)
    assert (info.kind, info.machine_id, info.name) == ("plex", server.machine_identifier, "Emulated Plex")
    assert info.version == PLEX_VERSION
    assert [(lib.source_id, lib.title) for lib in libraries] == [
        (str(key), sec.title) for key, sec in server.sections.items()
    ]
    paths = [e.path for e in server.log]
    # the three probes at once (one round trip), then the server's name and libraries
    assert sorted(paths[:3]) == ["/System/Info/Public", "/emby/System/Info/Public", "/identity"]
    assert sorted(paths[3:]) == ["/", "/library/sections"]


@pytest.mark.parametrize("page_size", [1000, 237])
async def test_plex_streams_match_the_library(featured: Library, page_size: int) -> None:
    server = PlexServer(featured)
    source = make_source("plex")
    async with serving(server, source) as http:
        _, (lib,) = await source.discover(http)
        shows = await list_stream(http, source, lib, "shows", page_size)
        seasons = await list_stream(http, source, lib, "seasons", page_size)
        episodes = await list_stream(http, source, lib, "episodes", page_size)
    section = server.sections[int(lib.source_id)]

    # shows: in ratingKey order (sort=id), every column
    order = [featured.shows[i] for i in featured.key_order]
    assert shows.ids == [str(section.show_key(s)) for s in order]
    assert shows.total == len(order)
    assert shows.leaf_total == featured.episode_total(View.PLEX) == episodes.total
    show_rows = by_source_id(shows.rows)
    for show in featured.shows:
        row = as_dict(SHOW_COLUMNS, show_rows[str(section.show_key(show))])
        ids = legacy_ids(show) if show.legacy_agent else tuple(show.ids)
        assert row["guid"].startswith("com.plexapp.agents." if show.legacy_agent else "plex://show/")
        assert (row["title"], row["sort_title"], row["year"], row["summary"]) == (
            show.title, show.sort_title, show.year, show.summary,
        )  # fmt: skip
        assert (row["imdb_id"], row["tmdb_id"], row["tvdb_id"]) == ids
        assert (row["added_at"], row["updated_at"]) == (show.added_at, show.updated_at)
        assert row["etag"]
    assert_listed_art_and_ratings(server, shows, seasons)

    # seasons
    season_rows = by_source_id(seasons.rows)
    assert len(season_rows) == seasons.total == featured.season_total()
    season_key: dict[tuple[int, int], str] = {}
    for show in featured.shows:
        for season in featured.seasons_of(show):
            key = str(section.season_key(show, season.ordinal))
            row = as_dict(SEASON_COLUMNS, season_rows[key])
            assert (row["show_source_id"], row["season_number"], row["title"]) == (
                str(section.show_key(show)), season.season_number, season.title,
            )  # fmt: skip
            season_key[(show.index, season.season_number)] = key

    # episodes and their files
    episode_rows = by_source_id(episodes.rows)
    files: dict[str, list[tuple[Any, ...]]] = {}
    for f in episodes.files:
        files.setdefault(f[0], []).append(f)
    expected = list(featured.episodes(View.PLEX))
    assert len(episode_rows) == len(expected) == episodes.total
    for ep in expected:
        show = featured.shows[ep.show_index]
        key = str(section.episode_key(ep))
        row = as_dict(EPISODE_COLUMNS, episode_rows[key])
        assert row["show_source_id"] == str(section.show_key(show))
        assert row["season_source_id"] == (
            None if show.hidden_seasons else season_key[(show.index, ep.season_number)]
        )
        assert row["guid"].startswith("com.plexapp.agents." if show.legacy_agent else "plex://episode/")
        assert (row["season_number"], row["episode_number"], row["episode_number_end"]) == (
            ep.season_number, ep.episode_number, None,
        )  # fmt: skip
        assert (row["title"], row["summary"], row["air_date"], row["duration_ms"]) == (
            ep.title, ep.summary, ep.air_date, ep.duration_ms,
        )  # fmt: skip
        ids = (None, None, None) if show.legacy_agent else tuple(ep.ids)
        assert (row["imdb_id"], row["tmdb_id"], row["tvdb_id"]) == ids
        assert (row["added_at"], row["updated_at"]) == (ep.added_at, ep.updated_at)
        assert row["etag"]
        assert [as_dict(MEDIA_FILE_COLUMNS, f) for f in files.get(key, [])] == [
            {
                "episode_source_id": key,
                "source_id": str(f.part_key + section.media_offset),
                "media_index": f.media_index,
                "part_index": f.part_index,
                "path": f.path,
                "size_bytes": f.size_bytes,
                "container": f.container,
                "video_codec": f.video_codec,
                "audio_codec": f.audio_codec,
                "width": f.width,
                "height": f.height,
                "duration_ms": f.duration_ms,
            }
            for f in ep.files
        ]
    assert not set(files) - set(episode_rows)


def jellyfin_expected_files(ep: Episode, episode_id: str) -> list[dict[str, Any]]:
    """Jellyfin lists one media source per version, at the version's first part, with the
    episode's run time (a multi-part video says so with PartCount, not with more sources)."""
    return [
        {
            "episode_source_id": episode_id,
            "media_index": f.media_index,
            "part_index": 0,
            "path": f.path,
            "size_bytes": f.size_bytes,
            "container": f.container,
            "video_codec": f.video_codec,
            "audio_codec": f.audio_codec,
            "width": f.width,
            "height": f.height,
            "duration_ms": ep.duration_ms,
        }
        for f in ep.files
        if f.part_index == 0
    ]


def jellyfin_sort_name(title: str) -> str:
    low = title.strip().lower()  # Jellyfin's SortName: lower case, a leading article dropped
    for article in ("the ", "a ", "an "):
        if low.startswith(article):
            return low[len(article) :]
    return low


@pytest.mark.parametrize(("server_class", "kind", "page_size"), [
    (JellyfinServer, "jellyfin", 500), (JellyfinServer, "jellyfin", 173), (EmbyServer, "emby", 500),
])  # fmt: skip
async def test_jellyfin_and_emby_streams_match_the_library(
    featured: Library, server_class: type[JellyfinServer], kind: str, page_size: int
) -> None:
    server = server_class(featured)
    source = make_source(kind)
    async with serving(server, source) as http:
        _, (lib,) = await source.discover(http)
        assert lib.source_id == server.folders[0].id
        shows = await list_stream(http, source, lib, "shows", page_size)
        seasons = await list_stream(http, source, lib, "seasons", page_size)
        episodes = await list_stream(http, source, lib, "episodes", page_size)
    if kind == "emby":
        assert all(e.path.startswith("/emby/") or e.path == "/emby" for e in server.log)
    jid = featured.jellyfin_id

    show_rows = by_source_id(shows.rows)
    assert len(show_rows) == shows.total == len(featured.shows)
    for show in featured.shows:
        row = as_dict(SHOW_COLUMNS, show_rows[jid(1, show.index)])
        assert row == {
            "source_id": jid(1, show.index),
            "guid": None,
            "title": show.title,
            "sort_title": jellyfin_sort_name(show.title),
            "year": show.year,
            "summary": show.summary,
            "imdb_id": show.ids.imdb,
            "tmdb_id": show.ids.tmdb,
            "tvdb_id": show.ids.tvdb,
            "added_at": show.added_at,
            "updated_at": None,
            **{k: row[k] for k in RATINGS},  # below
            "etag": jf_etag(show.updated_at),
        }
    assert_listed_art_and_ratings(server, shows, seasons)

    season_rows = by_source_id(seasons.rows)
    assert len(season_rows) == seasons.total == featured.season_total()
    for show in featured.shows:
        for season in featured.seasons_of(show):
            sid = jid(2, show.index, season.ordinal)
            assert season_rows[sid] == (sid, jid(1, show.index), season.season_number, season.title,
                                        jf_etag(season.updated_at))  # fmt: skip

    episode_rows = by_source_id(episodes.rows)
    files: dict[str, list[dict[str, Any]]] = {}
    for f in episodes.files:
        d = as_dict(MEDIA_FILE_COLUMNS, f)
        assert d.pop("source_id")
        files.setdefault(f[0], []).append(d)
    expected = list(featured.episodes(View.JELLYFIN_PRESENT))
    assert len(episode_rows) == len(expected) == episodes.total  # no virtual ones, one per double
    for ep in expected:
        show = featured.shows[ep.show_index]
        eid = jid(3, ep.show_index, ep.ordinal)
        ordinal = next(s.ordinal for s in featured.seasons_of(show) if s.season_number == ep.season_number)
        assert as_dict(EPISODE_COLUMNS, episode_rows[eid]) == {
            "source_id": eid,
            "show_source_id": jid(1, ep.show_index),
            "season_source_id": jid(2, ep.show_index, ordinal) if ep.has_season_id else None,
            "guid": None,
            "season_number": ep.season_number,
            "episode_number": ep.episode_number,
            "episode_number_end": ep.episode_number_end,
            "title": ep.title,
            "summary": ep.summary,
            "air_date": ep.air_date,
            "duration_ms": ep.duration_ms,
            "imdb_id": ep.ids.imdb,
            "tmdb_id": ep.ids.tmdb,
            "tvdb_id": ep.ids.tvdb,
            "added_at": ep.added_at,
            "updated_at": None,
            "etag": jf_etag(ep.updated_at),
        }
        assert files.get(eid, []) == jellyfin_expected_files(ep, eid)
    assert not set(files) - set(episode_rows)


async def test_jellyfin_decoder_drops_virtual_episodes_the_server_lists(featured: Library) -> None:
    server = JellyfinServer(featured)
    source = make_source("jellyfin")
    async with serving(server, source) as http:
        _, (lib,) = await source.discover(http)
        request = source.page_request(lib, "episodes", ListingKind.FULL, 0, 100_000, with_total=True)
        params = {k: v for k, v in request.params.items() if k not in ("ExcludeLocationTypes", "IsMissing")}
        fetched = await http.fetch(PageRequest(request.path, params, request.headers))
    page = decode_page("jellyfin", "episodes", fetched.body, lib.source_id)
    listed_ = list(featured.episodes(View.JELLYFIN))
    present = [e for e in listed_ if not e.virtual]
    assert page.count == page.total == len(listed_) > len(present)
    assert page.ids == [featured.jellyfin_id(3, e.show_index, e.ordinal) for e in present]


async def test_jellyfin_and_emby_detection_over_http(featured: Library) -> None:
    for server, kind in ((JellyfinServer(featured), "jellyfin"), (EmbyServer(featured), "emby")):
        source = make_source(kind)
        async with serving(server, source) as http:
            detected = await detect_source(http, server.url)
            info, libraries = await detected.discover(http)
        assert detected.kind == kind
        assert (info.machine_id, info.name, info.version) == (
            server.server_id, server.server_name, server.version_string(),
        )  # fmt: skip
        assert [(lib.source_id, lib.title) for lib in libraries] == [(server.folders[0].id, "TV Shows")]
        # the probes, then only the library list: the probe's answer is reused
        paths = [e.path for e in server.log]
        assert len(paths) == 4 and paths[-1].endswith("/Library/VirtualFolders")
