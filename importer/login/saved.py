"""The logins ``importer login`` saved: one file, ``logins.json`` in the user's config folder
(``$XDG_CONFIG_HOME/importer``; folder 0700, file 0600, replaced whole and atomically).

One login per server, keyed by the server's own id (Plex ``machineIdentifier``,
Jellyfin/Emby ``Id``), recording the kind, every URL it was logged in through, the user,
the device id the token was issued to, and the token. A command finds the login by its URL
alone (:func:`normalize_url`), without asking the server anything.

This file is the only place a token is written; nothing here prints one (a login's repr
leaves it out).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import msgspec

from importer.errors import ConfigError
from importer.userdir import config_dir, ensure_config_dir, write_private

FILE_NAME = "logins.json"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SavedLogin(msgspec.Struct, kw_only=True):
    """One server's login."""

    server_id: str
    kind: str  # plex | jellyfin | emby
    urls: list[str]  # normalised (normalize_url), the latest first
    user: str
    token: str
    device_id: str  # the DeviceId / X-Plex-Client-Identifier the token was issued to
    saved_at: int  # unix seconds

    def __repr__(self) -> str:  # never the token
        return (
            f"SavedLogin(server_id={self.server_id!r}, kind={self.kind!r}, user={self.user!r}, "
            f"urls={self.urls!r})"
        )

    @property
    def url(self) -> str:
        return self.urls[0]


class _File(msgspec.Struct):
    version: int = 1
    servers: dict[str, SavedLogin] = {}


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_File)


def path() -> Path:
    return config_dir() / FILE_NAME


def normalize_url(url: str) -> str:
    """The form a URL is saved and looked up in: scheme and host in lower case, no default
    port, no trailing slash, no user, query or fragment (``HTTP://Plex.lan:80/`` →
    ``http://plex.lan``). A path stays as it is (``/jellyfin`` behind a reverse proxy)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), "", ""))


def _read(file: Path) -> _File:
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return _File()
    except OSError as exc:
        raise ConfigError(f"cannot read the saved logins {str(file)!r}: {exc.strerror}") from exc
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError:
        raise ConfigError(
            f"the saved logins {str(file)!r} are damaged: delete the file and run `importer login URL` again"
        ) from None


def load() -> dict[str, SavedLogin]:
    """Every saved login, by server id (nothing when there is no file)."""
    return dict(_read(path()).servers)


def find(url: str) -> SavedLogin | None:
    """The login saved for ``url`` (compared normalised), or None."""
    wanted = normalize_url(url)
    for login in load().values():
        if wanted in login.urls:
            return login
    return None


@contextmanager
def _locked() -> Iterator[Path]:
    """The file, with the folder locked: two logins at once do not lose one another."""
    folder = ensure_config_dir()
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder / FILE_NAME
    finally:
        os.close(fd)  # and the lock with it


def _write(file: Path, servers: dict[str, SavedLogin]) -> None:
    if not servers:
        file.unlink(missing_ok=True)
        return
    write_private(file, _ENCODER.encode(_File(servers=servers)))


def save(server_id: str, kind: str, url: str, user: str, token: str, device_id: str) -> SavedLogin:
    """Save (or replace) the login of server ``server_id``, reached at ``url``. The server's
    other known URLs stay; ``url`` leaves any other server's login (it now leads here)."""
    here = normalize_url(url)
    with _locked() as file:
        servers = dict(_read(file).servers)
        for other in list(servers.values()):
            if other.server_id != server_id and here in other.urls:
                other.urls.remove(here)
                if not other.urls:
                    del servers[other.server_id]
        before = servers.get(server_id)
        urls = [here, *(u for u in (before.urls if before else []) if u != here)]
        login = SavedLogin(
            server_id=server_id,
            kind=kind,
            urls=urls,
            user=user,
            token=token,
            device_id=device_id,
            saved_at=int(time.time()),
        )
        servers[server_id] = login
        _write(file, servers)
    return login


def forget(url: str) -> SavedLogin | None:
    """Forget the login saved for ``url`` (with every URL of that server); what was forgotten."""
    wanted = normalize_url(url)
    if not path().exists():
        return None
    with _locked() as file:
        servers = dict(_read(file).servers)
        gone = next((login for login in servers.values() if wanted in login.urls), None)
        if gone is not None:
            del servers[gone.server_id]
            _write(file, servers)
    return gone
