"""Fidelity evidence for the emulated Plex server.

1. python-plexapi, a real client, reads the emulated server and gets back exactly what
   the generator made, quirks included (hidden seasons, legacy agents, double episodes).
2. Field names and JSON types match recorded real answers (tests/reference/plex/fixtures)
   and the official spec's schemas; the XML rendering has the same names as the JSON.
"""

from __future__ import annotations

import datetime
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from plex_helpers import TOKEN, plex_get, plex_json, plex_xml
from plexapi.server import PlexServer as PlexApiServer
from plexapi.video import Episode as ApiEpisode
from reference_data import PLEX

from importer.emulator.library import Episode, Library, LibrarySpec, View
from importer.emulator.plex import PlexServer, Section

REFERENCE = PLEX
FIXTURES = REFERENCE / "fixtures"
# seed 29 has a legacy-agent show, a hidden-season show, emoji titles and a show without ids
SPEC = LibrarySpec(shows=8, seed=29)


@pytest.fixture(scope="module")
def lib() -> Library:
    return Library(SPEC)


@pytest.fixture(scope="module")
def server(lib: Library) -> Iterator[PlexServer]:
    srv = PlexServer(lib, token=TOKEN)
    with srv.running_in_thread():
        yield srv


@pytest.fixture(scope="module")
def sec(server: PlexServer) -> Section:
    return server.sections[2]


@pytest.fixture(scope="module")
def plex(server: PlexServer) -> PlexApiServer:
    return PlexApiServer(server.url, TOKEN)  # type: ignore[no-untyped-call]


def test_the_library_has_the_quirks(lib: Library) -> None:
    shows = lib.shows
    assert any(s.legacy_agent for s in shows) and any(s.hidden_seasons for s in shows)
    assert any(not s.title.isascii() for s in shows) and any(s.ids.imdb is None for s in shows)
    eps = list(lib.episodes(View.PLEX))
    assert any(e.double_second for e in eps) and any(len(e.files) > 1 for e in eps)


# ============================================================================ python-plexapi
def _ts(value: datetime.datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def _expected_guid(lib: Library, sec: Section, e: Episode) -> str | None:
    show = lib.shows[e.show_index]
    if not show.legacy_agent:
        return None  # plex://episode/<hex>: checked for shape below
    ids = show.ids
    agent = f"thetvdb://{ids.tvdb}" if ids.tvdb else f"themoviedb://{ids.tmdb}"
    return f"com.plexapp.agents.{agent}/{e.season_number}/{e.episode_number}?lang=en"


def _check_episode(lib: Library, sec: Section, got: ApiEpisode, want: Episode) -> None:
    show = lib.shows[want.show_index]
    assert got.ratingKey == sec.episode_key(want)
    assert (got.title, got.seasonNumber, got.index) == (want.title, want.season_number, want.episode_number)
    assert got.grandparentTitle == show.title and got.grandparentRatingKey == sec.show_key(show)
    # with hidden seasons plexapi falls back to the season key inside parentThumb
    season_key = sec.season_key(show, [n for n, _ in show.season_sizes].index(want.season_number))
    assert got.parentRatingKey == season_key
    assert (got._parentRatingKey is None) == show.hidden_seasons
    assert got.summary == want.summary
    assert got.duration == want.duration_ms
    date = got.originallyAvailableAt
    assert (date.strftime("%Y-%m-%d") if date else None) == want.air_date
    assert (_ts(got.addedAt), _ts(got.updatedAt)) == (want.added_at, want.updated_at)
    files = [(p.file, p.size, p.id) for m in got.media for p in m.parts]
    assert files == [(f.path, f.size_bytes, f.part_key) for f in want.files]
    assert [m.id for m in got.media] == list(dict.fromkeys(f.media_key for f in want.files))
    legacy = _expected_guid(lib, sec, want)
    if legacy:
        assert got.guid == legacy and got.guids == []
    else:
        assert got.guid.startswith("plex://episode/")
        want_ids = [f"{s}://{v}" for s, v in zip(("imdb", "tmdb", "tvdb"), want.ids, strict=True) if v]
        assert [g.id for g in got.guids] == want_ids


def test_plexapi_finds_the_tv_section(plex: PlexApiServer, server: PlexServer, lib: Library) -> None:
    assert plex.machineIdentifier == server.machine_identifier and plex.version
    sections = plex.library.sections()
    assert sorted(s.type for s in sections) == ["movie", "show"]
    tv = next(s for s in sections if s.type == "show")
    assert (tv.key, tv.title, tv.locations) == (2, "TV Shows", ["/data/TV"])
    assert tv.totalViewSize(libtype="episode") == lib.episode_total(View.PLEX)
    assert tv.totalViewSize(libtype="season") == lib.season_total()
    assert tv.totalSize == len(lib.shows)


def test_plexapi_reads_the_shows(plex: PlexApiServer, lib: Library, sec: Section) -> None:
    shows = plex.library.sectionByID(2).all()
    assert [s.title for s in shows] == [s.title for s in lib.shows]
    for got, want in zip(shows, lib.shows, strict=True):
        assert got.ratingKey == sec.show_key(want)
        assert (got.year, got.studio, got.contentRating) == (want.year, want.studio, want.content_rating)
        assert got.summary == want.summary and got.titleSort == want.sort_title
        assert (got.leafCount, got.childCount) == (lib.count(want, View.PLEX), len(want.season_sizes))
        assert (_ts(got.addedAt), _ts(got.updatedAt)) == (want.added_at, want.updated_at)
        if want.legacy_agent:
            assert got.guid.startswith("com.plexapp.agents.") and got.guids == []
        else:
            assert got.guid.startswith("plex://show/")
            ids = [f"{s}://{v}" for s, v in zip(("imdb", "tmdb", "tvdb"), want.ids, strict=True) if v]
            assert [g.id for g in got.guids] == ids
        assert got.genres and got.roles


def test_plexapi_walks_seasons_and_episodes(plex: PlexApiServer, lib: Library, sec: Section) -> None:
    by_key = {sec.episode_key(e): e for e in lib.episodes(View.PLEX)}
    for show, want in zip(plex.library.sectionByID(2).all(), lib.shows, strict=True):
        seasons = show.seasons()
        assert [s.index for s in seasons] == [n for n, _ in want.season_sizes]
        walked = []
        for season in seasons:
            eps = season.episodes()
            assert len(eps) == season.leafCount and {e.seasonNumber for e in eps} == {season.index}
            walked += eps
        leaves = show.episodes()
        assert [e.ratingKey for e in leaves] == [e.ratingKey for e in walked]
        assert [e.ratingKey for e in leaves] == [sec.episode_key(e) for e in lib.view_of(want, View.PLEX)]
        for e in leaves[:40] + leaves[-5:]:
            _check_episode(lib, sec, e, by_key[e.ratingKey])
        if want.hidden_seasons:
            first = leaves[0]
            assert first._parentRatingKey is None and first.season().index == want.season_sizes[0][0]


def test_plexapi_searches_every_episode(plex: PlexApiServer, lib: Library, sec: Section) -> None:
    got = plex.library.sectionByID(2).searchEpisodes()
    want = list(lib.episodes(View.PLEX))
    assert [e.ratingKey for e in got] == [sec.episode_key(e) for e in want]
    for g, w in zip(got, want, strict=True):
        _check_episode(lib, sec, g, w)
    doubles = [(g, w) for g, w in zip(got, want, strict=True) if w.double_second]
    assert doubles
    first = {sec.episode_key(w): g for g, w in zip(got, want, strict=True)}
    for g, w in doubles:
        partner = first[sec.episode_key(w) - 1]
        # the same Media and Part (library.py shares the first file of a multi-file double)
        assert (g.media[0].id, g.media[0].parts[0].file) == (
            partner.media[0].id,
            partner.media[0].parts[0].file,
        )


def test_plexapi_filters_and_sorts(plex: PlexApiServer, lib: Library, sec: Section) -> None:
    """plexapi validates fields and operators against includeMeta, then sends
    ``episode.updatedAt>>=T&sort=episode.id``: the server must honour both."""
    tv = plex.library.sectionByID(2)
    eps = list(lib.episodes(View.PLEX, by_key=True))
    cut = sorted(e.updated_at for e in eps)[len(eps) * 3 // 4]
    when = datetime.datetime.fromtimestamp(cut)
    got = tv.searchEpisodes(filters={"updatedAt>>": when}, sort="id")
    assert [e.ratingKey for e in got] == [sec.episode_key(e) for e in eps if e.updated_at > cut]
    got = tv.searchEpisodes(filters={"addedAt<<": datetime.datetime.fromtimestamp(cut)}, sort="id:desc")
    assert [e.ratingKey for e in got] == [sec.episode_key(e) for e in reversed(eps) if e.added_at < cut]
    shows = tv.searchShows(filters={"episode.addedAt>>": when})
    assert {s.ratingKey for s in shows} == {
        sec.show_key(lib.shows[e.show_index]) for e in eps if e.added_at > cut
    }


def test_plexapi_fetches_by_rating_keys(plex: PlexApiServer, lib: Library, sec: Section) -> None:
    eps = list(lib.episodes(View.PLEX))[::97]
    got = plex.fetchItems([sec.episode_key(e) for e in eps])  # type: ignore[no-untyped-call]
    assert [g.ratingKey for g in got] == [sec.episode_key(e) for e in eps]
    for g, w in zip(got, eps, strict=True):
        _check_episode(lib, sec, g, w)


# ============================================================================ names and types
def _type(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "object"}.get(type(v), "null")


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _watchstate(name: str) -> Any:
    return _fixture("watchstate-plex_data.json")[name]["response"]["body"]


def _types(items: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in items:
        for k, v in item.items():
            out.setdefault(k, set()).add(_type(v))
    return out


def _scalars(container: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in container.items() if not isinstance(v, list | dict)}


def _children(items: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [c for i in items for c in i.get(key, [])]


class Recorded:
    """JSON types of real answers, per kind of object."""

    def __init__(self) -> None:
        library = _fixture("plex-api-rs-tv_library.json")["MediaContainer"]
        seasons = _fixture("plex-api-rs-tv_seasons.json")["MediaContainer"]
        episodes = _fixture("plex-api-rs-tv_episodes.json")["MediaContainer"]
        ws_eps = _watchstate("library_episodes_get_200")["MediaContainer"]
        ws_shows = _watchstate("library_show_get_200")["MediaContainer"]
        sections = _watchstate("sections_get_200")["MediaContainer"]
        movie = _fixture("plex-api-rs-metadata_1036_movie_with_Guid.json")["MediaContainer"]
        all_eps = episodes["Metadata"] + ws_eps["Metadata"]
        media = _children(all_eps + movie["Metadata"], "Media")
        self.kinds: dict[str, dict[str, set[str]]] = {
            "show": _types(library["Metadata"] + ws_shows["Metadata"]),
            "season": _types(seasons["Metadata"]),
            "episode": _types(all_eps),
            "Media": _types(media),
            "Part": _types(_children(media, "Part")),
            "Guid": _types(_children(ws_eps["Metadata"] + movie["Metadata"], "Guid")),
            "tag": _types(
                _children(all_eps + library["Metadata"], "Writer") + _children(library["Metadata"], "Genre")
            ),
            "listing": _types([_scalars(ws_eps), _scalars(ws_shows), _scalars(library)]),
            "season children": _types([_scalars(episodes)]),
            "show children": _types([_scalars(seasons)]),
            "all episodes": _types(seasons["Directory"]),
            "sections": _types([_scalars(sections)]),
            "section": _types(sections["Directory"]),
            "Location": _types(_children(sections["Directory"], "Location")),
            "metadata": _types([_scalars(movie)]),
        }
        # names from home-assistant's recorded XML count answer: known, JSON type unknown
        xml = ET.fromstring((FIXTURES / "home-assistant-library_tvshows_size_episodes.xml").read_bytes())
        for name in xml.attrib:
            self.kinds["listing"].setdefault(name, set())
        spec = json.loads((REFERENCE / "plex-openapi-official-1.2.0.json").read_text())
        schemas = spec["components"]["schemas"]
        to_type = {
            "integer": {"int"},
            "number": {"float"},
            "string": {"str"},
            "boolean": {"bool"},
            "array": {"list"},
        }

        def spec_types(name: str) -> dict[str, set[str]]:
            out = {}
            for k, v in schemas[name]["properties"].items():
                ref = v.get("$ref", "")
                t = schemas[ref.rsplit("/", 1)[1]].get("type") if ref else v.get("type")
                out[k] = to_type.get(t, set()) if isinstance(t, str) else set()  # set(): named, untyped
            return out

        self.spec = {
            "item": spec_types("metadata"),
            "Media": spec_types("media"),
            "Part": spec_types("part"),
            "tag": spec_types("tag"),
            "section": spec_types("librarySection"),
            "container": spec_types("properties-MediaContainer"),
        }


@pytest.fixture(scope="module")
def recorded() -> Recorded:
    return Recorded()


def _check(
    kind: str, ours: Iterable[dict[str, Any]], recorded: Recorded, spec: str, core: Iterable[str] = ()
) -> None:
    """Every key we emit that a real answer has must have the real answer's JSON type;
    keys only the spec names must have the spec's type; keys nobody knows are errors."""
    seen = recorded.kinds[kind]
    declared = recorded.spec[spec]
    items = list(ours)
    assert items, kind
    for item in items:
        for key in core:
            assert key in item, (kind, key)
        for key, value in item.items():
            t = _type(value)
            if key in seen:
                assert not seen[key] or t in seen[key], (kind, key, t, seen[key])
            elif key in declared:
                assert not declared[key] or t in declared[key], (kind, key, t, declared[key])
            else:
                pytest.fail(f"{kind}: {key!r} is in no recorded answer and not in the spec")


@pytest.fixture(scope="module")
def pages(server: PlexServer) -> dict[str, dict[str, Any]]:
    url = server.url
    q = "&includeGuids=1&X-Plex-Container-Size=1000&sort=id"
    out = {f"type{t}": plex_json(url, f"/library/sections/2/all?type={t}{q}") for t in (2, 3, 4)}
    out["type4b"] = plex_json(url, f"/library/sections/2/all?type=4{q}&X-Plex-Container-Start=1000")
    return out


def _episodes_of(pages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return list(pages["type4"]["Metadata"] + pages["type4b"]["Metadata"])


def test_episode_fields_have_the_recorded_types(pages: dict[str, dict[str, Any]], recorded: Recorded) -> None:
    eps = _episodes_of(pages)
    core = ["ratingKey", "key", "guid", "type", "title", "grandparentRatingKey", "grandparentKey"]
    core += ["grandparentTitle", "index", "parentIndex", "parentThumb", "addedAt", "updatedAt", "Media"]
    _check("episode", eps, recorded, "item", core)
    _check(
        "episode",
        [e for e in eps if "skipParent" not in e],
        recorded,
        "item",
        ("parentRatingKey", "parentKey"),
    )
    media = _children(eps, "Media")
    _check("Media", media, recorded, "Media", ("id", "duration", "container", "videoCodec", "Part"))
    _check("Part", _children(media, "Part"), recorded, "Part", ("id", "key", "file", "size", "duration"))
    _check("Guid", _children(eps, "Guid"), recorded, "tag", ("id",))
    _check("tag", _children(eps, "Writer") + _children(eps, "Director"), recorded, "tag", ("tag",))
    # the shapes the quirks need are there at all
    assert any("skipParent" in e for e in eps) and any("Guid" in e for e in eps)
    assert any(e["guid"].startswith("com.plexapp.agents.") for e in eps)


def test_show_and_season_fields_have_the_recorded_types(
    pages: dict[str, dict[str, Any]], recorded: Recorded
) -> None:
    shows = pages["type2"]["Metadata"]
    core = ("ratingKey", "key", "guid", "type", "title", "leafCount", "childCount", "addedAt", "updatedAt")
    _check("show", shows, recorded, "item", core)
    _check("tag", _children(shows, "Genre") + _children(shows, "Role"), recorded, "tag", ("tag",))
    seasons = pages["type3"]["Metadata"]
    core = ("ratingKey", "key", "parentRatingKey", "guid", "type", "title", "index", "leafCount", "addedAt")
    _check("season", seasons, recorded, "item", core)


def test_container_fields_have_the_recorded_types(
    server: PlexServer, pages: dict[str, dict[str, Any]], recorded: Recorded, lib: Library, sec: Section
) -> None:
    url = server.url
    for page in pages.values():
        _check(
            "listing",
            [_scalars(page)],
            recorded,
            "container",
            ("size", "totalSize", "offset", "librarySectionID"),
        )
    show = next(s for s in lib.shows if len(s.season_sizes) > 1)
    children = plex_json(url, f"/library/metadata/{sec.show_key(show)}/children")
    _check("show children", [_scalars(children)], recorded, "container", ("key", "parentTitle", "viewGroup"))
    _check("all episodes", children["Directory"], recorded, "item", ("key", "title", "leafCount"))
    season = plex_json(url, f"/library/metadata/{sec.season_key(show, 0)}/children")
    _check(
        "season children",
        [_scalars(season)],
        recorded,
        "container",
        ("key", "grandparentRatingKey", "parentIndex"),
    )
    sections = plex_json(url, "/library/sections")
    _check("sections", [_scalars(sections)], recorded, "container", ("size", "title1"))
    _check(
        "section",
        sections["Directory"],
        recorded,
        "section",
        ("key", "type", "title", "agent", "uuid", "Location"),
    )
    _check("Location", _children(sections["Directory"], "Location"), recorded, "tag", ("id", "path"))
    detail = plex_json(url, f"/library/metadata/{sec.show_key(show)}")
    _check("metadata", [_scalars(detail)], recorded, "container", ("librarySectionID", "identifier"))


def test_count_only_xml_has_the_recorded_shape(server: PlexServer) -> None:
    """home-assistant's recorded answer to ``…/all?type=4&X-Plex-Container-Size=0``."""
    recorded = ET.fromstring((FIXTURES / "home-assistant-library_tvshows_size_episodes.xml").read_bytes())
    status, _, body = plex_get(
        server.url,
        "/library/sections/2/all?type=4&X-Plex-Container-Start=0&X-Plex-Container-Size=0",
        json_body=False,
    )
    assert status == 200 and body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer ')
    ours = ET.fromstring(body)
    assert ours.tag == recorded.tag and len(ours) == len(recorded) == 0
    assert list(ours.attrib) == list(recorded.attrib)  # the same names, in the same order
    assert ours.get("size") == "0" and int(ours.get("totalSize", "0")) > 0
    for name in ("allowSync", "nocache", "sortAsc", "offset"):
        assert ours.get(name) == recorded.get(name)


def _same_names(js: dict[str, Any], x: ET.Element, where: str) -> None:
    """XML attributes are the JSON scalars (same values; booleans as 1/0) and child elements
    are the JSON lists, recursively."""
    scalars = {k: v for k, v in js.items() if not isinstance(v, list)}
    assert list(x.attrib) == list(scalars), where
    for k, v in scalars.items():
        text = ("1" if v else "0") if isinstance(v, bool) else str(v)
        assert x.get(k) == text, (where, k)
    lists = [(k, c) for k, v in js.items() if isinstance(v, list) for c in v]
    assert [c.tag for c in x] == [k for k, _ in lists], where
    for (k, child), element in zip(lists, x, strict=True):
        _same_names(child, element, f"{where}/{k}")


def test_xml_and_json_name_the_same_fields(server: PlexServer, lib: Library, sec: Section) -> None:
    url = server.url
    q = "&includeGuids=1&X-Plex-Container-Size=1000&sort=id"
    for type_, tag in ((2, "Directory"), (3, "Directory"), (4, "Video")):
        js = plex_json(url, f"/library/sections/2/all?type={type_}{q}")
        xml = plex_xml(url, f"/library/sections/2/all?type={type_}{q}")
        assert _scalars(js) == {k: _parse(v, js[k]) for k, v in xml.attrib.items()}
        assert [e.tag for e in xml] == [tag] * len(js["Metadata"])
        for item, element in zip(js["Metadata"], xml, strict=True):
            _same_names(item, element, f"type{type_}")
    show = lib.shows[1]
    for path in (
        f"/library/metadata/{sec.show_key(show)}/children",
        f"/library/metadata/{sec.season_key(show, 0)}/children",
    ):
        js = plex_json(url, path)
        xml = plex_xml(url, path)
        items = js.get("Directory", []) + js["Metadata"]
        for item, element in zip(items, xml, strict=True):
            _same_names(item, element, path)


def _parse(text: str, like: object) -> object:
    if isinstance(like, bool):
        return text == "1"
    if isinstance(like, int):
        return int(text)
    return text


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/identity",
        "/library",
        "/library/sections",
        "/library/sections/2",
        "/library/sections/2/all?type=2&X-Plex-Container-Size=3&includeMeta=1",
        "/library/sections/1/all?type=1&X-Plex-Container-Size=3",
        "/library/sections/2/allLeaves?X-Plex-Container-Size=3&includeGuids=1",
        "/library/sections/2/collections?includeMeta=1",
        "/library/metadata/{show},{season},{episode}",
        "/library/metadata/{show}/children",
        "/library/metadata/{season}/children",
        "/library/metadata/{show}/allLeaves?X-Plex-Container-Size=3",
    ],
)
def test_every_endpoint_renders_both_ways(server: PlexServer, lib: Library, sec: Section, path: str) -> None:
    show = lib.shows[1]
    path = path.format(
        show=sec.show_key(show),
        season=sec.season_key(show, 0),
        episode=sec.episode_key(lib.view_of(show, View.PLEX)[0]),
    )
    js = plex_json(server.url, path)
    xml = plex_xml(server.url, path)
    assert list(xml.attrib) == list(_scalars(js))
    items = [(k, c) for k, v in js.items() if isinstance(v, list) for c in v]
    elements = [e for e in xml if e.tag != "Meta"]
    assert len(items) == len(elements) == js.get("size", len(items))
    for (_, item), element in zip(items, elements, strict=True):
        _same_names(item, element, path)


def test_plexapi_through_a_base_path(lib: Library) -> None:
    srv = PlexServer(Library(LibrarySpec(shows=3, seed=29)), token=TOKEN, base_path="/plex")
    with srv.running_in_thread() as url:
        plex = PlexApiServer(url, TOKEN)  # type: ignore[no-untyped-call]
        tv = plex.library.sectionByID(2)
        assert len(tv.searchEpisodes()) == srv.sections[2].library.episode_total(View.PLEX)
