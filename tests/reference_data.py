"""Where the vendored reference data lives: official specs and real recorded answers,
copied byte for byte from public repositories (see tests/reference/SOURCES.md)."""

from pathlib import Path

REFERENCE = Path(__file__).resolve().parent / "reference"
PLEX = REFERENCE / "plex"
JELLYFIN = REFERENCE / "jellyfin"
