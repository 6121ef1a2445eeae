"""What an ``/Items`` query lists, paged without materialising it.

A listing is a run of sources, each a run of items of one kind in listing order that
renders any slice of itself: a page of a million-episode library generates only its own
episodes. Per library: series in title order, then their seasons, then their episodes.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator, Sequence

from importer.emulator.jellyfin.catalog import EPISODE, SEASON, SERIES, Catalog, Folder, Ref
from importer.emulator.jellyfin.dto import Renderer
from importer.emulator.jellyfin.episodes import render_episodes
from importer.emulator.jellyfin.folders import render_seasons, render_series
from importer.emulator.jellyfin.query import ItemsQuery
from importer.emulator.library import (
    DOUBLE_SECOND,
    VIRTUAL,
    Episode,
    Library,
    Season,
    View,
    episode_time_bounds,
    slot_flags,
)


class Source:
    """A run of items of one kind, in listing order, that renders any slice of itself."""

    def __len__(self) -> int:
        raise NotImplementedError

    def render(self, r: Renderer, start: int, stop: int, out: list[str]) -> None:
        raise NotImplementedError

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        """The refs of the items that pass the query's virtual and date filters."""
        raise NotImplementedError


class Listing:
    """Sources one after the other: what a query lists, paged without materialising it."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = [s for s in sources if len(s)]
        self.total = sum(len(s) for s in self.sources)

    def render(self, r: Renderer, start: int, stop: int, descending: bool, out: list[str]) -> None:
        start, stop = max(start, 0), min(stop, self.total)
        if start >= stop:
            return
        if descending:
            first = len(out)
            self._render(r, self.total - stop, self.total - start, out)
            out[first:] = out[first:][::-1]
        else:
            self._render(r, start, stop, out)

    def _render(self, r: Renderer, start: int, stop: int, out: list[str]) -> None:
        at = 0
        for source in self.sources:
            n = len(source)
            if at + n > start and at < stop:
                source.render(r, max(start - at, 0), min(stop - at, n), out)
            at += n
            if at >= stop:
                break


class Lister:
    """The listings of one server's queries. A filter no library view expresses (a date,
    only missing episodes) lists the matching refs once, kept for the following pages."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._filtered: OrderedDict[tuple[object, ...], list[Ref]] = OrderedDict()

    def forget(self) -> None:
        self._filtered.clear()

    def listing(self, query: ItemsQuery) -> Listing:
        if query.empty:
            return Listing([])
        if query.ids is not None:
            return Listing([_RefSource(self.catalog, self._id_refs(query))])
        sources = self._scope_sources(query)
        if not query.needs_filter:
            return Listing(sources)
        key = query.cache_key()
        refs = self._filtered.get(key)
        if refs is None:
            refs = [ref for source in sources for ref in source.filtered(query)]
            self._filtered[key] = refs
            if len(self._filtered) > 16:
                self._filtered.popitem(last=False)
        else:
            self._filtered.move_to_end(key)
        return Listing([_RefSource(self.catalog, refs)])

    def _id_refs(self, query: ItemsQuery) -> list[Ref]:
        """The items with these ids, below ``ParentId`` when one is given: the query still
        runs on that folder (``Folder.GetItems``), so an id elsewhere is not listed."""
        refs = set()
        for item_id in query.ids or ():
            found = self.catalog.lookup(item_id)
            if (
                isinstance(found, Ref)
                and found.kind in query.kinds
                and _below(found, query.parent)
                and passes(self.catalog, found, query)
            ):
                refs.add(found)
        return sorted(refs)  # listing order, not the order asked for

    def _scope_sources(self, query: ItemsQuery) -> list[Source]:
        catalog = self.catalog
        kinds = query.kinds
        view = View.JELLYFIN_PRESENT if query.virtual is False else View.JELLYFIN
        out: list[Source] = []
        parent = query.parent
        if parent is None:  # recursive from the root: every TV library
            for lib_index in range(len(catalog.libraries)):
                out += self._library_sources(lib_index, kinds, True, view)
            return out
        if isinstance(parent, Folder):
            if parent.lib is None:  # the movie library holds no TV items
                return out
            return self._library_sources(parent.lib, kinds, query.recursive, view)
        library = catalog.libraries[parent.lib]
        show = library.shows[parent.show]
        if parent.kind == SERIES:
            if SEASON in kinds:
                out.append(_SeasonSource(catalog, parent.lib, [show.index]))
            if EPISODE in kinds and query.recursive:
                out.append(_EpisodeListSource(catalog, parent.lib, list(library.view_of(show, view))))
        elif parent.kind == SEASON and EPISODE in kinds:
            # The season's children: episodes filed under it (not those without a SeasonId).
            number = library.seasons_of(show)[parent.pos].season_number
            eps = [e for e in library.view_of(show, view) if e.season_number == number and e.has_season_id]
            out.append(_EpisodeListSource(catalog, parent.lib, eps))
        return out

    def _library_sources(
        self, lib_index: int, kinds: frozenset[int], recursive: bool, view: View
    ) -> list[Source]:
        shows = range(len(self.catalog.libraries[lib_index].shows))
        out: list[Source] = []
        if SERIES in kinds:
            out.append(_SeriesSource(self.catalog, lib_index, shows))
        if recursive and SEASON in kinds:
            out.append(_SeasonSource(self.catalog, lib_index, shows))
        if recursive and EPISODE in kinds:
            out.append(_EpisodeLibrarySource(self.catalog, lib_index, view))
        return out


def passes(catalog: Catalog, ref: Ref, query: ItemsQuery) -> bool:
    """Whether one item passes the query's virtual and date filters."""
    library = catalog.libraries[ref.lib]
    if ref.kind == EPISODE:
        ep = catalog.episode(ref)
        if query.virtual is not None and ep.virtual != query.virtual:
            return False
        saved = ep.updated_at
    else:
        if query.virtual:  # only episodes can be missing
            return False
        show = library.shows[ref.show]
        saved = show.updated_at if ref.kind == SERIES else library.seasons_of(show)[ref.pos].updated_at
    return query.min_saved is None or saved >= query.min_saved


def render_refs(r: Renderer, catalog: Catalog, refs: Sequence[Ref], out: list[str]) -> None:
    """Render refs in order, handing runs of episodes of one library to the hot loop."""
    at = 0
    while at < len(refs):
        ref = refs[at]
        end = at + 1
        while end < len(refs) and refs[end].kind == ref.kind and refs[end].lib == ref.lib:
            end += 1
        run = refs[at:end]
        library = catalog.libraries[ref.lib]
        if ref.kind == EPISODE:
            render_episodes(r, ref.lib, (catalog.episode(x) for x in run), out)
        elif ref.kind == SEASON:
            render_seasons(r, ref.lib, (library.seasons_of(library.shows[x.show])[x.pos] for x in run), out)
        else:
            render_series(r, ref.lib, (library.shows[x.show] for x in run), out)
        at = end


class _SeriesSource(Source):
    def __init__(self, catalog: Catalog, lib_index: int, shows: Sequence[int]) -> None:
        self.catalog, self.lib_index, self.shows = catalog, lib_index, shows

    def __len__(self) -> int:
        return len(self.shows)

    def render(self, r: Renderer, start: int, stop: int, out: list[str]) -> None:
        library = self.catalog.libraries[self.lib_index]
        render_series(r, self.lib_index, (library.shows[i] for i in self.shows[start:stop]), out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        for i in self.shows:
            ref = Ref(SERIES, self.lib_index, i, 0)
            if passes(self.catalog, ref, query):
                yield ref


class _SeasonSource(Source):
    """Seasons of some shows (all of a library, or one), paged through prefix sums."""

    def __init__(self, catalog: Catalog, lib_index: int, shows: Sequence[int]) -> None:
        self.catalog, self.lib_index, self.shows = catalog, lib_index, shows
        library = catalog.libraries[lib_index]
        if len(shows) == len(library.shows):
            self.prefix = catalog.season_prefix(lib_index)
        else:
            self.prefix = [0]
            for i in shows:
                self.prefix.append(self.prefix[-1] + len(library.shows[i].season_sizes))

    def __len__(self) -> int:
        return self.prefix[-1]

    def _seasons(self, start: int, stop: int) -> Iterator[Season]:
        library = self.catalog.libraries[self.lib_index]
        pos = bisect.bisect_right(self.prefix, start) - 1
        at = start
        while at < stop and pos < len(self.shows):
            seasons = library.seasons_of(library.shows[self.shows[pos]])
            first = at - self.prefix[pos]
            take = seasons[first : first + (stop - at)]
            yield from take
            at += len(take)
            pos += 1

    def render(self, r: Renderer, start: int, stop: int, out: list[str]) -> None:
        render_seasons(r, self.lib_index, self._seasons(start, stop), out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        library = self.catalog.libraries[self.lib_index]
        for i in self.shows:
            for ordinal in range(len(library.shows[i].season_sizes)):
                ref = Ref(SEASON, self.lib_index, i, ordinal)
                if passes(self.catalog, ref, query):
                    yield ref


class _EpisodeLibrarySource(Source):
    """Every episode of a library in one view, paged by the library without building the rest."""

    def __init__(self, catalog: Catalog, lib_index: int, view: View) -> None:
        self.lib_index, self.view = lib_index, view
        self.library: Library = catalog.libraries[lib_index]

    def __len__(self) -> int:
        return self.library.episode_total(self.view)

    def render(self, r: Renderer, start: int, stop: int, out: list[str]) -> None:
        render_episodes(r, self.lib_index, self.library.episodes(self.view, start, stop), out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        """Shows whose episodes were all saved before the date bound are skipped, and shows
        saved entirely after it are taken whole, from their time bounds and slot flags: only
        shows that straddle the bound are generated (as an indexed query would)."""
        library = self.library
        bound = query.min_saved
        want_virtual = query.virtual
        for show in library.shows:
            whole = True
            if bound is not None:
                _, _, first_saved, last_saved = episode_time_bounds(show)
                if last_saved < bound:
                    continue
                whole = first_saved >= bound
            if whole:
                pos = 0
                for flag in slot_flags(show, library.spec.shape):
                    if flag == DOUBLE_SECOND:
                        continue
                    if want_virtual is None or (flag == VIRTUAL) == want_virtual:
                        yield Ref(EPISODE, self.lib_index, show.index, pos)
                    pos += 1
            else:
                assert bound is not None
                for pos, ep in enumerate(library.view_of(show, View.JELLYFIN)):
                    if (want_virtual is None or ep.virtual == want_virtual) and ep.updated_at >= bound:
                        yield Ref(EPISODE, self.lib_index, show.index, pos)


class _EpisodeListSource(Source):
    """Episodes already at hand (one show's, one season's)."""

    def __init__(self, catalog: Catalog, lib_index: int, eps: list[Episode]) -> None:
        self.catalog, self.lib_index, self.eps = catalog, lib_index, eps

    def __len__(self) -> int:
        return len(self.eps)

    def render(self, r: Renderer, start: int, stop: int, out: list[str]) -> None:
        render_episodes(r, self.lib_index, self.eps[start:stop], out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        library = self.catalog.libraries[self.lib_index]
        positions: dict[int, dict[int, int]] = {}
        for ep in self.eps:
            where = positions.get(ep.show_index)
            if where is None:
                view = library.view_of(library.shows[ep.show_index], View.JELLYFIN)
                where = positions[ep.show_index] = {e.ordinal: k for k, e in enumerate(view)}
            if query.virtual is not None and ep.virtual != query.virtual:
                continue
            if query.min_saved is not None and ep.updated_at < query.min_saved:
                continue
            yield Ref(EPISODE, self.lib_index, ep.show_index, where[ep.ordinal])


class _RefSource(Source):
    """A materialised, filtered listing."""

    def __init__(self, catalog: Catalog, refs: list[Ref]) -> None:
        self.catalog, self.items = catalog, refs

    def __len__(self) -> int:
        return len(self.items)

    def render(self, r: Renderer, start: int, stop: int, out: list[str]) -> None:
        render_refs(r, self.catalog, self.items[start:stop], out)

    def filtered(self, query: ItemsQuery) -> Iterator[Ref]:
        return (ref for ref in self.items if passes(self.catalog, ref, query))


def _below(ref: Ref, parent: Ref | Folder | None) -> bool:
    """Whether the item is the parent's descendant (anywhere, without a parent)."""
    if parent is None:
        return True
    if isinstance(parent, Folder):
        return parent.lib == ref.lib
    return (parent.lib, parent.show) == (ref.lib, ref.show) and ref.kind > parent.kind
