"""Progress events and their renderers on stderr (the run's summary: ``importer.results``).

The pipeline feeds a :class:`Progress` tracker (``set_total``, ``advance``, ``finish``...);
the tracker counts, computes a smoothed rate and an ETA, and hands :class:`ProgressEvent`
objects to one renderer (``--progress``) and, for the library API, a callback:

- ``bar``: a live rich bar per stream and overall (stderr);
- ``plain``: a line every few seconds and at each stream's end (stderr: logs, cron);
- ``json``: one JSON object per line per event (stderr);
- ``none``: nothing; ``auto``: ``bar`` when stderr is a terminal, else ``none``.

``advance`` may be called thousands of times a second: it only adds numbers and, at most
every ``interval`` seconds, emits the streams that changed.

JSON lines schema (``--progress json``; stable key names, every key always present)::

    event          "start" | "stream" | "library_done" | "done" | "error"
    server         server name (start event) or null
    libraries      library titles (start event) or null
    library        library title, or null for run-wide events
    stream         "shows" | "seasons" | "episodes", or null
    done           items done: of the stream ("stream"), the library ("library_done"),
                   the run ("start", "done", "error")
    total          items expected for the same scope, null while unknown
    rate           items per second (smoothed), null until measurable
    eta            seconds left, null while unknown
    finished       true on the last event of a stream or library, and on "done"
    elapsed        seconds since the run started
    overall_done   items done in the whole run
    overall_total  items expected in the whole run, null while any stream's total is unknown
    overall_rate   items per second in the whole run, null until measurable
    overall_eta    seconds left in the whole run, null while unknown
    message        the error message ("error"), else null
    status         how it ended: a library's run ("library_done": "done", "dry-run",
                   "incomplete", "stopped", "failed", "interrupted"), the run ("done": "done",
                   or "ended" once an error was reported); else null

The last line is always a ``done`` event with ``done == total`` (== overall_done ==
overall_total): the run counts what it did, whatever was planned.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol, TypedDict

import msgspec

from importer.model import STREAMS, StreamKind
from importer.results import format_seconds

_STREAM_NAMES = frozenset(STREAMS)

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

__all__ = ["Progress", "ProgressEvent", "Renderer", "make_renderer"]

EventKind = Literal["start", "stream", "library_done", "done", "error"]
Mode = Literal["auto", "bar", "plain", "json", "none"]
MODES: tuple[str, ...] = ("auto", "bar", "plain", "json", "none")

#: time constant of the rate's exponential smoothing (seconds)
RATE_TAU = 5.0


class ProgressEvent(msgspec.Struct, kw_only=True):
    """One progress event; the JSON lines renderer writes exactly these fields."""

    event: EventKind
    server: str | None = None
    libraries: list[str] | None = None
    library: str | None = None
    stream: str | None = None
    done: int = 0
    total: int | None = None
    rate: float | None = None
    eta: float | None = None
    finished: bool = False
    elapsed: float = 0.0
    overall_done: int = 0
    overall_total: int | None = None
    overall_rate: float | None = None
    overall_eta: float | None = None
    message: str | None = None
    status: str | None = None


# ------------------------------------------------------------------ counting


@dataclass(eq=False)
class _Counter:
    """Items done of one scope (a stream or the run), with a smoothed rate."""

    started: float
    done: int = 0
    total: int | None = None
    finished: bool = False
    rate: float | None = None
    _sampled_at: float = 0.0
    _sampled_done: int = 0

    def sample(self, now: float) -> None:
        """Update the rate: the plain average over the first ``RATE_TAU`` seconds (too few
        samples to smooth), then an EWMA whose weight depends on the time elapsed, so the
        result does not depend on how often the renderer asks."""
        age = now - self.started
        if age <= 0:
            return
        if age < RATE_TAU or self.rate is None:
            self.rate = self.done / age
        else:
            dt = now - self._sampled_at
            if dt <= 0:
                return
            instant = max(0.0, (self.done - self._sampled_done) / dt)  # a restarted stream counts down
            self.rate += (1 - math.exp(-dt / RATE_TAU)) * (instant - self.rate)
        self._sampled_at, self._sampled_done = now, self.done

    def eta(self) -> float | None:
        if self.total is None:
            return None
        left = self.total - self.done
        if left <= 0:
            return 0.0
        if not self.rate:
            return None
        return left / self.rate


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# ------------------------------------------------------------------ renderers


class Renderer(Protocol):
    """Receives events; ``interval`` is how often (seconds) it wants stream updates."""

    interval: float

    def handle(self, event: ProgressEvent) -> None: ...

    def close(self) -> None: ...


class NullRenderer:
    """Shows nothing."""

    interval = math.inf

    def handle(self, event: ProgressEvent) -> None:
        pass

    def close(self) -> None:
        pass


class CallbackRenderer:
    """Hands each event to a callable (the library API's ``progress=``)."""

    def __init__(self, callback: Callable[[ProgressEvent], object], interval: float = 0.5) -> None:
        self.callback = callback
        self.interval = interval

    def handle(self, event: ProgressEvent) -> None:
        self.callback(event)

    def close(self) -> None:
        pass


class JsonRenderer:
    """One JSON object per line per event (schema in the module docstring)."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._encode = msgspec.json.Encoder().encode

    def handle(self, event: ProgressEvent) -> None:
        self.stream.write(self._encode(event).decode() + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class PlainRenderer:
    """A line every ``interval`` seconds per changing stream, and one at each stream's end."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 5.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval

    def handle(self, event: ProgressEvent) -> None:
        line = _plain_line(event)
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


def _plain_line(e: ProgressEvent) -> str | None:
    if e.event == "start":
        libs = ", ".join(e.libraries or [])
        return f"importer: started {e.server or 'server'}" + (f": {libs}" if libs else "")
    if e.event == "error":
        return f"importer: error: {e.message}"
    if e.event == "done":
        return f"importer: {e.status or 'done'}, {e.done:,} items in {format_seconds(e.elapsed)}"
    if e.event == "library_done":
        return f"importer: {e.library}: {e.status or 'done'}, {e.done:,} items"
    what = f"{e.library} {e.stream}"
    count = f"{e.done:,}/{e.total:,}" if e.total is not None else f"{e.done:,}"
    if e.finished:
        rate = f", {e.rate:,.0f}/s" if e.rate else ""
        ended = "done" if e.total is None or e.done >= e.total else "stopped"
        return f"importer: {what} {count} {ended}{rate}"
    pct = f" ({100 * e.done / e.total:.0f}%)" if e.total else ""
    rate = f", {e.rate:,.0f}/s" if e.rate is not None else ""
    eta = f", ETA {_clock(e.eta)}" if e.eta is not None else ""
    overall = ""
    if e.overall_total is not None:
        overall = f" | all {e.overall_done:,}/{e.overall_total:,}"
        if e.overall_eta is not None:
            overall += f" ETA {_clock(e.overall_eta)}"
    return f"importer: {what} {count}{pct}{rate}{eta}{overall}"


class BarRenderer:
    """A live rich progress bar on stderr: a row per stream and one overall."""

    interval = 0.2

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as RichProgress

        console = Console(file=stream if stream is not None else sys.stderr)
        # Our own rate and ETA (smoothed over seconds) go in through task fields: rich's
        # speed estimate jumps with every page of a thousand items.
        self._bar: RichProgress = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eta]}"),
            console=console,
            refresh_per_second=5,
        )
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._overall: TaskID | None = None
        self._started = False

    def handle(self, event: ProgressEvent) -> None:
        if not self._started:
            self._bar.start()
            self._overall = self._bar.add_task("overall", total=None, **_bar_fields(0, None, None, None))
            self._started = True
        if event.event == "error":
            self._bar.console.print(f"[red]error:[/red] {event.message}", markup=True, highlight=False)
            return
        if event.event == "stream" and event.library is not None and event.stream is not None:
            key = (event.library, event.stream)
            fields = _bar_fields(event.done, event.total, event.rate, event.eta)
            task = self._tasks.get(key)
            if task is None:  # created complete: rich redraws at once, and must not show a blank row
                self._tasks[key] = self._bar.add_task(
                    f"{event.library} {event.stream}", total=event.total, completed=event.done, **fields
                )
            else:
                self._bar.update(task, completed=event.done, total=event.total, **fields)
        if self._overall is not None:
            fields = _bar_fields(
                event.overall_done, event.overall_total, event.overall_rate, event.overall_eta
            )
            self._bar.update(self._overall, completed=event.overall_done, total=event.overall_total, **fields)

    def close(self) -> None:
        if self._started:
            self._bar.stop()


class _BarFields(TypedDict):
    count: str
    rate: str
    eta: str


def _bar_fields(done: int, total: int | None, rate: float | None, eta: float | None) -> _BarFields:
    return {
        "count": f"{done:,}/{total:,}" if total is not None else f"{done:,}",
        "rate": f"{rate:,.0f}/s" if rate is not None else "",
        "eta": f"ETA {_clock(eta)}" if eta is not None else "",
    }


def make_renderer(mode: str, stream: IO[str] | None = None) -> Renderer:
    """The renderer for ``--progress MODE`` writing to ``stream`` (default: stderr)."""
    out = stream if stream is not None else sys.stderr
    if mode == "auto":
        isatty = getattr(out, "isatty", None)
        mode = "bar" if isatty is not None and isatty() else "none"
    if mode == "bar":
        return BarRenderer(out)
    if mode == "plain":
        return PlainRenderer(out)
    if mode == "json":
        return JsonRenderer(out)
    if mode == "none":
        return NullRenderer()
    raise ValueError(f"unknown progress mode {mode!r}; use one of {', '.join(MODES)}")


# ------------------------------------------------------------------ the tracker


class Progress:
    """Counts items per library and stream and reports them to a renderer and/or a callback.

    Thread-safe; ``advance`` costs about a microsecond, so it may be called per item.
    """

    def __init__(
        self,
        mode: str = "auto",
        *,
        callback: Callable[[ProgressEvent], object] | None = None,
        renderer: Renderer | None = None,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float | None = None,
    ) -> None:
        self._sinks: list[Renderer] = [renderer if renderer is not None else make_renderer(mode, stream)]
        if callback is not None:
            self._sinks.append(CallbackRenderer(callback))
        self._sinks = [s for s in self._sinks if not isinstance(s, NullRenderer)]
        self.interval = (
            interval if interval is not None else min((s.interval for s in self._sinks), default=math.inf)
        )
        self._clock = clock
        self._lock = threading.RLock()
        self._t0 = clock()
        self._run = _Counter(self._t0)
        self._streams: dict[tuple[str, str], _Counter] = {}
        self._dirty: dict[tuple[str, str], _Counter] = {}
        self._last_emit = self._t0
        self._closed = False
        self._ended_badly = False  # an error, or a library that did not end done

    # -------------------------------------------------------------- what the pipeline calls

    def start(self, server: str | None = None, libraries: Sequence[str] = ()) -> None:
        """The run has started (restarts the clock)."""
        with self._lock:
            self._t0 = self._last_emit = self._clock()
            self._run = _Counter(self._t0, done=self._run.done)
            for counter in self._streams.values():
                counter.started = self._t0
            self._emit(self._run_event("start", server=server, libraries=list(libraries)))

    def set_total(self, library: str, stream: str, total: int | None) -> None:
        """The server's count of a stream's items (may be called again when it changes)."""
        with self._lock:
            counter = self._counter(library, stream)
            counter.total = total
            self._dirty[(library, stream)] = counter
            self._maybe_flush()

    def advance(self, library: str, stream: str, n: int = 1) -> None:
        """``n`` more items of a stream are done."""
        with self._lock:
            counter = self._counter(library, stream)
            counter.done += n
            self._run.done += n
            self._dirty[(library, stream)] = counter
            # the hot path ends here unless it is time to show something
            if self._clock() - self._last_emit >= self.interval:
                self._flush()

    def restart_stream(self, library: str, stream: str) -> None:
        """A stream is listed again from the start (its listing drifted): count it from zero."""
        with self._lock:
            counter = self._counter(library, stream)
            self._run.done -= counter.done
            counter.done = counter._sampled_done = 0
            counter.total = None
            counter.finished = False
            self._dirty[(library, stream)] = counter

    def stream_done(self, library: str, stream: str) -> None:
        """A stream is complete: its total becomes what was done."""
        with self._lock:
            self._finish_stream(library, stream, self._counter(library, stream))

    def library_done(self, library: str, status: str = "done") -> None:
        """A library's run ended, as ``status`` says (a run's status: "done", "interrupted",
        ...). Done, its streams are complete (their totals become what was done); otherwise
        they keep their totals: an interrupted stream shows how far it got."""
        complete = status in ("done", "dry-run")
        with self._lock:
            self._flush()
            for (lib, stream), counter in list(self._streams.items()):
                if lib == library:
                    self._finish_stream(lib, stream, counter, complete=complete)
            counters = [c for (lib, _), c in self._streams.items() if lib == library]
            done = sum(c.done for c in counters)
            event = self._run_event("library_done", library=library, finished=True)
            event.done = done
            event.total = done if complete else sum(c.total or c.done for c in counters)
            event.status = status
            if not complete:
                self._ended_badly = True
            self._emit(event)

    def error(self, message: str, library: str | None = None) -> None:
        """Report an error (the renderer shows it; the run may go on with other libraries)."""
        with self._lock:
            self._ended_badly = True
            self._emit(self._run_event("error", library=library, message=message))

    def finish(self, library: str | None = None, stream: str | None = None) -> None:
        """End a stream (``library`` and ``stream``), a library (``library``), or the run (no
        arguments: the final ``done`` event, then the renderer closes). Idempotent for the run."""
        with self._lock:
            if library is not None and stream is not None:
                self.stream_done(library, stream)
                return
            if library is not None:
                self.library_done(library)
                return
            if self._closed:
                return
            self._flush()
            self._run.total = self._run.done  # the run is what it did
            event = self._run_event("done", finished=True)
            event.eta = event.overall_eta = 0.0
            event.status = "ended" if self._ended_badly else "done"
            self._emit(event)
            self._closed = True
            for sink in self._sinks:
                sink.close()

    close = finish

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    # -------------------------------------------------------------- what tests and summaries read

    @property
    def done(self) -> int:
        return self._run.done

    def counts(self) -> dict[tuple[str, str], tuple[int, int | None]]:
        """(library, stream) → (done, total)."""
        with self._lock:
            return {key: (c.done, c.total) for key, c in self._streams.items()}

    # -------------------------------------------------------------- internals

    def _counter(self, library: str, stream: str) -> _Counter:
        counter = self._streams.get((library, stream))
        if counter is None:
            counter = self._streams[(library, stream)] = _Counter(self._clock())
        return counter

    def _overall_total(self) -> int | None:
        totals = [c.total if not c.finished else c.done for c in self._streams.values()]
        if not totals or any(t is None for t in totals):
            return None
        return sum(t for t in totals if t is not None)

    def _maybe_flush(self) -> None:
        if self._clock() - self._last_emit >= self.interval:
            self._flush()

    def _flush(self) -> None:
        now = self._last_emit = self._clock()
        self._run.total = self._overall_total()
        self._run.sample(now)
        dirty, self._dirty = self._dirty, {}
        for (library, stream), counter in sorted(dirty.items(), key=_stream_order):
            counter.sample(now)
            self._emit(self._stream_event(library, stream, counter, now))

    def _finish_stream(self, library: str, stream: str, counter: _Counter, *, complete: bool = True) -> None:
        if counter.finished:
            return
        self._dirty.pop((library, stream), None)
        counter.finished = True
        if complete or counter.total is None:
            counter.total = counter.done
        now = self._clock()
        counter.sample(now)
        self._run.total = self._overall_total()
        self._run.sample(now)
        self._emit(self._stream_event(library, stream, counter, now))

    def _stream_event(self, library: str, stream: str, c: _Counter, now: float) -> ProgressEvent:
        return ProgressEvent(
            event="stream",
            library=library,
            stream=stream,
            done=c.done,
            total=c.total,
            rate=_round(c.rate),
            eta=_round(c.eta()),
            finished=c.finished,
            elapsed=round(now - self._t0, 3),
            overall_done=self._run.done,
            overall_total=self._run.total,
            overall_rate=_round(self._run.rate),
            overall_eta=_round(self._run.eta()),
        )

    def _run_event(self, kind: EventKind, **fields: Any) -> ProgressEvent:
        total = self._run.total if kind == "done" else self._overall_total()
        return ProgressEvent(
            event=kind,
            done=self._run.done,
            total=total,
            rate=_round(self._run.rate),
            eta=_round(self._run.eta()),
            elapsed=round(self._clock() - self._t0, 3),
            overall_done=self._run.done,
            overall_total=total,
            overall_rate=_round(self._run.rate),
            overall_eta=_round(self._run.eta()),
            **fields,
        )

    def _emit(self, event: ProgressEvent) -> None:
        for sink in self._sinks:
            sink.handle(event)


def _stream_order(item: tuple[tuple[str, str], _Counter]) -> tuple[str, int]:
    (library, stream), _ = item
    return library, STREAMS.index(StreamKind(stream)) if stream in _STREAM_NAMES else len(STREAMS)


# ------------------------------------------------------------------ formatting


def _clock(seconds: float | None) -> str:
    """``0:05``, ``12:34``, ``1:02:03``: for ETAs."""
    if seconds is None or math.isinf(seconds) or math.isnan(seconds):
        return "?"
    s = max(0, round(seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
