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
    """Runs ``fetch`` on each page put, with at most ``fetchers`` pages in hand at once;
    a fetch that raises is handed to ``failed`` (once a fetcher has raised, it takes no
    more pages; the others go on until the run stops them with :meth:`cancel`)."""

    def __init__(
        self,
        fetch: Callable[[Page], Awaitable[None]],
        fetchers: int,
        failed: Callable[[BaseException], None],
    ) -> None:
        self._fetch = fetch
        self._fetchers = fetchers
        self._failed = failed
        self._waiting: list[tuple[int, int, Page]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def put(self, page: Page) -> None:
        heapq.heappush(self._waiting, (STREAMS.index(page.stream), page.page_id, page))
        # A fetcher that found nothing left has ended, but stays in _tasks until its done
        # callback runs: counted as working, it would leave this page to nobody.
        working = sum(1 for task in self._tasks if not task.done())
        for _ in range(min(len(self._waiting), self._fetchers) - working):
            task = asyncio.create_task(self._fetcher())
            self._tasks.add(task)
            task.add_done_callback(self._ended)

    def __len__(self) -> int:
        """Pages waiting for a fetcher."""
        return len(self._waiting)

    async def _fetcher(self) -> None:
        while self._waiting:
            await self._fetch(heapq.heappop(self._waiting)[2])

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
