"""The decoder process: page bytes in, rows out.

For each :class:`~importer.protocol.PageJob` (and its body, as it came off the wire) it
inflates the body (the one place bodies are inflated in this process), decodes it
(msgspec Structs, then rows in C where compiled), and sends:

- the rows to the writer (:class:`~importer.protocol.PageRows`), after comparing them
  with the stored rows when the stream held rows at the run's start: an item whose
  stored etag equals the page's costs its decoding and a lookup, and nothing at all in
  the writer, which is the bottleneck;
- a summary to the main process (:class:`~importer.protocol.Decoded`), so that the
  planner learns totals before the rows are written.

A page it cannot decode goes back to the main process as a
:class:`~importer.protocol.PageFailed`, which fetches it once more.

The comparison reads the database through its own read-only connection (WAL: it never
waits for the writer). It may miss a row the writer has not committed yet; the writer
then finds the item stored when it inserts it, and compares that page itself.
"""

from __future__ import annotations

import apsw

from importer import speedups
from importer.channel import Receiver, Sender
from importer.compression import inflate
from importer.errors import DecodeError, ImporterError, UnexpectedResponse
from importer.model import ListingKind, StreamKind
from importer.protocol import (
    Decoded,
    ErrorInfo,
    PageFailed,
    PageJob,
    PageRows,
    WorkerExit,
    decode_job,
    encode,
)
from importer.rows import ETAG, Row
from importer.sources import DecodedPage, decode_page
from importer.store.connection import connect
from importer.store.queries import stored_rows
from importer.workers.child import WriterSettings, peak_rss_kb

#: the decoder's SQLite cache for its lookups
LOOKUP_CACHE_MB = 64


class StoredRows:
    """The database as the decoder reads it: the stored (id, etag) of a page's items."""

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._conn: apsw.Connection | None = None

    def lookup(
        self, library_id: int, stream: StreamKind, source_ids: list[str]
    ) -> dict[str, tuple[int, str | None]]:
        if self._conn is None:  # opened at the first page that needs it: the writer created the file
            # the key index of a million episodes, cached here rather than read from the OS
            # for every page (measured: half the decoder's time in a verification)
            self._conn = connect(self.db_path, readonly=True, cache_mb=LOOKUP_CACHE_MB)
        return stored_rows(self._conn, library_id, stream, source_ids)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def run_decoder(jobs: Receiver, to_writer: Sender, to_main: Sender, settings: WriterSettings) -> None:
    stored = StoredRows(settings.db_path)
    while True:
        try:
            header, body = jobs.recv()
        except EOFError:
            break
        job = decode_job(header)
        try:
            rows, summary = decode(job, body, stored)
        except ImporterError as exc:
            to_main.send(encode(PageFailed(job.page_id, ErrorInfo.of(exc))))
            continue
        except Exception as exc:  # a decoder bug must not look like a hang
            error = DecodeError(f"could not decode a {job.stream} page: {exc!r}")
            to_main.send(encode(PageFailed(job.page_id, ErrorInfo.of(error))))
            continue
        if rows is not None:
            to_writer.send(encode(rows))
        to_main.send(encode(summary))
    stored.close()
    to_writer.close()
    to_main.send(encode(WorkerExit("decoder", peak_rss_kb(), speedups.IMPLEMENTATION)))


def decode(job: PageJob, body: memoryview, stored: StoredRows) -> tuple[PageRows | None, Decoded]:
    """The rows for the writer (None for a count) and the summary for the main process."""
    what = f"a {job.stream} page of library {job.library_source_id}"
    try:
        raw = inflate(body, job.encoding, what=what)
    except UnexpectedResponse as exc:  # a body that does not inflate is a bad page: fetch it again
        raise DecodeError(str(exc)) from exc
    page = decode_page(
        job.server_kind,
        job.stream,
        raw,
        job.library_source_id,
        listing=job.listing,
        with_total=job.with_total,
    )
    offset = page.offset if page.offset >= 0 else job.offset
    missing: list[str] = []
    rows: PageRows | None = None
    if job.listing is ListingKind.IDS:
        rows, missing = _compare_ids(job, page, offset, stored)
    elif job.listing is not ListingKind.COUNT:
        rows = (
            _compare_rows(job, page, offset, stored) if job.compare else _rows(job, page, offset, page.rows)
        )
    return rows, Decoded(job.page_id, offset, page.count, page.total, page.leaf_total, missing)


def _rows(
    job: PageJob,
    page: DecodedPage,
    offset: int,
    rows: list[Row],
    ids: list[int] | None = None,
    files: list[Row] | None = None,
    images: list[Row] | None = None,
    unchanged: list[int] | None = None,
    *,
    complete: bool = True,
) -> PageRows:
    complete = complete and job.listing is not ListingKind.DETAILS  # details pages own no range
    return PageRows(
        job.page_id, job.library, job.stream, offset, page.count, page.total, page.leaf_total,
        rows, ids or [], page.files if files is None else files,
        page.images if images is None else images, unchanged or [], complete,
    )  # fmt: skip


def _compare_rows(job: PageJob, page: DecodedPage, offset: int, stored: StoredRows) -> PageRows:
    """Only what is new or changed goes to the writer; the rest by its local id."""
    found = stored.lookup(job.library_id, job.stream, [row[0] for row in page.rows])
    if not found:
        return _rows(job, page, offset, page.rows)
    rows: list[Row] = []
    ids: list[int] = []
    unchanged: list[int] = []
    for row in page.rows:
        old = found.get(row[0])
        if old is None:
            rows.append(row)
            ids.append(0)
        elif row[ETAG] is not None and row[ETAG] == old[1]:
            unchanged.append(old[0])
        else:  # changed, or no etag to tell: rewrite
            rows.append(row)
            ids.append(old[0])
    files, images = page.files, page.images
    if (files or images) and len(rows) < len(page.rows):
        kept = {row[0] for row in rows}
        files = [f for f in files if f[0] in kept]
        images = [i for i in images if i[0] in kept]
    return _rows(job, page, offset, rows, ids, files, images, unchanged)


def _compare_ids(
    job: PageJob, page: DecodedPage, offset: int, stored: StoredRows
) -> tuple[PageRows, list[str]]:
    """An ids page: the items whose etag matches are listed; the rest are fetched by id."""
    found = stored.lookup(job.library_id, job.stream, page.ids)
    unchanged: list[int] = []
    missing: list[str] = []
    for source_id, etag in zip(page.ids, page.etags, strict=True):
        old = found.get(source_id)
        if old is not None and etag is not None and etag == old[1]:
            unchanged.append(old[0])
        else:
            missing.append(source_id)
    # its range is committed once its missing items are too: on resume, it is read again
    return _rows(job, page, offset, [], unchanged=unchanged, complete=not missing), missing
