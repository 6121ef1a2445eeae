"""Deleting what a complete listing proves gone, behind the mass-delete guard.

A sweep only ever follows a listing that was verified complete (its distinct items equal
the server's counts before and after it). Even then a server can glitch (an unmounted
disk makes a library look empty), so a sweep that would delete more than 10% and more
than 50 rows of a library deletes nothing and stops the run instead, until the user
allows it (``--allow-mass-delete``) after looking at the list (``--dry-run``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from importer.store.listing import STREAM_TABLES, ListedItems
from importer.store.writer import Writer

MASS_DELETE_SHARE = 0.10
MASS_DELETE_ROWS = 50
#: children first: a deleted show's seasons and episodes go in the same sweep anyway
_ORDER = ("episodes", "seasons", "shows")


@dataclass
class SweepResult:
    #: per stream: (id, source_id, name) of the rows the server no longer lists
    gone: dict[str, list[tuple[int, str, str]]] = field(default_factory=dict)
    deleted: int = 0
    #: why nothing was deleted although rows are gone (the guard), else None
    held_back: str | None = None

    @property
    def gone_count(self) -> int:
        return sum(len(rows) for rows in self.gone.values())


def sweep(
    writer: Writer,
    library_id: int,
    listings: Mapping[str, ListedItems],
    *,
    allow_mass_delete: bool = False,
    dry_run: bool = False,
) -> SweepResult:
    """Delete the library's rows of each stream in ``listings`` (complete listings only)
    that the listing did not name, unless the guard or ``dry_run`` holds them back."""
    stored = {stream: writer.stored_count(library_id, stream) for stream in STREAM_TABLES}
    # A listing names stored rows only: as many as are stored means none is missing, and
    # the end of a full import need not scan a million ids to learn it.
    result = SweepResult(
        {
            stream: writer.unlisted(library_id, stream, listed) if listed.count != stored[stream] else []
            for stream, listed in listings.items()
        }
    )
    gone = result.gone_count
    if gone == 0:
        return result
    if dry_run:
        result.held_back = "dry run"
        return result
    total = sum(stored.values())
    if gone > MASS_DELETE_ROWS and gone > MASS_DELETE_SHARE * total and not allow_mass_delete:
        result.held_back = (
            f"the server no longer lists {gone:,} of the {total:,} items stored for this library "
            f"({_breakdown(result)}); nothing was deleted. If that is right, check the list with "
            "--dry-run, then run again with --allow-mass-delete"
        )
        return result
    for stream in _ORDER:
        rows = result.gone.get(stream)
        if rows:
            writer.delete_rows(stream, [row_id for row_id, _, _ in rows])
    result.deleted = gone
    return result


def _breakdown(result: SweepResult) -> str:
    return ", ".join(f"{len(rows):,} {stream}" for stream, rows in result.gone.items() if rows)
