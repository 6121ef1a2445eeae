"""What the Plex and Jellyfin decoders share: body checks, gzip, errors, etags.

Everything here runs in decode worker processes on raw page bytes, so it is cheap to
import (msgspec, xxhash) and never touches the network.
"""

from __future__ import annotations

import platform
import uuid
from typing import TypeVar

import msgspec

from importer import __version__, compression, speedups
from importer.compression import GZIP_MAGIC
from importer.errors import DecodeError, UnexpectedResponse

T = TypeVar("T")

PRODUCT = "importer"
VERSION = __version__
#: A page larger than this after gzip inflation is refused rather than held in memory.


def default_client_id() -> str:
    """A device id that stays the same on this machine, so servers list one device for us
    rather than a new one per run (Plex X-Plex-Client-Identifier, Jellyfin DeviceId)."""
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{PRODUCT}.{platform.node() or 'localhost'}"))


def inflate(body: bytes, what: str) -> bytes:
    """The body itself, or its gzip inflation when the HTTP layer left it compressed
    (it may, so that inflating happens here in a worker rather than on the event loop)."""
    if not body.startswith(GZIP_MAGIC):
        return body
    try:
        return compression.inflate(body, "gzip", what=what)
    except UnexpectedResponse as exc:
        raise DecodeError(str(exc)) from exc


def decode_json(decoder: msgspec.json.Decoder[T], body: bytes, what: str, expected: str) -> T:
    """Decode ``body`` or raise DecodeError naming what was wrong, never the body or token."""
    body = inflate(body, what)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        # msgspec names the path and the types ("Expected `int`, got `str` - at `$...`"),
        # never the offending value, so the message is safe to log.
        raise DecodeError(f"{what}: the JSON does not have the documented shape: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise DecodeError(f"{what}: {_describe_non_json(body, expected)} ({exc})") from exc
    except UnicodeDecodeError as exc:  # msgspec lets invalid UTF-8 inside a string through
        raise DecodeError(f"{what}: the JSON holds text that is not UTF-8 (at byte {exc.start})") from exc


def _describe_non_json(body: bytes, expected: str) -> str:
    head = body.lstrip()[:1]
    if not head:
        return "the body is empty"
    if head == b"<":
        return (
            f"got HTML or XML instead of JSON; is the URL the {expected} server itself "
            "(not a login page or proxy)?"
        )
    return "the body is not valid JSON (malformed or truncated)"


#: A change detector for servers without one: a hash of exactly what is stored (xxh3_64
#: of its msgpack encoding), so the etag changes when (and only when) a stored column
#: does. Compiled (importer.speedups) where available.
content_etag = speedups.content_etag


def as_id(value: str | int) -> str:
    """Servers send ids as strings on items but as numbers elsewhere; store them as text."""
    return value if value.__class__ is str else str(value)
