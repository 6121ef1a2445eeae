"""What a change feed says, as typed values, and the changes waiting to be applied.

A feed names items, not rows: a Plex timeline entry gives an item's ratingKey, its type
and its section; a Jellyfin ``LibraryChanged`` gives bare ids. Whatever a notification
says about an item, the applier fetches it by id and believes the server's answer, so
the order, repeats and lateness of notifications do not matter: only *which* items to
look at does. :class:`Pending` keeps that set, one entry per item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import msgspec

from importer.model import StreamKind


class Action(StrEnum):
    """What a notification says happened to an item."""

    CHANGED = "changed"  # added or updated: fetch it
    REMOVED = "removed"  # deleted on the server


class ItemChange(msgspec.Struct, frozen=True):
    """One item named by a notification."""

    source_id: str
    action: Action
    #: the item's stream, when the notification says (Plex: its type)
    stream: StreamKind | None = None
    #: the item's library, when the notification says (Plex: its section)
    library_source_id: str | None = None


@dataclass
class Pending:
    """The items named since the last batch, at most one entry each: a later notice about
    an item replaces an earlier one (a removal after a change stays a removal, and a change
    after a removal is looked up again)."""

    items: dict[str, ItemChange] = field(default_factory=dict)

    def add(self, changes: list[ItemChange]) -> None:
        for change in changes:
            known = self.items.get(change.source_id)
            if known is not None and change.stream is None and known.stream is not None:
                # keep what an earlier notice said of its type and library
                change = msgspec.structs.replace(
                    change, stream=known.stream, library_source_id=known.library_source_id
                )
            self.items.pop(change.source_id, None)  # re-inserted last: newest at the end
            self.items[change.source_id] = change

    def take(self, limit: int) -> list[ItemChange]:
        """Up to ``limit`` items, oldest first, no longer pending."""
        taken: list[ItemChange] = []
        for source_id in list(self.items)[:limit]:
            taken.append(self.items.pop(source_id))
        return taken

    def clear(self) -> None:
        self.items.clear()

    def __len__(self) -> int:
        return len(self.items)
