"""``/System/Info`` and ``/System/Info/Public``: what the server says it is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from importer.emulator.jellyfin.params import QueryParams
from importer.emulator.jellyfin.responses import encoded

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer


def public_info(server: JellyfinServer, request: web.Request) -> dict[str, object]:
    return {
        "LocalAddress": f"{request.scheme}://{request.host}{server.base_path}",
        "ServerName": server.server_name,
        "Version": server.version_string(),
        "ProductName": server.product_name,
        "OperatingSystem": "",
        "Id": server.server_id,
        "StartupWizardCompleted": True,
    }


def get_public_info(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    return encoded(public_info(server, request))


def get_system_info(
    server: JellyfinServer, request: web.Request, args: dict[str, str], q: QueryParams
) -> web.Response:
    info = public_info(server, request)
    info.update(
        {
            "OperatingSystemDisplayName": "Linux",
            "PackageName": "importer-emulator",
            "HasPendingRestart": False,
            "IsShuttingDown": False,
            "SupportsLibraryMonitor": True,
            "WebSocketPortNumber": request.url.port or 8096,
            "CompletedInstallations": [],
            "CanSelfRestart": True,
            "CanLaunchWebBrowser": False,
            "ProgramDataPath": "/config",
            "WebPath": "/usr/share/jellyfin/web",
            "ItemsByNamePath": "/config/metadata",
            "CachePath": "/cache",
            "LogPath": "/config/log",
            "InternalMetadataPath": "/config/metadata",
            "TranscodingTempPath": "/cache/transcodes",
            "CastReceiverApplications": [],
            "HasUpdateAvailable": False,
            "EncoderLocation": "System",
            "SystemArchitecture": "X64",
        }
    )
    return encoded(info)
