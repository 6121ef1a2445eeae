"""The listing planner on its own: what it fetches, and when a listing is complete. No I/O."""

from __future__ import annotations

from typing import Any

from importer.model import ListingKind, RunMode, StreamKind, StreamProgress
from importer.plan import LibraryPlan
from importer.planner import (
    DETAILS_BATCH,
    MAX_LISTINGS,
    Action,
    Advance,
    Fetch,
    LibraryListed,
    ListingPlanner,
    Page,
    RestartStream,
    SetTotal,
    SourceCaps,
)
from importer.protocol import CountListing, Relist

SHOWS, SEASONS, EPISODES = StreamKind.SHOWS, StreamKind.SEASONS, StreamKind.EPISODES
PLEX = SourceCaps(page_size=1000, ids_page_size=None, leaf_counts=True)
JELLYFIN = SourceCaps(page_size=1000, ids_page_size=5000, leaf_counts=False)


def plan(mode: RunMode = RunMode.FULL, **fields: Any) -> LibraryPlan:
    values: dict[str, Any] = {
        "watermark": None, "resume_run": None, "supersede_run": None, "progress": {},
        "populated": frozenset(), "adopt": False, "link_all": False,
    } | fields  # fmt: skip
    return LibraryPlan(mode, **values)


class Run:
    """Drives a planner as the pipeline would, with a server of given totals."""

    def __init__(self, caps: SourceCaps, *plans: LibraryPlan) -> None:
        self.planner = ListingPlanner(list(plans) or [plan()], caps)
        self.actions: list[Action] = []
        self.fetched: list[Page] = []

    def take(self, actions: list[Action]) -> list[Action]:
        self.actions += actions
        self.fetched += [a.page for a in actions if isinstance(a, Fetch)]
        return actions

    def start(self) -> list[Page]:
        return [a.page for a in self.take(self.planner.start()) if isinstance(a, Fetch)]

    def pending(self, stream: StreamKind | None = None) -> list[Page]:
        """Pages fetched whose answer the planner has not had yet."""
        return [
            p for p in self.fetched if p.page_id in self.planner._undecoded and stream in (None, p.stream)
        ]

    def answer(
        self,
        page: Page,
        count: int,
        total: int | None,
        missing: list[str] | None = None,
        *,
        write: bool = True,
    ) -> list[Action]:
        actions = self.take(self.planner.decoded(page.page_id, page.offset, count, total, 0, missing or []))
        if write and page.kind is not ListingKind.COUNT:
            actions += self.take(self.planner.written(page.page_id, count))
        return actions

    def serve(self, totals: dict[StreamKind, int], **kwargs: Any) -> None:
        """Answer every page as a server holding ``totals`` items would, until none is left."""
        while pending := self.pending():
            for page in pending:
                total = totals[page.stream]
                count = 0 if page.kind is ListingKind.COUNT else max(0, min(page.size, total - page.offset))
                self.answer(page, count, total if page.with_total or page.kind is ListingKind.COUNT else None,
                            **kwargs)  # fmt: skip

    def of(self, kind: type[Any]) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]


def test_a_new_library_lists_every_stream_and_counts_it_twice() -> None:
    run = Run(PLEX)
    first = run.start()
    assert [(p.stream, p.offset, p.size, p.with_total, p.kind) for p in first] == [
        (s, 0, 1000, True, ListingKind.FULL) for s in (SHOWS, SEASONS, EPISODES)
    ]
    episodes = first[2]
    run.answer(episodes, 1000, 2500, write=False)
    rest = run.pending(EPISODES)
    # the rest at once, the last page counting the listing again
    assert [(p.offset, p.with_total) for p in rest] == [(1000, False), (2000, True)]
    assert SetTotal(0, EPISODES, 2500) in run.actions
    run.take(run.planner.written(episodes.page_id, 1000))
    run.serve({SHOWS: 10, SEASONS: 40, EPISODES: 2500})
    assert [a.stream for a in run.of(CountListing)] == [SHOWS, SEASONS, EPISODES]
    assert run.of(LibraryListed) == []  # not before the writer has counted
    for stream, n in ((SHOWS, 10), (SEASONS, 40), (EPISODES, 2500)):
        run.take(run.planner.counted(0, stream, n, n))
    (listed,) = run.of(LibraryListed)
    # Plex: the shows' leafCount must sum to the episodes' total; here it does not
    assert not listed.outcome.complete and listed.outcome.sweep == ()
    assert sum(a.items for a in run.of(Advance) if a.stream is EPISODES) == 2500


def test_a_complete_listing_may_sweep_every_stream() -> None:
    run = Run(JELLYFIN)
    run.start()
    run.serve({SHOWS: 10, SEASONS: 40, EPISODES: 2500})
    for stream, n in ((SHOWS, 10), (SEASONS, 40), (EPISODES, 2500)):
        run.take(run.planner.counted(0, stream, n, n))
    (listed,) = run.of(LibraryListed)
    assert listed.outcome.complete and listed.outcome.sweep == (SHOWS, SEASONS, EPISODES)
    assert dict(listed.outcome.totals) == {SHOWS: 10, SEASONS: 40, EPISODES: 2500}


def test_a_page_written_before_its_summary_arrives_is_fine() -> None:
    run = Run(JELLYFIN)
    shows = run.start()[0]
    run.take(run.planner.written(shows.page_id, 7))  # the writer was quicker than the decoder's note
    actions = run.answer(shows, 7, 7, write=False)
    assert CountListing(0, SHOWS) in actions


def test_a_server_that_caps_its_pages_gets_asked_for_the_rest() -> None:
    run = Run(PLEX)
    episodes = run.start()[2]
    run.answer(episodes, 100, 350)  # asked for 1000, got 100
    assert [(p.offset, p.size) for p in run.pending(EPISODES)] == [(100, 100), (200, 100), (300, 100)]


def test_a_drifted_listing_is_read_again_a_few_times_at_most() -> None:
    run = Run(JELLYFIN)
    run.start()
    run.serve({SHOWS: 10, SEASONS: 40, EPISODES: 30})
    run.take(run.planner.counted(0, SHOWS, 10, 10))
    run.take(run.planner.counted(0, SEASONS, 40, 40))
    for listing in range(2, MAX_LISTINGS + 1):
        actions = run.take(run.planner.counted(0, EPISODES, 29, 29))  # one item moved past the end
        assert (
            Relist(0, EPISODES, listing, ListingKind.FULL) in actions
            and RestartStream(0, EPISODES) in actions
        )
        run.serve({SHOWS: 10, SEASONS: 40, EPISODES: 30})
    run.take(run.planner.counted(0, EPISODES, 29, 29))
    (listed,) = run.of(LibraryListed)
    assert not listed.outcome.complete and listed.outcome.sweep == ()  # nothing is deleted after a drift


def test_an_incremental_run_lists_changes_and_counts() -> None:
    run = Run(JELLYFIN, plan(RunMode.INCREMENTAL, watermark=1_700_000_000, populated=frozenset(StreamKind)))
    first = run.start()
    assert [(p.stream, p.kind, p.watermark) for p in first] == [
        (s, k, w) for s in (SHOWS, SEASONS, EPISODES)
        for k, w in ((ListingKind.COUNT, None), (ListingKind.FULL, 1_700_000_000))
    ]  # fmt: skip
    run.serve({SHOWS: 10, SEASONS: 40, EPISODES: 300})
    run.take(run.planner.counted(0, SHOWS, 0, 10))
    run.take(run.planner.counted(0, SEASONS, 0, 40))
    # more stored than the server counts: something is gone; list the stream's ids to find out
    actions = run.take(run.planner.counted(0, EPISODES, 0, 301))
    assert Relist(0, EPISODES, 2, ListingKind.IDS) in actions
    relisted = run.pending(EPISODES)
    assert [(p.kind, p.size, p.watermark) for p in relisted] == [(ListingKind.IDS, 5000, None)]
    run.serve({SHOWS: 10, SEASONS: 40, EPISODES: 300})
    run.take(run.planner.counted(0, EPISODES, 300, 301))
    (listed,) = run.of(LibraryListed)
    assert listed.outcome.complete and listed.outcome.sweep == (EPISODES,)  # only the stream listed in full
    assert dict(listed.outcome.totals) == {SHOWS: 10, SEASONS: 40, EPISODES: 300}


def test_a_populated_stream_is_listed_by_ids_and_changes_fetched_by_id() -> None:
    run = Run(JELLYFIN, plan(populated=frozenset({EPISODES})))
    shows, seasons, episodes = run.start()
    assert (shows.kind, seasons.kind, episodes.kind, episodes.size) == (
        ListingKind.FULL, ListingKind.FULL, ListingKind.IDS, 5000,
    )  # fmt: skip
    missing = [f"id{n}" for n in range(120)]
    run.answer(episodes, 5000, 9000, missing=missing, write=False)
    details = [p for p in run.pending(EPISODES) if p.kind is ListingKind.DETAILS]
    assert [len(p.ids) for p in details] == [DETAILS_BATCH, DETAILS_BATCH, 20]
    assert [i for p in details for i in p.ids] == missing
    rest = [p for p in run.pending(EPISODES) if p.kind is ListingKind.IDS]
    # most of a page changed: cheaper to read that range in full than item by item
    run.answer(rest[0], 4000, 9000, missing=[f"x{n}" for n in range(1000)], write=False)
    full = [p for p in run.pending(EPISODES) if p.kind is ListingKind.FULL]
    assert [(p.offset, p.size) for p in full] == [(5000 + n * 1000, 1000) for n in range(4)]
    # the listing is counted only when the fetched items are written too
    for page in run.pending(EPISODES):
        run.answer(page, 0 if page.kind is ListingKind.DETAILS else page.size, None)
    run.take(run.planner.written(episodes.page_id, 5000))
    assert CountListing(0, EPISODES) not in run.actions
    run.take(run.planner.written(rest[0].page_id, 4000))
    assert CountListing(0, EPISODES) in run.actions


def test_a_resumed_listing_fetches_only_what_was_not_committed() -> None:
    progress = {EPISODES: StreamProgress(total=5000, committed=[(0, 2000), (3000, 4000)])}
    run = Run(PLEX, plan(resume_run=7, progress=progress))
    count = run.start()[2]
    assert (count.size, count.with_total) == (0, True)  # has the server's count changed?
    run.answer(count, 0, 5000)
    assert [(p.offset, p.size, p.with_total) for p in run.pending(EPISODES)] == [
        (2000, 1000, False), (4000, 1000, True),
    ]  # fmt: skip
    assert Advance(0, EPISODES, 3000) in run.actions  # what is committed already


def test_a_resumed_listing_whose_count_changed_is_read_again() -> None:
    progress = {EPISODES: StreamProgress(total=5000, committed=[(0, 2000)])}
    run = Run(PLEX, plan(resume_run=7, progress=progress))
    count = run.start()[2]
    actions = run.answer(count, 0, 5001)
    assert Relist(0, EPISODES, 2, ListingKind.FULL) in actions
    assert [(p.offset, p.listing) for p in run.pending(EPISODES)] == [(0, 2)]


def test_a_refused_page_is_fetched_once_more_then_not() -> None:
    run = Run(PLEX)
    shows = run.start()[0]
    assert run.planner.may_refetch(shows.page_id)
    (again,) = run.take(run.planner.refetch(shows.page_id))
    assert isinstance(again, Fetch) and (again.page.offset, again.page.size) == (shows.offset, shows.size)
    assert not run.planner.may_refetch(again.page.page_id)


def test_a_total_stated_before_decoding_plans_the_rest_at_once() -> None:
    run = Run(PLEX)
    episodes = run.start()[2]
    # a header said 2500: the rest is asked for before the decoder has read the page
    run.take(run.planner.hinted(episodes.page_id, 2500))
    assert [(p.offset, p.with_total) for p in run.pending(EPISODES)] == [
        (0, True),
        (1000, False),
        (2000, True),
    ]
    run.answer(episodes, 1000, 2500)
    assert len(run.pending(EPISODES)) == 2  # the decoded page agreed: nothing more
    # a hint the page itself contradicts: the page wins (and plans what the hint missed)
    other = Run(PLEX)
    first = other.start()[2]
    other.take(other.planner.hinted(first.page_id, 1500))
    other.answer(first, 1000, 3500)
    assert [p.offset for p in other.pending(EPISODES)] == [1000, 2000, 3000]
    assert SetTotal(0, EPISODES, 3500) in other.actions
