"""Named crash points, for the crash tests: ``IMPORTER_CRASH_AT=after_commit:2`` kills the
whole run (its process group, with SIGKILL, as a power cut would) the second time the
``after_commit`` point is passed.

The points sit in the narrow windows that a random kill almost never hits:

- ``in_transaction`` (writer): a page is written, its transaction not yet committed;
- ``after_commit`` (writer): committed, the main process not yet told;
- ``before_cursor_rename`` (main): the new cursor file is written, not yet renamed;
- ``after_cursor`` (main): the cursor file is in place;
- ``in_sweep`` (writer): rows proven gone are deleted, the transaction not yet committed.

A third part, ``:process`` (``after_cursor:2:process``), kills only the process that passes
the point, not its group: a fleet job inside another framework's worker (Ray) shares that
worker's group with processes that are not ours. ``IMPORTER_CRASH_ONCE=FILE`` makes the
crash happen once across processes: only the process that creates FILE crashes, so a job
that an engine runs again after the crash finishes.

Without the variable, a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("IMPORTER_CRASH_AT", "")
_NAME, _, _REST = _SPEC.partition(":")
_COUNT, _, _SCOPE = _REST.partition(":")
_ONCE = os.environ.get("IMPORTER_CRASH_ONCE", "")
_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    if name != _NAME:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] < int(_COUNT or 1) or not _first_crash():
        return
    if _SCOPE == "process":
        os.kill(os.getpid(), signal.SIGKILL)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _first_crash() -> bool:
    """Whether this is the crash to make: always, unless ``IMPORTER_CRASH_ONCE`` names a
    file that another process created first."""
    if not _ONCE:
        return True
    try:
        os.close(os.open(_ONCE, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True
