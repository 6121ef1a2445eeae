"""Strings and dates as Jellyfin and Emby write them in JSON.

Jellyfin's System.Text.Json escapes far more than JSON requires, and its dates always carry
seven fraction digits; Emby writes plain UTF-8. Clients compare what they read, so the
emulator writes the same bytes.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Final

import msgspec

#: What System.Text.Json's default JavaScriptEncoder escapes: everything outside printable
#: ASCII, the quote and backslash, and the HTML-sensitive characters.
_JS_NEEDS: Final = re.compile(r"[^\x20-\x7e]|[\"\\&'<>+`]")
_JS_SHORT: Final = {
    '"': "\\u0022",
    "\\": "\\\\",
    "&": "\\u0026",
    "'": "\\u0027",
    "<": "\\u003C",
    ">": "\\u003E",
    "+": "\\u002B",
    "`": "\\u0060",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _js_char(m: re.Match[str]) -> str:
    c = m.group()
    short = _JS_SHORT.get(c)
    if short is not None:
        return short
    o = ord(c)
    if o > 0xFFFF:  # astral: a UTF-16 surrogate pair, as .NET strings hold it
        o -= 0x10000
        return f"\\u{0xD800 + (o >> 10):04X}\\u{0xDC00 + (o & 0x3FF):04X}"
    return f"\\u{o:04X}"


def js_string(value: str) -> str:
    """A JSON string as Jellyfin writes it (System.Text.Json, default encoder)."""
    if _JS_NEEDS.search(value) is None:
        return f'"{value}"'
    return '"' + _JS_NEEDS.sub(_js_char, value) + '"'


def plain_string(value: str) -> str:
    """A JSON string as Emby writes it: UTF-8, only what JSON requires escaped."""
    return msgspec.json.encode(value).decode()


@functools.lru_cache(maxsize=16384)
def _ymd(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")


@functools.cache
def _clock() -> list[str]:
    """``THH:mm:ss.`` for every second of a day (5 MB, built once: dates are on the hot path)."""
    return [f"T{h:02d}:{m:02d}:{s:02d}." for h in range(24) for m in range(60) for s in range(60)]


def jf_date(ts: int, fraction: int = 0) -> str:
    """``yyyy-MM-ddTHH:mm:ss.fffffffZ`` (``JsonDateTimeConverter``): 7 digits, always."""
    day, sec = divmod(ts, 86400)
    return f"{_ymd(day)}{_clock()[sec]}{fraction:07d}Z"


def created_fraction(ts: int) -> int:
    """Sub-second ticks of a creation time (file times have them; ours are whole seconds)."""
    return (ts * 2_654_435_761) % 10_000_000


def date_created(ts: int) -> str:
    """A ``DateCreated`` property with the sub-second ticks a file time has."""
    return ',"DateCreated":"' + jf_date(ts, created_fraction(ts)) + '"'
