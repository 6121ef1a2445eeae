"""What the database must hold after importing an emulated server: computed from the
library generator and the emulator's id schemes, never from the importer's own code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import apsw

from importer.emulator.jellyfin import JellyfinServer, jf_etag
from importer.emulator.library import Library, Show, View
from importer.emulator.plex import PlexServer
from importer.emulator.server import EmulatedServer

Rows = dict[str, dict[str, Any]]


@dataclass
class LibraryTruth:
    title: str
    source_id: str
    shows: Rows = field(default_factory=dict)
    seasons: Rows = field(default_factory=dict)
    episodes: Rows = field(default_factory=dict)
    #: per episode source_id: its files, in (media_index, part_index) order, without source_id
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def legacy_ids(show: Show) -> tuple[str | None, str | None, str | None]:
    """A legacy-agent show names one id in its guid: TVDB, or else TMDB."""
    return (None, None, show.ids.tvdb) if show.ids.tvdb else (None, show.ids.tmdb, None)


def expected(server: EmulatedServer) -> list[LibraryTruth]:
    if isinstance(server, PlexServer):
        return [_plex(server, key) for key in server.sections]
    assert isinstance(server, JellyfinServer)
    return [_jellyfin(server, i) for i, lib in enumerate(server.libraries)]


def _plex(server: PlexServer, section_key: int) -> LibraryTruth:
    sec = server.sections[section_key]
    lib: Library = sec.library
    truth = LibraryTruth(sec.title, str(section_key))
    for show in lib.shows:
        sid = str(sec.show_key(show))
        truth.shows[sid] = {
            "title": show.title, "sort_title": show.sort_title, "year": show.year, "summary": show.summary,
            **_ids(legacy_ids(show) if show.legacy_agent else tuple(show.ids)),
            "added_at": show.added_at, "updated_at": show.updated_at,
        }  # fmt: skip
        season_keys = {}
        for season in lib.seasons_of(show):
            key = str(sec.season_key(show, season.ordinal))
            season_keys[season.season_number] = key
            truth.seasons[key] = {
                "show_source_id": sid,
                "season_number": season.season_number,
                "title": season.title,
            }
        for ep in lib.view_of(show, View.PLEX):
            eid = str(sec.episode_key(ep))
            truth.episodes[eid] = {
                "show_source_id": sid, "season_source_id": season_keys[ep.season_number],
                "season_number": ep.season_number, "episode_number": ep.episode_number,
                "episode_number_end": None, "title": ep.title, "summary": ep.summary,
                "air_date": ep.air_date, "duration_ms": ep.duration_ms,
                **_ids((None, None, None) if show.legacy_agent else tuple(ep.ids)),
                "added_at": ep.added_at, "updated_at": ep.updated_at,
            }  # fmt: skip
            truth.files[eid] = [
                {"source_id": str(f.part_key + sec.media_offset), **_file(f, f.duration_ms, f.part_index)}
                for f in ep.files
            ]
    return truth


def _jellyfin(server: JellyfinServer, index: int) -> LibraryTruth:
    lib = server.libraries[index].library
    truth = LibraryTruth(server.libraries[index].name, server.folders[index].id)
    jid = lib.jellyfin_id
    for show in lib.shows:
        sid = jid(1, show.index)
        truth.shows[sid] = {
            "title": show.title, "year": show.year, "summary": show.summary, **_ids(tuple(show.ids)),
            "added_at": show.added_at, "updated_at": None, "etag": jf_etag(show.updated_at),
        }  # fmt: skip
        season_ids = {}
        for season in lib.seasons_of(show):
            key = jid(2, show.index, season.ordinal)
            season_ids[season.season_number] = key
            truth.seasons[key] = {
                "show_source_id": sid,
                "season_number": season.season_number,
                "title": season.title,
            }
        for ep in lib.view_of(show, View.JELLYFIN_PRESENT):
            eid = jid(3, ep.show_index, ep.ordinal)
            truth.episodes[eid] = {
                "show_source_id": sid, "season_source_id": season_ids[ep.season_number],
                "season_number": ep.season_number, "episode_number": ep.episode_number,
                "episode_number_end": ep.episode_number_end, "title": ep.title, "summary": ep.summary,
                "air_date": ep.air_date, "duration_ms": ep.duration_ms, **_ids(tuple(ep.ids)),
                "added_at": ep.added_at, "updated_at": None, "etag": jf_etag(ep.updated_at),
            }  # fmt: skip
            # One media source per version, at its first part, with the episode's run time.
            truth.files[eid] = [_file(f, ep.duration_ms, 0) for f in ep.files if f.part_index == 0]
    return truth


def _ids(ids: tuple[str | None, ...]) -> dict[str, str | None]:
    return dict(zip(("imdb_id", "tmdb_id", "tvdb_id"), ids, strict=True))


def _file(f: Any, duration_ms: int | None, part_index: int) -> dict[str, Any]:
    return {
        "media_index": f.media_index, "part_index": part_index, "path": f.path, "size_bytes": f.size_bytes,
        "container": f.container, "video_codec": f.video_codec, "audio_codec": f.audio_codec,
        "width": f.width, "height": f.height, "duration_ms": duration_ms,
    }  # fmt: skip


# ----------------------------------------------------------------------------- reading the database
def read_library(db: apsw.Connection, source_id: str) -> LibraryTruth:
    """The database's rows of one library, in the shape of LibraryTruth (every column kept)."""
    (lib_id, title), *_ = db.execute("SELECT id, title FROM libraries WHERE source_id = ?", (source_id,))
    got = LibraryTruth(title, source_id)
    for table in ("shows", "seasons", "episodes"):
        names = _columns(db, table)  # not getdescription(): it fails on an empty result
        for row in db.execute(f"SELECT * FROM {table} WHERE library_id = ?", (lib_id,)):
            item = dict(zip(names, row, strict=True))
            getattr(got, table)[item["source_id"]] = item
    cursor = db.execute(
        "SELECT e.source_id AS episode_source_id, f.* FROM media_files f "
        "JOIN episodes e ON e.id = f.episode_id WHERE e.library_id = ? ORDER BY f.media_index, f.part_index",
        (lib_id,),
    )
    names = ["episode_source_id", *_columns(db, "media_files")]
    for row in cursor:
        item = dict(zip(names, row, strict=True))
        got.files.setdefault(item.pop("episode_source_id"), []).append(item)
    return got


def _columns(db: apsw.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def assert_library_equal(got: LibraryTruth, want: LibraryTruth) -> None:
    """Every expected column of every row, every link, nothing extra."""
    assert got.title == want.title
    for table in ("shows", "seasons", "episodes"):
        got_rows, want_rows = getattr(got, table), getattr(want, table)
        assert set(got_rows) == set(want_rows), f"{table}: ids differ"
        for sid, want_row in want_rows.items():
            row = got_rows[sid]
            mismatched = {k: (row[k], v) for k, v in want_row.items() if row[k] != v}
            assert not mismatched, f"{table} {sid}: (got, want) {mismatched}"
            assert row["etag"], f"{table} {sid} has no etag"
    ids = {table: {r["id"]: sid for sid, r in getattr(got, table).items()} for table in ("shows", "seasons")}
    for sid, season in got.seasons.items():
        assert ids["shows"].get(season["show_id"]) == season["show_source_id"], f"season {sid} not linked"
    for sid, ep in got.episodes.items():
        assert ids["shows"].get(ep["show_id"]) == ep["show_source_id"], f"episode {sid}: show_id not linked"
        assert ids["seasons"].get(ep["season_id"]) == ep["season_source_id"], (
            f"episode {sid}: season_id not linked"
        )
    for eid, want_files in want.files.items():
        got_files = [
            {k: v for k, v in f.items() if k not in ("id", "episode_id")} for f in got.files.get(eid, [])
        ]
        assert all(f["source_id"] for f in got_files), f"files of episode {eid} without a source id"
        if want_files and "source_id" not in want_files[0]:  # Jellyfin's media source ids are opaque
            for f in got_files:
                del f["source_id"]
        assert got_files == want_files, f"files of episode {eid}"
    assert not set(got.files) - set(want.files)
