"""An episode's files as Jellyfin describes them: paths, MediaSources, MediaStreams, and the
counts of parts and versions. What is constant per codec and resolution is encoded once."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final

import msgspec

from importer.emulator.jellyfin.ids import hex_id
from importer.emulator.library import Episode, MediaFile

if TYPE_CHECKING:
    from importer.emulator.jellyfin.server import JellyfinServer

_CODEC_PROFILE: Final = {"h264": "High", "hevc": "Main 10", "mpeg4": "Advanced Simple Profile"}
_AUDIO_LAYOUT: Final = {
    "aac": ("stereo", 2, 192_000),
    "eac3": ("5.1", 6, 640_000),
    "mp3": ("stereo", 2, 320_000),
}
_SOURCE_TAIL: Final = (
    ',"RequiredHttpHeaders":{},"TranscodingSubProtocol":"http",'
    '"DefaultAudioStreamIndex":1,"HasSegments":false}'
)


def path_json(server: JellyfinServer, path: str) -> str:
    """A path as JSON: its season folder part is escaped once and cached (a path repeats
    the show's title, which may be anything but ASCII)."""
    head, sep, tail = path.rpartition(" - S")
    if not sep:
        return server.escape(path)
    return server.escape(head)[:-1] + server.encode_string(sep + tail)[1:]


def media_sources(server: JellyfinServer, ep: Episode, item_id: str, first_path: str, etag: str) -> str:
    """One MediaSource per version, each pointing at the version's first part (a video
    with more parts says so with ``PartCount`` on the item). Missing episodes have none.
    ``first_path`` is the JSON of the first file's path, ``etag`` the item's."""
    files = ep.files
    if not files:
        return ',"MediaSources":[]'
    ticks = f',"RunTimeTicks":{ep.duration_ms * 10_000}' if ep.duration_ms else ""
    if len(files) == 1:
        return ',"MediaSources":[' + _media_source(files[0], item_id, first_path, ticks, etag) + "]"
    sources = []
    for f in files:
        if f.part_index:
            continue
        if f.media_index == 0:
            source_id, path = item_id, first_path
        else:  # an alternate version is an item of its own
            source_id, path = hex_id(f.media_key, 84, f.media_index), path_json(server, f.path)
        sources.append(_media_source(f, source_id, path, ticks, etag))
    return ',"MediaSources":[' + ",".join(sources) + "]"


def _media_source(f: MediaFile, source_id: str, path: str, ticks: str, etag: str) -> str:
    # Name: the file name without its extension (GetMediaSourceName), cut from the
    # already escaped path: escaping leaves "/" and "." alone.
    name = '"' + path[path.rindex("/") + 1 : path.rindex(".")] + '"'
    bitrate = f.size_bytes * 8000 // max(f.duration_ms, 1)
    middle = _source_middle(f.video_codec, f.audio_codec, f.width, f.height)
    return (
        f'{{"Protocol":"File","Id":"{source_id}","Path":{path},"Type":"Default","Container":"{f.container}"'
        f',"Size":{f.size_bytes},"Name":{name},"IsRemote":false,"ETag":"{etag}"{ticks}{middle}{bitrate}{_SOURCE_TAIL}'
    )


def media_streams(f: MediaFile) -> str:
    return ',"MediaStreams":' + _streams_json(f.video_codec, f.audio_codec, f.width, f.height)


def part_count(files: tuple[MediaFile, ...]) -> str:
    parts = sum(1 for f in files if f.media_index == 0)
    return f',"PartCount":{parts}' if parts > 1 else ""


def source_count(files: tuple[MediaFile, ...]) -> str:
    versions = len({f.media_index for f in files})
    return f',"MediaSourceCount":{versions}' if versions > 1 else ""


@functools.lru_cache(maxsize=256)
def _source_middle(vcodec: str, acodec: str, width: int, height: int) -> str:
    """The constant part of a MediaSource between RunTimeTicks and Bitrate."""
    return (
        ',"ReadAtNativeFramerate":false,"IgnoreDts":false,"IgnoreIndex":false,"GenPtsInput":false,'
        '"SupportsTranscoding":true,"SupportsDirectStream":true,"SupportsDirectPlay":true,'
        '"IsInfiniteStream":false,"UseMostCompatibleTranscodingProfile":false,"RequiresOpening":false,'
        '"RequiresClosing":false,"RequiresLooping":false,"SupportsProbing":true,"VideoType":"VideoFile",'
        f'"MediaStreams":{_streams_json(vcodec, acodec, width, height)},"MediaAttachments":[],"Formats":[],'
        '"Bitrate":'
    )


@functools.lru_cache(maxsize=256)
def _streams_json(vcodec: str, acodec: str, width: int, height: int) -> str:
    """The MediaStreams of a version: one video and one audio stream (constant per codec and
    resolution, so encoded once)."""
    label = "4K" if width >= 3840 else "1080p" if height >= 1080 else "720p" if height >= 720 else "480p"
    layout, channels, abitrate = _AUDIO_LAYOUT.get(acodec, ("stereo", 2, 192_000))
    video = {
        "Codec": vcodec,
        "TimeBase": "1/1000",
        "VideoRange": "SDR",
        "VideoRangeType": "SDR",
        "AudioSpatialFormat": "None",
        "DisplayTitle": f"{label} {vcodec.upper()} SDR",
        "IsInterlaced": False,
        "IsAVC": vcodec == "h264",
        "BitRate": 4_000_000 if width < 3840 else 16_000_000,
        "BitDepth": 10 if vcodec == "hevc" else 8,
        "RefFrames": 1,
        "IsDefault": True,
        "IsForced": False,
        "IsHearingImpaired": False,
        "Height": height,
        "Width": width,
        "AverageFrameRate": 23.976025,
        "RealFrameRate": 23.976025,
        "Profile": _CODEC_PROFILE.get(vcodec, "Main"),
        "Type": "Video",
        "AspectRatio": "16:9" if width * 9 == height * 16 else "3:2",
        "Index": 0,
        "IsExternal": False,
        "IsTextSubtitleStream": False,
        "SupportsExternalStream": False,
        "PixelFormat": "yuv420p10le" if vcodec == "hevc" else "yuv420p",
        "Level": 150 if vcodec == "hevc" else 41,
        "IsAnamorphic": False,
    }
    audio = {
        "Codec": acodec,
        "Language": "eng",
        "TimeBase": "1/1000",
        "VideoRange": "Unknown",
        "VideoRangeType": "Unknown",
        "AudioSpatialFormat": "None",
        "LocalizedDefault": "Default",
        "LocalizedExternal": "External",
        "DisplayTitle": f"English - {acodec.upper()} - {layout} - Default",
        "IsInterlaced": False,
        "IsAVC": False,
        "ChannelLayout": layout,
        "BitRate": abitrate,
        "Channels": channels,
        "SampleRate": 48000,
        "IsDefault": True,
        "IsForced": False,
        "IsHearingImpaired": False,
        "Type": "Audio",
        "Index": 1,
        "IsExternal": False,
        "IsTextSubtitleStream": False,
        "SupportsExternalStream": False,
        "Level": 0,
    }
    return msgspec.json.encode([video, audio]).decode()
