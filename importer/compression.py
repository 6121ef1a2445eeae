"""Compressed bodies, inflated within limits: one place, used wherever a body is opened.

Both live here, so that each process has one place that inflates: the decoder its
pages, the main process its discovery documents (and a peek at a page's first bytes).

A listing page is at most a few MiB of JSON and compresses 6-12x. A body that inflates
past ``MAX_INFLATED`` bytes, or more than ``MAX_RATIO`` times its own size, is not a page
but a compression bomb (or a misconfigured proxy): it is refused before it can take the
machine's memory. The work is CPU: do it in a worker process, not on the event loop
(discovery's few small documents are the exception).
"""

from __future__ import annotations

import zlib
from typing import Final

from importer.errors import UnexpectedResponse

MAX_INFLATED: Final = 64 * 1024 * 1024
MAX_RATIO: Final = 200
GZIP_MAGIC: Final = b"\x1f\x8b"


def inflate(
    body: bytes | memoryview,
    encoding: str | None,
    *,
    what: str = "the response",
    max_size: int = MAX_INFLATED,
) -> bytes | memoryview:
    """``body`` with its Content-Encoding (gzip, deflate, or none) undone, within limits."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > max_size:
            raise UnexpectedResponse(
                f"{what} is {len(body):,} bytes, more than the limit of {max_size:,}: "
                "this is not a listing page; check the URL"
            )
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnexpectedResponse(
            f"{what} has an unsupported Content-Encoding {encoding!r}; a proxy may be rewriting "
            "responses: connect to the server directly"
        )
    limit = min(max_size, max(len(body), 1) * MAX_RATIO)
    inflater = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, detected
    try:
        out = inflater.decompress(body, limit)
    except zlib.error as exc:
        raise UnexpectedResponse(
            f"{what}: the compressed body is corrupt ({exc}); retry, and if it persists connect "
            "without a proxy"
        ) from exc
    if inflater.unconsumed_tail:
        raise UnexpectedResponse(
            f"{what} inflates past {limit:,} bytes (limits: {max_size:,} bytes, ratio {MAX_RATIO}); "
            "refused as a possible compression bomb"
        )
    if not inflater.eof:
        raise UnexpectedResponse(
            f"{what}: the compressed body ends early; retry, and if it persists connect without a proxy"
        )
    return out


def peek(body: bytes, encoding: str | None, size: int) -> bytes:
    """The first ``size`` bytes of ``body`` as inflated (b"" when they cannot be): enough to
    tell JSON from a login page without inflating the rest."""
    encoding = (encoding or "identity").strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return body[:size]
    try:
        return zlib.decompressobj(32 + zlib.MAX_WBITS).decompress(body[:256], size)
    except zlib.error:
        return b""  # the worker will report a corrupt body
