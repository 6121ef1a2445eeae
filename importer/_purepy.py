"""The pure-Python twin of the C extension ``importer._speedups``.

Same functions, same results, same errors: the tests compare the two on random and
hostile input. Used where no compiler was available at install time, or when
``IMPORTER_PURE_PYTHON=1``.
"""

from __future__ import annotations

from typing import Any

import msgspec
import xxhash

#: a row: a tuple in column order (importer/rows.py; not imported, to keep this standalone)
Row = tuple[Any, ...]

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(y: int, m: int) -> int:
    if m == 2 and ((y % 4 == 0 and y % 100 != 0) or y % 400 == 0):
        return 29
    return _DAYS[m - 1]


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _digits(s: str, pos: int, n: int) -> int:
    """Exactly n ASCII digits at s[pos:], or -1."""
    part = s[pos : pos + n]
    if len(part) != n or not all("0" <= c <= "9" for c in part):
        return -1
    return int(part)


def _parse(s: str) -> int | None:
    n = len(s)
    y = _digits(s, 0, 4)
    if y < 1 or n < 10 or s[4] != "-" or s[7] != "-":
        return None
    mo = _digits(s, 5, 2)
    if not 1 <= mo <= 12:
        return None
    d = _digits(s, 8, 2)
    if not 1 <= d <= _days_in_month(y, mo):
        return None
    h = mi = sec = offset = 0
    p = 10
    if p < n:
        if s[p] not in "T ":
            return None
        h, mi, sec = _digits(s, 11, 2), _digits(s, 14, 2), _digits(s, 17, 2)
        if n < 19 or s[13] != ":" or s[16] != ":" or not (0 <= h <= 23 and 0 <= mi <= 59 and 0 <= sec <= 59):
            return None
        p = 19
        if p < n and s[p] == ".":
            p += 1
            start = p
            while p < n and "0" <= s[p] <= "9":
                p += 1
            if p == start or p - start > 9:
                return None
        if p < n:
            z = s[p]
            p += 1
            if z in "+-":
                oh = _digits(s, p, 2)
                if not 0 <= oh <= 23:
                    return None
                p += 2
                if p < n and s[p] == ":":
                    p += 1
                om = _digits(s, p, 2)
                if not 0 <= om <= 59:
                    return None
                p += 2
                offset = (oh * 3600 + om * 60) * (-1 if z == "-" else 1)
            elif z != "Z":
                return None
        if p != n:
            return None
    return _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset


def parse_timestamp(value: str | None, /) -> int | None:
    """Unix seconds (UTC) of an ISO 8601 date or date-time; see the C docstring."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"timestamp must be str or None, not {type(value).__name__}")
    value.encode("utf-8")  # lone surrogates raise UnicodeEncodeError, as in C
    out = _parse(value)
    if out is None:
        raise ValueError(f"invalid timestamp: {value!r}")
    return out


# ----------------------------------------------------------------------------- etags

_ENCODE = msgspec.msgpack.Encoder().encode


def content_etag(value: Any, /) -> str:
    """xxh3_64 hex digest of the msgpack encoding of ``value``; see the C docstring."""
    return xxhash.xxh3_64_hexdigest(_ENCODE(value))


def _as_id(value: Any) -> Any:
    return value if value.__class__ is str else str(value)


# ----------------------------------------------------------------------------- Plex rows


def plex_external_ids(guids: Any) -> tuple[Any, Any, Any]:
    """(imdb, tmdb, tvdb) from ``Guid[]`` entries such as ``imdb://tt0944947``."""
    imdb = tmdb = tvdb = None
    for g in guids:
        value = g.id
        if value.startswith("imdb://"):
            imdb = value[7:]
        elif value.startswith("tmdb://"):
            tmdb = value[7:]
        elif value.startswith("tvdb://"):
            tvdb = value[7:]
    return imdb, tmdb, tvdb


def plex_episode_rows(items: Any, expected_type: str, /) -> tuple[list[Row], list[Row], list[str], Any]:
    """(rows, files, ids, bad_type) of a Plex episodes page; see the C docstring."""
    rows: list[Row] = []
    files: list[Row] = []
    ids: list[str] = []
    for e in list(items):
        if e.type is not None and e.type != expected_type:
            return rows, files, ids, e.type
        eid = _as_id(e.rating_key)
        # One file row per Media x Part. A double episode is two episodes whose Media
        # point at the same Part: each episode gets its own row for it.
        own: list[Row] = []
        for mi, m in enumerate(list(e.media)):
            parts = list(m.parts)
            single = len(parts) == 1
            for pi, p in enumerate(parts):
                own.append(
                    (
                        eid, _as_id(p.id), mi, pi, p.file, p.size,
                        p.container or m.container, m.video_codec, m.audio_codec,
                        m.width, m.height,
                        # a part's own duration; the Media's only when it is the one part
                        p.duration if p.duration is not None or not single else m.duration,
                    )
                )  # fmt: skip
        imdb, tmdb, tvdb = plex_external_ids(e.guids) if e.guids else (None, None, None)
        show = e.grandparent_rating_key
        season = e.parent_rating_key  # absent on shows with hidden seasons
        row = (
            eid,
            None if show is None else _as_id(show),
            None if season is None else _as_id(season),
            e.guid, e.parent_index, e.index,
            None,  # episode_number_end: Plex lists a double episode as two episodes
            e.title, e.summary, e.originally_available_at, e.duration,
            imdb, tmdb, tvdb, e.added_at, e.updated_at,
        )  # fmt: skip
        rows.append((*row, content_etag((row, own))))
        files += own
        ids.append(eid)
    return rows, files, ids, None


# ----------------------------------------------------------------------------- Jellyfin rows

#: Jellyfin's "0001-01-01T00:00:00..." (DateTime.MinValue) means "no date".
_NO_DATE = "0001-01-01"


def _jellyfin_seconds(value: Any) -> int | None:
    if value is None or value.startswith(_NO_DATE):
        return None
    return parse_timestamp(value)


def _jellyfin_day(value: Any) -> str | None:
    """``YYYY-MM-DD`` of a premiere date (stored by Jellyfin at midnight UTC)."""
    if value is None or value.startswith(_NO_DATE):
        return None
    parse_timestamp(value)  # validates the whole value
    return str(value[:10])


def _jellyfin_files(episode_id: Any, sources: Any) -> list[Row]:
    """One row per media source (version); Jellyfin has no separate parts."""
    out: list[Row] = []
    for mi, src in enumerate(list(sources)):
        video = audio = None
        for stream in src.media_streams or ():
            if stream.type == "Video":
                if video is None:
                    video = stream
            elif stream.type == "Audio" and audio is None:
                audio = stream
        ticks = src.run_time_ticks
        out.append(
            (
                episode_id, src.id or episode_id, mi, 0, src.path, src.size, src.container,
                None if video is None else video.codec, None if audio is None else audio.codec,
                None if video is None else video.width, None if video is None else video.height,
                None if ticks is None else ticks // 10_000,
            )
        )  # fmt: skip
    return out


def jellyfin_episode_rows(items: Any, /) -> tuple[list[Row], list[Row], list[str]]:
    """(rows, files, ids) of a Jellyfin/Emby episodes page; see the C docstring."""
    rows: list[Row] = []
    files: list[Row] = []
    ids: list[str] = []
    for e in list(items):
        if e.location_type == "Virtual":  # a missing episode: no file
            continue
        p = e.provider_ids
        # Jellyfin sends "" for a cleared id; store that as no id.
        imdb, tmdb, tvdb = (None, None, None)
        if p is not None:
            imdb, tmdb, tvdb = p.imdb or None, p.tmdb or None, p.tvdb or None
        ticks = e.run_time_ticks
        row = (
            e.id, e.series_id,
            e.season_id,  # None for some episodes: the writer links them by season number
            None,  # guid: Jellyfin has none
            e.parent_index_number, e.index_number, e.index_number_end, e.name, e.overview,
            _jellyfin_day(e.premiere_date), None if ticks is None else ticks // 10_000,
            imdb, tmdb, tvdb, _jellyfin_seconds(e.date_created),
            None,  # updated_at: items carry no DateLastSaved
        )  # fmt: skip
        own = _jellyfin_files(e.id, e.media_sources) if e.media_sources else []
        rows.append((*row, e.etag or content_etag((row, own))))
        files += own
        ids.append(e.id)
    return rows, files, ids


# ----------------------------------------------------------------------------- bindings


def bind_new_rows(
    first: int, library_id: Any, rows: list[Row], parents: tuple[dict[Any, Any], ...], /
) -> tuple[list[Row], list[int]]:
    """(bindings, orphans) of new rows; see the C docstring."""
    if not isinstance(rows, list) or not isinstance(parents, tuple):
        raise TypeError("bind_new_rows: rows must be a list, parents a tuple")
    if not all(isinstance(p, dict) for p in parents):
        raise TypeError("bind_new_rows: parents must be dicts")
    bindings: list[Row] = []
    orphans: list[int] = []
    n = len(parents)
    for i, row in enumerate(rows):
        if not isinstance(row, tuple) or len(row) <= n:
            raise TypeError("bind_new_rows: a row is not a tuple of its columns")
        found = tuple(None if row[k + 1] is None else p.get(row[k + 1]) for k, p in enumerate(parents))
        bindings.append((first + i, library_id, *found, *row))
        if None in found:
            orphans.append(first + i)
    return bindings, orphans


def bind_files(episode_ids: dict[Any, Any], files: list[Row], /) -> list[Row]:
    """The media files' bindings; see the C docstring."""
    if not isinstance(episode_ids, dict) or not isinstance(files, list):
        raise TypeError("bind_files: episode_ids must be a dict, files a list")
    out: list[Row] = []
    for f in files:
        if not isinstance(f, tuple) or not f:
            raise TypeError("bind_files: a file row is not a tuple of its columns")
        episode = episode_ids.get(f[0])
        if episode is not None:
            out.append((episode, *f[1:]))
    return out
