"""Helpers for the hydration tests: a synced database, the hydration CLI and runner in
subprocesses, and the database's metadata read back by source ids (never by local ids,
which two equal databases need not share)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw

#: the hydration of the command line (signals included) with small batches, to be killed
#: between commits: argv = url db token batch_size [--episodes] [--attempts=N]
RUNNER = """
import asyncio, sys
from importer.cli import run_command
from importer.errors import ImporterError
from importer.http import RetryPolicy
from importer.hydration.runner import HydrateOptions, Hydrator
url, db, token, size = sys.argv[1:5]
attempts = [int(a.split("=")[1]) for a in sys.argv if a.startswith("--attempts=")]
retry = RetryPolicy(attempts=attempts[0], base_delay=0.05) if attempts else None
run = Hydrator(db, token, url=url, episodes="--episodes" in sys.argv,
               options=HydrateOptions(batch_size=int(size), retry=retry))
try:
    run_command(run.run, on_signal=lambda sig: run.cancel(sig.name))
except ImporterError as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
"""


@dataclass
class Metadata:
    """What hydration stores, keyed by the server's ids."""

    #: person source_id -> (name, thumb)
    people: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    #: (item_type, item source_id) -> [(kind, position, person source_id, role)], sorted
    credits: dict[tuple[str, str], list[tuple[str, int, str, str | None]]] = field(default_factory=dict)
    #: (item_type, item source_id) -> genre names in position order
    genres: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    #: (item_type, item source_id) -> {(kind, path, tag)}
    images: dict[tuple[str, str], set[tuple[str, str, str | None]]] = field(default_factory=dict)
    #: show source_id -> (content_rating, studio, critic_rating, audience_rating)
    ratings: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: (item_type, source_id) -> hydrated_etag, for the items hydrated
    marks: dict[tuple[str, str], str | None] = field(default_factory=dict)


_ITEMS = """
SELECT 'show', id, source_id FROM shows UNION ALL
SELECT 'season', id, source_id FROM seasons UNION ALL
SELECT 'episode', id, source_id FROM episodes
"""


def read_metadata(db: Path) -> Metadata:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        items = {(t, i): sid for t, i, sid in conn.execute(_ITEMS)}
        people = {pid: (sid, name, thumb) for pid, sid, name, thumb in conn.execute(
            "SELECT id, source_id, name, thumb FROM people")}  # fmt: skip
        got = Metadata(people={sid: (name, thumb) for sid, name, thumb in people.values()})
        for pid, item_type, item_id, kind, role, position in conn.execute(
            "SELECT person_id, item_type, item_id, kind, role, position FROM credits"
        ):
            key = (item_type, items[(item_type, item_id)])
            got.credits.setdefault(key, []).append((kind, position, people[pid][0], role))
        for value in got.credits.values():
            value.sort()
        for item_type, item_id, name in conn.execute(
            "SELECT g.item_type, g.item_id, n.name FROM item_genres g JOIN genres n ON n.id = g.genre_id "
            "ORDER BY g.item_type, g.item_id, g.position"
        ):
            got.genres.setdefault((item_type, items[(item_type, item_id)]), []).append(name)
        for item_type, item_id, kind, path, tag in conn.execute(
            "SELECT item_type, item_id, kind, path, tag FROM images"
        ):
            got.images.setdefault((item_type, items[(item_type, item_id)]), set()).add((kind, path, tag))
        for sid, *ratings in conn.execute(
            "SELECT source_id, content_rating, studio, critic_rating, audience_rating FROM shows"
        ):
            got.ratings[sid] = tuple(ratings)
        for item_type, table in (("show", "shows"), ("episode", "episodes")):
            for sid, etag in conn.execute(
                f"SELECT source_id, hydrated_etag FROM {table} WHERE hydrated_at IS NOT NULL"
            ):
                got.marks[(item_type, sid)] = etag
        return got
    finally:
        conn.close()


def dangling(db: Path) -> list[tuple[Any, ...]]:
    """Rows of credits, item_genres and images that name an item that does not exist, and
    credits that name a missing person: none may ever be left."""
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows: list[tuple[Any, ...]] = []
        for table in ("credits", "item_genres", "images"):
            rows += conn.execute(
                f"SELECT '{table}', item_type, item_id FROM {table} t WHERE NOT EXISTS ("
                "SELECT 1 FROM shows WHERE t.item_type = 'show' AND id = t.item_id UNION ALL "
                "SELECT 1 FROM seasons WHERE t.item_type = 'season' AND id = t.item_id UNION ALL "
                "SELECT 1 FROM episodes WHERE t.item_type = 'episode' AND id = t.item_id)"
            ).fetchall()
        rows += conn.execute(
            "SELECT 'person', person_id, 0 FROM credits c WHERE NOT EXISTS "
            "(SELECT 1 FROM people p WHERE p.id = c.person_id)"
        ).fetchall()
        return rows
    finally:
        conn.close()


def scalar(db: Path, sql: str, *args: Any) -> Any:
    try:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error:
        return None
    try:
        return conn.execute(sql, args).get
    except (apsw.SQLError, apsw.BusyError):
        return None
    finally:
        conn.close()


def token_file(db: Path, token: str) -> Path:
    path = db.with_name("token")
    path.write_text(token)
    path.chmod(0o600)
    return path


def cli(*args: str, token: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m importer ARGS`` with the token in IMPORTER_TOKEN (or none)."""
    env = {k: v for k, v in os.environ.items() if k != "IMPORTER_TOKEN"}
    if token is not None:
        env["IMPORTER_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "importer", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_runner(url: str, db: Path, token: str, batch_size: int, *extra: str) -> subprocess.Popen[str]:
    """The hydration RUNNER in its own process group (as cron or a terminal starts it)."""
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, url, str(db), token, str(batch_size), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
