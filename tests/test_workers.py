"""Pieces of the worker processes that can be checked without starting them."""

from __future__ import annotations

import gzip

import pytest

from importer.errors import UnexpectedResponse
from importer.store.listing import ListedItems
from importer.workers import decompress, merge_ranges


def test_listed_items_count_distinct_ids_and_survive_a_round_trip() -> None:
    items = ListedItems()
    items.add([1, 2, 3, 1_000_000])
    items.add([2, 3, 4])  # a page listed twice after a drift: duplicates do not count
    assert items.count == 5 and items.dirty
    again = ListedItems(items.bitmap())
    assert again.count == 5 and not items.dirty
    again.add([5, 1_000_000])
    assert again.count == 6


def test_merge_ranges() -> None:
    assert merge_ranges([[2000, 3000], [0, 1000], [1000, 2000], [4000, 4500]]) == [[0, 3000], [4000, 4500]]
    assert merge_ranges([[0, 10], [5, 8]]) == [[0, 10]]


def test_decompress_refuses_a_bomb() -> None:
    assert decompress(gzip.compress(b"x" * 1000), "gzip") == b"x" * 1000
    with pytest.raises(UnexpectedResponse, match="bomb"):
        decompress(gzip.compress(b"\0" * 5_000_000), "gzip")
    with pytest.raises(UnexpectedResponse, match="corrupt"):
        decompress(b"not gzip", "gzip")
