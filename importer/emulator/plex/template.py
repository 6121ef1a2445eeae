"""``%``-templates of one element: the attributes every item repeats are escaped once,
and each item fills in only its own values."""

from __future__ import annotations

import re

from importer.emulator.plex.formats import Format, Scalar

#: a value's format spec (not an escaped ``%%``)
_SPEC = re.compile(rb"%%|%[ds]")


class Template:
    """Builds a ``%``-template of one element's attributes: constants are escaped once,
    placeholders take per-item values in the order they were added, and the element's
    end (children, closing tag) is always the last value."""

    def __init__(self, fmt: Format, tag: str, excluded: frozenset[str] = frozenset()) -> None:
        """``excluded``: attributes left out (``excludeFields``); their values are still
        passed, and consumed without a trace."""
        self.fmt = fmt
        self.tag = tag
        self.excluded = excluded
        self._parts: list[tuple[bool, bytes]] = []  # (mandatory, bytes)

    def const(self, name: str, v: Scalar | None) -> Template:
        if v is not None and name not in self.excluded:
            self._parts.append((True, self.fmt.attr(name, v).replace(b"%", b"%%")))
        return self

    def number(self, name: str) -> Template:
        """An int placeholder (a JSON number)."""
        return self._mandatory(name, b"%d")

    def text(self, name: str) -> Template:
        """A string placeholder for a value escaped with ``Format.text`` or ``inner``."""
        return self._mandatory(name, b"%s", string=True)

    def quoted(self, name: str, *pieces: str | bytes) -> Template:
        """A string made of constant pieces (str, escaped here) and format specs (bytes)."""
        spec = b"".join(self.fmt.inner(p).replace(b"%", b"%%") if isinstance(p, str) else p for p in pieces)
        return self._mandatory(name, spec, string=True)

    def marker(self, name: str, key: str) -> Template:
        """A number that ``@@key@@`` stands for until a later substitution."""
        return self._mandatory(name, b"@@%s@@" % key.encode())

    def optional_marker(self, name: str, key: str) -> Template:
        """An optional attribute whose whole pre-rendered ``Format.opt`` part (possibly
        empty) ``@@key@@`` stands for until a later substitution."""
        if name not in self.excluded:
            self._parts.append((False, b"@@%s@@" % key.encode()))
        return self

    def optional(self, *names: str) -> Template:
        """A placeholder for a pre-rendered ``Format.opt`` part (possibly empty) of one
        of ``names``."""
        self._parts.append((False, b"%.0a" if set(names) <= self.excluded else b"%s"))
        return self

    def _mandatory(self, name: str, spec: bytes, string: bool = False) -> Template:
        if name in self.excluded:  # its values are formatted to nothing: %.0a takes any object
            self._parts.append((False, b"%.0a" * sum(m != b"%%" for m in _SPEC.findall(spec))))
            return self
        attribute = self.fmt.text_attribute if string else self.fmt.attribute
        self._parts.append((True, attribute % (name.encode(), spec)))
        return self

    def build(self, end: bytes = b"%s") -> bytes:
        """The template; ``end`` follows the attributes (by default one placeholder for
        the element's end, which ``Format.close`` renders)."""
        if not self._parts or not self._parts[-1][0]:
            raise ValueError("a template must end with a mandatory attribute")
        # optional parts carry their own separator (Format.opt); mandatory ones get one here
        sep = self.fmt.separator
        body = b"".join(p + sep if mandatory else p for mandatory, p in self._parts)
        return self.fmt.open(self.tag) + body.removesuffix(sep) + end
