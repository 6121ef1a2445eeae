"""One interface over the server kinds for the runner: the identity call, batches by id,
and (on demand) a show's episodes; each kind's shapes stay in its own module."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from importer.hydration import jellyfin, plex
from importer.hydration.model import Answer
from importer.model import ItemType, PageRequest
from importer.sources import jellyfin as jellyfin_source
from importer.sources import make_source
from importer.sources import plex as plex_source
from importer.sources.common import JSON


class Identity(msgspec.Struct, frozen=True):
    """Who answers at a URL: the id a database knows its server by."""

    kind: str
    machine_id: str  # Plex machineIdentifier, Jellyfin/Emby server Id
    version: str


class Kind(Protocol):
    """What the runner needs of a server kind."""

    kind: str
    batch_size: int
    #: whether an answer naming none of the ids is a 404 (Plex) rather than an empty list
    none_found_is_404: bool

    def auth_headers(self, token: str) -> dict[str, str]: ...

    def identity_request(self) -> PageRequest: ...

    def identity(self, body: bytes) -> Identity: ...

    def batch_request(self, source_ids: Sequence[str]) -> PageRequest: ...

    def decode(self, body: bytes | memoryview, item_type: ItemType) -> Answer: ...


class PlexKind:
    kind = "plex"
    batch_size = plex.BATCH_SIZE
    none_found_is_404 = True

    def __init__(self, url: str) -> None:
        self._source = plex_source.PlexSource(url)

    def auth_headers(self, token: str) -> dict[str, str]:
        return self._source.auth_headers(token)

    def identity_request(self) -> PageRequest:
        # public and small: machineIdentifier and version
        return PageRequest("/identity", {}, JSON)

    def identity(self, body: bytes) -> Identity:
        found = plex_source.parse_identity(body)
        return Identity("plex", found.machine_identifier, found.version)

    def batch_request(self, source_ids: Sequence[str]) -> PageRequest:
        return plex.batch_request(source_ids)

    def decode(self, body: bytes | memoryview, item_type: ItemType) -> Answer:
        return plex.decode(body, item_type)


class JellyfinKind:
    """Jellyfin, and Emby (its own auth headers, its API under ``/emby``)."""

    batch_size = jellyfin.BATCH_SIZE
    page_size = jellyfin.SHOW_PAGE_SIZE  # a show's episodes a page, on demand
    none_found_is_404 = False

    def __init__(self, kind: str, url: str) -> None:
        source = make_source(kind, url)
        assert isinstance(source, jellyfin_source.JellyfinSource)
        self.kind = kind
        self._source = source
        self.prefix = source.prefix

    def auth_headers(self, token: str) -> dict[str, str]:
        return self._source.auth_headers(token)

    def identity_request(self) -> PageRequest:
        return PageRequest(f"{self.prefix}/System/Info/Public", {}, JSON)

    def identity(self, body: bytes) -> Identity:
        info = jellyfin_source.parse_public_info(body, f"{self.prefix}/System/Info/Public")
        return Identity(jellyfin_source.kind_of(info), info.id, info.version)

    def batch_request(self, source_ids: Sequence[str]) -> PageRequest:
        return jellyfin.batch_request(self.prefix, source_ids)

    def decode(self, body: bytes | memoryview, item_type: ItemType) -> Answer:
        return jellyfin.decode(body, item_type)

    def show_episodes_request(self, show_id: str, start: int) -> PageRequest:
        return jellyfin.show_episodes_request(self.prefix, show_id, start)

    def decode_listing(self, body: bytes | memoryview) -> Answer:
        return jellyfin.decode(body, "episode")


def kind_for(kind: str, url: str) -> Kind:
    if kind == "plex":
        return PlexKind(url)
    return JellyfinKind(kind, url)
