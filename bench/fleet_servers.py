"""Many emulated servers in one process, each on its own loopback port, in one event loop.

``python -m bench.fleet_servers [SPEC]`` reads its servers as JSON from the file ``SPEC``
(or stdin without one)::

    {"latency_ms": 3, "shape": "varied",
     "servers": [{"name": "s001", "kind": "plex", "episodes": 500, "seed": 1}, ...]}

(a bare list is the ``servers`` alone), builds every library, then starts every server
and prints one JSON line per server, in the order given, ``{"name", "kind", "url",
"token"}``, and serves until SIGTERM or SIGINT (exit 0, as ``importer emulator``).

The bench's fleet scenario (bench/fleet.py) runs a few of these instead of 200
``importer emulator`` processes: one interpreter, one garbage-collected heap and one
event loop per few dozen servers. The tokens are printed: this is a bench fixture, on
loopback; the bench writes them to token files (mode 600) for the fleet's config.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from bench.emulator import ServerProcess

#: how long the servers may take to build their libraries and start
START_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class FleetServer:
    """One server of the spec (``episodes``: exactly that many, Plex's view)."""

    name: str
    kind: str
    episodes: int
    seed: int = 1

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "episodes": self.episodes, "seed": self.seed}


@dataclass(frozen=True)
class Running:
    """A started server, as the host printed it."""

    name: str
    kind: str
    url: str
    token: str


def parse_spec(text: str) -> tuple[list[FleetServer], float, str]:
    """The servers, the added latency (ms) and the libraries' shape of a spec."""
    body = json.loads(text)
    if isinstance(body, list):
        body = {"servers": body}
    servers = [
        FleetServer(str(s["name"]), str(s["kind"]), int(s["episodes"]), int(s.get("seed", 1)))
        for s in body["servers"]
    ]
    names = [s.name for s in servers]
    if len(set(names)) != len(names):
        raise ValueError("two servers of the spec have one name")
    return servers, float(body.get("latency_ms", 0.0)), str(body.get("shape", "varied"))


def serve(servers: list[FleetServer], latency_ms: float, shape: str) -> None:
    """Build every server, start them, print their lines; serve until a signal."""
    from importer.cli import exit_on_signal, run_command, stopping_is_success

    # a stop while the libraries are built is a normal end too (as `importer emulator`)
    exit_on_signal(stopping_is_success)
    from importer.emulator import Controls, LibrarySpec, make_server

    made = [
        make_server(
            s.kind,
            LibrarySpec(seed=s.seed, episodes=s.episodes, shape=shape),  # type: ignore[arg-type]
            controls=Controls(latency_ms=latency_ms),
        )
        for s in servers
    ]
    # as `importer emulator`: the libraries' long-lived objects out of the cyclic GC's way
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)

    async def main() -> None:
        started = []
        try:
            for spec, server in zip(servers, made, strict=True):
                url = await server.start("127.0.0.1", 0)
                started.append(server)
                line = {"name": spec.name, "kind": spec.kind, "url": url, "token": server.token}
                sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
            await asyncio.Event().wait()  # until a signal cancels this task
        finally:
            await asyncio.gather(*(server.stop() for server in started), return_exceptions=True)

    run_command(main, stopped=stopping_is_success)


def main() -> None:
    text = Path(sys.argv[1]).read_text() if len(sys.argv) > 1 else sys.stdin.read()
    servers, latency_ms, shape = parse_spec(text)
    serve(servers, latency_ms, shape)


# --------------------------------------------------------------------------- the bench's side
@dataclass
class ServersHost:
    """``python -m bench.fleet_servers`` in a child process (nice 10): its servers' URLs and
    tokens once it printed them; SIGTERM on the way out."""

    servers: list[FleetServer]
    latency_ms: float = 0.0
    shape: str = "varied"
    nice: bool = True
    running: list[Running] = field(default_factory=list)
    #: seconds from the start of the process to its last line (the libraries built)
    start_s: float = 0.0
    _server: ServerProcess | None = field(default=None, repr=False)

    @property
    def _proc(self) -> subprocess.Popen[str]:
        assert self._server is not None
        return self._server.proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    def __enter__(self) -> Self:
        spec = {
            "latency_ms": self.latency_ms,
            "shape": self.shape,
            "servers": [s.as_json() for s in self.servers],
        }
        repo = str(Path(__file__).resolve().parent.parent)
        started = time.monotonic()
        # bench from this checkout, after the installed packages (the importer is the installed one)
        boot = f"import sys; sys.path.append({repo!r}); from bench.fleet_servers import main; main()"
        argv = [sys.executable, "-c", boot]
        self._server = ServerProcess.start(argv, nice=self.nice, stdin=subprocess.PIPE)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._proc.stdin:
            self._proc.stdin.write(json.dumps(spec))
        for _ in self.servers:
            line = self._proc.stdout.readline()
            if not line:
                self.__exit__()
                raise RuntimeError(f"the fleet's servers did not start: {self.errors()[-3000:]}")
            body = json.loads(line)
            self.running.append(Running(body["name"], body["kind"], body["url"], body["token"]))
        self.start_s = time.monotonic() - started
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def errors(self) -> str:
        return self._server.errors() if self._server is not None else ""

    def rss_kb(self) -> int:
        """The host's resident memory now, kB."""
        return rss_kb(self.pid)


def rss_kb(pid: int) -> int:
    """``VmRSS`` of ``pid``, kB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


if __name__ == "__main__":
    main()
