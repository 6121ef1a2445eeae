"""The parts of hydration that need no server: decoding each kind's answers into the
contract's values, writing them (replace whole, people upserted, prune), the server-time
estimate, and the request pacing."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import apsw
import pytest

from importer.errors import DecodeError
from importer.hydration import jellyfin, plex
from importer.hydration.estimate import server_time_notice
from importer.hydration.model import Credit, Hydrated, Image, ItemMetadata, Person, ShowFields, Target
from importer.hydration.pacing import RequestPacer
from importer.store import connect
from importer.store.metadata import prune_people, write_hydrated

# ----------------------------------------------------------------------------- Plex


def plex_body(*items: dict[str, Any]) -> bytes:
    return json.dumps({"MediaContainer": {"size": len(items), "Metadata": list(items)}}).encode()


def test_plex_show_cast_crew_genres_images_ratings() -> None:
    show = {
        "ratingKey": "12", "type": "show", "contentRating": "TV-MA", "studio": "AMC",
        "audienceRating": 8.7, "thumb": "/library/metadata/12/thumb/1700000001",
        "art": "/library/metadata/12/art/1700000002?X-Plex-Token=abc",
        "Rating": [{"image": "rottentomatoes://image.rating.ripe", "value": 9.6, "type": "critic"},
                   {"image": "imdb://image.rating", "value": 1.0, "type": "audience"}],
        "Genre": [{"id": 5, "tag": "Drama"}, {"id": 6, "tag": "Crime"}],
        "Role": [
            {"id": 101, "tag": "Bryan Cranston", "role": "Walter White",
             "thumb": "https://metadata-static.plex.tv/a/people/x.jpg?X-Plex-Token=abc&w=1"},
            {"id": 102, "tag": "Aaron Paul", "role": "Jesse Pinkman"},
            {"tag": "No Id (a listing's truncated tag)"},
            {"id": 101, "tag": "Bryan Cranston", "role": "Heisenberg",
             "thumb": "https://metadata-static.plex.tv/a/people/x.jpg?X-Plex-Token=abc&w=1"},
        ],
        "Producer": [{"id": "103", "tag": "Vince Gilligan"}],
    }  # fmt: skip
    (got,) = plex.decode(plex_body(show), "show").items
    assert got.source_id == "12"
    assert got.genres == ["Drama", "Crime"]
    cranston = Person("101", "Bryan Cranston", "https://metadata-static.plex.tv/a/people/x.jpg?w=1")
    assert got.credits == [
        Credit(cranston, "actor", "Walter White", 0),
        Credit(Person("102", "Aaron Paul", None), "actor", "Jesse Pinkman", 1),
        # position 2 names nobody we can tell from a namesake: a gap, not a shift
        Credit(cranston, "actor", "Heisenberg", 3),  # two roles, two credits
        Credit(Person("103", "Vince Gilligan", None), "producer", None, 0),
    ]
    assert got.images == [
        Image("poster", "/library/metadata/12/thumb/1700000001", "1700000001"),
        Image("backdrop", "/library/metadata/12/art/1700000002", "1700000002"),  # token stripped
    ]
    # the item's own audienceRating wins; Rating[] fills what the item lacks (critic)
    assert got.show == ShowFields("TV-MA", "AMC", 9.6, 8.7)


def test_plex_episode_roles_are_guest_stars_and_its_thumb_a_still() -> None:
    episode = {
        "ratingKey": 30, "type": "episode", "thumb": "/library/metadata/30/thumb/5",
        "art": "/library/metadata/12/art/1700000002",  # the show's, repeated: not the episode's own
        "Role": [{"id": 7, "tag": "Guest", "role": "Tuco"}],
        "Director": [{"id": 8, "tag": "Dir", "role": "Director"}],
        "Writer": [{"id": 9, "tag": "Wri"}, {"id": 8, "tag": "Dir"}],
    }  # fmt: skip
    other = {"ratingKey": "31", "type": "season"}  # not what was asked about: skipped
    (got,) = plex.decode(plex_body(episode, other), "episode").items
    assert [(c.kind, c.position, c.person.source_id, c.role) for c in got.credits] == [
        ("guest_star", 0, "7", "Tuco"),
        ("director", 0, "8", None),  # a crew member's "role" is a job, not a character: not kept
        ("writer", 0, "9", None),
        ("writer", 1, "8", None),
    ]
    assert got.images == [Image("thumb", "/library/metadata/30/thumb/5", "5")]
    assert got.show is None


def test_plex_batch_request_is_one_comma_list_with_cheap_flags() -> None:
    request = plex.batch_request(["1", "22", "333"])
    assert request.path == "/library/metadata/1,22,333"
    flags = ("checkFiles", "0"), ("skipRefresh", "1"), ("includeExtras", "0"), ("includeRelated", "0")
    assert request.params.items() >= {*flags, ("includeReviews", "0")}
    # what is stored is never excluded
    kept = {"Role", "Director", "Writer", "Producer", "Genre", "Rating", "thumb", "art", "banner", "rating"}
    kept |= {"audienceRating", "contentRating", "studio", "ratingKey", "type"}
    excluded = {*request.params["excludeElements"].split(","), *request.params["excludeFields"].split(",")}
    assert not kept & excluded
    assert request.headers["Accept"] == "application/json"


def test_a_malformed_answer_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        plex.decode(b"<html>proxy</html>", "show")
    with pytest.raises(DecodeError):
        jellyfin.decode(b'{"Items": [{"Id": 5}]}', "show")


# ----------------------------------------------------------------------------- Jellyfin / Emby


def jf_body(*items: dict[str, Any]) -> bytes:
    return json.dumps({"Items": list(items), "TotalRecordCount": len(items)}).encode()


def test_jellyfin_people_by_kind_in_server_order() -> None:
    series = {
        "Id": "a1", "Type": "Series", "OfficialRating": "TV-14", "CriticRating": 87, "CommunityRating": 8.1,
        "Studios": [{"Name": "HBO", "Id": "s1"}, {"Name": "Other", "Id": "s2"}],
        "Genres": ["Drama", "Fantasy"],
        "ImageTags": {"Primary": "p1", "Logo": "l1", "Art": "ignored"},
        "BackdropImageTags": ["b0", "b1"],
        "People": [
            {"Name": "Ann", "Id": "p1", "Role": "Queen", "Type": "Actor", "PrimaryImageTag": "t1"},
            {"Name": "Dan", "Id": "p2", "Type": "Director", "Role": "Director"},
            {"Name": "Bob", "Id": "p3", "Role": "", "Type": "Actor"},
            {"Name": "Gus", "Id": "p4", "Role": "Himself", "Type": "GuestStar"},
            {"Name": "Ann", "Id": "p1", "Role": "Witch", "Type": "Actor", "PrimaryImageTag": "t1"},
        ],
    }  # fmt: skip
    (got,) = jellyfin.decode(jf_body(series), "show").items
    ann = Person("p1", "Ann", "/Items/p1/Images/Primary?tag=t1")
    assert got.credits == [
        Credit(ann, "actor", "Queen", 0),
        Credit(Person("p2", "Dan", None), "director", None, 0),
        Credit(Person("p3", "Bob", None), "actor", None, 1),
        Credit(Person("p4", "Gus", None), "guest_star", "Himself", 0),
        Credit(ann, "actor", "Witch", 2),
    ]
    assert got.genres == ["Drama", "Fantasy"]
    assert got.show == ShowFields("TV-14", "HBO", 8.7, 8.1)
    assert set(got.images) == {
        Image("poster", "/Items/a1/Images/Primary/0", "p1"),
        Image("logo", "/Items/a1/Images/Logo/0", "l1"),
        Image("backdrop", "/Items/a1/Images/Backdrop/0", "b0"),
        Image("backdrop", "/Items/a1/Images/Backdrop/1", "b1"),
    }


def test_emby_shapes_integer_ids_and_person_types() -> None:
    episode = {
        "Id": "4711", "Type": "Episode", "ImageTags": {"Primary": "e1", "Thumb": "e2"},
        "GenreItems": [{"Name": "Comedy", "Id": 12}], "Studios": [{"Name": "NBC", "Id": 3}],
        "People": [{"Name": "Zed", "Id": "88", "Type": 4}, {"Name": "Yan", "Id": 89, "Type": "Writer"}],
    }  # fmt: skip
    (got,) = jellyfin.decode(jf_body(episode), "episode").items
    assert [(c.kind, c.person.source_id) for c in got.credits] == [("guest_star", "88"), ("writer", "89")]
    assert got.genres == ["Comedy"]  # from GenreItems when Genres is absent
    assert set(got.images) == {
        Image("thumb", "/Items/4711/Images/Primary/0", "e1"),  # an episode's Primary is its still
        Image("thumb", "/Items/4711/Images/Thumb/0", "e2"),
    }
    assert got.show is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [("Actor", "actor"), ("GuestStar", "guest_star"), ("Creator", "creator"), ("AlbumArtist", "album_artist"),
     (0, "actor"), (4, "guest_star"), (99, "unknown"), (None, "unknown"), ("", "unknown")],
)  # fmt: skip
def test_person_kinds_are_lower_snake_case(value: str | int | None, kind: str) -> None:
    assert jellyfin.person_kind(value) == kind


def test_jellyfin_requests_name_ids_never_a_person() -> None:
    request = jellyfin.batch_request("/emby", ["a", "b"])
    assert request.path == "/emby/Items"
    assert request.params["Ids"] == "a,b" and request.params["Fields"] == "People,Genres,Studios"
    assert request.params["EnableImages"] == "true" and request.params["EnableUserData"] == "false"
    listing = jellyfin.show_episodes_request("", "show1", 0)
    assert listing.path == "/Items" and listing.params["ParentId"] == "show1"
    assert listing.params["IncludeItemTypes"] == "Episode" and listing.params["Recursive"] == "true"
    assert listing.params["EnableTotalRecordCount"] == "true"
    assert jellyfin.show_episodes_request("", "show1", 100).params["EnableTotalRecordCount"] == "false"


# ----------------------------------------------------------------------------- the store


@pytest.fixture
def conn(tmp_path: Path) -> apsw.Connection:
    c = connect(tmp_path / "lib.db")
    c.execute(
        "INSERT INTO servers (id, kind, machine_id) VALUES (1, 'plex', 'm');"
        "INSERT INTO libraries (id, server_id, source_id) VALUES (1, 1, '2');"
        "INSERT INTO shows (id, library_id, source_id, etag) VALUES (10, 1, 's10', 'e10');"
        "INSERT INTO shows (id, library_id, source_id, etag) VALUES (11, 1, 's11', 'e11');"
    )
    return c


def _show(target: Target, *credits: Credit, genres: list[str] | None = None) -> Hydrated:
    meta = ItemMetadata(target.source_id, list(credits), genres or [], [Image("poster", "/p", "1")],
                        ShowFields("PG", "ABC", 7.5, None))  # fmt: skip
    return Hydrated(target, meta)


def test_write_replaces_whole_and_marks(conn: apsw.Connection) -> None:
    ann, bob = Person("1", "Ann", None), Person("2", "Bob", "/t")
    first = [
        _show(Target(10, "s10", "e10"), Credit(ann, "actor", "A", 0), Credit(ann, "actor", "B", 1),
              genres=["Drama", "Drama", "Crime"]),
        _show(Target(11, "s11", "e11"), Credit(bob, "director", None, 0)),
    ]  # fmt: skip
    counts = write_hydrated(conn, 1, "show", first, 1000)
    assert (counts.items, counts.people, counts.credits, counts.genres, counts.images) == (2, 2, 3, 2, 2)
    assert conn.execute("SELECT count(*) FROM credits WHERE item_id = 10").get == 2  # two roles, two rows
    assert conn.execute("SELECT group_concat(g.name) FROM item_genres i JOIN genres g ON g.id = i.genre_id "
                        "WHERE item_id = 10 ORDER BY position").get == "Drama,Crime"  # fmt: skip
    marked = conn.execute("SELECT hydrated_at, hydrated_etag, studio, critic_rating FROM shows WHERE id = 10")
    assert marked.fetchall() == [(1000, "e10", "ABC", 7.5)]
    # again, with Ann renamed and Bob gone from show 11: replaced whole, Ann updated in place
    again = [_show(Target(10, "s10", "e10b"), Credit(Person("1", "Ann B.", None), "actor", "A", 0)),
             _show(Target(11, "s11", "e11"))]  # fmt: skip
    counts = write_hydrated(conn, 1, "show", again, 2000)
    assert (counts.people, counts.credits) == (1, 1)
    assert conn.execute("SELECT id, name FROM people ORDER BY id").fetchall() == [(1, "Ann B."), (2, "Bob")]
    assert conn.execute("SELECT count(*) FROM credits").get == 1
    assert conn.execute("SELECT hydrated_etag FROM shows WHERE id = 10").get == "e10b"
    assert prune_people(conn) == 1  # Bob: nobody credits him any more
    assert conn.execute("SELECT name FROM people").fetchall() == [("Ann B.",)]
    # an item deleted takes its credits, genres and images with it (the schema's triggers)
    conn.execute("DELETE FROM shows WHERE id = 10")
    assert [conn.execute(f"SELECT count(*) FROM {t}").get for t in ("credits", "item_genres", "images")] == [
        0,
        0,
        1,
    ]


def test_write_skips_items_gone_meanwhile(conn: apsw.Connection) -> None:
    gone = _show(Target(99, "s99", "x"), Credit(Person("1", "Ann", None), "actor", None, 0))
    counts = write_hydrated(conn, 1, "show", [gone], 1)
    assert counts.items == 0 and conn.execute("SELECT count(*) FROM credits").get == 0


# ----------------------------------------------------------------------------- estimate, pacing


def test_server_time_notice() -> None:
    assert server_time_notice("plex", "1.40", 10_000, 100) is None
    assert server_time_notice("jellyfin", "10.11.0", 199, 4) is None
    old = server_time_notice("jellyfin", "10.11.0", 5000, 100)
    assert old is not None and "5,000 items" in old and "100 requests" in old
    assert "50.0 s" in old and "2 h 05 min" in old  # 10 ms to 1.5 s an item
    new = server_time_notice("jellyfin", "12.0.1", 5000, 100)
    assert new is not None and "a page at a time" in new and "4 min 10 s" in new
    emby = server_time_notice("emby", "4.8.10", 5000, 100)
    assert emby is not None and "Emby 4.8.10" in emby


async def test_pacer_spaces_request_starts() -> None:
    pacer = RequestPacer(50)
    started = time.monotonic()
    await asyncio.gather(*(pacer.wait() for _ in range(6)))
    assert time.monotonic() - started >= 5 / 50 - 0.005
    free = RequestPacer(None)
    started = time.monotonic()
    for _ in range(100):
        await free.wait()
    assert time.monotonic() - started < 0.05
    with pytest.raises(ValueError):
        RequestPacer(0)
