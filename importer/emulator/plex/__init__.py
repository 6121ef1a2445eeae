"""An emulated Plex Media Server over generated TV libraries.

It answers the requests a library importer and python-plexapi make, with the shapes
and quirks recorded from real servers (``shared/research/server-apis.md``, "PLEX";
``shared/reference/plex/``):

- XML by default, JSON with ``Accept: application/json``; every endpoint renders both;
- ids are strings on items but numbers where the container hoists them;
- ``X-Plex-Container-Start``/``-Size`` as headers or query arguments; sizes above 1000
  are clamped, ``controls.page_cap`` caps lower still, size 0 returns the count alone,
  and ``/library/sections/{id}/all`` without a size is a 400;
- episodes of shows with hidden seasons carry no ``parentRatingKey``/``parentKey``;
- legacy-agent items have a ``com.plexapp.agents.*`` guid and never a ``Guid[]``;
- a double episode is two items that share one Media and Part;
- listings cut tags short (3 ``Role``, 2 ``Genre``, 1 ``Director``, 2 ``Writer``, each
  ``{tag}`` only); ``/library/metadata/{ids}`` carries them whole (``tags``);
- a URL longer than ``Controls.url_limit`` (4096 by default) is a 400.

Pages of a million-episode library are rendered from per-season byte templates (show
and season constants escaped once, per-episode values spliced in with ``%``): no
per-item dicts, no generic serialiser in the hot path.

The modules, from the request inwards: ``server`` (routes and handlers), ``query``
(what a request asks for), ``selection`` (which items a listing holds), ``sections``
(sections, keys, per-show values), ``documents``, ``containers`` and ``meta`` (answers
and container heads), ``items``, ``episodes`` and ``media`` (the items), ``template``
and ``formats`` (JSON and XML), ``memo`` (bounded caches).
"""

from importer.emulator.plex.containers import IDENTIFIER, MEDIA_TAG_PREFIX, MEDIA_TAG_VERSION
from importer.emulator.plex.documents import VERSION
from importer.emulator.plex.formats import JSON, XML, Attrs, Format, Group, JsonFormat, Scalar, XmlFormat
from importer.emulator.plex.items import Renderer
from importer.emulator.plex.query import (
    EPISODE,
    MAX_PAGE,
    MISSING_SIZE,
    SEASON,
    SHOW,
    BadRequest,
    Filter,
    Options,
    Page,
    Query,
    parse_filters,
    parse_sort,
)
from importer.emulator.plex.sections import Section, ShowInfo
from importer.emulator.plex.server import PlexServer
from importer.emulator.plex.template import Template

__all__ = [
    "EPISODE",
    "IDENTIFIER",
    "JSON",
    "MAX_PAGE",
    "MEDIA_TAG_PREFIX",
    "MEDIA_TAG_VERSION",
    "MISSING_SIZE",
    "SEASON",
    "SHOW",
    "VERSION",
    "XML",
    "Attrs",
    "BadRequest",
    "Filter",
    "Format",
    "Group",
    "JsonFormat",
    "Options",
    "Page",
    "PlexServer",
    "Query",
    "Renderer",
    "Scalar",
    "Section",
    "ShowInfo",
    "Template",
    "XmlFormat",
    "parse_filters",
    "parse_sort",
]
