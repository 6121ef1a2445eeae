"""What changed in a server's libraries, in that server's own ids.

A :class:`Tracker` keeps, per show, the items a full listing gives (the show, its
seasons, its episodes) with a fingerprint of what a client stores of each (title,
parents, numbers, dates, files, counts). After a change it recomputes only the shows that
changed and reports which items were added, updated (fingerprint differs) and removed.

Which shows changed is read cheaply from the show itself: every change goes through
``changes.py``, which gives an edited show new ``slots``, ``idents`` and ``seasons`` lists
(``changes.refresh``), or changes its own fields (a rename); a deleted show leaves the
list. The tracker holds the lists it saw, so that their identities stay unique.

A server kind says what its items are with a :class:`Naming` (``feeds/plex.py``,
``feeds/jellyfin.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from importer.emulator.library import Library, Show

SHOW, SEASON, EPISODE = 2, 3, 4  # Plex metadata types; the feeds use them for every server


class Item(NamedTuple):
    """One listed item as a feed reports it."""

    type: int  # SHOW, SEASON or EPISODE
    id: str  # the server's id (Plex ratingKey, Jellyfin 32-hex Id, Emby number)
    section: int  # Plex section key; Jellyfin/Emby: the library's index
    parent: str | None  # season (episode), show (season); None for a show
    root: str | None  # show (season, episode); None for a show
    title: str
    updated_at: int
    fingerprint: int  # hash of what a client stores of the item


class Diff(NamedTuple):
    added: list[Item]  # shows first, then seasons, then episodes
    updated: list[Item]
    removed: list[Item]  # episodes first, then seasons, then shows

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)


class Naming(Protocol):
    """A server kind's items."""

    def libraries(self) -> list[Library]: ...

    def items(self, lib_index: int, show: Show) -> Iterable[Item]:
        """Every item a full listing gives of ``show`` (its episodes as that server lists them)."""
        ...


def episode_fields(ep: object) -> tuple[object, ...]:
    """What a client stores of an episode, without its place in the show's slot list
    (``show_index`` and ``ordinal`` move when other shows or episodes change)."""
    assert isinstance(ep, tuple)
    return tuple(ep[2:])


def show_fields(show: Show) -> tuple[object, ...]:
    return (
        show.title, show.sort_title, show.year, show.summary, show.studio, show.content_rating, show.ids,
        show.legacy_agent, show.hidden_seasons, show.added_at, show.updated_at,
    )  # fmt: skip


def _signature(show: Show) -> tuple[object, ...]:
    """Changes when anything listed of the show may have changed (see the module doc)."""
    edit = show.edit
    if edit is None:
        return (0, 0, 0, 0, show.season_sizes, *show_fields(show))
    lists = (id(edit), id(edit.slots), id(edit.idents), id(edit.seasons))
    return (*lists, show.season_sizes, *show_fields(show))


def _kept(show: Show) -> tuple[object, ...]:
    """The objects whose ids are in the signature, held so that no new one gets the same id."""
    edit = show.edit
    return () if edit is None else (edit, edit.slots, edit.idents, edit.seasons)


@dataclass(slots=True)
class _ShowState:
    show: Show
    signature: tuple[object, ...]
    kept: tuple[object, ...]
    items: dict[str, Item]


class Tracker:
    """The items of every library as last reported; :meth:`diff` reports what changed since."""

    def __init__(self, naming: Naming) -> None:
        self.naming = naming
        self._states: list[dict[int, _ShowState]] = []
        #: every current item by id (what a client that applied every diff holds)
        self.index: dict[str, Item] = {}
        self.snapshot()

    def snapshot(self) -> None:
        """Forget what was reported and take the libraries as they are now."""
        self._states = []
        self.index = {}
        for lib_index, lib in enumerate(self.naming.libraries()):
            states: dict[int, _ShowState] = {}
            for show in lib.shows:
                st = self._state(lib_index, show)
                states[id(show)] = st
                self.index.update(st.items)
            self._states.append(states)

    def _state(self, lib_index: int, show: Show) -> _ShowState:
        items = {it.id: it for it in self.naming.items(lib_index, show)}
        return _ShowState(show, _signature(show), _kept(show), items)

    def diff(self) -> Diff:
        """What changed since the last diff (or snapshot), and take it as reported."""
        before: dict[str, Item] = {}
        after: dict[str, Item] = {}
        libraries = self.naming.libraries()
        while len(self._states) < len(libraries):
            self._states.append({})
        for lib_index, lib in enumerate(libraries):
            states = self._states[lib_index]
            seen: set[int] = set()
            for show in lib.shows:
                key = id(show)
                seen.add(key)
                st = states.get(key)
                if st is not None and st.signature == _signature(show):
                    continue
                new = self._state(lib_index, show)
                if st is not None:
                    before.update(st.items)
                after.update(new.items)
                states[key] = new
            for key in [k for k in states if k not in seen]:
                before.update(states.pop(key).items)
        added = [it for i, it in after.items() if i not in before]
        updated = [it for i, it in after.items() if i in before and before[i].fingerprint != it.fingerprint]
        removed = [it for i, it in before.items() if i not in after]
        for it in removed:
            self.index.pop(it.id, None)
        self.index.update(after)
        added.sort(key=lambda it: it.type)
        updated.sort(key=lambda it: it.type)
        removed.sort(key=lambda it: -it.type)
        return Diff(added, updated, removed)
