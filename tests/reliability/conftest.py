"""Fixtures of the reliability suite: the integration fixtures (fake upstreams, ``make_sidecar``,
SDK clients) plus raw-HTTP helpers that see exactly what a client receives.

``--soak-seconds N`` (or ``ECHELON_SOAK_SECONDS=N``) sets how long the soak test runs
(default 30; the full mode is 600).
"""

from __future__ import annotations

import os

import pytest

from ..integration.conftest import fake, make_sidecar, upstream_key

__all__ = ["fake", "make_sidecar", "upstream_key"]

DEFAULT_SOAK_SECONDS = 30.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-seconds", type=float, default=None,
                     help="how long tests/reliability/test_soak.py runs (default 30 s, or "
                     "ECHELON_SOAK_SECONDS; the full mode is 600)")


@pytest.fixture
def soak_seconds(request: pytest.FixtureRequest) -> float:
    given = request.config.getoption("--soak-seconds", default=None)
    if given is None:
        given = float(os.environ.get("ECHELON_SOAK_SECONDS", DEFAULT_SOAK_SECONDS))
    return float(given)
