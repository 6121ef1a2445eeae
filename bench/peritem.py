"""The per-item client ``importer hydrate`` is held against: what a naive app does to show
a show's cast, crew and genres, one request per show, one after the other.

* Plex: ``GET /library/metadata/{ratingKey}`` (the full tags: ``Role``, ``Director``,
  ``Writer``, ``Genre``, ``Rating``);
* Jellyfin/Emby: ``GET /Items?Ids={Id}&Fields=People,Genres,Studios`` (on 10.10/10.11 the
  server runs one ``GetPeople`` query for the item).

The bench runs it on a sample of the shows (``bench.runner`` variant ``per-item``, in a
fresh interpreter) to check that the time it computes for the whole library, requests ×
(latency + the server's per-item cost), is what the server really takes per request.
Like the peers in bench/baselines.py it is aiohttp, and it stores nothing: the time is
the server's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

#: what a naive Jellyfin client asks for with each item (hydrate asks for the same, 50 at once)
JELLYFIN_PARAMS = {
    "Fields": "People,Genres,Studios",
    "EnableImages": "true",
    "EnableImageTypes": "Primary,Backdrop,Banner,Logo,Thumb",
    "EnableUserData": "false",
}


@dataclass(frozen=True)
class PerItemRun:
    seconds: float  # wall time of the whole sample, first request to last answer
    shows: int  # shows asked for, one request each
    seconds_per_request: float  # seconds / shows
    slowest_request_s: float
    people_seen: int  # credits the answers carried (they must carry some: the responses are real)

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def _request(kind: str, url: str, show_id: str) -> tuple[str, dict[str, str]]:
    if kind == "plex":
        return f"{url}/library/metadata/{show_id}", {}
    return f"{url}/Items", {"Ids": show_id, **JELLYFIN_PARAMS}


def _people(kind: str, body: Any) -> int:
    if kind == "plex":
        items = body.get("MediaContainer", {}).get("Metadata", [])
        return sum(len(m.get(tag, [])) for m in items for tag in ("Role", "Director", "Writer"))
    return sum(len(i.get("People") or []) for i in body.get("Items", []))


async def per_item(kind: str, url: str, headers: dict[str, str], show_ids: Sequence[str]) -> PerItemRun:
    """One request per show, in series, each waited for before the next."""
    people = 0
    slowest = 0.0
    async with aiohttp.ClientSession(headers=headers) as session:
        started = time.perf_counter()
        for show_id in show_ids:
            asked = time.perf_counter()
            target, params = _request(kind, url, show_id)
            async with session.get(target, params=params) as response:
                response.raise_for_status()
                people += _people(kind, json.loads(await response.read()))
            slowest = max(slowest, time.perf_counter() - asked)
        seconds = time.perf_counter() - started
    n = len(show_ids)
    return PerItemRun(seconds, n, seconds / n if n else 0.0, slowest, people)


def run(kind: str, url: str, headers: dict[str, str], show_ids: Sequence[str]) -> PerItemRun:
    return asyncio.run(per_item(kind, url, headers, show_ids))
