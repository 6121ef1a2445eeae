"""The fleet's config file (TOML): which servers, where their databases live, how to sync them.

```toml
[defaults]
data_dir = "~/media-db"      # one SQLite file per server: <data_dir>/<name>.db
concurrency = 4
[[server]]
name = "home"
url = "http://plex.lan:32400"
token_file = "~/.config/importer/home.token"   # or the token `importer login URL` saved
```

Every key may go in ``[defaults]`` or in a ``[[server]]`` (which wins), except ``name``. A bad
file is a ConfigError (exit 2) that names the file, the server and the key, and never repeats
a value that may be secret. :func:`load_config` only reads; :meth:`FleetConfig.prepare`
creates the data folders. Cheap to import (no aiohttp): a job's process needs
:class:`ServerEntry` and nothing else.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec

from importer.errors import ConfigError

if TYPE_CHECKING:
    from importer.pipeline import SyncOptions

#: the keys a [defaults] or [[server]] table may have (``name`` only in a [[server]])
ALLOWED_KEYS = frozenset(
    {
        "name",
        "url",
        "kind",
        "data_dir",
        "token_file",
        "libraries",
        "concurrency",
        "insecure",
        "verify_after",
        "allow_mass_delete",
    }
)
#: a server's name: also its database's file name, <data_dir>/<name>.db
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
KINDS = ("auto", "plex", "jellyfin", "emby")
#: the same as importer.pipeline.VERIFY_AFTER_DAYS (not imported: it would bring aiohttp)
VERIFY_AFTER_DAYS = 7.0
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 32


class ServerEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One server of the config, resolved: paths absolute and expanded. Crosses to a job's
    process (JSON for the local engine, pickle for Ray): never a token."""

    name: str
    url: str
    db_path: str  # <data_dir>/<name>.db
    kind: str = "auto"
    token_file: str | None = None
    libraries: tuple[str, ...] = ()
    concurrency: int = DEFAULT_CONCURRENCY
    insecure: bool = False
    verify_after: float = VERIFY_AFTER_DAYS
    allow_mass_delete: bool = False

    @property
    def data_dir(self) -> Path:
        return Path(self.db_path).parent

    def sync_options(
        self, *, full: bool = False, restart: bool = False, dry_run: bool = False
    ) -> SyncOptions:
        """What ``importer sync URL --db DB`` would run with this server's options."""
        from importer.pipeline import SyncOptions

        return SyncOptions(
            kind=self.kind,
            libraries=self.libraries,
            full=full,
            restart=restart,
            allow_mass_delete=self.allow_mass_delete,
            dry_run=dry_run,
            verify_after_days=self.verify_after,
            concurrency=self.concurrency,
            verify_tls=not self.insecure,
        )


class FleetConfig(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    servers: tuple[ServerEntry, ...]

    def select(self, names: Iterable[str]) -> list[ServerEntry]:
        """The servers named, in the config's order; every server when ``names`` is empty.
        An unknown name is not repeated in the error: it may be a token typed by mistake."""
        wanted = set(names)
        if not wanted:
            return list(self.servers)
        known = {server.name for server in self.servers}
        unknown = len(wanted - known)
        if unknown:
            raise ConfigError(
                f"{unknown} of the server names given {'is' if unknown == 1 else 'are'} not in "
                f"{self.path} (not shown: it may be a token typed by mistake); its servers: "
                f"{', '.join(server.name for server in self.servers)}"
            )
        return [server for server in self.servers if server.name in wanted]

    def prepare(self, servers: Sequence[ServerEntry] | None = None) -> None:
        """Before syncing ``servers`` (default: all): create their data folders (0700, and
        their missing parents), and warn once per token file that other users can read."""
        from importer.cli import warn_if_others_can_read

        warned: set[str] = set()
        for server in self.servers if servers is None else servers:
            where = f"{self.path}: server {server.name}"
            try:
                _make_private_dirs(server.data_dir)
            except OSError as exc:
                raise ConfigError(
                    f"{where}: cannot create its data_dir {str(server.data_dir)!r}: {exc.strerror}"
                ) from exc
            if server.token_file is None or server.token_file in warned:
                continue
            warned.add(server.token_file)
            try:
                mode = os.stat(server.token_file).st_mode
            except OSError as exc:
                raise ConfigError(
                    f"{where}: token_file {server.token_file!r} cannot be read: {exc.strerror}"
                ) from exc
            warn_if_others_can_read(Path(server.token_file), mode)


def _make_private_dirs(folder: Path) -> None:
    """``folder`` and its missing parents, each 0700: a database holds what a user watches."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)  # exist_ok: another run may create it meanwhile
    if not folder.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(folder))


def ignored_environment_warning() -> str | None:
    """The warning to print when IMPORTER_TOKEN is set but a config is used: with a config,
    a server's token comes only from its own token_file or saved login, so that no server
    is ever sent a token meant for another."""
    from importer.cli import TOKEN_ENV

    if not os.environ.get(TOKEN_ENV, "").strip():
        return None
    return (
        f"warning: {TOKEN_ENV} is ignored with --config: each server's token comes from its "
        "token_file or from `importer login URL`"
    )


def read_server_token(entry: ServerEntry) -> str:
    """The server's token: its token_file, else the one `importer login` saved for its URL.
    ConfigError (exit 2) when there is neither. Never IMPORTER_TOKEN."""
    if entry.token_file is not None:
        try:
            token = Path(entry.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(
                f"server {entry.name}: cannot read its token_file {entry.token_file!r}: {reason}"
            ) from exc
        if not token:
            raise ConfigError(f"server {entry.name}: its token_file {entry.token_file!r} is empty")
        return token
    from importer.http import redact_url
    from importer.login import saved_login

    saved = saved_login(entry.url)
    if saved is not None and saved.token:
        return saved.token
    url = redact_url(entry.url)
    raise ConfigError(
        f'server {entry.name}: no token: add token_file = "FILE" to its [[server]] table (a file '
        f"only you can read: chmod 600), or run `importer login {url}`"
    )


# ------------------------------------------------------------------------------ reading the file
class _Invalid(Exception):
    """What is wrong with one value; the caller adds the file, the server and the key."""


def load_config(path: Path, *, tokens: bool = True) -> FleetConfig:
    """The config at ``path``, checked and resolved. Reads the file (and, with ``tokens``,
    checks that each token_file can be read) and nothing else: it creates nothing.
    ``importer fleet query`` passes ``tokens=False``: reading the databases needs none."""
    path = Path(os.path.abspath(path))
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {str(path)!r}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line N, column M)"
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: not UTF-8 text") from exc
    return _Reader(path, tokens).config(document)


class _Reader:
    """Checks one config file's document; every error names the file."""

    def __init__(self, path: Path, tokens: bool) -> None:
        self.path = path
        self.tokens = tokens

    def error(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}: {message}")

    def config(self, document: dict[str, Any]) -> FleetConfig:
        for key in document:
            if key == "token":
                raise self.error("top level", _TOKEN_REFUSED)
            if key not in ("defaults", "server"):
                raise ConfigError(
                    f"{self.path}: unknown table or key {key!r} at the top level; the file has a "
                    "[defaults] table and one [[server]] table per server"
                )
        defaults = document.get("defaults", {})
        if not isinstance(defaults, dict):
            raise ConfigError(f"{self.path}: defaults must be a table: [defaults]")
        if "name" in defaults:
            raise self.error("[defaults]", "name is each server's own: put it in its [[server]] table")
        defaults = self.values("[defaults]", defaults)
        tables = document.get("server", [])
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise ConfigError(f"{self.path}: write each server as a [[server]] table (two brackets)")
        if not tables:
            raise ConfigError(
                f"{self.path}: no servers: add a [[server]] table with name and url for each server"
            )
        servers: list[ServerEntry] = []
        first_of: dict[str, int] = {}
        for number, table in enumerate(tables, 1):
            server = self.server(number, table, defaults)
            # case-insensitively: on some file systems Home.db and home.db are one file
            taken = first_of.setdefault(server.name.casefold(), number)
            if taken != number:
                raise self.error(
                    f"server #{number}",
                    f"name {server.name!r} is already server #{taken}'s; each server needs its own "
                    "name (names that differ only in case count as the same: <name>.db)",
                )
            servers.append(server)
        return FleetConfig(path=str(self.path), servers=tuple(servers))

    def server(self, number: int, table: dict[str, Any], defaults: dict[str, Any]) -> ServerEntry:
        name = table.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            problem = (
                "is missing"
                if name is None
                else "must be letters, digits, '_', '.' or '-', first a letter or digit"
            )
            raise self.error(f"server #{number}", f"name {problem}")
        where = f"server {name}"
        values = {**defaults, **self.values(where, {k: v for k, v in table.items() if k != "name"})}
        if "url" not in values:
            raise self.error(where, 'url is missing: add url = "http://host:port"')
        if "data_dir" not in values:
            raise self.error(
                where, 'data_dir is missing: add data_dir = "FOLDER" under [defaults] (or in this server)'
            )
        token_file = values.get("token_file")
        if token_file is not None and self.tokens:
            self.check_token_file(where, token_file)
        return ServerEntry(
            name=name,
            url=values["url"],
            db_path=str(values["data_dir"] / f"{name}.db"),
            kind=values.get("kind", "auto"),
            token_file=None if token_file is None else str(token_file),
            libraries=values.get("libraries", ()),
            concurrency=values.get("concurrency", DEFAULT_CONCURRENCY),
            insecure=values.get("insecure", False),
            verify_after=values.get("verify_after", VERIFY_AFTER_DAYS),
            allow_mass_delete=values.get("allow_mass_delete", False),
        )

    def values(self, where: str, table: dict[str, Any]) -> dict[str, Any]:
        """``table``'s values, checked and converted (paths resolved); ``name`` left out."""
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key == "token":
                raise self.error(where, _TOKEN_REFUSED)
            if key not in ALLOWED_KEYS:
                raise self.error(where, f"unknown key {key!r}; allowed: {', '.join(sorted(ALLOWED_KEYS))}")
            try:
                out[key] = _CONVERTERS[key](value, self.path.parent)
            except _Invalid as exc:
                raise self.error(where, f"{key} {exc}") from None
        return out

    def check_token_file(self, where: str, token_file: Path) -> None:
        try:
            with token_file.open("rb") as file:
                empty = not file.read().strip()
        except OSError as exc:
            raise self.error(where, f"token_file {str(token_file)!r} cannot be read: {exc.strerror}") from exc
        if empty:
            raise self.error(where, f"token_file {str(token_file)!r} is empty")


_TOKEN_REFUSED = (
    "token is not allowed here (its value is not shown): put the token in a file only you can "
    'read (chmod 600) and name it with token_file = "FILE", or run `importer login URL`'
)


def _path(value: Any, folder: Path) -> Path:
    """A path as written: ``~`` expanded, relative to the config file's ``folder``."""
    if not isinstance(value, str) or not value.strip():
        raise _Invalid("must be a path (a string)")
    return Path(os.path.normpath(folder / Path(value).expanduser()))


def _url(value: Any, _folder: Path) -> str:
    example = 'like "http://plex.lan:32400"'
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"must be the server's URL, {example}")
    from importer.http import redact_url

    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        raise _Invalid(f"must be the server's URL, {example} (this one cannot be parsed)") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise _Invalid(f"{redact_url(value)!r} is not a server URL; give one {example}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise _Invalid(
            f"must be given without a user, password or query ({redact_url(value)}); the token goes "
            'in token_file = "FILE" or `importer login URL`'
        )
    return value


def _kind(value: Any, _folder: Path) -> str:
    if value not in KINDS:
        shown = f"{value!r} is not" if isinstance(value, str) else "must be"
        raise _Invalid(f"{shown} one of {', '.join(KINDS)}")
    return str(value)


def _libraries(value: Any, _folder: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Invalid('must be a list of library titles or ids, as strings: ["TV Shows", "2"]')
    return tuple(value)


def _concurrency(value: Any, _folder: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise _Invalid(f"must be a whole number from 1 to {MAX_CONCURRENCY}")
    return value


def _verify_after(value: Any, _folder: Path) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value >= 0)
    ):
        raise _Invalid("must be a number of days, 0 or more")
    return float(value)


def _flag(value: Any, _folder: Path) -> bool:
    if not isinstance(value, bool):
        raise _Invalid("must be true or false")
    return value


#: per key: its value checked and converted (the folder is the config file's)
_CONVERTERS: dict[str, Callable[[Any, Path], Any]] = {
    "url": _url,
    "kind": _kind,
    "data_dir": _path,
    "token_file": _path,
    "libraries": _libraries,
    "concurrency": _concurrency,
    "insecure": _flag,
    "verify_after": _verify_after,
    "allow_mass_delete": _flag,
}
