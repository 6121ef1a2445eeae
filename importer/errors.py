"""One exception tree; every message says what happened and what to do next.

```
ImporterError                  base; picklable with its arguments (errors cross processes)
├── ConfigError                bad options, unreadable token file            exit 2
├── SourceError                talking to the server; .url (token-free), .status
│   ├── AuthError              401/403: wrong or expired token               exit 1
│   ├── NotFoundError          404: the server or library is not there       exit 1
│   ├── ServerError            429/5xx after the retries were used up        exit 75
│   ├── TransportError         refused, reset, timeout, DNS, TLS, truncated  exit 75
│   └── UnexpectedResponse     HTML instead of JSON, wrong content, etc.     exit 1
├── DecodeError                a page that does not have the documented shape exit 1
├── StoreError                 the database: damaged, disk full, I/O error   exit 1
│   ├── UnusableDatabase       this --db path cannot be used: not SQLite,    exit 2
│   │                          another program's database, a newer importer's,
│   │                          a missing folder, a folder, read-only; .path
│   └── LockedError            another run holds this database's lock, or    exit 4
│                              another program its SQLite lock past the wait
├── CursorError                the cursor file is unreadable or belongs elsewhere
└── Interrupted                SIGINT/SIGTERM: committed work is kept         exit 130/143
```

Third-party errors are mapped at the boundary (``raise ... from exc``); the CLI is the
only place that turns these into exit codes. An error raised in a worker process crosses
to the main process as its class name, message and details (``importer.protocol.ErrorInfo``)
and is raised there again as itself (:func:`error_class`).
"""

from __future__ import annotations

from typing import Any


class ImporterError(Exception):
    """Base of every error the importer raises on purpose."""

    exit_code = 1
    #: a transient error may go away on a later run: the run is resumable
    transient = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.details))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[ImporterError], message: str, details: dict[str, Any]) -> ImporterError:
    return cls(message, **details)


class ConfigError(ImporterError):
    exit_code = 2


class SourceError(ImporterError):
    @property
    def url(self) -> str | None:
        return self.details.get("url")

    @property
    def status(self) -> int | None:
        return self.details.get("status")


class AuthError(SourceError):
    pass


class NotFoundError(SourceError):
    pass


class ServerError(SourceError):
    exit_code = 75
    transient = True


class TransportError(SourceError):
    exit_code = 75
    transient = True


class UnexpectedResponse(SourceError):
    pass


class DecodeError(ImporterError, ValueError):
    pass


class StoreError(ImporterError):
    pass


class UnusableDatabase(StoreError):
    """The ``--db`` path cannot be used as it is; the message names it and says what to
    change (the path, the permissions, importer). Raised by the checks that run before
    anything is written (``importer.store.preflight``, ``connect``): the file is left
    untouched. Also for a file that turns read-only or unopenable during a run."""

    exit_code = 2


class LockedError(StoreError):
    exit_code = 4


class CursorError(ImporterError):
    pass


class Interrupted(ImporterError):
    exit_code = 130

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        if details.get("signal") == "SIGTERM":
            self.exit_code = 143


def error_class(name: str) -> type[ImporterError]:
    """The class of this module named ``name``; ImporterError for a name it does not know."""
    found = globals().get(name)
    if isinstance(found, type) and issubclass(found, ImporterError):
        return found
    return ImporterError
