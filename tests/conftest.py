"""Options for the test run: ``pytest --campaign N`` runs N random kills (default: a few);
``pytest --faults-full`` runs the whole fault matrix (default: a pairwise subset)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--campaign",
        type=int,
        default=0,
        help="random kill-and-resume rounds (hundreds for a long campaign; CI runs a few)",
    )
    parser.addoption(
        "--faults-full",
        action="store_true",
        help="every fault x phase x server kind (CI runs a pairwise subset)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rounds = config.getoption("--campaign")
    if rounds:  # a long campaign outlives the default per-test timeout
        for item in items:
            if item.name == "test_random_kills":
                item.add_marker(pytest.mark.timeout(300 + 10 * rounds))
