"""Options for the test run: ``pytest --campaign N`` runs N random kills (default: a few)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--campaign",
        type=int,
        default=0,
        help="random kill-and-resume rounds (hundreds for a long campaign; CI runs a few)",
    )
