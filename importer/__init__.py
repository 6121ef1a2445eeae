"""Copy the TV libraries of Plex, Jellyfin and Emby servers into SQLite.

    import importer
    result = await importer.sync("http://plex:32400", "library.db", token=token)

``sync`` runs inside the caller's event loop without blocking it: decoding and
writing happen in worker processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from importer.pipeline import Importer, SyncOptions, SyncResult, sync

__all__ = ["Importer", "SyncOptions", "SyncResult", "__version__", "sync"]


def __getattr__(name: str) -> Any:
    # Lazy, so that worker processes importing importer.workers stay light.
    if name in ("sync", "Importer", "SyncOptions", "SyncResult"):
        from importer import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'importer' has no attribute {name!r}")
