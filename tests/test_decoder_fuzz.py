"""Hostile pages: the decoders turn any body into rows or raise DecodeError, nothing else.

The pages start real: recorded Plex answers (tests/reference) and pages of the emulated
Jellyfin and Emby servers. Hypothesis then changes one value anywhere in the tree (wrong
types, huge numbers, odd text, nesting), drops keys, or damages the bytes (truncation,
invalid UTF-8, junk)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_data import PLEX

from importer.errors import DecodeError
from importer.model import STREAMS, ListingKind, StreamKind
from importer.sources import decode_page
from importer.sources.base import DecodedPage

Path_ = tuple[str | int, ...]
FULL = ListingKind.FULL


def _plex_pages() -> list[tuple[str, StreamKind, ListingKind, bytes]]:
    fixtures = PLEX / "fixtures"
    return [
        ("plex", StreamKind.SHOWS, FULL, (fixtures / "plex-api-rs-tv_library.json").read_bytes()),
        ("plex", StreamKind.SEASONS, FULL, (fixtures / "plex-api-rs-tv_seasons.json").read_bytes()),
        ("plex", StreamKind.EPISODES, FULL, (fixtures / "plex-api-rs-tv_episodes.json").read_bytes()),
    ]


def _emulated_pages(kind: str) -> list[tuple[str, StreamKind, ListingKind, bytes]]:
    from importer.emulator import Library, LibrarySpec, make_server
    from importer.sources import make_source

    server = make_server(kind, Library(LibrarySpec(seed=2, shows=3)))
    source = make_source(kind, "")
    pages = []
    with server.running_in_thread() as url:
        headers = source.auth_headers(server.token)
        from importer.model import LibraryInfo

        library = LibraryInfo(server.folders[0].id, "TV")  # type: ignore[attr-defined]
        for stream in STREAMS:
            for listing in (ListingKind.FULL, ListingKind.IDS):
                request = source.page_request(library, stream, listing, 0, 40, with_total=True)
                answer = requests.get(url + request.path, params=dict(request.params),
                                      headers={**headers, **request.headers}, timeout=30)  # fmt: skip
                answer.raise_for_status()
                pages.append((kind, stream, listing, answer.content))
    return pages


PAGES = _plex_pages() + _emulated_pages("jellyfin") + _emulated_pages("emby")


def _paths(node: Any, at: Path_ = ()) -> Iterator[Path_]:
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):  # the first items are shaped like the rest
            yield from _paths(value, (*at, i))


def _replace(node: Any, path: Path_, value: Any, drop: bool) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        copy = dict(node)
        if drop and not rest:
            del copy[head]
        else:
            copy[head] = _replace(node[head], rest, value, drop)
        return copy
    copy_list = list(node)
    copy_list[head] = _replace(node[head], rest, value, drop)  # type: ignore[index]
    return copy_list


hostile = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "abc", "2024-13-45T99:99:99Z", "１２３", "\ud800", "tt", "-1", "0x10"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=5,
)


def _decodes_or_refuses(kind: str, stream: StreamKind, listing: ListingKind, body: bytes) -> None:
    try:
        page = decode_page(kind, stream, body, "7", listing=listing, with_total=True)
    except DecodeError:
        return
    assert isinstance(page, DecodedPage)
    assert page.count >= 0 and all(isinstance(i, str) for i in page.ids)


@pytest.mark.parametrize(
    ("kind", "stream", "listing", "body"), PAGES, ids=[f"{k}-{s}-{li}" for k, s, li, _ in PAGES]
)
def test_the_unchanged_pages_decode(kind: str, stream: StreamKind, listing: ListingKind, body: bytes) -> None:
    page = decode_page(kind, stream, body, "7", listing=listing, with_total=True)
    assert page.count > 0 and len(page.ids) == page.count


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=hostile, drop=st.booleans())
def test_a_changed_value_anywhere_decodes_or_is_refused(data: st.DataObject, value: Any, drop: bool) -> None:
    kind, stream, listing, body = data.draw(st.sampled_from(PAGES), label="page")
    tree = json.loads(body)
    paths = list(_paths(tree))
    path = data.draw(st.sampled_from(paths), label="path")
    changed = _replace(tree, path, value, drop and bool(path) and isinstance(path[-1], str))
    try:
        text = json.dumps(changed, ensure_ascii=False)
    except ValueError:
        return
    _decodes_or_refuses(kind, stream, listing, text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), junk=st.binary(max_size=16))
def test_damaged_bytes_decode_or_are_refused(data: st.DataObject, junk: bytes) -> None:
    kind, stream, listing, body = data.draw(st.sampled_from(PAGES), label="page")
    cut = data.draw(st.integers(0, len(body)), label="at")
    how = data.draw(st.sampled_from(["truncate", "insert", "overwrite"]), label="how")
    if how == "truncate":
        damaged = body[:cut]
    elif how == "insert":
        damaged = body[:cut] + junk + body[cut:]
    else:
        damaged = body[:cut] + junk + body[cut + len(junk) :]
    _decodes_or_refuses(kind, stream, listing, damaged)


@pytest.mark.parametrize(
    "body", [b"", b"<html><body>Sign in</body></html>", b"null", b"[]", b"{}", b"\xff\xfe"]
)
@pytest.mark.parametrize("kind", ["plex", "jellyfin", "emby"])
def test_bodies_of_the_wrong_shape_are_refused(kind: str, body: bytes) -> None:
    for stream in STREAMS:
        with pytest.raises(DecodeError):
            decode_page(kind, stream, body, "7", with_total=True)
