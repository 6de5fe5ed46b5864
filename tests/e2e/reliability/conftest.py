"""Fixtures of the control-plane reliability tests: the operator e2e tests' own (``crds``,
``operator``) and a failing test's operator log, on top of tests/e2e/conftest.py's ``k8s`` and
``namespace``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..operator.conftest import crds, operator

__all__ = ["crds", "operator"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]  # read by `operator`
