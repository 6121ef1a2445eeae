"""Writing what ``importer hydrate`` fetched: people, credits, genres, images, the shows'
ratings, and the hydration marks; and removing the people nobody credits.

One call of :func:`write_hydrated` is one transaction: a batch of items is either
hydrated whole (its people upserted, its credits, genres and images replaced, its
marks set) or not at all, so a kill at any moment leaves every item as one answer of
the server left it, and a rerun skips exactly the batches that were committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import apsw

from importer.hydration.model import Credit, Hydrated, Person
from importer.model import STREAM_OF, ItemType
from importer.store.connection import mapped_errors
from importer.store.images import ImageRow, replace_images
from importer.store.listing import int_array
from importer.store.rows import carray

# Upserted by the server's id; a row whose name and thumb did not change is not
# rewritten (and not counted: conn.changes() counts only the rows written).
_PEOPLE_UPSERT = (
    "INSERT INTO people (server_id, source_id, name, thumb) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (server_id, source_id) DO UPDATE SET name = excluded.name, thumb = excluded.thumb "
    "WHERE name IS NOT excluded.name OR thumb IS NOT excluded.thumb"
)
_PEOPLE_IDS = "SELECT source_id, id FROM people WHERE server_id = ? AND source_id IN carray(?)"
_CREDITS_DELETE = "DELETE FROM credits WHERE item_type = ? AND item_id = ?"
_CREDIT_INSERT = (
    "INSERT OR IGNORE INTO credits (person_id, item_type, item_id, kind, role, position) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_GENRE_INSERT = "INSERT INTO genres (name) VALUES (?) ON CONFLICT (name) DO NOTHING"
_GENRE_IDS = "SELECT name, id FROM genres WHERE name IN carray(?)"
_ITEM_GENRES_DELETE = "DELETE FROM item_genres WHERE item_type = ? AND item_id = ?"
# OR IGNORE: a server that names a genre twice on one item keeps its first position
_ITEM_GENRE_INSERT = (
    "INSERT OR IGNORE INTO item_genres (item_type, item_id, genre_id, position) VALUES (?, ?, ?, ?)"
)
_SHOW_FIELDS = (
    "UPDATE shows SET content_rating = ?, studio = ?, critic_rating = ?, audience_rating = ? WHERE id = ?"
)
# credits_by_person makes this one index probe per person
_PRUNE = "DELETE FROM people WHERE NOT EXISTS (SELECT 1 FROM credits AS c WHERE c.person_id = people.id)"


@dataclass(slots=True)
class MetadataCounts:
    """What writing a batch (or a whole run) did."""

    items: int = 0  # items hydrated and marked
    people: int = 0  # people rows inserted or changed
    credits: int = 0  # credits rows written
    genres: int = 0  # item_genres rows written
    images: int = 0  # images rows written

    def add(self, other: MetadataCounts) -> None:
        self.items += other.items
        self.people += other.people
        self.credits += other.credits
        self.genres += other.genres
        self.images += other.images


def write_hydrated(
    conn: apsw.Connection, server_id: int, item_type: ItemType, items: Sequence[Hydrated], now: int
) -> MetadataCounts:
    """Store a batch of hydrated items of one type in one transaction, and mark them
    (``hydrated_at`` = ``now``, ``hydrated_etag`` = the etag read when they were chosen).

    Items whose row is gone meanwhile are left out: nothing may point at a missing item."""
    counts = MetadataCounts()
    with mapped_errors(conn.filename), conn:
        present = _present(conn, item_type, [h.target.id for h in items])
        items = [h for h in items if h.target.id in present]
        if not items:
            return counts
        ids = [h.target.id for h in items]
        people = _upsert_people(conn, server_id, items, counts)
        counts.credits = _replace_credits(conn, item_type, items, people)
        counts.genres = _replace_genres(conn, item_type, items)
        images: list[ImageRow] = [
            (h.target.id, image.kind, image.path, image.tag) for h in items for image in h.metadata.images
        ]
        replace_images(conn, item_type, ids, images)
        counts.images = len(images)
        if item_type == "show":
            conn.executemany(
                _SHOW_FIELDS,
                (
                    (f.content_rating, f.studio, f.critic_rating, f.audience_rating, h.target.id)
                    for h in items
                    if (f := h.metadata.show) is not None
                ),
            )
        conn.executemany(
            f"UPDATE {STREAM_OF[item_type]} SET hydrated_at = ?, hydrated_etag = ? WHERE id = ?",
            ((now, h.target.etag, h.target.id) for h in items),
        )
        counts.items = len(items)
    return counts


def _present(conn: apsw.Connection, item_type: ItemType, ids: list[int]) -> set[int]:
    sql = f"SELECT id FROM {STREAM_OF[item_type]} WHERE id IN carray(?)"
    return {row[0] for row in conn.execute(sql, (int_array(ids),))} if ids else set()


def _upsert_people(
    conn: apsw.Connection, server_id: int, items: Sequence[Hydrated], counts: MetadataCounts
) -> dict[str, int]:
    """Every person the batch credits, upserted; {source_id: people.id}."""
    people: dict[str, Person] = {}
    for h in items:
        for credit in h.metadata.credits:
            people[credit.person.source_id] = credit.person  # the last answer wins
    if not people:
        return {}
    before = conn.total_changes()
    conn.executemany(_PEOPLE_UPSERT, ((server_id, p.source_id, p.name, p.thumb) for p in people.values()))
    counts.people = conn.total_changes() - before
    return {sid: pid for sid, pid in conn.execute(_PEOPLE_IDS, (server_id, carray(list(people))))}


def _replace_credits(
    conn: apsw.Connection, item_type: ItemType, items: Sequence[Hydrated], people: dict[str, int]
) -> int:
    conn.executemany(_CREDITS_DELETE, ((item_type, h.target.id) for h in items))
    rows = [
        _credit_row(people[c.person.source_id], item_type, h.target.id, c)
        for h in items
        for c in h.metadata.credits
    ]
    conn.executemany(_CREDIT_INSERT, rows)
    return len(rows)


def _credit_row(person_id: int, item_type: str, item_id: int, c: Credit) -> tuple[object, ...]:
    return (person_id, item_type, item_id, c.kind, c.role, c.position)


def _replace_genres(conn: apsw.Connection, item_type: ItemType, items: Sequence[Hydrated]) -> int:
    conn.executemany(_ITEM_GENRES_DELETE, ((item_type, h.target.id) for h in items))
    names = list(dict.fromkeys(name for h in items for name in h.metadata.genres))
    if not names:
        return 0
    conn.executemany(_GENRE_INSERT, ((name,) for name in names))
    genre_ids: dict[str, int] = {name: gid for name, gid in conn.execute(_GENRE_IDS, (carray(names),))}
    rows = [
        (item_type, h.target.id, genre_ids[name], position)
        for h in items
        for position, name in enumerate(h.metadata.genres)
    ]
    before = conn.total_changes()
    conn.executemany(_ITEM_GENRE_INSERT, rows)
    return conn.total_changes() - before


def prune_people(conn: apsw.Connection) -> int:
    """Delete the people nobody credits any more (their items deleted, or no longer
    credited by the server); the number deleted. One transaction."""
    with mapped_errors(conn.filename), conn:
        before = conn.total_changes()
        conn.execute(_PRUNE)
        pruned: int = conn.total_changes() - before
    return pruned


__all__ = ["MetadataCounts", "prune_people", "write_hydrated"]
