"""What a sync run returns, and how it is told: the one-line summary, the JSON summary,
the ``--dry-run`` list. Cheap to import (no aiohttp, no workers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from importer.model import RunMode, RunStatus, ServerInfo

#: exit code of a library's status (any other: 1); the worst library's wins
_EXIT_CODES = {RunStatus.DONE: 0, RunStatus.DRY_RUN: 0, RunStatus.INCOMPLETE: 75, RunStatus.STOPPED: 3}
_SEVERITY = (0, 75, 3, 1)


@dataclass
class LibraryResult:
    """One library's part of a run."""

    title: str
    source_id: str
    #: done | incomplete | stopped | dry-run, or, while it runs, running
    status: RunStatus = RunStatus.RUNNING
    mode: RunMode = RunMode.FULL
    totals: dict[str, int] = field(default_factory=dict)  # the server's counts, per stream
    written: int = 0  # items inserted or changed
    unchanged: int = 0  # items listed whose stored etag matched
    deleted: int = 0
    complete: bool = False  # every listing verified complete against the server's counts
    reason: str | None = None  # why it is not done
    unlinked: int = 0  # episodes this run wrote that have no show or season on the server
    #: per stream: (source_id, name) of the rows the server no longer lists (--dry-run)
    gone: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass
class SyncResult:
    server: ServerInfo
    libraries: list[LibraryResult]
    requests: int
    bytes: int
    seconds: float
    commits: int
    #: peak resident memory of each process of the run, in kB ("main", "writer", "decoder")
    peak_rss_kb: dict[str, int] = field(default_factory=dict)
    #: the hot path each worker ran: "c" (the compiled extension) or "python" (its twin)
    implementations: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The worst library's: 0 done; 75 incomplete (the library kept changing while it
        was read: rows are kept, a later run completes it); 3 stopped by the mass-delete
        guard; 1 anything else."""
        codes = [_EXIT_CODES.get(lib.status, 1) for lib in self.libraries]
        return max(codes, key=_SEVERITY.index, default=0)


def format_seconds(seconds: float) -> str:
    """``0.42 s``, ``1.2 s``, ``2 min 05 s``, ``1 h 02 min``: for summaries."""
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_bytes(n: int) -> str:
    """Decimal units, as network tools count: ``512 B``, ``812 kB``, ``4.1 MB``, ``1.20 GB``."""
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1000:.0f} kB"
    if n < 1_000_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e9:.2f} GB"


def _library_text(lib: LibraryResult) -> str:
    episodes = lib.totals.get("episodes", 0)
    counts = f"{lib.written:,} written, {lib.unchanged:,} unchanged" + (
        f", {lib.deleted:,} deleted" if lib.deleted else ""
    )
    if lib.mode is not RunMode.FULL:
        counts = f"{lib.mode}: {counts}"
    text = f"{lib.title} {episodes:,} episodes ({counts})"
    if lib.status is not RunStatus.DONE:
        text += f" {lib.status}" + (f": {lib.reason}" if lib.reason else "")
    return text


def format_gone(libraries: list[LibraryResult]) -> str:
    """What a sweep would delete (``--dry-run``), library by library, one item per line."""
    lines = []
    for lib in libraries:
        total = sum(len(items) for items in lib.gone.values())
        lines.append(f"{lib.title}: {total:,} item{'s' if total != 1 else ''} would be deleted")
        for stream, items in lib.gone.items():
            lines += [f"  {stream[:-1]} {source_id}: {name}" for source_id, name in items]
    return "\n".join(lines)


def summary_dict(result: SyncResult) -> dict[str, Any]:
    """The run summary as plain data (stable keys), for ``--progress json`` and the library API."""
    return {
        "kind": result.server.kind,
        "server": result.server.name,
        "libraries": [
            {
                "title": lib.title,
                "status": str(lib.status),
                "mode": str(lib.mode),
                "shows": lib.totals.get("shows", 0),
                "seasons": lib.totals.get("seasons", 0),
                "episodes": lib.totals.get("episodes", 0),
                "written": lib.written,
                "unchanged": lib.unchanged,
                "deleted": lib.deleted,
                "reason": lib.reason,
            }
            for lib in result.libraries
        ],
        "seconds": round(result.seconds, 3),
        "requests": result.requests,
        "bytes": result.bytes,
        "exit_code": result.exit_code,
    }


def format_summary(result: SyncResult, *, as_json: bool = False) -> str:
    """The one-line run summary for stdout, e.g.
    ``plex "My Server": TV Shows 5,000 episodes (5,000 written, 0 unchanged) in 1.2 s, 9 requests, 4.1 MB``;
    with ``as_json`` the same as one JSON object."""
    if as_json:
        return msgspec.json.encode(summary_dict(result)).decode()
    libraries = "; ".join(_library_text(lib) for lib in result.libraries) or "no TV libraries"
    server = msgspec.json.encode(result.server.name).decode()  # quoted, escapes and all
    return (
        f"{result.server.kind} {server}: {libraries} in {format_seconds(result.seconds)}, "
        f"{result.requests:,} request{'s' if result.requests != 1 else ''}, {format_bytes(result.bytes)}"
    )
