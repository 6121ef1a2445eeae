"""Named crash points, for the crash tests: ``IMPORTER_CRASH_AT=after_commit:2`` kills the
whole run (its process group, with SIGKILL, as a power cut would) the second time the
``after_commit`` point is passed.

The points sit in the narrow windows that a random kill almost never hits:

- ``in_transaction`` (writer): a page is written, its transaction not yet committed;
- ``after_commit`` (writer): committed, the main process not yet told;
- ``before_cursor_rename`` (main): the new cursor file is written, not yet renamed;
- ``after_cursor`` (main): the cursor file is in place;
- ``in_sweep`` (writer): rows proven gone are deleted, the transaction not yet committed.

Without the variable, a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("IMPORTER_CRASH_AT", "")
_NAME, _, _COUNT = _SPEC.partition(":")
_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    if name != _NAME:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(_COUNT or 1):
        os.killpg(os.getpgrp(), signal.SIGKILL)
