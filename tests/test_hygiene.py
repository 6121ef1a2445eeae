"""Process hygiene: every long-running command stops cleanly on SIGTERM as on SIGINT, in
every state, and every process of a run imports the installed package, never code from
the current folder. Real commands, real signals, real worker processes."""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw
import pytest
from processes import children_of, group_alive
from test_cancel import episodes_in

import importer
from importer import speedups
from importer.emulator import Controls, Library, LibrarySpec, make_server
from importer.emulator.faults import Fault, FaultPlan

#: the console script installed with the package, as a user runs it
IMPORTER = Path(sys.executable).parent / "importer"
#: the folder the package is imported from in this process: the installed one
PACKAGE = Path(importer.__file__).resolve().parent

pytestmark = pytest.mark.skipif(not IMPORTER.exists(), reason="no importer console script: pip install -e .")


def start(
    args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """A command in its own session (as a terminal or a service manager starts one), so
    that its whole process group can be watched and signalled."""
    return subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def token_file(folder: Path, token: str) -> Path:
    path = folder / "token"
    path.write_text(token)
    path.chmod(0o600)
    return path


def no_worker_left(proc: subprocess.Popen[str], within: float = 2.0) -> bool:
    """Whether every process of the command's group is gone (workers exit within a second
    of their parent's death; a little slack for a busy CI machine)."""
    deadline = time.monotonic() + within
    while group_alive(proc.pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def clean(stderr: str) -> bool:
    """No traceback, no loop complaining about an exception in a callback, no warning."""
    return not any(
        bad in stderr
        for bad in ("Traceback", "Fatal error", "Exception in callback", "Warning", "never awaited")
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@contextmanager
def blocking_token(folder: Path) -> Iterator[tuple[Path, list[int]]]:
    """A token "file" that is a FIFO: a command that reads it waits there, before any event
    loop runs, for as long as the test likes. ``writer[0]`` is set once it waits."""
    fifo = folder / "token.fifo"
    os.mkfifo(fifo, 0o600)
    writer: list[int] = []
    try:
        yield fifo, writer
    finally:
        for fd in writer:
            os.close(fd)


def open_when_read(fifo: Path, writer: list[int], proc: subprocess.Popen[str]) -> None:
    """Wait until ``proc`` opened the FIFO (it then blocks reading it)."""

    def opened() -> bool:
        assert proc.poll() is None, proc.communicate()
        try:
            writer.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError as exc:
            assert exc.errno == errno.ENXIO  # no reader yet
            return False
        return True

    wait_for(opened)


# ------------------------------------------------------------------------------ emulator
class Emulator:
    """``importer emulator`` in its own process."""

    def __init__(self, *args: str) -> None:
        self.proc = start([str(IMPORTER), "emulator", "--kind", "plex", *args])
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().split()[1]
        self.token = self.proc.stdout.readline().split()[1]
        self.host, port = self.url.removeprefix("http://").split(":")
        self.port = int(port)

    def get(self, path: str, timeout: float = 5.0) -> int:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"X-Plex-Token": self.token, "Accept": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def stop_and_wait(self, sig: signal.Signals, timeout: float = 5.0) -> tuple[int, str, float]:
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            pytest.fail(f"the emulator ignored {sig.name} for {timeout} s:\n{err}")
        return self.proc.returncode, err, time.monotonic() - started


@contextmanager
def hammering(emulator: Emulator, threads: int = 4) -> Iterator[None]:
    """Keep the emulator busy with requests on fresh connections: a signal then lands
    inside a transport's callback, where a SystemExit used to be swallowed."""
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                emulator.get("/library/sections", timeout=2)
            except OSError:
                time.sleep(0.01)

    workers = [threading.Thread(target=hammer, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.3)
        yield
    finally:
        stop.set()
        for worker in workers:
            worker.join(5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_emulator_stops_cleanly_after_serving_a_sync(tmp_path: Path, sig: signal.Signals) -> None:
    emulator = Emulator("--shows", "5")
    sync = subprocess.run(
        [str(IMPORTER), "sync", emulator.url, "--db", str(tmp_path / "lib.db"), "--quiet",
         "--token-file", str(token_file(tmp_path, emulator.token))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    with hammering(emulator):
        code, err, seconds = emulator.stop_and_wait(sig)
    assert code == 0, err  # a service's normal end
    assert clean(err), err
    assert seconds < 5
    assert no_worker_left(emulator.proc)


def test_a_second_signal_ends_a_slow_emulator_stop_at_once() -> None:
    emulator = Emulator("--shows", "2", "--latency-ms", "30000")

    def request() -> None:
        with contextlib.suppress(OSError):  # the server goes away with it
            emulator.get("/library/sections", timeout=60)

    in_flight = threading.Thread(target=request, daemon=True)
    in_flight.start()
    time.sleep(0.3)
    emulator.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert emulator.proc.poll() is None, "the first signal lets the request in flight finish"
    code, err, seconds = emulator.stop_and_wait(signal.SIGTERM, timeout=2)
    assert code == 143, err
    assert seconds < 1
    assert clean(err), err


def test_the_emulator_stops_before_it_serves(tmp_path: Path) -> None:
    with blocking_token(tmp_path) as (fifo, writer):
        proc = start([str(IMPORTER), "emulator", "--kind", "plex", "--token-file", str(fifo)])
        open_when_read(fifo, writer, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
    assert (proc.returncode, out) == (0, ""), err
    assert clean(err), err


# ------------------------------------------------------------------------------ sync
def sync_args(url: str, db: Path, token: Path, *extra: str) -> list[str]:
    return [str(IMPORTER), "sync", url, "--db", str(db), "--token-file", str(token), "--kind", "plex", *extra]


def test_sync_sigterm_before_its_event_loop_runs(tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    with blocking_token(tmp_path) as (fifo, writer):
        proc = start(sync_args("http://127.0.0.1:9", db, fifo))
        open_when_read(fifo, writer, proc)
        assert children_of(proc.pid) == set()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
    assert (proc.returncode, out, err) == (143, "", "")
    assert not db.exists()


def test_sync_sigterm_during_start_up(tmp_path: Path) -> None:
    """Workers running, discovery waiting for the server: nothing fetched yet."""
    stall = FaultPlan([Fault("stall", requests=[2], stall_s=30)])
    server = make_server("plex", Library(LibrarySpec(seed=3, shows=5)), controls=Controls(faults=stall))
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        proc = start(sync_args(url, db, token_file(tmp_path, server.token)))
        wait_for(lambda: len(server.log) >= 1)  # the first request answered, the second stalls
        time.sleep(0.2)
        workers = children_of(proc.pid)
        assert workers, "the workers start before discovery"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 143, err
    assert time.monotonic() - started < 5
    assert out == "" and clean(err), err
    assert "interrupted by SIGTERM" in err and "run the same command again" in err
    assert no_worker_left(proc)
    assert episodes_in(db) == 0


def test_sync_sigterm_in_its_final_phase(tmp_path: Path) -> None:
    """Every page is in and the library is being finished (linked, swept, indexed): the
    run stops promptly, and whatever it says, the database holds the whole library."""
    library = Library(LibrarySpec(seed=4, episodes=30_000))
    server = make_server("plex", library)
    db = tmp_path / "lib.db"
    with server.running_in_thread() as url:
        proc = start(sync_args(url, db, token_file(tmp_path, server.token), "--progress", "json"))
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("{") and json.loads(line)["event"] == "library_done":
                started = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                break
        else:
            pytest.fail(f"no library_done event:\n{''.join(lines)}")
        _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 5
    assert proc.returncode in (0, 143), err  # done, or told to run again (which costs little)
    assert clean(err), err
    assert no_worker_left(proc)
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert conn.execute("PRAGMA integrity_check").get == "ok"
        assert conn.execute("SELECT count(*) FROM episodes").get == 30_000
        if proc.returncode == 0:
            assert conn.execute("SELECT group_concat(DISTINCT status) FROM runs").get == "done"
    finally:
        conn.close()


# ------------------------------------------------------------------------------ demo
def test_demo_sigterm_mid_import(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    slow = ["--shows", "150", "--latency-ms", "250"]  # about 2 s
    proc = start([str(IMPORTER), "demo", "--db", str(db), *slow, "--progress", "json"], cwd=tmp_path)
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("{") and json.loads(line)["event"] == "start":
            break
    time.sleep(0.6)  # pages are coming in
    workers = children_of(proc.pid)
    assert workers
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert clean(err), err
    assert "run the same command again" in err
    assert no_worker_left(proc)
    assert episodes_in(db) > 0


# ------------------------------------------------------------------------------ code from the current folder
PLANTED = """\
from pathlib import Path

(Path(__file__).resolve().parent.parent / "MARKER").write_text("the planted package ran")
raise RuntimeError("the planted importer package was imported")
"""


def run_watching_workers(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], dict[int, str]]:
    """Run a command to its end; meanwhile note each worker's command line and where its
    compiled extension was loaded from (``/proc/PID/maps``), as seen from outside."""
    proc = start(args, cwd=cwd, env=env)
    main = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    seen: dict[int, str] = {}
    while proc.poll() is None:
        for pid in children_of(proc.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                maps = Path(f"/proc/{pid}/maps").read_text()
            except OSError:
                continue
            if cmdline in (main, b""):
                continue  # forked, not a worker yet; or already gone
            loaded = next((line.split()[-1] for line in maps.splitlines() if "_speedups" in line), "")
            if loaded or pid not in seen:
                seen[pid] = loaded
        time.sleep(0.01)
    proc.communicate()
    return proc, seen


@pytest.mark.parametrize("how", ["console script", "python -P -m importer"])
def test_a_planted_importer_package_in_the_current_folder_never_runs(tmp_path: Path, how: str) -> None:
    planted = tmp_path / "planted"
    (planted / "importer").mkdir(parents=True)
    (planted / "importer" / "__init__.py").write_text(PLANTED)
    server = make_server("plex", Library(LibrarySpec(seed=5, shows=20)), controls=Controls(latency_ms=100))
    command = [str(IMPORTER)] if how == "console script" else [sys.executable, "-P", "-m", "importer"]
    with server.running_in_thread() as url:
        args = [*command, "sync", url, "--db", str(tmp_path / "lib.db"), "--kind", "plex", "--quiet",
                "--token-file", str(token_file(tmp_path, server.token))]  # fmt: skip
        proc, workers = run_watching_workers(args, cwd=planted)
    assert proc.returncode == 0
    assert not (planted / "MARKER").exists()
    assert workers, "no worker was seen"
    if speedups.IMPLEMENTATION == "c":  # the installed package's compiled extension
        assert {Path(path).parent for path in workers.values() if path} == {PACKAGE}


def test_python_m_in_a_checkout_runs_that_checkout_in_every_process(tmp_path: Path) -> None:
    """``python -m importer`` runs the package in the current folder (Python's rule, see
    the README): its workers then run that same copy, never a mix of two versions."""
    checkout = tmp_path / "checkout"
    shutil.copytree(PACKAGE, checkout / "importer", ignore=shutil.ignore_patterns("__pycache__"))
    server = make_server("plex", Library(LibrarySpec(seed=5, shows=20)), controls=Controls(latency_ms=100))
    with server.running_in_thread() as url:
        token = token_file(tmp_path, server.token)
        args = [sys.executable, "-m", "importer", "sync", url, "--db", str(tmp_path / "lib.db"),
                "--kind", "plex", "--quiet", "--token-file", str(token)]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc, workers = run_watching_workers(args, cwd=checkout, env=env)
    assert proc.returncode == 0
    assert workers, "no worker was seen"
    if speedups.IMPLEMENTATION == "c":
        assert {Path(path).parent for path in workers.values() if path} == {checkout / "importer"}
