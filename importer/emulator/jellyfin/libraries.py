"""The libraries as their endpoints list them: ``/Library/VirtualFolders`` (the admin's
view, with library options), ``/Library/MediaFolders`` and a user's ``/UserViews``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from importer.emulator.jellyfin.catalog import Folder
from importer.emulator.jellyfin.dto import renderer
from importer.emulator.jellyfin.folders import render_library
from importer.emulator.jellyfin.params import QueryParams
from importer.emulator.jellyfin.responses import encoded, not_found
from importer.emulator.jellyfin.users import request_user

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer


def get_virtual_folders(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    return encoded([virtual_folder(f) for f in server.folders])


def get_media_folders(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    r = renderer(server, q, all_fields=False, user=False)
    items = [render_library(r, f) for f in server.folders]
    return server.query_result(items, len(items), 0)


def get_user_views(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    # UserViewsController: the user comes from the path, the query or the token; an API
    # key has none, and GetUserById(Guid.Empty) throws ResourceNotFoundException.
    if not request_user(server, args.get("userId") or q.get("userId")):
        return not_found()
    r = renderer(server, q, all_fields=True, user=True)
    items = [render_library(r, f) for f in server.folders]
    return server.query_result(items, len(items), 0)


def virtual_folder(folder: Folder) -> dict[str, object]:
    return {
        "Name": folder.name,
        "Locations": [folder.path],
        "CollectionType": folder.collection_type,
        "LibraryOptions": {
            "Enabled": True,
            "EnablePhotos": True,
            "EnableRealtimeMonitor": True,
            "EnableLUFSScan": True,
            "EnableChapterImageExtraction": False,
            "ExtractChapterImagesDuringLibraryScan": False,
            "EnableTrickplayImageExtraction": False,
            "ExtractTrickplayImagesDuringLibraryScan": False,
            "PathInfos": [{"Path": folder.path}],
            "SaveLocalMetadata": False,
            "EnableInternetProviders": True,
            "EnableAutomaticSeriesGrouping": False,
            "EnableEmbeddedTitles": False,
            "EnableEmbeddedExtrasTitles": False,
            "EnableEmbeddedEpisodeInfos": False,
            "AutomaticRefreshIntervalDays": 0,
            "PreferredMetadataLanguage": "en",
            "MetadataCountryCode": "US",
            "SeasonZeroDisplayName": "Specials",
            "MetadataSavers": [],
            "DisabledLocalMetadataReaders": [],
            "LocalMetadataReaderOrder": ["Nfo"],
            "DisabledSubtitleFetchers": [],
            "SubtitleFetcherOrder": [],
            "DisabledMediaSegmentProviders": [],
            "SkipSubtitlesIfEmbeddedSubtitlesPresent": False,
            "SkipSubtitlesIfAudioTrackMatches": False,
            "SubtitleDownloadLanguages": [],
            "RequirePerfectSubtitleMatch": True,
            "SaveSubtitlesWithMedia": True,
            "SaveLyricsWithMedia": False,
            "SaveTrickplayWithMedia": False,
            "DisabledLyricFetchers": [],
            "LyricFetcherOrder": [],
            "PreferNonstandardArtistsTag": False,
            "UseCustomTagDelimiters": False,
            "CustomTagDelimiters": ["/", "|", ";", "\\"],
            "DelimiterWhitelist": [],
            "AutomaticallyAddToCollection": False,
            "AllowEmbeddedSubtitles": "AllowAll",
            "TypeOptions": [],
        },
        "ItemId": folder.id,
        "PrimaryImageItemId": folder.id,
        "RefreshStatus": "Idle",
    }
