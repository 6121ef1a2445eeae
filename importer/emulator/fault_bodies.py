"""What faulty answers carry: JSON bodies spoiled in place, a sign-in page, a gzip bomb.

The JSON helpers know just enough of both servers' shapes to find a page's items and its
total: Plex's ``MediaContainer`` (items in its capitalised list, ``totalSize``) and
Jellyfin/Emby's ``Items`` and ``TotalRecordCount``; a bare list is all items.
"""

from __future__ import annotations

import copy
import functools
import json
import random
import struct
import zlib
from typing import Any

from aiohttp import web

#: fields that wrong_types spoils by default: what an importer reads and trusts
DEFAULT_WRONG_FIELDS = (
    "ratingKey", "parentRatingKey", "grandparentRatingKey", "key", "index", "parentIndex",
    "duration", "addedAt", "updatedAt", "leafCount", "Media",
    "Id", "SeriesId", "SeasonId", "ParentId", "IndexNumber", "ParentIndexNumber",
    "RunTimeTicks", "DateCreated", "ProductionYear", "MediaSources",
)  # fmt: skip


def decode(response: web.StreamResponse) -> Any:
    """The JSON of a 200 JSON answer, or None."""
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    if response.status != 200 or "json" not in response.content_type:
        return None
    try:
        return json.loads(response.body)
    except ValueError:
        return None


def encode(doc: Any) -> bytes:
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: only an escape can carry it
        return json.dumps(doc, separators=(",", ":")).encode()


def listing(doc: Any) -> tuple[list[Any] | None, dict[str, Any] | None, str | None]:
    """(the items, the object holding the total, the total's key) of a Plex or Jellyfin answer."""
    if isinstance(doc, list):
        return doc, None, None
    if not isinstance(doc, dict):
        return None, None, None
    container = doc.get("MediaContainer")
    if isinstance(container, dict):  # Plex: the items are its capitalised list (Metadata...)
        items = next((v for k, v in container.items() if k[:1].isupper() and isinstance(v, list)), None)
        return items, container, "totalSize" if "totalSize" in container else None
    items = doc.get("Items")
    total = "TotalRecordCount" if isinstance(doc.get("TotalRecordCount"), int) else None
    return (items if isinstance(items, list) else None), doc, total


def _wrong(name: str, value: Any) -> Any:
    if name in ("IndexNumber", "ParentIndexNumber"):
        return {"Value": value}
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return "abc"
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return {"0": value}
    if isinstance(value, dict):
        return [value]
    return {}


def wrong_types(doc: Any, names: tuple[str, ...], count: int, rng: random.Random) -> bool:
    """Give ``names`` of ``count`` items (the answer itself if it lists none) the wrong type."""
    items, holder, _ = listing(doc)
    candidates = [i for i in (items or ([holder] if holder else [doc])) if isinstance(i, dict)]
    candidates = [i for i in candidates if any(n in i for n in names)]
    for item in rng.sample(candidates, min(count, len(candidates))):
        for name in names:
            if name in item:
                item[name] = _wrong(name, item[name])
    return bool(candidates)


def duplicate(doc: Any, count: int, previous: list[Any] | None) -> bool:
    """Repeat ``count`` items of the page (or of ``previous``, the last page's tail) in it."""
    items = listing(doc)[0]
    if not items:
        return False
    if previous is None:  # repeats of itself, at the end
        k = min(count, len(items) // 2)
        items[len(items) - k :] = copy.deepcopy(items[:k])
    else:  # the previous page's tail again, at the start
        k = min(count, len(previous), len(items))
        items[:k] = copy.deepcopy(previous[len(previous) - k :])
    return k > 0


def drift(doc: Any, by: int) -> int | None:
    """The new total, or None if the answer has none."""
    _, holder, key = listing(doc)
    if holder is None or key is None:
        return None
    total = holder[key] = int(holder[key]) + by
    return total


# ---------------------------------------------------------------------- payloads

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><main><h1>Sign in to continue</h1>
<form method="post" action="/oauth2/sign_in"><input type="hidden" name="rd" value="/">
<label>Username <input name="username"></label><label>Password <input name="password" type="password">
</label><button type="submit">Sign in</button></form></main></body></html>
"""

_BOMB_CHUNK = 4 << 20


@functools.lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """A gzip member of ``size`` spaces (valid JSON whitespace, so a client reads on), built
    from one compressed chunk repeated: a full flush makes each copy independent of the one
    before, so the cost is one chunk's compression, not ``size`` bytes'."""
    chunks, rest = divmod(size, _BOMB_CHUNK)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(b" " * _BOMB_CHUNK) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.compress(b" " * rest) + deflate.flush(zlib.Z_FINISH)
    crc, block_crc = 0, zlib.crc32(b" " * _BOMB_CHUNK)
    for _ in range(chunks):
        crc = _crc32_combine(crc, block_crc, _BOMB_CHUNK)
    crc = zlib.crc32(b" " * rest, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + block * chunks + tail + struct.pack("<II", crc, size & 0xFFFFFFFF)


# crc32_combine as zlib computes it (Python's zlib does not expose it): CRCs multiply as
# polynomials modulo the CRC polynomial, so a chunk's CRC need not be recomputed per copy.
_POLY = 0xEDB88320


def _multmodp(a: int, b: int) -> int:
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> list[int]:
    table, p = [], 1 << 30  # x^1
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return table


_X2N = _x2n_table()


def _crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    p, k = 1 << 31, 3  # x^0; a byte is 2^3 bits
    while len2:
        if len2 & 1:
            p = _multmodp(_X2N[k & 31], p)
        len2 >>= 1
        k += 1
    return _multmodp(p, crc1) ^ crc2
