"""The vocabulary: values that cross module and process boundaries, each with one name.

Nothing here does I/O or imports anything heavy: the worker processes, the sources and
the HTTP client all import it.

The server's clock has two names, used everywhere:

- ``server_clock``: the server's own time (its ``Date`` header) when a run started;
- ``watermark``: where the next incremental run starts listing changes, the server clock
  of the last done run minus an overlap (stored in ``runs.watermark``); a delta listing
  asks for the items changed since the watermark.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

import msgspec


class StreamKind(StrEnum):
    """One of a library's three listings; also the name of the table it fills."""

    SHOWS = "shows"
    SEASONS = "seasons"
    EPISODES = "episodes"


#: parents first: the order streams are listed and reported in
STREAMS: tuple[StreamKind, ...] = (StreamKind.SHOWS, StreamKind.SEASONS, StreamKind.EPISODES)

#: an item's type where credits, item_genres and images name it (``item_type``)
ItemType = Literal["show", "season", "episode"]
#: each item type's stream (and table), and each stream's item type
STREAM_OF: dict[ItemType, StreamKind] = {
    "show": StreamKind.SHOWS,
    "season": StreamKind.SEASONS,
    "episode": StreamKind.EPISODES,
}
ITEM_TYPE_OF: dict[StreamKind, ItemType] = {stream: item_type for item_type, stream in STREAM_OF.items()}


class RunMode(StrEnum):
    FULL = "full"  # every item listed; what a complete listing does not name is swept
    INCREMENTAL = "incremental"  # the items changed since the watermark, and count probes


class RunStatus(StrEnum):
    """How a library's run ended (``runs.status``), as the database records it."""

    RUNNING = "running"
    DONE = "done"
    INCOMPLETE = "incomplete"  # the listing could not be proven complete: nothing deleted
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # SIGINT/SIGTERM: resumable
    STOPPED = "stopped"  # the mass-delete guard, or a dry run, held deletions back
    #: reported, never stored: a --dry-run run that found rows to delete (stored as STOPPED)
    DRY_RUN = "dry-run"


#: the statuses after which a run is over for good: the next run starts a new one
ENDED: frozenset[RunStatus] = frozenset({RunStatus.DONE, RunStatus.INCOMPLETE, RunStatus.STOPPED})


class ListingKind(StrEnum):
    """What a page of a stream asks the server for."""

    FULL = "full"  # every field the rows need
    IDS = "ids"  # ids and etags only (Jellyfin/Emby): changed items are fetched by id
    DETAILS = "details"  # the items with these ids, every field (after an ids page)
    COUNT = "count"  # the count alone: a delta stream's probe


class ServerInfo(msgspec.Struct, frozen=True):
    kind: str  # "plex" | "jellyfin" | "emby"
    machine_id: str  # Plex machineIdentifier, Jellyfin/Emby server Id
    name: str
    version: str
    base_url: str  # as given by the user, without credentials


class LibraryInfo(msgspec.Struct, frozen=True):
    source_id: str  # Plex section key, Jellyfin library (CollectionFolder) ItemId
    title: str
    kind: str = "show"


class PageRequest(msgspec.Struct, frozen=True):
    """One GET: a path below the server's base URL, its query and extra headers."""

    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str] = {}


class StreamProgress(msgspec.Struct, kw_only=True):
    """What a run has committed of one stream's listing: stored in the run's row by every
    commit (with the rows it describes), mirrored in the cursor file after it, and read
    back to resume an interrupted run."""

    listing: int = 1  # which listing of the stream (a drifted listing is read again)
    kind: ListingKind = ListingKind.FULL
    total: int | None = None  # the server's count when the listing started
    #: half-open ranges of listing offsets whose rows are committed, sorted and merged
    committed: list[tuple[int, int]] = []
    leaf_total: int = 0  # Plex shows: the sum of their leafCount, for the completeness check

    def add(self, offset: int, count: int, total: int | None, leaf_total: int = 0) -> None:
        """Add a written page's range [offset, offset + count)."""
        if self.total is None and total is not None:
            self.total = total
        self.leaf_total += leaf_total
        if count > 0:
            self.committed = merge_ranges([*self.committed, (offset, offset + count)])

    def done(self) -> int:
        """How many items of the listing are committed."""
        return sum(end - start for start, end in self.committed)

    def gaps(self, total: int) -> list[tuple[int, int]]:
        """The ranges of [0, total) that no committed range covers."""
        gaps, at = [], 0
        for start, end in self.committed:
            if start > at:
                gaps.append((at, min(start, total)))
            at = max(at, end)
        if at < total:
            gaps.append((at, total))
        return [(a, b) for a, b in gaps if a < b]


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping and touching ranges merged."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


#: one library's committed progress, per stream
LibraryProgress = dict[StreamKind, StreamProgress]
