"""The run's database connection, used from one thread of its own: SQLite work (reading
the next batch, decoding an answer, writing it) never runs on the event loop, so a host
program's loop stays responsive, and one thread means one writer, in order."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

import apsw

from importer.store.connection import connect

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="importer-hydrate-db")
        self._conn: apsw.Connection | None = None

    async def open(self) -> None:
        self._conn = await self._run(connect, self.path)

    async def call(
        self, fn: Callable[Concatenate[apsw.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``fn(connection, *args, **kwargs)`` on the database's thread."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the database is not open")
        return await self._run(functools.partial(fn, conn, *args, **kwargs))

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        """Wait for the call in progress (a cancelled caller does not stop a transaction
        that is already committing: its work is kept), then close the connection."""
        self._executor.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
