"""Id-only listings: the ids of every item of a stream, and nothing else.

When count arithmetic says that something is gone, the sweep needs the ids of every item
the server still has, not their details. Jellyfin lists bare items (Id, Name, Type)
when no ``Fields`` are asked for, several times cheaper for the server to build and for
us to read, and in pages ten times larger. A listing whose ids the library does not all
hold (the changes missed something) is read again in full.
"""

from __future__ import annotations

import msgspec
from msgspec import Struct

from importer.errors import DecodeError
from importer.sources.base import DecodedPage
from importer.sources.common import as_id, decode_json

#: items per id-only page: bare items are small
IDS_PAGE_SIZE = 5000
_TYPES = {"shows": "Series", "seasons": "Season", "episodes": "Episode"}


class _Item(Struct, gc=False, rename="pascal"):
    id: str | int
    type: str | None = None


class _Page(Struct, gc=False, rename="pascal"):
    items: list[_Item]
    total_record_count: int | None = None
    start_index: int | None = None


_DECODER = msgspec.json.Decoder(_Page)


def decode_id_page(body: bytes, stream: str, library_source_id: str, with_total: bool = True) -> DecodedPage:
    """A Jellyfin/Emby id-only page: ``ids`` and the counts, no rows."""
    what = f"Jellyfin {stream} id page of library {library_source_id}"
    page = decode_json(_DECODER, body, what, "Jellyfin")
    want = _TYPES[stream]
    ids = []
    for item in page.items:
        if item.type is not None and item.type != want:
            raise DecodeError(f"{what}: asked for {want} items but the page lists a {item.type!r}")
        ids.append(as_id(item.id))
    return DecodedPage(
        stream=stream,
        offset=-1 if page.start_index is None else page.start_index,
        count=len(ids),
        total=page.total_record_count if with_total else None,
        ids=ids,
        ids_only=True,
    )
