"""The fetch queue: every page put is fetched, parents' streams first, by a bounded number
of fetchers, whatever moment it is put at."""

from __future__ import annotations

import asyncio

from importer.fetch_queue import FetchQueue
from importer.model import ListingKind, StreamKind
from importer.planner import Page


def page(page_id: int, stream: StreamKind = StreamKind.EPISODES) -> Page:
    return Page(
        page_id, library=0, stream=stream, listing=1, kind=ListingKind.FULL,
        offset=page_id * 100, size=100, with_total=False, watermark=None,
    )  # fmt: skip


async def until(condition: object, *, turns: int = 100) -> None:
    for _ in range(turns):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("not reached")


async def test_a_page_put_as_the_last_fetcher_ends_is_fetched() -> None:
    """The hang CI met once in 300 nightly runs: a page was planned (by a worker's event)
    just after the last fetcher had found the queue empty and ended, before its done
    callback ran, and waited for a fetcher that never came."""
    fetched: list[int] = []
    loop = asyncio.get_running_loop()

    async def fetch(p: Page) -> None:
        fetched.append(p.page_id)
        if p.page_id == 1:
            # runs after this fetcher's task ends and before its done callback: the
            # callback is scheduled only when the task ends, after this one
            loop.call_soon(queue.put, page(2))

    queue = FetchQueue(fetch, 4, failed=lambda error: None)
    queue.put(page(1))
    await until(lambda: fetched == [1, 2])
    await queue.settled()
    assert len(queue) == 0


async def test_parents_first_and_never_more_fetches_than_fetchers() -> None:
    in_hand = 0
    most = 0
    started: list[int] = []
    release = asyncio.Event()

    async def fetch(p: Page) -> None:
        nonlocal in_hand, most
        started.append(p.page_id)
        in_hand += 1
        most = max(most, in_hand)
        await release.wait()
        in_hand -= 1
        queue.done()  # written

    queue = FetchQueue(fetch, 2, failed=lambda error: None)
    for page_id in (10, 11, 12, 13):
        queue.put(page(page_id, StreamKind.EPISODES))
    queue.put(page(20, StreamKind.SEASONS))
    queue.put(page(30, StreamKind.SHOWS))
    await until(lambda: in_hand == 2)
    assert len(queue) == 4
    release.set()
    await until(lambda: len(started) == 6 and in_hand == 0)
    await queue.settled()
    assert most == 2
    # the fetchers first ran once every page was put: shows, seasons, then episodes in order
    assert started == [30, 20, 10, 11, 12, 13]


async def test_a_failed_fetch_is_reported_and_cancel_drops_the_rest() -> None:
    failures: list[BaseException] = []
    started: list[int] = []

    async def fetch(p: Page) -> None:
        started.append(p.page_id)
        if p.page_id == 1:
            raise OSError("refused")
        await asyncio.sleep(3600)

    queue = FetchQueue(fetch, 2, failed=failures.append)
    for page_id in (1, 2, 3, 4):
        queue.put(page(page_id))
    await until(lambda: failures)
    assert [str(f) for f in failures] == ["refused"]
    # the failed fetcher took no more pages; the other one holds page 2
    assert started == [1, 2] and len(queue) == 2
    queue.cancel()
    await asyncio.wait_for(queue.settled(), 5)
    assert len(queue) == 0 and started == [1, 2]


async def test_room_that_frees_up_goes_to_the_first_page_in_line_then() -> None:
    """A fetched page holds its room until it is written. The room it frees goes to the
    page first in line at that moment (a show put meanwhile), not to a page a fetcher
    had taken earlier and held while it waited."""
    started: list[int] = []

    async def fetch(p: Page) -> None:
        started.append(p.page_id)

    queue = FetchQueue(fetch, 1, failed=lambda error: None)
    queue.put(page(10))
    queue.put(page(11))
    await until(lambda: started == [10])
    queue.put(page(30, StreamKind.SHOWS))
    for _ in range(5):
        await asyncio.sleep(0)
    assert started == [10]  # page 10 is not written yet: no room
    queue.done()
    await until(lambda: len(started) == 2)
    queue.done()
    await until(lambda: len(started) == 3)
    assert started == [10, 30, 11]
    queue.done()
    await queue.settled()
