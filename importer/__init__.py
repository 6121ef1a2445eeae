"""Copy the TV libraries of Plex, Jellyfin and Emby servers into SQLite."""

__version__ = "0.1.0"
