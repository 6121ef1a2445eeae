"""The pieces of the worker processes, checked in this process: the framed pipes, the typed
protocol, the decoder's comparison with stored rows, and the writer's session."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest

from importer import errors
from importer.channel import Receiver, Sender, pipe
from importer.model import (
    LibraryInfo,
    ListingKind,
    RunMode,
    RunStatus,
    ServerInfo,
    StreamKind,
    StreamProgress,
    merge_ranges,
)
from importer.protocol import (
    Counted,
    CountListing,
    ErrorInfo,
    FindGone,
    Finished,
    FinishLibrary,
    Gone,
    Message,
    Open,
    Opened,
    PageFailed,
    PageJob,
    PageRows,
    RunsStarted,
    RunStart,
    StartRuns,
    Written,
    decode_job,
    decode_to_main,
    decode_to_writer,
    encode,
)
from importer.rows import EPISODE_COLUMNS, MEDIA_FILE_COLUMNS, SHOW_COLUMNS
from importer.store import Writer, connect
from importer.store.listing import ListedItems
from importer.workers.child import WriterSettings
from importer.workers.decoder import StoredRows, decode
from importer.workers.writer import WriterSession

SERVER = ServerInfo("jellyfin", "m1", "Den", "10.10.7", "http://den")
LIBRARY = LibraryInfo("lib1", "TV")


# ----------------------------------------------------------------------------- pipes
def test_a_large_message_crosses_whole_and_a_closed_pipe_reads_as_eof() -> None:
    read_fd, write_fd = pipe()
    sender, receiver = Sender(write_fd), Receiver(read_fd)
    body = bytes(range(256)) * 20_000  # 5 MB: many times the pipe's capacity

    def send() -> None:
        sender.send(b"header", body)
        sender.send(b"alone")
        sender.close()

    thread = threading.Thread(target=send)
    thread.start()
    header, got = receiver.recv()
    assert bytes(header) == b"header" and bytes(got) == body
    header, got = receiver.recv()
    assert bytes(header) == b"alone" and len(got) == 0
    with pytest.raises(EOFError):
        receiver.recv()
    thread.join()


def test_a_body_in_more_chunks_than_one_writev_takes_crosses_whole() -> None:
    """A page off a slow link arrives in thousands of chunks; writev takes IOV_MAX (1024
    here) buffers at most and refuses more (EINVAL), which stopped the decoder's pipe."""
    read_fd, write_fd = pipe()
    sender, receiver = Sender(write_fd), Receiver(read_fd)
    chunks = [bytes([i % 251]) * (1 + i % 700) for i in range(5000)]

    def send() -> None:
        try:
            sender.send(b"page", *chunks)
        finally:
            sender.close()  # a failed send reads as EOF, not as a wait

    thread = threading.Thread(target=send)
    thread.start()
    header, got = receiver.recv()
    thread.join()
    assert bytes(header) == b"page" and bytes(got) == b"".join(chunks)


# ----------------------------------------------------------------------------- protocol
def test_an_error_crosses_as_itself_with_its_details() -> None:
    sent = errors.ServerError("http://den/Items: HTTP 503", url="http://den/Items", status=503)
    received = decode_to_main(encode(PageFailed(7, ErrorInfo.of(sent))))
    assert isinstance(received, PageFailed) and received.page_id == 7
    raised = received.error.exception()
    assert type(raised) is errors.ServerError and str(raised) == str(sent)
    assert (raised.url, raised.status, raised.exit_code) == ("http://den/Items", 503, 75)
    interrupted = ErrorInfo.of(errors.Interrupted("stop", signal="SIGTERM")).exception()
    assert isinstance(interrupted, errors.Interrupted) and interrupted.exit_code == 143
    # a bug's exception crosses as the base class, with a message that says so
    bug = ErrorInfo.of(KeyError("x")).exception()
    assert type(bug) is errors.ImporterError and "please report it" in str(bug)


def test_each_direction_decodes_its_own_union() -> None:
    rows = PageRows(1, 0, StreamKind.SEASONS, 0, 1, 1, 0, [("s1", "sh", 1, "S1", "e")], [], [], [], [], True)
    assert decode_to_writer(encode(rows)) == rows
    assert decode_to_writer(encode(CountListing(0, StreamKind.SHOWS))) == CountListing(0, StreamKind.SHOWS)
    written = Written(1, 10, 9, 1)
    assert decode_to_main(encode(written)) == written
    job = _job(ListingKind.FULL)
    assert decode_job(encode(job)) == job
    with pytest.raises(msgspec.ValidationError):  # a writer's message is no main-process event
        decode_to_main(encode(rows))


def test_stream_progress_merges_ranges_and_knows_its_gaps() -> None:
    progress = StreamProgress()
    for offset in (2000, 0, 1000, 4000):
        progress.add(offset, 1000 if offset != 4000 else 500, 9999 if offset == 0 else None)
    assert progress.committed == [(0, 3000), (4000, 4500)] and progress.total == 9999
    assert progress.done() == 3500 and progress.gaps(5000) == [(3000, 4000), (4500, 5000)]
    assert merge_ranges([(0, 10), (5, 8)]) == [(0, 10)]
    # stored as JSON in the run's row (older rows have no "kind": a full listing)
    stored = msgspec.json.decode(b'{"listing": 2, "total": 5, "committed": [[0, 3]]}', type=StreamProgress)
    assert stored.kind is ListingKind.FULL and stored.committed == [(0, 3)]


def test_listed_items_count_distinct_ids_and_survive_a_round_trip() -> None:
    items = ListedItems()
    items.add([1, 2, 3, 1_000_000])
    items.add([2, 3, 4])  # a page listed twice after a drift: duplicates do not count
    assert items.count == 5 and items.dirty
    again = ListedItems(items.bitmap())
    assert again.count == 5 and not items.dirty
    again.add([5, 1_000_000])
    assert again.count == 6
    # a page of new rows: a range, whole bytes at a time, counting only what is new
    again.add(range(3, 33))
    assert again.count == 6 + 30 - 3 and all(i in again for i in range(3, 33)) and 33 not in again


# ----------------------------------------------------------------------------- the writer session
class Session:
    """A writer session on a real file, its messages to the main process collected."""

    def __init__(self, path: Path, **settings: Any) -> None:
        self.sent: list[Message] = []
        self.session = WriterSession(
            Writer(connect(path)), WriterSettings(str(path), **settings), self.sent.append
        )

    def __call__(self, message: Message) -> Message | None:
        before = len(self.sent)
        self.session.handle(message)
        return self.sent[-1] if len(self.sent) > before else None

    def start(self, mode: RunMode = RunMode.FULL, **start: Any) -> int:
        opened = self(Open(SERVER, [LIBRARY]))
        assert isinstance(opened, Opened)
        listings = dict.fromkeys(StreamKind, ListingKind.FULL)
        values = {"resume_run": None, "supersede_run": None, "adopt": False, "link_all": False} | start
        started = self(StartRuns([RunStart(0, mode, listings, **values)]))
        assert isinstance(started, RunsStarted)
        return opened.libraries[0].library_id


def _show(n: int, etag: str = "e1") -> tuple[Any, ...]:
    row: list[Any] = [None] * len(SHOW_COLUMNS)
    row[0], row[2], row[-1] = f"show{n}", f"Show {n}", etag
    return tuple(row)


def _season(n: int, show: int) -> tuple[Any, ...]:
    return (f"season{n}", f"show{show}", n, f"Season {n}", "e1")


def _episode(n: int, show: int, season: int, etag: str = "e1") -> tuple[Any, ...]:
    row: list[Any] = [None] * len(EPISODE_COLUMNS)
    row[:3] = f"ep{n}", f"show{show}", f"season{season}"
    row[7], row[-1] = f"Episode {n}", etag
    return tuple(row)


def _file(n: int) -> tuple[Any, ...]:
    row: list[Any] = [None] * len(MEDIA_FILE_COLUMNS)
    row[:2] = f"ep{n}", f"part{n}"
    return tuple(row)


def _page(page_id: int, stream: StreamKind, rows: list[Any], **fields: Any) -> PageRows:
    values: dict[str, Any] = {
        "ids": [],
        "files": [],
        "images": [],
        "unchanged": [],
        "complete": True,
    } | fields
    return PageRows(page_id, 0, stream, fields.pop("offset", 0), len(rows), len(rows), 0, rows, **values)


def test_a_session_writes_pages_counts_listings_and_finishes_a_run(tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    session = Session(db, commit_rows=1_000_000, commit_interval=3600)
    session.start()
    # children before their parents: linked at the end
    written = session(_page(1, StreamKind.EPISODES, [_episode(1, 1, 1), _episode(2, 1, 1)], files=[_file(1)]))
    assert written == Written(1, 2, 2, 0)
    assert session(_page(2, StreamKind.SHOWS, [_show(1)])) == Written(2, 1, 1, 0)
    assert session(_page(3, StreamKind.SEASONS, [_season(1, 1)])) == Written(3, 1, 1, 0)
    counted = session(CountListing(0, StreamKind.EPISODES))
    assert counted == Counted(0, StreamKind.EPISODES, 2, 2)
    finished = session(FinishLibrary(0, RunStatus.DONE, None, False, 5, 100, 1_700_000_000.0))
    assert finished == Finished(0, 0, 0)
    conn = connect(db, readonly=True)
    assert conn.execute("SELECT count(*) FROM episodes WHERE show_id IS NULL OR season_id IS NULL").get == 0
    assert conn.execute("SELECT count(*) FROM media_files").get == 1
    status, watermark, progress = conn.execute("SELECT status, watermark, progress FROM runs").fetchone()
    assert status == "done" and watermark == 1_700_000_000 - 120
    assert '"episodes":{"listing":1,"kind":"full","total":2,"committed":[[0,2]]' in progress


def test_a_row_stored_after_the_decoder_looked_is_compared_by_the_writer(tmp_path: Path) -> None:
    session = Session(tmp_path / "lib.db")
    session.start()
    session(_page(1, StreamKind.SHOWS, [_show(1), _show(2)]))
    # the same items again as "new" (the decoder did not see them): no duplicate, no error
    again = session(_page(2, StreamKind.SHOWS, [_show(1), _show(2, etag="e2"), _show(3)]))
    assert again == Written(2, 3, 2, 1)  # show 2 changed, show 3 is new, show 1 unchanged
    assert session(CountListing(0, StreamKind.SHOWS)) == Counted(0, StreamKind.SHOWS, 3, 3)


def test_a_sweep_deletes_only_what_the_main_process_says(tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    first = Session(db)
    first.start()
    first(_page(1, StreamKind.SHOWS, [_show(1), _show(2)]))
    first(FinishLibrary(0, RunStatus.DONE, None, False, 1, 1, None))
    second = Session(db)
    second.start()
    second(_page(1, StreamKind.SHOWS, [_show(1)]))
    gone = second(FindGone(0, [StreamKind.SHOWS], names=True))
    assert gone == Gone(0, {StreamKind.SHOWS: 1}, 2, {StreamKind.SHOWS: [("show2", "Show 2")]})
    assert second(FinishLibrary(0, RunStatus.DONE, None, True, 1, 1, None)) == Finished(0, 1, 0)
    assert connect(db, readonly=True).execute("SELECT source_id FROM shows").fetchall() == [("show1",)]


# ----------------------------------------------------------------------------- the decoder
def _job(
    listing: ListingKind, *, compare: bool = False, encoding: str | None = None, library_id: int = 1
) -> PageJob:
    return PageJob(
        4, 0, library_id, "lib1", "jellyfin", StreamKind.EPISODES, listing, 0, True, encoding, compare
    )


def _jellyfin_page(*items: dict[str, Any], total: int | None = None) -> bytes:
    return msgspec.json.encode(
        {"Items": list(items), "TotalRecordCount": total or len(items), "StartIndex": 0}
    )


def _item(n: int, etag: str) -> dict[str, Any]:
    return {"Id": f"ep{n}", "Type": "Episode", "Etag": etag, "SeriesId": "show1", "SeasonId": "season1"}


def test_the_decoder_sends_only_what_changed(tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    session = Session(db)
    library_id = session.start()
    session(_page(1, StreamKind.EPISODES, [_episode(1, 1, 1, "a"), _episode(2, 1, 1, "b")]))
    session.session.commit()
    stored = StoredRows(str(db))
    body = memoryview(gzip.compress(_jellyfin_page(_item(1, "a"), _item(2, "B"), _item(3, "c"))))
    rows, summary = decode(
        _job(ListingKind.FULL, compare=True, encoding="gzip", library_id=library_id), body, stored
    )
    assert rows is not None and summary.count == 3 and summary.total == 3
    assert [row[0] for row in rows.rows] == ["ep2", "ep3"] and rows.ids == [2, 0] and rows.unchanged == [1]
    # an ids page: the unchanged ones are listed, the others fetched in full by id
    body = memoryview(_jellyfin_page(_item(1, "a"), _item(2, "B"), _item(3, "c")))
    rows, summary = decode(_job(ListingKind.IDS, library_id=library_id), body, stored)
    assert rows is not None and rows.rows == [] and rows.unchanged == [1] and not rows.complete
    assert summary.missing == ["ep2", "ep3"]
    # not compared (the stream held no rows): every row goes to the writer
    rows, _ = decode(_job(ListingKind.FULL, library_id=library_id), body, stored)
    assert rows is not None and len(rows.rows) == 3 and rows.ids == [] and rows.complete
    stored.close()


def test_a_body_that_does_not_inflate_is_a_bad_page(tmp_path: Path) -> None:
    with pytest.raises(errors.DecodeError, match="corrupt"):
        decode(
            _job(ListingKind.FULL, encoding="gzip"), memoryview(b"not gzip"), StoredRows(str(tmp_path / "x"))
        )
    with pytest.raises(errors.DecodeError, match="bomb"):
        bomb = memoryview(gzip.compress(b"\0" * 5_000_000))
        decode(_job(ListingKind.FULL, encoding="gzip"), bomb, StoredRows(str(tmp_path / "x")))
