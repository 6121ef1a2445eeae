"""What ``importer watch`` reports: typed events, one line of text or one JSON object each.

A host app reads :class:`Batch` events to refresh its views: each names the items one
batch added, updated and removed in one library, by local id, source id and type.
"""

from __future__ import annotations

import msgspec

from importer.watching.apply import ChangedItem


class WatchEvent(msgspec.Struct, frozen=True, tag_field="event", kw_only=True):
    """Base of every event; ``server`` is the server's name."""

    server: str

    def line(self) -> str:
        raise NotImplementedError

    def json(self) -> str:
        return msgspec.json.encode(self).decode()


class Ready(WatchEvent, frozen=True, tag="ready"):
    """The database is up to date and the watch follows the server (feed or polling)."""

    feed: bool  # False: no usable feed, an incremental sync every ``poll_minutes``
    poll_minutes: float

    def line(self) -> str:
        if self.feed:
            return f"watching {self.server}"
        return f"watching {self.server} (polling every {self.poll_minutes:g} min)"


class Batch(WatchEvent, frozen=True, tag="batch"):
    """One applied batch in one library."""

    library: str
    added: list[ChangedItem]
    updated: list[ChangedItem]
    removed: list[ChangedItem]
    requests: int

    def line(self) -> str:
        return (
            f"{self.server}: {self.library}: {len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.removed)} removed"
        )


class CaughtUp(WatchEvent, frozen=True, tag="caught_up"):
    """A catch-up sync ended (at the start, after a reconnect, a poll, a verification)."""

    why: str
    exit_code: int  # as ``importer sync`` would exit: 0 done, 3 mass-delete stop, 75 incomplete
    written: int
    deleted: int
    requests: int
    seconds: float

    def line(self) -> str:
        ended = "" if self.exit_code == 0 else f", exit {self.exit_code}"
        return (
            f"{self.server}: caught up ({self.why}): {self.written:,} written, {self.deleted:,} deleted, "
            f"{self.requests} requests in {self.seconds:.1f} s{ended}"
        )


class Notice(WatchEvent, frozen=True, tag="notice"):
    """Something the user should know: a feed lost or refused, a library that disappeared,
    a mass-delete stop (``exit_code`` 3), a catch-up that will be retried."""

    message: str
    exit_code: int | None = None

    def line(self) -> str:
        return f"{self.server}: {self.message}"


AnyEvent = Ready | Batch | CaughtUp | Notice
