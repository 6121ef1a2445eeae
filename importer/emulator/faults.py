"""Fault injection: the emulated server misbehaves on demand, deterministically.

A :class:`FaultPlan` is a list of :class:`Fault` s and a seed. Set it as
``server.controls.faults`` (or post its JSON form to ``/_emulator/controls``, see
:meth:`FaultPlan.from_json`); the server's middleware asks :meth:`FaultPlan.choose` about
every request except ``/_emulator/*`` and delivers what it picks. Without a plan nothing
here runs.

Each fault counts the requests whose path it matches (1, 2, 3...); it fires on its n-th
such request when n is in ``requests`` (if given), a draw from ``(seed, fault, n)`` is
below ``rate`` (if given), and it has fired fewer than ``times`` (if given). The first
fault of the plan that fires wins. Numbers and draws depend on the arrival order only,
so a sequential client sees the same faults on every run.

Kinds, and what the client receives:

- ``status``: ``status`` (503) with a short text body and ``Retry-After: retry_after``
  when set (a number, or any string: an HTTP date, garbage); the server does not run.
- ``stall``: nothing for ``stall_s`` seconds, then the real answer; with ``mid_body`` the
  headers and half the body first, then the stall, then the rest. A stall ends early
  when the client goes away, so a hung request does not outlive its client.
- ``reset``: the TCP connection is aborted (RST) without a byte of response.
- ``truncate``: the real answer's headers with its full Content-Length, half the body,
  then the connection closes.
- ``malformed_json``: a 200 whose body is cut in the middle with garbage (NUL, an invalid
  UTF-8 byte) inserted.
- ``html``: a 200 ``text/html`` sign-in page, as a reverse proxy's SSO puts in front.
- ``wrong_types``: the real JSON with ``fields`` (default: ids, numbers, dates and media
  lists of both servers) of ``count`` items given the wrong type (a string as a list, a
  number as a string, ``IndexNumber`` as an object...).
- ``duplicate_ids``: the last ``count`` items of the page are replaced by copies of its
  first ones; with ``from_previous``, its first ``count`` items by the last ones of the
  page served before on the same path (the sizes stay right, items go missing).
- ``total_drift``: the total (Plex ``totalSize``, Jellyfin ``TotalRecordCount``) is off
  by ``drift``.
- ``gzip_bomb``: a 200 ``Content-Encoding: gzip`` body that inflates to ``size_bytes``
  (1 GiB + 1 MiB) of spaces, about 1/1000 of that on the wire.
- ``huge_body``: a 200 JSON body of ``size_bytes`` (100 MiB), spaces then ``{}``, streamed.

Rewriting faults (``malformed_json``, ``wrong_types``, ``duplicate_ids``, ``total_drift``)
apply to 200 answers only, the JSON ones to JSON answers only (Plex: ``Accept:
application/json``); where one cannot apply, the answer is left alone and the fault is not
counted as fired.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import http
import random
import re
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import KW_ONLY, dataclass, fields
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_request import BaseRequest

from importer.emulator import fault_bodies as bodies

KINDS = (
    "status", "stall", "reset", "truncate", "malformed_json", "html",
    "wrong_types", "duplicate_ids", "total_drift", "gzip_bomb", "huge_body",
)  # fmt: skip
#: kinds that answer in the server's place: the handler never runs
_REPLACING = frozenset({"status", "reset", "html", "gzip_bomb", "huge_body"})
_DEFAULT_SIZE = {"gzip_bomb": (1 << 30) + (1 << 20), "huge_body": 100 << 20}


@dataclass(frozen=True, slots=True)
class Fault:
    """One way to misbehave, and on which requests (see the module's docstring)."""

    kind: str
    _: KW_ONLY
    rate: float | None = None  # fire on this fraction of matching requests (seeded draw)
    requests: Collection[int] | None = None  # ...or on these (1 = first matching request)
    path: str | None = None  # regex searched in the path (no base path), e.g. "/all"
    times: int | None = None  # fire at most this many times
    status: int = 503
    retry_after: float | str | None = None
    stall_s: float = 30.0
    mid_body: bool = False
    count: int = 1  # wrong_types: items spoiled; duplicate_ids: items repeated
    fields: tuple[str, ...] | None = None  # wrong_types: which (default: DEFAULT_WRONG_FIELDS)
    from_previous: bool = False  # duplicate_ids: repeat the previous page's items
    drift: int = 7  # total_drift: added to the total
    size_bytes: int | None = None  # gzip_bomb: inflated size; huge_body: body size

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.rate is not None and not 0 <= self.rate <= 1:
            raise ValueError(f"fault rate must be within [0, 1], not {self.rate!r}")
        if self.requests is not None and not isinstance(self.requests, range):
            object.__setattr__(self, "requests", frozenset(int(n) for n in self.requests))
        if self.path is not None:
            re.compile(self.path)  # fail here, not on the first request
        if self.fields is not None:
            object.__setattr__(self, "fields", tuple(self.fields))
        if not 100 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP status, not {self.status!r}")
        for name in ("times", "stall_s", "count", "size_bytes"):
            value = getattr(self, name)
            if value is not None and value < (1 if name in ("count", "size_bytes") else 0):
                raise ValueError(f"fault {name} out of range: {value!r}")

    @property
    def size(self) -> int:
        return self.size_bytes if self.size_bytes is not None else _DEFAULT_SIZE.get(self.kind, 0)

    # ------------------------------------------------------------------ JSON form
    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """``{"kind": "status", "status": 503, "retry_after": 1, "rate": 0.2, "path": "/all"}``;
        ``requests`` is a list of numbers or ``{"start": 1, "stop": 10, "step": 1}`` (a range)."""
        if not isinstance(data, dict) or "kind" not in data:
            raise ValueError(f"a fault is an object with a kind, not {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        options = dict(data)
        reqs = options.get("requests")
        if isinstance(reqs, dict):
            options["requests"] = range(int(reqs["start"]), int(reqs["stop"]), int(reqs.get("step", 1)))
        try:
            return cls(**options)
        except (TypeError, KeyError) as exc:
            raise ValueError(f"bad fault {data!r}: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "kind" or value == f.default:
                continue
            if isinstance(value, range):
                value = {"start": value.start, "stop": value.stop, "step": value.step}
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class Injection:
    """A fault picked for one request."""

    fault: Fault
    index: int  # the fault's position in the plan
    ordinal: int  # the request's number among those the fault matched

    def rng(self, seed: int) -> random.Random:
        return random.Random(f"{seed}:{self.index}:{self.ordinal}")


class FaultPlan:
    """Which fault, if any, each request gets; deterministic for a seed (see the module)."""

    def __init__(self, faults: Iterable[Fault], seed: int = 0) -> None:
        self.faults = tuple(faults)
        self.seed = seed
        self._paths = [re.compile(f.path) if f.path is not None else None for f in self.faults]
        self._lock = threading.Lock()  # the server's loop counts, a test thread reads
        self._seen = [0] * len(self.faults)
        self._fired = [0] * len(self.faults)
        self._previous: dict[tuple[int, str], list[Any]] = {}
        #: whether the server must show every answer to :meth:`observe`
        self.observes = any(f.kind == "duplicate_ids" and f.from_previous for f in self.faults)

    def choose(self, path: str) -> Injection | None:
        with self._lock:
            chosen: Injection | None = None
            for i, fault in enumerate(self.faults):
                if not self._matches(i, path):
                    continue
                self._seen[i] += 1
                if chosen is None and self._fires(i, self._seen[i]):
                    self._fired[i] += 1
                    chosen = Injection(fault, i, self._seen[i])
            return chosen

    def refund(self, injection: Injection) -> None:
        """The fault could not apply to the answer: it did not fire."""
        with self._lock:
            self._fired[injection.index] -= 1

    def seen(self) -> list[int]:
        """Per fault, how many requests matched its path."""
        with self._lock:
            return list(self._seen)

    def fired(self) -> list[int]:
        """Per fault, how many times it was delivered."""
        with self._lock:
            return list(self._fired)

    def observe(self, path: str, response: web.StreamResponse) -> None:
        """Keep the tail of a page for the ``duplicate_ids`` faults that repeat it later."""
        for i, fault in enumerate(self.faults):
            if fault.kind == "duplicate_ids" and fault.from_previous and self._matches(i, path):
                doc = bodies.decode(response)
                items = bodies.listing(doc)[0] if doc is not None else None
                if items:
                    with self._lock:
                        self._previous[i, path] = copy.deepcopy(items[-fault.count :])

    def previous(self, injection: Injection, path: str) -> list[Any]:
        with self._lock:
            return self._previous.get((injection.index, path), [])

    def _matches(self, i: int, path: str) -> bool:
        pattern = self._paths[i]
        return pattern is None or pattern.search(path) is not None

    def _fires(self, i: int, n: int) -> bool:
        fault = self.faults[i]
        if fault.times is not None and self._fired[i] >= fault.times:
            return False
        if fault.requests is not None and n not in fault.requests:
            return False
        return fault.rate is None or self._draw(i, n) < fault.rate

    def _draw(self, i: int, n: int) -> float:
        # a hash, not a shared Random: the draw for request n must not depend on the others
        digest = hashlib.blake2b(f"{self.seed}:{i}:{n}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    # ------------------------------------------------------------------ JSON form
    @classmethod
    def from_json(cls, faults: Any, seed: Any = 0) -> FaultPlan:
        if not isinstance(faults, list):
            raise ValueError(f"faults must be a list of faults, not {faults!r}")
        if not isinstance(seed, int):
            raise ValueError(f"fault_seed must be an integer, not {seed!r}")
        return cls([Fault.from_json(f) for f in faults], seed)

    def to_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.faults]


# ---------------------------------------------------------------------- on the wire

Script = Callable[["Scripted", BaseRequest], Awaitable[None]]


class Scripted(web.StreamResponse):
    """An answer that ``script`` writes when aiohttp sends it (after the middleware has set
    its headers). A script that ends by raising ConnectionError makes aiohttp drop the
    connection quietly, as when a client goes away."""

    def __init__(
        self,
        script: Script,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        length: int | None = None,
        send_headers: bool = True,
        logged_status: int | None = None,
    ) -> None:
        super().__init__(status=status, headers=headers)
        if length is not None:
            self.content_length = length
        self._script = script
        self._send_headers = send_headers
        self.logged_status = status if logged_status is None else logged_status
        self.logged_bytes = length or 0

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return await super().prepare(request)
        writer = await super().prepare(request) if self._send_headers else None
        await self._script(self, request)
        return writer


async def replace(injection: Injection, request: web.Request) -> web.StreamResponse | None:
    """The answer a fault gives in the server's place, or None to let the server answer."""
    fault = injection.fault
    if fault.kind == "stall" and not fault.mid_body:
        await _stall(request, fault.stall_s)
        return None
    if fault.kind not in _REPLACING:
        return None
    if fault.kind == "status":
        reason = _reason(fault.status)
        headers = {} if fault.retry_after is None else {"Retry-After": _retry_after(fault.retry_after)}
        return web.Response(status=fault.status, text=f"{fault.status} {reason}", headers=headers)
    if fault.kind == "html":
        return web.Response(text=bodies.LOGIN_PAGE, content_type="text/html")
    if fault.kind == "gzip_bomb":
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        return web.Response(body=bodies.gzip_bomb(fault.size), headers=headers)
    if fault.kind == "huge_body":
        return Scripted(_pad(fault.size), headers={"Content-Type": "application/json"}, length=fault.size)
    return Scripted(_reset, send_headers=False, logged_status=0)


def rewrite(
    plan: FaultPlan, injection: Injection, path: str, response: web.StreamResponse
) -> web.StreamResponse | None:
    """What a fault makes of the server's answer; None if it cannot apply to this answer."""
    fault = injection.fault
    if fault.kind in _REPLACING or (fault.kind == "stall" and not fault.mid_body):
        return response
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    body = response.body
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _FRAMING}
    if fault.kind in ("truncate", "stall"):
        body = body or b"{}"
        cut = len(body) // 2
        script = _truncate(body[:cut]) if fault.kind == "truncate" else _stall_mid(body, cut, fault.stall_s)
        return Scripted(script, status=response.status, headers=headers, length=len(body))
    if response.status != 200:
        return None
    if fault.kind == "malformed_json":
        cut = len(body) // 2
        spoiled = body[:cut] + b'\x00\xff}{,"' + body[cut + cut // 2 :]
        return web.Response(body=spoiled, status=200, headers=headers)
    doc = bodies.decode(response)
    if doc is None:
        return None
    rng = injection.rng(plan.seed)
    if fault.kind == "wrong_types":
        done = bodies.wrong_types(doc, fault.fields or bodies.DEFAULT_WRONG_FIELDS, fault.count, rng)
    elif fault.kind == "duplicate_ids":
        previous = plan.previous(injection, path) if fault.from_previous else None
        done = bodies.duplicate(doc, fault.count, previous)
    else:
        total = bodies.drift(doc, fault.drift)
        done = total is not None
        if total is not None and "X-Plex-Container-Total-Size" in headers:  # Plex says it twice
            headers["X-Plex-Container-Total-Size"] = str(total)
    if not done:
        return None
    return web.Response(body=bodies.encode(doc), status=200, headers=headers)


_FRAMING = frozenset({"content-length", "content-encoding", "transfer-encoding"})


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _retry_after(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else str(value)


async def _stall(request: BaseRequest, seconds: float) -> None:
    """Sleep, but stop when the client has gone: a stall longer than the client's timeout
    must not keep the server (and its shutdown) busy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(left, 0.05))


async def _reset(response: Scripted, request: BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise ConnectionResetError("emulated connection reset")


def _truncate(part: bytes) -> Script:
    async def script(response: Scripted, request: BaseRequest) -> None:
        await response.write(part)
        if request.transport is not None:
            request.transport.close()  # after the buffered part: the client sees it, then EOF
        raise ConnectionResetError("emulated truncated body")

    return script


def _stall_mid(body: bytes, cut: int, seconds: float) -> Script:
    async def script(response: Scripted, request: BaseRequest) -> None:
        await response.write(body[:cut])
        await _stall(request, seconds)
        await response.write(body[cut:])

    return script


def _pad(size: int) -> Script:
    chunk = b" " * min(size, 1 << 20)

    async def script(response: Scripted, request: BaseRequest) -> None:
        left = size - 2
        while left > 0:
            await response.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        await response.write(b"{}")

    return script


__all__ = ["KINDS", "Fault", "FaultPlan", "Injection", "Scripted", "replace", "rewrite"]
