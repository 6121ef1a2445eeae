"""The pages a run has planned but not fetched yet, and the few fetcher tasks that take
them in turn: parents' streams first (an episode written before its season waits for
``link()`` at the end, which rewrites it), then in the order planned.

Not a task per page: a listing planned at once is a thousand pages, and creating a
thousand tasks in one callback held up the host's loop for tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable

from importer.model import STREAMS
from importer.planner import Page


class FetchQueue:
    """Runs ``fetch`` on each page put, with at most ``pages_in_hand`` pages fetched and
    not yet done with (:meth:`done`: written, or refused). A page takes its room before
    it leaves the queue, so room that frees up goes to the first page in line then, not
    to one taken earlier. A fetch that raises gives its room back and is handed to
    ``failed``; that fetcher takes no more pages (the run stops them with :meth:`cancel`)."""

    def __init__(
        self,
        fetch: Callable[[Page], Awaitable[None]],
        pages_in_hand: int,
        failed: Callable[[BaseException], None],
    ) -> None:
        self._fetch = fetch
        self._room = asyncio.Semaphore(pages_in_hand)
        self._fetchers = pages_in_hand
        self._failed = failed
        self._waiting: list[tuple[int, int, Page]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        #: fetchers still in their loop; one that leaves it counts out at once (its task
        #: ends later, and a page put in between must not be left to it)
        self._working = 0

    def put(self, page: Page) -> None:
        heapq.heappush(self._waiting, (STREAMS.index(page.stream), page.page_id, page))
        while self._working < min(len(self._waiting), self._fetchers):
            self._working += 1
            task = asyncio.create_task(self._fetcher())
            self._tasks.add(task)
            task.add_done_callback(self._ended)

    def done(self) -> None:
        """A page handed over is done with (written, or refused): its room is free."""
        self._room.release()

    def __len__(self) -> int:
        """Pages waiting for a fetcher."""
        return len(self._waiting)

    async def _fetcher(self) -> None:
        try:
            while self._waiting:
                await self._room.acquire()
                if not self._waiting:  # another fetcher took the last page meanwhile
                    self._room.release()
                    return
                try:
                    await self._fetch(heapq.heappop(self._waiting)[2])
                except BaseException:
                    self._room.release()
                    raise
        finally:
            self._working -= 1

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self._failed(error)

    def cancel(self) -> None:
        """Drop the pages not fetched yet and stop the fetches under way."""
        self._waiting.clear()
        for task in self._tasks:
            task.cancel()

    async def settled(self) -> None:
        """Wait until every fetcher has ended (after :meth:`cancel`, or a failure)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
