"""Helpers for the hydration tests: a synced database, the hydration CLI and runner in
subprocesses, and the database's metadata read back by source ids (never by local ids,
which two equal databases need not share)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw
import ground_truth

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
    """What hydration stores in a whole database, keyed by the server's ids: the
    ground truth's reading of each library (:func:`ground_truth.read_metadata`), merged,
    plus the shows' ratings and the hydration marks."""

    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (item_type, item source_id) -> [(person source_id, kind, role, position)]
    credits: dict[tuple[str, str], list[tuple[str, str, str | None, int]]] = field(default_factory=dict)
    genres: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    images: dict[tuple[str, str], set[tuple[str, str, str]]] = field(default_factory=dict)
    #: show source_id -> (content_rating, studio, critic_rating, audience_rating)
    ratings: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    #: (item_type, source_id) -> hydrated_etag, for the items hydrated
    marks: dict[tuple[str, str], str | None] = field(default_factory=dict)


def read_metadata(db: Path) -> Metadata:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        got = Metadata()
        for (source_id,) in conn.execute("SELECT source_id FROM libraries").fetchall():
            library = ground_truth.read_metadata(conn, source_id)
            for name in ("people", "credits", "genres", "images"):
                getattr(got, name).update(getattr(library, name))
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


def start_runner(url: str, db: Path, token: str, batch_size: int, *extra: str) -> subprocess.Popen[str]:
    """The hydration RUNNER in its own process group (as cron or a terminal starts it)."""
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, url, str(db), token, str(batch_size), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
