"""One answer of the server, stored: inflated, decoded, matched with the items asked
about, written in one transaction. Runs on the database's thread (CPU and SQLite)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import apsw

from importer.compression import inflate
from importer.http import FetchedPage
from importer.hydration.model import Answer, Hydrated, Target
from importer.model import ItemType
from importer.store.metadata import MetadataCounts, write_hydrated

#: how to read one kind of answer
Decoder = Callable[[bytes | memoryview], Answer]


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    counts: MetadataCounts
    hydrated: frozenset[int]  # local ids of the targets the answer hydrated
    listed: int  # items in the answer, asked about or not
    total: int | None  # a listing's total (TotalRecordCount), when asked for


def store_answer(
    conn: apsw.Connection,
    decode: Decoder,
    server_id: int,
    item_type: ItemType,
    targets: Sequence[Target],
    page: FetchedPage | None,
) -> StoredAnswer:
    """Write what ``page`` says about ``targets`` (None: the server has none of them).
    Items the answer does not name stay unmarked; items it names that were not asked
    about (or not stored) are ignored."""
    if page is None:
        return StoredAnswer(MetadataCounts(), frozenset(), 0, None)
    answer = decode(inflate(page.body, page.content_encoding, what=page.url))
    by_source = {t.source_id: t for t in targets}
    hydrated: dict[int, Hydrated] = {}
    for metadata in answer.items:
        target = by_source.get(metadata.source_id)
        if target is not None and target.id not in hydrated:  # named twice: the first answer
            hydrated[target.id] = Hydrated(target, metadata)
    counts = write_hydrated(conn, server_id, item_type, list(hydrated.values()), int(time.time()))
    return StoredAnswer(counts, frozenset(hydrated), len(answer.items), answer.total)
