"""The rows that decode workers send to the writer: plain tuples, in column order.

Tuples (not objects) because they cross a process boundary as msgpack and are bound
straight into SQLite statements. The column order is the contract between
``importer/sources/*`` (which build them) and ``importer/store`` (which writes them);
the names below are the column names of the database (README, "The database").
"""

from __future__ import annotations

from typing import Any

SHOW_COLUMNS = (
    "source_id", "guid", "title", "sort_title", "year", "summary",
    "imdb_id", "tmdb_id", "tvdb_id", "added_at", "updated_at",
    "content_rating", "studio", "critic_rating", "audience_rating", "etag",
)  # fmt: skip
SEASON_COLUMNS = ("source_id", "show_source_id", "season_number", "title", "etag")
EPISODE_COLUMNS = (
    "source_id", "show_source_id", "season_source_id", "guid", "season_number",
    "episode_number", "episode_number_end", "title", "summary", "air_date", "duration_ms",
    "imdb_id", "tmdb_id", "tvdb_id", "added_at", "updated_at", "etag",
)  # fmt: skip
#: the first column names the episode by its source_id; the writer turns it into episode_id
MEDIA_FILE_COLUMNS = (
    "episode_source_id", "source_id", "media_index", "part_index", "path", "size_bytes",
    "container", "video_codec", "audio_codec", "width", "height", "duration_ms",
)  # fmt: skip

#: the images of shows and seasons that their listings carry; the first column names the
#: item by its source_id, the writer turns it into item_id (the ``images`` table)
IMAGE_COLUMNS = ("item_source_id", "kind", "path", "tag")

Row = tuple[Any, ...]

ETAG = -1  # the etag is the last column of shows, seasons and episodes rows
assert SHOW_COLUMNS[ETAG] == SEASON_COLUMNS[ETAG] == EPISODE_COLUMNS[ETAG] == "etag"
