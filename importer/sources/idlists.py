"""Ids listings: the id and etag of every item of a stream, and nothing else.

A stream that already holds rows need not be read in full to learn what changed: Jellyfin
and Emby list bare items (Id, Name, Type and a few more) with their ``Etag`` when only
that field is asked for, several times cheaper for the server to build and for us to
read, in pages five times larger. The decoder compares the etags with the stored ones;
only the items that are new or changed are then fetched in full, by id. The same
listing, complete, tells what is gone.
"""

from __future__ import annotations

import msgspec
from msgspec import Struct

from importer.errors import DecodeError
from importer.model import StreamKind
from importer.sources.base import DecodedPage
from importer.sources.common import as_id, decode_json

#: items per ids page: bare items are small
IDS_PAGE_SIZE = 5000
#: the Jellyfin/Emby item type of each stream
ITEM_TYPE = {StreamKind.SHOWS: "Series", StreamKind.SEASONS: "Season", StreamKind.EPISODES: "Episode"}


class _Item(Struct, gc=False, rename="pascal"):
    id: str | int
    type: str | None = None
    etag: str | None = None
    location_type: str | None = None


class _Page(Struct, gc=False, rename="pascal"):
    items: list[_Item]
    total_record_count: int | None = None
    start_index: int | None = None


_DECODER = msgspec.json.Decoder(_Page)


def decode_id_page(
    body: bytes | memoryview, stream: StreamKind, library_source_id: str, with_total: bool = True
) -> DecodedPage:
    """A Jellyfin/Emby ids page: ``ids``, ``etags`` and the counts, no rows."""
    what = f"Jellyfin {stream} id page of library {library_source_id}"
    page = decode_json(_DECODER, body, what, "Jellyfin")
    want = ITEM_TYPE[stream]
    ids, etags = [], []
    for item in page.items:
        if item.type is not None and item.type != want:
            raise DecodeError(f"{what}: asked for {want} items but the page lists a {item.type!r}")
        if item.location_type == "Virtual":  # missing items are not stored either
            continue
        ids.append(as_id(item.id))
        etags.append(item.etag)
    return DecodedPage(
        stream=stream,
        offset=-1 if page.start_index is None else page.start_index,
        count=len(page.items),
        total=page.total_record_count if with_total else None,
        ids=ids,
        etags=etags,
    )
