"""Changes to a generated library: shows that a mutation touched stop being derived from
their seed and keep their seasons and episodes explicitly (a :class:`ShowEdit`).

Positions stay positional: an edited show's episodes are numbered 0..n-1 (``ordinal``)
in season order, so every count, view and slice that works on a generated show works on
an edited one. What an item *is* moves into :class:`Ident` instead: the Plex ratingKey,
the source of its Plex guid and of its Jellyfin Id. An untouched show has no ``ShowEdit``
and costs nothing; its ids come from the usual formulas.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from importer.emulator.library import (
    _CONTAINERS,
    _EP_TITLE_WORDS,
    _RESOLUTIONS,
    DOUBLE_FIRST,
    DOUBLE_SECOND,
    VIRTUAL,
    Episode,
    ExternalIds,
    Library,
    MediaFile,
    Season,
    Show,
    mix,
)
from importer.emulator.library import _ymd as ymd

#: Part and Media ids of replaced or new files start here: above every generated one
#: (``(seed % 10**9) * 1000 + ordinal * 4``) and below the next section's media offset.
NEW_MEDIA_BASE = 5 * 10**12


class Ident(NamedTuple):
    """Who an episode is, whatever show or season it sits in."""

    plex_key: int  # library-relative ratingKey
    guid: tuple[int, int]  # (seed, n): Plex guid plex://episode/<prefix of seed><n:08x>
    jf: tuple[int, int]  # (seed, n): Jellyfin Id, as Library.jellyfin_id(3) of that show and slot


@dataclass(slots=True)
class ShowEdit:
    """An edited show's seasons and episodes, kept explicitly."""

    seasons: list[Season]  # by ordinal; new seasons are appended, none are removed
    season_keys: list[int]  # Plex ratingKey per season ordinal (library-relative)
    slots: list[Episode]  # in season ordinal order; ordinal == position
    idents: list[Ident]  # per slot
    next_n: int  # fresh numbers for the guids and Jellyfin ids of new episodes
    flags: list[int] = field(default_factory=list)
    bounds: tuple[int, int, int, int] = (0, 0, 0, 0)
    key_range: tuple[int, int] = (0, 0)
    number_range: tuple[int, int] = (1, 1)
    key_pos: dict[int, tuple[str, int]] = field(default_factory=dict)


def materialize(lib: Library, show: Show) -> ShowEdit:
    """The show's edit, made from its generated seasons and episodes on first change."""
    if show.edit is not None:
        return show.edit
    seasons = lib.seasons_of(show)
    slots = lib.episodes_of(show)
    base = lib.plex_show_key(show)
    ep_key0 = base + 1 + len(seasons)
    seed = show.seed
    edit = ShowEdit(
        seasons=seasons,
        season_keys=[base + 1 + s.ordinal for s in seasons],
        slots=slots,
        idents=[Ident(ep_key0 + e.ordinal, (seed, e.ordinal), (seed, e.ordinal)) for e in slots],
        next_n=len(slots),
    )
    show.edit = edit
    refresh(lib, show)
    return edit


def refresh(lib: Library, show: Show) -> None:
    """Renumber an edited show after a change and recompute what is derived from it."""
    edit = show.edit
    assert edit is not None
    order = {s.season_number: s.ordinal for s in edit.seasons}
    pairs = sorted(
        zip(edit.slots, edit.idents, strict=True),
        key=lambda p: (order[p[0].season_number], p[0].episode_number, p[0].double_second),
    )
    edit.slots = [e._replace(show_index=show.index, ordinal=k) for k, (e, _) in enumerate(pairs)]
    edit.idents = [i for _, i in pairs]
    sizes = [0] * len(edit.seasons)
    for e in edit.slots:
        sizes[order[e.season_number]] += 1
    edit.seasons = [replace(s, show_index=show.index, episode_count=sizes[s.ordinal]) for s in edit.seasons]
    show.season_sizes = tuple((s.season_number, sizes[s.ordinal]) for s in edit.seasons)
    edit.flags = [_flag(e) for e in edit.slots]
    eps = edit.slots
    if eps:
        added = [e.added_at for e in eps]
        updated = [e.updated_at for e in eps]
        edit.bounds = (min(added), max(added), min(updated), max(updated))
        keys = [i.plex_key for i in edit.idents]
        edit.key_range = (min(keys), max(keys))
        numbers = [e.episode_number for e in eps]
        edit.number_range = (min(numbers), max(numbers))
    else:  # bounds nothing passes: an empty range
        edit.bounds = (1, 0, 1, 0)
        edit.key_range = (1, 0)
        edit.number_range = (1, 0)
    edit.key_pos = {k: ("season", o) for o, k in enumerate(edit.season_keys)}
    edit.key_pos.update((i.plex_key, ("episode", o)) for o, i in enumerate(edit.idents))
    for key in edit.key_pos:
        lib.key_owner[key] = show
    show.counts.clear()


def _flag(e: Episode) -> int:
    if e.virtual:
        return VIRTUAL
    if e.double_second:
        return DOUBLE_SECOND
    return DOUBLE_FIRST if e.episode_number_end is not None else 0


def _next_number(edit: ShowEdit, season_number: int) -> int:
    """The episode number after the last one of a season."""
    last = (e.episode_number_end or e.episode_number for e in edit.slots if e.season_number == season_number)
    return 1 + max(last, default=0)


def _no_season_ids(show: Show, season_number: int) -> bool:
    """Jellyfin lists some shows' episodes without SeasonId (the generator's rule)."""
    return not show.plain and show.seed % 17 == 0 and season_number > 0


def new_episode(lib: Library, show: Show, season_number: int, now: int) -> tuple[Episode, Ident]:
    """A new episode at the end of a season: new ratingKey, guid and Jellyfin Id."""
    edit = materialize(lib, show)
    n = edit.next_n
    edit.next_n += 1
    number = _next_number(edit, season_number)
    h = mix(show.seed, 90, n)
    title = f"{_EP_TITLE_WORDS[h % len(_EP_TITLE_WORDS)]} {_EP_TITLE_WORDS[(h >> 5) % len(_EP_TITLE_WORDS)]}"
    duration = 1_200_000 + h % 2_400_000
    ep = Episode(
        show.index,
        0,
        season_number,
        number,
        None,
        False,
        False,
        title,
        None,
        ymd(now),
        duration,
        ExternalIds(None, str(100_000 + (h >> 9) % 4_000_000), str(1_000_000 + (h >> 17) % 9_000_000)),
        now,
        now,
        (new_file(lib, show, season_number, number, h, duration),),
        not _no_season_ids(show, season_number),
    )
    return ep, Ident(lib.new_plex_key(), (show.seed, n), (show.seed, n))


def new_file(lib: Library, show: Show, season_number: int, number: int, h: int, duration: int) -> MediaFile:
    """A file never seen before: new Media and Part ids, a new path."""
    container, vcodec, acodec = _CONTAINERS[(h >> 8) % len(_CONTAINERS)]
    width, height = _RESOLUTIONS[(h >> 12) % len(_RESOLUTIONS)]
    media_id = NEW_MEDIA_BASE + lib.next_media
    lib.next_media += 1
    path = (
        f"/data/TV/{show.title}/Season {season_number:02d}/{show.title} - S{season_number:02d}E{number:02d}"
        f" [{media_id - NEW_MEDIA_BASE}].{container}"
    )
    size = 200_000_000 + (h >> 4) % 3_000_000_000
    return MediaFile(0, 0, path, size, container, vcodec, acodec, width, height, duration, media_id, media_id)


def detach(edit: ShowEdit, at: int) -> None:
    """Before slot ``at`` leaves its show: its double-episode partner becomes a plain episode."""
    ep = edit.slots[at]
    if ep.episode_number_end is not None and at + 1 < len(edit.slots) and edit.slots[at + 1].double_second:
        edit.slots[at + 1] = edit.slots[at + 1]._replace(double_second=False)
    if ep.double_second and at > 0 and edit.slots[at - 1].episode_number_end is not None:
        edit.slots[at - 1] = edit.slots[at - 1]._replace(episode_number_end=None)


# ----------------------------------------------------------------------------- the changes
def add_episode(lib: Library, show_index: int, now: int) -> Episode:
    show = lib.shows[show_index]
    edit = materialize(lib, show)
    if not edit.seasons:
        raise ValueError(f"show {show_index} has no season to add an episode to")
    ep, ident = new_episode(lib, show, edit.seasons[-1].season_number, now)
    return _insert(lib, show, ep, ident)


def update_episode(lib: Library, show_index: int, ordinal: int, now: int) -> Episode:
    show = lib.shows[show_index]
    edit = materialize(lib, show)
    ep = edit.slots[ordinal]
    title, _, rev = ep.title.rpartition(" (rev ")
    revision = int(rev[:-1]) + 1 if title and rev.endswith(")") and rev[:-1].isdigit() else 2
    base = title if title and rev.endswith(")") else ep.title
    edit.slots[ordinal] = ep._replace(title=f"{base} (rev {revision})", updated_at=now)
    refresh(lib, show)
    return edit.slots[ordinal]


def delete_episode(lib: Library, show_index: int, ordinal: int) -> Episode:
    show = lib.shows[show_index]
    materialize(lib, show)
    ep, ident = _remove(lib, show, ordinal)
    del lib.key_owner[ident.plex_key]
    refresh(lib, show)
    return ep


def move_episode(
    lib: Library, show_index: int, ordinal: int, to_show_index: int, to_season_number: int, now: int
) -> Episode:
    show, target = lib.shows[show_index], lib.shows[to_show_index]
    target_edit = materialize(lib, target)
    if all(s.season_number != to_season_number for s in target_edit.seasons):
        raise ValueError(f"show {to_show_index} has no season {to_season_number}")
    materialize(lib, show)
    ep, ident = _remove(lib, show, ordinal)
    refresh(lib, show)
    number = _next_number(target_edit, to_season_number)
    moved = ep._replace(
        show_index=target.index, season_number=to_season_number, episode_number=number,
        episode_number_end=None, double_second=False, updated_at=now,
        has_season_id=not _no_season_ids(target, to_season_number),
    )  # fmt: skip
    return _insert(lib, target, moved, ident)


def rename_show(lib: Library, show_index: int, title: str, now: int) -> Show:
    show = lib.shows[show_index]
    # Generated paths contain the title: frozen first, the files stay where they are.
    materialize(lib, show)
    show.title = title
    show.sort_title = title[4:] if title.startswith("The ") else title
    show.updated_at = now
    return show


def add_season(lib: Library, show_index: int, episodes: int, now: int) -> Season:
    show = lib.shows[show_index]
    edit = materialize(lib, show)
    number = 1 + max((s.season_number for s in edit.seasons), default=0)
    ordinal = len(edit.seasons)
    season = Season(show.index, ordinal, number, f"Season {number}", 0, now, now)
    edit.seasons.append(season)
    edit.season_keys.append(lib.new_plex_key())
    refresh(lib, show)
    for _ in range(episodes):
        ep, ident = new_episode(lib, show, number, now)
        _insert(lib, show, ep, ident)
    return edit.seasons[ordinal]


def replace_file(lib: Library, show_index: int, ordinal: int, now: int) -> Episode:
    """As Plex on a replaced file: a new item (ratingKey, part) with the old guid; Jellyfin
    keys items by path, so the episode gets a new Id."""
    show = lib.shows[show_index]
    edit = materialize(lib, show)
    ep, ident = edit.slots[ordinal], edit.idents[ordinal]
    if ep.virtual or not ep.files:
        raise ValueError(f"episode {show_index}/{ordinal} has no file to replace")
    n = edit.next_n
    edit.next_n += 1
    h = mix(show.seed, 91, n)
    duration = ep.duration_ms or ep.files[0].duration_ms
    _remove(lib, show, ordinal)
    del lib.key_owner[ident.plex_key]
    new = ep._replace(
        episode_number_end=None, double_second=False, added_at=now, updated_at=now, duration_ms=duration,
        files=(new_file(lib, show, ep.season_number, ep.episode_number, h, duration),),
    )  # fmt: skip
    return _insert(lib, show, new, Ident(lib.new_plex_key(), ident.guid, (show.seed, n)))


def delete_show(lib: Library, show_index: int) -> Show:
    show = lib.shows[show_index]
    if show.edit is not None:
        for key in show.edit.key_pos:
            lib.key_owner.pop(key, None)
    lib.remove_show(show_index)
    return show


def _remove(lib: Library, show: Show, ordinal: int) -> tuple[Episode, Ident]:
    edit = show.edit
    assert edit is not None
    detach(edit, ordinal)
    ep, ident = edit.slots.pop(ordinal), edit.idents.pop(ordinal)
    return ep, ident


def _insert(lib: Library, show: Show, ep: Episode, ident: Ident) -> Episode:
    edit = show.edit
    assert edit is not None
    edit.slots.append(ep)
    edit.idents.append(ident)
    refresh(lib, show)
    return next(e for e, i in zip(edit.slots, edit.idents, strict=True) if i == ident)
