"""The hot-path functions, compiled where possible.

``IMPLEMENTATION`` says which is in use: "c" (``importer._speedups``, built from
``native/`` by ``pip install .``) or "python" (``importer._purepy``, the twin with
identical results). ``IMPORTER_PURE_PYTHON=1`` forces the twin.
"""

from __future__ import annotations

import os

from importer import _purepy

IMPLEMENTATION: str
if os.environ.get("IMPORTER_PURE_PYTHON") == "1":
    from importer._purepy import parse_timestamp

    IMPLEMENTATION = "python"
else:
    try:
        from importer._speedups import parse_timestamp
    except ImportError:
        from importer._purepy import parse_timestamp

        IMPLEMENTATION = "python"
    else:
        IMPLEMENTATION = "c"

__all__ = ["IMPLEMENTATION", "parse_timestamp", "pure"]

#: the twin, always available, for comparisons
pure = _purepy
