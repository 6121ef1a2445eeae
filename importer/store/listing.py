"""The items a listing has seen, and what the library holds that it has not.

A sweep deletes rows only after a complete listing: the rows of a library that the
listing did not name are gone from the server. Listings are counted over local ids,
which the writer assigns densely, so a bitmap holds a million episodes in 125 kB and
commits with the rows it describes (a resumed run goes on counting where it stopped).
"""

from __future__ import annotations

import array
from collections.abc import Sequence

import apsw

from importer.model import StreamKind


class ListedItems:
    """The distinct local ids a listing has seen."""

    def __init__(self, bitmap: bytes = b"") -> None:
        self._bits = bytearray(bitmap)
        self.count = int.from_bytes(self._bits, "little").bit_count()
        self.dirty = False

    def _add_span(self, first: int, end: int) -> None:
        """Add the ids first ... end - 1 (a page of new rows): whole bytes at once, not a
        bit at a time."""
        if len(self._bits) < end // 8 + 1:
            self._bits.extend(bytes(end // 8 + 1 - len(self._bits) + 4096))
        lo, hi = (first + 7) // 8, end // 8  # the whole bytes inside the range
        if lo >= hi:
            self._add_each(range(first, end))
            return
        self._add_each(range(first, lo * 8))
        self._add_each(range(hi * 8, end))
        before = int.from_bytes(self._bits[lo:hi], "little").bit_count()
        self._bits[lo:hi] = b"\xff" * (hi - lo)
        self.count += (hi - lo) * 8 - before
        self.dirty = True

    def add(self, item_ids: Sequence[int]) -> None:
        if isinstance(item_ids, range) and item_ids.step == 1:
            if item_ids:
                self._add_span(item_ids.start, item_ids.stop)
            return
        self._add_each(item_ids)

    def _add_each(self, item_ids: Sequence[int]) -> None:
        bits = self._bits
        if item_ids and max(item_ids) // 8 >= len(bits):
            bits.extend(bytes(max(item_ids) // 8 + 1 - len(bits) + 4096))
        new = 0
        for i in item_ids:
            byte, mask = i >> 3, 1 << (i & 7)
            if not bits[byte] & mask:
                bits[byte] |= mask
                new += 1
        self.count += new
        self.dirty = self.dirty or bool(item_ids)

    def __contains__(self, item_id: int) -> bool:
        byte = item_id >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (item_id & 7)))

    def bitmap(self) -> bytes:
        self.dirty = False
        return bytes(self._bits)


_NAMES = {
    StreamKind.SHOWS: "SELECT id, source_id, title FROM shows WHERE id IN carray(?)",
    StreamKind.SEASONS: "SELECT se.id, se.source_id, coalesce(sh.title, se.show_source_id) || ' / ' || "
    "coalesce(se.title, 'Season ' || se.season_number) FROM seasons se "
    "LEFT JOIN shows sh ON sh.id = se.show_id WHERE se.id IN carray(?)",
    StreamKind.EPISODES: "SELECT e.id, e.source_id, coalesce(sh.title, e.show_source_id) || ' S' || "
    "coalesce(e.season_number, '?') || 'E' || coalesce(e.episode_number, '?') || ' ' || "
    "coalesce(e.title, '') FROM episodes e LEFT JOIN shows sh ON sh.id = e.show_id WHERE e.id IN carray(?)",
}


def unlisted(
    conn: apsw.Connection, stream: StreamKind, library_id: int, listed: ListedItems
) -> list[tuple[int, str, str]]:
    """(id, source_id, a name for people) of the library's rows of ``stream`` that
    ``listed`` lacks, in id order (the stream's name is its table's)."""
    rows = conn.execute(f"SELECT id FROM {stream} WHERE library_id = ?", (library_id,))
    ids = [row_id for (row_id,) in rows if row_id not in listed]
    if not ids:
        return []
    named = conn.execute(_NAMES[stream], (int_array(ids),))
    return sorted((row_id, source_id, name or source_id) for row_id, source_id, name in named)


def int_array(ids: list[int]) -> apsw.CArrayBinding:
    """Bind many integer ids in one parameter (``IN carray(?)``): apsw wants an int64 array."""
    return apsw.carray(array.array("q", ids))
