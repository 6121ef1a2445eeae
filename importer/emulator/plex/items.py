"""Shows, seasons and episodes of one section rendered as ``Directory`` and ``Video``
elements; episodes, the bulk of every large listing, from per-season templates."""

from __future__ import annotations

from collections.abc import Iterable

from importer.emulator.library import Episode, ExternalIds, Season, Show, mix
from importer.emulator.plex.episodes import EpisodeTemplates, Shape, episode_skeleton, guid_templates
from importer.emulator.plex.formats import Format, Scalar
from importer.emulator.plex.media import MediaRenderer
from importer.emulator.plex.memo import Lru, Memo
from importer.emulator.plex.query import Options
from importer.emulator.plex.sections import Section
from importer.emulator.plex.tags import Tagger

Pairs = list[tuple[str, Scalar | None]]


def _without(pairs: Pairs, excluded: frozenset[str]) -> Pairs:
    return [pair for pair in pairs if pair[0] not in excluded] if excluded else pairs


class Renderer:
    """Renders shows, seasons and episodes of one section in one format."""

    def __init__(self, sec: Section, fmt: Format) -> None:
        self.sec = sec
        self.fmt = fmt
        self.section_attrs = (
            ("librarySectionTitle", sec.title),
            ("librarySectionID", sec.key),
            ("librarySectionKey", f"/library/sections/{sec.key}"),
        )
        self._templates: Lru[tuple[int, Options], EpisodeTemplates] = Lru(self._episode_templates, limit=512)
        self._skeletons: Memo[Shape, bytes] = Memo(
            lambda shape: episode_skeleton(fmt, self.section_attrs, shape)
        )
        self.tagger = Tagger(sec.key, sec.library.credits, fmt)
        self._thumb = fmt.opt("thumb", "/library/metadata/%d/thumb/%d")
        self._summaries: Memo[str | None, bytes] = Memo(lambda s: fmt.opt("summary", s), limit=10_000)
        self._dates: Memo[str | None, tuple[bytes, bytes]] = Memo(self._date_parts, limit=50_000)
        self._duration = fmt.opt("duration", 0).replace(b"0", b"%d")
        self._guid_templates = guid_templates(fmt)
        self._media = MediaRenderer(fmt, sec.media_offset)
        # new agents rate with audienceRating, the old ones with rating (the fixtures)
        self._ratings = [
            (fmt.opt("audienceRating", round(5.0 + r / 10, 1)), fmt.opt("rating", round(5.0 + r / 10, 1)))
            for r in range(41)
        ]

    # ----------------------------------------------------------------- shows
    def show(self, show: Show, opts: Options) -> bytes:
        fmt, i = self.fmt, self.sec.info(show.index)
        meta = i.credits.show(show)
        # legacy agents rate with rating alone; new ones add the audience's (the fixtures)
        audience = None if show.legacy_agent else meta.audience_rating
        critic = meta.critic_rating
        year = show.year
        pairs: list[tuple[str, Scalar | None]] = [
            ("ratingKey", str(i.key)),
            ("key", f"/library/metadata/{i.key}/children"),
            ("guid", i.guid),
            ("studio", show.studio),
            ("type", "show"),
            ("title", show.title),
            ("titleSort", show.sort_title if show.sort_title != show.title else None),
            *(self.section_attrs if opts.detail else ()),
            ("contentRating", show.content_rating),
            ("summary", show.summary if opts.summary else None),
            ("index", 1),
            ("rating", critic),
            ("audienceRating", audience),
            ("year", year),
            ("thumb", i.thumb),
            ("art", i.art),
            ("banner", i.banner),
            ("theme", i.theme),
            ("duration", 1_200_000 + mix(show.seed, 85) % 40 * 60_000),
            (
                "originallyAvailableAt",
                f"{year}-{1 + show.seed % 12:02d}-{1 + show.seed % 28:02d}" if year else None,
            ),
            ("leafCount", i.leaf_count),
            ("viewedLeafCount", 0),
            ("childCount", len(i.seasons)),
            # seasons hidden: Plex Web goes straight to the episodes (watchstate fixture)
            ("skipChildren", True if show.hidden_seasons else None),
            ("addedAt", show.added_at),
            ("updatedAt", show.updated_at),
            ("audienceRatingImage", None if audience is None else "themoviedb://image.rating"),
            (
                "ratingImage",
                None
                if critic is None or show.legacy_agent
                else "rottentomatoes://image.rating." + ("ripe" if critic >= 6 else "rotten"),
            ),
        ]
        groups = self.tagger.show_groups(show, opts) if opts.tags else []
        guids = self.guid_group(show.ids) if opts.guids and not show.legacy_agent else b""
        if opts.detail and guids:  # Guid comes before Rating and Role in a detail answer
            at = next((k for k, (name, _) in enumerate(groups) if name in ("Rating", "Role")), len(groups))
            return fmt.element(
                "Directory", _without(pairs, opts.excluded), groups[:at], guids + fmt.groups(groups[at:])
            )
        return fmt.element("Directory", _without(pairs, opts.excluded), groups, guids)

    # ----------------------------------------------------------------- seasons
    def season(self, show: Show, season: Season, opts: Options) -> bytes:
        i = self.sec.info(show.index)
        key = i.season_keys[season.ordinal]
        pairs: list[tuple[str, Scalar | None]] = [
            ("ratingKey", str(key)),
            ("key", f"/library/metadata/{key}/children"),
            ("parentRatingKey", str(i.key)),
            ("guid", i.season_guid(season)),
            ("parentGuid", i.guid),
            ("parentStudio", show.studio),
            ("type", "season"),
            ("title", season.title),
            *(self.section_attrs if opts.detail else ()),
            ("parentKey", f"/library/metadata/{i.key}"),
            ("parentTitle", show.title),
            ("summary", "" if opts.summary else None),
            ("index", season.season_number),
            ("parentIndex", 1),
            ("parentYear", show.year),
            ("thumb", i.season_thumb(season)),
            ("art", i.season_art(season)),
            ("parentThumb", i.thumb),
            ("parentTheme", i.theme),
            ("leafCount", i.season_counts[season.ordinal]),
            ("viewedLeafCount", 0),
            ("addedAt", season.added_at),
            ("updatedAt", season.updated_at),
        ]
        return self.fmt.element("Directory", _without(pairs, opts.excluded))

    def all_leaves(self, show: Show) -> bytes:
        """The synthetic first child of a show (plex-api-rs tv_seasons.json)."""
        i = self.sec.info(show.index)
        return self.fmt.element(
            "Directory",
            [
                ("leafCount", i.leaf_count),
                ("thumb", i.thumb),
                ("viewedLeafCount", 0),
                ("key", f"/library/metadata/{i.key}/allLeaves"),
                ("title", "All episodes"),
            ],
        )

    # ----------------------------------------------------------------- episodes
    def episodes(self, episodes: Iterable[Episode], opts: Options) -> list[bytes]:
        """The hot path: one ``%`` per episode on its season's template, plus its media.
        Everything that repeats (titles, summaries, dates, show and season parts) comes
        from caches, already escaped."""
        out: list[bytes] = []
        append = out.append
        current = -1
        by_season: dict[int, bytes] = {}
        ep_key0 = legacy = 0
        guids = False
        ep_keys: list[int] | None = None
        ep_guids: list[bytes] = []
        texts, summaries, dates = self.fmt.texts, self._summaries, self._dates
        duration_tpl = self._duration
        media = self._media.render
        guid_group = self.guid_group
        ratings = self._ratings
        templates = self._templates
        with_summary, with_media = opts.summary, opts.media
        episode_tags = self.tagger.episode_tags if opts.wants("Director") or opts.wants("Writer") else None
        if opts.detail and opts.wants("Role"):
            episode_tags = self.tagger.episode_tags
        # the still: most episodes have one (credits.py); excluded, it costs nothing
        stills = None if "thumb" in opts.excluded else self.sec.library.credits.has_still
        thumb_tpl = self._thumb
        for ep in episodes:
            (
                show_index,
                ordinal,
                season,
                number,
                _,
                _,
                _,
                title,
                summary,
                air,
                duration,
                ids,
                added,
                updated,
            ) = ep[:14]
            if show_index != current:
                current = show_index
                t = templates[current, opts]
                by_season = t.by_season
                ep_key0, legacy, guids = t.ep_key0, t.legacy, t.guids
                ep_keys = t.ep_keys
                ep_guids = t.ep_guids or []
            if ep_keys is None:
                rk = ep_key0 + ordinal
                guid: int | bytes = number if legacy else ordinal
            else:  # an edited show: keys and guids are the items' own (changes.Ident)
                rk = ep_keys[ordinal]
                guid = number if legacy else ep_guids[ordinal]
            year, day = dates[air]
            append(
                by_season[season]
                % (
                    rk,
                    rk,
                    guid,
                    texts[title],
                    summaries[summary] if with_summary else b"",
                    number,
                    ratings[(rk * 40503) % 41][legacy],
                    year,
                    thumb_tpl % (rk, updated) if stills is not None and stills(ep) else b"",
                    b"" if duration is None else duration_tpl % duration,
                    day,
                    added,
                    updated,
                    media(ep.files) if with_media else b"",
                    b"" if episode_tags is None else episode_tags(ep, opts),
                    guid_group(ids) if guids else b"",
                )
            )
        return out

    def _episode_templates(self, key: tuple[int, Options]) -> EpisodeTemplates:
        show_index, opts = key
        i = self.sec.info(show_index)
        show = i.show
        skeleton = self._skeletons[
            show.hidden_seasons,
            show.legacy_agent,
            show.content_rating is not None,
            opts.detail,
            show.edit is not None,
            opts.excluded,
        ]
        return EpisodeTemplates(self.fmt, skeleton, i, opts.guids)

    def _date_parts(self, air_date: str | None) -> tuple[bytes, bytes]:
        """(year, originallyAvailableAt) parts of an air date."""
        if air_date is None:
            return b"", b""
        return self.fmt.opt("year", int(air_date[:4])), self.fmt.opt("originallyAvailableAt", air_date)

    def guid_group(self, ids: ExternalIds) -> bytes:
        """A ``Guid[]`` group. Generated ids are ASCII digits (imdb: "tt" and digits):
        the common cases skip escaping; anything else goes through ``Format.inner``."""
        imdb, tmdb, tvdb = ids
        if tmdb is not None and tvdb is not None and tmdb.isalnum() and tvdb.isalnum():
            if imdb is None:
                return self._guid_templates[6] % (tmdb.encode(), tvdb.encode())
            if imdb.isalnum():
                return self._guid_templates[7] % (imdb.encode(), tmdb.encode(), tvdb.encode())
        inner = self.fmt.inner
        present = tuple(inner(v) for v in ids if v is not None)
        if not present:
            return b""
        return (
            self._guid_templates[(imdb is not None) | (tmdb is not None) << 1 | (tvdb is not None) << 2]
            % present
        )
