"""The cursor file: ``<database>.cursor``, a JSON mirror of a run's progress.

The truth is in the database: each transaction that commits pages also stores the run's
progress in its ``runs`` row. After that commit, and only then, the cursor file is
rewritten (temporary file, fsync, rename, fsync of the folder), so after a kill it is
never ahead of the rows it describes; a crash in between leaves it one commit behind,
which costs a refetch, never a lost page. After a power cut it may be ahead: it is
synced, and a commit under ``synchronous=NORMAL`` is not until the next sync point. So
when the two disagree the database wins, always.

Format (version 2; :class:`Cursor`)::

    {
      "version": 2,
      "database": "/path/library.db",
      "server": {"kind": "plex", "machine_id": "...", "base_url": "http://..."},
      "server_clock": 1764170000,          # the server's clock when the run started
      "committed_at": 1764170042,
      "libraries": {
        "<library source_id>": {
          "title": "TV Shows",
          "run_id": 7,
          "mode": "full",                  # or "incremental"
          "streams": {
            "episodes": {"listing": 1, "kind": "full", "total": 5000,
                         "committed": [[0, 3000], [4000, 5000]], "leaf_total": 0},
            ...
          }
        }
      }
    }

``committed`` holds the item ranges (offsets in the listing) whose rows are committed
(``importer.model.StreamProgress``); a resumed run fetches only the rest, if the server's
counts have not changed meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import msgspec

from importer.crashpoints import crash_point
from importer.errors import CursorError
from importer.model import LibraryProgress, RunMode

log = logging.getLogger("importer")

VERSION = 2
_ADVICE = "delete it: the database holds the truth, and the next run rewrites the file"


class CursorServer(msgspec.Struct, frozen=True):
    kind: str
    machine_id: str
    base_url: str


class CursorLibrary(msgspec.Struct):
    title: str
    run_id: int
    mode: RunMode
    streams: LibraryProgress


class Cursor(msgspec.Struct, kw_only=True):
    version: int = VERSION
    database: str
    server: CursorServer
    server_clock: float | None
    committed_at: int
    libraries: dict[str, CursorLibrary]  # by the library's source id


class FileIO(Protocol):
    """The file operations that :func:`write_cursor` makes: the ``os`` module's."""

    def open(self, path: str | Path, flags: int, mode: int = 0o777) -> int: ...
    def write(self, fd: int, data: bytes, /) -> int: ...
    def fsync(self, fd: int, /) -> None: ...
    def close(self, fd: int, /) -> None: ...
    def replace(self, src: str | Path, dst: str | Path) -> None: ...


#: The seam of the power-cut tests (``tests/powercut``): they put a twin here that records
#: each write and fsync, in a test's subprocess only. Always ``os`` otherwise.
fileio: FileIO = os

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Cursor).decode


def cursor_path(db_path: str) -> Path:
    return Path(f"{db_path}.cursor")


def write_cursor(path: Path, cursor: Cursor) -> None:
    """Replace the cursor file atomically: a reader sees the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    body = msgspec.json.format(_encode(cursor), indent=1)
    io = fileio
    fd = io.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        io.write(fd, body)
        io.fsync(fd)
    finally:
        io.close(fd)
    crash_point("before_cursor_rename")
    io.replace(tmp, path)
    with contextlib.suppress(OSError):  # not every platform can fsync a folder
        dir_fd = io.open(path.parent, os.O_RDONLY)
        try:
            io.fsync(dir_fd)
        finally:
            io.close(dir_fd)
    crash_point("after_cursor")


def read_cursor(path: Path) -> Cursor | None:
    """The cursor file's content, None when there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CursorError(f"the cursor file {path} is unreadable ({exc}); {_ADVICE}") from exc
    try:
        version = msgspec.json.decode(data, type=dict[str, object]).get("version")
        if version != VERSION:
            raise CursorError(f"the cursor file {path} has an unknown format (version {version}); {_ADVICE}")
        return _decode(data)
    except msgspec.DecodeError as exc:
        raise CursorError(f"the cursor file {path} is unreadable ({exc}); {_ADVICE}") from exc


class CursorMirror:
    """A run's cursor file: checked against the database when the run starts, rewritten
    after each commit, in commit order, on a thread of its own (it fsyncs)."""

    def __init__(self, db_path: str, server: CursorServer) -> None:
        self.path = cursor_path(db_path)
        self.database = os.path.abspath(db_path)
        self.server = server
        self._writes = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="importer-cursor")

    def disagreeing(self, stored: Mapping[str, LibraryProgress]) -> list[str]:
        """The libraries (by source id) whose progress in the file is not what the database
        stored. The database wins: this is only worth a warning."""
        try:
            cursor = read_cursor(self.path)
        except CursorError as exc:
            log.warning("%s", exc)
            return []
        if cursor is None:
            return []
        return [
            source_id
            for source_id, progress in stored.items()
            if (mirrored := cursor.libraries.get(source_id)) is None or mirrored.streams != progress
        ]

    def committed(self, libraries: dict[str, CursorLibrary], server_clock: float | None) -> None:
        """Mirror a commit: what ``libraries`` says the database now holds."""
        cursor = Cursor(
            database=self.database,
            server=self.server,
            server_clock=server_clock,
            committed_at=int(time.time()),
            libraries=libraries,
        )
        self._writes.submit(write_cursor, self.path, cursor).add_done_callback(_written)

    async def close(self) -> None:
        """Return once the last cursor file is in place."""
        await asyncio.get_running_loop().run_in_executor(None, self._writes.shutdown)


def _written(future: concurrent.futures.Future[None]) -> None:
    # The database holds the truth; a cursor file that could not be written is a warning.
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.warning("could not write the cursor file: %s", exc)
