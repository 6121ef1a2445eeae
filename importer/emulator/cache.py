"""Rendered responses kept on disk, so that a repeated listing costs the emulator no CPU.

A real media server runs on another machine; the emulator shares this one with the
importer it serves. Generating and rendering a page costs it 15-30 µs per item, which on
a 2-core machine takes CPU from the importer being measured. With ``cache_responses``
on, the first answer to a request is rendered as usual and appended to a temporary
file; the same request later is answered from that file (a ``pread``, no Python work
per item). The bench warms the cache with one pass, then measures the next.

Only the index (a few hundred bytes per distinct request) stays in memory. Anything that
changes answers (controls, library mutations) must call :meth:`ResponseCache.clear`.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass

#: request headers that change an answer (Plex takes paging from headers too)
KEY_HEADERS = ("Accept", "X-Plex-Container-Start", "X-Plex-Container-Size")
#: response headers worth keeping (Date and lengths are set anew on every answer)
KEPT_HEADERS = ("Content-Type", "X-Plex-Container-Start", "X-Plex-Container-Total-Size")

Key = tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Entry:
    offset: int
    length: int
    status: int
    headers: tuple[tuple[str, str], ...]
    items: int  # items listed: the log and the item cost stay as without the cache
    cost_us: float
    people_cost_us: float = 0.0  # the part of cost_us that Fields=People cost


class ResponseCache:
    def __init__(self) -> None:
        self._index: dict[Key, Entry] = {}
        self._file = tempfile.TemporaryFile(prefix="importer-emulator-")  # noqa: SIM115 - lives with the cache
        self._end = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> Key:
        return (method, path, tuple(sorted(query.items())), tuple(headers.get(h, "") for h in KEY_HEADERS))

    def get(self, key: Key) -> tuple[Entry, bytes] | None:
        entry = self._index.get(key)
        if entry is None:
            return None
        return entry, os.pread(self._file.fileno(), entry.length, entry.offset)

    def put(
        self,
        key: Key,
        body: bytes,
        status: int,
        headers: dict[str, str],
        items: int,
        cost_us: float,
        people_cost_us: float = 0.0,
    ) -> None:
        kept = tuple((h, headers[h]) for h in KEPT_HEADERS if h in headers)
        with self._lock:
            offset = self._end
            os.pwrite(self._file.fileno(), body, offset)
            self._end += len(body)
            self._index[key] = Entry(offset, len(body), status, kept, items, cost_us, people_cost_us)

    def clear(self) -> None:
        with self._lock:
            self._index.clear()
            self._file.truncate(0)
            self._end = 0

    def __len__(self) -> int:
        return len(self._index)
