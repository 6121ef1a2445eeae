"""Emulated Plex, Jellyfin and Emby servers over a generated library, on loopback.

server = make_server("plex", LibrarySpec(shows=100))
with server.running_in_thread() as url:
    ...  # server.token, server.log
"""

from __future__ import annotations

from typing import Any

from importer.emulator.library import Library, LibrarySpec
from importer.emulator.server import Controls, EmulatedServer

KINDS = ("plex", "jellyfin", "emby")


def make_server(kind: str, library: Library | LibrarySpec | None = None, **options: Any) -> EmulatedServer:
    """An emulated server of ``kind`` ("plex", "jellyfin" or "emby")."""
    if kind == "plex":
        from importer.emulator.plex import PlexServer

        return PlexServer(library, **options)
    if kind == "jellyfin":
        from importer.emulator.jellyfin import JellyfinServer

        return JellyfinServer(library, **options)
    if kind == "emby":
        from importer.emulator.jellyfin import EmbyServer

        return EmbyServer(library, **options)
    raise ValueError(f"unknown server kind {kind!r}; choose one of {', '.join(KINDS)}")


__all__ = ["KINDS", "Controls", "EmulatedServer", "Library", "LibrarySpec", "make_server"]
