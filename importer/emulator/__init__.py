"""Emulated Plex, Jellyfin and Emby servers over a generated library, on loopback."""
