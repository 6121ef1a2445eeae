"""Linking children to their parents once every stream of a library is written.

Pages of shows, seasons and episodes arrive in any order, so a season or an episode may be
written before its parent; its ``show_id``/``season_id`` then stays NULL until
:func:`link`. Episodes without ``season_source_id`` (Plex hidden seasons, Jellyfin items
without SeasonId) get it from the season of their show with the same ``season_number``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw

from importer.model import StreamKind
from importer.store.listing import int_array


@dataclass(slots=True)
class LinkResult:
    """What :func:`link` resolved, and what it could not."""

    seasons_linked: int = 0
    episodes_linked: int = 0
    #: seasons whose show is not in the library (source ids, first 20)
    orphan_seasons: list[str] = field(default_factory=list)
    orphan_season_count: int = 0
    #: episodes left without show_id or season_id: their show or season does not exist
    orphan_episodes: list[str] = field(default_factory=list)
    orphan_episode_count: int = 0

    @property
    def unlinked(self) -> int:
        """Episodes still without show_id or season_id."""
        return self.orphan_episode_count


_SEASONS = (
    "UPDATE seasons SET show_id = (SELECT id FROM shows AS sh WHERE "
    "sh.library_id = seasons.library_id AND sh.source_id = seasons.show_source_id) "
    "WHERE show_id IS NULL AND {where}"
)
_EPISODES = (
    "UPDATE episodes SET "
    "show_id = coalesce(show_id, (SELECT id FROM shows AS sh WHERE "
    "sh.library_id = episodes.library_id AND sh.source_id = episodes.show_source_id)), "
    "season_id = coalesce(season_id, (SELECT id FROM seasons AS se WHERE "
    "se.library_id = episodes.library_id AND se.source_id = episodes.season_source_id)) "
    "WHERE (show_id IS NULL OR season_id IS NULL) AND {where}"
)
_ORPHAN_SEASONS = "SELECT source_id FROM seasons WHERE show_id IS NULL AND {where}"
_ORPHAN_EPISODES = "SELECT source_id FROM episodes WHERE (show_id IS NULL OR season_id IS NULL) AND {where}"
#: season_id IS NULL too (it is, without a season source id): so the season index finds them
_NO_SEASON = (
    "SELECT id, show_source_id, season_number FROM episodes "
    "WHERE season_id IS NULL AND season_source_id IS NULL AND {where}"
)


def link(
    conn: apsw.Connection, library_id: int, only: Mapping[StreamKind, Sequence[int]] | None = None
) -> LinkResult:
    """Resolve the NULL parents of a library's seasons and episodes: every row (``only``
    None: cheap once the late indexes on show_id and season_id exist, a full scan before),
    or just the rows with these local ids (what this run wrote without a parent)."""
    if only is not None and not any(only.values()):
        return LinkResult()

    def where(kind: StreamKind) -> tuple[str, tuple[Any, ...]] | None:
        # "+library_id": not the (library_id, source_id) index, but those on the parent ids
        if only is None:
            return "+library_id = ?", (library_id,)
        ids = sorted(set(only.get(kind, ())))
        return ("id IN carray(?)", (int_array(ids),)) if ids else None  # carray takes no empty array

    result = LinkResult()
    if (seasons := where(StreamKind.SEASONS)) is not None:
        before = conn.total_changes()
        conn.execute(_SEASONS.format(where=seasons[0]), seasons[1])
        touched = conn.total_changes() - before
        result.orphan_seasons, result.orphan_season_count = _orphans(conn, _ORPHAN_SEASONS, *seasons)
        result.seasons_linked = touched - result.orphan_season_count  # it touched the rest too
    if (episodes := where(StreamKind.EPISODES)) is not None:
        _link_season_numbers(conn, library_id, *episodes)
        before = conn.total_changes()
        conn.execute(_EPISODES.format(where=episodes[0]), episodes[1])
        touched = conn.total_changes() - before
        result.orphan_episodes, result.orphan_episode_count = _orphans(conn, _ORPHAN_EPISODES, *episodes)
        result.episodes_linked = touched - result.orphan_episode_count
    return result


def _link_season_numbers(conn: apsw.Connection, library_id: int, where: str, args: tuple[Any, ...]) -> None:
    # A dict of the library's seasons, not SQL: an index on (show_source_id,
    # season_number) would be paid on every season insert for a rare case, and
    # without one a correlated subquery scans the seasons once per episode.
    missing = conn.execute(_NO_SEASON.format(where=where), args).fetchall()
    if not missing:
        return
    by_number: dict[tuple[Any, Any], str] = {}
    by_show: dict[Any, list[str]] = {}
    for source_id, show_source_id, number in conn.execute(
        "SELECT source_id, show_source_id, season_number FROM seasons WHERE library_id = ? ORDER BY id DESC",
        (library_id,),
    ):
        by_number[show_source_id, number] = source_id  # the oldest season wins a tie
        by_show.setdefault(show_source_id, []).append(source_id)
    updates = []
    for episode_id, show, number in missing:
        season = by_number.get((show, number))
        if season is None and number is None and len(only := by_show.get(show, [])) == 1:
            # no season number either: a show with a single season (Plex hides it) owns the episode
            season = only[0]
        if season is not None:
            updates.append((season, episode_id))
    if updates:
        # season_id NULL: the UPDATE in link() resolves it from season_source_id
        conn.executemany("UPDATE episodes SET season_source_id = ?, season_id = NULL WHERE id = ?", updates)


def _orphans(conn: apsw.Connection, sql: str, where: str, args: tuple[Any, ...]) -> tuple[list[str], int]:
    ids = [source_id for (source_id,) in conn.execute(sql.format(where=where), args)]
    return ids[:20], len(ids)
