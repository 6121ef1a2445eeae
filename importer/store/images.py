"""An item's images (the ``images`` table): replaced whole whenever the item is written.

Both the sync writer (show and season artwork from the listings) and ``hydrate`` (what
the listings leave out) call :func:`replace_images`, so one item's images always come
from one answer of the server, never half from an older one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import apsw

from importer.model import ItemType

#: (item_id, kind, path, tag): one image of one item, item_id the local id; kind is one
#: of 'poster', 'backdrop', 'thumb', 'banner', 'logo'
ImageRow = tuple[int, str, str, str | None]

_DELETE = "DELETE FROM images WHERE item_type = ? AND item_id = ?"
_INSERT = "INSERT OR IGNORE INTO images (item_type, item_id, kind, path, tag) VALUES (?, ?, ?, ?, ?)"


def replace_images(
    conn: apsw.Connection, item_type: ItemType, item_ids: Iterable[int], images: Sequence[ImageRow]
) -> None:
    """Make the images of ``item_ids`` exactly ``images`` (rows of those items only).

    Run inside the caller's transaction. OR IGNORE: a server that names one image twice
    stores it once."""
    conn.executemany(_DELETE, ((item_type, item_id) for item_id in item_ids))
    if images:
        conn.executemany(_INSERT, ((item_type, *image) for image in images))
