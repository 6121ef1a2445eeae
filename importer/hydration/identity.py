"""Reaching a database's server: an HTTP client with the kind's auth headers, and one
identity request that proves the server at the URL is the one the database holds (by its
id, not its address: a server moves, a proxy comes in front of it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from importer.errors import AuthError, ConfigError, DecodeError, NotFoundError, UnexpectedResponse
from importer.http import HttpClient, RetryPolicy, Timeouts, redact_url
from importer.hydration.kinds import Identity, Kind, kind_for
from importer.store.queries import Server

#: A Jellyfin server is "taking longer than usual" with People on 10.11 (~1.5 s an item,
#: 75 s for 50 items) before it sends a byte: more patience than a listing page needs.
TIMEOUTS = Timeouts(connect=10.0, sock_read=300.0, total=600.0)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    token: str
    concurrency: int = 1
    verify_tls: bool = True
    retry: RetryPolicy | None = None
    timeouts: Timeouts | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A server reached: which of the database's servers it is, how to talk to it."""

    server: Server
    kind: Kind
    http: HttpClient
    identity: Identity


def _client(kind: Kind, url: str, settings: ClientSettings) -> HttpClient:
    return HttpClient(
        url,
        headers=kind.auth_headers(settings.token),
        concurrency=settings.concurrency,
        verify_tls=settings.verify_tls,
        retry=settings.retry,
        timeouts=settings.timeouts or TIMEOUTS,
    )


async def _identity(kind: Kind, http: HttpClient) -> Identity:
    request = kind.identity_request()
    return kind.identity(await http.get_bytes(request.path, request.params, request.headers))


def _not_this_server(url: str, found: Identity, held: Sequence[Server]) -> ConfigError:
    holds = ", ".join(s.describe() for s in held)
    return ConfigError(
        f"the server at {redact_url(url)} is {found.kind} server id {found.machine_id}, but this "
        f"database holds {holds}: give the URL where that server is reached now, or another --db",
        found=found.machine_id,
        held=[s.machine_id for s in held],
    )


@asynccontextmanager
async def reach(url: str, candidates: Sequence[Server], settings: ClientSettings) -> AsyncIterator[Link]:
    """The server at ``url``, which must be one of ``candidates`` (the database's servers,
    of the kind asked for). One identity request per kind tried: one, unless the database
    holds servers of several kinds and ``--kind`` does not say which."""
    kinds = list(dict.fromkeys(s.kind for s in candidates))
    shown = redact_url(url)
    for i, name in enumerate(kinds):
        kind = kind_for(name, shown)
        http = _client(kind, url, settings)
        async with http:
            try:
                found = await _identity(kind, http)
            except (NotFoundError, AuthError, UnexpectedResponse, DecodeError):
                if i + 1 < len(kinds):
                    continue  # not this kind: the next one
                raise
            held = [s for s in candidates if s.kind == found.kind and s.machine_id == found.machine_id]
            if not held:
                raise _not_this_server(url, found, candidates)
            yield Link(held[0], kind, http, found)
            return
    raise ConfigError("no server to reach: check --kind")  # candidates was empty
