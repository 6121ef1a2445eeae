"""The emulated servers serve cast, crew, genres, studios, ratings and artwork as the real
ones do, and the ground truth says what `importer hydrate` must store from them.

Each server is read here the way a hydrator reads it (Plex: ``/library/metadata/{ids}``;
Jellyfin and Emby: ``/Items?Ids=…&Fields=People,Genres,Studios``), turned into rows by the
rules ``ground_truth.expected`` documents, and compared with the ground truth computed from
the generator: a server and a truth that disagree fail here, before any importer code runs.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from ground_truth import LibraryTruth, assert_metadata_equal, expected, person_ids
from jellyfin_helpers import SPEC_VERSIONS, Http, assert_valid, small_library, validation_error
from plex_helpers import TOKEN as PLEX_TOKEN
from plex_helpers import plex_get, plex_json, plex_xml
from plexapi.server import PlexServer as PlexApiServer

from importer.emulator.credits import GENRES, MAX_PEOPLE, Credits
from importer.emulator.jellyfin import EmbyServer, JellyfinServer
from importer.emulator.jellyfin.people import EMBY_PERSON_TYPES
from importer.emulator.library import Library, LibrarySpec, View
from importer.emulator.plex import PlexServer, Section
from importer.emulator.server import EmulatedServer

JF_TOKEN = "0123456789abcdef0123456789abcdef"
# seed 29: a legacy-agent show, a hidden-season show, emoji titles (as test_fidelity_plex)
PLEX_SPEC = LibrarySpec(shows=8, seed=29)
HYDRATE_FIELDS = "People,Genres,Studios,Overview,ProviderIds,Etag"


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for at in range(0, len(items), n):
        yield items[at : at + n]


# ============================================================================ the generator
def test_the_people_pool_has_namesakes_and_faceless_people() -> None:
    lib = Library(LibrarySpec(shows=30, seed=3))
    people = lib.credits.people
    assert len(people) == 40 + 6 * 30
    names = Counter(p.name for p in people)
    assert any(n > 1 for n in names.values()), "two people of one name"
    assert 0.1 < sum(not p.image for p in people) / len(people) < 0.3, "about one in five without a picture"
    assert people == Library(LibrarySpec(shows=30, seed=3)).credits.people, "deterministic"
    assert people != Library(LibrarySpec(shows=30, seed=4)).credits.people
    big = Library(LibrarySpec(shows=5000, seed=1, shape="seed"))
    assert big.credits.size == MAX_PEOPLE


def test_shows_and_episodes_have_the_credit_shapes() -> None:
    lib = Library(LibrarySpec(shows=60, seed=11))
    credits: Credits = lib.credits
    metas = [credits.show(s) for s in lib.shows]
    assert all(len({(c.person, c.role) for c in m.cast}) >= 3 and len(m.cast) <= 16 for m in metas)
    assert any(len(m.cast) != len({c.person for c in m.cast}) for m in metas), "one actor, two roles"
    assert any(m.crew for m in metas) and any(not m.crew for m in metas)
    assert all(1 <= len(m.genres) <= 4 and len(set(m.genres)) == len(m.genres) for m in metas)
    assert {g for m in metas for g in m.genres} <= set(GENRES)
    assert any(m.critic is None for m in metas) and any(m.audience is None for m in metas)
    assert all(m.critic is None or 0 <= m.critic <= 100 for m in metas)
    eps = list(lib.episodes(View.PLEX))[:3000]
    shapes = [credits.episode(e) for e in eps]
    assert {len(s.directors) for s in shapes} == {0, 1, 2}
    assert {len(s.writers) for s in shapes} == {0, 1, 2, 3}
    assert {len(s.guests) for s in shapes} == {0, 1, 2, 3, 4}
    assert credits.episode(eps[7]) == Library(LibrarySpec(shows=60, seed=11)).credits.episode(eps[7])
    arts = [credits.show_art(s) for s in lib.shows]
    assert {a.backdrops for a in arts} == {0, 1, 2, 3} and any(a.banner for a in arts)
    assert any(a.logo for a in arts) and any(not a.primary for a in [*arts, *map(credits.episode_art, eps)])


# ============================================================================ Plex
@pytest.fixture(scope="module")
def plex_server() -> Iterator[PlexServer]:
    srv = PlexServer(Library(PLEX_SPEC), token=PLEX_TOKEN)
    with srv.running_in_thread():
        yield srv


@pytest.fixture(scope="module")
def sec(plex_server: PlexServer) -> Section:
    return plex_server.sections[2]


def _plex_keys(sec: Section) -> list[str]:
    lib = sec.library
    keys = []
    for show in lib.shows:
        keys.append(str(sec.show_key(show)))
        keys += [str(sec.season_key(show, s.ordinal)) for s in lib.seasons_of(show)]
        keys += [str(sec.episode_key(e)) for e in lib.view_of(show, View.PLEX)]
    return keys


_PLEX_CREW = (("Director", "director"), ("Writer", "writer"), ("Producer", "producer"))
_PLEX_ART = (("art", "backdrop"), ("banner", "banner"))


def plex_hydrate(
    url: str, keys: list[str], batch: int = 100
) -> tuple[LibraryTruth, dict[str, dict[str, Any]]]:
    """What a hydrator stores from ``/library/metadata/{ids}`` (the rules of
    ``ground_truth.expected``), and the shows' columns."""
    got = LibraryTruth("", "")
    shows: dict[str, dict[str, Any]] = {}
    names: dict[str, set[str]] = {}
    for ids in _chunks(keys, batch):
        for item in plex_json(url, f"/library/metadata/{','.join(ids)}")["Metadata"]:
            rk, kind = item["ratingKey"], item["type"]
            key = (kind, rk)
            rows = []
            elements = [*_PLEX_CREW, ("Role", "actor" if kind == "show" else "guest_star")]
            for element, credit in elements:
                for pos, tag in enumerate(item.get(element, [])):
                    assert set(tag) <= {"id", "filter", "tag", "tagKey", "role", "thumb"}, tag
                    assert tag["filter"] == f"{'actor' if element == 'Role' else element.lower()}={tag['id']}"
                    pid = str(tag["id"])
                    names.setdefault(pid, set()).add(tag["tag"])
                    got.people[pid] = {"name": tag["tag"], "thumb": tag.get("thumb")}
                    role = (tag.get("role") or None) if credit in ("actor", "guest_star") else None
                    rows.append((pid, credit, role, pos))
            if rows:
                got.credits[key] = sorted(rows, key=lambda r: (r[1], r[3]))
            if item.get("Genre"):
                got.genres[key] = [g["tag"] for g in item["Genre"]]
            own = f"/library/metadata/{rk}/"
            attrs = [("thumb", "thumb" if kind == "episode" else "poster"), *_PLEX_ART]
            images = {
                (image_kind, path, path.rsplit("/", 1)[1])
                for attr, image_kind in attrs
                if (path := item.get(attr)) and path.startswith(own)
            }
            if images:
                got.images[key] = images
            if kind == "show":
                shows[rk] = {
                    "content_rating": item.get("contentRating"),
                    "studio": item.get("studio"),
                    "critic_rating": item.get("rating"),
                    "audience_rating": item.get("audienceRating"),
                }
    assert all(len(n) == 1 for n in names.values()), "a person's tag id names one person everywhere"
    return got, shows


def test_plex_detail_fetches_carry_the_ground_truth(plex_server: PlexServer, sec: Section) -> None:
    want = expected(plex_server)[0]
    got, shows = plex_hydrate(plex_server.url, _plex_keys(sec))
    assert_metadata_equal(got, want)
    for sid, columns in shows.items():
        assert columns == {k: want.shows[sid][k] for k in columns}, sid
    # the shapes the truth needs are there at all
    assert any(p["thumb"] is None for p in want.people.values())
    assert len({p["name"] for p in want.people.values()}) < len(want.people), "namesakes"
    assert any(k[0] == "season" for k in want.images) and any(k[0] == "episode" for k in want.credits)
    assert any(
        k[0] == "show" and {i[0] for i in v} >= {"poster", "backdrop", "banner"}
        for k, v in want.images.items()
    )
    assert any(c[1] == "producer" for rows in want.credits.values() for c in rows)


def test_plex_listings_cut_tags_short(plex_server: PlexServer, sec: Section) -> None:
    want = expected(plex_server)[0]
    people = want.people
    url = plex_server.url
    q = "&X-Plex-Container-Size=1000&sort=id"
    shows = plex_json(url, f"/library/sections/2/all?type=2{q}")["Metadata"]
    assert any(len(want.credits[("show", s["ratingKey"])]) > 3 for s in shows)
    for s in shows:
        key = ("show", s["ratingKey"])
        assert all(list(t) == ["tag"] for t in s.get("Role", []) + s.get("Genre", []))
        cast = [people[c[0]]["name"] for c in want.credits[key] if c[1] == "actor"]
        assert [t["tag"] for t in s["Role"]] == cast[:3]
        assert [t["tag"] for t in s["Genre"]] == want.genres[key][:2]
        assert "Producer" not in s and "Rating" not in s
        own = {kind: path for kind, path, _ in want.images.get(key, ())}
        assert (s.get("thumb"), s.get("art"), s.get("banner")) == (
            own.get("poster"),
            own.get("backdrop"),
            own.get("banner"),
        )
        row = want.shows[s["ratingKey"]]
        assert (s.get("contentRating"), s.get("studio")) == (row["content_rating"], row["studio"])
        assert (s.get("rating"), s.get("audienceRating")) == (row["critic_rating"], row["audience_rating"])
    eps = plex_json(url, f"/library/sections/2/all?type=4{q}")["Metadata"]
    cut = 0
    for e in eps:
        rows = want.credits.get(("episode", e["ratingKey"]), [])
        for element, kind, most in (("Director", "director", 1), ("Writer", "writer", 2)):
            names = [people[c[0]]["name"] for c in rows if c[1] == kind]
            assert [t["tag"] for t in e.get(element, [])] == names[:most]
            assert all(list(t) == ["tag"] for t in e.get(element, []))
            cut += len(names) > most
        assert "Role" not in e
        still = [p for kind, p, _ in want.images.get(("episode", e["ratingKey"]), ()) if kind == "thumb"]
        assert e.get("thumb") == (still[0] if still else None)
    assert cut, "some episode has more crew than a listing shows"


def test_plex_listings_honour_exclusions(plex_server: PlexServer, sec: Section) -> None:
    url = plex_server.url
    q = "&X-Plex-Container-Size=300&sort=id&excludeElements=Role&excludeFields=thumb,banner,rating"
    for s in plex_json(url, f"/library/sections/2/all?type=2{q}")["Metadata"]:
        assert "Role" not in s and "Genre" in s and not {"thumb", "banner", "rating"} & set(s)
    # the importer's episode stream: no tags, no artwork, no ratings
    importer_q = (
        "&excludeElements=Role,Director,Writer,Producer,Genre,Country,Collection,Label,Similar,Mood,Style,"
        "Rating,Image,UltraBlurColors&excludeFields=thumb,art,banner,theme,parentThumb,grandparentThumb,"
        "grandparentArt,rating,audienceRating"
    )
    eps = plex_json(url, f"/library/sections/2/all?type=4&X-Plex-Container-Size=500{importer_q}")["Metadata"]
    for e in eps:
        assert not {"Director", "Writer", "Role", "thumb", "art", "grandparentArt", "rating"} & set(e), e
    show = next(s for s in sec.library.shows if not s.legacy_agent and s.ids.tmdb and s.studio)
    detail = plex_json(url, f"/library/metadata/{sec.show_key(show)}?excludeElements=Role,Genre")
    item = detail["Metadata"][0]
    assert "Role" not in item and "Genre" not in item and "Guid" in item and "Rating" in item


def test_plex_detail_skips_missing_ids_and_renders_xml(plex_server: PlexServer, sec: Section) -> None:
    url = plex_server.url
    lib = sec.library
    show = lib.shows[1]
    ep = lib.view_of(show, View.PLEX)[0]
    keys = [str(sec.show_key(show)), "999999999", str(sec.episode_key(ep))]
    items = plex_json(url, f"/library/metadata/{','.join(keys)}")["Metadata"]
    assert [i["ratingKey"] for i in items] == [keys[0], keys[2]]
    xml = plex_xml(url, f"/library/metadata/{keys[0]}")
    roles = xml[0].findall("Role")
    assert [r.get("id") for r in roles] == [str(r["id"]) for r in items[0]["Role"]]
    assert [r.get("role") for r in roles] == [r.get("role") for r in items[0]["Role"]]


def test_plex_answers_400_to_an_over_long_url(plex_server: PlexServer, sec: Section) -> None:
    url = plex_server.url
    keys = _plex_keys(sec)
    fits = "/library/metadata/" + ",".join(keys[:100])
    assert plex_get(url, fits)[0] == 200
    long = "/library/metadata/" + ",".join(keys[:1000])
    assert len(long) > 4096
    status, _, body = plex_get(url, long)
    assert status == 400 and b"400 Bad Request" in body
    assert plex_server.log.entries[-1].status == 400
    plex_server.controls.url_limit = len(fits) - 1
    try:
        assert plex_get(url, fits)[0] == 400
    finally:
        plex_server.controls.url_limit = None


def test_plexapi_reads_credits_after_reload(plex_server: PlexServer, sec: Section) -> None:
    want = expected(plex_server)[0]
    people = want.people
    plex = PlexApiServer(plex_server.url, PLEX_TOKEN)  # type: ignore[no-untyped-call]
    shows = plex.library.sectionByID(2).all()
    assert all(len(s.roles) <= 3 for s in shows)  # the listing's

    def credits_of(tags: list[Any], kind: str) -> list[tuple[str, str, str | None]]:
        return [(str(t.id), t.tag, t.role if kind in ("actor", "guest_star") else None) for t in tags]

    def wanted(key: tuple[str, str], kind: str) -> list[tuple[str, str, str | None]]:
        return [
            (pid, people[pid]["name"], role) for pid, k, role, _ in want.credits.get(key, []) if k == kind
        ]

    checked = 0
    for show in shows:
        show.reload()
        key = ("show", str(show.ratingKey))
        assert credits_of(show.roles, "actor") == wanted(key, "actor")
        assert [g.tag for g in show.genres] == want.genres[key]
        assert [r.thumb for r in show.roles] == [people[pid]["thumb"] for pid, *_ in wanted(key, "actor")]
        for ep in show.episodes()[:12]:
            ep.reload()
            key = ("episode", str(ep.ratingKey))
            assert credits_of(ep.directors, "director") == wanted(key, "director")
            assert credits_of(ep.writers, "writer") == wanted(key, "writer")
            assert credits_of(ep.roles, "guest_star") == wanted(key, "guest_star")
            checked += bool(ep.roles)
    assert checked


def test_plex_changes_give_new_paths(plex_server: PlexServer, sec: Section) -> None:
    lib = sec.library
    show = lib.shows[3]
    ep = lib.view_of(show, View.PLEX)[2]
    key = str(sec.episode_key(ep))
    before = plex_json(plex_server.url, f"/library/metadata/{key}")["Metadata"][0]
    now = int(time.time())
    plex_server.mutate(lambda: lib.update_episode(show.index, ep.ordinal, now))
    after = plex_json(plex_server.url, f"/library/metadata/{key}")["Metadata"][0]
    if "thumb" in before:
        assert after["thumb"] == f"/library/metadata/{key}/thumb/{now}" != before["thumb"]
    assert [d["id"] for d in after.get("Director", [])] == [d["id"] for d in before.get("Director", [])]
    got, _ = plex_hydrate(plex_server.url, [key])
    want = expected(plex_server)[0]
    assert got.images.get(("episode", key)) == want.images.get(("episode", key))
    assert got.credits.get(("episode", key)) == want.credits.get(("episode", key))


# ============================================================================ Jellyfin and Emby
@pytest.fixture(scope="module")
def jellyfin() -> Iterator[tuple[JellyfinServer, Http]]:
    server = JellyfinServer(small_library(), token=JF_TOKEN)
    with server.running_in_thread() as url:
        yield server, Http(url)


@pytest.fixture(scope="module")
def emby() -> Iterator[tuple[EmbyServer, Http]]:
    server = EmbyServer(small_library(), token=JF_TOKEN, numeric_ids=True)
    with server.running_in_thread() as url:
        yield server, Http(url + "/emby", {"X-Emby-Token": JF_TOKEN})


_JF_KIND = {"Series": "show", "Season": "season", "Episode": "episode"}


def _snake(person_type: str) -> str:
    return {"GuestStar": "guest_star"}.get(person_type, person_type.lower())


def jf_hydrate(server: JellyfinServer, http: Http, batch: int = 25) -> tuple[LibraryTruth, dict[str, Any]]:
    """What a hydrator stores from ``/Items?Ids=…&Fields=People,Genres,Studios`` (the rules
    of ``ground_truth.expected``), and the shows' columns."""
    parent = {"ParentId": server.folders[0].id, "Recursive": "true", "Fields": "Etag"}
    ids = [
        i["Id"]
        for kind in ("Series", "Season", "Episode")
        for i in http.pages("/Items", {**parent, "IncludeItemTypes": kind, "IsMissing": "false"}, 500)
    ]
    got = LibraryTruth("", "")
    shows: dict[str, Any] = {}
    for chunk in _chunks(ids, batch):
        page = http.json("/Items", {"Ids": ",".join(chunk), "Fields": HYDRATE_FIELDS})
        for item in page["Items"]:
            key = (_JF_KIND[item["Type"]], item["Id"])
            positions: Counter[str] = Counter()
            rows = []
            for p in item.get("People", []):
                kind = _snake(p["Type"])
                role = (p.get("Role") or None) if kind in ("actor", "guest_star") else None
                rows.append((p["Id"], kind, role, positions[kind]))
                positions[kind] += 1
                tag = p.get("PrimaryImageTag")
                got.people[p["Id"]] = {
                    "name": p["Name"],
                    "thumb": None if tag is None else f"/Items/{p['Id']}/Images/Primary?tag={tag}",
                }
            if rows:
                got.credits[key] = sorted(rows, key=lambda r: (r[1], r[3]))
            if item.get("Genres"):
                got.genres[key] = item["Genres"]
                assert [g["Name"] for g in item["GenreItems"]] == item["Genres"]
            primary = "thumb" if key[0] == "episode" else "poster"
            images = {
                (primary if t == "Primary" else t.lower(), f"/Items/{item['Id']}/Images/{t}/0", tag)
                for t, tag in item.get("ImageTags", {}).items()
            }
            images |= {
                ("backdrop", f"/Items/{item['Id']}/Images/Backdrop/{n}", tag)
                for n, tag in enumerate(item.get("BackdropImageTags", []))
            }
            if images:
                got.images[key] = images
            if key[0] == "show":
                critic = item.get("CriticRating")
                shows[item["Id"]] = {
                    "content_rating": item.get("OfficialRating"),
                    "studio": item["Studios"][0]["Name"] if item["Studios"] else None,
                    "critic_rating": None if critic is None else critic / 10,
                    "audience_rating": item.get("CommunityRating"),
                }
    return got, shows


def assert_serves_the_ground_truth(server: JellyfinServer, http: Http) -> LibraryTruth:
    """Everything hydrate asks for, read from the server, equals the ground truth."""
    want = expected(server)[0]
    got, shows = jf_hydrate(server, http)
    assert_metadata_equal(got, want)
    for sid, columns in shows.items():
        assert columns == {k: want.shows[sid][k] for k in columns}, sid
    return want


def test_jellyfin_items_carry_the_ground_truth(jellyfin: tuple[JellyfinServer, Http]) -> None:
    server, http = jellyfin
    want = assert_serves_the_ground_truth(server, http)
    kinds = {c[1] for rows in want.credits.values() for c in rows}
    assert kinds >= {"actor", "guest_star", "director", "writer", "producer", "creator"}
    assert any(p["thumb"] is None for p in want.people.values())
    assert any(
        k[0] == "show" and {i[0] for i in v} >= {"poster", "backdrop", "logo"} for k, v in want.images.items()
    )
    # a series' images are not its episodes': SeriesPrimaryImageTag and Parent… are inherited
    episode = http.json("/Items", {"Ids": next(k[1] for k in want.images if k[0] == "episode")})["Items"][0]
    assert "SeriesPrimaryImageTag" in episode or "ParentBackdropImageTags" in episode


def test_jellyfin_image_options(jellyfin: tuple[JellyfinServer, Http]) -> None:
    server, http = jellyfin
    want = expected(server)[0]
    lib = {"ParentId": server.folders[0].id, "Recursive": "true"}
    series = http.json("/Items", {**lib, "IncludeItemTypes": "Series"})["Items"]
    multi = next(s for s in series if len(s["BackdropImageTags"]) > 1)
    limited = http.json("/Items", {"Ids": multi["Id"], "ImageTypeLimit": "1"})["Items"][0]
    assert limited["BackdropImageTags"] == multi["BackdropImageTags"][:1]
    primary = http.json("/Items", {"Ids": multi["Id"], "EnableImageTypes": "Primary"})["Items"][0]
    assert set(primary["ImageTags"]) <= {"Primary"} and "BackdropImageTags" not in primary
    eps = http.json("/Items", {**lib, "IncludeItemTypes": "Episode", "EnableImages": "false", "Limit": 200})[
        "Items"
    ]
    for e in eps:
        assert "ImageTags" not in e and "ParentBackdropImageTags" not in e
        poster = [tag for kind, _, tag in want.images.get(("show", e["SeriesId"]), ()) if kind == "poster"]
        assert e.get("SeriesPrimaryImageTag") == (poster[0] if poster else None)


def test_jellyfin_answers_414_to_an_over_long_request_line(jellyfin: tuple[JellyfinServer, Http]) -> None:
    server, http = jellyfin
    ids = ",".join(["0123456789abcdef0123456789abcdef"] * 300)
    response = http.get("/Items", {"Ids": ids})
    assert response.status_code == 414 and server.log.entries[-1].status == 414
    assert http.get("/Items", {"Ids": ids[: 33 * 200]}).status_code == 200
    server.controls.url_limit = 200
    try:
        assert http.get("/Items", {"Ids": ids[: 33 * 10]}).status_code == 414
    finally:
        server.controls.url_limit = None


def test_people_cost_is_charged_and_counted(jellyfin: tuple[JellyfinServer, Http]) -> None:
    server, http = jellyfin
    eps = [
        i["Id"]
        for i in http.json("/Items", {"IncludeItemTypes": "Episode", "Recursive": "true", "Limit": 5})[
            "Items"
        ]
    ]
    saved = server.controls.people_cost_s
    server.controls.people_cost_s = 0.02
    try:
        before = server.people_cost_us
        server.log.clear()
        started = time.perf_counter()
        http.json("/Items", {"Ids": ",".join(eps), "Fields": "People"})
        took = time.perf_counter() - started
        http.json("/Items", {"Ids": ",".join(eps), "Fields": "Overview"})
        http.json(f"/Items/{eps[0]}")  # a single item carries People
        with_people, without, single = server.log.entries
        assert with_people.people_cost_us == pytest.approx(5 * 20_000) and took >= 0.1
        assert with_people.cost_us >= with_people.people_cost_us
        assert without.people_cost_us == 0 and single.people_cost_us == pytest.approx(20_000)
        assert server.people_cost_us - before == pytest.approx(6 * 20_000)
        assert server.log.counters()["people_cost_us"] == 120_000
        # a runtime control, as the others
        assert requests.post(
            http.url + "/_emulator/controls",
            json={"people_cost_s": 0.001},
            headers=http.session.headers,
            timeout=10,
        ).ok
        http.json("/Items", {"Ids": ",".join(eps), "Fields": "People"})
        assert server.log.entries[-1].people_cost_us == pytest.approx(5 * 1000)
        logged = http.json("/_emulator/log")["entries"][-1]
        assert logged["people_cost_us"] == pytest.approx(5 * 1000)
    finally:
        server.controls.people_cost_s = saved


def test_single_items_carry_people_and_person_ids_are_known(jellyfin: tuple[JellyfinServer, Http]) -> None:
    server, http = jellyfin
    want = expected(server)[0]
    show_id = next(k[1] for k in want.credits if k[0] == "show")
    server.log.clear()
    for path, params in (
        (f"/Items/{show_id}", {"userId": server.user_id}),
        (f"/Users/{server.user_id}/Items/{show_id}", {}),
    ):
        item = http.json(path, params)
        people = [(p["Id"], p["Type"]) for p in item["People"]]
        assert sorted((pid, kind) for pid, kind, *_ in want.credits["show", show_id]) == sorted(
            (pid, _snake(t)) for pid, t in people
        )
    assert [e.path for e in server.log.entries] == [
        f"/Items/{show_id}",
        f"/Users/{server.user_id}/Items/{show_id}",
    ]
    everyone = person_ids(server)
    assert set(want.people) <= everyone
    assert all(server.is_person_id(p) for p in want.people) and not server.is_person_id(show_id)
    assert not any(e.path.rsplit("/", 1)[-1] in everyone for e in server.log.entries)
    assert http.get(f"/Items/{next(iter(want.people))}").status_code == 404  # not an item here


_FEW_IMAGES = {"ImageTypeLimit": "1", "EnableImageTypes": "Primary,Backdrop,Logo"}


def _validation_cases(server: JellyfinServer, http: Http) -> list[tuple[str, dict[str, Any]]]:
    lib = {"ParentId": server.folders[0].id, "Recursive": "true"}
    want = expected(server)[0]
    series = list(want.shows)
    eps = [k[1] for k in want.credits if k[0] == "episode"][:40]
    return [
        ("/Items", {**lib, "IncludeItemTypes": "Series", "Fields": HYDRATE_FIELDS}),
        ("/Items", {**lib, "IncludeItemTypes": "Season", "Fields": HYDRATE_FIELDS}),
        ("/Items", {"Ids": ",".join(eps), "Fields": HYDRATE_FIELDS}),
        ("/Items", {"Ids": ",".join(series), "Fields": HYDRATE_FIELDS, **_FEW_IMAGES}),
        ("/Items", {"Ids": ",".join(eps), "Fields": "People", "EnableImages": "false"}),
        (f"/Items/{series[0]}", {"userId": server.user_id}),
        (f"/Items/{eps[0]}", {"userId": server.user_id}),
        (f"/Users/{server.user_id}/Items/{series[1]}", {}),
    ]


@pytest.mark.parametrize("version", SPEC_VERSIONS)
def test_jellyfin_answers_follow_the_official_spec(
    jellyfin: tuple[JellyfinServer, Http], version: str
) -> None:
    server, http = jellyfin
    server.controls.jellyfin_version = version
    try:
        for path, params in _validation_cases(server, http):
            found = server.match(path)
            assert found is not None
            body = http.json(path, params)
            assert_valid(version, found[0].operation, body)
    finally:
        server.controls.jellyfin_version = "10.10.7"


def test_the_validator_checks_people(jellyfin: tuple[JellyfinServer, Http]) -> None:
    server, http = jellyfin
    want = expected(server)[0]
    show_id = next(k[1] for k in want.credits if k[0] == "show")
    page = http.json("/Items", {"Ids": show_id, "Fields": "People,Genres,Studios"})
    assert validation_error("10.10.7", "/Items", page) is None
    broken: list[tuple[str, dict[str, Any]]] = [
        ("People", {"Name": "x", "Id": "1", "Type": "Actor"}),  # not a GUID
        ("People", {"Name": "x", "Id": "0" * 32, "Type": "Star"}),  # not a PersonKind
        ("Studios", {"Name": "x", "Id": 7}),  # Emby's integer, not Jellyfin's GUID
        ("GenreItems", {"Name": "x", "Id": 7}),
    ]
    for path, value in broken:
        bad = copy.deepcopy(page)
        bad["Items"][0][path] = [value]
        assert validation_error("10.10.7", "/Items", bad) is not None, (path, value)


def test_emby_serves_its_own_shapes(emby: tuple[EmbyServer, Http]) -> None:
    server, http = emby
    want = assert_serves_the_ground_truth(server, http)
    assert all(k[1].isdigit() for k in want.credits) and all(p.isdigit() for p in want.people)
    assert not {c[1] for rows in want.credits.values() for c in rows} - {
        "actor",
        "guest_star",
        "director",
        "writer",
        "producer",
    }
    lib = {"ParentId": server.folders[0].id, "Recursive": "true", "Fields": "People,Genres,Studios,ParentId"}
    series = http.json("/Items", {**lib, "IncludeItemTypes": "Series"})["Items"]
    for s in series:
        assert s["Id"].isdigit() and s["ParentId"] == server.folders[0].id
        assert all(isinstance(x["Id"], int) for x in s["Studios"] + s["GenreItems"])
        assert {p["Type"] for p in s["People"]} <= EMBY_PERSON_TYPES
        assert all(set(p) <= {"Name", "Id", "Role", "Type", "PrimaryImageTag"} for p in s["People"])
    one = series[0]["Id"]
    item = http.json(f"/Users/{server.user_id}/Items/{one}")
    assert item["Id"] == one and item["People"] and item["Studios"] is not None
    seasons = http.json("/Items", {"ParentId": one, "IncludeItemTypes": "Season"})["Items"]
    assert seasons and all(s["SeriesId"] == one and s["Id"].isdigit() for s in seasons)
    eps = http.json(f"/Shows/{one}/Episodes", {"Fields": "MediaSources"})["Items"]
    assert eps and all(e["Id"].isdigit() and e["SeriesId"] == one for e in eps)
    assert http.get(f"/Items/{'0123456789abcdef' * 2}").status_code == 404  # GUIDs name nothing here
    assert server.is_person_id(next(iter(want.people))) and not server.is_person_id(one)


def test_emby_without_numeric_ids_stays_within_the_jellyfin_spec() -> None:
    server = EmbyServer(small_library(), token=JF_TOKEN)
    with server.running_in_thread() as url:
        http = Http(url + "/emby", {"X-Emby-Token": JF_TOKEN})
        for path, params in _validation_cases(server, http):
            found = server.match(path)
            assert found is not None
            assert_valid("10.10.7", found[0].operation, http.json(path, params))
            assert "Creator" not in json.dumps(http.json(path, params))


def test_jellyfin_changes_give_new_tags(jellyfin: tuple[JellyfinServer, Http]) -> None:
    server, http = jellyfin
    lib = server.catalog.libraries[0]
    show = lib.shows[2]
    sid = lib.jellyfin_id(1, show.index)
    before = http.json("/Items", {"Ids": sid})["Items"][0]
    server.mutate(lambda: lib.rename_show(show.index, show.title + " (renamed)", int(time.time())))
    after = http.json("/Items", {"Ids": sid})["Items"][0]
    assert after["ImageTags"] and after["ImageTags"] != before["ImageTags"]
    got, _ = jf_hydrate(server, http)
    assert_metadata_equal(got, expected(server)[0])


def test_every_server_kind_has_person_ids() -> None:
    lib = Library(LibrarySpec(shows=3, seed=2))
    servers: list[EmulatedServer] = [PlexServer(lib), JellyfinServer(lib), EmbyServer(lib, numeric_ids=True)]
    for srv in servers:
        ids = person_ids(srv)
        assert len(ids) == lib.credits.size
        assert set(expected(srv)[0].people) <= ids
