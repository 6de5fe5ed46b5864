"""Fixtures of the control-plane reliability tests: the operator e2e tests' ``operator``
(with a ``crds`` that survives two workers applying the CRDs at once) and a failing test's
operator log, on top of tests/e2e/conftest.py's ``k8s`` and ``namespace``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..cluster import Cluster
from ..operator.conftest import OperatorProcess, get, operator

__all__ = ["Operator", "must_get", "operator"]

#: the ``operator`` fixture: ``operator(*extra_args, namespaces=None, start=True)``
Operator = Callable[..., OperatorProcess]


def must_get(k8s: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    """The object, which must exist."""
    obj = get(k8s, namespace, kind, name)
    assert obj is not None, f"{kind}/{name} does not exist in {namespace}"
    return obj


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]  # read by `operator`
