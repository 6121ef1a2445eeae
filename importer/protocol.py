"""The messages between the processes of a run: one typed protocol, defined here only.

```
main ── PageJob + body ──────────────► decoder ── PageRows ──────► writer
  ▲ ◄── Decoded, PageFailed, WorkerExit ──┘                          ▲ │
  │                                                                  │ │
  └── Open, StartRuns, Relist, CountListing, FindGone, FinishLibrary,┘ │
  ◄── Opened, RunsStarted, Written, Committed, Counted, Gone,          │
      Finished, Indexed, WorkerFailed, WorkerExit ─────────────────────┘
```

Every message is a msgspec ``Struct`` in a tagged union, encoded as msgpack arrays;
each direction has one union type (:data:`ToWriter`, :data:`ToMain`; the decoder only
ever receives a :class:`PageJob`, whose page body follows it as a second frame, so that
megabytes of JSON are not copied into a message). An error crosses as an
:class:`ErrorInfo` and is raised again on the other side as the same class with the
same message and details.

Decoded page summaries go from the decoder straight to the main process, so the planner
learns totals before the rows are written; pages go to the writer, which reports each
page written and each transaction committed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from importer import errors
from importer.model import (
    LibraryInfo,
    LibraryProgress,
    ListingKind,
    RunMode,
    RunStatus,
    ServerInfo,
    StreamKind,
)
from importer.rows import Row


class Message(msgspec.Struct, array_like=True, gc=False, tag=True):
    """Base of every message: compact (msgpack arrays), tagged by class name."""


class ErrorInfo(msgspec.Struct, frozen=True):
    """An :class:`~importer.errors.ImporterError` on its way to another process."""

    name: str  # the class name in importer.errors
    message: str
    details: dict[str, Any] = {}

    @classmethod
    def of(cls, exc: BaseException) -> ErrorInfo:
        if isinstance(exc, errors.ImporterError):
            details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool | None)}
            return cls(type(exc).__name__, exc.message, details)
        return cls("ImporterError", f"unexpected error in a worker process: {exc!r}; please report it")

    def exception(self) -> errors.ImporterError:
        return errors.error_class(self.name)(self.message, **self.details)


# ----------------------------------------------------------------------------- main → decoder
class PageJob(Message):
    """A fetched page for the decoder; its body follows as the message's body."""

    page_id: int
    library: int  # the library's index in this run
    library_id: int  # its local id (libraries.id): stored rows are looked up by it
    library_source_id: str
    server_kind: str
    stream: StreamKind
    listing: ListingKind
    offset: int  # as requested: a page that does not state its offset starts here
    with_total: bool  # the request asked the server to count the whole listing
    encoding: str | None  # the body's Content-Encoding
    #: compare with the stored rows (the stream held rows when the run started): only
    #: what is new or changed is sent to the writer
    compare: bool


# ----------------------------------------------------------------------------- decoder → writer
class PageRows(Message):
    """A decoded page: the rows to write and the stored items it lists unchanged."""

    page_id: int
    library: int
    stream: StreamKind
    offset: int
    count: int
    total: int | None
    leaf_total: int
    #: items to write, in page order; ``ids`` holds the local id of each one's stored row,
    #: 0 where none was found (new, or not looked up)
    rows: list[Row]
    ids: list[int]  # empty: no lookup was made (the stream held no rows), all 0
    files: list[Row]  # the media files of the episodes in ``rows``
    images: list[Row]  # the images of the shows or seasons in ``rows``
    unchanged: list[int]  # local ids of listed items whose stored etag matches: no write
    #: this message writes every item of [offset, offset + count): its range counts as
    #: committed (not so for an ids page whose changed items are fetched by id)
    complete: bool


# ----------------------------------------------------------------------------- main → writer
class Open(Message):
    server: ServerInfo
    libraries: list[LibraryInfo]


class RunStart(Message):
    library: int
    mode: RunMode
    listings: dict[StreamKind, ListingKind]  # how each stream is listed at first
    resume_run: int | None  # continue this unfinished run
    supersede_run: int | None  # record this unfinished run as failed first
    #: a new item may take over the stored row of its guid (a file replaced on Plex)
    adopt: bool
    #: rows of earlier runs may lack their parents (an unfinished run): link them all
    link_all: bool


class StartRuns(Message):
    runs: list[RunStart]


class Relist(Message):
    """The stream is listed again from the start: forget what its last listing saw."""

    library: int
    stream: StreamKind
    listing: int
    kind: ListingKind


class CountListing(Message):
    """Every page of the stream's listing is written: how many distinct items did it name?"""

    library: int
    stream: StreamKind


class FindGone(Message):
    """The stored rows of these streams that the complete listings did not name."""

    library: int
    streams: list[StreamKind]
    names: bool  # send their names (for --dry-run), not only their counts


class FinishLibrary(Message):
    library: int
    status: RunStatus
    reason: str | None
    delete: bool  # delete what FindGone found
    requests: int
    bytes: int
    server_clock: float | None  # the server's Date when the run started; a done run's watermark


class BuildIndexes(Message):
    pass


class Stop(Message):
    """Commit and stop once every pipe is closed."""


# ----------------------------------------------------------------------------- workers → main
class Decoded(Message):
    """What the planner needs of a page, as soon as it is decoded."""

    page_id: int
    offset: int  # as the server states it (else as asked)
    count: int  # items on the page, before leaving out virtual ones
    total: int | None  # the server's count of the whole listing, when the page carries it
    leaf_total: int
    #: an ids page: source ids of items that are new or changed, to fetch in full
    missing: list[str]


class PageFailed(Message):
    page_id: int
    error: ErrorInfo


class StoredLibrary(Message):
    """What the database knows of a library when a run starts."""

    library_id: int
    populated: list[StreamKind]  # streams that hold rows
    watermark: int | None  # of the last done run
    verified_at: int | None  # when the last done full run started
    unfinished_run: int | None  # the last run, when it did not end (killed, failed, interrupted)
    unfinished_mode: RunMode | None
    unfinished_progress: LibraryProgress | None


class Opened(Message):
    libraries: list[StoredLibrary]


class RunsStarted(Message):
    run_ids: list[int]


class Written(Message):
    page_id: int
    items: int  # items the page listed
    written: int  # items inserted or changed
    unchanged: int


class Committed(Message):
    commits: int  # transactions committed so far
    #: per library index: its progress, as stored by this commit (libraries it touched)
    progress: dict[int, LibraryProgress]


class Counted(Message):
    library: int
    stream: StreamKind
    unique: int  # distinct items the listing named
    stored: int  # rows of the stream the library holds


class Gone(Message):
    library: int
    counts: dict[StreamKind, int]  # rows no listing named, per stream
    stored: int  # every row of the library (shows, seasons and episodes)
    #: per stream: (source_id, a name for people), when asked
    names: dict[StreamKind, list[tuple[str, str]]]


class Finished(Message):
    library: int
    deleted: int
    unlinked: int  # episodes left without show or season


class Indexed(Message):
    pass


class WorkerFailed(Message):
    """The worker cannot go on (the database cannot be opened or written)."""

    role: str
    error: ErrorInfo


class WorkerExit(Message):
    role: str  # "writer" or "decoder-<pid>"
    peak_rss_kb: int
    implementation: str  # the hot path it ran: "c" or "python" (importer.speedups)


ToWriter = (
    PageRows | Open | StartRuns | Relist | CountListing | FindGone | FinishLibrary | BuildIndexes | Stop
)
ToMain = (
    Decoded | PageFailed | Opened | RunsStarted | Written | Committed | Counted | Gone | Finished
    | Indexed | WorkerFailed | WorkerExit
)  # fmt: skip

encode = msgspec.msgpack.Encoder().encode
decode_job = msgspec.msgpack.Decoder(PageJob).decode
decode_to_writer = msgspec.msgpack.Decoder(ToWriter).decode
decode_to_main = msgspec.msgpack.Decoder(ToMain).decode
