"""Random changes to a library, for tests and benches: ``count`` changes of one kind to
targets picked from a seed, so that a run can be repeated exactly."""

from __future__ import annotations

import random
from typing import Any, Final

from importer.emulator.library import Episode, Library, Show

#: the kinds ``apply`` knows; "mixed" picks one of the others per change
KINDS: Final = (
    "add", "update", "delete", "move_season", "move_show", "rename", "add_season", "replace", "delete_show",
    "mixed",
)  # fmt: skip


def apply(lib: Library, kind: str, count: int, seed: int, now: int) -> list[dict[str, Any]]:
    """Apply the changes, stamped ``now``; returns one record per change made. A change
    that finds no target (no shows left, nowhere to move to) is skipped."""
    if kind not in KINDS:
        raise ValueError(f"unknown change kind {kind!r}; choose one of {', '.join(KINDS)}")
    rng = random.Random(seed)
    done: list[dict[str, Any]] = []
    for _ in range(count):
        this = rng.choice(KINDS[:-1]) if kind == "mixed" else kind
        record = _one(lib, this, rng, now)
        if record is not None:
            done.append({"kind": this, **record})
    return done


def _plain_slots(lib: Library, show: Show) -> list[int]:
    """Ordinals of the show's episodes that are on disk and not half of a double episode:
    the targets a change can take without side effects on another slot."""
    return [
        e.ordinal
        for e in lib.episodes_of(show)
        if not e.virtual and not e.double_second and e.episode_number_end is None
    ]


def _pick_episode(lib: Library, rng: random.Random) -> tuple[Show, int] | None:
    for _ in range(50):
        if not lib.shows:
            return None
        show = rng.choice(lib.shows)
        slots = _plain_slots(lib, show)
        if slots:
            return show, rng.choice(slots)
    return None


def _describe(lib: Library, ep: Episode) -> dict[str, Any]:
    show = lib.shows[ep.show_index]
    return {
        "show_index": ep.show_index,
        "show_title": show.title,
        "ordinal": ep.ordinal,
        "season_number": ep.season_number,
        "episode_number": ep.episode_number,
        "title": ep.title,
        "plex_key": lib.plex_episode_key(ep),  # library-relative: add the section's key offset
        "jellyfin_id": lib.jellyfin_id(3, ep.show_index, ep.ordinal),
    }


def _one(lib: Library, kind: str, rng: random.Random, now: int) -> dict[str, Any] | None:
    if not lib.shows:
        return None
    if kind in ("add", "rename", "add_season", "delete_show"):
        show = rng.choice(lib.shows)
        if kind == "add":
            if not show.season_sizes:
                return None
            return _describe(lib, lib.add_episode(show.index, now))
        if kind == "rename":
            title = f"{show.title} (renamed {rng.randrange(1_000_000)})"
            lib.rename_show(show.index, title, now)
            return {"show_index": show.index, "show_title": title}
        if kind == "add_season":
            season = lib.add_season(show.index, rng.randint(1, 5), now)
            number, episodes = season.season_number, season.episode_count
            return {"show_index": show.index, "season_number": number, "episodes": episodes}
        title = show.title
        index = show.index
        lib.delete_show(index)
        return {"show_index": index, "show_title": title}
    picked = _pick_episode(lib, rng)
    if picked is None:
        return None
    show, ordinal = picked
    ep = lib.episodes_of(show)[ordinal]
    before = _describe(lib, ep)
    if kind == "update":
        return _describe(lib, lib.update_episode(show.index, ordinal, now))
    if kind == "delete":
        lib.delete_episode(show.index, ordinal)
        return before
    if kind == "replace":
        return {"before": before, **_describe(lib, lib.replace_file(show.index, ordinal, now))}
    if kind == "move_season":
        seasons = [n for n, _ in show.season_sizes if n != ep.season_number]
        if not seasons:
            return None
        moved = lib.move_episode(show.index, ordinal, show.index, rng.choice(seasons), now)
        return {"before": before, **_describe(lib, moved)}
    if kind == "move_show":
        others = [s for s in lib.shows if s is not show and s.season_sizes]
        if not others:
            return None
        target = rng.choice(others)
        number = rng.choice([n for n, _ in target.season_sizes])
        moved = lib.move_episode(show.index, ordinal, target.index, number, now)
        return {"before": before, **_describe(lib, moved)}
    raise ValueError(f"unknown change kind {kind!r}")
