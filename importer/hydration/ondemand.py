"""One show, now (``--show``, ``importer.hydrate(show=...)``): what an app asks for when a
user opens a show. Whatever its etag, in at most 3 requests for a show of up to 100
episodes, the identity check included: on Plex the show, then its stored episodes by key
(100 a request); on Jellyfin/Emby the show, then its episodes in one listing."""

from __future__ import annotations

from importer.hydration import select
from importer.hydration.batches import Batches
from importer.hydration.kinds import JellyfinKind
from importer.hydration.model import Target
from importer.hydration.result import LibraryHydration


async def one_show(
    batches: Batches, show: select.StoredShow, episodes: bool, result: LibraryHydration
) -> None:
    lib, progress = show.library, batches.progress
    progress.set_total(lib.title, "shows", 1)
    await batches.batch(lib, "show", [Target(show.id, show.source_id, show.etag)], result)
    if episodes:
        stored = await batches.db.call(select.show_episodes, show.id)
        progress.set_total(lib.title, "episodes", len(stored))
        kind = batches.link.kind
        if isinstance(kind, JellyfinKind):
            await _listing(batches, kind, show, stored, result)
        else:
            for start in range(0, len(stored), batches.size):
                await batches.batch(lib, "episode", stored[start : start + batches.size], result)
    progress.library_done(lib.title)


async def _listing(
    batches: Batches,
    kind: JellyfinKind,
    show: select.StoredShow,
    stored: list[Target],
    result: LibraryHydration,
) -> None:
    """The show's episodes, a page at a time (the first page states how many there are);
    the stored episodes the listing does not name are left unmarked."""
    hydrated: set[int] = set()
    start, total = 0, None
    title = show.library.title
    while True:
        request = kind.show_episodes_request(show.source_id, start)
        answer = await batches.fetch_and_store(request, kind.decode_listing, "episode", stored)
        batches.tally("episode", result, answer)
        batches.progress.advance(title, "episodes", len(answer.hydrated - hydrated))
        hydrated |= answer.hydrated
        if start == 0:
            total = answer.total
        start += answer.listed
        # a server that states no total: until a page comes back short
        if answer.listed == 0 or (start >= total if total is not None else answer.listed < kind.page_size):
            break
    missing = len(stored) - len(hydrated)
    result.missing += missing
    batches.progress.advance(title, "episodes", missing)
