"""What a large ``--episodes`` run will cost a Jellyfin or Emby server, said before it
starts: ``People`` costs one database query per item on Jellyfin 10.10 and 10.11 (under
10 ms on 10.10.7, about 1.5 s on some 10.11 servers: jellyfin#14961), while 12.0 fetches
the people of a whole page at once (jellycon#455: 800 items in 33 s, ~40 ms an item).
Emby's cost is not measured: the 10.10/10.11 range is assumed."""

from __future__ import annotations

import re

from importer.results import format_seconds

#: items from which a run is "large" enough to say what it will cost
LARGE = 200
#: seconds of server time per item with People: (low, high)
_PER_ITEM_OLD = (0.01, 1.5)
_PER_ITEM_BATCHED = (0.005, 0.05)


def _major(version: str) -> int | None:
    found = re.match(r"\s*(\d+)", version)
    return int(found.group(1)) if found else None


def server_time_notice(kind: str, version: str, items: int, requests: int) -> str | None:
    """A line for stderr before hydrating ``items`` items in ``requests`` requests, or None
    for a small run or a server where People costs nothing special (Plex)."""
    if kind not in ("jellyfin", "emby") or items < LARGE:
        return None
    major = _major(version)
    batched = kind == "jellyfin" and major is not None and major >= 12
    low, high = (items * t for t in (_PER_ITEM_BATCHED if batched else _PER_ITEM_OLD))
    name = "Jellyfin" if kind == "jellyfin" else "Emby"
    why = (
        f"{name} {version} fetches People a page at a time"
        if batched
        else (
            f"{name} {version or '(version unknown)'} may run one People query per item "
            "(Jellyfin 10.10/10.11: under 10 ms to ~1.5 s each; 12.0 batches them)"
        )
    )
    return (
        f"importer: hydrating {items:,} items takes {requests:,} requests; {why}: expect "
        f"{format_seconds(low)} to {format_seconds(high)} of server time. --rate REQ_PER_S "
        "spreads it out; Ctrl-C stops, and a rerun continues"
    )
