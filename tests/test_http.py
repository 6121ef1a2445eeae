"""The HTTP client against real servers on 127.0.0.1, and its pure parts (limiter, redaction)."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
import shutil
import socket
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import pytest
from aiohttp import web
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from importer.compression import inflate
from importer.emulator.server import Controls, EmulatedServer
from importer.errors import (
    AuthError,
    NotFoundError,
    ServerError,
    TransportError,
    UnexpectedResponse,
)
from importer.http import (
    AdaptiveLimit,
    HttpClient,
    RetryPolicy,
    Timeouts,
    _Gate,
    is_loopback,
    parse_retry_after,
    redact_url,
)
from importer.sources.base import PageRequest

TOKEN = "s3cr3t-t0ken-value"
FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, max_elapsed=10)


class FaultServer(EmulatedServer):
    """A tiny app that misbehaves on request; counts hits and in-flight requests itself."""

    kind = "test"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__([], token=TOKEN, **kwargs)
        self.hits: Counter[str] = Counter()
        self.times: dict[str, list[float]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrivals: list[int] = []  # in-flight count seen by each arriving request
        self.fail_first: dict[str, int] = {}  # route -> how many 503s before answering

    def token_of(self, request: web.Request) -> str | None:
        return request.headers.get("X-Test-Token")

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_get("/{name}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits[name] += 1
        self.times.setdefault(name, []).append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.arrivals.append(self.in_flight)
        try:
            return await self._answer(name, request)
        finally:
            self.in_flight -= 1

    async def _answer(self, name: str, request: web.Request) -> web.StreamResponse:
        q = request.query
        n = self.hits[name]
        if "sleep" in q:
            await asyncio.sleep(float(q["sleep"]))
        if name == "echo":
            return web.json_response(
                {"path": request.path, "query": dict(q), "headers": dict(request.headers)}
            )
        if name == "ok":
            return web.json_response({"ok": True, "n": n})
        if name == "flaky":  # 500 for the first `fail` hits
            if n <= int(q.get("fail", "2")):
                return web.Response(status=500, text="boom")
            return web.json_response({"ok": True, "n": n})
        if name == "busy":  # 429 once, with Retry-After in seconds or as a date
            if n == 1:
                after = q.get("after", "1")
                if q.get("date"):
                    after = formatdate(time.time() + float(after), usegmt=True)
                return web.Response(status=429, headers={"Retry-After": after})
            return web.json_response({"ok": True})
        if name == "always500":
            return web.Response(status=500)
        if name == "always503":
            return web.Response(status=503, headers={"Retry-After": q.get("after", "0")})
        if name == "overload":  # 503 until fail_first is used up, then slow answers
            left = self.fail_first.get(name, 0)
            if left:
                self.fail_first[name] = left - 1
                return web.Response(status=503, headers={"Retry-After": "0"})
            await asyncio.sleep(0.02)
            return web.json_response({"ok": True})
        if name == "bad":
            return web.Response(status=400, text="bad request")
        if name == "moved":
            return web.Response(status=302, headers={"Location": "http://elsewhere.invalid/login"})
        if name == "html":
            return web.Response(text="<html><body>Sign in</body></html>", content_type="text/html")
        if name == "htmljson":  # a proxy that lies about the type
            return web.Response(body=b"\n  <!DOCTYPE html><html/>", content_type="application/json")
        if name == "big":
            return web.Response(body=b"[" + b"1," * int(q["size"]) + b"1]", content_type="application/json")
        if name == "bigchunked":
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for _ in range(int(q["chunks"])):
                await resp.write(b" " * 1024)
            await resp.write_eof()
            return resp
        if name == "stall":  # headers, half a body, then silence
            resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "100"})
            await resp.prepare(request)
            await resp.write(b'{"a": ')
            await asyncio.sleep(float(q.get("stall", "1")))
            return resp
        raise web.HTTPNotFound()


@pytest.fixture
async def server() -> AsyncIterator[FaultServer]:
    srv = FaultServer()
    await srv.start()
    yield srv
    await srv.stop()


def client(url: str, **kwargs: Any) -> HttpClient:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("headers", {"X-Test-Token": TOKEN})
    kwargs.setdefault("rng", random.Random(1))
    return HttpClient(url, **kwargs)


def req(path: str, **params: str) -> PageRequest:
    return PageRequest(path, params)


# ------------------------------------------------------------------ success, retries, statistics


async def test_fetch_ok_and_statistics(server: FaultServer) -> None:
    async with client(server.url) as http:
        page = await http.fetch(req("/ok"))
        assert page.status == 200
        assert json.loads(page.body) == {"ok": True, "n": 1}
        assert page.content_encoding is None  # loopback: no gzip asked for
        assert page.content_type is not None and page.content_type.startswith("application/json")
        assert page.server_date is not None and abs(page.server_date - time.time()) < 5
        assert page.elapsed > 0
        assert http.stats.requests == 1 and http.stats.retries == 0
        assert http.stats.bytes_received == len(page.body) == http.stats.bytes


async def test_server_date_follows_the_server_clock() -> None:
    srv = FaultServer(controls=Controls(clock_offset_s=10_000))
    await srv.start()
    try:
        async with client(srv.url) as http:
            page = await http.fetch(req("/ok"))
        assert page.server_date is not None and abs(page.server_date - (time.time() + 10_000)) < 5
    finally:
        await srv.stop()


async def test_500_then_success_is_retried(server: FaultServer) -> None:
    async with client(server.url) as http:
        page = await http.fetch(req("/flaky", fail="2"))
        assert page.status == 200 and page.attempts == 3
        assert server.hits["flaky"] == 3
        assert http.stats.requests == 3 and http.stats.retries == 2


async def test_retry_after_seconds_is_honoured(server: FaultServer) -> None:
    async with client(server.url) as http:
        await http.fetch(req("/busy", after="1"))
    first, second = server.times["busy"]
    assert second - first >= 0.99  # measured by the server, not the client


async def test_retry_after_http_date_is_honoured(server: FaultServer) -> None:
    async with client(server.url) as http:
        await http.fetch(req("/busy", after="2", date="1"))
    first, second = server.times["busy"]
    # HTTP-dates have one-second resolution: "in 2 s" means at least 1 s from now
    assert second - first >= 0.99


async def test_5xx_exhausted_is_server_error_exit_75(server: FaultServer) -> None:
    async with client(server.url, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01)) as http:
        with pytest.raises(ServerError) as info:
            await http.fetch(req("/always500", X_Plex_Token="nope"))
    assert server.hits["always500"] == 3
    err = info.value
    assert err.exit_code == 75 and err.transient and err.status == 500
    assert "HTTP 500" in str(err) and "try again later" in str(err)
    assert err.url is not None and err.url.startswith(server.url + "/always500")


async def test_retry_after_beyond_the_budget_gives_up_at_once(server: FaultServer) -> None:
    async with client(server.url) as http:
        with pytest.raises(ServerError, match="asked to wait 3600 s"):
            await http.fetch(req("/always503", after="3600"))
    assert server.hits["always503"] == 1


async def test_max_elapsed_stops_retrying(server: FaultServer) -> None:
    policy = RetryPolicy(attempts=100, base_delay=0.2, max_delay=0.2, max_elapsed=0.5)
    async with client(server.url, retry=policy) as http:
        with pytest.raises(ServerError):
            await http.fetch(req("/always500"))
    assert 2 <= server.hits["always500"] < 20


# ------------------------------------------------------------------ errors that are not retried


async def test_401_is_auth_error_without_retry(server: FaultServer) -> None:
    async with client(server.url, headers={"X-Test-Token": "wrong-token-123"}) as http:
        with pytest.raises(AuthError) as info:
            await http.fetch(req("/ok"))
    assert info.value.exit_code == 1 and info.value.status == 401
    assert "--token-file" in str(info.value) and "IMPORTER_TOKEN" in str(info.value)
    assert "wrong-token-123" not in str(info.value)
    assert len(server.log) == 1  # refused once, not retried


async def test_404_is_not_found(server: FaultServer) -> None:
    async with client(server.url) as http:
        with pytest.raises(NotFoundError, match="check the URL") as info:
            await http.get_bytes("/nothing/here")
    assert info.value.status == 404 and len(server.log) == 1


async def test_400_is_not_retried(server: FaultServer) -> None:
    async with client(server.url) as http:
        with pytest.raises(UnexpectedResponse, match="HTTP 400"):
            await http.fetch(req("/bad"))
    assert server.hits["bad"] == 1


async def test_redirects_are_not_followed(server: FaultServer) -> None:
    async with client(server.url) as http:
        with pytest.raises(UnexpectedResponse, match="redirects"):
            await http.fetch(req("/moved"))
    assert server.hits["moved"] == 1


@pytest.mark.parametrize("route", ["html", "htmljson"])
async def test_html_is_unexpected_response(server: FaultServer, route: str) -> None:
    async with client(server.url) as http:
        with pytest.raises(UnexpectedResponse, match="login page or a proxy; check the URL"):
            await http.fetch(req(f"/{route}"))
        with pytest.raises(UnexpectedResponse):
            await http.get_bytes(f"/{route}")
    assert server.hits[route] == 2  # once per call: not retried


async def test_gzipped_html_is_recognised(server: FaultServer) -> None:
    async with client(server.url, compress=True) as http:
        with pytest.raises(UnexpectedResponse):
            await http.fetch(req("/htmljson"))


async def test_body_limit(server: FaultServer) -> None:
    async with client(server.url, max_body=10_000) as http:
        assert len(await http.get_bytes("/big", {"size": "1000"})) == 2003
        with pytest.raises(UnexpectedResponse, match="larger than"):
            await http.fetch(req("/big", size="100000"))
        with pytest.raises(UnexpectedResponse, match="larger than"):
            await http.fetch(req("/bigchunked", chunks="20"))  # no Content-Length: counted as read
        page = await http.fetch(req("/bigchunked", chunks="5"))
        assert len(page.body) == 5 * 1024
    assert server.hits["big"] == 2 and server.hits["bigchunked"] == 2


# ------------------------------------------------------------------ transport failures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused_is_transport_error_exit_75(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="importer.http")
    url = f"http://user:{TOKEN}@127.0.0.1:{free_port()}/base"
    async with client(url, retry=RetryPolicy(attempts=2, base_delay=0.01)) as http:
        with pytest.raises(TransportError) as info:
            await http.fetch(PageRequest("/library", {"X-Plex-Token": TOKEN, "type": "4"}))
    err = info.value
    assert err.exit_code == 75 and err.transient
    assert "cannot connect to 127.0.0.1" in str(err)
    assert err.url is not None and "/base/library?type=4" in err.url
    assert TOKEN not in str(err) and TOKEN not in (err.url or "")
    assert http.stats.requests == 2 and http.stats.retries == 1
    assert caplog.records and all(TOKEN not in r.getMessage() for r in caplog.records)


async def test_stalled_body_times_out_and_is_retried(server: FaultServer) -> None:
    timeouts = Timeouts(connect=2, sock_read=0.2, total=5)
    async with client(server.url, timeouts=timeouts, retry=RetryPolicy(attempts=2, base_delay=0.01)) as http:
        with pytest.raises(TransportError, match="stopped sending") as info:
            await http.fetch(req("/stall", stall="1"))
    assert info.value.exit_code == 75
    assert server.hits["stall"] == 2


class RawServer:
    """A TCP server that cuts the first ``cut`` responses short, then answers properly."""

    def __init__(self, cut: int) -> None:
        self.cut = cut
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"ok": true}'
        if self.connections <= self.cut:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{")
        else:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_truncated_body_is_retried() -> None:
    raw = RawServer(cut=1)
    async with raw as url, client(url) as http:
        page = await http.fetch(req("/x"))
    assert page.body == b'{"ok": true}' and page.attempts == 2
    assert raw.connections == 2


async def test_truncated_body_exhausted_is_transport_error() -> None:
    raw = RawServer(cut=99)
    async with raw as url, client(url, retry=RetryPolicy(attempts=3, base_delay=0.01)) as http:
        with pytest.raises(TransportError, match="cut short"):
            await http.fetch(req("/x"))
    assert raw.connections == 3


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_verification_failure_mentions_insecure(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    hits = 0

    async def ok(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.json_response({"ok": True})

    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        url = f"https://127.0.0.1:{port}"
        async with client(url) as http:
            with pytest.raises(TransportError, match="--insecure") as info:
                await http.fetch(req("/ok"))
            assert http.stats.requests == 1  # a certificate does not get better by asking again
        assert info.value.exit_code == 75
        async with client(url, verify_tls=False) as http:
            assert (await http.fetch(req("/ok"))).status == 200
        assert hits == 1
    finally:
        await runner.cleanup()


# ------------------------------------------------------------------ URLs, headers, compression


async def test_base_path_is_kept() -> None:
    srv = FaultServer(base_path="/jellyfin")
    await srv.start()
    try:
        assert srv.url.endswith("/jellyfin")
        async with client(srv.url + "/") as http:
            body = json.loads(await http.get_bytes("echo", {"a": "1"}))
            page = await http.fetch(PageRequest("/echo", {"b": "2"}, {"X-Extra": "yes"}))
        assert body["path"] == "/jellyfin/echo" and body["query"] == {"a": "1"}
        echoed = json.loads(page.body)
        assert echoed["query"] == {"b": "2"} and echoed["headers"]["X-Extra"] == "yes"
        assert [e.path for e in srv.log] == ["/echo", "/echo"]
    finally:
        await srv.stop()


async def test_accept_encoding_and_gzip(server: FaultServer) -> None:
    async with client(server.url) as http:
        plain = json.loads(await http.get_bytes("/echo"))
        assert plain["headers"]["Accept-Encoding"] == "identity"  # loopback: not worth it
        assert plain["headers"]["Accept"] == "application/json"
        assert plain["headers"]["X-Test-Token"] == TOKEN
    async with client(server.url, compress=True) as http:
        page = await http.fetch(req("/big", size="50000"))
        assert page.content_encoding == "gzip"
        assert http.stats.bytes_received == len(page.body) < 10_000  # the wire size
        with pytest.raises(UnexpectedResponse, match="compression bomb"):
            inflate(page.body, page.content_encoding)  # "1,1,1,..." inflates ~500x: no page does that
        assert await http.get_bytes("/big", {"size": "10"}) == b"[" + b"1," * 10 + b"1]"


def test_is_loopback() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("[::1]")
    assert is_loopback("127.3.2.1") and is_loopback("media.localhost")
    assert not is_loopback("192.168.1.10") and not is_loopback("plex.example.com") and not is_loopback(None)
    assert HttpClient("http://plex.example.com:32400").compress
    assert not HttpClient("http://127.0.0.1:32400").compress


def test_inflate_limits() -> None:
    data = random.Random(1).randbytes(50_000).hex().encode()  # compresses ~2x, like real pages
    assert inflate(gzip.compress(data), "gzip") == data
    assert inflate(data, None) == data
    with pytest.raises(UnexpectedResponse, match="inflates past"):
        inflate(gzip.compress(data), "gzip", max_size=1 << 16)
    with pytest.raises(UnexpectedResponse, match="compression bomb"):
        inflate(gzip.compress(b"x" * 100_000), "gzip")  # a ratio of ~1000
    with pytest.raises(UnexpectedResponse, match="more than the limit"):
        inflate(data, None, max_size=1 << 16)
    with pytest.raises(UnexpectedResponse, match="ends early"):
        inflate(gzip.compress(data)[:-20], "gzip")
    with pytest.raises(UnexpectedResponse, match="corrupt"):
        inflate(b"not gzip at all", "gzip")
    with pytest.raises(UnexpectedResponse, match="Content-Encoding"):
        inflate(data, "br")


# ------------------------------------------------------------------ concurrency


async def test_concurrency_cap_is_never_exceeded(server: FaultServer) -> None:
    async with client(server.url, concurrency=3) as http:
        pages = await asyncio.gather(*(http.fetch(req("/ok", sleep="0.03")) for _ in range(30)))
    assert len(pages) == 30
    assert server.max_in_flight == 3  # reached, never passed
    assert http.max_in_flight == 3


async def test_overload_lowers_the_limit(server: FaultServer) -> None:
    server.fail_first["overload"] = 4
    limit = AdaptiveLimit(4, increase=0.1)  # slow growth, so the lowered limit holds for this test
    async with client(server.url, limit=limit) as http:
        await asyncio.gather(*(http.fetch(req("/overload")) for _ in range(4)))
        assert limit.decreases == 1  # four failures of one generation: one cut
        assert limit.limit == 2
        arrivals_before = len(server.arrivals)
        await asyncio.gather(*(http.fetch(req("/overload")) for _ in range(12)))
    assert max(server.arrivals[arrivals_before:]) == 2  # the server sees the lowered limit
    assert limit.limit == 2


def test_runs_on_uvloop() -> None:
    uvloop = pytest.importorskip("uvloop")
    srv = FaultServer()

    async def main(url: str) -> int:
        async with client(url) as http:
            page = await http.fetch(req("/flaky", fail="1"))
        return page.attempts

    with srv.running_in_thread() as url, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(main(url)) == 2


# ------------------------------------------------------------------ the limiter, without a network


def test_limit_halves_once_per_generation_and_respects_bounds() -> None:
    limit = AdaptiveLimit(8)
    assert limit.limit == 8
    limit.on_overload(started=0.0, now=1.0)
    assert limit.limit == 4
    limit.on_overload(started=0.5, now=1.1)  # in flight during the first cut: ignored
    assert limit.limit == 4
    limit.on_overload(started=1.2, now=1.5)  # sent after the cut: the server still struggles
    assert limit.limit == 2
    for t in range(2, 10):
        limit.on_overload(started=float(t), now=t + 0.5)
    assert limit.limit == 1 and limit.window >= 1.0  # never below the minimum


def test_limit_grows_back_slowly_and_never_past_the_maximum() -> None:
    limit = AdaptiveLimit(4)
    limit.on_overload(0.0, 1.0)
    limit.on_overload(2.0, 3.0)
    assert limit.limit == 1
    seen = []
    for i in range(200):
        t = 10.0 + i
        limit.on_success(started=t, now=t + 0.1)
        seen.append(limit.limit)
    assert seen[0] == 1  # not back up after one answer
    assert seen.index(2) >= 2 and seen.index(4) > seen.index(3) > seen.index(2)
    assert max(seen) == 4 and seen[-1] == 4


def test_limit_backs_off_when_latency_rises() -> None:
    limit = AdaptiveLimit(4)
    t = 0.0
    for _ in range(30):  # a steady 100 ms baseline
        limit.on_success(t, t + 0.1)
        t += 0.1
    assert limit.limit == 4 and not limit.congested()
    for _ in range(5):  # the server slows to 1 s a page (someone started a film)
        limit.on_success(t, t + 1.0)
        t += 1.0
    assert limit.congested() and limit.limit < 4
    lowered = limit.limit
    for _ in range(100):  # it recovers
        limit.on_success(t, t + 0.1)
        t += 0.1
    assert not limit.congested() and limit.limit == 4 > lowered


def test_limit_ignores_loopback_jitter() -> None:
    limit = AdaptiveLimit(4)
    for i in range(50):  # 1 ms then 6 ms: six times slower, but only 5 ms more
        limit.on_success(i, i + (0.001 if i < 25 else 0.006))
    assert limit.limit == 4 and limit.decreases == 0


def test_limit_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        AdaptiveLimit(0)
    with pytest.raises(ValueError):
        AdaptiveLimit(2, minimum=3)


async def test_gate_follows_the_limit_and_survives_cancellation() -> None:
    limit = AdaptiveLimit(2)
    gate = _Gate(limit)
    await gate.acquire()
    await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    cancelled = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert not waiter.done() and gate.in_flight == 2
    cancelled.cancel()
    await asyncio.sleep(0)
    limit.on_overload(0.0, 1.0)  # limit 1: a release must not admit while 1 is still in flight
    gate.release()
    await asyncio.sleep(0)
    assert not waiter.done() and gate.in_flight == 1
    gate.release()
    await asyncio.wait_for(waiter, 1)
    assert gate.in_flight == 1 and gate.max_in_flight == 2
    gate.release()
    assert gate.in_flight == 0 and not gate._waiters


# ------------------------------------------------------------------ Retry-After and backoff


def test_parse_retry_after() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("5", now) == 5.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_backoff_is_full_jitter_with_retry_after_as_floor() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(7)
    for attempt in range(1, 8):
        cap = min(8.0, 2 ** (attempt - 1))
        delays = [policy.delay(attempt, None, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # spread over the whole range
    assert all(policy.delay(1, 3.0, rng) >= 3.0 for _ in range(50))
    assert [RetryPolicy.retries_status(s) for s in (429, 500, 502, 503, 504, 501, 400, 401, 403, 404)] == [
        True, True, True, True, True, False, False, False, False, False,
    ]  # fmt: skip


# ------------------------------------------------------------------ redaction


SECRET_NAMES = st.sampled_from(["X-Plex-Token", "x-plex-token", "api_key", "ApiKey", "token", "Token"])
TOKENS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=6, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(
    token=TOKENS,
    name=SECRET_NAMES,
    user=st.one_of(st.none(), st.text(alphabet="abcdefgh", min_size=1, max_size=8)),
    in_userinfo=st.booleans(),
    position=st.integers(0, 2),
)
def test_redact_url_never_leaves_the_token(
    token: str, name: str, user: str | None, in_userinfo: bool, position: int
) -> None:
    params = [("type", "4"), ("sort", "id")]
    params.insert(position, (name, token))
    userinfo = ""
    if in_userinfo:
        userinfo = f"{quote(user or 'u', safe='')}:{quote(token, safe='')}@"
    url = f"http://{userinfo}media.example:32400/library/sections/1/all?{urlencode(params)}#frag"
    skeleton = url.replace(quote(token, safe=""), "").replace(quote_plus(token), "")
    assume(
        token not in skeleton and quote_plus(token) not in "http://media.example:32400/library/sections/1/all"
    )
    shown = redact_url(url)
    for form in {token, quote(token, safe=""), quote_plus(token), quote(token)}:
        assert form not in shown
    assert shown.startswith("http://media.example:32400/library/sections/1/all?")
    assert "type=4" in shown and "sort=id" in shown


def test_redact_url_examples() -> None:
    assert redact_url("http://u:pw@host:1/a?X-Plex-Token=abc&x=1") == "http://host:1/a?x=1"
    assert redact_url("https://host/jellyfin/Items?api_key=abc") == "https://host/jellyfin/Items"
    assert redact_url("http://host/a?ApiKey=abc&TOKEN=def&b=2") == "http://host/a?b=2"
    assert redact_url("http://host/plain") == "http://host/plain"
    assert redact_url("http://[::1") == "<unparseable URL>"


async def test_messages_and_logs_never_hold_the_token(
    server: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = server.url.replace("http://", f"http://someone:{TOKEN}@")
    async with client(url, retry=RetryPolicy(attempts=2, base_delay=0.01)) as http:
        failures: list[Exception] = []
        for path in ("/always500", "/html", "/bad", "/nothing", "/big"):
            try:
                await http.fetch(PageRequest(path, {"X-Plex-Token": TOKEN, "api_key": TOKEN, "size": "1"}))
            except Exception as exc:
                failures.append(exc)
    assert len(failures) == 4  # /big with size 1 succeeds
    for exc in failures:
        assert TOKEN not in str(exc) and TOKEN not in repr(exc.__dict__)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
