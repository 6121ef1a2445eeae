"""``includeMeta=1``: the types, sorts, fields and operators a section's listings accept,
which python-plexapi validates its searches against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from importer.emulator.plex.formats import Attrs, Format, Group
from importer.emulator.plex.query import EPISODE, SEASON, SHOW

_TV_TYPES: Final = (
    ("show", "TV Shows", SHOW),
    ("season", "Seasons", SEASON),
    ("episode", "Episodes", EPISODE),
)
_MOVIE_TYPES: Final = (("movie", "Movies", 1),)
# operators per the official spec, "Media Queries / Operators"
_OPERATORS: Final = {
    "integer": (
        ("=", "is"),
        ("!=", "is not"),
        (">>=", "is greater than"),
        ("<<=", "is less than"),
        ("<=", "is less than or equal to"),
        (">=", "is greater than or equal to"),
    ),
    "date": (("=", "is"), ("!=", "is not"), (">>=", "is after"), ("<<=", "is before")),
    "string": (
        ("=", "contains"),
        ("!=", "does not contain"),
        ("==", "is"),
        ("!==", "is not"),
        ("<=", "begins with"),
        (">=", "ends with"),
    ),
    "boolean": (("=", "is true"), ("!=", "is false")),
    "tag": (("=", "is"), ("!=", "is not")),
}


def _type(fmt: Format, key: str, kind: str, title: str, active: bool, groups: Sequence[Group] = ()) -> bytes:
    pairs: Attrs = [("key", key), ("type", kind), ("title", title), ("active", active)]
    return fmt.element("Type", pairs, groups)


def _meta(fmt: Format, types: list[bytes], field_types: list[bytes]) -> bytes:
    """``Meta``: an element without attributes in XML, an object in JSON."""
    if fmt.json:
        body = b'{"Type":[' + b",".join(types) + b"]"
        return body + (b',"FieldType":[' + b",".join(field_types) + b"]}" if field_types else b"}")
    return b"<Meta>\n" + b"".join(types) + b"".join(field_types) + b"</Meta>\n"


def listing_meta(fmt: Format, key: int, tv: bool) -> bytes:
    """Of a section's listings (home-assistant library_movies_filtertypes.xml)."""
    types = []
    for kind, title, number in _TV_TYPES if tv else _MOVIE_TYPES:
        prefix = "" if kind in ("show", "movie") else f"{kind}."
        sorts = [
            fmt.element(
                "Sort",
                [
                    ("default", "asc"),
                    ("defaultDirection", "asc"),
                    ("descKey", f"{prefix}titleSort:desc"),
                    ("key", f"{prefix}titleSort"),
                    ("title", "Title"),
                ],
            ),
            fmt.element(
                "Sort",
                [
                    ("defaultDirection", "desc"),
                    ("descKey", f"{prefix}addedAt:desc"),
                    ("key", f"{prefix}addedAt"),
                    ("title", "Date Added"),
                ],
            ),
        ]
        fields = [
            fmt.element("Field", [("key", f"{prefix}title"), ("title", "Title"), ("type", "string")]),
            fmt.element("Field", [("key", f"{prefix}addedAt"), ("title", "Date Added"), ("type", "date")]),
        ]
        types.append(
            _type(
                fmt,
                f"/library/sections/{key}/all?type={number}",
                kind,
                title,
                number == SHOW,
                [("Sort", sorts), ("Field", fields)],
            )
        )
    types.append(_type(fmt, f"/library/sections/{key}/folder", "folder", "Folders", False))
    field_types = [
        fmt.element(
            "FieldType",
            [("type", t)],
            [("Operator", [fmt.element("Operator", [("key", k), ("title", ti)]) for k, ti in ops])],
        )
        for t, ops in _OPERATORS.items()
    ]
    return _meta(fmt, types, field_types)


def collections_meta(fmt: Format, key: int) -> bytes:
    """Of a section's collections: the collection type alone (python-plexapi asks)."""
    collection = _type(fmt, f"/library/sections/{key}/collections", "collection", "Collections", False)
    return _meta(fmt, [collection], [])
