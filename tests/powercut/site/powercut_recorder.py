"""The recording half of the power-cut simulator, loaded in every process of a test's run
by ``sitecustomize.py`` (this folder is put on ``PYTHONPATH`` by ``tests/powercut``) when
``IMPORTER_TEST_POWERCUT`` names a folder. Never imported by the importer itself.

Every operation that changes a file of the run (the database, its ``-wal`` and rollback
journal, the cursor file and its temporary file, the lock file) is appended to one shared
journal, in the order the processes of the run did them, before it is done:

- ``write`` / ``truncate``: with the pre-image needed to undo it (the bytes it overwrites,
  the file's size before), kept in a per-process blob file;
- ``sync``: an fsync (or fdatasync) of one file: what it wrote before is durable;
- ``create`` / ``unlink`` / ``rename``: directory changes (an unlinked file's content, and
  a renamed-over file's, go to the blob file: undoing the change brings them back);
- ``dirsync``: an fsync of the folder: its earlier directory changes are durable.

The order is global: each operation takes an ``flock`` on the journal, counts itself in a
shared counter, appends its record and is done, then lets go. The operation whose number
is ``IMPORTER_TEST_POWERCUT_AT`` is not done: the process that reaches it kills its whole
process group with SIGKILL first, so that no other process of the run does anything more
(they wait for the lock, or do nothing that lasts). ``tests/powercut`` then undoes what was
not durable.

SQLite goes through an apsw VFS written in Python, inheriting from the ``unix`` VFS and
registered as the default. SQLite's own folder fsyncs happen inside the unix VFS, where a
Python VFS cannot see them; they are modelled as the unix VFS does them (``os_unix.c``):

- a file opened with ``SQLITE_OPEN_CREATE`` as a WAL or a (super) journal fsyncs its
  folder once, right after its first ``xSync`` (``UNIXFILE_DIRSYNC``): recorded then as a
  ``dirsync``, a separate operation (a cut can fall between the two);
- ``xDelete(name, syncDir=True)`` fsyncs the folder after the unlink: likewise.

The ``-shm`` file never goes through the VFS (the unix VFS opens and maps it itself); it
holds no durable state: the first connection after a cut truncates and rebuilds it.

Markers (``mark`` records, not operations: a cut never falls on one) tell the harness
where the run was: a commit of the writer, the run's end recorded (``finish``, with its
status), the schema migration, the sweep.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

ENV = "IMPORTER_TEST_POWERCUT"
CUT_ENV = "IMPORTER_TEST_POWERCUT_AT"
JOURNAL = "journal"
COUNTER = "ops"

_recorders: list[Recorder] = []  # this process's, once installed


class Recorder:
    def __init__(self, folder: str, cut_at: int) -> None:
        self.folder = folder
        self.cut_at = cut_at
        append = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        flags = os.O_CLOEXEC
        self.journal = os.open(os.path.join(folder, JOURNAL), append, 0o600)
        self.counter = os.open(os.path.join(folder, COUNTER), os.O_RDWR | os.O_CREAT | flags, 0o600)
        self.pid = os.getpid()
        self.blob_path = os.path.join(folder, f"blobs.{self.pid}")
        self.blobs = os.open(self.blob_path, append, 0o600)
        self.blob_size = 0
        self.lock = threading.RLock()

    @contextlib.contextmanager
    def op(self, kind: str, path: str, **fields: Any) -> Iterator[dict[str, Any]]:
        """One operation: counted, cut before if it is the chosen one, recorded, then done
        by the body of the ``with``, all under the run-wide lock. ``fields`` go into the
        record, but ``blob`` (bytes: a pre-image) goes into the blob file."""
        with self.lock:
            fcntl.flock(self.journal, fcntl.LOCK_EX)
            try:
                raw = os.pread(self.counter, 8, 0)
                n = (struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0) + 1
                if n == self.cut_at:
                    os.killpg(os.getpgrp(), signal.SIGKILL)
                os.pwrite(self.counter, struct.pack("<Q", n), 0)
                record: dict[str, Any] = {"n": n, "pid": self.pid, "op": kind, "path": path}
                blob = fields.pop("blob", None)
                if blob is not None:
                    os.write(self.blobs, blob)
                    record["blob"] = [self.pid, self.blob_size, len(blob)]
                    self.blob_size += len(blob)
                record.update(fields)
                os.write(self.journal, json.dumps(record, separators=(",", ":")).encode() + b"\n")
                yield record
            finally:
                fcntl.flock(self.journal, fcntl.LOCK_UN)

    def mark(self, what: str, **fields: Any) -> None:
        with self.lock:
            fcntl.flock(self.journal, fcntl.LOCK_EX)
            try:
                raw = os.pread(self.counter, 8, 0)
                n = struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0
                record = {"n": n, "pid": self.pid, "op": "mark", "what": what, **fields}
                os.write(self.journal, json.dumps(record, separators=(",", ":")).encode() + b"\n")
            finally:
                fcntl.flock(self.journal, fcntl.LOCK_UN)


def _content(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


# ----------------------------------------------------------------------------- SQLite
def _install_vfs(rec: Recorder) -> None:
    import apsw

    base = "unix"
    dirsync_kinds = apsw.SQLITE_OPEN_WAL | apsw.SQLITE_OPEN_MAIN_JOURNAL | apsw.SQLITE_OPEN_SUPER_JOURNAL

    class File(apsw.VFSFile):  # type: ignore[misc]
        def __init__(self, name: Any, flags: list[int]) -> None:
            path = None if name is None else (name if isinstance(name, str) else name.filename())
            self.path = path
            self.dirsync_due = False
            self.readonly = bool(flags[0] & apsw.SQLITE_OPEN_READONLY)
            if path is not None and flags[0] & apsw.SQLITE_OPEN_CREATE:
                if not os.path.exists(path):
                    with rec.op("create", path):
                        super().__init__(base, name, flags)
                else:
                    super().__init__(base, name, flags)
                self.dirsync_due = bool(flags[0] & dirsync_kinds)
            else:
                super().__init__(base, name, flags)

        def xLock(self, level: int) -> None:
            try:
                super().xLock(level)
            except apsw.IOError:
                # A read-only connection that closes tries an EXCLUSIVE lock on its
                # read-only file descriptor, to checkpoint; the unix VFS fails it
                # (IOERR_LOCK) and SQLite ignores that. apsw would raise it from
                # close(): the same refusal, as BUSY, which apsw does not raise.
                if not self.readonly:
                    raise
                raise apsw.BusyError() from None

        def xWrite(self, data: Any, offset: int) -> None:
            if self.path is None:
                return super().xWrite(data, offset)
            size = super().xFileSize()
            length = len(data)
            old = b""
            if offset < size:
                old = super().xRead(min(length, size - offset), offset)
            with rec.op("write", self.path, off=offset, len=length, size=size, blob=bytes(old)):
                super().xWrite(data, offset)

        def xTruncate(self, newsize: int) -> None:
            if self.path is None:
                return super().xTruncate(newsize)
            size = super().xFileSize()
            old = super().xRead(size - newsize, newsize) if newsize < size else b""
            with rec.op("truncate", self.path, to=newsize, size=size, blob=bytes(old)):
                super().xTruncate(newsize)

        def xSync(self, flags: int) -> None:
            if self.path is None:
                return super().xSync(flags)
            with rec.op("sync", self.path, flags=flags):
                super().xSync(flags)
            if self.dirsync_due:
                self.dirsync_due = False
                with rec.op("dirsync", os.path.dirname(self.path), why="sqlite"):
                    pass

    class VFS(apsw.VFS):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__("powercut", base, makedefault=True)

        def xOpen(self, name: Any, flags: list[int]) -> File:
            return File(name, flags)

        def xDelete(self, name: str, syncdir: bool) -> None:
            content = _content(name)
            if content is None:  # nothing to delete: SQLite gets its NOENT error
                return super().xDelete(name, syncdir)
            with rec.op("unlink", name, blob=content):
                super().xDelete(name, syncdir)
            if syncdir:
                with rec.op("dirsync", os.path.dirname(name), why="sqlite"):
                    pass

    _registered.append(VFS())  # apsw unregisters a VFS that is garbage collected


_registered: list[Any] = []


# ----------------------------------------------------------------------------- the seams
class FileIO:
    """The twin of ``os`` that ``importer.cursor.fileio`` and ``importer.lock.fileio``
    hold in a recorded run."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.paths: dict[int, tuple[str, bool]] = {}  # fd -> (path, is a folder)

    def open(self, path: Any, flags: int, mode: int = 0o777) -> int:
        path = os.path.abspath(os.fspath(path))
        if os.path.isdir(path):
            fd = os.open(path, flags, mode)
            self.paths[fd] = (path, True)
            return fd
        exists = os.path.exists(path)
        if flags & os.O_CREAT and not exists:
            with self.rec.op("create", path):
                fd = os.open(path, flags, mode)
        elif flags & os.O_TRUNC and exists and os.path.getsize(path):
            with self.rec.op("truncate", path, to=0, size=os.path.getsize(path), blob=_content(path)):
                fd = os.open(path, flags, mode)
        else:
            fd = os.open(path, flags, mode)
        self.paths[fd] = (path, False)
        return fd

    def _write(self, fd: int, data: bytes, offset: int, do: Callable[[], int]) -> int:
        path = self.paths[fd][0]
        size = os.fstat(fd).st_size
        old = os.pread(fd, min(len(data), size - offset), offset) if offset < size else b""
        with self.rec.op("write", path, off=offset, len=len(data), size=size, blob=old):
            return do()

    def write(self, fd: int, data: bytes, /) -> int:
        return self._write(fd, data, os.lseek(fd, 0, os.SEEK_CUR), lambda: os.write(fd, data))

    def pwrite(self, fd: int, data: bytes, offset: int, /) -> int:
        return self._write(fd, data, offset, lambda: os.pwrite(fd, data, offset))

    def ftruncate(self, fd: int, length: int, /) -> None:
        path = self.paths[fd][0]
        size = os.fstat(fd).st_size
        old = os.pread(fd, size - length, length) if length < size else b""
        with self.rec.op("truncate", path, to=length, size=size, blob=old):
            os.ftruncate(fd, length)

    def fsync(self, fd: int, /) -> None:
        path, folder = self.paths[fd]
        with self.rec.op("dirsync" if folder else "sync", path, why="importer"):
            os.fsync(fd)

    def close(self, fd: int, /) -> None:
        self.paths.pop(fd, None)
        os.close(fd)

    def replace(self, src: Any, dst: Any) -> None:
        src, dst = os.path.abspath(os.fspath(src)), os.path.abspath(os.fspath(dst))
        old = _content(dst)
        fields: dict[str, Any] = {"dst": dst, "over": old is not None}
        if old is not None:
            fields["blob"] = old
        with self.rec.op("rename", src, **fields):
            os.replace(src, dst)


# ----------------------------------------------------------------------------- markers
def _install_markers(rec: Recorder) -> None:
    from importer import crashpoints
    from importer.store import migrations, runs, sweep

    original_point = crashpoints.crash_point

    def crash_point(name: str) -> None:
        original_point(name)
        if name in ("after_commit", "in_sweep"):
            rec.mark(name)

    def finish_run(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapped(conn: Any, run_id: int, status: Any, *args: Any, **kwargs: Any) -> Any:
            rec.mark("finish", run=run_id, status=str(getattr(status, "value", status)))
            return original(conn, run_id, status, *args, **kwargs)

        return wrapped

    def around(what: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            rec.mark(f"{what}:begin")
            result = original(*args, **kwargs)
            rec.mark(f"{what}:end")
            return result

        return wrapped

    replacements = {
        original_point: crash_point,
        runs.finish_run: finish_run(runs.finish_run),
        migrations.migrate: around("migrate", migrations.migrate),
        sweep.find_gone: around("find_gone", sweep.find_gone),
    }
    # the names bound by the modules imported so far (those imported later bind these)
    for name, module in list(sys.modules.items()):
        if name == "importer" or name.startswith("importer."):
            for attr, value in list(vars(module).items()):
                with contextlib.suppress(TypeError):  # an unhashable value
                    if callable(value) and value in replacements:
                        setattr(module, attr, replacements[value])


def install() -> None:
    """Record this process's file operations (see the module's docstring)."""
    folder = os.environ.get(ENV)
    if not folder or _recorders:
        return
    rec = Recorder(folder, int(os.environ.get(CUT_ENV) or 0))
    _recorders.append(rec)
    _install_vfs(rec)
    import importer.cursor
    import importer.lock

    twin = FileIO(rec)
    importer.cursor.fileio = twin  # type: ignore[assignment]
    importer.lock.fileio = twin  # type: ignore[assignment]
    _install_markers(rec)
