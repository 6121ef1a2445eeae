"""The listing planner: which pages to fetch, and when a listing is complete. Pure.

Like ``http.AdaptiveLimit``, it has no I/O and no clock: the pipeline feeds it what
happened (a page decoded, written, refused; a listing counted) and carries out the
actions it returns (:class:`Fetch` a page, ask the writer to count or relist a stream,
move the progress bar, finish a library).

Every stream of every library asks for its first page at once. The first page tells the
stream's total; the rest of its pages are planned from it. A page that holds fewer items
than asked (a server that caps its page size) gets a follow-up request for the rest.

The first page of a listing counts it, and so does its last page (every Plex page
carries the count; on Jellyfin the last page asks for it). The listing is *complete*
when its distinct items, as the writer counts them, equal both counts (Plex: and the
shows' summed ``leafCount`` equals the episode total). Otherwise the library changed
under us, and the stream is listed again, a few times at most.

Listings:

- a full run lists every item of a stream; where the stream already holds rows and the
  server can list bare items (Jellyfin, Emby), it lists ids and etags only, and fetches
  in full (by id) just the items that are new or changed;
- an incremental run lists the items changed since the watermark, and counts the
  stream: when the library then holds more or fewer rows than the server counts,
  something is gone (or was missed), and the stream is listed in full so that a sweep
  can find out what;
- a resumed run fetches only the ranges its interrupted run had not committed, if the
  server still counts what it counted then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from importer.model import STREAMS, ListingKind, RunMode, StreamKind, StreamProgress
from importer.plan import LibraryPlan, ListingOutcome
from importer.protocol import CountListing, Relist

#: re-list a stream whose listing drifted at most this many times
MAX_LISTINGS = 3
#: items fetched by id in one request: ids are 32 characters, and past ~8 KB the URL fails
DETAILS_BATCH = 50
#: an ids page with more new or changed items than this share is fetched in full instead
DETAILS_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class SourceCaps:
    """What the planner needs to know of a server kind."""

    page_size: int
    ids_page_size: int | None  # items per ids page; None: the server cannot list bare items
    leaf_counts: bool  # show pages carry leafCount (Plex): a completeness cross-check


@dataclass(frozen=True, slots=True)
class Page:
    page_id: int
    library: int
    stream: StreamKind
    listing: int  # which listing of the stream it belongs to
    kind: ListingKind
    offset: int
    size: int
    with_total: bool  # ask the server to count the whole listing
    watermark: int | None  # only the items changed since then
    ids: tuple[str, ...] = ()  # DETAILS: the items to fetch


# ----------------------------------------------------------------------------- actions
@dataclass(frozen=True, slots=True)
class Fetch:
    page: Page


@dataclass(frozen=True, slots=True)
class SetTotal:
    library: int
    stream: StreamKind
    total: int


@dataclass(frozen=True, slots=True)
class Advance:
    library: int
    stream: StreamKind
    items: int


@dataclass(frozen=True, slots=True)
class RestartStream:
    library: int
    stream: StreamKind


@dataclass(frozen=True, slots=True)
class LibraryListed:
    library: int
    outcome: ListingOutcome


Action = Fetch | SetTotal | Advance | RestartStream | CountListing | Relist | LibraryListed


# ----------------------------------------------------------------------------- state
@dataclass(eq=False)
class _Stream:
    library: int
    kind: StreamKind
    listing_kind: ListingKind
    page_size: int
    watermark: int | None = None  # a delta listing: the items changed since then
    server_count: int | None = None  # a delta stream's count probe
    listing: int = 1
    total_before: int | None = None
    total_after: int | None = None
    planned_to: int = 0  # offsets below this are scheduled
    outstanding: int = 0  # pages not decoded yet
    unwritten: int = 0  # pages not written yet
    leaf_total: int = 0
    counting: bool = False  # the writer was asked to count the listing
    hinted: int | None = None  # the first page whose total was known before it was decoded
    finished: bool = False
    complete: bool = False
    #: listed every item, verified complete: the rows the listing missed are gone
    swept: bool = False
    resume: StreamProgress | None = None  # what an interrupted run had committed


@dataclass(eq=False)
class _Library:
    plan: LibraryPlan
    streams: dict[StreamKind, _Stream] = field(default_factory=dict)
    listed: bool = False  # LibraryListed was returned


class ListingPlanner:
    """Streams and pages of one run: what to fetch next, and when a library is listed."""

    def __init__(self, plans: list[LibraryPlan], caps: SourceCaps) -> None:
        self.caps = caps
        self._libraries = [_Library(plan) for plan in plans]
        #: pages planned and not yet both decoded and written (decoder and writer report
        #: on separate pipes: either may come first)
        self._pages: dict[int, Page] = {}
        self._undecoded: set[int] = set()
        self._unwritten: set[int] = set()
        self._next_id = 0
        self._refetched: set[tuple[int, StreamKind, int, ListingKind, int]] = set()
        for index, library in enumerate(self._libraries):
            for kind in STREAMS:
                library.streams[kind] = self._new_stream(index, kind, library.plan)

    def _new_stream(self, library: int, kind: StreamKind, plan: LibraryPlan) -> _Stream:
        resume = plan.progress.get(kind)
        if resume is not None:
            listing_kind = resume.kind
        elif plan.mode is RunMode.FULL and kind in plan.populated and self.caps.ids_page_size:
            listing_kind = ListingKind.IDS  # only what changed is fetched in full
        else:
            listing_kind = ListingKind.FULL
        stream = _Stream(library, kind, listing_kind, self._page_size(listing_kind), watermark=plan.watermark)
        if resume is not None:
            stream.listing, stream.resume = resume.listing, resume
        return stream

    def _page_size(self, kind: ListingKind) -> int:
        if kind is ListingKind.IDS and self.caps.ids_page_size:
            return self.caps.ids_page_size
        return self.caps.page_size

    # ------------------------------------------------------------------ queries
    def page(self, page_id: int) -> Page:
        return self._pages[page_id]

    def listing_kinds(self, library: int) -> dict[StreamKind, ListingKind]:
        """How each stream of a library is listed at first."""
        return {kind: stream.listing_kind for kind, stream in self._libraries[library].streams.items()}

    def unwritten(self, library: int | None = None) -> int:
        """Pages fetched or planned but not written yet (of one library, or all)."""
        return sum(
            s.unwritten
            for i, lib in enumerate(self._libraries)
            if library is None or i == library
            for s in lib.streams.values()
        )

    # ------------------------------------------------------------------ events
    def start(self) -> list[Action]:
        """The first requests of every stream."""
        actions: list[Action] = []
        for library in self._libraries:
            for stream in library.streams.values():
                actions += self._start(stream)
        return actions

    def _start(self, stream: _Stream) -> list[Action]:
        if stream.watermark is not None:
            # the changes since the watermark, and a count to tell whether anything is gone
            return [
                self._schedule(stream, 0, 0, kind=ListingKind.COUNT, with_total=True),
                self._schedule(stream, 0, stream.page_size, with_total=True),
            ]
        if stream.resume is not None and stream.resume.total is not None:
            return [self._schedule(stream, 0, 0, with_total=True)]  # only count: has it changed?
        stream.resume = None
        return [self._schedule(stream, 0, stream.page_size, with_total=True)]

    def decoded(
        self, page_id: int, offset: int, count: int, total: int | None, leaf_total: int, missing: list[str]
    ) -> list[Action]:
        """A page is decoded: plan what follows from its counts."""
        page = self._pages[page_id]
        self._settle(page_id, self._undecoded)
        stream = self._stream(page)
        stream.outstanding -= 1
        actions: list[Action] = []
        if page.kind is ListingKind.COUNT:
            stream.server_count = total
        elif page.kind is not ListingKind.DETAILS:  # details pages only carry rows
            actions += self._counts(stream, page, offset, count, total, leaf_total)
        if missing:
            actions += self._fetch_missing(stream, offset, count, missing)
        if stream.outstanding == 0 and stream.total_after is None:
            stream.total_after = stream.total_before  # one page: one consistent answer
        return actions + self._maybe_close(stream)

    def _counts(
        self, stream: _Stream, page: Page, offset: int, count: int, total: int | None, leaf_total: int
    ) -> list[Action]:
        """What a listing page's counts say: the rest of the listing, or of a short page."""
        actions: list[Action] = []
        stream.leaf_total += leaf_total
        if page.page_id == stream.hinted:
            stream.hinted = None
            if total is not None and total != stream.total_before:  # the page says otherwise: it wins
                stream.total_before = total
                actions += [SetTotal(stream.library, stream.kind, total), *self._plan_rest(stream, total)]
        elif total is not None and stream.total_before is not None:
            stream.total_after = total  # a later count: Plex pages all carry one
        if stream.total_before is None and total is not None:
            if stream.resume is not None:
                return self._resume(stream, total)
            stream.total_before = total
            actions.append(SetTotal(stream.library, stream.kind, total))
            if 0 < count < page.size and count < total:
                # the server caps its pages: ask for what it gives, all at once
                stream.page_size = count
                stream.planned_to = offset + count
            return actions + self._plan_rest(stream, total)
        end = offset + count
        if 0 < count < page.size and end < (stream.total_before or 0):
            # a short page: fetch the rest of it
            actions.append(self._schedule(stream, end, page.size - count, kind=page.kind))
        return actions

    def hinted(self, page_id: int, total: int) -> list[Action]:
        """The server stated a listing's total before its first page was decoded (a header):
        plan the rest now. The decoded page confirms it; a wrong hint only drifts the listing."""
        page = self._pages.get(page_id)
        if page is None or page.offset != 0 or not page.with_total or page.kind is ListingKind.COUNT:
            return []
        stream = self._stream(page)
        if stream.total_before is not None or stream.resume is not None or page.listing != stream.listing:
            return []
        stream.total_before, stream.hinted = total, page_id
        return [SetTotal(stream.library, stream.kind, total), *self._plan_rest(stream, total)]

    def written(self, page_id: int, items: int) -> list[Action]:
        """A page's rows are written (not yet committed)."""
        page = self._pages[page_id]
        self._settle(page_id, self._unwritten)
        stream = self._stream(page)
        stream.unwritten -= 1
        actions: list[Action] = []
        if page.listing == stream.listing and page.kind is stream.listing_kind:
            actions.append(Advance(stream.library, stream.kind, items))
        return actions + self._maybe_close(stream) + self._maybe_listed(page.library)

    def may_refetch(self, page_id: int) -> bool:
        """Whether a page the decoder refused may be fetched once more (not twice)."""
        page = self._pages[page_id]
        return (page.library, page.stream, page.listing, page.kind, page.offset) not in self._refetched

    def refetch(self, page_id: int) -> list[Action]:
        """Fetch a refused page again (a proxy or an overloaded server may have mangled it)."""
        page = self._pages.pop(page_id)
        self._undecoded.discard(page_id)
        self._unwritten.discard(page_id)
        stream = self._stream(page)
        self._refetched.add((page.library, page.stream, page.listing, page.kind, page.offset))
        stream.outstanding -= 1
        if page.kind is not ListingKind.COUNT:
            stream.unwritten -= 1
        return [self._schedule(stream, page.offset, page.size, kind=page.kind, with_total=page.with_total,
                               ids=page.ids)]  # fmt: skip

    def counted(self, library: int, kind: StreamKind, unique: int, stored: int) -> list[Action]:
        """The writer counted a listing: complete, listed again, or listed in full."""
        stream = self._libraries[library].streams[kind]
        stream.counting = False
        if stream.watermark is not None:
            # Changes are in. Count arithmetic: the library holds as many items as the
            # server counts, or something is gone (or was missed): list every item then,
            # and sweep what the complete listing proves gone.
            if stored == stream.server_count:
                stream.complete = stream.finished = True
                return self._maybe_listed(stream.library)
            stream.watermark = None
            stream.listing_kind = ListingKind.IDS if self.caps.ids_page_size else ListingKind.FULL
            return self._relist(stream)
        stream.complete = unique == stream.total_before == stream.total_after
        stream.swept = stream.complete
        if stream.complete or stream.listing >= MAX_LISTINGS:
            stream.finished = True
            return self._maybe_listed(stream.library)
        return self._relist(stream)  # the library changed while we read it: offsets shifted

    # ------------------------------------------------------------------ planning
    def _stream(self, page: Page) -> _Stream:
        return self._libraries[page.library].streams[page.stream]

    def _schedule(
        self,
        stream: _Stream,
        offset: int,
        size: int,
        *,
        kind: ListingKind | None = None,
        with_total: bool = False,
        ids: Iterable[str] = (),
    ) -> Fetch:
        kind = kind or stream.listing_kind
        page = Page(
            self._next_id, stream.library, stream.kind, stream.listing, kind, offset, size, with_total,
            stream.watermark if kind in (ListingKind.FULL, ListingKind.DETAILS) else None, tuple(ids),
        )  # fmt: skip
        self._next_id += 1
        self._pages[page.page_id] = page
        self._undecoded.add(page.page_id)
        stream.outstanding += 1
        if kind is not ListingKind.COUNT:
            self._unwritten.add(page.page_id)
            stream.unwritten += 1  # a count probe is never written
        if kind not in (ListingKind.COUNT, ListingKind.DETAILS):
            stream.planned_to = max(stream.planned_to, offset + size)
        return Fetch(page)

    def _settle(self, page_id: int, pending: set[int]) -> None:
        pending.remove(page_id)
        if page_id not in self._undecoded and page_id not in self._unwritten:
            del self._pages[page_id]

    def _plan_rest(self, stream: _Stream, total: int) -> list[Action]:
        """The rest of a listing. Its last page also counts the listing again (free on Plex,
        one COUNT on Jellyfin), so no separate count costs a round trip."""
        actions: list[Action] = []
        offset = stream.planned_to
        while offset < total:
            # a delta listing needs no second count: its probe decides what follows
            last = offset + stream.page_size >= total and stream.watermark is None
            actions.append(self._schedule(stream, offset, stream.page_size, with_total=last))
            offset += stream.page_size
        return actions

    def _resume(self, stream: _Stream, total: int) -> list[Action]:
        """Continue an interrupted run's listing: fetch only what it had not committed,
        if the server still counts what it counted then. Otherwise offsets have shifted:
        list the stream again (its rows are upserts: what is unchanged costs little)."""
        done, stream.resume = stream.resume, None
        assert done is not None
        if total != done.total:
            return self._relist(stream)
        stream.total_before = total
        stream.leaf_total += done.leaf_total
        actions: list[Action] = [SetTotal(stream.library, stream.kind, total),
                                 Advance(stream.library, stream.kind, done.done())]  # fmt: skip
        gaps = done.gaps(total)
        for gap_start, gap_end in gaps:
            for offset in range(gap_start, gap_end, stream.page_size):
                size = min(stream.page_size, gap_end - offset)
                last = gap_end == gaps[-1][1] and offset + size >= gap_end
                actions.append(self._schedule(stream, offset, size, with_total=last))
        return actions

    def _fetch_missing(self, stream: _Stream, offset: int, count: int, missing: list[str]) -> list[Action]:
        """An ids page named items that are new or changed: fetch them in full, by id, or
        the page's range in full when they are many."""
        if len(missing) > DETAILS_SHARE * max(count, 1):
            size = self.caps.page_size
            return [
                self._schedule(stream, at, min(size, offset + count - at), kind=ListingKind.FULL)
                for at in range(offset, offset + count, size)
            ]
        return [
            self._schedule(stream, -1, 0, kind=ListingKind.DETAILS, ids=missing[at : at + DETAILS_BATCH])
            for at in range(0, len(missing), DETAILS_BATCH)
        ]

    def _relist(self, stream: _Stream) -> list[Action]:
        """List a stream again from the start, forgetting what its last listing saw."""
        stream.listing += 1
        stream.swept = False
        stream.page_size = self._page_size(stream.listing_kind)
        stream.total_before = stream.total_after = None
        stream.planned_to = stream.leaf_total = 0
        return [
            Relist(stream.library, stream.kind, stream.listing, stream.listing_kind),
            RestartStream(stream.library, stream.kind),
            self._schedule(stream, 0, stream.page_size, with_total=True),
        ]

    def _maybe_close(self, stream: _Stream) -> list[Action]:
        """Every page of the listing is decoded and written: ask the writer to count it."""
        if stream.outstanding or stream.unwritten or stream.counting or stream.finished:
            return []
        stream.counting = True
        return [CountListing(stream.library, stream.kind)]

    def _maybe_listed(self, index: int) -> list[Action]:
        library = self._libraries[index]
        streams = library.streams
        if library.listed or not all(s.finished for s in streams.values()) or self.unwritten(index):
            return []
        library.listed = True
        shows, episodes = streams[StreamKind.SHOWS], streams[StreamKind.EPISODES]
        # Plex: the shows' leafCount sums to the episodes' total (both listed in full)
        leaves_agree = (
            not self.caps.leaf_counts
            or not (shows.swept and episodes.swept)
            or shows.leaf_total == episodes.total_after
        )
        complete = all(s.complete for s in streams.values()) and leaves_agree
        totals = {
            s.kind: (s.server_count if s.watermark is not None else s.total_after) or 0
            for s in streams.values()
        }
        # only a library verified complete is swept, and only the streams listed in full
        sweep = tuple(s.kind for s in streams.values() if s.swept) if complete else ()
        return [LibraryListed(index, ListingOutcome(complete, sweep, totals))]
