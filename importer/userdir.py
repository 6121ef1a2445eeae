"""The user's config folder for importer (``$XDG_CONFIG_HOME/importer``, by default
``~/.config/importer``) and the device id kept there.

The folder is private (0700) and so is every file in it (0600): it holds the tokens that
``importer login`` saved. Files are replaced whole (temporary file, fsync, rename), so a
reader never sees half of one. Cheap to import: no third-party module.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

APP = "importer"
DEVICE_ID_FILE = "device-id"


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/importer`` (``~/.config/importer`` when it is unset or relative,
    as the XDG base directory specification says)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / APP


def ensure_config_dir() -> Path:
    """The folder, created 0700 if missing (and made 0700 if it was not)."""
    folder = config_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    return folder


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600, atomically: a temporary file in the same
    folder, fsync, rename, then fsync of the folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def saved_device_id() -> str | None:
    """The device id ``importer login`` created on this machine, or None before any login."""
    try:
        text = (config_dir() / DEVICE_ID_FILE).read_text(encoding="utf-8").strip()
        return str(uuid.UUID(text))
    except (OSError, ValueError):
        return None


def device_id() -> str:
    """This machine's device id (Jellyfin/Emby ``DeviceId``, Plex ``X-Plex-Client-Identifier``),
    created once (a random UUID) and kept in the config folder. A server revokes the earlier
    tokens of a device when it logs in again: one id, kept, means a new login replaces
    importer's previous token and nothing else."""
    known = saved_device_id()
    if known is not None:
        return known
    folder = ensure_config_dir()
    new = str(uuid.uuid4())
    fd, tmp = tempfile.mkstemp(prefix=f".{DEVICE_ID_FILE}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp's file is 0600 already
            out.write((new + "\n").encode())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, folder / DEVICE_ID_FILE)  # never replaces one another login just made
        except FileExistsError:
            return saved_device_id() or new
    finally:
        Path(tmp).unlink(missing_ok=True)
    return new
