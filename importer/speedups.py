"""The hot-path functions, compiled where possible.

``IMPLEMENTATION`` says which is in use: "c" (``importer._speedups``, built from
``native/`` by ``pip install .``) or "python" (``importer._purepy``, the twin with
identical results). ``IMPORTER_PURE_PYTHON=1`` forces the twin.

What is here, and why (profiles: bench/README.md, "Native hot path"):

* ``plex_episode_rows``, ``jellyfin_episode_rows``: decoded episode pages to row
  tuples, file rows and etags, the per-item loop of the decoder process;
* ``content_etag``: the change detector of rows whose server sends no etag;
* ``parse_timestamp``: Jellyfin's ISO 8601 dates with 7 fractional digits;
* ``bind_new_rows``, ``bind_files``: the writer's rows as the tuples SQLite binds.

``plex_external_ids`` is the twin's alone (shows are few: not worth compiling).
"""

from __future__ import annotations

import os

from importer import _purepy
from importer._purepy import plex_external_ids

IMPLEMENTATION: str
try:
    if os.environ.get("IMPORTER_PURE_PYTHON") == "1":
        raise ImportError("IMPORTER_PURE_PYTHON=1 asks for the twin")
    from importer._speedups import (
        bind_files,
        bind_new_rows,
        content_etag,
        jellyfin_episode_rows,
        parse_timestamp,
        plex_episode_rows,
    )
except ImportError:  # not built (a source checkout without a compiler), or the twin asked for
    from importer._purepy import (
        bind_files,
        bind_new_rows,
        content_etag,
        jellyfin_episode_rows,
        parse_timestamp,
        plex_episode_rows,
    )

    IMPLEMENTATION = "python"
else:
    IMPLEMENTATION = "c"

__all__ = [
    "IMPLEMENTATION",
    "bind_files",
    "bind_new_rows",
    "content_etag",
    "jellyfin_episode_rows",
    "parse_timestamp",
    "plex_episode_rows",
    "plex_external_ids",
    "pure",
]

#: the twin, always available, for comparisons
pure = _purepy
