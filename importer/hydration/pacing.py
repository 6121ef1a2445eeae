"""``--rate``: at most so many requests a second, on top of the HTTP client's adaptive
limit, so that a home server stays usable while a large library is hydrated."""

from __future__ import annotations

import asyncio


class RequestPacer:
    """Spaces request starts at least ``1 / rate`` seconds apart (no burst: a long run at a
    low rate should look the same to the server at every moment). ``rate`` None: no cap."""

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("the rate must be above 0 requests per second")
        self.interval = 0.0 if rate is None else 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        """Return when the next request may start."""
        if not self.interval:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next)
        # reserved before sleeping: concurrent callers queue up one interval apart
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)
