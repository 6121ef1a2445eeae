"""The generated library: deterministic, the shapes the issue asks for, cheap random access."""

from __future__ import annotations

import itertools

import pytest

from importer.emulator.library import Library, LibrarySpec, View


@pytest.fixture(scope="module")
def varied() -> Library:
    return Library(LibrarySpec(seed=7, shows=100))


def test_same_seed_same_library() -> None:
    a, b = Library(LibrarySpec(seed=3, shows=30)), Library(LibrarySpec(seed=3, shows=30))
    assert list(a.episodes(View.JELLYFIN)) == list(b.episodes(View.JELLYFIN))
    assert [s.title for s in a.shows] == [s.title for s in b.shows]
    c = Library(LibrarySpec(seed=4, shows=30))
    assert [s.title for s in a.shows] != [s.title for s in c.shows]


def test_seed_shape_is_exactly_the_seed_library() -> None:
    lib = Library(LibrarySpec(shows=100, shape="seed"))
    assert len(lib.shows) == 100
    assert lib.season_total() == 500
    for view in View:
        assert lib.episode_total(view) == 5000
    eps = list(lib.episodes(View.PLEX))
    assert {(e.season_number, e.episode_number) for e in eps} == {
        (s, e) for s in range(1, 6) for e in range(1, 11)
    }
    assert all(len(e.files) == 1 and e.ids.imdb and e.ids.tvdb for e in eps)


def test_varied_shapes_are_present(varied: Library) -> None:
    shows = varied.shows
    eps = list(varied.episodes(View.JELLYFIN))
    assert any(len(s.season_sizes) >= 20 for s in shows), "a long-running show"
    assert any(len(s.season_sizes) == 1 and s.slot_count > 1000 for s in shows), "a 1,000+ episode season"
    assert any(e.season_number == 0 for e in eps), "specials"
    assert any(e.episode_number_end for e in eps), "double episodes"
    assert any(e.virtual and not e.files for e in eps), "virtual episodes"
    assert any(len({f.media_index for f in e.files}) == 2 for e in eps), "two versions"
    assert any(len({f.part_index for f in e.files}) == 2 for e in eps), "one file in two parts"
    assert any(e.summary is None for e in eps) and any(e.air_date is None for e in eps), "missing fields"
    assert any(e.summary and len(e.summary) >= 10_000 for e in eps), "10 kB summaries"
    assert any(any(ord(c) > 0xFFFF for c in e.title) for e in eps), "emoji titles"
    assert any(e.ids.imdb is None and e.ids.tmdb is None for e in eps), "items without external ids"
    assert sum(e.ids.tmdb is not None for e in eps) > 0.8 * len(eps), "most items have ids"
    assert any(s.hidden_seasons for s in shows) and any(s.legacy_agent for s in shows)
    assert any(not e.has_season_id for e in eps), "Jellyfin episodes without SeasonId"


def test_double_episodes_share_one_part(varied: Library) -> None:
    plex = list(varied.episodes(View.PLEX))
    pairs = [(a, b) for a, b in itertools.pairwise(plex) if a.episode_number_end]
    assert pairs
    for first, second in pairs:
        assert second.double_second and second.episode_number == first.episode_number_end
        assert first.files[0].part_key == second.files[0].part_key
    jf = list(varied.episodes(View.JELLYFIN))
    assert not any(e.double_second for e in jf)
    assert varied.episode_total(View.PLEX) - varied.episode_total(View.JELLYFIN_PRESENT) == len(pairs)


@pytest.mark.parametrize("view", list(View))
@pytest.mark.parametrize("by_key", [False, True])
def test_paging_equals_the_whole_listing(varied: Library, view: View, by_key: bool) -> None:
    whole = list(varied.episodes(view, by_key=by_key))
    assert len(whole) == varied.episode_total(view)
    pages = []
    for start in range(0, len(whole), 777):
        pages += list(varied.episodes(view, start, start + 777, by_key=by_key))
    assert pages == whole


def test_key_order_sorts_by_rating_key(varied: Library) -> None:
    keys = [varied.plex_episode_key(e) for e in varied.episodes(View.PLEX, by_key=True)]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    title_keys = [varied.plex_episode_key(e) for e in varied.episodes(View.PLEX)]
    assert title_keys != keys, "title order and added order differ, as on a real server"


def test_rating_keys_resolve(varied: Library) -> None:
    for show in varied.shows[:10]:
        assert varied.plex_lookup(varied.plex_show_key(show)) == ("show", show, 0)
        for season in varied.seasons_of(show):
            assert varied.plex_lookup(varied.plex_season_key(season)) == ("season", show, season.ordinal)
        for ep in varied.view_of(show, View.PLEX):
            assert varied.plex_lookup(varied.plex_episode_key(ep)) == ("episode", show, ep.ordinal)
    assert varied.plex_lookup(1) is None


def test_exact_episode_count() -> None:
    for n in (1, 57, 12_345):
        lib = Library(LibrarySpec(seed=2, episodes=n))
        assert lib.episode_total(View.PLEX) == n
        assert sum(1 for _ in lib.episodes(View.PLEX)) == n


def test_jellyfin_ids_are_unique_hex(varied: Library) -> None:
    ids = {varied.jellyfin_id(3, e.show_index, e.ordinal) for e in varied.episodes(View.JELLYFIN)}
    ids |= {varied.jellyfin_id(1, s.index) for s in varied.shows}
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(ids) == varied.episode_total(View.JELLYFIN) + len(varied.shows)
