-- The importer database, schema version 3 (PRAGMA user_version = 3).
--
-- This file is the current schema, and a public contract: your own programs may read
-- these tables. Later versions only add to it (new tables, new columns, new indexes) and
-- upgrade older databases in place; PRAGMA user_version tells which version a file has.
--
-- Conventions
-- * id is the local INTEGER PRIMARY KEY; other tables refer to rows by it.
-- * source_id is the server's own id of an item (Plex ratingKey, Jellyfin/Emby Id), a
--   string, unique within its library.
-- * show_id / season_id are local ids. They are NULL only while a sync run is writing;
--   a finished run links every episode to its show and season. An episode whose season
--   does not exist on the server keeps season_id NULL.
-- * Times (added_at, updated_at, started_at, finished_at) are INTEGER unix seconds, UTC.
-- * air_date is TEXT 'YYYY-MM-DD'. duration_ms is milliseconds.
-- * etag is whatever lets the next run skip an unchanged item (Jellyfin Etag, Plex
--   updatedAt, or a hash of the item). It has no meaning outside the importer.
-- * imdb_id / tmdb_id / tvdb_id are the bare ids ('tt0944947', '1399', '121361').
-- * Items deleted on the server are deleted here once a complete listing proves it, with
--   their credits, genres and images; people nobody credits any more go with them.
-- * Ratings (critic_rating, audience_rating) are REAL on a 0-10 scale.
-- * hydrated_at / hydrated_etag: when `importer hydrate` last completed an item (cast, crew,
--   genres, images) and the item's etag then. An item whose etag differs is hydrated again.
-- * item_type / item_id (credits, item_genres, images) name a row of shows, seasons or
--   episodes: item_type is 'show', 'season' or 'episode', item_id that row's local id.


-- One row per media server (a Plex Media Server, a Jellyfin or Emby server).
CREATE TABLE servers (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,          -- 'plex', 'jellyfin' or 'emby'
    machine_id  TEXT NOT NULL,          -- Plex machineIdentifier, Jellyfin/Emby server Id
    name        TEXT,                   -- the server's friendly name
    base_url    TEXT,                   -- the URL it was last synced from (never a token)
    UNIQUE (kind, machine_id)
);

-- One row per TV library (Plex section, Jellyfin/Emby collection folder).
CREATE TABLE libraries (
    id          INTEGER PRIMARY KEY,
    server_id   INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL,          -- Plex section key, Jellyfin library item Id
    title       TEXT,
    kind        TEXT,                   -- 'show' for TV libraries
    UNIQUE (server_id, source_id)
);

CREATE TABLE shows (
    id          INTEGER PRIMARY KEY,
    library_id  INTEGER NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL,
    guid        TEXT,                   -- Plex guid ('plex://show/…'); NULL on Jellyfin
    title       TEXT,
    sort_title  TEXT,
    year        INTEGER,
    summary     TEXT,
    imdb_id     TEXT,
    tmdb_id     TEXT,
    tvdb_id     TEXT,
    added_at    INTEGER,
    updated_at  INTEGER,
    etag        TEXT,
    content_rating   TEXT,              -- 'TV-MA', 'TV-14', …
    studio           TEXT,              -- the first studio or network the server names
    critic_rating    REAL,              -- 0-10 (Jellyfin's CriticRating / 10)
    audience_rating  REAL,              -- 0-10 (Plex audienceRating, Jellyfin CommunityRating)
    hydrated_at      INTEGER,
    hydrated_etag    TEXT,
    UNIQUE (library_id, source_id)
);

CREATE TABLE seasons (
    id              INTEGER PRIMARY KEY,
    library_id      INTEGER NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    show_id         INTEGER REFERENCES shows (id) ON DELETE SET NULL,
    source_id       TEXT NOT NULL,
    show_source_id  TEXT,               -- the show's source_id, as the server gave it
    season_number   INTEGER,            -- 0 is specials; NULL when the server has none
    title           TEXT,
    etag            TEXT,
    hydrated_at     INTEGER,
    hydrated_etag   TEXT,
    UNIQUE (library_id, source_id)
);

-- One row per episode. A multi-episode file (S01E01-E02) is either one row with
-- episode_number 1 and episode_number_end 2 (Jellyfin IndexNumberEnd), or, on Plex, two
-- rows whose media_files rows name the same file part.
CREATE TABLE episodes (
    id                  INTEGER PRIMARY KEY,
    library_id          INTEGER NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    show_id             INTEGER REFERENCES shows (id) ON DELETE SET NULL,
    season_id           INTEGER REFERENCES seasons (id) ON DELETE SET NULL,
    source_id           TEXT NOT NULL,
    show_source_id      TEXT,
    season_source_id    TEXT,
    guid                TEXT,           -- Plex guid ('plex://episode/…'); NULL on Jellyfin
    season_number       INTEGER,
    episode_number      INTEGER,
    episode_number_end  INTEGER,        -- last episode number of a multi-episode item
    title               TEXT,
    summary             TEXT,
    air_date            TEXT,           -- 'YYYY-MM-DD'
    duration_ms         INTEGER,
    imdb_id             TEXT,
    tmdb_id             TEXT,
    tvdb_id             TEXT,
    added_at            INTEGER,
    updated_at          INTEGER,
    etag                TEXT,
    hydrated_at         INTEGER,
    hydrated_etag       TEXT,
    UNIQUE (library_id, source_id)
);

-- The files (Plex media parts, Jellyfin media sources) of each episode. The same file
-- may appear under two episodes (a Plex double episode listed as two items), hence the
-- uniqueness per (episode_id, source_id) and not per source_id. The UNIQUE index also
-- serves "the files of this episode" lookups.
CREATE TABLE media_files (
    id           INTEGER PRIMARY KEY,
    episode_id   INTEGER NOT NULL REFERENCES episodes (id) ON DELETE CASCADE,
    source_id    TEXT NOT NULL,         -- Plex part id, Jellyfin media source Id
    media_index  INTEGER,               -- which version of the episode (0 = first)
    part_index   INTEGER,               -- which part of that version (0 = first)
    path         TEXT,                  -- the path as the server sees it
    size_bytes   INTEGER,
    container    TEXT,                  -- 'mkv', 'mp4', …
    video_codec  TEXT,
    audio_codec  TEXT,
    width        INTEGER,
    height       INTEGER,
    duration_ms  INTEGER,
    UNIQUE (episode_id, source_id)
);

-- @tables of version 3
-- One row per person per server: two people with the same name are two rows.
CREATE TABLE people (
    id          INTEGER PRIMARY KEY,
    server_id   INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL,          -- Plex tag id, Jellyfin/Emby person Id
    name        TEXT NOT NULL,
    thumb       TEXT,                   -- Plex: the tag's thumb URL as served (no token);
                                        -- Jellyfin/Emby: '/Items/{Id}/Images/Primary?tag=…'
    UNIQUE (server_id, source_id)
);

-- Who worked on an item, as what. A person credited twice on one item (two roles) has
-- two rows. position is the 0-based index in the server's own list for that item and
-- kind: ORDER BY position gives the billing order.
CREATE TABLE credits (
    person_id   INTEGER NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    item_type   TEXT NOT NULL,          -- 'show', 'season' or 'episode'
    item_id     INTEGER NOT NULL,       -- shows.id, seasons.id or episodes.id
    kind        TEXT NOT NULL,          -- 'actor', 'guest_star', 'director', 'writer',
                                        -- 'producer', 'creator', … (lower snake case)
    role        TEXT,                   -- the character, for actors and guest stars
    position    INTEGER NOT NULL,
    PRIMARY KEY (item_type, item_id, kind, position)
) WITHOUT ROWID;
CREATE INDEX credits_by_person ON credits (person_id);

CREATE TABLE genres (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE
);

-- An item's genres; position keeps the server's order (the first is the main genre).
CREATE TABLE item_genres (
    item_type   TEXT NOT NULL,
    item_id     INTEGER NOT NULL,
    genre_id    INTEGER NOT NULL REFERENCES genres (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    PRIMARY KEY (item_type, item_id, genre_id)
) WITHOUT ROWID;

-- One row per image of an item: a path below the server's API root and a tag that
-- changes when the image does (a cache key). Never a URL with a token in it: fetch
-- the path with your own credentials (Plex: X-Plex-Token header; Jellyfin: no token
-- needed).
--   Plex:          path '/library/metadata/12/thumb/1700000000', tag '1700000000';
--                  a show's or season's thumb is its poster, an episode's its still
--                  (kind 'thumb'), art is a backdrop.
--   Jellyfin/Emby: path '/Items/{Id}/Images/{Type}/{Index}', tag the image tag; each
--                  backdrop is its own row (Index 0, 1, …).
CREATE TABLE images (
    item_type   TEXT NOT NULL,
    item_id     INTEGER NOT NULL,
    kind        TEXT NOT NULL,          -- 'poster', 'backdrop', 'thumb', 'banner' or 'logo'
    path        TEXT NOT NULL,
    tag         TEXT,
    PRIMARY KEY (item_type, item_id, kind, path)
) WITHOUT ROWID;

-- An item deleted takes its credits, genres and images with it (they name it by
-- item_type and item_id, which a foreign key cannot).
CREATE TRIGGER shows_metadata_gone AFTER DELETE ON shows BEGIN
    DELETE FROM credits WHERE item_type = 'show' AND item_id = OLD.id;
    DELETE FROM item_genres WHERE item_type = 'show' AND item_id = OLD.id;
    DELETE FROM images WHERE item_type = 'show' AND item_id = OLD.id;
END;
CREATE TRIGGER seasons_metadata_gone AFTER DELETE ON seasons BEGIN
    DELETE FROM credits WHERE item_type = 'season' AND item_id = OLD.id;
    DELETE FROM item_genres WHERE item_type = 'season' AND item_id = OLD.id;
    DELETE FROM images WHERE item_type = 'season' AND item_id = OLD.id;
END;
CREATE TRIGGER episodes_metadata_gone AFTER DELETE ON episodes BEGIN
    DELETE FROM credits WHERE item_type = 'episode' AND item_id = OLD.id;
    DELETE FROM item_genres WHERE item_type = 'episode' AND item_id = OLD.id;
    DELETE FROM images WHERE item_type = 'episode' AND item_id = OLD.id;
END;
-- @end

-- One row per sync run of a library (or of a whole server, library_id NULL).
CREATE TABLE runs (
    id                INTEGER PRIMARY KEY,
    server_id         INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    library_id        INTEGER REFERENCES libraries (id) ON DELETE CASCADE,
    mode              TEXT NOT NULL,    -- 'full' (every item listed; deletions swept)
                                        -- or 'incremental' (changes since a watermark)
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER,          -- NULL while running, or if the run was killed
    status            TEXT NOT NULL DEFAULT 'running',
                                        -- 'running', 'done', 'incomplete' (the listing
                                        -- could not be proven complete: nothing deleted),
                                        -- 'failed', 'interrupted', 'stopped' (mass-delete
                                        -- guard)
    reason            TEXT,             -- why it failed or stopped, in plain words
    shows_written     INTEGER NOT NULL DEFAULT 0,  -- rows inserted or changed
    seasons_written   INTEGER NOT NULL DEFAULT 0,
    episodes_written  INTEGER NOT NULL DEFAULT 0,
    files_written     INTEGER NOT NULL DEFAULT 0,
    unchanged         INTEGER NOT NULL DEFAULT 0,  -- items seen with the same etag
    deleted           INTEGER NOT NULL DEFAULT 0,  -- items deleted after a full listing
    requests          INTEGER NOT NULL DEFAULT 0,  -- HTTP requests made
    bytes             INTEGER NOT NULL DEFAULT 0,  -- HTTP body bytes received
    progress          TEXT,             -- JSON: where the run is; mirrors the cursor file
    watermark         INTEGER           -- a done run: the server-clock time (unix s) from
                                        -- which the next incremental run lists changes
);

-- The items a run has listed so far, per stream: a bitmap over local ids (shows.id,
-- seasons.id or episodes.id; zlib-compressed), rewritten by every transaction that
-- commits rows of the stream. A listing is complete when its count of items equals the
-- server's count, also when the run was interrupted and resumed in another process.
-- Emptied when the run ends. Internal to the importer: not part of the contract.
CREATE TABLE run_listing (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stream  TEXT NOT NULL,
    items   BLOB NOT NULL,
    PRIMARY KEY (run_id, stream)
) WITHOUT ROWID;


-- @late-indexes
-- The indexes below are created at the end of the first run that fills a library, not
-- before: building an index once over all rows is about twice as fast as keeping it up
-- to date row by row during a bulk load. Until then, queries by these columns scan.

CREATE INDEX IF NOT EXISTS episodes_by_show ON episodes (show_id, season_number, episode_number);
CREATE INDEX IF NOT EXISTS episodes_by_season ON episodes (season_id, episode_number);
CREATE INDEX IF NOT EXISTS episodes_by_guid ON episodes (guid) WHERE guid IS NOT NULL;
CREATE INDEX IF NOT EXISTS seasons_by_show ON seasons (show_id, season_number);
CREATE INDEX IF NOT EXISTS shows_by_guid ON shows (guid) WHERE guid IS NOT NULL;
