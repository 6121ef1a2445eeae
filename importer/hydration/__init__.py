"""What ``importer hydrate`` does: cast, crew, genres, artwork and ratings, fetched after
the fast import in small batches by id, for the items whose etag changed (or one show,
now). Its library call is ``importer.hydrate`` (this package is named ``hydration`` so
that importing it never replaces that function on the ``importer`` package).

Modules, one job each: ``model`` (the values), ``plex`` / ``jellyfin`` (requests and
answers of each kind), ``kinds`` (one interface over them), ``identity`` (reaching the
database's server, recognised by its id), ``select`` (what to hydrate, from the
database), ``batches`` (requests by id, paced and bounded), ``answers`` (an answer
stored), ``ondemand`` (one show, now), ``database`` (the connection's thread),
``pacing`` (``--rate``), ``estimate`` (a large Jellyfin run's server time), ``result``
(the summary), ``runner`` (the run: lock, servers, signals). The store side is
:mod:`importer.store.metadata`.

Importing this package is cheap; ``hydrate`` and the rest load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importer.hydration.result import HydrateResult, LibraryHydration
    from importer.hydration.runner import HydrateOptions, Hydrator, hydrate

__all__ = ["HydrateOptions", "HydrateResult", "Hydrator", "LibraryHydration", "hydrate"]

_LAZY = {
    "HydrateOptions": "importer.hydration.runner",
    "Hydrator": "importer.hydration.runner",
    "hydrate": "importer.hydration.runner",
    "HydrateResult": "importer.hydration.result",
    "LibraryHydration": "importer.hydration.result",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'importer.hydration' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
