"""A deliberately slowed build, for the regression gate's self-test (never imported
otherwise): ``python -m bench --slow-writer 0.3`` puts this folder first on the
``PYTHONPATH`` of the importer's process with ``BENCH_SLOW_WRITER=0.3``, and every
interpreter of that run (the importer's workers are fresh ones) imports it at start-up.

The writer then spends 30% more of its time on the CPU: each ``Writer.write_page`` busy-
waits for 0.3 × the time since the previous one returned (the page's own write and the
wait for it), as a regression in the writer's Python code would.
"""

from __future__ import annotations

import os
import time

_FRACTION = float(os.environ.get("BENCH_SLOW_WRITER") or 0)

if _FRACTION > 0:
    from importer.store.writer import Writer

    _write_page = Writer.write_page
    _last = [0.0]

    def _slow_write_page(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return _write_page(self, *args, **kwargs)
        finally:
            now = time.perf_counter()
            until = now + (now - (_last[0] or started)) * _FRACTION
            while time.perf_counter() < until:
                pass
            _last[0] = time.perf_counter()

    Writer.write_page = _slow_write_page  # type: ignore[method-assign]
