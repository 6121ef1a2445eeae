"""What a hydration run returns, and its one-line summary (text or JSON) for stdout."""

from __future__ import annotations

from typing import Any

import msgspec

from importer.results import format_bytes, format_seconds


class LibraryHydration(msgspec.Struct, kw_only=True):
    """One library's part of a run."""

    server: str  # the server's name
    kind: str  # plex | jellyfin | emby
    title: str
    shows: int = 0  # shows hydrated (credits, genres, images, ratings replaced; marked)
    episodes: int = 0  # episodes hydrated
    #: items asked for that the server no longer has: left unmarked (a later sync deletes them)
    missing: int = 0


class HydrateResult(msgspec.Struct, kw_only=True):
    """A hydration run: what it hydrated, what it wrote, what it cost."""

    libraries: list[LibraryHydration] = []
    requests: int = 0  # HTTP requests, retries and the identity check included
    bytes: int = 0  # HTTP body bytes received
    people: int = 0  # people rows inserted or changed
    people_pruned: int = 0  # people nobody credits any more, deleted
    credits: int = 0  # credits rows written
    genres: int = 0  # item_genres rows written
    images: int = 0  # images rows written
    seconds: float = 0.0
    exit_code: int = 0  # as the command's: hydrate ends 0 or raises

    @property
    def shows(self) -> int:
        return sum(lib.shows for lib in self.libraries)

    @property
    def episodes(self) -> int:
        return sum(lib.episodes for lib in self.libraries)

    @property
    def missing(self) -> int:
        return sum(lib.missing for lib in self.libraries)


def summary_dict(result: HydrateResult) -> dict[str, Any]:
    """The summary as plain data with stable keys (``--progress json``)."""
    return {
        "command": "hydrate",
        "libraries": [msgspec.structs.asdict(lib) for lib in result.libraries],
        "shows": result.shows,
        "episodes": result.episodes,
        "missing": result.missing,
        "people": result.people,
        "people_pruned": result.people_pruned,
        "credits": result.credits,
        "genres": result.genres,
        "images": result.images,
        "seconds": round(result.seconds, 3),
        "requests": result.requests,
        "bytes": result.bytes,
        "exit_code": result.exit_code,
    }


def _library_text(lib: LibraryHydration) -> str:
    text = f"{lib.title} {lib.shows:,} shows, {lib.episodes:,} episodes"
    return text + (f" ({lib.missing:,} no longer on the server)" if lib.missing else "")


def format_summary(result: HydrateResult, *, as_json: bool = False) -> str:
    """e.g. ``hydrated plex "My Server": TV Shows 100 shows, 0 episodes; 812 people,
    2,310 credits, 240 genres, 260 images in 1.2 s, 3 requests, 410 kB``."""
    if as_json:
        return msgspec.json.encode(summary_dict(result)).decode()
    servers: dict[str, list[LibraryHydration]] = {}
    for lib in result.libraries:
        servers.setdefault(f"{lib.kind} {msgspec.json.encode(lib.server).decode()}", []).append(lib)
    parts = [f"{name}: {'; '.join(map(_library_text, libs))}" for name, libs in servers.items()]
    what = " | ".join(parts) or "nothing to hydrate"
    pruned = f" ({result.people_pruned:,} pruned)" if result.people_pruned else ""
    return (
        f"hydrated {what}; {result.people:,} people{pruned}, {result.credits:,} credits, "
        f"{result.genres:,} genres, {result.images:,} images in {format_seconds(result.seconds)}, "
        f"{result.requests:,} request{'s' if result.requests != 1 else ''}, {format_bytes(result.bytes)}"
    )
