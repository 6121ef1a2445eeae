"""The emulated library changes between and during runs: every change kind, seen over real
HTTP by Plex, Jellyfin and Emby listings, counts, lookups and date filters, compared with
the ground truth computed from the changed library."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from ground_truth import expected
from plex_helpers import TOKEN as PLEX_TOKEN
from plex_helpers import plex_get, plex_json

from importer.emulator import make_server
from importer.emulator.churn import KINDS
from importer.emulator.jellyfin import JellyfinServer
from importer.emulator.library import Library, LibrarySpec, View
from importer.emulator.plex import PlexServer
from importer.emulator.server import Controls, EmulatedServer

JF_TOKEN = "0123456789abcdef0123456789abcdef"
SPEC = LibrarySpec(shows=8, seed=29)
CHANGE_KINDS = [k for k in KINDS if k != "mixed"] + ["mixed"]
# the server's clock during a test: after every generated date
CLOCK = 1_800_000_000


def _server(kind: str, **options: Any) -> EmulatedServer:
    token = PLEX_TOKEN if kind == "plex" else JF_TOKEN
    srv = make_server(kind, Library(SPEC), token=token, **options)
    srv.controls.clock_offset_s = 0.0
    return srv


def _set_clock(srv: EmulatedServer, at: int) -> None:
    import time

    srv.controls.clock_offset_s = at - time.time()


# ----------------------------------------------------------------------------- Plex helpers
def _plex_walk(url: str, type_: int, query: str = "", size: int = 7) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    start, total = 0, None
    while total is None or start < total:
        page = plex_json(
            url, f"/library/sections/2/all?type={type_}{query}&X-Plex-Container-Start={start}"
            f"&X-Plex-Container-Size={size}",
        )  # fmt: skip
        total = page["totalSize"]
        got = page.get("Metadata", [])
        items += got
        start += len(got)
        if not got:
            break
    assert total is not None
    return items, total


def _plex_count(url: str, type_: int, query: str = "") -> int:
    page = plex_json(url, f"/library/sections/2/all?type={type_}{query}&X-Plex-Container-Size=0")
    assert "Metadata" not in page
    total: int = page["totalSize"]
    return total


def _plex_check(srv: PlexServer, url: str) -> dict[str, dict[str, Any]]:
    """The listings are exactly the ground truth; counts agree; returns episodes by key."""
    truth = expected(srv)[0]
    shows, n_shows = _plex_walk(url, 2)
    seasons, n_seasons = _plex_walk(url, 3)
    eps, n_eps = _plex_walk(url, 4, size=97)
    assert {s["ratingKey"] for s in shows} == set(truth.shows)
    assert {s["ratingKey"] for s in seasons} == set(truth.seasons)
    assert [e["ratingKey"] for e in eps] == list(dict.fromkeys(e["ratingKey"] for e in eps))
    assert {e["ratingKey"] for e in eps} == set(truth.episodes)
    assert (n_shows, n_seasons, n_eps) == (len(shows), len(seasons), len(eps))
    assert (_plex_count(url, 2), _plex_count(url, 3), _plex_count(url, 4)) == (n_shows, n_seasons, n_eps)
    for e in eps:
        want = truth.episodes[e["ratingKey"]]
        assert e["title"] == want["title"]
        assert e["grandparentRatingKey"] == want["show_source_id"]
        assert e.get("parentRatingKey", want["season_source_id"]) == want["season_source_id"]
        assert e["parentIndex"] == want["season_number"] and e["index"] == want["episode_number"]
        assert (e["addedAt"], e["updatedAt"]) == (want["added_at"], want["updated_at"])
        parts = [p["id"] for m in e.get("Media", []) for p in m["Part"]]
        assert [str(p) for p in parts] == [f["source_id"] for f in truth.files[e["ratingKey"]]]
    per_season: dict[str, int] = {}
    for e in eps:
        per_season[truth.episodes[e["ratingKey"]]["season_source_id"]] = (
            per_season.get(truth.episodes[e["ratingKey"]]["season_source_id"], 0) + 1
        )
    for s in seasons:
        assert s["leafCount"] == per_season.get(s["ratingKey"], 0)
        kids = plex_json(url, f"/library/metadata/{s['ratingKey']}/children")
        assert {k["ratingKey"] for k in kids.get("Metadata", [])} == {
            k for k, v in truth.episodes.items() if v["season_source_id"] == s["ratingKey"]
        }
    for s in shows:
        mine = [k for k, v in truth.episodes.items() if v["show_source_id"] == s["ratingKey"]]
        assert s["leafCount"] == len(mine)
        assert s["childCount"] == sum(
            1 for v in truth.seasons.values() if v["show_source_id"] == s["ratingKey"]
        )
        leaves = plex_json(url, f"/library/metadata/{s['ratingKey']}/allLeaves")
        assert sorted(k["ratingKey"] for k in leaves.get("Metadata", [])) == sorted(mine)
        assert s["title"] == truth.shows[s["ratingKey"]]["title"]
    return {e["ratingKey"]: e for e in eps}


@pytest.fixture
def plex() -> Iterator[tuple[PlexServer, str]]:
    srv = _server("plex")
    assert isinstance(srv, PlexServer)
    _set_clock(srv, CLOCK)
    with srv.running_in_thread() as url:
        yield srv, url


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_plex_change(plex: tuple[PlexServer, str], kind: str) -> None:
    srv, url = plex
    before = _plex_check(srv, url)
    # an unchanged library after a clock point: the delta probes find nothing
    for q in ("&episode.updatedAt>>=%d", "&episode.addedAt>>=%d", "&show.updatedAt>>=%d"):
        assert _plex_count(url, 4, q % (CLOCK - 5)) == 0
    done = srv.apply_changes(kind, 3, seed=5)
    assert done, f"no {kind} change applied"
    after = _plex_check(srv, url)
    # untouched episodes keep their keys and guids
    touched = {str(d.get("before", d).get("plex_key")) for d in done} | {str(d.get("plex_key")) for d in done}
    gone_shows = {d["show_title"] for d in done if d["kind"] == "delete_show"}
    for key, e in before.items():
        if key in touched or e["grandparentTitle"] in gone_shows:
            continue
        if kind not in ("rename", "mixed"):
            assert key in after, f"untouched episode {key} vanished after {kind}"
            assert after[key]["guid"] == e["guid"]
    # the delta listing shows exactly what changed after the clock point
    changed, total = _plex_walk(url, 4, f"&episode.updatedAt>>={CLOCK - 5}")
    assert total == len(changed) == _plex_count(url, 4, f"&episode.updatedAt>>={CLOCK - 5}")
    assert {e["ratingKey"] for e in changed} == {k for k, e in after.items() if e["updatedAt"] >= CLOCK - 5}
    stamped = {d["kind"] for d in done} & {"add", "update", "move_season", "move_show", "replace"}
    if stamped:
        assert changed, f"{kind}: the delta listing missed the changes"
    if kind == "rename":
        shows, _ = _plex_walk(url, 2, f"&show.updatedAt>>={CLOCK - 5}")
        assert {s["title"] for s in shows} == {d["show_title"] for d in done}
        eps, _ = _plex_walk(url, 4, f"&show.updatedAt>>={CLOCK - 5}")
        assert {e["grandparentTitle"] for e in eps} <= {d["show_title"] for d in done}
    if kind == "add":
        added, _ = _plex_walk(url, 4, f"&episode.addedAt>>={CLOCK - 5}")
        assert {e["ratingKey"] for e in added} == {str(d["plex_key"]) for d in done}
    if kind == "replace":
        for d in done:
            old, new = str(d["before"]["plex_key"]), str(d["plex_key"])
            assert old != new and old not in after and new in after
            assert after[new]["guid"] == before[old]["guid"]
            assert plex_get(url, f"/library/metadata/{old}")[0] == 404
            new_parts = {p["id"] for m in after[new]["Media"] for p in m["Part"]}
            assert not new_parts & {p["id"] for m in before[old]["Media"] for p in m["Part"]}
    if kind in ("move_season", "move_show"):
        for d in done:
            key = str(d["plex_key"])
            assert key == str(d["before"]["plex_key"])
            if after[key]["guid"].startswith("plex://"):  # legacy agents name show/season/number
                assert after[key]["guid"] == before[key]["guid"]
            assert after[key]["parentIndex"] == d["season_number"]
            detail = plex_json(url, f"/library/metadata/{key}")["Metadata"][0]
            assert detail["grandparentTitle"] == d["show_title"]
            if kind == "move_show":
                assert detail["grandparentRatingKey"] != before[key]["grandparentRatingKey"]
    if kind in ("delete", "delete_show"):
        for d in done:
            if kind == "delete":
                assert str(d["plex_key"]) not in after
                assert plex_get(url, f"/library/metadata/{d['plex_key']}")[0] == 404


# ----------------------------------------------------------------------------- Jellyfin helpers
class _Jf:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["X-Emby-Token"] = JF_TOKEN

    def get(self, path: str, **params: Any) -> Any:
        r = self.session.get(self.url + path, params=params, timeout=60)
        assert r.status_code == 200, (r.status_code, r.text[:300])
        return r.json()

    def items(self, parent: str, types: str, **params: Any) -> tuple[list[dict[str, Any]], int]:
        out: list[dict[str, Any]] = []
        start, total = 0, None
        while total is None or start < total:
            page = self.get(
                "/Items", ParentId=parent, Recursive="true", IncludeItemTypes=types,
                StartIndex=start, Limit=13, Fields="Etag,ParentId", **params,
            )  # fmt: skip
            total = page["TotalRecordCount"]
            out += page["Items"]
            start += len(page["Items"])
            if not page["Items"]:
                break
        assert total is not None
        return out, total

    def count(self, parent: str, types: str, **params: Any) -> int:
        page = self.get(
            "/Items", ParentId=parent, Recursive="true", IncludeItemTypes=types, Limit=0, **params
        )
        assert page["Items"] == []
        total: int = page["TotalRecordCount"]
        return total


def _jf_check(srv: JellyfinServer, jf: _Jf) -> dict[str, dict[str, Any]]:
    truth = expected(srv)[0]
    parent = srv.folders[0].id
    series, n_series = jf.items(parent, "Series")
    seasons, n_seasons = jf.items(parent, "Season")
    eps, n_eps = jf.items(parent, "Episode", IsMissing="false")
    assert {s["Id"] for s in series} == set(truth.shows)
    assert {s["Id"] for s in seasons} == set(truth.seasons)
    assert {e["Id"] for e in eps} == set(truth.episodes)
    assert (n_series, n_seasons, n_eps) == (len(series), len(seasons), len(eps))
    assert jf.count(parent, "Episode", IsMissing="false") == n_eps
    for e in eps:
        want = truth.episodes[e["Id"]]
        assert e["Name"] == want["title"] and e["Etag"] == want["etag"]
        assert e["SeriesId"] == want["show_source_id"]
        assert e.get("SeasonId") in (want["season_source_id"], None)
        assert (e["ParentIndexNumber"], e["IndexNumber"]) == (want["season_number"], want["episode_number"])
    for s in series:
        assert s["Name"] == truth.shows[s["Id"]]["title"] and s["Etag"] == truth.shows[s["Id"]]["etag"]
        present = {k for k, v in truth.episodes.items() if v["show_source_id"] == s["Id"]}
        listed = jf.get(f"/Shows/{s['Id']}/Episodes", IsMissing="false")
        assert {e["Id"] for e in listed["Items"]} == present
        kids, n = jf.items(s["Id"], "Episode", IsMissing="false")
        assert {e["Id"] for e in kids} == present and n == len(present)
        got_seasons = jf.get(f"/Shows/{s['Id']}/Seasons")
        assert {x["Id"] for x in got_seasons["Items"]} == {
            k for k, v in truth.seasons.items() if v["show_source_id"] == s["Id"]
        }
    return {e["Id"]: e for e in eps}


@pytest.fixture(params=["jellyfin", "emby"])
def jelly(request: pytest.FixtureRequest) -> Iterator[tuple[JellyfinServer, _Jf]]:
    srv = _server(request.param)
    assert isinstance(srv, JellyfinServer)
    _set_clock(srv, CLOCK)
    with srv.running_in_thread() as url:
        yield srv, _Jf(url)


def _iso(ts: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_jellyfin_change(jelly: tuple[JellyfinServer, _Jf], kind: str) -> None:
    srv, jf = jelly
    parent = srv.folders[0].id
    before = _jf_check(srv, jf)
    since = _iso(CLOCK - 5)
    assert jf.count(parent, "Episode", MinDateLastSavedForUser=since) == 0
    done = srv.apply_changes(kind, 3, seed=7)
    assert done
    after = _jf_check(srv, jf)
    changed, total = jf.items(parent, "Episode", MinDateLastSavedForUser=since, IsMissing="false")
    assert total == len(changed)
    truth = expected(srv)[0].episodes
    assert {e["Id"] for e in changed} == {
        k for k, v in truth.items() if before.get(k, {}).get("Etag") != v["etag"]
    }
    if kind in ("move_season", "move_show"):
        for d in done:
            eid = d["jellyfin_id"]
            assert eid == d["before"]["jellyfin_id"] and eid in after
            assert after[eid]["Etag"] != before[eid]["Etag"]
            assert after[eid]["ParentIndexNumber"] == d["season_number"]
            if kind == "move_show":
                assert after[eid]["SeriesId"] != before[eid]["SeriesId"]
    if kind == "replace":
        for d in done:
            assert d["jellyfin_id"] != d["before"]["jellyfin_id"]
            assert d["jellyfin_id"] in after and d["before"]["jellyfin_id"] not in after
    if kind == "rename":
        series, _ = jf.items(parent, "Series", MinDateLastSavedForUser=since)
        assert {s["Name"] for s in series} == {d["show_title"] for d in done}
    if kind not in ("delete", "delete_show", "replace", "mixed", "rename"):
        assert set(before) <= set(after)  # untouched ids stay
    if srv.min_date_bug():  # 10.8-10.10: the plain parameter alone matches nothing
        assert jf.count(parent, "Episode", MinDateLastSaved=since) == 0


# ----------------------------------------------------------------------------- plumbing
def test_changes_over_http_and_cache() -> None:
    srv = _server("plex", controls=None)
    assert isinstance(srv, PlexServer)
    srv.controls.cache_responses = True
    with srv.running_in_thread() as url:
        n0 = _plex_count(url, 4)
        _plex_count(url, 4)  # now cached
        r = requests.post(
            url + "/_emulator/changes", json={"kind": "add", "count": 4, "seed": 3},
            headers={"X-Plex-Token": PLEX_TOKEN}, timeout=30,
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert len(r.json()["changes"]) == 4
        assert _plex_count(url, 4) == n0 + 4  # not the cached answer
        assert requests.post(url + "/_emulator/changes", json={"kind": "x"}, timeout=30).status_code == 401
        bad = requests.post(
            url + "/_emulator/changes",
            json={"kind": "nope"},
            headers={"X-Plex-Token": PLEX_TOKEN},
            timeout=30,
        )
        assert bad.status_code == 400


def test_same_seed_same_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    # the changes are stamped with the server's clock: the same second for both
    monkeypatch.setattr(Controls, "now", lambda self: 1_790_000_000.0)
    a, b = _server("jellyfin"), _server("jellyfin")
    assert a.apply_changes("mixed", 20, seed=11) == b.apply_changes("mixed", 20, seed=11)
    assert expected(a)[0].episodes == expected(b)[0].episodes


def test_untouched_library_keeps_its_ids() -> None:
    lib = Library(SPEC)
    fresh = Library(SPEC)
    lib.update_episode(0, 0, CLOCK)
    for show, other in zip(lib.shows[1:], fresh.shows[1:], strict=True):
        assert [lib.plex_episode_key(e) for e in lib.view_of(show, View.PLEX)] == [
            fresh.plex_episode_key(e) for e in fresh.view_of(other, View.PLEX)
        ]
    assert lib.max_rating_key == fresh.max_rating_key


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
def test_mutating_while_paging(kind: str) -> None:
    srv = _server(kind)
    stop = threading.Event()
    errors: list[BaseException] = []

    def churn() -> None:
        seed = 0
        try:
            while not stop.is_set():
                seed += 1
                srv.apply_changes("mixed", 2, seed=seed)
        except BaseException as exc:  # reported below
            errors.append(exc)

    with srv.running_in_thread() as url:
        thread = threading.Thread(target=churn)
        thread.start()
        try:
            for _ in range(3):
                if kind == "plex":
                    _plex_walk(url, 4, size=50)
                    _plex_walk(url, 3, size=5)
                else:
                    jf = _Jf(url)
                    jf.items(srv.folders[0].id, "Episode")  # type: ignore[attr-defined]
                    jf.items(srv.folders[0].id, "Season")  # type: ignore[attr-defined]
        finally:
            stop.set()
            thread.join(60)
    assert not errors, errors
