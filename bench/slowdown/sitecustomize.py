"""A deliberately slowed build, for the regression gate's self-test (never imported
otherwise): ``python -m bench --slow-writer 0.3`` puts this folder first on the
``PYTHONPATH`` of the importer's process with ``BENCH_SLOW_WRITER=0.3``, and every
interpreter of that run (the importer's workers are fresh ones) imports it at start-up.

Each call of the slowed method then busy-waits for 0.3 × the time since the previous call
returned (the page's own write and the wait for it): the writer spends 0.3 × the span in
which it writes pages more on the CPU, as a regression in its Python code would.

The slowed method is ``BENCH_SLOW_TARGET``, a dotted name (module, then attributes),
``importer.store.writer.Writer.write_rows`` by default: point it at the writer's
per-page method when that moves. A target that does not exist stops the interpreter
with a message on stderr, so that a self-test never passes by slowing nothing; and the
first call of the slowed method in any process appends that process's id to the file
``BENCH_SLOW_MARK`` names, so that the bench can tell a run in which it never ran (a
worker started with ``python -I`` ignores ``PYTHONPATH``, for one).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from typing import Any

TARGET_ENV = "BENCH_SLOW_TARGET"
MARK_ENV = "BENCH_SLOW_MARK"
DEFAULT_TARGET = "importer.store.writer.Writer.write_rows"


def resolve(dotted: str) -> tuple[Any, str]:
    """The owner (a module or a class) of the callable ``dotted`` names, and its name
    there. LookupError says what is missing."""
    parts = dotted.split(".")
    owner: Any = None
    for cut in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:cut])
        try:
            owner = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise  # the module exists and fails to import: that is not ours to hide
            continue
        break
    if owner is None:
        raise LookupError(f"no module of {dotted!r} can be imported")
    for n, name in enumerate(parts[cut:-1], start=cut):
        if not hasattr(owner, name):
            raise LookupError(f"{'.'.join(parts[:n])} has no attribute {name!r}")
        owner = getattr(owner, name)
    if not callable(getattr(owner, parts[-1], None)):
        raise LookupError(f"{'.'.join(parts[:-1])} has no method {parts[-1]!r}")
    return owner, parts[-1]


def _mark() -> None:
    path = os.environ.get(MARK_ENV)
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()}\n")


def _slowed(method: Callable[..., Any], fraction: float) -> Callable[..., Any]:
    last = [0.0]

    def slow(*args: Any, **kwargs: Any) -> Any:
        if not last[0]:
            _mark()
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            now = time.perf_counter()
            until = now + (now - (last[0] or started)) * fraction
            while time.perf_counter() < until:
                pass
            last[0] = time.perf_counter()

    return slow


def _install() -> None:
    fraction = float(os.environ.get("BENCH_SLOW_WRITER") or 0)
    if fraction <= 0:
        return
    target = os.environ.get(TARGET_ENV) or DEFAULT_TARGET
    try:
        owner, name = resolve(target)
    except LookupError as exc:
        # SystemExit passes through site.py (it reports and ignores other exceptions)
        raise SystemExit(
            f"bench/slowdown: cannot slow {target}: {exc}. Set {TARGET_ENV} to the dotted name "
            "of the writer's per-page method."
        ) from None
    setattr(owner, name, _slowed(getattr(owner, name), fraction))


_install()
