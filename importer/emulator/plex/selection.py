"""Which items of a section a listing holds, and how many: totals and pages in title or
ratingKey order, media-query filters decided from bounds where possible, and the caches
that keep paging through a filtered listing cheap."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate

from importer.emulator.library import Episode, Season, Show, View, episode_time_bounds
from importer.emulator.plex.memo import Lru, Memo
from importer.emulator.plex.query import EPISODE, SEASON, SHOW, Filter, Query
from importer.emulator.plex.sections import Section, ShowInfo


class Selection:
    """The listings of one section: Show, (Show, Season) or Episode items."""

    def __init__(self, sec: Section) -> None:
        self.sec = sec
        # matching items per show, summed in listing order: paging through a filtered
        # listing asks the same query once per page
        self._filtered: Lru[Query, list[int]] = Lru(
            lambda q: self._prefix_sums(q.by_key, lambda show: self._show_count(show, q)), limit=16
        )
        self._seasons: Memo[bool, list[int]] = Memo(
            lambda by_key: self._prefix_sums(by_key, lambda show: len(show.season_sizes))
        )
        self._latest: Memo[tuple[int, str], int] = Memo(self._latest_date)

    def select(self, q: Query, start: int, size: int | None) -> tuple[int, list[object]]:
        """(total, ``size`` items from ``start``); ``size`` None: all of them."""
        total = self._total(q)
        if q.limit is not None:  # "the minimum of the limit and the actual total" (spec, Pagination)
            shown = min(total, q.limit)
        else:
            shown = total
        stop = shown if size is None else min(start + size, shown)
        if start >= stop:
            return shown, []
        if q.desc:
            items = self._range(q, total - stop, total - start)
            items.reverse()
        else:
            items = self._range(q, start, stop)
        return shown, items

    def _total(self, q: Query) -> int:
        lib = self.sec.library
        if q.filters:
            if self._nothing_after(q):
                return 0
            return self._filtered_prefix(q)[-1]
        if q.level == SHOW:
            return len(lib.shows)
        if q.level == SEASON:
            return lib.season_total()
        return lib.episode_total(View.PLEX)

    def _range(self, q: Query, start: int, stop: int) -> list[object]:
        lib = self.sec.library
        order = lib.order(q.by_key)
        if q.filters:
            prefix = self._filtered_prefix(q)
        elif q.level == SHOW:
            return [lib.shows[i] for i in order[start:stop]]
        elif q.level == EPISODE:
            return list(lib.episodes(View.PLEX, start, stop, by_key=q.by_key))
        else:
            prefix = self._seasons[q.by_key]
        out: list[object] = []
        pos = bisect.bisect_right(prefix, start) - 1
        at = start
        while at < stop and pos < len(order):
            if prefix[pos + 1] > at:
                show = lib.shows[order[pos]]
                items = self._show_items(show, q)
                first = at - prefix[pos]
                take = items[first : first + (stop - at)]
                out.extend(take)
                at += len(take)
            pos += 1
        return out

    def _nothing_after(self, q: Query) -> bool:
        """A date threshold after every item's date (the usual nightly probe when nothing
        changed) is answered from the latest dates, computed once, without a scan."""
        return any(
            f.op in (">>=", ">=")
            and f.field in ("addedAt", "updatedAt")
            and not f.test(self._latest[f.level, f.field])
            for f in q.filters
        )

    def _latest_date(self, key: tuple[int, str]) -> int:
        level, field = key
        lib = self.sec.library
        if level == SHOW:
            values: Iterable[int] = (s.added_at if field == "addedAt" else s.updated_at for s in lib.shows)
        elif level == SEASON:
            values = (s.added_at if field == "addedAt" else s.updated_at for s in lib.seasons())
        else:  # bounds: episodes are not generated for this
            at = 1 if field == "addedAt" else 3
            values = (episode_time_bounds(s)[at] for s in lib.shows)
        return max(values, default=0)

    def _prefix_sums(self, by_key: bool, count: Callable[[Show], int]) -> list[int]:
        """``count`` of each show, summed in listing order, from 0."""
        lib = self.sec.library
        return list(accumulate((count(lib.shows[i]) for i in lib.order(by_key)), initial=0))

    def _filtered_prefix(self, q: Query) -> list[int]:
        return self._filtered[q._replace(desc=False, limit=None)]

    def _show_count(self, show: Show, q: Query) -> int:
        sec = self.sec
        if not _show_passes(sec, show, q.at(SHOW)):
            return 0
        f3, f4 = q.at(SEASON), q.at(EPISODE)
        decided = _episodes_decided(sec, show, f4) if f4 else True
        if decided is False:
            return 0
        if not f3 and decided is True:  # the counts are known without the items
            if q.level == SHOW:
                return 1
            if q.level == EPISODE:
                return sec.library.count(show, View.PLEX)
            if not f4:
                return len(show.season_sizes)
        i = sec.info(show.index)
        seasons = [s for s in i.seasons if _season_passes(i, s, f3)]
        if decided is True:
            with_episodes = [s for s in seasons if i.season_counts[s.ordinal]]
            if q.level == SHOW:
                return 1 if with_episodes else 0
            if q.level == SEASON:
                return len(seasons) if not f4 else len(with_episodes)
            return sum(i.season_counts[s.ordinal] for s in seasons)
        return len(self._show_items(show, q))

    def _show_items(self, show: Show, q: Query) -> Sequence[object]:
        """The show's items that match, in listing order."""
        sec = self.sec
        i = sec.info(show.index)
        if q.filters and not _show_passes(sec, show, q.at(SHOW)):
            return []
        f3, f4 = q.at(SEASON), q.at(EPISODE)
        if q.level == EPISODE:
            view = sec.library.view_of(show, View.PLEX)
            if not f3 and not f4:
                return view
            ok = {s.season_number for s in i.seasons if _season_passes(i, s, f3)}
            return [e for e in view if e.season_number in ok and _episode_passes(i, e, f4)]
        seasons = [s for s in i.seasons if _season_passes(i, s, f3)]
        if f4:
            decided = _episodes_decided(sec, show, f4)
            if decided is False:
                seasons = []
            elif decided is None:
                hit = {
                    e.season_number for e in sec.library.view_of(show, View.PLEX) if _episode_passes(i, e, f4)
                }
                seasons = [s for s in seasons if s.season_number in hit]
            else:
                seasons = [s for s in seasons if i.season_counts[s.ordinal]]
        if q.level == SHOW:
            return [show] if seasons or not (f3 or f4) else []
        return [(show, s) for s in seasons]


def _show_passes(sec: Section, show: Show, filters: tuple[Filter, ...]) -> bool:
    values = {
        "addedAt": show.added_at,
        "updatedAt": show.updated_at,
        "id": sec.show_key(show),
        "index": 1,
    }
    return all(f.test(values[f.field]) for f in filters)


def _season_passes(i: ShowInfo, season: Season, filters: tuple[Filter, ...]) -> bool:
    values = {
        "addedAt": season.added_at,
        "updatedAt": season.updated_at,
        "id": i.season_keys[season.ordinal],
        "index": season.season_number,
    }
    return all(f.test(values[f.field]) for f in filters)


def _episode_passes(i: ShowInfo, ep: Episode, filters: tuple[Filter, ...]) -> bool:
    for f in filters:
        field = f.field
        if field == "updatedAt":
            v = ep.updated_at
        elif field == "addedAt":
            v = ep.added_at
        elif field == "id":
            v = i.ep_key0 + ep.ordinal if i.ep_keys is None else i.ep_keys[ep.ordinal]
        else:
            v = ep.episode_number
        if not f.test(v):
            return False
    return True


def _episodes_decided(sec: Section, show: Show, filters: tuple[Filter, ...]) -> bool | None:
    """Whether all (True) or none (False) of a show's episodes pass, from bounds alone:
    incremental filters skip most shows without generating their episodes."""
    a0, a1, u0, u1 = episode_time_bounds(show)
    key0 = sec.show_key(show) + 1 + len(show.season_sizes)
    ranges = {
        "addedAt": (a0, a1),
        "updatedAt": (u0, u1),
        "id": (key0, key0 + max(show.slot_count - 1, 0)),
        "index": (1, max((n for _, n in show.season_sizes), default=1)),
    }
    if show.edit is not None:  # keys from a counter, numbers with gaps: the real ranges
        k0, k1 = show.edit.key_range
        ranges["id"] = (k0 + sec.key_offset, k1 + sec.key_offset)
        ranges["index"] = show.edit.number_range
    verdict: bool | None = True
    for f in filters:
        d = f.decide(*ranges[f.field])
        if d is False:
            return False
        if d is None:
            verdict = None
    return verdict
