"""An emulated server in its own process, so that its CPU and memory are its own.

A real server runs on another machine; this one shares the two cores with the importer.
So the bench runs it at nice 10 (below the importer's main process and its workers,
which run at nice 5: the emulator takes what they leave, as a remote server would cost
them nothing), reports its CPU apart, and at scale warms its response cache first (one
import renders every page, later ones are answered from disk).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

#: the emulator's CPU priority, below the importer's workers (nice 5)
EMULATOR_NICENESS = 10
#: the library-level listings (and their count probes); everything else is discovery
LISTING_PATHS = ("/all", "/Items")


@dataclass(frozen=True)
class ServerSpec:
    kind: str  # plex | jellyfin
    shape: str = "varied"
    shows: int = 100
    episodes: int | None = None
    latency_ms: float = 0.0
    cache: bool = False  # answer repeated requests from the emulator's disk cache
    #: Jellyfin: server seconds per item rendered with ``Fields=People`` (10.10/10.11's one
    #: GetPeople per item); not an argument: the scenario sets it through the controls
    people_cost_s: float = 0.0

    def args(self) -> list[str]:
        args = ["--kind", self.kind, "--shape", self.shape, "--shows", str(self.shows)]
        if self.episodes is not None:
            args += ["--episodes", str(self.episodes)]
        if self.latency_ms:
            args += ["--latency-ms", str(self.latency_ms)]
        return args + (["--cache-responses"] if self.cache else [])


@dataclass(frozen=True)
class Mark:
    """Where the request log and the emulator's CPU stood before a measured run."""

    entries: int
    cpu_s: float


@dataclass(frozen=True)
class Served:
    """What the emulator saw of one run, counted alike for every variant."""

    requests: int
    listing_requests: int
    discovery_requests: int
    bytes: int
    round_trips: int
    emulator_cpu_s: float
    emulator_rss_kb: int

    def as_record(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "listing_requests": self.listing_requests,
            "discovery_requests": self.discovery_requests,
            "bytes": self.bytes,
            "round_trips": self.round_trips,
            "emulator": {"cpu_s": self.emulator_cpu_s, "rss_kb": self.emulator_rss_kb},
        }


def _lower_priority() -> None:
    os.nice(EMULATOR_NICENESS)


@dataclass
class ServerProcess:
    """A bench's server in a child process (``importer emulator``, the fleet's servers
    host): at a lower priority, its stderr kept aside (shown when it fails to start, else
    dropped: a stop by SIGTERM logs a traceback there, issue 11), SIGTERM on the way out."""

    proc: subprocess.Popen[str]
    stderr: IO[bytes]

    @classmethod
    def start(cls, argv: list[str], *, nice: bool = True, stdin: int | None = None) -> ServerProcess:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open until close()
        proc = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            preexec_fn=_lower_priority if nice else None,  # noqa: PLW1509 - os.nice only, before exec
        )
        return cls(proc, stderr)

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def close(self) -> None:
        stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()


@dataclass
class Emulator:
    """``importer emulator`` in a child process: its URL, token, request log and usage."""

    spec: ServerSpec
    url: str = ""
    token: str = ""
    _asked: int = 0
    #: the login the emulator printed after its token (``user:``, ``password:``), read when
    #: first asked for (:meth:`login`)
    _login: tuple[str, str] | None = field(default=None, repr=False)
    _server: ServerProcess | None = field(default=None, repr=False)

    @property
    def _proc(self) -> subprocess.Popen[str]:
        assert self._server is not None
        return self._server.proc

    def __enter__(self) -> Self:
        self._server = ServerProcess.start([sys.executable, "-m", "importer", "emulator", *self.spec.args()])
        assert self._proc.stdout is not None
        url, token = self._proc.stdout.readline().split(), self._proc.stdout.readline().split()
        if len(url) != 2 or len(token) != 2:
            self.__exit__()
            raise RuntimeError(f"the emulator did not start: {self.errors()[-3000:]}")
        self.url, self.token = url[1], token[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def errors(self) -> str:
        return self._server.errors() if self._server is not None else ""

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

    def mark(self) -> Mark:
        return Mark(len(self.log()), self.usage()[0])

    def entries_since(self, mark: Mark) -> list[dict[str, Any]]:
        """The request log's entries since ``mark``, oldest first."""
        return self.log()[mark.entries :]

    def served_since(self, mark: Mark, entries: list[dict[str, Any]] | None = None) -> Served:
        """What the emulator served since ``mark``; ``entries``: those already read
        (:meth:`entries_since`), so that the log is not fetched twice."""
        cpu, rss = self.usage()
        entries = self.entries_since(mark) if entries is None else entries
        listings = sum(1 for e in entries if e["path"].endswith(LISTING_PATHS))
        return Served(
            requests=len(entries),
            listing_requests=listings,
            discovery_requests=len(entries) - listings,
            bytes=sum(e["bytes"] for e in entries),
            round_trips=round_trips(entries),
            emulator_cpu_s=cpu - mark.cpu_s,
            emulator_rss_kb=rss,
        )

    def controls(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the emulator's controls (``POST /_emulator/controls``, e.g.
        ``{"people_cost_s": 0.02}``); returns them all. It drops the response cache."""
        return dict(self._call("/_emulator/controls", changes))

    def change(self, count: int, seed: int = 1) -> bool:
        """Apply ``count`` random changes to the library; False when this emulator cannot."""
        try:
            self._call("/_emulator/changes", {"kind": "mixed", "count": count, "seed": seed})
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 405):
                return False
            raise
        return True

    def changes(self, kind: str, count: int, seed: int) -> list[dict[str, Any]]:
        """Apply ``count`` changes of ``kind`` (``add``, ``update``, ``delete``, ``mixed``, ...;
        see ``importer.emulator.churn``) to the first library; what was done, in order
        (episodes name their ``plex_key`` and ``jellyfin_id``)."""
        answer = self._call("/_emulator/changes", {"kind": kind, "count": count, "seed": seed})
        return list(answer["changes"])

    def feed_stats(self) -> dict[str, int]:
        """The change feeds' counters (``GET /_emulator/feed``): connections opened, open now,
        messages sent, ..."""
        return dict(self._call("/_emulator/feed"))

    def login(self) -> tuple[str, str]:
        """The user name and password the emulator printed after its token (its default
        user, whose password it made up)."""
        if self._login is None:
            assert self._proc.stdout is not None
            user, password = self._proc.stdout.readline().split(), self._proc.stdout.readline().split()
            if len(user) != 2 or len(password) != 2 or user[0] != "user:" or password[0] != "password:":
                raise RuntimeError(f"the emulator printed no login: {user} {password}")
            self._login = (user[1], password[1])
        return self._login

    def user_token(self) -> str:
        """Jellyfin/Emby: a user's token (``POST /Users/AuthenticateByName`` as the printed
        user), as ``importer login`` gets one: their change feeds reach user sessions only."""
        name, password = self.login()
        header = 'MediaBrowser Client="bench", Device="bench", DeviceId="bench-1", Version="1"'
        request = urllib.request.Request(
            self.url + "/Users/AuthenticateByName",
            data=json.dumps({"Username": name, "Pw": password}).encode(),
            headers={
                "Authorization": header,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        with urllib.request.urlopen(request) as response:
            return str(json.loads(response.read())["AccessToken"])

    def usage(self) -> tuple[float, int]:
        """CPU seconds so far and peak RSS (kB), from /proc."""
        return process_usage(self._proc.pid)


def stop(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Stop the emulator without hanging: SIGTERM (it stops and exits 0, see the
    README's "The emulated servers"), then, were it to hang, SIGINT and SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGKILL):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            print(f"bench: the emulator ignored {sig.name} for {grace:g} s", file=sys.stderr)


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
