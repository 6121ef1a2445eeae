"""The peers the importer is held against, run against the same emulated server.

* ``seed-original``: the seed's algorithm as it was (``../shared/seeds/000_…txt``):
  ``get_shows`` lists the shows and then asks each show for its seasons, one after the
  other; the sync then walks show → season → episode one request at a time, asking for
  each show's seasons a second time (the redundant call), and writes one row per
  transaction: 1 + 2 × shows + seasons requests, all in series.
* ``seed-optimised``: the seed's own fix: the same ``get_shows``, then 5 shows at a
  time, each show's seasons' episodes fetched in parallel, no second seasons call, and
  still one row per transaction (its "batch" save inserts item by item).
* ``plexapi``: what a Python user would write: python-plexapi's ``searchEpisodes()``
  into sqlite3, one transaction.

The seed is Rust (reqwest, SeaORM over sqlx): here aiohttp, and sqlite3 with sqlx's
defaults (WAL, ``synchronous=FULL``), each statement its own transaction.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

SCHEMA = """
CREATE TABLE IF NOT EXISTS shows (id TEXT PRIMARY KEY, title TEXT, year INTEGER, summary TEXT);
CREATE TABLE IF NOT EXISTS seasons (id TEXT PRIMARY KEY, show_id TEXT, number INTEGER, title TEXT);
CREATE TABLE IF NOT EXISTS episodes (
    id TEXT PRIMARY KEY, show_id TEXT, season_id TEXT, season_number INTEGER, number INTEGER,
    title TEXT, summary TEXT, air_date TEXT, duration_ms INTEGER
);
"""
Row = tuple[Any, ...]


class Store:
    """sqlite3 with sqlx's defaults; every save is its own transaction."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.transactions = 0

    def save(self, table: str, row: Row) -> None:
        self.db.execute(f"INSERT OR REPLACE INTO {table} VALUES ({', '.join('?' * len(row))})", row)
        self.transactions += 1

    def episodes(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM episodes").fetchone()[0])


@dataclass
class Show:
    row: Row
    seasons: list[Row] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.row[0])


class Backend(Protocol):
    async def libraries(self) -> list[str]: ...
    async def shows(self, library: str) -> list[Show]: ...
    async def seasons(self, show: Show) -> list[Row]: ...
    async def episodes(self, show: Show, season: Row) -> list[Row]: ...


class _Http:
    def __init__(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
        self.session, self.url, self.headers = session, url, headers

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        async with self.session.get(self.url + path, params=params, headers=self.headers) as response:
            response.raise_for_status()
            return json.loads(await response.read())


class PlexBackend(_Http):
    async def libraries(self) -> list[str]:
        sections = (await self.get("/library/sections"))["MediaContainer"]["Directory"]
        return [s["key"] for s in sections if s["type"] == "show"]

    async def shows(self, library: str) -> list[Show]:
        shows: list[Show] = []
        while True:  # newer servers refuse an unpaged listing
            paging = {"type": "2", "X-Plex-Container-Start": str(len(shows)), "X-Plex-Container-Size": "1000"}
            page = (await self.get(f"/library/sections/{library}/all", paging))["MediaContainer"]
            items = page.get("Metadata", [])
            shows += [Show((m["ratingKey"], m["title"], m.get("year"), m.get("summary"))) for m in items]
            if not items or len(shows) >= page["totalSize"]:
                return shows

    async def seasons(self, show: Show) -> list[Row]:
        page = (await self.get(f"/library/metadata/{show.id}/children"))["MediaContainer"]
        return [
            (m["ratingKey"], show.id, m.get("index"), m.get("title"))
            for m in page.get("Metadata", [])
            if m["type"] == "season"
        ]

    async def episodes(self, show: Show, season: Row) -> list[Row]:
        page = (await self.get(f"/library/metadata/{season[0]}/children"))["MediaContainer"]
        return [
            (
                m["ratingKey"], show.id, season[0], m.get("parentIndex"), m.get("index"), m.get("title"),
                m.get("summary"), m.get("originallyAvailableAt"), m.get("duration"),
            )
            for m in page.get("Metadata", [])
        ]  # fmt: skip


class JellyfinBackend(_Http):
    async def libraries(self) -> list[str]:
        folders = await self.get("/Library/VirtualFolders")
        return [f["ItemId"] for f in folders if f.get("CollectionType") == "tvshows"]

    async def shows(self, library: str) -> list[Show]:
        query = {"ParentId": library, "IncludeItemTypes": "Series", "Recursive": "true", "Fields": "Overview"}
        items = (await self.get("/Items", query))["Items"]
        return [Show((i["Id"], i.get("Name"), i.get("ProductionYear"), i.get("Overview"))) for i in items]

    async def seasons(self, show: Show) -> list[Row]:
        items = (await self.get(f"/Shows/{show.id}/Seasons"))["Items"]
        return [(i["Id"], show.id, i.get("IndexNumber"), i.get("Name")) for i in items]

    async def episodes(self, show: Show, season: Row) -> list[Row]:
        query = {"seasonId": season[0], "Fields": "Overview"}
        items = (await self.get(f"/Shows/{show.id}/Episodes", query))["Items"]
        return [
            (
                i["Id"], show.id, season[0], i.get("ParentIndexNumber"), i.get("IndexNumber"), i.get("Name"),
                i.get("Overview"), (i.get("PremiereDate") or "")[:10] or None,
                i["RunTimeTicks"] // 10_000 if i.get("RunTimeTicks") else None,
            )
            for i in items
            if i.get("LocationType") != "Virtual"
        ]  # fmt: skip


async def _get_shows(backend: Backend, library: str) -> list[Show]:
    """The seed's ``get_shows``: the shows, then each show's seasons, one after the other."""
    shows = await backend.shows(library)
    for show in shows:
        show.seasons = await backend.seasons(show)
    return shows


async def seed_original(backend: Backend, store: Store) -> None:
    for library in await backend.libraries():
        for show in await _get_shows(backend, library):
            store.save("shows", show.row)
            for season in await backend.seasons(show):  # asked again: the redundant call
                store.save("seasons", season)
                for episode in await backend.episodes(show, season):
                    store.save("episodes", episode)


CONCURRENT_SHOWS = 5


async def seed_optimised(backend: Backend, store: Store) -> None:
    limit = asyncio.Semaphore(CONCURRENT_SHOWS)  # for_each_concurrent(CONCURRENT_SHOWS)

    async def sync_show(show: Show) -> None:
        async with limit:
            store.save("shows", show.row)
            pages = await asyncio.gather(*(backend.episodes(show, season) for season in show.seasons))
            for season, episodes in zip(show.seasons, pages, strict=True):
                store.save("seasons", season)
                for episode in episodes:  # save_media_items_batch: one insert per item
                    store.save("episodes", episode)

    for library in await backend.libraries():
        await asyncio.gather(*(sync_show(show) for show in await _get_shows(backend, library)))


SEED_ALGORITHMS: dict[str, Callable[[Backend, Store], Awaitable[None]]] = {
    "seed-original": seed_original,
    "seed-optimised": seed_optimised,
}


async def run_seed(name: str, kind: str, url: str, headers: dict[str, str], db: str) -> Store:
    store = Store(db)
    async with aiohttp.ClientSession() as session:
        backend: Backend = (PlexBackend if kind == "plex" else JellyfinBackend)(session, url, headers)
        await SEED_ALGORITHMS[name](backend, store)
    return store


def plexapi_script(url: str, token: str, db: str) -> Store:
    """What a Python user would write with python-plexapi."""
    from plexapi.server import PlexServer

    store = Store(db)
    plex = PlexServer(url, token)  # type: ignore[no-untyped-call]
    with store.db:  # one transaction
        store.db.execute("BEGIN")
        for section in plex.library.sections():
            if section.type == "show":
                store.db.executemany(
                    "INSERT OR REPLACE INTO episodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        (
                            e.ratingKey, e.grandparentRatingKey, e.parentRatingKey, e.parentIndex, e.index,
                            e.title, e.summary,
                            e.originallyAvailableAt and e.originallyAvailableAt.strftime("%Y-%m-%d"),
                            e.duration,
                        )
                        for e in section.searchEpisodes()
                    ),
                )  # fmt: skip
    store.transactions = 1
    return store
