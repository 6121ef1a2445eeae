"""A power-cut simulator for tests: run the importer with every file operation recorded
(``site/powercut_recorder.py``), kill it at a chosen operation, then undo what a power
cut would have lost.

After a kill -9 everything a process wrote is in the operating system's cache and
reaches the disk; after a power cut only what was made durable is there:

- a file's content as of its last fsync (``xSync``): every write and truncation since is
  undone, with the pre-images the journal kept;
- a folder's entries as of its last fsync: every file created, unlinked or renamed in it
  since is undone (a created file vanishes, an unlinked one comes back with its content,
  a rename goes back, bringing back the file it replaced).

Two models (:func:`power_cut`): ``strict`` loses every unsynced change; ``random`` keeps a
random prefix, in order, of each file's unsynced changes and of each folder's, as a disk
that wrote some of its cache before the lights went out. The ``-shm`` file is not
journaled (SQLite maps it; see the recorder): ``random`` leaves it, deletes it, or fills
it with garbage; SQLite rebuilds it in any case.

The test-only side of issue 15. The importer knows nothing of it: ``importer.cursor`` and
``importer.lock`` have a ``fileio`` seam (``os`` unless a test's subprocess replaced it),
and SQLite takes whatever VFS is the default.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SITE = Path(__file__).parent / "site"
ENV = "IMPORTER_TEST_POWERCUT"
CUT_ENV = "IMPORTER_TEST_POWERCUT_AT"
MODELS = ("strict", "random")
DATA_OPS = ("write", "truncate")
DIR_OPS = ("create", "unlink", "rename")

#: the command line's run (signals included), with the options a test gives (JSON)
RUNNER = """
import asyncio, json, sys
from importer.cli import with_signals
from importer.errors import ImporterError
from importer.pipeline import Importer, SyncOptions
url, db, token, options = sys.argv[1:5]
try:
    result = asyncio.run(with_signals(Importer(url, db, token, SyncOptions(**json.loads(options)))))
except ImporterError as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
sys.exit(result.exit_code)
"""


def run_importer(
    url: str,
    db: Path,
    token: str,
    options: dict[str, Any],
    *,
    journal: Path | None = None,
    cut_at: int = 0,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """A sync run in a session of its own; with ``journal`` (an empty folder), every file
    operation of every process of the run recorded there, and the run killed (its whole
    process group) at operation ``cut_at`` (0: never)."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, CUT_ENV)}
    if journal is not None:
        journal.mkdir(parents=True, exist_ok=True)
        env[ENV] = str(journal)
        env[CUT_ENV] = str(cut_at)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, url, str(db), token, json.dumps(options)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise
    _wait_group_gone(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait_group_gone(pgid: int, timeout: float = 10) -> None:
    """Every process of the run is dead: the files no longer change under us."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            raise AssertionError(f"a process of the run (group {pgid}) outlived it")
        time.sleep(0.01)


# ----------------------------------------------------------------------------- the journal
@dataclass
class Journal:
    folder: Path
    records: list[dict[str, Any]]

    @classmethod
    def read(cls, folder: Path) -> Journal:
        path = folder / "journal"
        lines = path.read_bytes().splitlines() if path.exists() else []
        return cls(folder, [json.loads(line) for line in lines])

    @property
    def ops(self) -> int:
        """How many operations the run made."""
        return sum(1 for r in self.records if r["op"] != "mark")

    def marks(self, what: str) -> Iterator[dict[str, Any]]:
        return (r for r in self.records if r["op"] == "mark" and r["what"] == what)

    def first_mark(self, what: str) -> int | None:
        """The number of operations done when ``what`` was first marked (None: never)."""
        return next((int(r["n"]) for r in self.marks(what)), None)

    def last_mark(self, what: str) -> int | None:
        found = [int(r["n"]) for r in self.marks(what)]
        return found[-1] if found else None

    def done_runs(self) -> set[int]:
        """The runs whose end was recorded ``done`` by a commit that returned (before the
        cut, if there was one)."""
        done: set[int] = set()
        pending: set[int] = set()
        for r in self.records:
            if r["op"] != "mark":
                continue
            if r["what"] == "finish":
                (pending.add if r["status"] == "done" else pending.discard)(int(r["run"]))
            elif r["what"] == "after_commit":
                done |= pending
                pending = set()
        return done

    def blob(self, record: dict[str, Any]) -> bytes:
        ref = record.get("blob")
        if ref is None:
            return b""
        pid, offset, length = ref
        with open(self.folder / f"blobs.{pid}", "rb") as f:
            f.seek(offset)
            data = f.read(length)
        assert len(data) == length, "a blob is missing from the journal"
        return data


# ----------------------------------------------------------------------------- the cut
@dataclass
class CutReport:
    model: str
    ops: int  # operations done before the cut
    undone: dict[str, int] = field(default_factory=dict)  # per file name: changes undone
    kept_unsynced: int = 0  # unsynced changes the random model kept
    vanished: list[str] = field(default_factory=list)  # files that existed, gone after the cut
    shm: str = "left"


def power_cut(journal: Journal, model: str, rng: random.Random, db: Path) -> CutReport:
    """Undo, on the files as the killed run left them, what was not durable (``model``:
    "strict" or "random"); in reverse order."""
    assert model in MODELS
    records = [r for r in journal.records if r["op"] != "mark"]
    # Forward: which file (inode) each operation touched, as names come and go.
    inode_at: dict[str, int] = {}
    count = 0

    def new_inode() -> int:
        nonlocal count
        count += 1
        return count

    for r in records:
        op, path = r["op"], r["path"]
        if op == "create":
            r["ino"] = inode_at[path] = new_inode()
        elif op in ("write", "truncate", "sync"):
            r["ino"] = inode_at.setdefault(path, new_inode())
        elif op == "unlink":
            r["ino"] = inode_at.pop(path, None) or new_inode()
        elif op == "rename":
            r["ino"] = inode_at.pop(path, None) or new_inode()
            r["over_ino"] = inode_at.get(r["dst"])
            inode_at[r["dst"]] = r["ino"]
    # Durable: followed by an fsync of the same file (data) or of its folder (entries).
    synced_files: set[int] = set()
    synced_folders: set[str] = set()
    pending_data: dict[int, list[dict[str, Any]]] = defaultdict(list)
    pending_dirs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in reversed(records):
        op = r["op"]
        if op == "sync":
            synced_files.add(r["ino"])
        elif op == "dirsync":
            synced_folders.add(r["path"])
        elif op in DATA_OPS:
            r["durable"] = r["ino"] in synced_files
            if not r["durable"]:
                pending_data[r["ino"]].append(r)
        elif op in DIR_OPS:
            folder = os.path.dirname(r.get("dst", r["path"]))
            r["durable"] = folder in synced_folders
            if not r["durable"]:
                pending_dirs[folder].append(r)
    report = CutReport(model, len(records))
    for pending in (*pending_data.values(), *pending_dirs.values()):
        pending.reverse()  # in order; a prefix may be kept
        keep = rng.randint(0, len(pending)) if model == "random" else 0
        for i, r in enumerate(pending):
            r["undo"] = i >= keep
        report.kept_unsynced += keep
    # Backward: undo, from the last operation to the first, what is not kept.
    where = {ino: path for path, ino in inode_at.items()}
    existed = {path for path in where.values() if os.path.exists(path)}
    for r in reversed(records):
        if not r.get("undo"):
            continue
        op = r["op"]
        name = os.path.basename(r["path"])
        report.undone[name] = report.undone.get(name, 0) + 1
        if op == "write":
            path = where.get(r["ino"])
            if path is not None:
                with open(path, "r+b") as f:
                    f.seek(r["off"])
                    f.write(journal.blob(r))
                    if r["size"] < r["off"] + r["len"]:
                        f.truncate(r["size"])
        elif op == "truncate":
            path = where.get(r["ino"])
            if path is not None:
                with open(path, "r+b") as f:
                    f.truncate(r["size"])
                    f.seek(r["to"])
                    f.write(journal.blob(r))
        elif op == "create":
            path = where.pop(r["ino"])
            assert path == r["path"], (path, r)
            os.unlink(path)
        elif op == "unlink":
            Path(r["path"]).write_bytes(journal.blob(r))
            where[r["ino"]] = r["path"]
        elif op == "rename":
            assert where.get(r["ino"]) == r["dst"], r
            os.rename(r["dst"], r["path"])
            where[r["ino"]] = r["path"]
            if r["over"]:
                Path(r["dst"]).write_bytes(journal.blob(r))
                if r["over_ino"] is not None:
                    where[r["over_ino"]] = r["dst"]
    report.vanished = sorted(os.path.basename(p) for p in existed if not os.path.exists(p))
    shm = Path(f"{db}-shm")
    if model == "random" and shm.exists():
        report.shm = rng.choice(["left", "deleted", "garbage"])
        if report.shm == "deleted":
            shm.unlink()
        elif report.shm == "garbage":
            shm.write_bytes(rng.randbytes(shm.stat().st_size))
    return report
