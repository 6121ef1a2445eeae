"""``importer login`` / ``logout`` and saved tokens, end to end: real ``python -m importer``
processes against emulated servers, real files in a private config folder (the autouse
``private_config`` fixture sets ``XDG_CONFIG_HOME`` for every test).

Password login on Jellyfin and Emby, Quick Connect on Jellyfin (approved by a second,
password-logged-in session through the real ``/QuickConnect/Authorize``), the PIN flow on
Plex (plex.tv's endpoints served by the emulated Plex server, the approval by its
``/_emulator/pins/{code}/authorize``), a saved token used without any flag, logout, refusals,
and the secrets: no password and no issued token anywhere but the saved-logins file."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests

from importer.emulator import LibrarySpec, make_server
from importer.emulator.jellyfin import JellyfinServer
from importer.emulator.plex import PlexServer
from importer.emulator.server import EmulatedServer

#: distinctive, with a space and a quote: a password must arrive as it is
PASSWORD = "pw-3f9c1e 'x\" Q7"
USER = "alice"
FAST_POLL = {"IMPORTER_LOGIN_POLL_S": "0.05"}


def importer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "importer", *args],
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,  # not a terminal: nothing is asked
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "importer", *args],
        env={**os.environ, **FAST_POLL, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(proc: subprocess.Popen[str], pattern: str, seen: list[str]) -> re.Match[str]:
    """The first stderr line of ``proc`` that matches ``pattern`` (lines read go to ``seen``)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        found = re.search(pattern, line)
        if found is not None:
            return found
    proc.kill()
    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(seen)}")


def finish(proc: subprocess.Popen[str], seen: list[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, "".join(seen) + err


def config(private_config: Path) -> Path:
    return private_config / "importer"


def saved(private_config: Path) -> dict[str, dict[str, object]]:
    logins: dict[str, dict[str, object]] = json.loads((config(private_config) / "logins.json").read_text())[
        "servers"
    ]
    return logins


class Recorder:
    """Every token a server issues, as it issues it."""

    def __init__(self, server: EmulatedServer) -> None:
        self.tokens: list[str] = []
        issue: Callable[[str, str], str] = server.sessions.issue

        def recorded(user: str, device_id: str) -> str:
            token = issue(user, device_id)
            self.tokens.append(token)
            return token

        server.sessions.issue = recorded  # type: ignore[method-assign]


def serve(kind: str) -> EmulatedServer:
    return make_server(kind, LibrarySpec(seed=4, shows=4), users={USER: PASSWORD, "bob": "bob's"})


@pytest.fixture
def jellyfin() -> Iterator[tuple[EmulatedServer, str]]:
    server = serve("jellyfin")
    with server.running_in_thread() as url:
        yield server, url


def server_id(server: EmulatedServer) -> str:
    """What the saved login is keyed by: Plex machineIdentifier, Jellyfin/Emby Id."""
    if isinstance(server, PlexServer):
        return server.machine_identifier
    assert isinstance(server, JellyfinServer)
    return server.server_id


def login_password(url: str, *extra: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    return importer("login", url, "--user", USER, *extra, env={"IMPORTER_PASSWORD": password})


# ----------------------------------------------------------------------------- password


@pytest.mark.parametrize("kind", ["jellyfin", "emby"])
def test_password_login_saves_a_token_that_sync_uses_without_flags(
    kind: str, tmp_path: Path, private_config: Path
) -> None:
    server = serve(kind)
    with server.running_in_thread() as url:
        out = login_password(url)
        assert out.returncode == 0, out.stderr
        assert "Logged in" in out.stdout and USER in out.stdout
        login = saved(private_config)[server_id(server)]
        assert login["kind"] == kind and login["user"] == USER and login["urls"] == [url]
        session = server.sessions.of(str(login["token"]))
        assert session is not None and session.user == USER
        device = (config(private_config) / "device-id").read_text().strip()
        assert session.device_id == login["device_id"] == device
        # the password went through whole, and the server saw our four client parts
        db = tmp_path / "lib.db"
        synced = importer("sync", url, "--db", str(db), "--progress", "none")
        assert synced.returncode == 0, synced.stderr
        assert "episodes" in synced.stdout
        # the URL is found however it is written (a trailing slash)
        again = importer("sync", url + "/", "--db", str(db), "-q")
        assert again.returncode == 0, again.stderr
        # hydrate finds it too, through the URL the database was synced from
        hydrated = importer("hydrate", "--db", str(db), "-q")
        assert hydrated.returncode == 0, hydrated.stderr


def test_a_password_file_and_a_new_login_that_replaces_the_old_token(
    jellyfin: tuple[EmulatedServer, str], tmp_path: Path, private_config: Path
) -> None:
    server, url = jellyfin
    first = login_password(url)
    assert first.returncode == 0, first.stderr
    old = str(saved(private_config)[server_id(server)]["token"])
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    out = importer("login", url, "--user", USER, "--password-file", str(secret))
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr
    new = str(saved(private_config)[server_id(server)]["token"])
    assert new != old
    assert server.sessions.of(old) is None, "a new login revokes this device's earlier token"
    assert server.sessions.user_tokens() == 1


def test_files_are_private(jellyfin: tuple[EmulatedServer, str], private_config: Path) -> None:
    _, url = jellyfin
    assert login_password(url).returncode == 0
    folder = config(private_config)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("logins.json", "device-id"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert sorted(p.name for p in folder.iterdir()) == ["device-id", "logins.json"]  # no temporary left


def test_a_wrong_password_is_refused_cleanly(
    jellyfin: tuple[EmulatedServer, str], private_config: Path
) -> None:
    _, url = jellyfin
    out = login_password(url, password="not-" + PASSWORD)
    assert out.returncode == 1
    assert "refused the user name or password" in out.stderr and "importer login" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert not (config(private_config) / "logins.json").exists()
    unknown = importer("login", url, "--user", "nobody", env={"IMPORTER_PASSWORD": PASSWORD})
    assert unknown.returncode == 1 and "refused" in unknown.stderr


def test_no_password_no_prompt_and_never_an_argument(jellyfin: tuple[EmulatedServer, str]) -> None:
    _, url = jellyfin
    out = importer("login", url, "--user", USER)  # not a terminal: nothing to ask
    assert out.returncode == 2 and "IMPORTER_PASSWORD" in out.stderr
    stray = importer("login", url, PASSWORD, "--user", USER)
    assert stray.returncode == 2 and PASSWORD not in stray.stderr + stray.stdout
    misplaced = importer("login", PASSWORD)
    assert misplaced.returncode == 2 and PASSWORD not in misplaced.stderr + misplaced.stdout


def test_an_unreachable_server_is_a_temporary_failure(tmp_path: Path) -> None:
    server = serve("jellyfin")
    with server.running_in_thread() as url:
        pass  # stopped: nothing listens there now
    out = login_password(url)
    assert out.returncode == 75, out.stderr


# ----------------------------------------------------------------------------- Quick Connect


def approve_quick_connect(url: str, code: str) -> None:
    """Another device, logged in with a password, approves the code (as in the web UI)."""
    header = 'MediaBrowser Client="web", Device="browser", DeviceId="browser-1", Version="10.10.7"'
    answer = requests.post(
        f"{url}/Users/AuthenticateByName",
        json={"Username": USER, "Pw": PASSWORD},
        headers={"Authorization": header},
        timeout=10,
    )
    answer.raise_for_status()
    token = answer.json()["AccessToken"]
    approved = requests.post(
        f"{url}/QuickConnect/Authorize",
        params={"code": code},
        headers={"Authorization": f'{header}, Token="{token}"'},
        timeout=10,
    )
    assert approved.status_code == 200 and approved.json() is True


def test_quick_connect_on_jellyfin(
    jellyfin: tuple[EmulatedServer, str], tmp_path: Path, private_config: Path
) -> None:
    server, url = jellyfin
    seen: list[str] = []
    proc = start("login", url, "--quick-connect")
    code = read_until(proc, r"Quick Connect code: (\d{6})", seen).group(1)
    # the API key has no user: it cannot approve anything
    refused = requests.post(
        f"{url}/QuickConnect/Authorize",
        params={"code": code},
        headers={"X-Emby-Token": server.token},
        timeout=10,
    )
    assert refused.status_code == 403
    approve_quick_connect(url, code)
    status, out, err = finish(proc, seen)
    assert status == 0, err
    assert "Logged in to Jellyfin server" in out
    login = saved(private_config)[server_id(server)]
    session = server.sessions.of(str(login["token"]))
    assert session is not None and session.user == USER and login["user"] == USER
    assert session.device_id == login["device_id"]  # bound to the device that asked
    synced = importer("sync", url, "--db", str(tmp_path / "lib.db"), "-q")
    assert synced.returncode == 0, synced.stderr


def test_emby_has_no_quick_connect(private_config: Path) -> None:
    server = serve("emby")
    with server.running_in_thread() as url:
        out = importer("login", url, "--quick-connect")
        assert requests.get(f"{url}/emby/QuickConnect/Enabled", timeout=10).status_code == 404
    assert out.returncode == 2
    assert "Emby has no Quick Connect" in out.stderr
    assert not (config(private_config) / "logins.json").exists()


# ----------------------------------------------------------------------------- Plex


def plex_tv(url: str) -> dict[str, str]:
    return {"IMPORTER_PLEX_TV_URL": url, "IMPORTER_PLEX_CLIENTS_URL": url}


def test_plex_pin_flow(tmp_path: Path, private_config: Path) -> None:
    server = serve("plex")
    recorder = Recorder(server)
    with server.running_in_thread() as url:
        seen: list[str] = []
        proc = start("login", url, env=plex_tv(url))
        link = read_until(proc, r"(https://app\.plex\.tv/auth#\?\S+)", seen).group(1)
        query = parse_qs(link.split("#?", 1)[1])
        device = (config(private_config) / "device-id").read_text().strip()
        assert query["clientID"] == [device] and query["context[device][product]"] == ["importer"]
        time.sleep(0.2)  # a few polls find no token yet
        approved = requests.post(
            f"{url}/_emulator/pins/{query['code'][0]}/authorize",
            json={"user": USER},
            headers={"X-Plex-Token": server.token},
            timeout=10,
        )
        assert approved.status_code == 200
        status, out, err = finish(proc, seen)
        assert status == 0, err
        assert "Logged in to Plex server" in out
        login = saved(private_config)[server_id(server)]
        assert login["kind"] == "plex" and login["user"] == USER
        assert login["token"] in recorder.tokens and login["token"] != recorder.tokens[0]  # not the account's
        synced = importer("sync", url, "--db", str(tmp_path / "lib.db"), "-q")
        assert synced.returncode == 0, synced.stderr
    pins = [e for e in server.log if e.path.startswith("/api/v2/pins/")]
    assert len(pins) >= 2, "polled until approved"


def test_plex_refuses_a_password(private_config: Path) -> None:
    server = serve("plex")
    with server.running_in_thread() as url:
        out = importer("login", url, "--user", USER, env={**plex_tv(url), "IMPORTER_PASSWORD": PASSWORD})
    assert out.returncode == 2 and "plex.tv" in out.stderr


# ----------------------------------------------------------------------------- saved tokens


def test_logout_forgets(jellyfin: tuple[EmulatedServer, str], tmp_path: Path, private_config: Path) -> None:
    _, url = jellyfin
    assert login_password(url).returncode == 0
    out = importer("logout", url + "/")
    assert out.returncode == 0, out.stderr
    assert "Forgot" in out.stdout
    assert not (config(private_config) / "logins.json").exists()
    synced = importer("sync", url, "--db", str(tmp_path / "lib.db"))
    assert synced.returncode == 2 and "importer login" in synced.stderr
    again = importer("logout", url)
    assert again.returncode == 0 and "nothing to forget" in again.stderr


def test_a_revoked_token_says_to_log_in_again(jellyfin: tuple[EmulatedServer, str], tmp_path: Path) -> None:
    server, url = jellyfin
    assert login_password(url).returncode == 0
    revoked = requests.post(
        f"{url}/_emulator/sessions/revoke", headers={"X-Emby-Token": server.token}, timeout=10
    )
    assert revoked.json() == {"revoked": 1}
    out = importer("sync", url, "--db", str(tmp_path / "lib.db"), "--progress", "none")
    assert out.returncode == 1
    assert "expired or revoked" in out.stderr
    assert f"run `importer login {url}` again" in out.stderr


def test_a_token_file_or_variable_comes_before_the_saved_login(
    jellyfin: tuple[EmulatedServer, str], tmp_path: Path
) -> None:
    server, url = jellyfin
    assert login_password(url).returncode == 0
    wrong = importer("sync", url, "--db", str(tmp_path / "a.db"), env={"IMPORTER_TOKEN": "0" * 32})
    assert wrong.returncode == 1 and "IMPORTER_TOKEN" in wrong.stderr and "importer login" not in wrong.stderr
    key = tmp_path / "key"
    key.write_text(server.token)
    key.chmod(0o600)
    right = importer("sync", url, "--db", str(tmp_path / "b.db"), "--token-file", str(key), "-q")
    assert right.returncode == 0, right.stderr


# ----------------------------------------------------------------------------- secrets


def test_no_password_and_no_token_outside_the_saved_logins(tmp_path: Path, private_config: Path) -> None:
    printed: list[str] = []
    issued: list[str] = []
    db = str(tmp_path / "lib.db")

    def run(*args: str, env: dict[str, str] | None = None) -> int:
        out = importer(*args, env=env)
        printed.extend([out.stdout, out.stderr])
        return out.returncode

    for kind in ("jellyfin", "plex"):
        server = serve(kind)
        recorder = Recorder(server)
        with server.running_in_thread() as url:
            if isinstance(server, PlexServer):
                server.plextv.approve_after_polls = 2
                assert run("login", url, env={**plex_tv(url), **FAST_POLL}) == 0
            else:
                assert run("login", url, "--user", USER, env={"IMPORTER_PASSWORD": PASSWORD}) == 0
                assert run("login", url, "--user", USER, env={"IMPORTER_PASSWORD": PASSWORD + "!"}) == 1
                assert run("login", url, PASSWORD, env={"IMPORTER_PASSWORD": PASSWORD}) == 2
            kind_db = f"{db}.{kind}"
            assert run("sync", url, "--db", kind_db, "--progress", "json") == 0
            assert run("sync", url, "--db", kind_db, "--progress", "plain", "--full") == 0
            assert run("hydrate", url, "--db", kind_db, "--progress", "json") == 0
            assert run("status", "--db", kind_db) == 0
            server.sessions.revoke_user_tokens()
            assert run("sync", url, "--db", kind_db, "--progress", "json") == 1
        issued += recorder.tokens
    assert len(issued) >= 3
    logins = config(private_config) / "logins.json"
    kept = logins.read_text()
    assert run("logout", "http://127.0.0.1:1") == 0
    needles = [PASSWORD, *issued]
    for text in printed:
        for needle in needles:
            assert needle not in text, f"a secret was printed:\n{text}"
    files = [p for root in (tmp_path, private_config) for p in root.rglob("*") if p.is_file() and p != logins]
    assert len(files) >= 6, files  # databases, cursors, locks, the device id: something to search
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle.encode() not in data, f"a secret is in {path}"
    assert PASSWORD not in kept, "the password is never saved"
