"""The fleet's TOML config (``importer.fleet.config``) and ``importer sync --config FILE
[NAME ...]``: every bad file is refused with exit 2 and a message that names the file, the
server and the key, and never a secret; a good one syncs each server exactly as
``importer sync URL --db <data_dir>/<name>.db`` would, with its own token only."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import apsw
import pytest
from test_cancel import episodes_in

from importer.emulator import Controls, Library, LibrarySpec, make_server
from importer.errors import ConfigError
from importer.fleet.config import (
    ALLOWED_KEYS,
    NAME,
    VERIFY_AFTER_DAYS,
    FleetConfig,
    ServerEntry,
    ignored_environment_warning,
    load_config,
    read_server_token,
)

SECRET = "tok-4f1b9c0e7d2a6b35"


def write(folder: Path, text: str, name: str = "fleet.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def private_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def refused(path: Path) -> str:
    """The message of the ConfigError that loading ``path`` raises (exit 2)."""
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert str(path) in message, message
    return message


def importer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "importer", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


# ----------------------------------------------------------------------------------- a good file
def test_a_good_file_resolves_defaults_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "tokens").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    private_file(home / "tokens" / "a.token", SECRET)
    private_file(tmp_path / "b.token", SECRET)
    path = write(
        tmp_path,
        """
        [defaults]
        data_dir = "dbs"          # relative: to the config file's folder
        concurrency = 2
        insecure = true

        [[server]]
        name = "home-1"
        url = "http://plex.lan:32400"
        kind = "plex"
        token_file = "~/tokens/a.token"
        libraries = ["TV Shows", "2"]

        [[server]]
        name = "Office_2.b"
        url = "https://jf.example/jellyfin"
        token_file = "b.token"
        data_dir = "~/elsewhere"
        concurrency = 8
        insecure = false
        verify_after = 0
        allow_mass_delete = true
        """,
    )
    config = load_config(path)
    assert config.path == str(path)
    home_1, office = config.servers
    assert home_1 == ServerEntry(
        name="home-1",
        url="http://plex.lan:32400",
        db_path=str(tmp_path / "dbs" / "home-1.db"),
        kind="plex",
        token_file=str(home / "tokens" / "a.token"),
        libraries=("TV Shows", "2"),
        concurrency=2,
        insecure=True,
    )
    assert office == ServerEntry(
        name="Office_2.b",
        url="https://jf.example/jellyfin",
        db_path=str(home / "elsewhere" / "Office_2.b.db"),
        token_file=str(tmp_path / "b.token"),
        concurrency=8,
        verify_after=0.0,
        allow_mass_delete=True,
    )
    # loading creates nothing: `importer fleet query` loads a config without side effects
    assert not (tmp_path / "dbs").exists() and not (home / "elsewhere").exists()


def test_a_relative_config_path_is_resolved_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", '[[server]]\nname = "a"\nurl = "http://a:1"\ndata_dir = "../db"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf/fleet.toml"))
    assert config.path == str(tmp_path / "conf" / "fleet.toml")
    assert config.servers[0].db_path == str(tmp_path / "db" / "a.db")
    assert config.servers[0].kind == "auto" and config.servers[0].token_file is None


def test_the_agreed_constants() -> None:
    from importer.pipeline import VERIFY_AFTER_DAYS as PIPELINE_DEFAULT

    assert VERIFY_AFTER_DAYS == PIPELINE_DEFAULT == ServerEntry(name="a", url="u", db_path="d").verify_after
    assert "token" not in ALLOWED_KEYS and "name" in ALLOWED_KEYS
    assert NAME.fullmatch("a.b-c_1") and not NAME.fullmatch(".hidden") and not NAME.fullmatch("a/b")


def test_importing_the_config_module_is_cheap() -> None:
    code = "import sys, importer.fleet.config; print(sorted({'aiohttp', 'click'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_sync_options_are_the_entrys() -> None:
    entry = ServerEntry(
        name="a",
        url="http://a:1",
        db_path="/x/a.db",
        kind="emby",
        libraries=("TV",),
        concurrency=3,
        insecure=True,
        verify_after=2.5,
        allow_mass_delete=True,
    )
    options = entry.sync_options(full=True, dry_run=True)
    assert (options.kind, options.libraries, options.concurrency) == ("emby", ("TV",), 3)
    assert (options.verify_tls, options.verify_after_days, options.allow_mass_delete) == (False, 2.5, True)
    assert (options.full, options.restart, options.dry_run) == (True, False, True)


# ------------------------------------------------------------------------------------ bad files
GOOD_SERVER = 'name = "home"\nurl = "http://plex.lan:32400"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[defaults]\ndata_dir = \n", ["not valid TOML", "line 2"], id="syntax"),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}colour = "red"\n',
            ["server home", "'colour'", "unknown key"],
            id="unknown-key",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\ncolour = 1\n[[server]]\n{GOOD_SERVER}',
            ["[defaults]", "'colour'"],
            id="unknown-default",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[servers]\nx = 1\n[[server]]\n{GOOD_SERVER}',
            ["'servers'", "top level"],
            id="unknown-table",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\nname = "x"\n[[server]]\n{GOOD_SERVER}',
            ["[defaults]", "name", "[[server]]"],
            id="name-in-defaults",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}[[server]]\n{GOOD_SERVER}',
            ["server #2", "'home'", "server #1"],
            id="duplicate-name",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}[[server]]\nname = "HOME"\nurl = "http://b:1"\n',
            ["server #2", "'HOME'", "case"],
            id="duplicate-name-but-case",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}[[server]]\nname = "../x"\nurl = "http://b:1"\n',
            ["server #2", "name must be"],
            id="bad-name",
        ),
        pytest.param(
            '[defaults]\ndata_dir = "db"\n[[server]]\nurl = "http://b:1"\n',
            ["server #1", "name is missing"],
            id="no-name",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}token_file = "missing.token"\n',
            ["server home", "token_file", "missing.token", "No such file"],
            id="missing-token-file",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}token_file = "."\n',
            ["server home", "token_file", "cannot be read"],
            id="unreadable-token-file",
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}token_file = "empty.token"\n',
            ["server home", "token_file", "empty"],
            id="empty-token-file",
        ),
        pytest.param('[defaults]\ndata_dir = "db"\n', ["no servers", "[[server]]"], id="no-servers"),
        pytest.param("", ["no servers"], id="empty-file"),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[server]\n{GOOD_SERVER}', ["[[server]]"], id="single-brackets"
        ),
        pytest.param(
            f"[[server]]\n{GOOD_SERVER}", ["server home", "data_dir", "[defaults]"], id="no-data-dir"
        ),
        pytest.param(
            '[defaults]\ndata_dir = "db"\n[[server]]\nname = "home"\n',
            ["server home", "url is missing"],
            id="no-url",
        ),
    ],
)
def test_a_bad_file_names_the_file_the_server_and_the_key(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    (tmp_path / "empty.token").write_text("\n")
    message = refused(write(tmp_path, text))
    for fragment in expected:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("url", '"ftp://plex.lan"', "url 'ftp://plex.lan' is not a server URL"),
        ("url", "5", "url must be the server's URL"),
        ("url", '""', "url must be the server's URL"),
        ("url", '"http://[::1"', "url must be the server's URL"),
        ("kind", '"kodi"', "kind 'kodi' is not one of auto, plex, jellyfin, emby"),
        ("kind", "1", "kind must be one of"),
        ("libraries", '"TV Shows"', "libraries must be a list"),
        ("libraries", "[2]", "libraries must be a list"),
        ("concurrency", '"4"', "concurrency must be a whole number from 1 to 32"),
        ("concurrency", "0", "concurrency must be"),
        ("concurrency", "33", "concurrency must be"),
        ("concurrency", "true", "concurrency must be"),
        ("concurrency", "2.0", "concurrency must be"),
        ("insecure", '"yes"', "insecure must be true or false"),
        ("allow_mass_delete", "1", "allow_mass_delete must be true or false"),
        ("verify_after", "-1", "verify_after must be a number of days"),
        ("verify_after", "inf", "verify_after must be"),
        ("verify_after", "false", "verify_after must be"),
        ("data_dir", "5", "data_dir must be a path"),
        ("token_file", "[]", "token_file must be a path"),
    ],
)
def test_a_wrong_type_names_the_key(tmp_path: Path, key: str, value: str, expected: str) -> None:
    server = 'name = "home"\n' if key == "url" else GOOD_SERVER
    data_dir = "" if key == "data_dir" else 'data_dir = "db"\n'
    per_server = refused(
        write(tmp_path, f"[defaults]\n{data_dir}[[server]]\n{server}{key} = {value}\n", "a.toml")
    )
    assert f"server home: {expected}" in per_server
    in_defaults = refused(
        write(tmp_path, f"[defaults]\n{data_dir}{key} = {value}\n[[server]]\n{server}", "b.toml")
    )
    assert f"[defaults]: {expected}" in in_defaults


def test_a_server_value_overrides_the_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[defaults]\ndata_dir = "db"\nkind = "plex"\n[[server]]\n{GOOD_SERVER}kind = "jellyfin"\n'
        '[[server]]\nname = "b"\nurl = "http://b:1"\n',
    )
    assert [s.kind for s in load_config(path).servers] == ["jellyfin", "plex"]


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(f'token = "{SECRET}"\n[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}', id="top"),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\ntoken = "{SECRET}"\n[[server]]\n{GOOD_SERVER}', id="defaults"
        ),
        pytest.param(
            f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}token = "{SECRET}"\n', id="server"
        ),
    ],
)
def test_a_token_in_the_file_is_refused_without_repeating_it(tmp_path: Path, where: str) -> None:
    message = refused(write(tmp_path, where))
    assert SECRET not in message and SECRET[4:12] not in message
    assert "token" in message and "token_file" in message and "importer login" in message
    assert "chmod 600" in message


def test_a_url_with_a_token_is_refused_without_repeating_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[defaults]\ndata_dir = "db"\n[[server]]\nname = "home"\nurl = "http://me:{SECRET}@plex.lan:32400/?X-Plex-Token={SECRET}"\n',
    )
    message = refused(path)
    assert "server home: url" in message and SECRET not in message


def test_an_unreadable_or_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file") as caught:
        load_config(tmp_path / "nope.toml")
    assert caught.value.exit_code == 2 and "nope.toml" in str(caught.value)
    (tmp_path / "latin1.toml").write_bytes(b'# caf\xe9\n[[server]]\nname = "a"\n')
    assert "not UTF-8" in refused(tmp_path / "latin1.toml")


# ------------------------------------------------------------------------ select, prepare, tokens
def fleet(tmp_path: Path, *names: str) -> FleetConfig:
    servers = "".join(f'[[server]]\nname = "{n}"\nurl = "http://{n}.lan:8096"\n' for n in names)
    return load_config(write(tmp_path, f'[defaults]\ndata_dir = "db"\n{servers}'))


def test_select_keeps_the_config_order_and_never_echoes_an_unknown_name(tmp_path: Path) -> None:
    config = fleet(tmp_path, "a", "b", "c")
    assert [s.name for s in config.select([])] == ["a", "b", "c"]
    assert [s.name for s in config.select(["c", "a", "c"])] == ["a", "c"]
    with pytest.raises(ConfigError) as caught:
        config.select(["b", SECRET, "zz-unknown"])
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert SECRET not in message and "zz-unknown" not in message
    assert "2 of the server names" in message and "a, b, c" in message and str(tmp_path) in message


def test_prepare_creates_private_data_folders_and_warns_once_per_token_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared.token"
    shared.write_text(SECRET)
    shared.chmod(0o644)
    (tmp_path / "existing").mkdir(mode=0o755)
    path = write(
        tmp_path,
        """
        [defaults]
        data_dir = "deep/er/db"
        token_file = "shared.token"
        [[server]]
        name = "a"
        url = "http://a:1"
        [[server]]
        name = "b"
        url = "http://b:1"
        [[server]]
        name = "c"
        url = "http://c:1"
        data_dir = "existing"
        """,
    )
    config = load_config(path)
    config.prepare()
    for folder in (tmp_path / "deep", tmp_path / "deep/er", tmp_path / "deep/er/db"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((tmp_path / "existing").stat().st_mode) == 0o755  # not ours to change
    err = capsys.readouterr().err
    # the same wording as for --token-file, once although two servers share the file
    from importer.cli import read_token

    read_token(shared)
    assert capsys.readouterr().err == err
    assert err.count("readable by other users; run: chmod 600") == 1
    assert SECRET not in err


def test_prepare_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    config = fleet(tmp_path, "a")
    (tmp_path / "db").write_text("not a folder")
    with pytest.raises(ConfigError, match="server a: cannot create its data_dir") as caught:
        config.prepare()
    assert caught.value.exit_code == 2


def test_read_server_token_from_its_file_or_its_saved_login_never_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importer.login.saved import save

    private_file(tmp_path / "a.token", f"  {SECRET}\n")
    path = write(
        tmp_path,
        '[defaults]\ndata_dir = "db"\n'
        '[[server]]\nname = "a"\nurl = "http://a.lan:1"\ntoken_file = "a.token"\n'
        '[[server]]\nname = "b"\nurl = "http://b.lan:8096/"\n'
        '[[server]]\nname = "c"\nurl = "http://c.lan:1"\n',
    )
    a, b, c = load_config(path).servers
    monkeypatch.setenv("IMPORTER_TOKEN", "from-the-environment")
    save("server-b", "jellyfin", "http://B.lan:8096", "me", "saved-token", "device")
    assert read_server_token(a) == SECRET
    assert read_server_token(b) == "saved-token"
    with pytest.raises(ConfigError) as caught:
        read_server_token(c)
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert message.startswith("server c: no token: add token_file")
    assert "importer login http://c.lan:1" in message and "from-the-environment" not in message


def test_the_environment_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ignored_environment_warning() is None
    monkeypatch.setenv("IMPORTER_TOKEN", SECRET)
    warning = ignored_environment_warning()
    assert warning is not None and "IMPORTER_TOKEN is ignored" in warning and SECRET not in warning


# --------------------------------------------------------------------------------- the command line
def test_cli_refuses_a_bad_file_with_exit_2(tmp_path: Path) -> None:
    token_in_file = write(
        tmp_path, f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}token = "{SECRET}"\n', "a.toml"
    )
    out = importer("sync", "--config", str(token_in_file))
    assert out.returncode == 2, out.stderr
    assert f"error: {token_in_file}: server home: token is not allowed" in out.stderr
    assert SECRET not in out.stdout + out.stderr
    syntax = write(tmp_path, '[[server]]\nname = "a"\nurl = http://a\n', "b.toml")
    out = importer("sync", "--config", str(syntax))
    assert out.returncode == 2 and f"{syntax}: not valid TOML" in out.stderr and "line 3" in out.stderr
    wrong_type = write(
        tmp_path, f'[defaults]\ndata_dir = "db"\nconcurrency = 99\n[[server]]\n{GOOD_SERVER}', "c.toml"
    )
    out = importer("sync", "--config", str(wrong_type))
    assert out.returncode == 2 and f"{wrong_type}: [defaults]: concurrency must be" in out.stderr
    assert not (tmp_path / "db").exists()
    out = importer("sync", "--config", str(tmp_path / "missing.toml"))
    assert out.returncode == 2 and "cannot read the config file" in out.stderr


def test_cli_usage_errors(tmp_path: Path) -> None:
    path = write(tmp_path, f'[defaults]\ndata_dir = "db"\n[[server]]\n{GOOD_SERVER}')
    for extra in (
        ["--db", "x.db"],
        ["--kind", "plex"],
        ["--concurrency", "2"],
        ["--insecure"],
        ["--library", "TV"],
    ):
        out = importer("sync", "--config", str(path), *extra)
        assert out.returncode == 2, (extra, out.stderr)
        assert f"{extra[0]} cannot be given with --config" in out.stderr
    out = importer(
        "sync", "--config", str(path), "--token-file", "t", "--verify-after", "1", "--allow-mass-delete"
    )
    assert out.returncode == 2
    assert "--token-file, --allow-mass-delete, --verify-after cannot be given" in out.stderr
    unknown = importer("sync", "--config", str(path), "home", SECRET)
    assert unknown.returncode == 2 and "1 of the server names given is not in" in unknown.stderr
    assert SECRET not in unknown.stdout + unknown.stderr and "its servers: home" in unknown.stderr
    # without --config, URL and --db are required, as before
    no_url = importer("sync", "--db", str(tmp_path / "x.db"))
    assert no_url.returncode == 2 and "Missing argument 'URL'" in no_url.stderr
    no_db = importer("sync", "http://a:1")
    assert no_db.returncode == 2 and "Missing option '--db'" in no_db.stderr
    assert not (tmp_path / "db").exists()


TABLES = ("servers", "libraries", "shows", "seasons", "episodes", "media_files")


def rows(db: Path) -> dict[str, list[Any]]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in TABLES}
    finally:
        conn.close()


def test_sync_config_equals_separate_syncs(tmp_path: Path) -> None:
    plex = make_server("plex", Library(LibrarySpec(seed=9, shows=4)))
    jellyfin = make_server("jellyfin", Library(LibrarySpec(seed=5, shows=3)))
    private_file(tmp_path / "plex.token", plex.token)
    private_file(tmp_path / "jf.token", jellyfin.token + "\n")
    with plex.running_in_thread() as plex_url, jellyfin.running_in_thread() as jf_url:
        path = write(
            tmp_path,
            f"""
            [defaults]
            data_dir = "fleet-db"
            concurrency = 2
            [[server]]
            name = "attic"
            url = "{plex_url}"
            kind = "plex"
            token_file = "plex.token"
            [[server]]
            name = "den"
            url = "{jf_url}"
            token_file = "jf.token"
            """,
        )
        out = importer("sync", "--config", str(path), "--progress", "none", env={"IMPORTER_TOKEN": SECRET})
        assert out.returncode == 0, out.stderr
        one = importer(
            "sync", plex_url, "--db", str(tmp_path / "attic.db"), "--kind", "plex", "--token-file",
            str(tmp_path / "plex.token"), "--concurrency", "2", "--progress", "none",
        )  # fmt: skip
        two = importer(
            "sync", jf_url, "--db", str(tmp_path / "den.db"), "--token-file", str(tmp_path / "jf.token"),
            "--concurrency", "2", "--progress", "none",
        )  # fmt: skip
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    # IMPORTER_TOKEN is ignored, and said to be, once
    assert out.stderr.count("IMPORTER_TOKEN is ignored") == 1 and SECRET not in out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    # the same summaries but for the timings, each after its server's name
    assert lines[0].split(" in ")[0] == "attic: " + one.stdout.split(" in ")[0]
    assert lines[1].split(" in ")[0] == "den: " + two.stdout.split(" in ")[0]
    for name, separate in (("attic", "attic.db"), ("den", "den.db")):
        synced = tmp_path / "fleet-db" / f"{name}.db"
        assert stat.S_IMODE(synced.parent.stat().st_mode) == 0o700
        got, want = rows(synced), rows(tmp_path / separate)
        assert got == want and got["episodes"], name


def test_sync_config_runs_the_named_servers_and_every_one_after_a_failure(tmp_path: Path) -> None:
    plex = make_server("plex", Library(LibrarySpec(seed=3, shows=2)))
    emby = make_server("emby", Library(LibrarySpec(seed=4, shows=2)))
    private_file(tmp_path / "plex.token", plex.token)
    private_file(tmp_path / "wrong.token", "not-the-token-123")
    private_file(tmp_path / "emby.token", emby.token)
    with plex.running_in_thread() as plex_url, emby.running_in_thread() as emby_url:
        path = write(
            tmp_path,
            f"""
            [defaults]
            data_dir = "db"
            [[server]]
            name = "p"
            url = "{plex_url}"
            token_file = "plex.token"
            [[server]]
            name = "wrong"
            url = "{plex_url}"
            token_file = "wrong.token"
            [[server]]
            name = "e"
            url = "{emby_url}"
            token_file = "emby.token"
            [[server]]
            name = "tokenless"
            url = "{emby_url}"
            [[server]]
            name = "down"            # nothing listens on port 9: 75, temporary
            url = "http://127.0.0.1:9"
            token_file = "emby.token"
            """,
        )
        only_e = importer("sync", "--config", str(path), "e", "--progress", "none")
        assert only_e.returncode == 0, only_e.stderr
        assert not (tmp_path / "db" / "p.db").exists() and (tmp_path / "db" / "e.db").exists()
        assert only_e.stdout.startswith("e: emby ")
        # a failure (1: a refused token) outranks a temporary failure (75)
        every = importer("sync", "--config", str(path), "down", "wrong", "e", "p", "--progress", "json")
        # a usage error (2: no token) outranks a failure (1: a refused token)
        with_usage_error = importer("sync", "--config", str(path), "--quiet", "--progress", "none")
    assert with_usage_error.returncode == 2, with_usage_error.stderr
    assert "error: server tokenless: no token" in with_usage_error.stderr
    assert every.returncode == 1, every.stderr
    assert (
        "error: wrong: " in every.stderr
        and "error: down: " in every.stderr
        and "not-the-token-123" not in every.stdout + every.stderr
    )
    summaries = [json.loads(line) for line in every.stdout.splitlines()]
    assert [s["name"] for s in summaries] == ["p", "e"]  # the next server ran after the failure
    assert all(s["libraries"][0]["status"] == "done" for s in summaries)


def test_sync_config_never_sends_importer_token(tmp_path: Path) -> None:
    plex = make_server("plex", Library(LibrarySpec(seed=3, shows=1)))
    with plex.running_in_thread() as url:
        path = write(tmp_path, f'[defaults]\ndata_dir = "db"\n[[server]]\nname = "p"\nurl = "{url}"\n')
        out = importer("sync", "--config", str(path), env={"IMPORTER_TOKEN": plex.token})
    assert out.returncode == 2, out.stderr
    assert "IMPORTER_TOKEN is ignored" in out.stderr
    assert "error: server p: no token: add token_file" in out.stderr
    assert len(plex.log) == 0  # not one request: the environment's token went nowhere
    assert plex.token not in out.stdout + out.stderr


def test_sync_config_uses_the_saved_login(tmp_path: Path) -> None:
    from importer.login.saved import save

    jellyfin = make_server("jellyfin", Library(LibrarySpec(seed=3, shows=1)))
    with jellyfin.running_in_thread() as url:
        save("jf-1", "jellyfin", url, "me", jellyfin.token, "device")
        path = write(tmp_path, f'[defaults]\ndata_dir = "db"\n[[server]]\nname = "j"\nurl = "{url}"\n')
        out = importer("sync", "--config", str(path), "--quiet", "--progress", "none")
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    assert rows(tmp_path / "db" / "j.db")["episodes"]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_current_server_and_the_run(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    slow = make_server(
        "plex", Library(LibrarySpec(seed=12, episodes=40_000)), controls=Controls(latency_ms=150)
    )
    fast = make_server("jellyfin", Library(LibrarySpec(seed=3, shows=1)))
    private_file(tmp_path / "slow.token", slow.token)
    private_file(tmp_path / "fast.token", fast.token)
    with slow.running_in_thread() as slow_url, fast.running_in_thread() as fast_url:
        path = write(
            tmp_path,
            f"""
            [defaults]
            data_dir = "db"
            concurrency = 1
            [[server]]
            name = "slow"
            url = "{slow_url}"
            token_file = "slow.token"
            [[server]]
            name = "fast"
            url = "{fast_url}"
            token_file = "fast.token"
            """,
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "importer", "sync", "--config", str(path), "--progress", "none"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.time() + 30
        while not episodes_in(tmp_path / "db" / "slow.db") and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"error: slow: interrupted by {sig.name}" in err
    assert 0 < episodes_in(tmp_path / "db" / "slow.db") < 40_000
    assert not (tmp_path / "db" / "fast.db").exists() and len(fast.log) == 0
