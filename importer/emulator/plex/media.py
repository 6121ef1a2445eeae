"""An episode's ``Media`` group: its versions and their file parts, from templates made
once per codec combination."""

from __future__ import annotations

from typing import NamedTuple

from importer.emulator.library import MediaFile
from importer.emulator.plex.formats import Format
from importer.emulator.plex.memo import Memo
from importer.emulator.plex.template import Template

#: (container, video codec, audio codec, width, height): ``MediaFile[4:9]``
Codecs = tuple[str, str, str, int, int]


class _Stream(NamedTuple):
    """What Plex derives from a file's codecs and height."""

    resolution: str
    aspect: float
    frame_rate: str
    video_profile: str
    audio_channels: int
    audio_profile: str | None


def _stream(vcodec: str, acodec: str, height: int) -> _Stream:
    return _Stream(
        resolution={2160: "4k", 1080: "1080", 720: "720"}.get(height, "480"),
        aspect=1.33 if height == 480 else 1.78,
        frame_rate="NTSC" if height == 480 else "24p",
        video_profile={"h264": "high", "hevc": "main 10", "mpeg4": "advanced simple"}.get(vcodec, "main"),
        audio_channels=6 if acodec in ("eac3", "ac3", "dca") else 2,
        audio_profile="lc" if acodec == "aac" else None,
    )


class MediaRenderer:
    """Renders ``Media`` groups of one section in one format."""

    def __init__(self, fmt: Format, media_offset: int) -> None:
        self.fmt = fmt
        self.offset = media_offset
        self._single: Memo[Codecs, bytes] = Memo(self._single_template)
        self._multi: Memo[Codecs, tuple[bytes, bytes]] = Memo(
            lambda c: (self._media_template(c).build(fmt.close("Media", b"%s")), self._part_template(c))
        )

    def render(self, files: tuple[MediaFile, ...]) -> bytes:
        """One element per version, each with its parts. The common case (one version,
        one part) is one ``%`` on a template with both. The two slots of a double episode
        pass the same file, so they show the same Media and Part ids."""
        off = self.offset
        if len(files) == 1:
            f = files[0]
            duration = f.duration_ms
            part = f.part_key + off
            return self._single[f[4:9]] % (
                f.media_key + off,
                duration,
                f.size_bytes * 8 // max(duration, 1),  # kbit/s
                part,
                part,
                duration,
                self.fmt.inner(f.path),
                f.size_bytes,
            )
        versions: dict[int, list[MediaFile]] = {}
        for f in files:
            versions.setdefault(f.media_index, []).append(f)
        fmt = self.fmt
        items = []
        for parts in versions.values():
            first = parts[0]
            media_tpl, part_tpl = self._multi[first[4:9]]
            rendered = [
                part_tpl
                % (p.part_key + off, p.part_key + off, p.duration_ms, fmt.inner(p.path), p.size_bytes)
                for p in parts
            ]
            duration = sum(p.duration_ms for p in parts)
            size = sum(p.size_bytes for p in parts)
            items.append(
                media_tpl
                % (first.media_key + off, duration, size * 8 // max(duration, 1), fmt.group("Part", rendered))
            )
        return fmt.group("Media", items)

    def _single_template(self, codecs: Codecs) -> bytes:
        """The whole group of one version with one part (values: media id, duration,
        bitrate, then the Part's)."""
        fmt = self.fmt
        part = fmt.group("Part", [self._part_template(codecs)])
        return fmt.group("Media", [self._media_template(codecs).build(fmt.close("Media", part))])

    def _media_template(self, codecs: Codecs) -> Template:
        """A Media element's attributes (values: id, duration, bitrate)."""
        container, vcodec, acodec, width, height = codecs
        s = _stream(vcodec, acodec, height)
        t = Template(self.fmt, "Media").number("id").number("duration").number("bitrate")
        t.const("width", width).const("height", height).const("aspectRatio", s.aspect)
        t.const("audioChannels", s.audio_channels).const("audioCodec", acodec)
        t.const("videoCodec", vcodec).const("videoResolution", s.resolution)
        t.const("container", container).const("videoFrameRate", s.frame_rate)
        t.const("audioProfile", s.audio_profile).const("videoProfile", s.video_profile)
        return t

    def _part_template(self, codecs: Codecs) -> bytes:
        """A Part element, complete (values: id, id, duration, file, size). Its key's middle
        number is a change stamp: one for every file is enough here."""
        container, vcodec, acodec, _, height = codecs
        s = _stream(vcodec, acodec, height)
        t = Template(self.fmt, "Part").number("id")
        t.quoted("key", "/library/parts/", b"%d", f"/1700000000/file.{container}")
        t.number("duration").text("file").number("size").const("audioProfile", s.audio_profile)
        t.const("container", container).const("videoProfile", s.video_profile)
        return t.build(self.fmt.close("Part", b""))
