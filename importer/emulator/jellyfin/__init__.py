"""Emulated Jellyfin and Emby servers over a generated library.

What the real servers do, and where that is written down: ``shared/research/server-apis.md``
"JELLYFIN (and Emby)", the OpenAPI files in ``shared/reference/jellyfin``, and the Jellyfin
sources each module cites.

Listing order is fixed: per library, series in title order, then their seasons, then their
episodes (season and episode order); ``SortOrder=Descending`` reverses it. ``SortBy`` is
accepted and does not change it: Jellyfin cannot sort by id and its SortName order across a
whole library interleaves shows, so clients must not depend on the order anyway.

Pages are rendered from pre-encoded fragments (per server, per show, per season, per
distinct string) spliced into one string per item: no dict per item, no re-serialisation.

The modules:

- ``server``: the server classes, routes and version quirks (Emby's differences are
  :class:`EmbyServer`'s overrides).
- ``auth``: where a request carries its token. ``params``: query parameter binding.
- ``system``, ``users``, ``libraries``, ``items``: the endpoints.
- ``query``: the ``/Items`` query; ``listing``: what it lists, paged lazily.
- ``catalog``: libraries, item references and lookups by id.
- ``dto``: per-request rendering and the tables of optional properties; ``folders``:
  series, seasons and libraries; ``episodes``: the episode hot loop; ``media``: files and
  streams; ``pieces``: properties several kinds share; ``frags``: per-show pieces;
  ``people``: People, genres, studios and ratings; ``images``: image tags, own and inherited.
- ``values``, ``ids``: strings, dates, GUIDs and etags as the servers write them.

``EmbyServer(numeric_ids=True)`` writes Emby's own ids: numbers for items and people,
integers for studios and genres. A request line longer than ``Controls.url_limit`` (8192 by
default, Kestrel's) is a 414; ``Controls.people_cost_s`` charges each item rendered with
``People``.
"""

from importer.emulator.jellyfin.auth import parse_auth_parts
from importer.emulator.jellyfin.ids import jf_etag, last_round
from importer.emulator.jellyfin.server import EmbyServer, JellyfinServer, Route
from importer.emulator.jellyfin.values import jf_date, js_string, plain_string

__all__ = [
    "EmbyServer",
    "JellyfinServer",
    "Route",
    "jf_date",
    "jf_etag",
    "js_string",
    "last_round",
    "parse_auth_parts",
    "plain_string",
]
