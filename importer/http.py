"""The HTTP client: one aiohttp session per run, retries, an adaptive concurrency limit.

What it guarantees to the pipeline:

- **bounded, adaptive concurrency**: at most ``concurrency`` requests in flight (4 by
  default: more does not help, see ``research/limits.md`` §4), fewer while the server
  answers 429/503/5xx, drops connections or slows down well past its usual latency
  (:class:`AdaptiveLimit`, a pure AIMD controller). A home server someone is watching a
  film from must stay usable.
- **retries** (:class:`RetryPolicy`): 5xx, 429, timeouts, resets, refused connections and
  truncated bodies, with exponential backoff and full jitter, honouring ``Retry-After``;
  never 400/401/403/404.
- **errors mapped at the boundary** to :mod:`importer.errors`; every message names the URL
  without its token (:func:`redact_url`) and says what to do next.
- **no CPU work on the loop**: page bodies stay as they came off the wire
  (``auto_decompress`` is off): the decoder process inflates them. Compression is asked
  for only off loopback, where it pays.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Final, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import msgspec
from yarl import URL

from importer import __version__
from importer.compression import inflate, peek
from importer.errors import (
    AuthError,
    NotFoundError,
    ServerError,
    SourceError,
    TransportError,
    UnexpectedResponse,
)
from importer.model import PageRequest

log = logging.getLogger(__name__)

__all__ = [
    "AdaptiveLimit",
    "FetchedPage",
    "HttpClient",
    "HttpStats",
    "RetryPolicy",
    "Timeouts",
    "is_loopback",
    "parse_retry_after",
    "redact_url",
]

MiB: Final = 1 << 20
DEFAULT_MAX_BODY: Final = 64 * MiB
READ_BUFFER: Final = MiB

# ------------------------------------------------------------------ redaction

#: query parameters that carry credentials on Plex, Jellyfin and Emby (compared case-insensitively;
#: "secret": a Quick Connect request's)
SECRET_PARAMS: Final = frozenset({"x-plex-token", "api_key", "apikey", "token", "access_token", "secret"})
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str | URL) -> str:
    """``url`` without userinfo and without token query parameters, for messages and logs."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:  # not a URL we can take apart: show nothing of it rather than a secret
        return "<unparseable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, v) for k, v in pairs if k.lower() not in SECRET_PARAMS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_text(text: str) -> str:
    """Redact every URL inside free text (third-party exception messages may quote one)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback addresses (where compression costs more than it saves)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class Timeouts:
    """Per-request timeouts in seconds, sized for one page, not for a run.

    ``total`` covers connect, send and reading the whole body of one attempt; ``sock_read``
    catches a stream that stalls in the middle of a page.
    """

    connect: float = 10.0
    sock_read: float = 60.0
    total: float = 300.0

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.total, connect=self.connect, sock_read=self.sock_read)


#: 5xx that will not go away by asking again
_PERMANENT_5XX: Final = frozenset({501, 505})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried.

    Delays are exponential with full jitter (uniform in ``[0, min(max_delay, base·2^(n-1))]``),
    which spreads the retries of many concurrent requests; a ``Retry-After`` on 429/503 is a
    floor. A request gives up after ``attempts`` tries or when the next wait would take it past
    ``max_elapsed`` seconds.
    """

    attempts: int = 6
    max_elapsed: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")

    @staticmethod
    def retries_status(status: int) -> bool:
        """True for statuses worth another try: 429 and 5xx (not 501/505)."""
        return status == 429 or (500 <= status <= 599 and status not in _PERMANENT_5XX)

    def delay(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        jittered = (rng or random).uniform(0.0, cap)
        if retry_after is not None:
            return max(retry_after, jittered)
        return jittered


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date).

    ``now`` is the moment the date is relative to: pass the response's own ``Date`` so that
    a skewed server clock does not matter.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# ------------------------------------------------------------------ adaptive concurrency


class AdaptiveLimit:
    """An AIMD concurrency limit fed with observations; no I/O, no clock of its own.

    - *Multiplicative decrease*: an overload (429, 5xx, timeout, reset) multiplies the window by
      ``backoff``; a latency well above the running baseline multiplies it by
      ``latency_backoff``. Only one decrease per "generation": observations of requests that
      started before the last decrease are ignored, as TCP cuts once per round trip, so one
      burst of failures from the requests in flight together counts once.
    - *Additive increase*: each good answer adds ``increase / window``, about ``increase`` per
      window's worth of answers, so the limit grows back slowly.
    - Latency: a slow EWMA (the baseline, which also absorbs lasting shifts such as bigger
      pages) and a fast one (recent); congestion is ``recent > factor·baseline + slack``, the
      gradient idea of Netflix's concurrency-limits. ``slack`` keeps loopback jitter of a few
      milliseconds from counting.

    The limit stays within ``[minimum, maximum]``.
    """

    def __init__(
        self,
        maximum: int = 4,
        *,
        minimum: int = 1,
        backoff: float = 0.5,
        latency_backoff: float = 0.75,
        increase: float = 0.5,
        latency_factor: float = 2.0,
        latency_slack: float = 0.05,
        baseline_alpha: float = 0.05,
        recent_alpha: float = 0.3,
    ) -> None:
        if maximum < 1 or not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {minimum}..{maximum}")
        self.maximum = maximum
        self.minimum = minimum
        self.backoff = backoff
        self.latency_backoff = latency_backoff
        self.increase = increase
        self.latency_factor = latency_factor
        self.latency_slack = latency_slack
        self.baseline_alpha = baseline_alpha
        self.recent_alpha = recent_alpha
        self.window = float(maximum)
        self.baseline: float | None = None
        self.recent: float | None = None
        self.decreases = 0
        self._last_decrease = float("-inf")

    @property
    def limit(self) -> int:
        """Requests allowed in flight now."""
        return max(self.minimum, min(self.maximum, int(self.window)))

    def congested(self) -> bool:
        """True when recent latency is well above the baseline."""
        if self.baseline is None or self.recent is None:
            return False
        return self.recent > self.baseline * self.latency_factor + self.latency_slack

    def on_success(self, started: float, now: float) -> None:
        """A request that started at ``started`` was answered (any non-overload status) at ``now``."""
        latency = max(0.0, now - started)
        if self.baseline is None or self.recent is None:
            self.baseline = self.recent = latency
        else:
            self.recent += self.recent_alpha * (latency - self.recent)
            self.baseline += self.baseline_alpha * (latency - self.baseline)
        if self.congested():
            self._decrease(self.latency_backoff, started, now)
        else:
            self.window = min(float(self.maximum), self.window + self.increase / self.window)

    def on_overload(self, started: float, now: float) -> None:
        """A request that started at ``started`` failed at ``now`` with a sign of overload."""
        self._decrease(self.backoff, started, now)

    def _decrease(self, factor: float, started: float, now: float) -> None:
        if started < self._last_decrease:
            return  # in flight when we last cut: its trouble is already accounted for
        self.window = max(float(self.minimum), self.window * factor)
        self._last_decrease = now
        self.decreases += 1


class _Gate:
    """Admits requests while fewer than ``limit.limit`` are in flight; FIFO, cancel-safe."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self.in_flight = 0
        self.max_in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if not self._waiters and self.in_flight < self.limit.limit:
            self._admit()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # admitted, then cancelled before it could run: give the slot back
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_flight -= 1
        self.wake()

    def wake(self) -> None:
        """Admit waiters while there is room (call after the limit may have grown)."""
        while self._waiters and self.in_flight < self.limit.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._admit()
                waiter.set_result(None)

    def _admit(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)


# ------------------------------------------------------------------ results


class FetchedPage(msgspec.Struct, frozen=True, gc=False):
    """One answered request, body as it came off the wire."""

    url: str  # redacted: safe to quote
    status: int
    #: the body as it came off the wire, in the chunks it came in (not joined: a page's
    #: chunks are copied once, where the decoder reads them); compressed when
    #: content_encoding says so
    chunks: list[bytes]
    content_encoding: str | None
    content_type: str | None
    elapsed: float  # seconds of the successful attempt, request sent to body read
    server_date: float | None  # the response's Date header, unix seconds
    attempts: int = 1
    headers: Mapping[str, str] = {}  # every response header (none carries a secret)

    @property
    def body(self) -> bytes:
        """The whole body in one piece (a copy: for small documents)."""
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)

    def head(self, n: int) -> bytes:
        """The body's first ``n`` bytes (or fewer)."""
        out = b""
        for chunk in self.chunks:
            out += chunk[: n - len(out)]
            if len(out) >= n:
                break
        return out

    def tail(self, n: int) -> bytes:
        """The body's last ``n`` bytes (or fewer)."""
        out = b""
        for chunk in reversed(self.chunks):
            out = chunk[-(n - len(out)) :] + out
            if len(out) >= n:
                break
        return out


@dataclass
class HttpStats:
    """Counters for the run summary."""

    requests: int = 0  # attempts sent, retries included
    retries: int = 0
    bytes_received: int = 0  # body bytes off the wire (compressed when compressed)
    started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def bytes(self) -> int:
        """Alias of ``bytes_received`` (the run summary's name)."""
        return self.bytes_received

    def as_dict(self) -> dict[str, int]:
        return {"requests": self.requests, "retries": self.retries, "bytes_received": self.bytes_received}


class _TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Failure:
    """An attempt that may succeed when tried again."""

    reason: str  # "HTTP 503", "the server closed the connection", ...
    status: int | None = None
    retry_after: float | None = None  # seconds the server asked to wait
    exc: BaseException | None = None


# aiohttp raises these for trouble that may pass: refused, reset, DNS hiccups, stalls, cut bodies
_RETRYABLE_EXC: Final = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


def _describe(exc: BaseException) -> str:
    """A short, token-free reason for a transport failure."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return f"cannot connect to {exc.host}:{exc.port} ({reason})"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "timed out connecting"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return "the server stopped sending in the middle of a response"
    if isinstance(exc, TimeoutError):
        return "timed out waiting for the response"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the response body was cut short"
    text = _redact_text(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _looks_like_markup(head: bytes, content_encoding: str | None) -> bool:
    # a peek at the first bytes is cheap enough for the loop; the worker inflates the rest
    return peek(head, content_encoding, 64).lstrip()[:1] == b"<"


# ------------------------------------------------------------------ the client


class HttpClient:
    """One aiohttp session for a run: ``async with HttpClient(url, headers=auth) as http: ...``.

    ``base_url`` may carry a path (``http://host/jellyfin``); request paths are appended to it.
    ``headers`` usually carry the token: they are sent with every request and never logged.
    ``compress`` None asks for gzip only when the host is not loopback.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify_tls: bool = True,
        concurrency: int = 4,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        compress: bool | None = None,
        limit: AdaptiveLimit | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.display_url = redact_url(self.base_url)
        host = URL(self.base_url).host
        self.compress = (not is_loopback(host)) if compress is None else compress
        self.verify_tls = verify_tls
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.max_body = max_body
        self.limit = limit or AdaptiveLimit(concurrency)
        self.stats = HttpStats()
        self._rng = rng or random.Random()
        self._gate = _Gate(self.limit)
        self._headers = {
            "Accept": "application/json",  # Plex answers XML without it
            # aiohttp would otherwise advertise gzip/deflate by default even on loopback
            "Accept-Encoding": "gzip" if self.compress else "identity",
            "User-Agent": f"importer/{__version__}",
            **(headers or {}),
        }
        self._session: aiohttp.ClientSession | None = None

    @property
    def max_in_flight(self) -> int:
        """The most requests that were ever in flight together."""
        return self._gate.max_in_flight

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(
            # the gate does the limiting; headroom so a discovery call never waits for the pool
            limit=self.limit.maximum + 2,
            ssl=self.verify_tls,  # True: verify with the default context
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self.timeouts.client_timeout(),
            headers=self._headers,
            auto_decompress=False,
            raise_for_status=False,
            # pages are megabytes: read them in large chunks (64 KiB chunks cost the loop a
            # callback and a buffer each, and a fifth more CPU over a million episodes)
            read_bufsize=READ_BUFFER,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -------------------------------------------------------------- public calls

    async def get_bytes(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> bytes:
        """GET a small (discovery) document and return its decompressed body."""
        page = await self._get(path, params or {}, headers or {})
        # small documents: the one place bodies are inflated in the main process
        return bytes(inflate(page.body, page.content_encoding, what=page.url))

    async def post_bytes(
        self,
        path: str,
        body: object = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """POST ``body`` as JSON (nothing when None) and return the decompressed answer, for
        the few calls that are not listings (a login). Retried as a GET is: every POST made
        here may be sent twice without harm (a second login, a second PIN)."""
        data = None if body is None else msgspec.json.encode(body)
        sent = {**(headers or {}), **({"Content-Type": "application/json"} if data is not None else {})}
        page = await self._get(path, params or {}, sent, method="POST", data=data)
        return bytes(inflate(page.body, page.content_encoding, what=page.url))

    async def fetch(self, request: PageRequest) -> FetchedPage:
        """GET one page; the body stays compressed if it came so (decompress it in a worker)."""
        return await self._get(request.path, request.params, request.headers)

    async def websocket(
        self, path: str, params: Mapping[str, str] | None = None, *, heartbeat: float | None = None
    ) -> aiohttp.ClientWebSocketResponse:
        """Open a websocket below the base URL, with the client's headers (the token).
        ``heartbeat``: send a ping this often and drop the socket when no pong comes.

        Raises ``AuthError`` (401/403), ``NotFoundError`` (the server has no such feed:
        404, or another refusal of the upgrade), or ``TransportError`` (unreachable)."""
        if self._session is None:
            raise RuntimeError("HttpClient is not open: use 'async with HttpClient(...)'")
        url = self.url_for(path)
        shown = redact_url(URL(url).update_query(params)) if params else redact_url(url)
        self.stats.requests += 1
        try:
            return await self._session.ws_connect(
                url,
                params=params,
                heartbeat=heartbeat,
                # the socket lives on after the handshake: only the handshake is timed
                timeout=aiohttp.ClientWSTimeout(ws_close=10),
                max_msg_size=self.max_body,
            )
        except aiohttp.WSServerHandshakeError as exc:
            status = exc.status
            if status in (401, 403):
                raise AuthError(
                    f"{shown}: the server refused the token for its change feed (HTTP {status})",
                    url=shown,
                    status=status,
                ) from None
            raise NotFoundError(
                f"{shown}: the server does not offer this change feed (HTTP {status})",
                url=shown,
                status=status,
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise self._tls_error(exc, shown) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TransportError(f"{shown}: {_describe(exc)}", url=shown) from exc

    def url_for(self, path: str) -> str:
        """The full URL of ``path`` below the base URL."""
        return f"{self.base_url}/{path.lstrip('/')}"

    # -------------------------------------------------------------- the retry loop

    async def _get(
        self,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        *,
        method: str = "GET",
        data: bytes | None = None,
    ) -> FetchedPage:
        if self._session is None:
            raise RuntimeError("HttpClient is not open: use 'async with HttpClient(...)'")
        url = self.url_for(path)
        shown = redact_url(URL(url).update_query(params)) if params else redact_url(url)
        loop = asyncio.get_running_loop()
        first = loop.time()
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(self._session, url, params, headers, shown, attempt, method, data)
            if isinstance(outcome, FetchedPage):
                return outcome
            elapsed = loop.time() - first
            delay = self.retry.delay(attempt, outcome.retry_after, self._rng)
            if attempt >= self.retry.attempts or elapsed + delay > self.retry.max_elapsed:
                raise self._exhausted(
                    shown,
                    failure=outcome.reason,
                    status=outcome.status,
                    attempts=attempt,
                    elapsed=elapsed,
                    retry_after=outcome.retry_after,
                ) from outcome.exc
            self.stats.retries += 1
            log.info(
                "%s: %s; retry %s of %s in %.1f s",
                shown,
                outcome.reason,
                attempt,
                self.retry.attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        shown: str,
        attempt: int,
        method: str = "GET",
        data: bytes | None = None,
    ) -> FetchedPage | _Failure:
        """One try: the page, a failure worth another try, or an error that ends the request."""
        loop = asyncio.get_running_loop()
        await self._gate.acquire()
        started = loop.time()
        try:
            page = await self._once(
                session, url, params, headers, shown=shown, attempt=attempt, method=method, data=data
            )
        except _TooLarge:
            raise UnexpectedResponse(
                f"{shown}: the response is larger than {self.max_body // MiB} MiB; this is not "
                "a listing page (check the URL), or lower the page size",
                url=shown,
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise self._tls_error(exc, shown) from exc
        except _RETRYABLE_EXC as exc:
            self.limit.on_overload(started, loop.time())
            return _Failure(_describe(exc), exc=exc)
        except aiohttp.ClientError as exc:
            raise TransportError(f"{shown}: {_describe(exc)}: check the URL", url=shown) from exc
        finally:
            self._gate.release()
        status = page.status
        if not RetryPolicy.retries_status(status):
            self.limit.on_success(started, loop.time())
            if 200 <= status < 300:
                self._check_json(page)
                return page
            raise self._status_error(page)
        self.limit.on_overload(started, loop.time())
        retry_after = (
            parse_retry_after(page.headers.get("Retry-After"), page.server_date)
            if status in (429, 503)
            else None
        )
        return _Failure(f"HTTP {status}", status=status, retry_after=retry_after)

    async def _once(
        self,
        session: aiohttp.ClientSession,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        *,
        shown: str,
        attempt: int,
        method: str = "GET",
        data: bytes | None = None,
    ) -> FetchedPage:
        """One attempt: the page (its headers carry ``Retry-After``); aiohttp errors propagate."""
        loop = asyncio.get_running_loop()
        self.stats.requests += 1
        started = loop.time()
        # Redirects are not followed: a custom token header would follow them to another host.
        async with session.request(
            method, url, params=params, headers=headers, data=data, allow_redirects=False
        ) as resp:
            length = resp.content_length
            if length is not None and length > self.max_body:
                resp.close()
                raise _TooLarge
            # counted as it comes, so an endless (chunked) body cannot fill the memory
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_any():
                size += len(chunk)
                if size > self.max_body:
                    resp.close()
                    raise _TooLarge
                chunks.append(chunk)
            self.stats.bytes_received += size
            page = FetchedPage(
                url=shown,
                status=resp.status,
                chunks=chunks or [b""],
                content_encoding=resp.headers.get("Content-Encoding"),
                content_type=resp.headers.get("Content-Type"),
                elapsed=loop.time() - started,
                server_date=_parse_http_date(resp.headers.get("Date")),
                attempts=attempt,
                headers=resp.headers,
            )
            return page

    # -------------------------------------------------------------- error mapping

    def _check_json(self, page: FetchedPage) -> None:
        ctype = (page.content_type or "").lower()
        if "html" in ctype or "xml" in ctype or _looks_like_markup(page.head(256), page.content_encoding):
            raise UnexpectedResponse(
                f"{page.url}: expected JSON but got {ctype or 'markup'}; this looks like a login "
                "page or a proxy; check the URL",
                url=page.url,
                status=page.status,
            )

    def _status_error(self, page: FetchedPage) -> SourceError:
        status, shown = page.status, page.url
        if status in (401, 403):
            return AuthError(
                f"{shown}: the server refused the token (HTTP {status}): check --token-file / "
                "IMPORTER_TOKEN, and that this token may read the library",
                url=shown,
                status=status,
            )
        if status == 404:
            return NotFoundError(
                f"{shown}: not found (HTTP 404): check the URL (a reverse-proxy path such as "
                "/jellyfin belongs in it), --kind and --library",
                url=shown,
                status=status,
            )
        if 300 <= status < 400:
            return UnexpectedResponse(
                f"{shown}: the server redirects (HTTP {status}) elsewhere; use the final URL "
                "(for example https:// instead of http://) as the server URL",
                url=shown,
                status=status,
            )
        return UnexpectedResponse(
            f"{shown}: the server rejected the request (HTTP {status}); this server version may "
            "not support it: check --kind, or report it with the server's version",
            url=shown,
            status=status,
        )

    def _exhausted(
        self,
        shown: str,
        *,
        failure: str,
        status: int | None,
        attempts: int,
        elapsed: float,
        retry_after: float | None,
    ) -> SourceError:
        tried = f"{attempts} attempt{'s' if attempts > 1 else ''} over {elapsed:.0f} s"
        later = "try again later: the run resumes where it stopped"
        if status is not None:
            if retry_after is not None and retry_after > self.retry.max_elapsed - elapsed:
                why = f"the server asked to wait {retry_after:.0f} s (HTTP {status})"
            else:
                why = f"the server answered {failure} ({tried}); it may be busy or restarting"
            return ServerError(f"{shown}: {why}: {later}", url=shown, status=status)
        return TransportError(
            f"{shown}: {failure} ({tried}): check that the server is running and reachable at "
            f"this URL, or {later}",
            url=shown,
        )

    def _tls_error(self, exc: aiohttp.ClientSSLError, shown: str) -> TransportError:
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            reason = _redact_text(str(exc.certificate_error))
            return TransportError(
                f"{shown}: the server's TLS certificate could not be verified ({reason}); fix the "
                "certificate, or pass --insecure if you trust this server (self-signed certificate)",
                url=shown,
            )
        return TransportError(
            f"{shown}: the TLS handshake failed ({_describe(exc)}); check http:// vs https:// in the "
            "URL, or pass --insecure if the server uses a self-signed certificate",
            url=shown,
        )
