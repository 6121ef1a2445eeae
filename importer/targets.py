"""What a run is pointed at: the server URL and the libraries asked for; each refused
with a message that says what to give instead."""

from __future__ import annotations

from urllib.parse import urlsplit

from importer import errors
from importer.http import redact_url
from importer.model import LibraryInfo


def check_url(url: str) -> None:
    """The server URL: http(s), a host, an optional path; credentials go elsewhere."""
    parts = urlsplit(url)
    shown = redact_url(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.ConfigError(f"{shown!r} is not a server URL; give one like http://plex.lan:32400")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise errors.ConfigError(
            f"give the server URL without a user, password or query ({shown}); the token goes in "
            "--token-file or IMPORTER_TOKEN, where no other user of this machine can see it"
        )


def select_libraries(libraries: list[LibraryInfo], wanted: tuple[str, ...]) -> list[LibraryInfo]:
    if not wanted:
        return libraries
    chosen = [
        lib
        for lib in libraries
        if lib.source_id in wanted or lib.title.casefold() in {w.casefold() for w in wanted}
    ]
    missing = [
        w
        for w in wanted
        if not any(w in (lib.source_id,) or w.casefold() == lib.title.casefold() for lib in libraries)
    ]
    if missing:
        names = ", ".join(f"{lib.title!r} ({lib.source_id})" for lib in libraries) or "none"
        raise errors.ConfigError(
            f"no TV library named {', '.join(map(repr, missing))}; the server has: {names}"
        )
    return chosen
