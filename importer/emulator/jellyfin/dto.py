"""What one request renders, and tables that say which properties an item kind writes.

A BaseItemDto carries a fixed set of properties and the others only when asked for with
``Fields`` (``DtoService.AttachBasicFields``); images only with ``EnableImages``, and
``UserData`` only for a user. An item kind is a :class:`DtoTable`: its properties in
DtoService's order, each behind the gate that writes it. Per set of gates the table turns
into one %-template: the fixed JSON folded in, a ``%s`` per property taken from the item,
so a property that was not asked for costs nothing per item.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from importer.emulator.jellyfin.params import QueryParams

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer

SUPPORTED_FIELDS: Final = frozenset(
    {
        "CanDelete",
        "CanDownload",
        "ChildCount",
        "Chapters",
        "DateCreated",
        "Etag",
        "ExternalUrls",
        "Genres",
        "MediaSourceCount",
        "MediaSources",
        "MediaStreams",
        "Overview",
        "ParentId",
        "Path",
        "People",
        "PrimaryImageAspectRatio",
        "ProviderIds",
        "RecursiveItemCount",
        "RemoteTrailers",
        "SortName",
        "Studios",
        "Taglines",
        "Tags",
    }
)
_FIELD_BY_LOWER: Final = {f.lower(): f for f in SUPPORTED_FIELDS}
#: ImageType names as ASP.NET binds enums: case-insensitively
_IMAGE_TYPES: Final = {t.lower(): t for t in ("Primary", "Art", "Backdrop", "Banner", "Logo", "Thumb")}

#: Gates besides the Fields values (which no client can spell with these signs).
IMAGES: Final = "+images"
NO_IMAGES: Final = "-images"
USER: Final = "+user"
NULL_GUIDS: Final = "+null-guids"  # the server writes an empty Guid? as null (Jellyfin, not Emby)


class Renderer:
    """Renders items of one request: which fields, images and user data it asked for."""

    def __init__(
        self,
        server: JellyfinServer,
        fields: frozenset[str],
        images: bool,
        user: bool,
        image_types: frozenset[str] | None = None,
        image_limit: int | None = None,
    ) -> None:
        self.server = server
        self.fields = fields
        self.images = images
        self.user = user
        #: EnableImageTypes (None: every type) and ImageTypeLimit (None: no limit)
        self.image_types = image_types
        self.image_limit = image_limit
        switches = {IMAGES if images else NO_IMAGES}
        if user:
            switches.add(USER)
        if server.null_guids:
            switches.add(NULL_GUIDS)
        self.gates = fields | switches
        self.people_items = 0  # items rendered with People (charged extra)

    def fixed(self, *props: Prop[object]) -> str:
        """The JSON of fixed properties, those of them this request writes: the runs that the
        episode loop splices between the values that vary."""
        out = []
        for prop in props:
            if not isinstance(prop.json, str):
                raise TypeError(f"{prop} varies per item")
            if prop.applies(self.gates):
                out.append(prop.json)
        return "".join(out)


def renderer(server: JellyfinServer, q: QueryParams, *, all_fields: bool, user: bool) -> Renderer:
    """The renderer of a request; ``all_fields`` where Jellyfin uses ``new DtoOptions()``
    (single items, views), ``user`` where the request has one."""
    if all_fields:
        fields = SUPPORTED_FIELDS
    else:
        fields = frozenset(
            _FIELD_BY_LOWER[f.lower()] for f in q.csv("Fields") if f.lower() in _FIELD_BY_LOWER
        )
    images = q.flag("EnableImages")
    user_data = q.flag("EnableUserData")
    types = q.csv("EnableImageTypes")
    limit = q.int("ImageTypeLimit")
    return Renderer(
        server,
        fields,
        images is not False,
        user and user_data is not False,
        frozenset(_IMAGE_TYPES.get(t.lower(), t) for t in types) if types else None,
        None if limit is None else max(limit, 0),
    )


Item_contra = TypeVar("Item_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class Prop(Generic[Item_contra]):
    """A property of a BaseItemDto (or a run of them): the gate that writes it (a Fields
    value, IMAGES, NO_IMAGES or USER; None for always) and its JSON, fixed or the item's."""

    gate: str | None
    json: str | Callable[[Renderer, Item_contra], str]

    def applies(self, gates: frozenset[str]) -> bool:
        return self.gate is None or self.gate in gates


def always(json: str | Callable[[Renderer, Item_contra], str]) -> Prop[Item_contra]:
    return Prop(None, json)


class _Template(Generic[Item_contra]):
    def __init__(self, props: tuple[Prop[Item_contra], ...], gates: frozenset[str]) -> None:
        text: list[str] = []
        values: list[Callable[[Renderer, Item_contra], str]] = []
        for prop in props:
            if not prop.applies(gates):
                continue
            if isinstance(prop.json, str):
                text.append(prop.json.replace("%", "%%"))
            else:
                text.append("%s")
                values.append(prop.json)
        self.text = "".join(text)
        self.values = tuple(values)

    def render(self, r: Renderer, item: Item_contra) -> str:
        return self.text % tuple([value(r, item) for value in self.values])


class DtoTable(Generic[Item_contra]):
    """The properties of one item kind, in DtoService's order."""

    def __init__(self, *props: Prop[Item_contra]) -> None:
        self.props = props
        self._templates: dict[frozenset[str], _Template[Item_contra]] = {}

    def template(self, gates: frozenset[str]) -> _Template[Item_contra]:
        got = self._templates.get(gates)
        if got is None:
            if len(self._templates) >= 256:  # clients name few distinct field sets
                self._templates.clear()
            got = self._templates[gates] = _Template(self.props, gates)
        return got
