"""What a server holds and what its ids name: its libraries as folders, and references to
the series, seasons and episodes in them, found by id without listing a library."""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from importer.emulator.jellyfin.ids import NUMBER_HEX, last_round, name_guid, normalize_guid
from importer.emulator.library import DOUBLE_SECOND, Episode, Library, View, mix, slot_flags
from importer.emulator.server import TvLibrary

SERIES, SEASON, EPISODE = 0, 1, 2


class Ref(NamedTuple):
    """An item of a library, in listing order: kind, library, show (title order) and the
    position within the show (season ordinal, or index in the show's Jellyfin view)."""

    kind: int
    lib: int
    show: int
    pos: int


@dataclass(frozen=True)
class Folder:
    """A library as a CollectionFolder / VirtualFolder."""

    id: str
    name: str
    collection_type: str  # "tvshows" or "movies"
    path: str
    lib: int | None  # index into the catalog's libraries for TV libraries


class _IdIndex:
    """Episode id -> Ref for one library: the first 64 bits of every episode id, sorted, with
    the episode's show and position. Built on the first lookup of an episode id (a couple of
    seconds for a million episodes); series and seasons are in a small dict instead."""

    def __init__(self, lib: Library, lib_index: int) -> None:
        keys = array("Q")
        shows = array("I")
        poss = array("I")
        for show in lib.shows:
            state = mix(show.seed, 53)
            pos = 0
            edited = show.edit is not None
            for ordinal, flag in enumerate(slot_flags(show, lib.spec.shape)):
                if flag == DOUBLE_SECOND:  # Jellyfin lists a double episode once
                    continue
                if edited:
                    keys.append(int(lib.jellyfin_id(3, show.index, ordinal)[:16], 16))
                else:
                    keys.append(last_round(state, ordinal))  # the first half of jellyfin_id(3, …)
                shows.append(show.index)
                poss.append(pos)
                pos += 1
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys = array("Q", (keys[i] for i in order))
        self._shows = array("I", (shows[i] for i in order))
        self._poss = array("I", (poss[i] for i in order))
        self._lib_index = lib_index

    def find(self, hex_id: str) -> Ref | None:
        key = int(hex_id[:16], 16)
        at = bisect.bisect_left(self._keys, key)
        if at < len(self._keys) and self._keys[at] == key:
            return Ref(EPISODE, self._lib_index, self._shows[at], self._poss[at])
        return None

    def find_number(self, number: int) -> Ref | None:
        """An Emby number (``ids.emby_number``): the first bits of the hex id."""
        shift = 64 - 4 * NUMBER_HEX
        at = bisect.bisect_left(self._keys, number << shift)
        if at < len(self._keys) and self._keys[at] >> shift == number:
            return Ref(EPISODE, self._lib_index, self._shows[at], self._poss[at])
        return None


def _folder_ids(lib: Library, lib_index: int, item_id: Callable[[str], str]) -> dict[str, Ref]:
    """Series and season ids of a library, as served (a few per show: cheap to list)."""
    out: dict[str, Ref] = {}
    for show in lib.shows:
        out[item_id(lib.jellyfin_id(1, show.index))] = Ref(SERIES, lib_index, show.index, 0)
        for ordinal in range(len(show.season_sizes)):
            out[item_id(lib.jellyfin_id(2, show.index, ordinal))] = Ref(
                SEASON, lib_index, show.index, ordinal
            )
    return out


def _same(hex_id: str) -> str:
    return hex_id


class Catalog:
    """The TV libraries of one server, a movie library a TV importer must leave alone, and
    lookups by id (indexes built on first use)."""

    def __init__(
        self, server_id: str, libraries: list[TvLibrary], item_id: Callable[[str], str] | None = None
    ) -> None:
        """``item_id``: the id a client sees of an item's 32-hex id (Emby's numbers); the
        hex id itself by default."""
        self.libraries = [lib.library for lib in libraries]
        self.numeric = item_id is not None
        self.item_id: Callable[[str], str] = item_id or _same
        served = self.item_id
        self.folders = [
            Folder(
                served(name_guid(f"{server_id}:tvshows:{i}:{lib.name}")),
                lib.name,
                "tvshows",
                f"/data/{lib.name}",
                i,
            )
            for i, lib in enumerate(libraries)
        ]
        self.folders.append(
            Folder(served(name_guid(f"{server_id}:movies")), "Movies", "movies", "/data/Movies", None)
        )
        self._id_indexes: dict[int, _IdIndex] = {}
        self._folder_id_maps: dict[int, dict[str, Ref]] = {}
        self._season_prefix: dict[int, list[int]] = {}

    def forget(self) -> None:
        """Drop the indexes (a library changed)."""
        self._id_indexes.clear()
        self._folder_id_maps.clear()
        self._season_prefix.clear()

    def id_index(self, lib_index: int) -> _IdIndex:
        got = self._id_indexes.get(lib_index)
        if got is None:
            got = _IdIndex(self.libraries[lib_index], lib_index)
            self._id_indexes[lib_index] = got
        return got

    def folder_ids(self, lib_index: int) -> dict[str, Ref]:
        got = self._folder_id_maps.get(lib_index)
        if got is None:
            got = _folder_ids(self.libraries[lib_index], lib_index, self.item_id)
            self._folder_id_maps[lib_index] = got
        return got

    def parse_id(self, text: str) -> str | None:
        """An id as this server writes it (any GUID form, or a number), or None when it
        cannot be one of its ids."""
        if self.numeric:
            text = text.strip()
            return text if text.isdigit() and not text.startswith("0") else None
        return normalize_guid(text)

    def lookup(self, item_id: str) -> Ref | Folder | None:
        """What an id names: a library, or a series/season/episode of one."""
        key = self.parse_id(item_id)
        if key is None:
            return None
        for folder in self.folders:
            if folder.id == key:
                return folder
        for lib_index in range(len(self.libraries)):
            ref = self.folder_ids(lib_index).get(key)
            if ref is not None:
                return ref
        for lib_index in range(len(self.libraries)):
            index = self.id_index(lib_index)
            ref = index.find_number(int(key)) if self.numeric else index.find(key)
            if ref is not None and self.ref_id(ref) == key:
                return ref
        return None

    def ref_id(self, ref: Ref) -> str:
        """The id of an item, as served."""
        library = self.libraries[ref.lib]
        if ref.kind == SERIES:
            hex_id = library.jellyfin_id(1, ref.show)
        elif ref.kind == SEASON:
            hex_id = library.jellyfin_id(2, ref.show, ref.pos)
        else:
            hex_id = library.jellyfin_id(3, ref.show, self.episode(ref).ordinal)
        return self.item_id(hex_id)

    def episode(self, ref: Ref) -> Episode:
        library = self.libraries[ref.lib]
        return library.view_of(library.shows[ref.show], View.JELLYFIN)[ref.pos]

    def season_prefix(self, lib_index: int) -> list[int]:
        """Seasons before each show of a library (and all of them, last): pages of seasons."""
        got = self._season_prefix.get(lib_index)
        if got is None:
            got = [0]
            for show in self.libraries[lib_index].shows:
                got.append(got[-1] + len(show.season_sizes))
            self._season_prefix[lib_index] = got
        return got
