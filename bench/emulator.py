"""An emulated server in its own process, so that its CPU and memory are its own.

A real server runs on another machine; this one shares the cores with the importer, so
the bench reports the emulator's CPU apart, and at scale warms its response cache first
(one import renders every page, later ones are answered from disk).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self


@dataclass(frozen=True)
class ServerSpec:
    kind: str  # plex | jellyfin
    shape: str = "varied"
    shows: int = 100
    episodes: int | None = None
    latency_ms: float = 0.0
    cache: bool = False  # answer repeated requests from the emulator's disk cache

    def args(self) -> list[str]:
        args = ["--kind", self.kind, "--shape", self.shape, "--shows", str(self.shows)]
        if self.episodes is not None:
            args += ["--episodes", str(self.episodes)]
        if self.latency_ms:
            args += ["--latency-ms", str(self.latency_ms)]
        return args + (["--cache-responses"] if self.cache else [])


@dataclass
class Emulator:
    """``importer emulator`` in a child process: its URL, token, request log and usage."""

    spec: ServerSpec
    url: str = ""
    token: str = ""
    _asked: int = 0
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)

    def __enter__(self) -> Self:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "importer", "emulator", *self.spec.args()],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().split()[1]
        self.token = self._proc.stdout.readline().split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()

    @property
    def headers(self) -> dict[str, str]:
        if self.spec.kind == "plex":
            return {"X-Plex-Token": self.token, "Accept": "application/json"}
        return {"Authorization": f'MediaBrowser Token="{self.token}"', "Accept": "application/json"}

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, "Content-Type": "application/json"}
        request = urllib.request.Request(self.url + path, data=data, headers=headers)
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def log(self) -> list[dict[str, Any]]:
        """Every request the server answered so far, oldest first."""
        self._asked += 1  # a new query each time: the response cache must not answer it
        return list(self._call(f"/_emulator/log?n={self._asked}")["entries"])

    def controls(self, **changes: Any) -> None:
        self._call("/_emulator/controls", changes)

    def change(self, count: int, seed: int = 1) -> bool:
        """Apply ``count`` random changes to the library; False when this emulator cannot."""
        try:
            self._call("/_emulator/changes", {"kind": "mixed", "count": count, "seed": seed})
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 405):
                return False
            raise
        return True

    def usage(self) -> tuple[float, int]:
        """CPU seconds so far and peak RSS (kB), from /proc."""
        assert self._proc is not None
        return process_usage(self._proc.pid)


def process_usage(pid: int) -> tuple[float, int]:
    """CPU seconds and peak RSS (kB) of a running process, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    hwm = next(line for line in status if line.startswith("VmHWM"))
    return cpu, int(hwm.split()[1])


def round_trips(entries: list[dict[str, Any]]) -> int:
    """Dependent round trips in a stretch of the request log: the longest chain of
    requests each of which started after the previous one was answered.

    A request that waited for a free slot counts as dependent too: it was a round trip
    spent in series, which is what the latency multiplies.
    """
    events = []
    for n, e in enumerate(entries):
        events.append((e["started"], 1, n))
        events.append((e["started"] + e["seconds"], 0, n))  # ends sort before starts at a tie
    depth = [0] * len(entries)
    done = 0
    for _, is_start, n in sorted(events):
        if is_start:
            depth[n] = done + 1
        else:
            done = max(done, depth[n])
    return done
