"""The C extension and its pure-Python twin give identical results, errors included."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer import _purepy, speedups
from importer.sources import jellyfin, plex

try:
    from importer import _speedups
except ImportError:  # pragma: no cover - only where no compiler was available
    _speedups = None  # type: ignore[assignment]

IMPLEMENTATIONS = [pytest.param(_purepy.parse_timestamp, id="python")]
if _speedups is not None:
    IMPLEMENTATIONS.append(pytest.param(_speedups.parse_timestamp, id="c"))


def test_ci_uses_the_compiled_extension() -> None:
    if os.environ.get("CI") != "true":
        pytest.skip("only CI requires the compiled extension")
    assert _speedups is not None, "CI must build importer._speedups (pip install . with a C compiler)"
    assert speedups.IMPLEMENTATION == "c"


def test_pure_python_can_be_forced() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from importer import speedups; print(speedups.IMPLEMENTATION)"],
        env={**os.environ, "IMPORTER_PURE_PYTHON": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "python"


@pytest.mark.parametrize("parse", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05T12:34:56.1234567Z", dt.datetime(2024, 3, 5, 12, 34, 56, tzinfo=dt.UTC)),
        ("2024-03-05T12:34:56Z", dt.datetime(2024, 3, 5, 12, 34, 56, tzinfo=dt.UTC)),
        ("2024-03-05T12:34:56", dt.datetime(2024, 3, 5, 12, 34, 56, tzinfo=dt.UTC)),
        ("2024-03-05 12:34:56.5+02:00", dt.datetime(2024, 3, 5, 10, 34, 56, tzinfo=dt.UTC)),
        ("2024-03-05T12:34:56-0130", dt.datetime(2024, 3, 5, 14, 4, 56, tzinfo=dt.UTC)),
        ("2024-02-29", dt.datetime(2024, 2, 29, tzinfo=dt.UTC)),
        ("1969-12-31T23:59:59Z", dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
        ("0001-01-01T00:00:00.0000000Z", dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
    ],
)
def test_parse_timestamp_known_values(parse, text: str, expected: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    assert parse(text) == int((expected - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).total_seconds())


@pytest.mark.parametrize("parse", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "text",
    ["", "2024", "2023-02-29", "2024-13-01", "2024-00-10", "2024-01-32", "2024-01-01T24:00:00",
     "2024-01-01T12:60:00", "2024-01-01T12:00:60", "2024-01-01T12:00", "2024-01-01T12:00:00.",
     "2024-01-01T12:00:00.1234567890Z", "2024-01-01T12:00:00Zjunk", "2024-01-01X12:00:00",
     "٢٠٢٤-01-01", "0000-01-01", "2024-01-01T12:00:00+2400", " 2024-01-01"],
)  # fmt: skip
def test_parse_timestamp_rejects(parse, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="invalid timestamp"):
        parse(text)


@pytest.mark.parametrize("parse", IMPLEMENTATIONS)
def test_parse_timestamp_none_and_types(parse) -> None:  # type: ignore[no-untyped-def]
    assert parse(None) is None
    for bad in (20240101, b"2024-01-01", 1.5, ["2024-01-01"]):
        with pytest.raises(TypeError):
            parse(bad)


def _outcome(parse: Callable[[Any], object], value: object) -> tuple[object, ...]:
    try:
        return ("ok", parse(value))
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


timestamps = st.builds(
    lambda d, t, frac, zone: d.isoformat() + t + frac + zone,
    st.dates(),
    st.sampled_from(["", "T00:00:00", "T23:59:59", " 12:30:45"]),
    st.sampled_from(["", ".1", ".1234567", ".123456789", "."]),
    st.sampled_from(["", "Z", "+05:30", "-0800", "+24:00", "z"]),
)


@pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")
@settings(max_examples=3000, deadline=None)
@given(st.one_of(timestamps, st.text(max_size=40), st.text(alphabet="0123456789-:TZ.+ ", max_size=35)))
@example("2024-01-01T00:00:00\udc80")
def test_c_and_python_agree(value: str) -> None:
    assert _outcome(_speedups.parse_timestamp, value) == _outcome(_purepy.parse_timestamp, value)


@pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")
def test_repeated_calls_do_not_grow_memory() -> None:
    parse = _speedups.parse_timestamp
    values = ["2024-03-05T12:34:56.1234567Z", "bad", None, "2024-02-29"]

    def burn() -> None:
        for _ in range(50_000):
            for v in values:
                with contextlib.suppress(ValueError):
                    parse(v)

    burn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(5):
        burn()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 2048, f"peak RSS grew by {after - before} kB over 1,000,000 calls"


def test_version_says_which_implementation_runs() -> None:
    def version(**env: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "importer", "--version"],
            env={**os.environ, **env}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout

    assert "pure-Python twin" in version(IMPORTER_PURE_PYTHON="1")
    expected = "compiled C extension" if _speedups is not None else "C extension was not built"
    assert expected in version(IMPORTER_PURE_PYTHON="0")


# ----------------------------------------------------------------------------- row builders
# Random pages, hostile ones included (wrong types, huge numbers, odd text, missing and
# unknown keys): whatever msgspec accepts goes to both row builders, which must give the
# same rows or the same error; whatever it refuses never reaches them.

text = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["", "imdb://tt1", "tvdb://7", "tmdb://"]))
number = st.one_of(st.none(), st.integers(-(2**70), 2**70), st.integers(-5, 5))  # huge ones too
anything = st.one_of(
    text, number, st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.none(), max_size=2),
)  # fmt: skip
stamp = st.one_of(
    st.none(),
    st.just("0001-01-01T00:00:00.0000000Z"),
    timestamps,
    st.text(alphabet="0123456789-:TZ.+ ", max_size=30),
)


def _maybe(**fields: st.SearchStrategy[object]) -> st.SearchStrategy[dict[str, object]]:
    """Dicts with any subset of the fields (keys may be missing), sometimes a wrong type."""

    def rarely_wrong(v: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        return st.integers(0, 29).flatmap(lambda n: anything if n == 0 else v)

    return st.fixed_dictionaries({}, optional={k: rarely_wrong(v) for k, v in fields.items()})


plex_part = _maybe(
    id=st.one_of(st.integers(0, 10**6), text), file=text, size=number, duration=number, container=text
)
plex_media = _maybe(
    duration=number, width=number, height=number, container=text, videoCodec=text, audioCodec=text,
    Part=st.lists(plex_part, max_size=3),
)  # fmt: skip
plex_episode = st.builds(
    lambda key, rest: {"ratingKey": key, **rest},
    st.one_of(st.integers(0, 10**9), st.text(max_size=8)),
    _maybe(
        type=st.sampled_from(["episode", "episode", "show", None]),
        grandparentRatingKey=st.one_of(st.integers(0, 99), text),
        parentRatingKey=st.one_of(st.integers(0, 99), text), guid=text, title=text,
        summary=text, index=number,
        parentIndex=number, originallyAvailableAt=text, duration=number, addedAt=number, updatedAt=number,
        Guid=st.lists(st.builds(lambda i: {"id": i}, st.one_of(text, st.integers())), max_size=4),
        Media=st.lists(plex_media, max_size=3),
    ),
)  # fmt: skip
jf_stream = _maybe(
    Type=st.sampled_from(["Video", "Audio", "Subtitle", None]), Codec=text, Width=number, Height=number
)
jf_source = _maybe(
    Id=text, Path=text, Size=number, Container=text, RunTimeTicks=number,
    MediaStreams=st.one_of(st.none(), st.lists(jf_stream, max_size=4)),
)  # fmt: skip
jf_episode = st.builds(
    lambda item_id, rest: {"Id": item_id, **rest},
    st.text(max_size=8),
    _maybe(
        Name=text, Overview=text, Etag=text, SeriesId=text, SeasonId=text, ParentIndexNumber=number,
        IndexNumber=number, IndexNumberEnd=number, PremiereDate=stamp, DateCreated=stamp, RunTimeTicks=number,
        LocationType=st.sampled_from(["FileSystem", "Virtual", None]),
        ProviderIds=st.one_of(st.none(), _maybe(Imdb=text, Tmdb=text, Tvdb=text)),
        MediaSources=st.one_of(st.none(), st.lists(jf_source, max_size=3)),
    ),
)  # fmt: skip


def _decoded(decoder, page: object):  # type: ignore[no-untyped-def]
    import json

    try:
        return decoder.decode(json.dumps(page).encode())
    except Exception:  # msgspec refused it: the builders never see it
        return None


@pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")
@settings(max_examples=1500, deadline=None)
@given(st.lists(plex_episode, max_size=6))
def test_plex_rows_c_and_python_agree(items: list[dict[str, object]]) -> None:
    page = _decoded(plex._EPISODES, {"MediaContainer": {"Metadata": items}})
    if page is None:
        return
    metadata = page.container.metadata
    assert _outcome(lambda m: _speedups.plex_episode_rows(m, "episode"), metadata) == _outcome(
        lambda m: _purepy.plex_episode_rows(m, "episode"), metadata
    )


@pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")
@settings(max_examples=1500, deadline=None)
@given(st.lists(jf_episode, max_size=6))
def test_jellyfin_rows_c_and_python_agree(items: list[dict[str, object]]) -> None:
    page = _decoded(jellyfin._PAGE, {"Items": items})
    if page is None:
        return
    assert _outcome(_speedups.jellyfin_episode_rows, page.items) == _outcome(
        _purepy.jellyfin_episode_rows, page.items
    )


@pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")
@settings(max_examples=500, deadline=None)
@given(
    st.recursive(st.one_of(text, number), lambda inner: st.lists(inner, max_size=4).map(tuple), max_leaves=20)
)
def test_content_etag_c_and_python_agree(value: object) -> None:
    assert _outcome(_speedups.content_etag, value) == _outcome(_purepy.content_etag, value)


@pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")
@pytest.mark.parametrize("garbage", [None, 5, "abc", [1, 2], [object()], [{"type": "episode"}]])
def test_row_builders_refuse_garbage_without_crashing(garbage: object) -> None:
    for build in (lambda g: _speedups.plex_episode_rows(g, "episode"), _speedups.jellyfin_episode_rows):
        with pytest.raises((TypeError, AttributeError)):
            build(garbage)


def test_decoded_pages_do_not_depend_on_the_implementation() -> None:
    """The same real-shaped pages through decode_page in a fresh interpreter per
    implementation: identical rows (what the writer and the database see)."""
    script = (
        "import sys, msgspec;"
        "from importer.sources import decode_page;"
        "from tests.test_speedups import _sample_pages;"
        "sys.stdout.buffer.write(msgspec.msgpack.encode("
        "[decode_page(k, 'episodes', b, '1') for k, b in _sample_pages()]))"
    )
    outputs = {
        flag: subprocess.run(
            [sys.executable, "-c", script], env={**os.environ, "IMPORTER_PURE_PYTHON": flag},
            capture_output=True, check=True, cwd=os.path.dirname(os.path.dirname(__file__)),
        ).stdout
        for flag in ("0", "1")
    }  # fmt: skip
    assert outputs["0"] == outputs["1"] and len(outputs["0"]) > 1000


def _sample_pages() -> list[tuple[str, bytes]]:
    import json

    plex_items = [
        {"ratingKey": str(100 + i), "type": "episode", "grandparentRatingKey": "1", "parentRatingKey": 2,
         "guid": f"plex://episode/{i}", "title": f"Episode {i}", "index": i, "parentIndex": 1,
         "originallyAvailableAt": "2024-01-02", "duration": 1_300_000, "addedAt": 1_700_000_000 + i,
         "updatedAt": 1_700_000_500, "Guid": [{"id": "imdb://tt1"}, {"id": f"tvdb://{i}"}, {"id": "tmdb://9"}],
         "Media": [{"duration": 1_300_000, "width": 1920, "height": 1080, "container": "mkv",
                    "videoCodec": "hevc", "audioCodec": "eac3",
                    "Part": [{"id": 500 + i, "file": f"/tv/{i}.mkv", "size": 10**9}] * (1 + i % 2)}]}
        for i in range(50)
    ]  # fmt: skip
    jf_items = [
        {"Id": f"{i:032x}", "Type": "Episode", "Name": f"Episode {i}", "SeriesId": "s", "SeasonId": None,
         "ParentIndexNumber": 1, "IndexNumber": i, "PremiereDate": "2023-12-04T00:00:00.0000000Z",
         "DateCreated": f"2024-01-03T03:16:{i % 60:02d}.2899259Z", "RunTimeTicks": 13_718_900_000 + i,
         "Etag": None if i % 3 else f"e{i}", "LocationType": "Virtual" if i % 7 == 3 else "FileSystem",
         "ProviderIds": {"Imdb": "", "Tvdb": str(i)},
         "MediaSources": [{"Id": None if i % 2 else "m", "Path": f"/tv/{i}.mkv", "Size": 5,
                           "RunTimeTicks": 99_999,
                           "MediaStreams": [{"Type": "Audio", "Codec": "aac"},
                                            {"Type": "Video", "Codec": "h264",
                                             "Width": 720, "Height": 480}]}]}
        for i in range(50)
    ]  # fmt: skip
    return [
        (
            "plex",
            json.dumps({"MediaContainer": {"offset": 0, "totalSize": 50, "Metadata": plex_items}}).encode(),
        ),
        ("jellyfin", json.dumps({"Items": jf_items, "TotalRecordCount": 50, "StartIndex": 0}).encode()),
    ]


@pytest.mark.skipif(_speedups is None, reason="the C extension is not built here")
def test_row_builders_do_not_grow_memory() -> None:
    pages = dict(_sample_pages())
    metadata = plex._EPISODES.decode(pages["plex"]).container.metadata
    items = jellyfin._PAGE.decode(pages["jellyfin"]).items
    bad = jellyfin._PAGE.decode(b'{"Items": [{"Id": "x", "DateCreated": "2024-13-01"}]}').items

    def burn() -> None:
        for _ in range(2_000):
            _speedups.plex_episode_rows(metadata, "episode")
            _speedups.plex_episode_rows(metadata, "show")
            _speedups.jellyfin_episode_rows(items)
            with contextlib.suppress(ValueError):
                _speedups.jellyfin_episode_rows(bad)

    burn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3):
        burn()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert after - before < 4096, f"peak RSS grew by {after - before} kB over 300,000 pages"
