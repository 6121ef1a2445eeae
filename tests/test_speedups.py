"""The C extension and its pure-Python twin give identical results, errors included."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from importer import _purepy, speedups

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


def _outcome(parse, value):  # type: ignore[no-untyped-def]
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
    assert expected in version()
