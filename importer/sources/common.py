"""What the Plex and Jellyfin sources share: headers, body checks, errors, etags.

Everything here runs in decode worker processes on page bytes (already inflated: that is
the worker's job, once, by the response's Content-Encoding), so it is cheap to import
(msgspec, xxhash) and never touches the network.
"""

from __future__ import annotations

import platform
import uuid
from typing import TypeVar

import msgspec

from importer import __version__, speedups
from importer.errors import DecodeError

T = TypeVar("T")

PRODUCT = "importer"
VERSION = __version__
#: Plex answers XML without it; Jellyfin and Emby answer JSON either way
JSON = {"Accept": "application/json"}


def default_client_id() -> str:
    """A device id that stays the same on this machine, so servers list one device for us
    rather than a new one per run (Plex X-Plex-Client-Identifier, Jellyfin DeviceId): the
    one ``importer login`` keeps in the config folder when there is one (a token is then
    used from the device it was issued to), else one derived from the host name."""
    from importer.userdir import saved_device_id

    host = platform.node() or "localhost"
    return saved_device_id() or str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{PRODUCT}.{host}"))


def decode_json(decoder: msgspec.json.Decoder[T], body: bytes | memoryview, what: str, expected: str) -> T:
    """Decode ``body`` or raise DecodeError naming what was wrong, never the body or token."""
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


def _describe_non_json(body: bytes | memoryview, expected: str) -> str:
    head = bytes(body).lstrip()[:1]
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


#: query parameters that carry a credential, whatever their case
_CREDENTIALS = frozenset({"x-plex-token", "api_key", "apikey", "x-emby-token"})


def strip_token(path: str) -> str:
    """A path or URL as a server served it, without any credential in its query: what is
    stored must be safe to show (a server may put its token in artwork URLs)."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0].lower() not in _CREDENTIALS]
    return f"{base}?{'&'.join(kept)}" if kept else base
