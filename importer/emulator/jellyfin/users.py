"""The one user, its endpoints (``/Users``, ``/Users/{id}``, ``/Users/Me``), and whether a
request has a user at all.

An API key has no user of its own: ``/Users/Me`` is a 400 for it, and a request has a user
only when it names ours with a ``userId``. A user's token (``login``) is its user's:
``/Users/Me`` answers that user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from aiohttp import web

from importer.emulator.jellyfin.ids import normalize_guid
from importer.emulator.jellyfin.params import QueryParams
from importer.emulator.jellyfin.responses import NotFound, encoded, not_found, problem
from importer.emulator.jellyfin.values import jf_date
from importer.emulator.server import session_of

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer

_AUTH_PROVIDER: Final = "Jellyfin.Server.Implementations.Users.DefaultAuthenticationProvider"
_RESET_PROVIDER: Final = "Jellyfin.Server.Implementations.Users.DefaultPasswordResetProvider"


def request_user(server: JellyfinServer, user_id: str | None) -> bool:
    """Whether the request has a user: a ``userId`` (query or path) naming ours. An unknown
    user id raises :class:`NotFound`."""
    if user_id is None or user_id == "":
        return False
    if normalize_guid(user_id) != server.user_id:
        raise NotFound
    return True


def get_users(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    return encoded([user_dto(server)])


def get_user(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    if normalize_guid(args["userId"]) != server.user_id:
        return not_found()
    return encoded(user_dto(server))


def get_me(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    session = session_of(request)
    if session is not None and session.user is not None:
        from importer.emulator.jellyfin.login import user_named

        return encoded(user_named(server, session.user))
    # UserController.GetCurrentUser: "400: Token is not owned by a user".
    return problem(400, "Bad Request")


def user_dto(server: JellyfinServer) -> dict[str, object]:
    return {
        "Name": server.user_name,
        "ServerId": server.server_id,
        "Id": server.user_id,
        "HasPassword": True,
        "HasConfiguredPassword": True,
        "HasConfiguredEasyPassword": False,
        "EnableAutoLogin": False,
        "LastLoginDate": jf_date(1_735_000_000, 1234567),
        "LastActivityDate": jf_date(1_735_000_100, 7654321),
        "Configuration": {
            "AudioLanguagePreference": "",
            "PlayDefaultAudioTrack": True,
            "SubtitleLanguagePreference": "",
            "DisplayMissingEpisodes": False,
            "GroupedFolders": [],
            "SubtitleMode": "Default",
            "DisplayCollectionsView": False,
            "EnableLocalPassword": False,
            "OrderedViews": [],
            "LatestItemsExcludes": [],
            "MyMediaExcludes": [],
            "HidePlayedInLatest": True,
            "RememberAudioSelections": True,
            "RememberSubtitleSelections": True,
            "EnableNextEpisodeAutoPlay": True,
        },
        "Policy": {
            "IsAdministrator": True,
            "IsHidden": False,
            "EnableCollectionManagement": True,
            "EnableSubtitleManagement": True,
            "EnableLyricManagement": True,
            "IsDisabled": False,
            "BlockedTags": [],
            "AllowedTags": [],
            "EnableUserPreferenceAccess": True,
            "AccessSchedules": [],
            "BlockUnratedItems": [],
            "EnableRemoteControlOfOtherUsers": True,
            "EnableSharedDeviceControl": True,
            "EnableRemoteAccess": True,
            "EnableLiveTvManagement": True,
            "EnableLiveTvAccess": True,
            "EnableMediaPlayback": True,
            "EnableAudioPlaybackTranscoding": True,
            "EnableVideoPlaybackTranscoding": True,
            "EnablePlaybackRemuxing": True,
            "ForceRemoteSourceTranscoding": False,
            "EnableContentDeletion": True,
            "EnableContentDeletionFromFolders": [],
            "EnableContentDownloading": True,
            "EnableSyncTranscoding": True,
            "EnableMediaConversion": True,
            "EnabledDevices": [],
            "EnableAllDevices": True,
            "EnabledChannels": [],
            "EnableAllChannels": True,
            "EnabledFolders": [],
            "EnableAllFolders": True,
            "InvalidLoginAttemptCount": 0,
            "LoginAttemptsBeforeLockout": -1,
            "MaxActiveSessions": 0,
            "EnablePublicSharing": True,
            "BlockedMediaFolders": [],
            "BlockedChannels": [],
            "RemoteClientBitrateLimit": 0,
            "AuthenticationProviderId": _AUTH_PROVIDER,
            "PasswordResetProviderId": _RESET_PROVIDER,
            "SyncPlayAccess": "CreateAndJoinGroups",
        },
    }
