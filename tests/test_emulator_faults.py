"""Fault injection in the emulated servers, over real HTTP: every fault kind really reaches
the client as described, targeting (rate, request numbers, path, times) is exact and
seeded, the log counts faults, and without a plan nothing changes."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import requests

from importer.emulator import LibrarySpec, make_server
from importer.emulator.fault_bodies import LOGIN_PAGE, gzip_bomb
from importer.emulator.faults import KINDS, Fault, FaultPlan
from importer.emulator.library import Library
from importer.emulator.server import Controls, EmulatedServer

TOKEN = "fault-test-token"
LIBRARY = Library(LibrarySpec(shows=3, seed=2))
PLEX_HEADERS = {"X-Plex-Token": TOKEN, "Accept": "application/json"}
JELLYFIN_HEADERS = {"Authorization": f'MediaBrowser Client="t", Device="t", DeviceId="t", Token="{TOKEN}"'}
EMBY_HEADERS = {"X-Emby-Token": TOKEN}
HEADERS = {"plex": PLEX_HEADERS, "jellyfin": JELLYFIN_HEADERS, "emby": EMBY_HEADERS}
PLEX_EPISODES = "/library/sections/2/all?type=4&sort=id"
JELLYFIN_EPISODES = "/Items?IncludeItemTypes=Episode&Recursive=true"
GIB = 1 << 30


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, EmulatedServer]]:
    made = {kind: make_server(kind, LIBRARY, token=TOKEN) for kind in ("plex", "jellyfin", "emby")}
    with (
        made["plex"].running_in_thread(),
        made["jellyfin"].running_in_thread(),
        made["emby"].running_in_thread(),
    ):
        yield made


@pytest.fixture
def fresh(servers: dict[str, EmulatedServer]) -> Iterator[dict[str, EmulatedServer]]:
    for server in servers.values():
        server.controls = Controls()
        server.log.clear()
    yield servers
    for server in servers.values():
        server.controls = Controls()


@pytest.fixture
def plex(fresh: dict[str, EmulatedServer]) -> EmulatedServer:
    return fresh["plex"]


@pytest.fixture
def jellyfin(fresh: dict[str, EmulatedServer]) -> EmulatedServer:
    return fresh["jellyfin"]


def page_path(kind: str, start: int = 0, size: int = 10) -> str:
    if kind == "plex":
        return f"{PLEX_EPISODES}&X-Plex-Container-Start={start}&X-Plex-Container-Size={size}"
    return f"{JELLYFIN_EPISODES}&StartIndex={start}&Limit={size}"


def get(server: EmulatedServer, path: str, timeout: float = 30, **kwargs: Any) -> requests.Response:
    return requests.get(server.url + path, headers=HEADERS[server.kind], timeout=timeout, **kwargs)


def page(server: EmulatedServer, start: int = 0, size: int = 10) -> dict[str, Any]:
    r = get(server, page_path(server.kind, start, size))
    assert r.status_code == 200, r.text[:300]
    doc: dict[str, Any] = r.json()
    return doc["MediaContainer"] if server.kind == "plex" else doc


def items(server: EmulatedServer, doc: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = doc["Metadata"] if server.kind == "plex" else doc["Items"]
    return found


def ids(server: EmulatedServer, doc: dict[str, Any]) -> list[str]:
    return [i["ratingKey"] if server.kind == "plex" else i["Id"] for i in items(server, doc)]


def total(server: EmulatedServer, doc: dict[str, Any]) -> int:
    value: int = doc["totalSize"] if server.kind == "plex" else doc["TotalRecordCount"]
    return value


def faults_logged(server: EmulatedServer) -> list[str | None]:
    return [e.fault for e in server.log]


def wait_for_log(server: EmulatedServer, n: int) -> None:
    """A stalled or reset request is logged when the server is done with it."""
    deadline = time.monotonic() + 10
    while len(server.log) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.log) >= n


# ----------------------------------------------------------------------------- no plan


@pytest.mark.parametrize("kind", ["plex", "jellyfin", "emby"])
def test_without_a_plan_or_a_firing_fault_answers_are_unchanged(
    fresh: dict[str, EmulatedServer], kind: str
) -> None:
    server = fresh[kind]
    assert server.controls.faults is None
    path = page_path(kind)
    before = get(server, path)
    # faults that never fire: a rate of 0, a path that never matches, no request numbers
    server.controls.faults = FaultPlan(
        [Fault("reset", rate=0.0), Fault("html", path="/nowhere"), Fault("status", requests=())], seed=1
    )
    after = get(server, path)
    assert after.status_code == before.status_code == 200
    assert after.content == before.content
    assert after.headers["Content-Type"] == before.headers["Content-Type"]
    assert faults_logged(server) == [None, None]
    assert server.controls.faults.seen() == [1, 0, 1]
    assert server.controls.faults.fired() == [0, 0, 0]


# ----------------------------------------------------------------------------- each kind


@pytest.mark.parametrize(
    ("status", "retry_after", "header"),
    [(503, 1, "1"), (429, 2.5, "2.5"), (503, "Wed, 21 Oct 2015 07:28:00 GMT", None), (500, None, None),
     (502, None, None), (401, None, None), (403, None, None), (404, None, None), (400, None, None)],
)  # fmt: skip
def test_status(
    plex: EmulatedServer, status: int, retry_after: float | str | None, header: str | None
) -> None:
    plex.controls.faults = FaultPlan([Fault("status", status=status, retry_after=retry_after)])
    r = get(plex, page_path("plex"))
    assert r.status_code == status
    expected = header if header is not None else retry_after
    assert r.headers.get("Retry-After") == expected
    assert [(e.status, e.fault) for e in plex.log] == [(status, "status")]
    assert plex.log.counters()["fault_status"] == 1


def test_reset_is_a_connection_error(plex: EmulatedServer) -> None:
    plex.controls.faults = FaultPlan([Fault("reset", times=1)])
    with pytest.raises(requests.ConnectionError):
        get(plex, page_path("plex"))
    wait_for_log(plex, 1)
    assert [(e.status, e.fault) for e in plex.log] == [(0, "reset")]
    assert get(plex, page_path("plex")).status_code == 200  # times=1: the next one is answered


async def test_reset_and_truncate_seen_by_aiohttp(plex: EmulatedServer) -> None:
    plex.controls.faults = FaultPlan([Fault("reset", requests={1, 2}), Fault("truncate", requests={3})])
    url = plex.url + page_path("plex")
    async with aiohttp.ClientSession(headers=PLEX_HEADERS) as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(url) as r:
                await r.read()
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.get(url) as r:
                assert r.status == 200
                await r.read()
    wait_for_log(plex, 3)
    # aiohttp itself retries an idempotent request once after a reset: two resets, one error
    assert faults_logged(plex) == ["reset", "reset", "truncate"]


def test_truncated_body(plex: EmulatedServer) -> None:
    full = get(plex, page_path("plex")).content
    plex.controls.faults = FaultPlan([Fault("truncate")])
    r = get(plex, page_path("plex"), stream=True)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(full)
    received = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # urllib3's IncompleteRead
        for chunk in r.iter_content(4096):
            received += chunk
    assert 0 < len(received) < len(full) and full.startswith(received)
    assert faults_logged(plex) == [None, "truncate"]


def test_stall_before_answering(plex: EmulatedServer) -> None:
    plex.controls.faults = FaultPlan([Fault("stall", stall_s=20, requests={1}), Fault("stall", stall_s=0.3)])
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        get(plex, page_path("plex"), timeout=0.3)
    wait_for_log(plex, 1)  # the stall ended with its client, not after 20 s
    assert time.monotonic() - started < 5
    started = time.monotonic()
    r = get(plex, page_path("plex"))  # a short stall: late but whole
    assert r.status_code == 200 and time.monotonic() - started >= 0.3
    assert len(items(plex, r.json()["MediaContainer"])) == 10
    assert faults_logged(plex) == ["stall", "stall"]


def test_stall_mid_body(jellyfin: EmulatedServer) -> None:
    full = get(jellyfin, page_path("jellyfin")).content
    jellyfin.controls.faults = FaultPlan([Fault("stall", mid_body=True, stall_s=20, requests={1})])
    started = time.monotonic()
    r = get(jellyfin, page_path("jellyfin"), timeout=0.5, stream=True)
    assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(full)  # headers came
    with pytest.raises(requests.exceptions.ConnectionError):  # then the body stopped
        r.content  # noqa: B018
    assert time.monotonic() - started < 5
    jellyfin.controls.faults = FaultPlan([Fault("stall", mid_body=True, stall_s=0.2)])
    assert get(jellyfin, page_path("jellyfin")).content == full  # a short stall: whole


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
def test_malformed_json(fresh: dict[str, EmulatedServer], kind: str) -> None:
    server = fresh[kind]
    server.controls.faults = FaultPlan([Fault("malformed_json")])
    r = get(server, page_path(kind))
    assert r.status_code == 200 and "json" in r.headers["Content-Type"]
    with pytest.raises(ValueError):
        json.loads(r.content)
    assert faults_logged(server) == ["malformed_json"]


def test_html_login_page(plex: EmulatedServer) -> None:
    plex.controls.faults = FaultPlan([Fault("html")])
    r = requests.get(plex.url + page_path("plex"), headers={"Accept": "application/json"}, timeout=30)
    assert r.status_code == 200  # in front of the server: no token needed
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text == LOGIN_PAGE and "<form" in r.text


def test_wrong_types_plex(plex: EmulatedServer) -> None:
    good = items(plex, page(plex))
    plex.controls.faults = FaultPlan([Fault("wrong_types", count=2)], seed=4)
    bad = items(plex, page(plex))
    spoiled = [i for i, (a, b) in enumerate(zip(good, bad, strict=True)) if a != b]
    assert len(spoiled) == 2
    for i in spoiled:
        assert bad[i]["ratingKey"] == [good[i]["ratingKey"]]
        assert bad[i]["index"] == "abc"
        assert isinstance(bad[i]["Media"], dict)
    plex.controls.faults = FaultPlan([Fault("wrong_types", fields=("parentIndex",), count=99)])
    bad = items(plex, page(plex))
    assert all(
        b["parentIndex"] == "abc" and b["ratingKey"] == g["ratingKey"] for g, b in zip(good, bad, strict=True)
    )


@pytest.mark.parametrize("kind", ["jellyfin", "emby"])
def test_wrong_types_jellyfin(fresh: dict[str, EmulatedServer], kind: str) -> None:
    server = fresh[kind]
    good = items(server, page(server))
    assert any("RunTimeTicks" in g for g in good) and any("RunTimeTicks" not in g for g in good)
    server.controls.faults = FaultPlan(
        [Fault("wrong_types", fields=("IndexNumber", "RunTimeTicks"), count=99)]
    )
    bad = items(server, page(server))
    for g, b in zip(good, bad, strict=True):
        assert b["IndexNumber"] == {"Value": g["IndexNumber"]}
        assert isinstance(b["RunTimeTicks"], str) if "RunTimeTicks" in g else "RunTimeTicks" not in b
        assert b["Id"] == g["Id"]


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
def test_duplicate_ids_within_a_page(fresh: dict[str, EmulatedServer], kind: str) -> None:
    server = fresh[kind]
    good = ids(server, page(server))
    server.controls.faults = FaultPlan([Fault("duplicate_ids", count=3)])
    doc = page(server)
    got = ids(server, doc)
    assert len(got) == len(good) == 10
    assert got == good[:7] + good[:3]
    if kind == "plex":
        assert doc["size"] == 10


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
def test_duplicate_ids_from_the_previous_page(fresh: dict[str, EmulatedServer], kind: str) -> None:
    server = fresh[kind]
    first, second = ids(server, page(server, 0)), ids(server, page(server, 10))
    server.controls.faults = FaultPlan([Fault("duplicate_ids", count=2, from_previous=True)])
    assert ids(server, page(server, 0)) == first  # no page before it: untouched, not counted
    assert ids(server, page(server, 10)) == first[-2:] + second[2:]
    assert faults_logged(server)[-2:] == [None, "duplicate_ids"]
    assert server.controls.faults.fired() == [1]


@pytest.mark.parametrize("kind", ["plex", "jellyfin", "emby"])
def test_total_drift_mid_run(fresh: dict[str, EmulatedServer], kind: str) -> None:
    server = fresh[kind]
    real = total(server, page(server))
    server.controls.faults = FaultPlan([Fault("total_drift", drift=5, requests={2})])
    totals = [total(server, page(server, start)) for start in (0, 10, 20)]
    assert totals == [real, real + 5, real]
    if kind == "plex":  # the header agrees with the body
        server.controls.faults = FaultPlan([Fault("total_drift", drift=-3)])
        r = get(server, page_path(kind))
        assert r.headers["X-Plex-Container-Total-Size"] == str(real - 3)


def test_gzip_bomb(plex: EmulatedServer) -> None:
    plex.controls.faults = FaultPlan([Fault("gzip_bomb")])
    r = get(plex, page_path("plex"), stream=True)
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    raw = r.raw.read(decode_content=False)
    assert len(raw) == int(r.headers["Content-Length"]) < 2 << 20
    inflate, inflated, data = zlib.decompressobj(16 + zlib.MAX_WBITS), 0, raw
    while data and inflated <= GIB:  # inflate with a cap, as a client must
        inflated += len(inflate.decompress(data, 64 << 20))
        data = inflate.unconsumed_tail
    assert inflated > GIB and inflated / len(raw) > 1000
    assert faults_logged(plex) == ["gzip_bomb"]


def test_gzip_bomb_is_valid_gzip() -> None:
    size = (9 << 20) + 3  # whole chunks and a tail
    bomb = gzip_bomb(size)
    assert gzip.decompress(bomb) == b" " * size  # checks the CRC and length too
    assert gzip_bomb(size) is bomb  # built once


def test_huge_body(jellyfin: EmulatedServer) -> None:
    jellyfin.controls.faults = FaultPlan(
        [Fault("huge_body", size_bytes=3 << 20, requests={1}), Fault("huge_body")]
    )
    r = get(jellyfin, page_path("jellyfin"))
    assert r.status_code == 200 and len(r.content) == 3 << 20
    assert r.json() == {}  # spaces, then {}
    with get(jellyfin, page_path("jellyfin"), stream=True) as r:  # the default: 100 MiB
        assert int(r.headers["Content-Length"]) == 100 << 20
        assert len(next(r.iter_content(1 << 16))) > 0
    assert faults_logged(jellyfin) == ["huge_body", "huge_body"]


# ----------------------------------------------------------------------------- targeting


def test_rate_is_deterministic_for_a_seed(plex: EmulatedServer) -> None:
    def run(seed: int) -> list[str | None]:
        plex.log.clear()
        plex.controls.faults = FaultPlan([Fault("status", status=503, rate=0.3)], seed=seed)
        for _ in range(40):
            get(plex, "/library/sections")
        return faults_logged(plex)

    first = run(7)
    assert run(7) == first
    assert run(8) != first
    assert 4 <= first.count("status") <= 20
    plan = FaultPlan([Fault("reset", rate=0.3)], seed=7)  # the same draws without HTTP
    assert [plan.choose("/x") is not None for _ in range(40)] == [f == "status" for f in first]


def test_request_numbers_path_and_times(plex: EmulatedServer) -> None:
    plex.controls.faults = FaultPlan(
        [Fault("status", status=500, requests={2, 4}, path="/all$"), Fault("status", status=502, times=2)]
    )
    statuses = []
    for _ in range(4):
        statuses.append(get(plex, page_path("plex")).status_code)  # /library/sections/2/all
        statuses.append(get(plex, "/identity").status_code)
    # the second fault matches any path: the first two requests; the first: /all's 2nd and 4th
    assert statuses == [502, 502, 500, 200, 200, 200, 500, 200]
    assert plex.controls.faults.seen() == [4, 8]
    assert plex.controls.faults.fired() == [2, 2]
    assert plex.log.counters()["fault_status"] == 4


def test_requests_as_a_range_and_faults_spare_the_emulator_endpoints(jellyfin: EmulatedServer) -> None:
    jellyfin.controls.faults = FaultPlan([Fault("reset", requests=range(1, 1000))])
    log = requests.get(jellyfin.url + "/_emulator/log", headers=JELLYFIN_HEADERS, timeout=30)
    assert log.status_code == 200
    with pytest.raises(requests.ConnectionError):
        get(jellyfin, "/System/Info")
    assert jellyfin.controls.faults.seen() == [1]


def test_controls_over_http(jellyfin: EmulatedServer) -> None:
    def post(body: Any) -> requests.Response:
        return requests.post(
            jellyfin.url + "/_emulator/controls", json=body, headers=JELLYFIN_HEADERS, timeout=30
        )

    plan = [
        {"kind": "status", "status": 503, "retry_after": 1, "rate": 0.5, "path": "/Items"},
        {"kind": "truncate", "requests": {"start": 2, "stop": 4}, "times": 1},
        {"kind": "wrong_types", "requests": [1, 3], "fields": ["Id"]},
    ]
    r = post({"faults": plan, "fault_seed": 3, "latency_ms": 0})
    assert r.status_code == 200, r.text
    echoed = r.json()
    assert echoed["fault_seed"] == 3
    assert echoed["faults"][1] == {
        "kind": "truncate",
        "requests": {"start": 2, "stop": 4, "step": 1},
        "times": 1,
    }
    assert echoed["faults"][2] == plan[2]
    faults = jellyfin.controls.faults
    assert isinstance(faults, FaultPlan) and faults.seed == 3
    assert faults.faults[0] == Fault("status", status=503, retry_after=1, rate=0.5, path="/Items")
    assert faults.faults[1].requests == range(2, 4) and faults.faults[2].requests == {1, 3}
    assert FaultPlan.from_json(echoed["faults"], 3).faults == faults.faults
    bad_posts: list[dict[str, Any]] = [
        {"faults": [{"kind": "nope"}]},
        {"faults": [{"kind": "reset", "bogus": 1}]},
        {"faults": [{"kind": "status", "rate": 2}]},
        {"faults": [{"status": 503}]},
        {"faults": {"kind": "reset"}},
        {"fault_seed": 2},
    ]
    for bad in bad_posts:
        assert post(bad).status_code == 400, bad
    assert jellyfin.controls.faults is faults  # a bad post changes nothing
    assert post({"faults": None}).json()["faults"] is None
    assert jellyfin.controls.faults is None


def test_every_kind_is_tested() -> None:
    """A new kind needs a test here (and a line in the module docstring)."""
    assert set(KINDS) == {
        "status", "stall", "reset", "truncate", "malformed_json", "html",
        "wrong_types", "duplicate_ids", "total_drift", "gzip_bomb", "huge_body",
    }  # fmt: skip
    with pytest.raises(ValueError):
        Fault("teapot")
