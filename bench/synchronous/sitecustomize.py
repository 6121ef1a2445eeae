"""``synchronous`` as the bench's durability job sets it (never imported otherwise):
``python -m bench --only durability`` puts this folder first on the ``PYTHONPATH`` of
the importer's process with ``BENCH_SYNCHRONOUS=normal`` or ``full``, and every
interpreter of that run (the importer's ``python -P`` workers are fresh ones) imports it
at start-up.

It wraps ``importer.store.connection.connect`` as that module is imported (an import
hook: a process that never opens the database pays nothing, and every module that
imports ``connect`` by name, ``importer.store`` and its writer included, gets the
wrapped one). Every connection the wrapped ``connect`` returns then, after the
importer's own pragmas:

* ``full``: runs ``PRAGMA synchronous=FULL``, and keeps it: the connection is opened
  as a subclass of ``apsw.Connection`` whose ``pragma()`` turns any later request for
  another level (the importer's writer goes back to NORMAL after the one commit it
  makes durable) into FULL. FULL everywhere: every commit of the run syncs the WAL.
* ``normal``: runs ``PRAGMA synchronous=NORMAL``, which the importer has just set (a
  no-op, so that both variants do the same work here): the importer as shipped.

Either way it proves what it did: each connection appends a JSON line to the file
``BENCH_SYNCHRONOUS_MARK`` names (the process id, the path, ``readonly``, and the level
``PRAGMA synchronous`` reads back), one line per commit of a writable connection (a
commit hook), and one line each time FULL was kept against a request. The bench reads
that file, so that it never compares NORMAL with NORMAL. A mode it does not know, or an
importer without ``connect``, stops the interpreter with a message on stderr.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

MODE_ENV = "BENCH_SYNCHRONOUS"
MARK_ENV = "BENCH_SYNCHRONOUS_MARK"
MODES = ("normal", "full")
TARGET = "importer.store.connection"
#: what ``PRAGMA synchronous`` reads back
LEVELS = {0: "off", 1: "normal", 2: "full", 3: "extra"}


def mark(event: dict[str, Any]) -> None:
    path = os.environ.get(MARK_ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), **event}) + "\n")


def _commit() -> bool:
    mark({"event": "commit"})
    return False  # go on with the commit


def _keeping_full(connection: type) -> type:
    """A subclass of apsw.Connection whose synchronous level stays FULL."""

    class FullConnection(connection):  # type: ignore[misc]
        def pragma(self, name: str, *args: Any, **kwargs: Any) -> Any:
            if name.lower() == "synchronous":
                if args and str(args[0]).lower() not in ("full", "2"):
                    mark({"event": "kept full", "asked": str(args[0])})
                    args = ("full", *args[1:])
                elif "value" in kwargs and str(kwargs["value"]).lower() not in ("full", "2"):
                    mark({"event": "kept full", "asked": str(kwargs["value"])})
                    kwargs["value"] = "full"
            return super().pragma(name, *args, **kwargs)

    return FullConnection


def wrap(connect: Callable[..., Any], mode: str) -> Callable[..., Any]:
    """``connect``, with every connection it returns set to ``mode`` (and kept at FULL)."""
    import apsw

    real = apsw.Connection
    full = _keeping_full(real) if mode == "full" else None

    def connect_with_mode(path: Any, *args: Any, **kwargs: Any) -> Any:
        readonly = bool(kwargs.get("readonly", False))
        if full is None:
            conn = connect(path, *args, **kwargs)
        else:  # the connection connect() makes is a FullConnection (one thread opens it)
            setattr(apsw, "Connection", full)  # noqa: B010 (mypy: a class cannot be assigned)
            try:
                conn = connect(path, *args, **kwargs)
            finally:
                setattr(apsw, "Connection", real)  # noqa: B010
        if not readonly:
            conn.pragma("synchronous", mode)  # after the importer's own pragmas
            conn.set_commit_hook(_commit)
        level = conn.pragma("synchronous")
        mark({"event": "open", "path": os.fspath(path), "readonly": readonly,
              "synchronous": LEVELS.get(level, str(level))})  # fmt: skip
        return conn

    connect_with_mode.__wrapped__ = connect  # type: ignore[attr-defined]
    return connect_with_mode


class _Hook(importlib.abc.MetaPathFinder):
    """Finds ``importer.store.connection`` as the other finders do, and wraps its
    ``connect`` once the module has run (before any other module imports the name)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != TARGET:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: ModuleSpec | None = find(fullname, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        loader: Any = spec.loader
        run = loader.exec_module
        mode = self.mode

        def exec_module(module: ModuleType) -> None:
            run(module)
            connect = getattr(module, "connect", None)
            if not callable(connect):
                raise SystemExit(f"bench/synchronous: {TARGET} has no connect(): nothing to set to {mode}")
            module.connect = wrap(connect, mode)  # type: ignore[attr-defined]

        loader.exec_module = exec_module
        return spec


def install() -> None:
    mode = (os.environ.get(MODE_ENV) or "").strip().lower()
    if not mode:
        return
    if mode not in MODES:
        # SystemExit passes through site.py (it reports and ignores other exceptions)
        raise SystemExit(f"bench/synchronous: {MODE_ENV}={mode!r}: choose one of {', '.join(MODES)}")
    if TARGET in sys.modules:  # imported before site ran: wrap it in place
        module = sys.modules[TARGET]
        module.connect = wrap(module.connect, mode)  # type: ignore[attr-defined]
        return
    sys.meta_path.insert(0, _Hook(mode))


install()
