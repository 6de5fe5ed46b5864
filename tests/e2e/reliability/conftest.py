"""Fixtures of the control-plane reliability tests: the operator e2e tests' ``operator``
(with a ``crds`` that survives two workers applying the CRDs at once) and a failing test's
operator log, on top of tests/e2e/conftest.py's ``k8s`` and ``namespace``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ..cluster import Cluster, KubectlError
from ..operator.conftest import CRD_DIR, OperatorProcess, get, operator

__all__ = ["Operator", "crds", "must_get", "operator"]

#: the ``operator`` fixture: ``operator(*extra_args, namespaces=None, start=True)``
Operator = Callable[..., OperatorProcess]


@pytest.fixture(scope="session")
def crds(k8s: Cluster) -> None:
    """The Echelon CRDs applied (and Established) once per worker. Two xdist workers applying
    them at the same moment can both try to create them (AlreadyExists): apply again."""
    for attempt in range(5):
        try:
            k8s.kubectl("apply", "-f", str(CRD_DIR))
            break
        except KubectlError as exc:
            if "AlreadyExists" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.5)
    for crd in ("taskgroups.echelon.dev", "pollingpools.echelon.dev"):
        k8s.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


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
