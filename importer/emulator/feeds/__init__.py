"""Live change feeds of the emulated servers: Plex notifications (websocket and SSE),
Jellyfin's and Emby's ``LibraryChanged`` websocket messages.

``diff.py`` works out what changed, ``hub.py`` holds the connections and publishes,
``plex.py`` and ``jellyfin.py`` speak each server's protocol.
"""

from __future__ import annotations

from importer.emulator.feeds.diff import Diff, Item, Tracker
from importer.emulator.feeds.hub import FeedConnection, FeedHub, FeedStats

__all__ = ["Diff", "FeedConnection", "FeedHub", "FeedStats", "Item", "Tracker"]
