"""Batches by id against one server: the next items whose etag changed, a request for
each batch (paced, at most ``concurrency`` in flight), each answer stored in one
transaction and counted in the run's result and progress."""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass

from importer import errors
from importer.http import FetchedPage
from importer.hydration import select
from importer.hydration.answers import Decoder, StoredAnswer, store_answer
from importer.hydration.database import Database
from importer.hydration.identity import Link
from importer.hydration.model import Target
from importer.hydration.pacing import RequestPacer
from importer.hydration.result import HydrateResult, LibraryHydration
from importer.model import STREAM_OF, ItemType, PageRequest
from importer.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class Batches:
    """What one server's batches share: the database, the server, the pace, the counts."""

    db: Database
    link: Link
    pacer: RequestPacer
    progress: Progress
    totals: HydrateResult
    concurrency: int = 1
    #: items a request; None: the kind's (never more than the kind's)
    wanted_size: int | None = None

    @property
    def size(self) -> int:
        limit = self.link.kind.batch_size
        return max(1, min(self.wanted_size or limit, limit))

    async def library(self, lib: select.StoredLibrary, item_type: ItemType, result: LibraryHydration) -> None:
        """Every item of the library whose etag changed, a batch a request, at most
        ``concurrency`` batches at a time. Items are chosen by keyset (id order, after the
        last batch's): one batch in memory, whatever the library's size."""
        running: set[asyncio.Task[None]] = set()
        after = 0
        try:
            while True:
                batch = await self.db.call(select.pending, item_type, lib.id, after, self.size)
                if not batch:
                    break
                after = batch[-1].id
                running.add(asyncio.create_task(self.batch(lib, item_type, batch, result)))
                if len(running) >= self.concurrency:
                    running = await _first_done(running)
            while running:
                running = await _first_done(running)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def batch(
        self, lib: select.StoredLibrary, item_type: ItemType, targets: list[Target], result: LibraryHydration
    ) -> None:
        """One request for ``targets`` by id, stored and counted."""
        kind = self.link.kind
        request = kind.batch_request([t.source_id for t in targets])
        answer = await self.fetch_and_store(request, functools.partial(kind.decode, item_type=item_type),
                                            item_type, targets)  # fmt: skip
        self.tally(item_type, result, answer)
        # what the server no longer has stays unmarked: a later sync deletes it
        result.missing += len(targets) - answer.counts.items
        self.progress.advance(lib.title, STREAM_OF[item_type], len(targets))

    async def fetch_and_store(
        self, request: PageRequest, decode: Decoder, item_type: ItemType, targets: list[Target]
    ) -> StoredAnswer:
        """One request, stored; an answer that does not decode is fetched once more (a
        proxy or an overloaded server may have mangled it), as the sync does with a page."""
        for attempt in (1, 2):
            page = await self._fetch(request)
            try:
                return await self.db.call(store_answer, decode, self.link.server.id, item_type, targets, page)
            except errors.DecodeError as exc:
                if attempt == 2:
                    raise
                log.warning("%s; fetching it again", exc)
        raise AssertionError("unreachable")

    async def _fetch(self, request: PageRequest) -> FetchedPage | None:
        await self.pacer.wait()
        try:
            return await self.link.http.fetch(request)
        except errors.NotFoundError:
            if self.link.kind.none_found_is_404:
                return None  # Plex: none of these items exists any more
            raise

    def tally(self, item_type: ItemType, result: LibraryHydration, answer: StoredAnswer) -> None:
        """Add what an answer wrote to the library's and the run's counts."""
        if item_type == "show":
            result.shows += answer.counts.items
        else:
            result.episodes += answer.counts.items
        totals = self.totals
        totals.people += answer.counts.people
        totals.credits += answer.counts.credits
        totals.genres += answer.counts.genres
        totals.images += answer.counts.images


async def _first_done(running: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
    """Wait for one batch to end; raise its error, if any; the ones still running."""
    done, pending = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()
    return pending
