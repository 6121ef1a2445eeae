"""Bounded memo tables for values that are costly to build and asked for again and again.

``Memo`` is a dict that builds a missing value from its key; a hit is one plain lookup,
so the rendering loop reads it directly. ``Lru`` keeps the most recently used entries,
for values that are large or expensive enough that forgetting all of them at once hurts.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(dict[K, V]):
    """Values made by ``make(key)`` on first use; all forgotten once ``limit`` are kept."""

    __slots__ = ("limit", "make")

    def __init__(self, make: Callable[[K], V], limit: int | None = None) -> None:
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, key: K) -> V:
        if self.limit is not None and len(self) >= self.limit:
            self.clear()
        value = self[key] = self.make(key)
        return value


class Lru(Generic[K, V]):
    """Values made by ``make(key)`` on first use; the least recently used go past ``limit``."""

    __slots__ = ("_entries", "limit", "make")

    def __init__(self, make: Callable[[K], V], limit: int) -> None:
        self.make = make
        self.limit = limit
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        entries = self._entries
        value = entries.get(key)
        if value is None:
            value = entries[key] = self.make(key)
            if len(entries) > self.limit:
                entries.popitem(last=False)
        else:
            entries.move_to_end(key)
        return value
