"""One run per database: an exclusive lock on ``<database>.lock`` for the whole run.

An advisory ``flock``: the kernel drops it when the holding process dies, however it
dies, so a crashed run never leaves a stale lock behind. The file records who holds it,
for the message that the second run prints.

The lock file is created beside the database only once the path has passed its checks
(``importer.store.preflight`` runs first); :meth:`DatabaseLock.acquire` still refuses a
path that is a folder, or whose folder is missing or read-only, with a clear message of
its own (:class:`~importer.errors.UnusableDatabase`, exit 2) rather than a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import time
from types import TracebackType
from typing import Protocol

from importer.errors import LockedError, UnusableDatabase

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs are not serialised there
    fcntl = None  # type: ignore[assignment]


class FileIO(Protocol):
    """The file operations that write the lock file: the ``os`` module's."""

    def open(self, path: str, flags: int, mode: int = 0o777) -> int: ...
    def ftruncate(self, fd: int, length: int, /) -> None: ...
    def pwrite(self, fd: int, data: bytes, offset: int, /) -> int: ...


#: The seam of the power-cut tests (``tests/powercut``): they put a twin here that records
#: each write, in a test's subprocess only. Always ``os`` otherwise.
fileio: FileIO = os


class DatabaseLock:
    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self.path = f"{db_path}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            return
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise LockedError(
                f"another importer run is using {self.db_path} ({holder}); wait for it to end, "
                "or give this run another --db",
                path=self.db_path,
            ) from None
        fileio.ftruncate(fd, 0)
        fileio.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self._fd = fd

    def _open(self) -> int:
        """The lock file, created if need be; a path that cannot have one is refused."""
        db = self.db_path
        if os.path.isdir(db):
            raise UnusableDatabase(
                f"{db} is a folder, not a database file: give the path of a file, "
                f"e.g. --db {shlex.quote(os.path.join(db, 'library.db'))}",
                path=db,
            )
        folder = os.path.dirname(os.path.abspath(db))
        try:
            return fileio.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except (FileNotFoundError, NotADirectoryError):
            raise UnusableDatabase(
                f"the folder {folder} does not exist, so the database {db} cannot be created there: "
                f"create it (mkdir -p {shlex.quote(folder)}), or choose another --db path",
                path=db,
            ) from None
        except OSError as exc:
            if os.path.exists(self.path):
                why = "it is there, but this user may not open it for writing"
            elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                why = f"the folder {folder} is read-only for this user"
            else:
                why = exc.strerror or str(exc)
            raise UnusableDatabase(
                f"cannot create the lock file {self.path} beside the database {db} ({why}): "
                "make the folder and that file writable by this user, or choose another --db path",
                path=db,
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
