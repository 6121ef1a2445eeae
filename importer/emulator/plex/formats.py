"""The two wire formats, JSON and XML, behind one set of calls.

Every document is built with the same calls in either format, so attribute names in XML
always equal JSON keys. A format differs only in its constants (how a boolean, a string
and an attribute are written) and in how it escapes, opens, closes and groups elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

import orjson

from importer.emulator.plex.memo import Memo

Scalar = str | int | float | bool
Attrs = Sequence[tuple[str, Scalar | None]]
#: (JSON key, items) of one child group; a bytes "items" is a single JSON object (Meta)
Group = tuple[str, Sequence[bytes] | bytes]


class Format:
    """One rendering, JSON or XML: values, attributes, elements and containers.

    Strings that repeat (titles, summaries, dates) are escaped once and kept in ``texts``."""

    json: ClassVar[bool]
    content_type: ClassVar[str]
    true: ClassVar[bytes]
    false: ClassVar[bytes]
    attribute: ClassVar[bytes]  # a %-format for (name, number or boolean)
    text_attribute: ClassVar[bytes]  # a %-format for (name, escaped string)
    separator: ClassVar[bytes]  # between attributes
    document_start: ClassVar[bytes]  # before the container's attributes
    document_children: ClassVar[bytes]  # between its attributes and its children
    document_end: ClassVar[bytes]

    def __init__(self) -> None:
        self.texts: Memo[str, bytes] = Memo(self.inner, limit=100_000)

    # --- values
    def inner(self, s: str) -> bytes:
        """A string escaped to stand between double quotes."""
        raise NotImplementedError

    def text(self, s: str) -> bytes:
        """``inner`` through the ``texts`` cache, for strings that repeat across items."""
        return self.texts[s]

    def scalar(self, v: int | float | bool) -> bytes:
        """A number or a boolean (strings take ``text_attribute``)."""
        if v is True:
            return self.true
        if v is False:
            return self.false
        return repr(v).encode()

    # --- structure
    def attr(self, name: str, v: Scalar) -> bytes:
        if isinstance(v, str):
            return self.text_attribute % (name.encode(), self.texts[v])
        return self.attribute % (name.encode(), self.scalar(v))

    def attrs(self, pairs: Attrs) -> bytes:
        return self.separator.join(self.attr(n, v) for n, v in pairs if v is not None)

    def opt(self, name: str, v: Scalar | None) -> bytes:
        """An optional attribute spliced into a template (empty when absent): it carries
        its own separator, as the template cannot know whether it is there."""
        return b"" if v is None else self.attr(name, v) + self.separator

    def open(self, tag: str) -> bytes:
        raise NotImplementedError

    def close(self, tag: str, children: bytes) -> bytes:
        """What follows the attributes of an element: its children and its end."""
        raise NotImplementedError

    def group_parts(self, key: str, items: Sequence[bytes] | bytes) -> Sequence[bytes]:
        """A child group as pieces to join (nothing for an empty list)."""
        raise NotImplementedError

    def group(self, key: str, items: Sequence[bytes] | bytes) -> bytes:
        return b"".join(self.group_parts(key, items))

    def groups(self, groups: Sequence[Group]) -> bytes:
        return b"".join(self.group(k, items) for k, items in groups if items)

    def element(self, tag: str, pairs: Attrs, groups: Sequence[Group] = (), children: bytes = b"") -> bytes:
        """An element; ``children``: pre-rendered groups that follow ``groups``."""
        return self.open(tag) + self.attrs(pairs) + self.close(tag, self.groups(groups) + children)

    def document(self, pairs: Attrs, groups: Sequence[Group]) -> bytes:
        # one join over the pieces: a page is megabytes, each extra concatenation a copy
        parts = [self.document_start, self.attrs(pairs), self.document_children]
        for key, items in groups:
            parts += self.group_parts(key, items)
        parts.append(self.document_end)
        return b"".join(parts)


class JsonFormat(Format):
    json = True
    content_type = "application/json"
    true, false = b"true", b"false"
    attribute = b'"%s":%s'
    text_attribute = b'"%s":"%s"'
    separator = b","
    document_start = b'{"MediaContainer":{'
    document_children = b""
    document_end = b"}}"

    def inner(self, s: str) -> bytes:
        if '"' not in s and "\\" not in s and s.isprintable():
            return s.encode()  # the common case: nothing to escape (JSON allows raw UTF-8)
        return orjson.dumps(s)[1:-1]

    def open(self, tag: str) -> bytes:
        return b"{"

    def close(self, tag: str, children: bytes) -> bytes:
        return children + b"}"

    def group_parts(self, key: str, items: Sequence[bytes] | bytes) -> Sequence[bytes]:
        if isinstance(items, bytes):
            return (b',"%s":%s' % (key.encode(), items),)
        if not items:
            return ()
        return b',"%s":[' % key.encode(), b",".join(items), b"]"


_XML_ESCAPES: dict[int, str | None] = {
    ord("&"): "&amp;",
    ord("<"): "&lt;",
    ord(">"): "&gt;",
    ord('"'): "&quot;",
    # attribute-value normalisation would turn literal whitespace into spaces
    ord("\n"): "&#10;",
    ord("\r"): "&#13;",
    ord("\t"): "&#9;",
}
# other C0 controls cannot appear in XML 1.0 at all
_XML_ESCAPES.update({c: None for c in range(32) if c not in _XML_ESCAPES})


class XmlFormat(Format):
    json = False
    content_type = "text/xml"
    true, false = b"1", b"0"
    attribute = text_attribute = b' %s="%s"'
    separator = b""
    document_start = b'<?xml version="1.0" encoding="UTF-8"?>\n<MediaContainer'
    # PMS never self-closes the container, even when it is empty (count-only answers).
    document_children = b">\n"
    document_end = b"</MediaContainer>\n"

    def inner(self, s: str) -> bytes:
        if '"' not in s and "&" not in s and "<" not in s and ">" not in s and s.isprintable():
            return s.encode()
        return s.translate(_XML_ESCAPES).encode()

    def open(self, tag: str) -> bytes:
        return b"<" + tag.encode()

    def close(self, tag: str, children: bytes) -> bytes:
        if not children:
            return b"/>\n"
        return b">\n" + children + b"</" + tag.encode() + b">\n"

    def group_parts(self, key: str, items: Sequence[bytes] | bytes) -> Sequence[bytes]:
        return (items,) if isinstance(items, bytes) else items


JSON: Final = JsonFormat()
XML: Final = XmlFormat()
