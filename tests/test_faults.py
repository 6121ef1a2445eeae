"""Hostile servers: every fault gets a safe retry or a clear error, nothing is lost, and a
rerun finishes the job.

The matrix is fault x phase x server kind against the emulator's seeded fault injection.
CI runs a pairwise subset (every fault in every phase, every fault and every phase with
both kinds); ``pytest --faults-full`` runs the whole product.

Every case runs on the compiled build. The faults that rewrite the pages the decoder reads
(``reaches_the_decoder``) run on the pure-Python twin as well (``implementation`` in
conftest.py); the others are met in the main process, which that choice does not touch, and
the rerun after each of them decodes no differently from test_sync.py and test_incremental.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import resource
import signal
import subprocess
from pathlib import Path
from typing import Any

import apsw
import pytest
from processes import sync_command
from test_sync import check_database, serving

import importer
from importer import SyncOptions
from importer.emulator import Library, LibrarySpec, make_server
from importer.emulator.faults import Fault, FaultPlan
from importer.errors import ImporterError
from importer.http import RetryPolicy, Timeouts

#: patient enough for the faults below, quick enough for CI
RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, max_elapsed=20)
TIMEOUTS = Timeouts(connect=2, sock_read=0.5, total=15)
PHASES: dict[str, str] = {
    "discovery": r"^/$|^/library/sections$|/System/Info|/Library/VirtualFolders",
    "listing": r"/all$|/Items$",
    "nightly": r"/all$|/Items$",  # an incremental run's probes and changes
}
KINDS = ("plex", "jellyfin")
#: the faults that change a page the decoder reads: its row builders and their errors take part
TWIN_TOO = frozenset({"malformed_json", "wrong_types", "duplicate_ids", "total_drift"})


@dataclasses.dataclass(frozen=True)
class Case:
    fault: Fault
    #: exit codes the run may end with, whatever the phase
    exits: frozenset[int]
    #: what the message says when the run does not end well
    message: str = ""


MiB = 1 << 20
CASES: dict[str, Case] = {
    "503-retry-after": Case(Fault("status", status=503, retry_after=0.2, times=2), frozenset({0})),
    "429-retry-after": Case(Fault("status", status=429, retry_after=0.1, times=2), frozenset({0})),
    "500-twice": Case(Fault("status", status=500, times=2), frozenset({0})),
    "500-always": Case(
        Fault("status", status=500, rate=1.0), frozenset({75}), r"500.*(tried|attempts|later)"
    ),
    "401": Case(Fault("status", status=401, times=1), frozenset({1}), r"token"),
    # Plex's / may be refused (some proxies do): discovery falls back to /identity
    "404": Case(Fault("status", status=404, times=1), frozenset({0, 1}), r"404|not found|no longer"),
    "reset": Case(Fault("reset", times=3), frozenset({0})),
    "truncated": Case(Fault("truncate", times=2), frozenset({0})),
    "stall": Case(Fault("stall", stall_s=3.0, times=1), frozenset({0})),
    "stall-mid-body": Case(Fault("stall", stall_s=3.0, mid_body=True, times=1), frozenset({0})),
    "malformed-json": Case(Fault("malformed_json", times=1), frozenset({0, 1}), r"JSON|UTF-8"),
    "html-login-page": Case(Fault("html", times=1), frozenset({1}), r"HTML"),
    "wrong-types": Case(Fault("wrong_types", times=1), frozenset({0, 1}), r"shape|Expected"),
    "duplicate-ids": Case(Fault("duplicate_ids", times=1), frozenset({0, 75}), r"changing"),
    "total-drifts": Case(Fault("total_drift", requests={2}), frozenset({0, 75}), r"changing"),
    "gzip-bomb": Case(Fault("gzip_bomb", times=1), frozenset({0, 1}), r"bomb|inflates"),
    "huge-body": Case(Fault("huge_body", size_bytes=80 * MiB, times=1), frozenset({1}), r"larger than|limit"),
}


def pairwise() -> list[tuple[str, str, str]]:
    """Every (fault, phase) once; kinds alternate so that every fault and every phase
    meets both kinds."""
    return [
        (name, phase, KINDS[(i + j) % len(KINDS)])
        for i, name in enumerate(CASES)
        for j, phase in enumerate(PHASES)
    ]


def reaches_the_decoder(case: tuple[str, str, str]) -> bool:
    """Whether the fault changes pages of items (not discovery's answers, read in the main
    process), so that the implementation of the decoder's hot path can change the outcome."""
    name, phase, _ = case
    return CASES[name].fault.kind in TWIN_TOO and phase != "discovery"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "matrix_case" in metafunc.fixturenames:
        full = metafunc.config.getoption("--faults-full")
        cases = list(itertools.product(CASES, PHASES, KINDS)) if full else pairwise()
        params = [
            pytest.param(
                case,
                id="-".join(case),
                marks=() if reaches_the_decoder(case) else pytest.mark.compiled_only,
            )
            for case in cases
        ]
        metafunc.parametrize("matrix_case", params)


def last_run(db: Path) -> tuple[Any, ...] | None:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return conn.execute("SELECT mode, status, reason FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()


@pytest.mark.usefixtures("implementation")
async def test_fault_matrix(matrix_case: tuple[str, str, str], tmp_path: Path) -> None:
    name, phase, kind = matrix_case
    case = CASES[name]
    server = make_server(kind, Library(LibrarySpec(seed=31, shows=8)))
    db = tmp_path / "lib.db"
    options = SyncOptions(kind=kind, retry=RETRY, timeouts=TIMEOUTS, page_size=100)
    async with serving(server) as url:
        if phase == "nightly":
            assert (await importer.sync(url, db, token=server.token, options=options)).exit_code == 0
            server.apply_changes("mixed", 4, seed=2)
        fault = dataclasses.replace(case.fault, path=PHASES[phase])
        server.controls.faults = FaultPlan([fault], seed=7)
        try:
            result = await importer.sync(url, db, token=server.token, options=options)
            code, message = result.exit_code, "; ".join(lib.reason or "" for lib in result.libraries)
        except ImporterError as exc:
            code, message = exc.exit_code, str(exc)
        fired = sum(server.controls.faults.fired())
        server.controls.faults = None

        assert code in case.exits, f"exit {code}: {message}"
        # a fault that answers in the server's place applies to any request; one that
        # rewrites items needs a page of items, and discovery has none
        rewrites = case.fault.kind in ("wrong_types", "duplicate_ids", "total_drift")
        assert fired or (rewrites and phase == "discovery"), "the fault never fired"
        if code != 0:
            assert fired, "the run failed although no fault was injected"
            assert re.search(case.message, message, re.IGNORECASE), message
            assert server.token not in message
            run = last_run(db) if db.exists() else None
            if run is not None and run[1] not in ("done", "incomplete"):
                assert run[1] == "failed" and run[2], f"the failed run was not recorded: {run}"
        again = await importer.sync(url, db, token=server.token, options=options)
    assert again.exit_code == 0, again.libraries
    check_database(server, db)


def test_a_full_disk_stops_the_run_and_loses_nothing(tmp_path: Path) -> None:
    """The writer hits the file size limit (as it would a full disk) in the middle of a run."""
    server = make_server("plex", Library(LibrarySpec(seed=3, episodes=20_000)))
    db = tmp_path / "lib.db"

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a dead process
        resource.setrlimit(resource.RLIMIT_FSIZE, (3 * MiB, 3 * MiB))

    with server.running_in_thread() as url:
        cmd = sync_command(url, db, server.token, "-q")
        full = subprocess.run(
            cmd, capture_output=True, text=True, preexec_fn=small_disk, check=False, timeout=120
        )
        assert full.returncode == 1, full.stderr
        assert re.search(r"disk|space|write", full.stderr, re.IGNORECASE), full.stderr
        assert "Traceback" not in full.stderr
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
        assert conn.execute("PRAGMA integrity_check").get == "ok"
        conn.close()
        again = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120, env=os.environ)
        assert again.returncode == 0, again.stderr
    check_database(server, db)
