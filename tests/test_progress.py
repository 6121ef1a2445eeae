"""Progress tracking, its renderers, and the run summary."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest

from importer.model import RunMode, RunStatus, ServerInfo
from importer.progress import JsonRenderer, Progress, ProgressEvent, make_renderer
from importer.results import (
    LibraryResult,
    SyncResult,
    format_bytes,
    format_seconds,
    format_summary,
    summary_dict,
)

SCHEMA_KEYS = {
    "event", "server", "libraries", "library", "stream", "done", "total", "rate", "eta", "finished",
    "elapsed", "overall_done", "overall_total", "overall_rate", "overall_eta", "message", "status",
}  # fmt: skip


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def simulate(progress: Progress, clock: FakeClock, library: str = "TV Shows") -> None:
    """A small run: totals known after the first page; 100 episodes a second for 10 s."""
    progress.start("My Server", [library])
    progress.set_total(library, "shows", 10)
    progress.set_total(library, "seasons", 20)
    progress.set_total(library, "episodes", 1000)
    progress.advance(library, "shows", 10)
    progress.advance(library, "seasons", 20)
    progress.stream_done(library, "shows")
    progress.stream_done(library, "seasons")
    for _ in range(100):
        for _ in range(10):
            progress.advance(library, "episodes", 1)
        clock.tick(0.1)
    progress.library_done(library)
    progress.finish()


def test_json_lines_parse_and_end_with_done_equal_total() -> None:
    out, clock = io.StringIO(), FakeClock()
    simulate(Progress("json", stream=out, clock=clock), clock)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(set(e) == SCHEMA_KEYS for e in events)  # every key, always
    kinds = [e["event"] for e in events]
    assert (
        kinds[0] == "start" and events[0]["server"] == "My Server" and events[0]["libraries"] == ["TV Shows"]
    )
    assert kinds[-1] == "done" and kinds.count("done") == 1 and "library_done" in kinds
    last = events[-1]
    assert last["done"] == last["total"] == last["overall_done"] == last["overall_total"] == 1030
    assert last["finished"] and last["eta"] == 0
    # throttled: 1,000 advance calls over 10 s give about one line a second, not a thousand
    episode_lines = [e for e in events if e["stream"] == "episodes"]
    assert 8 <= len(episode_lines) <= 13
    finals = [e for e in events if e["event"] == "stream" and e["finished"]]
    assert {(e["stream"], e["done"], e["total"]) for e in finals} == {
        ("shows", 10, 10), ("seasons", 20, 20), ("episodes", 1000, 1000),
    }  # fmt: skip


def test_an_interrupted_library_is_not_told_as_done() -> None:
    """A library whose run was interrupted keeps its streams' totals (the bar and the lines
    show how far it got), and neither it nor the run is said to be done."""
    out, clock, events = io.StringIO(), FakeClock(), list[ProgressEvent]()
    progress = Progress("plain", stream=out, clock=clock, callback=events.append)
    progress.start("My Server", ["TV Shows"])
    progress.set_total("TV Shows", "episodes", 1000)
    progress.advance("TV Shows", "episodes", 400)
    progress.error("interrupted by SIGINT: 400 items were committed")
    progress.library_done("TV Shows", "interrupted")
    progress.finish()
    lines = out.getvalue().splitlines()
    assert "importer: TV Shows episodes 400/1,000 stopped" in lines
    assert "importer: TV Shows: interrupted, 400 items" in lines
    assert lines[-1].startswith("importer: ended, 400 items in ")
    assert not any(line.endswith(" done") or ": done," in line for line in lines), lines
    finals = [e for e in events if e.event == "stream" and e.finished]
    assert [(e.done, e.total) for e in finals] == [(400, 1000)]
    assert [e.status for e in events if e.event in ("library_done", "done")] == ["interrupted", "ended"]


def test_rate_and_eta() -> None:
    clock = FakeClock()
    events: list[ProgressEvent] = []
    progress = Progress("none", callback=events.append, clock=clock)
    progress.start()
    progress.set_total("L", "episodes", 10_000)
    for _ in range(200):  # 20 s at 100 items a second, in bursts of 10
        progress.advance("L", "episodes", 10)
        clock.tick(0.1)
    last = [e for e in events if e.event == "stream"][-1]
    assert last.rate is not None and 90 <= last.rate <= 110
    assert last.eta is not None and abs(last.eta - (10_000 - last.done) / last.rate) < 1
    assert last.overall_total == 10_000 and last.overall_eta is not None


def test_rate_follows_a_slowdown() -> None:
    clock = FakeClock()
    events: list[ProgressEvent] = []
    progress = Progress("none", callback=events.append, clock=clock)
    progress.start()
    for _ in range(100):  # 10 s at 1,000/s
        progress.advance("L", "episodes", 100)
        clock.tick(0.1)
    for _ in range(300):  # then 30 s at 100/s
        progress.advance("L", "episodes", 10)
        clock.tick(0.1)
    rate = [e for e in events if e.event == "stream"][-1].rate
    assert rate is not None and 90 <= rate <= 150


def test_totals_unknown_give_null_eta() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("json", stream=out, clock=clock)
    progress.advance("L", "shows", 5)
    clock.tick(2)
    progress.advance("L", "shows", 5)
    progress.finish()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    stream = [e for e in events if e["event"] == "stream"]
    assert (
        stream
        and stream[0]["total"] is None
        and stream[0]["eta"] is None
        and stream[0]["overall_total"] is None
    )
    assert events[-1]["event"] == "done" and events[-1]["done"] == events[-1]["total"] == 10


def test_restart_stream_counts_from_zero() -> None:
    events: list[ProgressEvent] = []
    progress = Progress("none", callback=events.append, clock=FakeClock())
    progress.set_total("L", "episodes", 100)
    progress.advance("L", "episodes", 60)
    progress.restart_stream("L", "episodes")  # the listing drifted: it is read again
    progress.set_total("L", "episodes", 101)
    progress.advance("L", "episodes", 101)
    assert progress.counts() == {("L", "episodes"): (101, 101)} and progress.done == 101
    progress.finish()
    assert events[-1].done == events[-1].total == 101


def test_plain_lines() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress("plain", stream=out, clock=clock)
    progress.start("My Server", ["TV Shows"])
    progress.set_total("TV Shows", "episodes", 1000)
    for _ in range(12):  # 12 s: lines at 5 and 10 s
        progress.advance("TV Shows", "episodes", 50)
        clock.tick(1)
    progress.stream_done("TV Shows", "episodes")
    progress.error("the server went away")
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "importer: started My Server: TV Shows"
    periodic = [line for line in lines if "ETA" in line]
    assert len(periodic) == 2
    # at 5 s: six advances of 50 (at 0, 1, ... 5 s)
    assert (
        periodic[0] == "importer: TV Shows episodes 300/1,000 (30%), 60/s, ETA 0:12 | all 300/1,000 ETA 0:12"
    )
    assert "importer: TV Shows episodes 600/600 done, 44/s" in lines  # the last 2 s were slower
    assert "importer: error: the server went away" in lines
    assert lines[-1] == "importer: ended, 600 items in 12.0 s"  # after an error: not "done"


def test_callback_gets_events_and_the_final_done() -> None:
    events: list[ProgressEvent] = []
    clock = FakeClock()
    simulate(Progress("none", callback=events.append, clock=clock), clock)
    assert all(isinstance(e, ProgressEvent) for e in events)
    assert events[0].event == "start" and events[-1].event == "done"
    assert events[-1].done == events[-1].total == 1030


def test_finish_is_idempotent_and_closes_once() -> None:
    out = io.StringIO()
    progress = Progress("json", stream=out)
    with progress:
        progress.advance("L", "episodes", 3)
    progress.finish()
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()].count("done") == 1


def test_advance_is_cheap() -> None:
    progress = Progress("json", stream=io.StringIO())
    started = time.perf_counter()
    for _ in range(100_000):
        progress.advance("TV Shows", "episodes", 1)
    per_call = (time.perf_counter() - started) / 100_000
    assert per_call < 10e-6, f"{per_call * 1e6:.1f} µs per advance()"
    progress.finish()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_mode_and_bar() -> None:
    assert type(make_renderer("auto", io.StringIO())).__name__ == "NullRenderer"
    out = Tty()
    assert type(make_renderer("auto", out)).__name__ == "BarRenderer"
    clock = FakeClock()
    simulate(Progress("bar", stream=out, clock=clock), clock)
    text = out.getvalue()
    assert "TV Shows episodes" in text and "overall" in text and "1,000/1,000" in text
    with pytest.raises(ValueError, match="unknown progress mode"):
        make_renderer("fancy")


def test_renderer_instance_is_used() -> None:
    out = io.StringIO()
    progress = Progress(renderer=JsonRenderer(out))
    progress.finish()
    assert json.loads(out.getvalue())["event"] == "done"


# ------------------------------------------------------------------ the summary


SERVER = ServerInfo("plex", "m1", "My Server", "1.41", "http://plex")


def lib(
    title: str = "TV Shows",
    status: RunStatus = RunStatus.DONE,
    totals: dict[str, int] | None = None,
    written: int = 5000,
    unchanged: int = 0,
    reason: str | None = None,
    deleted: int = 0,
    mode: RunMode = RunMode.FULL,
) -> LibraryResult:
    totals = {"shows": 50, "seasons": 200, "episodes": 5000} if totals is None else totals
    return LibraryResult(title, "1", status, mode, totals, written, unchanged, deleted, reason=reason)


def result(libraries: list[LibraryResult] | None = None, **fields: Any) -> SyncResult:
    values: dict[str, Any] = {"requests": 9, "bytes": 4_100_000, "seconds": 1.2, "commits": 2} | fields
    return SyncResult(SERVER, [lib()] if libraries is None else libraries, **values)


def test_format_summary() -> None:
    assert format_summary(result()) == (
        'plex "My Server": TV Shows 5,000 episodes (5,000 written, 0 unchanged) in 1.2 s, 9 requests, 4.1 MB'
    )
    two = result(
        [
            lib(),
            lib("Anime", RunStatus.INCOMPLETE, {"episodes": 300}, 10, 290, "the library kept changing"),
            lib("Kids", RunStatus.DONE, {"episodes": 40}, 2, 0, None, 3, RunMode.INCREMENTAL),
        ],
        requests=1,
        bytes=812_000,
        seconds=125,
    )
    assert two.exit_code == 75  # the worst library's
    assert format_summary(two) == (
        'plex "My Server": TV Shows 5,000 episodes (5,000 written, 0 unchanged); '
        "Anime 300 episodes (10 written, 290 unchanged) incomplete: the library kept changing; "
        "Kids 40 episodes (incremental: 2 written, 0 unchanged, 3 deleted) in 2 min 05 s, 1 request, 812 kB"
    )


def test_format_summary_json() -> None:
    stopped = result([lib(status=RunStatus.STOPPED)])
    data = json.loads(format_summary(stopped, as_json=True))
    assert data == summary_dict(stopped)
    assert data == {
        "kind": "plex",
        "server": "My Server",
        "libraries": [
            {
                "title": "TV Shows", "status": "stopped", "mode": "full", "shows": 50, "seasons": 200,
                "episodes": 5000, "written": 5000, "unchanged": 0, "deleted": 0, "reason": None,
            }
        ],
        "seconds": 1.2,
        "requests": 9,
        "bytes": 4_100_000,
        "exit_code": 3,
    }  # fmt: skip


def test_units() -> None:
    assert [format_bytes(n) for n in (512, 812_000, 4_100_000, 1_200_000_000)] == [
        "512 B", "812 kB", "4.1 MB", "1.20 GB",
    ]  # fmt: skip
    assert [format_seconds(s) for s in (0.42, 1.24, 125, 3725)] == [
        "0.42 s",
        "1.2 s",
        "2 min 05 s",
        "1 h 02 min",
    ]
