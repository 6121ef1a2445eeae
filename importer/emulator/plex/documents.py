"""The server-level answers, which list no items: the server (``/``, ``/identity``), the
library root, its sections and one section's menu of listings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from importer.emulator.plex.containers import IDENTIFIER, MEDIA_TAG_PREFIX, MEDIA_TAG_VERSION, section_art
from importer.emulator.plex.formats import Attrs, Format, Scalar
from importer.emulator.plex.sections import Heading, Section

VERSION: Final = "1.41.3.9314-a0bfb8370"

_AGENTS: Final = {
    "show": ("tv.plex.agents.series", "Plex TV Series"),
    "movie": ("tv.plex.agents.movie", "Plex Movie"),
}


def _directories(fmt: Format, entries: Iterable[tuple[str, str]]) -> list[bytes]:
    return [fmt.element("Directory", [("key", k), ("title", t)]) for k, t in entries]


def root(fmt: Format, name: str, machine_identifier: str, now: int) -> bytes:
    """``/``: what python-plexapi's PlexServer reads (home-assistant plex_server_base.xml)."""
    keys = "activities butler channels clients diagnostics hubs library media metadata playlists search"
    keys += " server servers statistics system"
    dirs = [fmt.element("Directory", [("count", 1), ("key", k), ("title", k)]) for k in keys.split()]
    pairs: Attrs = [
        ("size", len(dirs)),
        ("allowCameraUpload", False),
        ("allowChannelAccess", True),
        ("allowMediaDeletion", True),
        ("allowSharing", True),
        ("allowSync", True),
        ("allowTuners", False),
        ("backgroundProcessing", True),
        ("certificate", False),
        ("companionProxy", True),
        ("countryCode", "usa"),
        ("diagnostics", "logs,databases,streaminglogs"),
        ("eventStream", True),
        ("friendlyName", name),
        ("hubSearch", True),
        ("itemClusters", True),
        ("livetv", 7),
        ("machineIdentifier", machine_identifier),
        ("mediaProviders", True),
        ("multiuser", True),
        ("myPlex", True),
        ("myPlexMappingState", "mapped"),
        ("myPlexSigninState", "ok"),
        ("myPlexSubscription", False),
        ("myPlexUsername", "emulator@example.invalid"),
        ("offlineTranscode", 1),
        ("ownerFeatures", "collections,content_filter,federated-auth,home,item_clusters,webhooks"),
        ("platform", "Linux"),
        ("platformVersion", "6.1.0"),
        ("pluginHost", True),
        ("pushNotifications", False),
        ("readOnlyLibraries", False),
        ("streamingBrainABRVersion", 3),
        ("streamingBrainVersion", 2),
        ("sync", True),
        ("transcoderActiveVideoSessions", 0),
        ("transcoderAudio", True),
        ("transcoderLyrics", True),
        ("transcoderPhoto", True),
        ("transcoderSubtitles", True),
        ("transcoderVideo", True),
        ("transcoderVideoBitrates", "64,96,208,320,720,1500,2000,3000,4000,8000,10000,12000,20000"),
        ("transcoderVideoQualities", "0,1,2,3,4,5,6,7,8,9,10,11,12"),
        ("transcoderVideoResolutions", "128,128,160,240,320,480,768,720,720,1080,1080,1080,1080"),
        ("updatedAt", now),
        ("updater", True),
        ("version", VERSION),
        ("voiceSearch", True),
    ]
    return fmt.document(pairs, [("Directory", dirs)])


def identity(fmt: Format, machine_identifier: str) -> bytes:
    pairs: Attrs = [
        ("size", 0),
        ("claimed", True),
        ("machineIdentifier", machine_identifier),
        ("version", VERSION),
    ]
    return fmt.document(pairs, [])


def library(fmt: Format) -> bytes:
    dirs = _directories(
        fmt,
        (
            ("sections", "Library Sections"),
            ("recentlyAdded", "Recently Added Content"),
            ("onDeck", "On Deck Content"),
        ),
    )
    pairs: Attrs = [
        ("size", len(dirs)),
        ("allowSync", False),
        ("art", "/:/resources/library-art.png"),
        ("content", ""),
        ("identifier", IDENTIFIER),
        ("mediaTagPrefix", MEDIA_TAG_PREFIX),
        ("mediaTagVersion", MEDIA_TAG_VERSION),
        ("title1", "Plex Library"),
        ("title2", ""),
    ]
    return fmt.document(pairs, [("Directory", dirs)])


def sections(fmt: Format, movies: Heading, tv: Iterable[Section]) -> bytes:
    """``/library/sections``: the TV sections after an empty Movies section."""
    dirs = [
        _section(fmt, movies, updated=1_730_000_000, scanned=1_730_000_000, changed=1, path="/data/Movies")
    ]
    for sec in tv:
        shows = sec.library.shows
        updated = max((s.updated_at for s in shows), default=0)
        added = max((s.added_at for s in shows), default=0)
        dirs.append(
            _section(
                fmt,
                sec.heading,
                updated=updated,
                scanned=max(updated, added),
                changed=sec.max_key,  # looks like a change counter in real answers
                path=f"/data/TV/{sec.title}" if sec.key > 2 else "/data/TV",
            )
        )
    # as watchstate's recorded sections_get_200
    pairs: Attrs = [("size", len(dirs)), ("allowSync", False), ("title1", "Plex Library")]
    return fmt.document(pairs, [("Directory", dirs)])


def _section(fmt: Format, head: Heading, *, updated: int, scanned: int, changed: int, path: str) -> bytes:
    art, thumb = section_art(head.kind)
    agent, scanner = _AGENTS[head.kind]
    pairs: list[tuple[str, Scalar | None]] = [
        ("allowSync", True),
        ("art", art),
        ("composite", f"/library/sections/{head.key}/composite/{scanned}"),
        ("filters", True),
        ("refreshing", False),
        ("thumb", thumb),
        ("key", str(head.key)),
        ("type", head.kind),
        ("title", head.title),
        ("agent", agent),
        ("scanner", scanner),
        ("language", "en-US"),
        ("uuid", head.uuid),
        ("updatedAt", updated),
        ("createdAt", 1_600_000_000),
        ("scannedAt", scanned),
        ("content", True),
        ("directory", True),
        ("contentChangedAt", changed),
        ("hidden", 0),  # an int in the recorded answers, though the spec says boolean
    ]
    location = fmt.element("Location", [("id", head.key), ("path", path)])
    return fmt.element("Directory", pairs, [("Location", [location])])


def section_menu(fmt: Format, head: Heading) -> bytes:
    """``/library/sections/{id}``: the section's menu of listings."""
    art, thumb = section_art(head.kind)
    dirs = _directories(
        fmt,
        (
            ("all", "All Shows" if head.kind == "show" else "All Movies"),
            ("unwatched", "Unplayed"),
            ("newest", "Recently Released"),
            ("recentlyAdded", "Recently Added"),
            ("onDeck", "On Deck"),
            ("collection", "By Collection"),
            ("firstCharacter", "By Starting Letter"),
            ("folder", "By Folder"),
        ),
    )
    pairs: Attrs = [
        ("size", len(dirs)),
        ("allowSync", True),
        ("art", art),
        ("content", "secondary"),
        ("identifier", IDENTIFIER),
        ("librarySectionID", head.key),
        ("mediaTagPrefix", MEDIA_TAG_PREFIX),
        ("mediaTagVersion", MEDIA_TAG_VERSION),
        ("thumb", thumb),
        ("title1", head.title),
        ("viewGroup", "secondary"),
        ("viewMode", 65592),
    ]
    return fmt.document(pairs, [("Directory", dirs)])
