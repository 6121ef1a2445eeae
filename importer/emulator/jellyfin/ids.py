"""Ids as Jellyfin makes and binds them: item GUIDs, etags, names' GUIDs, GUID parsing.

Item ids come from the generated library (``Library.jellyfin_id``); the ones here are for
what it does not generate (the server, the user, images, libraries, people) and for
recognising an id in whatever form a client sends it.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Final

from importer.emulator.library import mix

_TICKS_AT_EPOCH: Final = 621_355_968_000_000_000  # DateTime ticks of 1970-01-01T00:00:00Z

#: The constants of ``library.mix``: the episode hot loop inlines :func:`last_round`.
M64: Final = (1 << 64) - 1
C1: Final = 0xBF58476D1CE4E5B9
C2: Final = 0x94D049BB133111EB


def _guid_n(digest: bytes) -> str:
    """``Guid.ToString("N")`` of 16 bytes: .NET stores the first three fields little-endian."""
    return (digest[3::-1] + digest[5:3:-1] + digest[7:5:-1] + digest[8:]).hex()


def jf_etag(saved_at: int) -> str:
    """``BaseItem.GetEtag``: MD5 (of the UTF-16 text) of ``DateLastSaved.Ticks``, as a GUID."""
    ticks = saved_at * 10_000_000 + _TICKS_AT_EPOCH
    return _guid_n(hashlib.md5(str(ticks).encode("utf-16-le"), usedforsecurity=False).digest())


def name_guid(text: str) -> str:
    """A stable 32-hex id for things that are not generated items (libraries, people, users)."""
    return _guid_n(hashlib.md5(text.encode(), usedforsecurity=False).digest())


def last_round(state: int, part: int) -> int:
    """``mix(*parts, part)`` given ``state = mix(*parts)``: mix is a fold, so the state after
    the first parts is its value, and a per-show state leaves one round per episode."""
    h = (state ^ part) * C1 & M64
    h = (h ^ (h >> 31)) * C2 & M64
    return h ^ (h >> 29)


def hex_id(seed: int, kind: int, n: int) -> str:
    """A 32-hex id derived from a seed (server and user ids, image tags, alternate versions)."""
    return f"{mix(seed, kind, n):016x}{mix(seed, kind + 1000, n):016x}"


#: hex digits of an item id that make its Emby number (52 bits: a JSON-safe integer)
NUMBER_HEX: Final = 13


def emby_number(hex_id: str) -> str:
    """An item's Emby id: a number (emby-kodi does ``int(ItemId)``), made of the first
    bits of its 32-hex id so that both name the same item."""
    return str(int(hex_id[:NUMBER_HEX], 16))


def normalize_guid(text: str) -> str | None:
    """A GUID in any form ASP.NET binds ("N", "D", braces), as 32 lower-case hex digits."""
    try:
        return uuid.UUID(text.strip()).hex
    except ValueError:
        return None
