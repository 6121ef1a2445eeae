"""Options, a clean environment, and the choice of hot-path implementation for the test run.

Options: ``pytest --campaign N`` runs N random kills, and N random sequences of changes
and faults under ``importer watch`` (default: a few); ``pytest
--faults-full`` runs the whole fault matrix (default: a pairwise subset).

The environment: every ``IMPORTER_*`` variable changes what the importer does (the token,
the pure-Python twin, crash points that SIGKILL the whole process group, and whatever comes
next), so none from the developer's shell reaches a test; see ``clean_environ``.

The implementation: the end-to-end modules opt into ``implementation``, which runs each of
their tests on the compiled build and on the pure-Python twin; see there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Every variable with this prefix is the importer's own; none may come from the shell.
PREFIX = "IMPORTER_"
_removed = pytest.StashKey[list[str]]()


def _importer_variables() -> list[str]:
    return sorted(name for name in os.environ if name.startswith(PREFIX))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--campaign",
        type=int,
        default=0,
        help=(
            "random rounds of the campaigns: kill-and-resume, and watch's change and fault "
            "sequences (hundreds for a long campaign; CI runs a few)"
        ),
    )
    parser.addoption(
        "--faults-full",
        action="store_true",
        help="every fault x phase x server kind (CI runs a pairwise subset)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Drop the shell's ``IMPORTER_*`` variables before any test module is imported.

    A fixture comes too late for some of them: ``importer.crashpoints`` reads
    ``IMPORTER_CRASH_AT`` at import time (collection), and its main-side points would kill
    pytest's own process group. The names (never the values: one is a token) are shown in
    the report header.
    """
    removed = _importer_variables()
    for name in removed:
        del os.environ[name]
    config.stash[_removed] = removed
    config.addinivalue_line(
        "markers",
        "compiled_only: in a module that runs on both implementations, run this test (or "
        "parameter set) on the compiled build only",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    removed = config.stash.get(_removed, [])
    return f"ignored from the environment: {', '.join(removed)}" if removed else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rounds = config.getoption("--campaign")
    if rounds:  # a long campaign outlives the default per-test timeout
        for item in items:
            if item.name.startswith("test_random_kills"):
                item.add_marker(pytest.mark.timeout(300 + 10 * rounds))
    twin_left_out = [
        item
        for item in items
        if _implementation_of(item) == "python" and item.get_closest_marker("compiled_only")
    ]
    if twin_left_out:
        config.hook.pytest_deselected(items=twin_left_out)
        items[:] = [item for item in items if item not in twin_left_out]


def _implementation_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("implementation") if callspec is not None else None


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without any ``IMPORTER_*`` variable.

    Function scope, through ``monkeypatch``: the shell's variables are already gone (see
    ``pytest_configure``), and this also undoes one that an earlier test set on
    ``os.environ`` and left behind. A test that wants one sets it on purpose, after this
    has run: ``monkeypatch.setenv`` (undone at its end), a child's ``env=``, or the
    ``implementation`` fixture, which depends on this one.
    """
    for name in _importer_variables():
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def private_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty config folder (``XDG_CONFIG_HOME``, inherited by every
    ``python -m importer`` it starts): the developer's saved logins and device id never reach
    a test (a stored token would be used without any flag), and a test's never reach theirs.
    ``IMPORTER_PASSWORD`` is kept out like every ``IMPORTER_*`` variable (``clean_environ``).
    Returns the folder (importer's own is ``<it>/importer``)."""
    folder = tmp_path_factory.mktemp("xdg-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(folder))
    return folder


def _compiled_build_missing() -> str | None:
    """Why ``importer._speedups`` cannot be loaded here, or None when it can."""
    try:
        from importer import _speedups  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


@pytest.fixture(params=["compiled", "python"])
def implementation(
    request: pytest.FixtureRequest, clean_environ: None, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The hot-path implementation the importer's processes use in this test: "compiled"
    (``importer._speedups``) or "python" (the twin, ``IMPORTER_PURE_PYTHON=1``).

    The hot path runs in the decoder worker, a fresh interpreter that inherits this
    process's environment, as does every ``python -m importer`` a test starts. So the
    choice is the environment at the moment a test starts a run, set here for the whole
    test (and undone after it). The pytest process itself keeps whatever it imported
    first (the compiled build); it decodes no pages.

    A module opts in with ``pytestmark = pytest.mark.usefixtures("implementation")``
    (or a single test with the same mark); its tests then run twice, ``[compiled-...]``
    and ``[python-...]``. A test that needs the name takes the fixture as an argument. A
    test or parameter set marked ``compiled_only`` keeps only its compiled run (the twin's
    is deselected): for what the decoder's code cannot change, where a second run costs
    time and proves nothing.

    Without the compiled build, "compiled" fails on CI (``CI=true``, which must build it,
    as ``test_speedups.test_ci_uses_the_compiled_extension`` requires) and is skipped
    elsewhere: the importer would silently run the twin, and the test would prove nothing.
    """
    name: str = request.param
    if name == "compiled":
        missing = _compiled_build_missing()
        if missing is not None:
            reason = f"importer._speedups is not built here ({missing}); pip install . with a C compiler"
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI must test the compiled build: {reason}", pytrace=False)
            pytest.skip(reason)
        monkeypatch.delenv("IMPORTER_PURE_PYTHON", raising=False)
    else:
        monkeypatch.setenv("IMPORTER_PURE_PYTHON", "1")
    return name
