"""What the database must hold after importing an emulated server: computed from the
library generator and the emulator's id schemes, never from the importer's own code."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import apsw

from importer.emulator.credits import ACTOR, GUEST_STAR, PRODUCER, Art, Credit
from importer.emulator.jellyfin import JellyfinServer, jf_etag
from importer.emulator.jellyfin.images import backdrop_tags, own_tags
from importer.emulator.jellyfin.people import ordered, person_id, person_image_tag
from importer.emulator.library import Library, Show, View
from importer.emulator.plex import PlexServer
from importer.emulator.plex.tags import person_tag_id, person_thumb
from importer.emulator.server import EmulatedServer

Rows = dict[str, dict[str, Any]]
#: (item_type, item source_id): item_type is "show", "season" or "episode"
ItemKey = tuple[str, str]
#: (person source_id, kind, role, position) of one credit
CreditRow = tuple[str, str, str | None, int]


@dataclass
class LibraryTruth:
    title: str
    source_id: str
    shows: Rows = field(default_factory=dict)
    seasons: Rows = field(default_factory=dict)
    episodes: Rows = field(default_factory=dict)
    #: per episode source_id: its files, in (media_index, part_index) order, without source_id
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # What `importer hydrate --episodes` adds (after `sync`). Items without any credit,
    # genre or image have no key in the dicts below.
    #: person source_id -> {"name", "thumb"} of everyone credited in this library
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: item -> [(person source_id, kind, role, position)], sorted by (kind, position)
    credits: dict[ItemKey, list[CreditRow]] = field(default_factory=dict)
    #: item -> genre names in the server's order
    genres: dict[ItemKey, list[str]] = field(default_factory=dict)
    #: item -> {(kind, path, tag)}: the item's own images, never those it inherits
    images: dict[ItemKey, set[tuple[str, str, str]]] = field(default_factory=dict)


def legacy_ids(show: Show) -> tuple[str | None, str | None, str | None]:
    """A legacy-agent show names one id in its guid: TVDB, or else TMDB."""
    return (None, None, show.ids.tvdb) if show.ids.tvdb else (None, show.ids.tmdb, None)


def expected(server: EmulatedServer, *, backdrop_limit: int | None = None) -> list[LibraryTruth]:
    """Per library, what the database holds after ``sync`` and then ``hydrate --episodes``
    (LibraryTruth's rows, links and files are ``sync``'s; people, credits, genres and
    images ``hydrate``'s).

    How the server's answers turn into rows (the rules a hydrator must follow):

    - credits: ``position`` is the index in the server's own list for that item and kind.
      Plex: a show's ``Role`` -> "actor", an episode's -> "guest_star"; ``Director``,
      ``Writer``, ``Producer`` -> their names in lower case. Jellyfin/Emby: ``Type`` in
      snake case ("GuestStar" -> "guest_star"), positions counted among the ``People``
      entries of that Type. ``role`` only for actors and guest stars, None when empty.
    - people: Plex: the tag ``id``, its ``thumb`` as served (None when absent);
      Jellyfin/Emby: ``Id``, ``/Items/{Id}/Images/Primary?tag={PrimaryImageTag}`` (None
      when there is no tag). Two people may share a name: they stay two.
    - images: only an item's own. Plex: ``thumb`` (a show's or season's poster, an
      episode's still, kind "thumb"), ``art`` ("backdrop"), ``banner``, each only when its
      path names the item's own ratingKey: seasons and episodes repeat their show's art
      (and a season without a poster its show's thumb) under their own attributes. Tag:
      the path's last number. Jellyfin/Emby: ``ImageTags`` (Primary: poster, or an
      episode's "thumb"; Logo, Banner, Thumb) at index 0 and ``BackdropImageTags`` at
      their index, path ``/Items/{Id}/Images/{Type}/{Index}``; never ``Parent…``/
      ``Series…`` tags. ``backdrop_limit``: the ``ImageTypeLimit`` the hydrator sends.
    """
    if isinstance(server, PlexServer):
        return [_plex(server, key) for key in server.sections]
    assert isinstance(server, JellyfinServer)
    return [_jellyfin(server, i, backdrop_limit) for i, lib in enumerate(server.libraries)]


def person_ids(server: EmulatedServer) -> set[str]:
    """Every person's source id on the server (credited or not): no request may name one
    as an item (``GET /Items/{personId}`` queues a remote refresh on Jellyfin)."""
    if isinstance(server, PlexServer):
        return {
            str(person_tag_id(key, n))
            for key, sec in server.sections.items()
            for n in range(sec.library.credits.size)
        }
    assert isinstance(server, JellyfinServer)
    return {
        person_id(server, i, n)
        for i, lib in enumerate(server.catalog.libraries)
        for n in range(lib.credits.size)
    }


def _plex(server: PlexServer, section_key: int) -> LibraryTruth:
    sec = server.sections[section_key]
    lib: Library = sec.library
    credits = lib.credits
    truth = LibraryTruth(sec.title, str(section_key))

    def person(n: int) -> str:
        pid = str(person_tag_id(section_key, n))
        truth.people[pid] = {"name": credits.people[n].name, "thumb": person_thumb(credits, n)}
        return pid

    def credit_rows(groups: Iterable[tuple[str, Iterable[Credit]]]) -> list[CreditRow]:
        rows = [
            (person(c.person), kind, (c.role or None) if kind in (ACTOR, GUEST_STAR) else None, pos)
            for kind, group in groups
            for pos, c in enumerate(group)
        ]
        return sorted(rows, key=_by_kind)

    for show in lib.shows:
        sid = str(sec.show_key(show))
        meta = credits.show(show)
        truth.shows[sid] = {
            "title": show.title, "sort_title": show.sort_title, "year": show.year, "summary": show.summary,
            **_ids(legacy_ids(show) if show.legacy_agent else tuple(show.ids)),
            "added_at": show.added_at, "updated_at": show.updated_at,
            "content_rating": show.content_rating, "studio": show.studio,
            # legacy agents rate with `rating` alone
            "critic_rating": meta.critic_rating,
            "audience_rating": None if show.legacy_agent else meta.audience_rating,
        }  # fmt: skip
        _put(truth.credits, ("show", sid), credit_rows(
            [(ACTOR, meta.cast), (PRODUCER, [c for c in meta.crew if c.kind == PRODUCER])]
        ))  # fmt: skip
        _put(truth.genres, ("show", sid), list(meta.genres))
        _put(truth.images, ("show", sid), _plex_images(sid, credits.show_art(show), "poster"))
        season_keys = {}
        for season in lib.seasons_of(show):
            key = str(sec.season_key(show, season.ordinal))
            season_keys[season.season_number] = key
            truth.seasons[key] = {
                "show_source_id": sid,
                "season_number": season.season_number,
                "title": season.title,
            }
            _put(truth.images, ("season", key), _plex_images(key, credits.season_art(show, season), "poster"))
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
            em = credits.episode(ep)
            groups = [("director", em.directors), ("writer", em.writers), (GUEST_STAR, em.guests)]
            _put(truth.credits, ("episode", eid), credit_rows(groups))
            _put(truth.images, ("episode", eid), _plex_images(eid, credits.episode_art(ep), "thumb"))
    return truth


def _plex_images(key: str, art: Art, primary: str) -> set[tuple[str, str, str]]:
    """An item's own images: their paths name its ratingKey and end in its updatedAt."""
    base, tag = f"/library/metadata/{key}", str(art.stamp)
    present = (
        (primary, "thumb", art.primary),
        ("backdrop", "art", art.backdrops > 0),
        ("banner", "banner", art.banner),
    )
    return {(kind, f"{base}/{name}/{tag}", tag) for kind, name, there in present if there}


def _by_kind(row: CreditRow) -> tuple[str, int]:
    return row[1], row[3]


def _put(into: dict[ItemKey, Any], key: ItemKey, value: Any) -> None:
    if value:
        into[key] = value


def _jellyfin(server: JellyfinServer, index: int, backdrop_limit: int | None = None) -> LibraryTruth:
    lib = server.libraries[index].library
    credits = lib.credits
    truth = LibraryTruth(server.libraries[index].name, server.folders[index].id)

    def jid(kind: int, show_index: int, ordinal: int = 0) -> str:  # as served (Emby: numbers)
        return server.catalog.item_id(lib.jellyfin_id(kind, show_index, ordinal))

    def credit_rows(people: Iterable[Credit]) -> list[CreditRow]:
        rows: list[CreditRow] = []
        positions: dict[str, int] = {}
        for c, person_type in ordered(server, people):  # as the server lists them
            pid = person_id(server, index, c.person)
            tag = person_image_tag(server, index, c.person)
            truth.people[pid] = {
                "name": credits.people[c.person].name,
                "thumb": None if tag is None else f"/Items/{pid}/Images/Primary?tag={tag}",
            }
            kind = _snake(person_type)
            pos = positions[kind] = positions.get(kind, -1) + 1
            rows.append((pid, kind, (c.role or None) if kind in (ACTOR, GUEST_STAR) else None, pos))
        return sorted(rows, key=_by_kind)

    for show in lib.shows:
        sid = jid(1, show.index)
        meta = credits.show(show)
        truth.shows[sid] = {
            "title": show.title, "year": show.year, "summary": show.summary, **_ids(tuple(show.ids)),
            "added_at": show.added_at, "updated_at": None, "etag": jf_etag(show.updated_at),
            "content_rating": show.content_rating, "studio": show.studio,
            "critic_rating": None if meta.critic is None else meta.critic / 10,  # CriticRating / 10
            "audience_rating": meta.audience / 10 if meta.audience else None,  # written when > 0
        }  # fmt: skip
        _put(truth.credits, ("show", sid), credit_rows((*meta.cast, *meta.crew)))
        _put(truth.genres, ("show", sid), list(meta.genres))
        _put(truth.images, ("show", sid), _jf_images(sid, credits.show_art(show), "poster", backdrop_limit))
        season_ids = {}
        for season in lib.seasons_of(show):
            key = jid(2, show.index, season.ordinal)
            season_ids[season.season_number] = key
            truth.seasons[key] = {
                "show_source_id": sid,
                "season_number": season.season_number,
                "title": season.title,
            }
            art = credits.season_art(show, season)
            _put(truth.images, ("season", key), _jf_images(key, art, "poster", backdrop_limit))
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
            em = credits.episode(ep)
            _put(truth.credits, ("episode", eid), credit_rows((*em.guests, *em.directors, *em.writers)))
            _put(
                truth.images,
                ("episode", eid),
                _jf_images(eid, credits.episode_art(ep), "thumb", backdrop_limit),
            )
    return truth


_JF_KINDS = {"Logo": "logo", "Thumb": "thumb", "Banner": "banner"}


def _jf_images(item_id: str, art: Art, primary: str, backdrop_limit: int | None) -> set[tuple[str, str, str]]:
    out = {
        (
            primary if image_type == "Primary" else _JF_KINDS[image_type],
            f"/Items/{item_id}/Images/{image_type}/0",
            tag,
        )
        for image_type, tag in own_tags(art).items()
    }
    backdrops = backdrop_tags(art)[:backdrop_limit]
    out |= {("backdrop", f"/Items/{item_id}/Images/Backdrop/{i}", tag) for i, tag in enumerate(backdrops)}
    return out


def _snake(person_type: str) -> str:
    """A PersonKind as a credits kind: "GuestStar" -> "guest_star"."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(person_type))


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


def read_metadata(db: apsw.Connection, source_id: str) -> LibraryTruth:
    """What ``hydrate`` wrote for one library (schema 3: people, credits, item_genres,
    images), in LibraryTruth's terms: source ids, not local ids."""
    (lib_id, title, server_id), *_ = db.execute(
        "SELECT id, title, server_id FROM libraries WHERE source_id = ?", (source_id,)
    )
    got = LibraryTruth(title, source_id)
    # every item of the library: (item_type, local id) -> source id
    items: dict[tuple[str, int], str] = {}
    for item_type, table in (("show", "shows"), ("season", "seasons"), ("episode", "episodes")):
        for local, sid in db.execute(f"SELECT id, source_id FROM {table} WHERE library_id = ?", (lib_id,)):
            items[item_type, local] = sid
    people: dict[int, tuple[str, str, str | None]] = {
        local: (sid, name, thumb)
        for local, sid, name, thumb in db.execute(
            "SELECT id, source_id, name, thumb FROM people WHERE server_id = ?", (server_id,)
        )
    }
    rows = db.execute(
        "SELECT person_id, item_type, item_id, kind, role, position FROM credits "
        "ORDER BY item_type, item_id, kind, position"
    )
    for person, item_type, item_id, kind, role, position in rows:
        sid = items.get((item_type, item_id))
        if sid is None:  # another library's
            continue
        pid, name, thumb = people[person]
        got.people[pid] = {"name": name, "thumb": thumb}
        got.credits.setdefault((item_type, sid), []).append((pid, kind, role, position))
    rows = db.execute(
        "SELECT g.item_type, g.item_id, n.name FROM item_genres g JOIN genres n ON n.id = g.genre_id "
        "ORDER BY g.item_type, g.item_id, g.position"
    )
    for item_type, item_id, name in rows:
        sid = items.get((item_type, item_id))
        if sid is not None:
            got.genres.setdefault((item_type, sid), []).append(name)
    for item_type, item_id, kind, path, tag in db.execute(
        "SELECT item_type, item_id, kind, path, tag FROM images"
    ):
        sid = items.get((item_type, item_id))
        if sid is not None:
            got.images.setdefault((item_type, sid), set()).add((kind, path, tag))
    return got


def assert_metadata_equal(got: LibraryTruth, want: LibraryTruth) -> None:
    """People, credits, genres and images: every one expected, nothing extra."""
    for name in ("people", "credits", "genres", "images"):
        got_map, want_map = getattr(got, name), getattr(want, name)
        missing = sorted(set(want_map) - set(got_map), key=str)[:5]
        extra = sorted(set(got_map) - set(want_map), key=str)[:5]
        assert not missing and not extra, f"{name}: missing {missing}, extra {extra}"
        wrong = [(k, got_map[k], v) for k, v in want_map.items() if got_map[k] != v]
        assert not wrong, f"{name}: (item, got, want) {wrong[:3]}"


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
