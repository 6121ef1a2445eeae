"""Copy the TV libraries of Plex, Jellyfin and Emby servers into SQLite.

    import importer
    result = await importer.sync("http://plex:32400", "library.db", token=token)
    await importer.hydrate("library.db", token=token, show="Breaking Bad", episodes=True)
    async for event in importer.watch("http://plex:32400", "library.db", token=token): ...

``sync`` runs inside the caller's event loop without blocking it: decoding and
writing happen in worker processes. The library API is what ``__all__`` names (the
README's "As a library" shows each); errors are in :mod:`importer.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from importer.hydration.result import HydrateResult
    from importer.hydration.runner import HydrateOptions, hydrate
    from importer.pipeline import Importer, SyncOptions, sync
    from importer.progress import ProgressEvent
    from importer.results import LibraryResult, SyncResult
    from importer.watching import WatchOptions, watch

__all__ = [
    "HydrateOptions",
    "HydrateResult",
    "Importer",
    "LibraryResult",
    "ProgressEvent",
    "SyncOptions",
    "SyncResult",
    "WatchOptions",
    "__version__",
    "hydrate",
    "sync",
    "watch",
]

_LAZY = {
    "Importer": "importer.pipeline",
    "SyncOptions": "importer.pipeline",
    "sync": "importer.pipeline",
    "LibraryResult": "importer.results",
    "SyncResult": "importer.results",
    "ProgressEvent": "importer.progress",
    "hydrate": "importer.hydration.runner",
    "HydrateOptions": "importer.hydration.runner",
    "HydrateResult": "importer.hydration.result",
    "watch": "importer.watching",
    "WatchOptions": "importer.watching",
}


def __getattr__(name: str) -> Any:
    # Lazy, so that worker processes importing importer.workers stay light.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'importer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
