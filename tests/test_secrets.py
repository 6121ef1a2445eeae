"""The token never leaves: not in output, logs, errors, progress events, the cursor file or
the database, whichever way a run ends. Every run here is a real command line against an
emulated server; afterwards every byte it printed and every file it wrote is searched."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from importer.emulator import Controls, Library, LibrarySpec, make_server
from importer.emulator.server import EmulatedServer

#: distinctive, and its halves too: a token cut in two by a line wrap would still show
TOKEN = "tok" + secrets.token_hex(20)


def importer_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "importer", *args]


class Runs:
    """Every command run for one server, and everything they printed."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.printed: list[str] = []
        self.token_file = tmp / "token"
        self.token_file.write_text(TOKEN + "\n")
        self.token_file.chmod(0o600)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> int:
        env = {**os.environ, **(env or {})}
        out = subprocess.run(
            importer_cmd(*args), capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        self.printed += [out.stdout, out.stderr]
        return out.returncode

    def interrupt(self, *args: str, after: float) -> int:
        proc = subprocess.Popen(
            importer_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(after)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        self.printed += [out, err]
        return proc.returncode

    def files(self) -> Iterator[Path]:
        return (p for p in self.tmp.rglob("*") if p.is_file() and p != self.token_file)


def assert_no_token(runs: Runs, token: str = TOKEN) -> None:
    needles = [token, token[:20], token[20:]]
    for text in runs.printed:
        for needle in needles:
            assert needle not in text, f"the token was printed:\n{text}"
    checked = 0
    for path in runs.files():
        data = path.read_bytes()
        checked += 1
        for needle in needles:
            assert needle.encode() not in data, f"the token is in {path.name}"
            assert needle.encode("utf-16-le") not in data, f"the token is in {path.name} (UTF-16)"
    assert checked >= 3, "the runs wrote almost nothing: the search proves nothing"


def serve(kind: str, **controls: float | bool) -> EmulatedServer:
    return make_server(
        kind, Library(LibrarySpec(seed=5, shows=6)), token=TOKEN, controls=Controls(**controls)
    )


@pytest.mark.parametrize("kind", ["plex", "jellyfin"])
def test_no_run_leaks_the_token(kind: str, tmp_path: Path) -> None:
    runs = Runs(tmp_path)
    db = str(tmp_path / "lib.db")
    server = serve(kind, latency_ms=30)
    with server.running_in_thread() as url:
        host = url.split("://", 1)[1]
        tf = ("--token-file", str(runs.token_file))
        assert runs.interrupt("sync", url, "--db", db, *tf, "--progress", "plain", after=1.0) in (0, 130)
        assert runs.run("sync", url, "--db", db, *tf, "--progress", "json") == 0
        assert runs.run("sync", url, "--db", db, *tf, "--progress", "plain", "--full", "--dry-run") == 0
        assert (
            runs.run("sync", url, "--db", db, *tf, "--progress", "json", env={"IMPORTER_TOKEN": TOKEN}) == 0
        )
        assert runs.run("status", "--db", db) == 0
        # the token where it does not belong: refused, and not repeated back
        assert runs.run("sync", f"{url}/?X-Plex-Token={TOKEN}", "--db", db, *tf) == 2
        assert runs.run("sync", f"{url}/?api_key={TOKEN}", "--db", db, *tf) == 2
        assert runs.run("sync", f"http://user:{TOKEN}@{host}", "--db", db, *tf) == 2
        assert runs.run("sync", url, "--db", db, TOKEN) == 2  # as an argument: a usage error
        assert runs.run("sync", url, TOKEN, "--db", db) == 2
        assert runs.run("sync", url, "--db", db, f"--token={TOKEN}") == 2
        # a wrong token: the server refuses it
        wrong = tmp_path / "wrong"
        wrong.write_text(TOKEN[::-1])
        assert runs.run("sync", url, "--db", db, "--token-file", str(wrong), "--progress", "plain") == 1
    # the server is gone: connection refused, with the retries of detection
    assert runs.run("sync", url, "--db", str(tmp_path / "other.db"), *tf, "--progress", "json") == 75
    assert runs.run("sync", "http://media-server.invalid:32400", "--db", str(tmp_path / "dns.db"), *tf) == 75
    assert_no_token(runs)


def test_a_token_file_readable_by_others_gets_a_warning(tmp_path: Path) -> None:
    runs = Runs(tmp_path)
    runs.token_file.chmod(0o644)
    server = serve("plex")
    with server.running_in_thread() as url:
        cmd = importer_cmd(
            "sync", url, "--db", str(tmp_path / "x.db"), "--token-file", str(runs.token_file), "-q"
        )
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0
    assert "readable by other users" in out.stderr and "chmod 600" in out.stderr
    assert TOKEN not in out.stderr


@pytest.mark.parametrize("kind", ["plex", "emby"])
def test_watching_leaks_no_token(kind: str, tmp_path: Path) -> None:
    """Emby's feed takes its token in the URL (``api_key``): the notices of a dropped feed,
    of failed reconnections and of a stop must not repeat it."""
    runs = Runs(tmp_path)
    server = serve(kind, feed_debounce_s=0.2)
    token = TOKEN if kind == "plex" else server.sessions.issue("emulator", "secrets-test")
    runs.token_file.write_text(token + "\n")
    db = str(tmp_path / "lib.db")
    with server.running_in_thread() as url:
        watch = importer_cmd(
            "watch", url, "--db", db, "--token-file", str(runs.token_file), "--progress", "json"
        )
        proc = subprocess.Popen(watch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        while ready and '"ready"' not in ready:
            runs.printed.append(ready)
            ready = proc.stdout.readline()
        assert '"feed":true' in ready.replace(" ", ""), ready
        server.apply_changes("mixed", 5, seed=3)
        server.feeds.drop_all()  # reconnected, with the token in the handshake
        time.sleep(1.5)
    # the server is gone: reconnections fail, and say so (after a jittered backoff)
    assert proc.stderr is not None
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 30
    while not any("cannot open the change feed" in line for line in said) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out = proc.stdout.read()  # stderr is the reader's
    proc.wait(60)
    reader.join(10)
    err = "".join(said)
    runs.printed += [ready, out, err]
    assert proc.returncode == 143, err
    assert "reconnecting" in err and "cannot open the change feed" in err, err
    assert_no_token(runs, token)
