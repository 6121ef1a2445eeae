"""The command line: thin click commands over the library API.

Exit codes (one shape everywhere; see the README): 0 done, 1 failed, 2 usage,
4 database locked by another run, 75 temporary failure (resumable), 130/143
interrupted. Progress goes to stderr, the one-line summary to stdout.

Signals. A command that runs an event loop runs it through :func:`run_command`, which
hands SIGINT and SIGTERM to the loop (``loop.add_signal_handler``): the first asks the
command to stop cleanly (by default its main task is cancelled, so its ``finally`` and
``async with`` blocks run), a second one ends the process at once. Outside the loop
(imports, argument parsing, before and after the loop) a signal ends the process at once
with :func:`exit_on_signal`. A Python signal handler never raises inside the loop: under
uvloop an exception raised in a transport callback is logged ("Fatal error on
transport") and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import click

from importer.errors import AuthError, ConfigError, ImporterError

if TYPE_CHECKING:
    from importer.fleet.config import ServerEntry
    from importer.hydration.result import HydrateResult
    from importer.hydration.runner import HydrateOptions, Hydrator
    from importer.pipeline import Importer, SyncOptions
    from importer.results import SyncResult

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

TOKEN_ENV = "IMPORTER_TOKEN"
PASSWORD_ENV = "IMPORTER_PASSWORD"
#: seconds between two polls of a login that waits for the user (Quick Connect, Plex PIN)
LOGIN_POLL_ENV = "IMPORTER_LOGIN_POLL_S"

#: the signals every long-running command stops on
SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: a command's exit code when a signal stopped it
ExitCode = Callable[[signal.Signals], int]


def interrupted(sig: signal.Signals) -> int:
    """130 for SIGINT, 143 for SIGTERM: interrupted (a sync is resumable)."""
    return 128 + sig


def stopping_is_success(sig: signal.Signals) -> int:
    """0: for a service (the emulator), a stop is its normal end."""
    return 0


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it exists; the library API never sets a loop policy itself.
    No signal handling: commands use :func:`run_command`."""
    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(coro)


def exit_on_signal(code: ExitCode = interrupted) -> None:
    """While no event loop runs: SIGINT/SIGTERM end the process at once with ``code(sig)``
    (SystemExit, so ``with`` blocks still close), not with a traceback or click's "Aborted!"."""

    def on_signal(signum: int, _frame: object) -> None:
        sys.exit(code(signal.Signals(signum)))

    for sig in SIGNALS:
        signal.signal(sig, on_signal)


class _Signals:
    """SIGINT/SIGTERM as an event loop handles them: the first one calls ``stop``, a second
    one ends the process at once with 128 + its number (an open SQLite transaction rolls
    back, workers exit with their parent)."""

    def __init__(self, stop: Callable[[signal.Signals], None]) -> None:
        self.stop = stop
        self.received: signal.Signals | None = None
        self.main: asyncio.Future[Any] | None = None  # once it is done, there is nothing to stop

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self, sig)

    def __call__(self, sig: signal.Signals) -> None:
        if self.received is not None:
            os._exit(128 + sig)
        self.received = sig
        if self.main is None or not self.main.done():
            self.stop(sig)


def run_command(
    main: Callable[[], Coroutine[Any, Any, T]],
    *,
    on_signal: Callable[[signal.Signals], None] | None = None,
    stopped: ExitCode = interrupted,
) -> T:
    """Run a command's main coroutine, ``main()``, on uvloop (asyncio where uvloop is
    missing), and stop it cleanly on SIGINT or SIGTERM, whatever it is doing.

    The first signal calls ``on_signal(sig)``; without one, the main task is cancelled.
    When the main task then ends cancelled, the process exits with ``stopped(sig)``
    (default 130/143); when it ends otherwise, its result or exception stands. A second
    signal ends the process at once with 130/143. Before the loop runs and after it
    ends, a signal ends the process at once with ``stopped(sig)``.
    """

    def cancel_main(_sig: signal.Signals) -> None:
        if handler.main is not None:
            handler.main.cancel()

    handler = _Signals(on_signal or cancel_main)

    async def lifetime() -> T:
        loop = asyncio.get_running_loop()
        # From the loop's first callback on, signals are the loop's (installed before the
        # loop runs, uvloop would only look at one when the next one arrives).
        handler.install(loop)
        task = loop.create_task(main())
        handler.main = task
        try:
            return await task
        finally:
            await _shut_down(loop, task)
            # From the last callback on, a signal ends the process again: no moment when
            # the loop's handler is installed but no loop runs it.
            exit_on_signal(stopped)

    life = lifetime()
    loop: asyncio.AbstractEventLoop | None = None
    try:
        loop = _new_loop()
        return loop.run_until_complete(life)
    except asyncio.CancelledError:
        if handler.received is None:
            raise
        sys.exit(stopped(handler.received))
    finally:
        life.close()  # not started when a signal came first: no "never awaited" warning
        if loop is not None:
            loop.close()
        exit_on_signal(stopped)  # asyncio's loop resets its signals to the defaults on close


async def _shut_down(loop: asyncio.AbstractEventLoop, main: asyncio.Task[Any]) -> None:
    """What ``asyncio.Runner`` does when it closes, inside the loop's run, so that the
    signal handlers still work while it waits (for a worker-starting thread, say)."""
    others = [t for t in asyncio.all_tasks(loop) if t is not main and t is not asyncio.current_task()]
    for other in others:
        other.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


def _stop_import(run: Importer) -> Callable[[signal.Signals], None]:
    """The first SIGINT/SIGTERM stops an import cleanly: what is fetched is committed."""

    def stop(sig: signal.Signals) -> None:
        click.echo(
            f"\n{sig.name}: finishing the pages in flight and committing them (again to stop at once)...",
            err=True,
        )
        run.cancel(sig.name)

    return stop


async def with_signals(run: Importer) -> SyncResult:
    """Run an import in an event loop that someone else runs (``asyncio.run``), with the
    command line's signal handling: the first SIGINT/SIGTERM stops it cleanly (what is
    fetched is committed), a second one ends the process at once (SQLite rolls back the
    open transaction: the database stays as of the last commit). ``importer sync`` does
    the same through :func:`run_command`."""
    loop = asyncio.get_running_loop()
    handler = _Signals(_stop_import(run))
    handler.install(loop)
    try:
        return await run.run()
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


def warn_if_others_can_read(token_file: Path, mode: int) -> None:
    """The one warning for a token file that other users can read (``mode``: its st_mode),
    whether it came from --token-file or a config's token_file."""
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        click.echo(
            f"warning: the token file {str(token_file)!r} is readable by other users; "
            f"run: chmod 600 {token_file}",
            err=True,
        )


def read_token(token_file: Path | None) -> str:
    """The token from ``--token-file`` or ``IMPORTER_TOKEN``; never from an argument."""
    if token_file is not None:
        try:
            mode = token_file.stat().st_mode
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the token file {str(token_file)!r}: {exc.strerror}") from exc
        warn_if_others_can_read(token_file, mode)
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(
            f"no token: pass --token-file FILE, set {TOKEN_ENV}, or run `importer login URL` once"
        )
    return token


@dataclass(frozen=True)
class ResolvedToken:
    """A command's token and where it came from (:func:`resolve_token`)."""

    value: str = field(repr=False)
    #: "token-file" (--token-file), "environment" (IMPORTER_TOKEN) or "login" (saved by importer login)
    source: Literal["token-file", "environment", "login"]
    #: for a saved login: the server URL it was found for (what to log in to again)
    url: str | None = None

    def explain(self, exc: ImporterError) -> ImporterError:
        """``exc``, except that a saved login's token refused by the server (AuthError)
        becomes an error that says to log in again (exit 1)."""
        if self.source != "login" or not isinstance(exc, AuthError):
            return exc
        return AuthError(
            f"the token saved by `importer login` for {self.url} was refused (expired or revoked): "
            f"run `importer login {self.url}` again",
            url=exc.url,
            status=exc.status,
        )


def resolve_token(url: str | None, token_file: Path | None, *, db_path: Path | None = None) -> ResolvedToken:
    """The token for a command on the server at ``url``: ``--token-file``, else
    ``IMPORTER_TOKEN``, else the token ``importer login`` saved for that URL (found by the
    URL alone, no request). Without ``url``, the URLs the database at ``db_path`` was synced
    from are tried. ConfigError (exit 2) when there is none; pass what the server answers a
    refusal with through :meth:`ResolvedToken.explain`."""
    if token_file is not None:
        return ResolvedToken(read_token(token_file), "token-file")
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return ResolvedToken(from_env, "environment")
    from importer.http import redact_url
    from importer.login import saved_login

    candidates = [url] if url is not None else _database_urls(db_path)
    for candidate in candidates:
        saved = saved_login(candidate)
        if saved is not None and saved.token:
            return ResolvedToken(saved.token, "login", redact_url(candidate.rstrip("/")))
    return ResolvedToken(read_token(None), "environment")  # raises: no token


def _database_urls(db_path: Path | None) -> list[str]:
    """The server URLs a database was synced from (none when it cannot be read here)."""
    if db_path is None or not db_path.exists():
        return []
    from importer.store.connection import connect
    from importer.store.queries import servers

    try:
        conn = connect(db_path, readonly=True)
        try:
            return [s.base_url for s in servers(conn) if s.base_url]
        finally:
            conn.close()
    except ImporterError:
        return []


def refuse_stray_arguments(where: str, secret: str, goes: str) -> None:
    """Stray arguments are taken by click (``allow_extra_args``) and refused here without
    being echoed: one may be a token or a password."""
    stray = click.get_current_context().args
    if stray:
        raise click.UsageError(
            f"{len(stray)} unexpected argument{'s' if len(stray) > 1 else ''}{where} (not shown: it may be "
            f"a {secret}). The {secret} goes in {goes}."
        )


TOKEN_GOES = f"--token-file FILE or ${TOKEN_ENV}"


def fail(exc: ImporterError) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


def _version_message() -> str:
    from importer import speedups

    if speedups.IMPLEMENTATION == "c":
        native = "with its compiled C extension"
    elif os.environ.get("IMPORTER_PURE_PYTHON") == "1":
        native = "with its pure-Python twin, as IMPORTER_PURE_PYTHON=1 asks"
    else:
        native = "with its pure-Python twin: the C extension was not built (install a C compiler, reinstall)"
    return f"%(prog)s %(version)s, {native}"


def connection_options(*, concurrency: int, quiet: str) -> Callable[[F], F]:
    """The output and connection options that sync and hydrate share (one spelling)."""
    options = (
        click.option(
            "--progress",
            type=click.Choice(["auto", "bar", "plain", "json", "none"]),
            default="auto",
            show_default=True,
            help="Progress on stderr: a bar on a terminal (auto), periodic lines, JSON lines, or nothing.",
        ),
        click.option("--quiet", "-q", is_flag=True, help=quiet),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 32),
            default=concurrency,
            show_default=True,
            help="Requests in flight.",
        ),
        click.option("--insecure", is_flag=True, help="Do not verify the server's TLS certificate."),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, exists=False, path_type=Path),
            help=f"File holding the token (otherwise ${TOKEN_ENV}, or the token `importer login` saved "
            "for the URL).",
        ),
    )

    return _decorate(options)


def sync_options(*, hydrate: str, db_required: bool = True) -> Callable[[F], F]:
    """The database, the libraries, and how a sync treats them: what sync and watch share.
    ``db_required=False``: the command checks --db itself (sync: not with --config)."""
    options = (
        # --db is not checked by click: importer.store.preflight says what is wrong and what to do
        click.option(
            "--db",
            "db_path",
            required=db_required,
            type=click.Path(readable=False, path_type=Path),
            help="SQLite file.",
        ),
        click.option(
            "--kind",
            type=click.Choice(["auto", "plex", "jellyfin", "emby"]),
            default="auto",
            show_default=True,
        ),
        click.option(
            "--library",
            "libraries",
            multiple=True,
            help="A library title or id (repeatable); default: all TV.",
        ),
        click.option(
            "--allow-mass-delete",
            is_flag=True,
            help="Let a sweep delete more than 10% (and more than 50 rows) of a library.",
        ),
        click.option("--hydrate", "then_hydrate", is_flag=True, help=hydrate),
        click.option(
            "--verify-after",
            "verify_after_days",
            type=click.FloatRange(0),
            default=7.0,
            show_default=True,
            metavar="DAYS",
            help="Make a run full when the last full one is older than this.",
        ),
    )
    return _decorate(options)


def _decorate(options: tuple[Callable[[F], F], ...]) -> Callable[[F], F]:
    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="importer", message=_version_message())
def cli() -> None:
    """Copy the TV libraries of Plex, Jellyfin and Emby servers into SQLite."""


#: sync's options that a config file sets for each server: the option, and its key there
_SET_BY_CONFIG = {
    "db_path": ("--db", "data_dir"),
    "kind": ("--kind", "kind"),
    "libraries": ("--library", "libraries"),
    "token_file": ("--token-file", "token_file"),
    "concurrency": ("--concurrency", "concurrency"),
    "insecure": ("--insecure", "insecure"),
    "allow_mass_delete": ("--allow-mass-delete", "allow_mass_delete"),
    "verify_after_days": ("--verify-after", "verify_after"),
}


# Stray arguments are taken, not refused by click, which would echo them: one may be a token.
@cli.command(context_settings={"allow_extra_args": True})
# metavar: the usage and the "missing" error as when URL was required (it is, without --config)
@click.argument("url", required=False, metavar="URL")
@sync_options(
    hydrate="After a successful sync, hydrate its shows (cast, crew, genres, artwork): `importer hydrate`.",
    db_required=False,
)
@click.option(
    "--full",
    is_flag=True,
    help="List every item and sweep deletions, even where an incremental run would do.",
)
@click.option("--restart", is_flag=True, help="Discard an unfinished run instead of resuming it.")
@click.option("--dry-run", is_flag=True, help="Sync, but delete nothing: list what a sweep would delete.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sync the servers of this TOML file, one after another: those NAMEd instead of a URL, or all.",
)
@connection_options(concurrency=4, quiet="No summary on stdout.")
def sync(
    url: str | None,
    db_path: Path | None,
    kind: str,
    libraries: tuple[str, ...],
    full: bool,
    restart: bool,
    allow_mass_delete: bool,
    dry_run: bool,
    then_hydrate: bool,
    verify_after_days: float,
    config_path: Path | None,
    progress: str,
    quiet: bool,
    concurrency: int,
    insecure: bool,
    token_file: Path | None,
) -> None:
    """Import (or update) the TV libraries of the server at URL into --db.

    With --config FILE instead: the servers of that file named (importer sync --config FILE
    NAME ...), or all of them, one after another."""
    ctx = click.get_current_context()
    if config_path is not None:
        _refuse_options_set_by_config(ctx)
        names = ([url] if url is not None else []) + ctx.args
        exit_now(_sync_config(config_path, names, full, restart, dry_run, then_hydrate, progress, quiet))
        return
    # what click would say if these were required (they are, without --config)
    if url is None:
        raise click.MissingParameter(ctx=ctx, param=_parameter(ctx, "url"))
    if db_path is None:
        raise click.MissingParameter(ctx=ctx, param=_parameter(ctx, "db_path"))
    refuse_stray_arguments(" after the URL", "token", TOKEN_GOES)
    from importer.pipeline import SyncOptions

    options = SyncOptions(
        kind=kind,
        libraries=libraries,
        full=full,
        restart=restart,
        allow_mass_delete=allow_mass_delete,
        dry_run=dry_run,
        verify_after_days=verify_after_days,
        concurrency=concurrency,
        verify_tls=not insecure,
    )
    # one request in flight unless --concurrency was given: hydration is low priority
    given = ctx.get_parameter_source("concurrency") is click.core.ParameterSource.COMMANDLINE
    hydrate_concurrency = (concurrency if given else 1) if then_hydrate else None
    try:
        token = resolve_token(url, token_file)
    except ImporterError as exc:
        fail(exc)
        return
    exit_now(_sync_server(url, db_path, token, options, hydrate_concurrency, progress, quiet))


def _parameter(ctx: click.Context, name: str) -> click.Parameter:
    return next(param for param in ctx.command.params if param.name == name)


def _refuse_options_set_by_config(ctx: click.Context) -> None:
    given = [
        flags
        for name, flags in _SET_BY_CONFIG.items()
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        options = ", ".join(option for option, _ in given)
        keys = ", ".join(key for _, key in given)
        them = "it" if len(given) == 1 else "them"
        raise click.UsageError(
            f"{options} cannot be given with --config: the config file sets {them} for each server "
            f"({keys}, in [defaults] or a [[server]] table)"
        )


def _sync_config(
    config_path: Path,
    names: list[str],
    full: bool,
    restart: bool,
    dry_run: bool,
    then_hydrate: bool,
    progress: str,
    quiet: bool,
) -> int:
    """``importer sync --config``: each server chosen, one after another, as ``importer sync
    URL --db <data_dir>/<name>.db`` with its options; the exit code of the whole run. A
    signal stops the server being synced, and the run with it."""
    from importer.fleet.config import ignored_environment_warning, load_config
    from importer.fleet.driver import fleet_exit_code

    warning = ignored_environment_warning()
    if warning is not None:
        click.echo(warning, err=True)
    try:
        config = load_config(config_path)
        servers = config.select(names)
        config.prepare(servers)
    except ImporterError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    # a config's concurrency is the sync's: hydration stays low priority, one request at a time
    hydrate_concurrency = 1 if then_hydrate else None
    codes: list[int] = []
    for server in servers:
        try:
            token = _config_token(server)
        except ImporterError as exc:
            click.echo(f"error: {exc}", err=True)  # it names the server
            codes.append(exc.exit_code)
            continue
        options = server.sync_options(full=full, restart=restart, dry_run=dry_run)
        code = _sync_server(
            server.url,
            Path(server.db_path),
            token,
            options,
            hydrate_concurrency,
            progress,
            quiet,
            server.name,
        )
        if code in (interrupted(signal.SIGINT), interrupted(signal.SIGTERM)):
            return code
        codes.append(code)
    return fleet_exit_code(codes)


def _config_token(server: ServerEntry) -> ResolvedToken:
    """A config server's token: its token_file, or its saved login (never IMPORTER_TOKEN)."""
    from importer.fleet.config import read_server_token
    from importer.http import redact_url

    token = read_server_token(server)
    if server.token_file is not None:
        return ResolvedToken(token, "token-file")
    return ResolvedToken(token, "login", redact_url(server.url.rstrip("/")))


def _sync_server(
    url: str,
    db_path: Path,
    token: ResolvedToken,
    options: SyncOptions,
    hydrate_concurrency: int | None,
    progress: str,
    quiet: bool,
    name: str | None = None,
) -> int:
    """One server's sync as ``importer sync`` runs it (signals, notices, the summary, errors
    on stderr), then its hydration unless ``hydrate_concurrency`` is None; the exit code.
    ``name``: the server's name in a config, before each of its lines."""
    from importer.model import RunStatus
    from importer.pipeline import Importer
    from importer.progress import Progress
    from importer.results import format_gone, format_summary

    prefix = f"{name}: " if name is not None else ""
    try:
        run = Importer(url, db_path, token.value, options, Progress(mode=progress))
        result = run_command(run.run, on_signal=_stop_import(run))
    except ImporterError as exc:
        shown = token.explain(exc)
        click.echo(f"error: {prefix}{shown}", err=True)
        return shown.exit_code
    if options.dry_run:
        click.echo(_named(format_gone(result.libraries), name))
    for lib in result.libraries:
        if lib.status is RunStatus.STOPPED:
            click.echo(f"importer: {prefix}{lib.title}: {lib.reason}", err=True)
    if not quiet:
        click.echo(
            _named(format_summary(result, as_json=progress == "json"), name, as_json=progress == "json")
        )
    code = result.exit_code
    if hydrate_concurrency is not None and code == 0:
        from importer.hydration.runner import HydrateOptions

        then = HydrateOptions(
            kind=result.server.kind,
            libraries=options.libraries,
            concurrency=hydrate_concurrency,
            verify_tls=options.verify_tls,
            notice=_notices(quiet, progress),
        )
        code = _run_hydrate(db_path, token, url, None, False, then, progress, quiet, name)
    return code


def _named(text: str, name: str | None, *, as_json: bool = False) -> str:
    """A config server's output: each line after ``NAME: `` (a JSON line: with a "name" key)."""
    if name is None:
        return text
    if as_json:
        import msgspec

        return msgspec.json.encode({"name": name, **msgspec.json.decode(text)}).decode()
    return "\n".join(f"{name}: {line}" for line in text.splitlines())


def exit_now(code: int) -> None:
    """End a command that is done: its output flushed, its workers ended, its files closed.
    Without the interpreter's teardown of aiohttp, uvloop and the rest (about 30 ms, a
    tenth of a small nightly run); nothing of ours is left for it to do."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _notice(message: str) -> None:
    click.echo(message, err=True)


def _json_notice(message: str) -> None:
    """A notice among ``--progress json`` lines: a JSON line too."""
    import msgspec

    click.echo(msgspec.json.encode({"event": "notice", "message": message}).decode(), err=True)


def _notices(quiet: bool, progress: str) -> Callable[[str], None] | None:
    if quiet:
        return None
    return _json_notice if progress == "json" else _notice


def _stop_hydrate(run: Hydrator) -> Callable[[signal.Signals], None]:
    """The first SIGINT/SIGTERM stops a hydration at once: the batches committed are kept."""

    def stop(sig: signal.Signals) -> None:
        click.echo(
            f"\n{sig.name}: stopping; the batches committed are kept (again to stop at once)...", err=True
        )
        run.cancel(sig.name)

    return stop


def _run_hydrate(
    db_path: Path,
    token: str | ResolvedToken,
    url: str | None,
    show: str | None,
    episodes: bool,
    options: HydrateOptions,
    progress: str,
    quiet: bool,
    name: str | None = None,
) -> int:
    """Run a hydration as a command does (signals, summary); its exit code. ``name``: the
    server's name in a config, before each of its lines."""
    from importer.hydration.result import format_summary
    from importer.hydration.runner import Hydrator
    from importer.progress import Progress

    resolved = token if isinstance(token, ResolvedToken) else ResolvedToken(token, "environment")
    try:
        run = Hydrator(
            db_path,
            resolved.value,
            url=url,
            show=show,
            episodes=episodes,
            options=options,
            progress=Progress(mode=progress),
        )
        result: HydrateResult = run_command(run.run, on_signal=_stop_hydrate(run))
    except ImporterError as exc:
        exc = resolved.explain(exc)
        click.echo(f"error: {name + ': ' if name else ''}{exc}", err=True)
        return exc.exit_code
    if not quiet:
        as_json = progress == "json"
        click.echo(_named(format_summary(result, as_json=as_json), name, as_json=as_json))
    return result.exit_code


# Stray arguments are taken, not refused by click, which would echo them: one may be a token.
@cli.command(context_settings={"allow_extra_args": True})
@click.argument("url", required=False)
@click.option(
    "--db", "db_path", required=True, type=click.Path(readable=False, path_type=Path), help="SQLite file."
)
@click.option(
    "--show",
    metavar="SOURCE_ID_OR_TITLE",
    help="Only this show (its source_id, or its exact title), now, whatever its etag.",
)
@click.option("--episodes", is_flag=True, help="Episodes too: guest stars, directors, writers, stills.")
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    metavar="REQ_PER_S",
    help="At most this many requests a second (default: no cap).",
)
@click.option(
    "--kind",
    type=click.Choice(["auto", "plex", "jellyfin", "emby"]),
    default="auto",
    show_default=True,
    help="Only the database's servers of this kind.",
)
@click.option(
    "--library", "libraries", multiple=True, help="A library title or id (repeatable); default: all."
)
@connection_options(concurrency=1, quiet="No summary on stdout, no estimate on stderr.")
def hydrate(
    url: str | None,
    db_path: Path,
    show: str | None,
    episodes: bool,
    rate: float | None,
    kind: str,
    libraries: tuple[str, ...],
    progress: str,
    quiet: bool,
    concurrency: int,
    insecure: bool,
    token_file: Path | None,
) -> None:
    """Fetch the cast, crew, genres, artwork and ratings that sync leaves out, for the items
    whose etag changed since they were last hydrated (or one --show, now).

    URL: where the database's server is reached now (default: where it was synced from);
    it must be the same server, recognised by its id."""
    refuse_stray_arguments("", "token", TOKEN_GOES)
    if url is not None and not url.lower().startswith(("http://", "https://")):
        # not echoed: a token given where the URL goes must not end up on the screen
        raise click.UsageError(
            "the URL argument is not a server URL (not shown: it may be a token); give one like "
            f"http://plex.lan:32400. The token goes in --token-file FILE or ${TOKEN_ENV}."
        )
    from importer.hydration.runner import HydrateOptions

    try:
        token = resolve_token(url, token_file, db_path=db_path)
    except ImporterError as exc:
        fail(exc)
        return
    options = HydrateOptions(
        kind=kind,
        libraries=libraries,
        concurrency=concurrency,
        rate=rate,
        verify_tls=not insecure,
        notice=_notices(quiet, progress),
    )
    exit_now(_run_hydrate(db_path, token, url, show, episodes, options, progress, quiet))


# Stray arguments are taken, not refused by click, which would echo them: one may be a token.
@cli.command(context_settings={"allow_extra_args": True})
@click.argument("url")
@sync_options(hydrate="Hydrate what changes (cast, crew, genres, artwork), as `importer hydrate` does.")
@click.option(
    "--poll",
    "poll_minutes",
    type=click.FloatRange(0.05),
    default=5.0,
    show_default=True,
    metavar="MINUTES",
    help="Without a usable change feed, an incremental sync this often.",
)
@connection_options(concurrency=4, quiet="No lines on stdout (notices still go to stderr).")
def watch(
    url: str,
    db_path: Path,
    kind: str,
    libraries: tuple[str, ...],
    poll_minutes: float,
    then_hydrate: bool,
    verify_after_days: float,
    allow_mass_delete: bool,
    progress: str,
    quiet: bool,
    concurrency: int,
    insecure: bool,
    token_file: Path | None,
) -> None:
    """Keep --db live: follow the server's change feed and apply each change within
    seconds; catch up with an incremental sync at the start and after every reconnection.
    Runs until SIGINT or SIGTERM (exit 130 / 143), holding the database's lock.

    One line per applied batch on stdout (--progress json: one JSON event each)."""
    refuse_stray_arguments(" after the URL", "token", TOKEN_GOES)
    from importer.pipeline import SyncOptions
    from importer.progress import Progress
    from importer.watching import AnyEvent, Notice, Watcher, WatchOptions

    as_json = progress == "json"

    def on_event(event: AnyEvent) -> None:
        if isinstance(event, Notice):
            click.echo(event.json() if as_json else f"importer: {event.line()}", err=True)
        elif not quiet:
            click.echo(event.json() if as_json else event.line())

    try:
        token = resolve_token(url, token_file)
    except ImporterError as exc:
        fail(exc)
        return
    try:
        options = WatchOptions(
            sync=SyncOptions(
                kind=kind,
                libraries=libraries,
                allow_mass_delete=allow_mass_delete,
                verify_after_days=verify_after_days,
                concurrency=concurrency,
                verify_tls=not insecure,
            ),
            poll_minutes=poll_minutes,
            hydrate=then_hydrate,
        )
        # catch-ups show progress as sync does, except a bar: between them the screen is the log
        mode = "none" if progress == "auto" else progress
        watcher = Watcher(
            url, str(db_path), token.value, options, on_event=on_event, progress=lambda: Progress(mode=mode)
        )

        def stop(sig: signal.Signals) -> None:
            click.echo(f"\n{sig.name}: stopping once the batch in hand is committed...", err=True)
            watcher.cancel(sig.name)

        run_command(watcher.run, on_signal=stop)
    except ImporterError as exc:
        fail(token.explain(exc))


# Stray arguments are taken, not refused by click, which would echo them: one may be a password.
@cli.command(context_settings={"allow_extra_args": True})
@click.argument("url")
@click.option(
    "--kind", type=click.Choice(["auto", "plex", "jellyfin", "emby"]), default="auto", show_default=True
)
@click.option("--user", help="Jellyfin/Emby: the user name (asked on a terminal otherwise).")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Jellyfin/Emby: file holding the password (otherwise ${PASSWORD_ENV}, or asked on a terminal).",
)
@click.option(
    "--quick-connect",
    is_flag=True,
    help="Jellyfin: no password; print a code to approve in Jellyfin (Quick Connect), and wait.",
)
@click.option("--insecure", is_flag=True, help="Do not verify the server's TLS certificate.")
def login(
    url: str, kind: str, user: str | None, password_file: Path | None, quick_connect: bool, insecure: bool
) -> None:
    """Log in to the server at URL once, and save its token for sync, hydrate and watch.

    Jellyfin and Emby: a user name and password (never an argument). Jellyfin also:
    --quick-connect. Plex: a link to open in a browser, approved on plex.tv.
    The token is saved in $XDG_CONFIG_HOME/importer (~/.config/importer), mode 0600."""
    refuse_stray_arguments(
        " after the URL", "password", f"--password-file FILE, ${PASSWORD_ENV}, or the prompt"
    )
    if not url.lower().startswith(("http://", "https://")):
        raise click.UsageError(
            "the URL argument is not a server URL (not shown: it may be a password); give one like "
            "http://jellyfin.lan:8096"
        )
    from importer import login as api
    from importer.login.saved import path as saved_path

    verify_tls = not insecure
    poll_s = _login_poll_seconds()
    try:
        server = run_command(lambda: api.identify_server(url, kind, verify_tls=verify_tls))
        if server.kind == "plex" and (user is not None or password_file is not None):
            raise ConfigError(
                "Plex logs in through plex.tv, not with a user name and password here: run "
                "`importer login URL` without --user and --password-file, and open the link it prints"
            )
        if server.kind == "plex" and not quick_connect:
            saved = run_command(
                lambda: api.login_with_plex(
                    url, server, on_link=_show_plex_link, poll_s=poll_s, verify_tls=verify_tls
                )
            )
        elif quick_connect:
            saved = run_command(
                lambda: api.login_with_quick_connect(
                    url, server, on_code=_show_quick_connect_code, poll_s=poll_s, verify_tls=verify_tls
                )
            )
        else:
            name = user if user is not None else _ask_user()
            password = read_password(password_file)
            saved = run_command(
                lambda: api.login_with_password(url, server, name, password, verify_tls=verify_tls)
            )
    except ImporterError as exc:
        fail(exc)
        return
    what = {"plex": "Plex", "jellyfin": "Jellyfin", "emby": "Emby"}[saved.kind]
    click.echo(
        f"Logged in to {what} server {server.name!r} as {saved.user}. The token is saved in "
        f"{saved_path()}: `importer sync {saved.url} --db FILE` uses it."
    )


def _login_poll_seconds() -> float:
    """Seconds between two polls of a login that waits (1; tests set ``IMPORTER_LOGIN_POLL_S``)."""
    value = os.environ.get(LOGIN_POLL_ENV, "").strip()
    if not value:
        return 1.0
    try:
        return max(0.01, float(value))
    except ValueError:
        raise click.UsageError(f"{LOGIN_POLL_ENV} must be a number of seconds") from None


def _show_plex_link(link: str) -> None:
    click.echo(f"Open this link, sign in to Plex and allow importer (waiting):\n  {link}", err=True)


def _show_quick_connect_code(code: str) -> None:
    click.echo(
        f"Quick Connect code: {code}\nIn Jellyfin, open your user's settings > Quick Connect, enter this "
        "code and authorize it (waiting; the code expires in 10 minutes).",
        err=True,
    )


def _ask_user() -> str:
    if not sys.stdin.isatty():
        raise ConfigError("no user name: pass --user NAME (or run on a terminal to be asked)")
    name: str = click.prompt("User", err=True)
    return name


def read_password(password_file: Path | None) -> str:
    """The password from ``--password-file``, ``IMPORTER_PASSWORD``, or a hidden prompt on a
    terminal; never from an argument. A file keeps every character but its final newline."""
    if password_file is not None:
        try:
            mode = password_file.stat().st_mode
            text = password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read the password file {str(password_file)!r}: {exc.strerror}"
            ) from exc
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            click.echo(
                f"warning: the password file {str(password_file)!r} is readable by other users; "
                f"run: chmod 600 {password_file}",
                err=True,
            )
        return text.removesuffix("\n").removesuffix("\r")
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env is not None:
        return from_env
    if not sys.stdin.isatty():
        raise ConfigError(
            f"no password: pass --password-file FILE or set {PASSWORD_ENV} (or run on a terminal to be asked)"
        )
    password: str = click.prompt("Password", hide_input=True, err=True)
    return password


@cli.command()
@click.argument("url")
def logout(url: str) -> None:
    """Forget the token `importer login` saved for the server at URL (and its other URLs)."""
    from importer.login import logout as forget

    try:
        gone = forget(url)
    except ImporterError as exc:
        fail(exc)
        return
    if gone is None:
        click.echo(f"importer: no login is saved for {_shown(url)}; nothing to forget", err=True)
        return
    urls = ", ".join(gone.urls)
    click.echo(f"Forgot the login to {gone.kind} server {gone.server_id} as {gone.user} ({urls}).")


def _shown(url: str) -> str:
    from importer.http import redact_url

    return redact_url(url)


@cli.command()
@click.option("--db", "db_path", required=True, type=click.Path(readable=False, path_type=Path))
def status(db_path: Path) -> None:
    """Servers, libraries, counts and the last runs of a database."""
    from importer.store.preflight import check_database
    from importer.store.queries import status_report

    try:
        check_database(db_path, readonly=True)  # the same refusals as sync, exit 2 (4: locked)
        click.echo(status_report(str(db_path)))
    except ImporterError as exc:
        fail(exc)


@cli.command()
@click.option(
    "--db", "db_path", default="demo.db", show_default=True, type=click.Path(readable=False, path_type=Path)
)
@click.option("--kind", type=click.Choice(["plex", "jellyfin", "emby"]), default="plex", show_default=True)
@click.option("--shows", type=click.IntRange(1), default=100, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--latency-ms", type=float, default=0.0, show_default=True, help="Added to every request.")
@click.option("--progress", type=click.Choice(["auto", "bar", "plain", "json", "none"]), default="auto")
def demo(db_path: Path, kind: str, shows: int, seed: int, latency_ms: float, progress: str) -> None:
    """Start an emulated server with a generated library and import it into --db."""
    from importer.emulator import Controls, LibrarySpec, make_server
    from importer.hydration.runner import HydrateOptions
    from importer.pipeline import Importer
    from importer.progress import Progress
    from importer.results import format_summary

    server = make_server(kind, LibrarySpec(seed=seed, shows=shows), controls=Controls(latency_ms=latency_ms))
    with server.running_in_thread() as url:
        click.echo(f"Emulated {kind} server at {url} with {shows} shows (seed {seed}).", err=True)
        started = time.monotonic()
        try:
            run = Importer(url, db_path, server.token, progress=Progress(mode=progress))
            result = run_command(run.run, on_signal=_stop_import(run))
        except ImporterError as exc:
            fail(exc)
            return
        seconds = time.monotonic() - started
        click.echo(format_summary(result))
        # the shows' cast, crew and genres too, while the server runs: the demo's database
        # is then one an app could use, and the queries below have something to show
        hydrated = (
            0
            if result.exit_code
            else _run_hydrate(
                db_path, server.token, url, None, False, HydrateOptions(), progress, quiet=False
            )
        )
    totals = {
        k: sum(lib.totals.get(k, 0) for lib in result.libraries) for k in ("shows", "seasons", "episodes")
    }
    click.echo(
        f"Imported {totals['shows']:,} shows, {totals['seasons']:,} seasons and "
        f"{totals['episodes']:,} episodes "
        f"in {seconds:.2f} s with {result.requests} requests into {db_path}."
    )
    click.echo("Try:")
    click.echo(
        f'  sqlite3 {db_path} "SELECT s.title, e.season_number, e.episode_number, e.title '
        f'FROM episodes e JOIN shows s ON s.id = e.show_id ORDER BY e.added_at DESC LIMIT 5"'
    )
    click.echo(
        f'  sqlite3 {db_path} "SELECT p.name, c.role FROM credits c JOIN people p ON p.id = c.person_id '
        "WHERE c.item_type = 'show' AND c.kind = 'actor' AND c.item_id = (SELECT min(id) FROM shows) "
        'ORDER BY c.position"'
    )
    click.echo(f"  importer status --db {db_path}")
    sys.exit(result.exit_code or hydrated)


@cli.command()
@click.option("--kind", type=click.Choice(["plex", "jellyfin", "emby"]), required=True)
@click.option("--shows", type=click.IntRange(1), default=100, show_default=True)
@click.option(
    "--episodes", type=click.IntRange(1), default=None, help="Exactly this many episodes (overrides --shows)."
)
@click.option("--shape", type=click.Choice(["varied", "seed"]), default="varied", show_default=True,
              help="varied: realistic odd shapes; seed: N shows x 5 seasons x 10 episodes.")  # fmt: skip
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: any free port.")
@click.option(
    "--base-path", default="", help="Serve under a path, as behind a reverse proxy (e.g. /jellyfin)."
)
@click.option("--latency-ms", type=float, default=0.0, show_default=True)
@click.option(
    "--item-cost-us", type=float, default=0.0, show_default=True, help="Server time per item listed."
)
@click.option(
    "--page-cap", type=click.IntRange(1), default=None, help="Plex: return at most this many per page."
)
@click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path), help="Use this token.")
@click.option(
    "--cache-responses", is_flag=True, help="Answer a repeated request from a disk cache (benches)."
)
@click.option(
    "--user",
    "users",
    multiple=True,
    metavar="NAME:PASSWORD",
    help="A user who can log in (repeatable); default: one, 'emulator', with a random password (printed).",
)
def emulator(
    kind: str,
    shows: int,
    episodes: int | None,
    shape: str,
    seed: int,
    host: str,
    port: int,
    base_path: str,
    latency_ms: float,
    item_cost_us: float,
    page_cap: int | None,
    token_file: Path | None,
    cache_responses: bool,
    users: tuple[str, ...],
) -> None:
    """Run an emulated Plex, Jellyfin or Emby server until SIGINT or SIGTERM (exit 0)."""
    # A service manager stops it with SIGTERM: that is its normal end, also while it
    # builds its library, before its event loop runs.
    exit_on_signal(stopping_is_success)
    from importer.emulator import Controls, LibrarySpec, make_server

    token = token_file.read_text().strip() if token_file else None
    spec = LibrarySpec(seed=seed, shows=shows, shape=shape, episodes=episodes)  # type: ignore[arg-type]
    controls = Controls(
        latency_ms=latency_ms, item_cost_us=item_cost_us, page_cap=page_cap, cache_responses=cache_responses
    )
    logins: dict[str, str] = {}
    for pair in users:
        name, sep, password = pair.partition(":")
        if not sep or not name:
            raise click.BadParameter("give NAME:PASSWORD", param_hint="--user")
        logins[name] = password
    server = make_server(
        kind, spec, token=token, controls=controls, base_path=base_path, users=logins or None
    )
    # A dedicated process: the cyclic GC would keep rescanning the library's long-lived
    # objects and cost about a quarter of the server's CPU.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)

    async def serve() -> None:
        try:
            url = await server.start(host, port)
            click.echo(f"url: {url}")
            click.echo(f"token: {server.token}")
            for name, password in server.sessions.users.items():  # after the token: tools read it first
                click.echo(f"user: {name}")
                if not logins:  # a password it made up; one given on the command line is known
                    click.echo(f"password: {password}")
            sys.stdout.flush()
            await asyncio.Event().wait()  # until a signal cancels this task
        finally:
            await server.stop()  # in-flight requests get a few seconds to finish

    run_command(serve, stopped=stopping_is_success)


def _add_fleet() -> None:
    from importer.fleet.cli import fleet

    cli.add_command(fleet)


_add_fleet()


def main() -> None:
    # Until a command runs its event loop, a signal ends the process with the usual code
    # (130/143: "interrupted, nothing started"), not click's "Aborted!" and 1.
    exit_on_signal()
    _workers_run_this_package()
    cli()


def _workers_run_this_package() -> None:
    """Workers start with ``python -P`` (no current folder on their path), so they import
    the installed package. ``python -m importer`` in a folder that holds an ``importer/``
    package (a checkout) runs that folder's package here, by Python's own rule: the
    workers are then told to import it too, so that a run is one version of the code."""
    if sys.flags.safe_path or not sys.path:
        return
    first = Path(sys.path[0] or os.curdir).resolve()
    if Path(__file__).resolve().parent.parent != first:
        return  # the console script, python -P, or an installed package
    pythonpath = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(first), *([pythonpath] if pythonpath else [])])
