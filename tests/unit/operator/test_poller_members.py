"""The poller notices pods coming and going, and has the pool re-rendered so that the budgets
are re-split by pod name (sidecar.pods)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from echelon_operator import poller
from echelon_operator.entries import WorkloadEntry
from echelon_operator.state import PoolState


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"phase": "Pending"},
            "spec": {"containers": [{"name": "app"}, {"name": "echelon-sidecar"}],
                     "volumes": [{"name": "echelon-config",
                                  "configMap": {"name": "echelon-pool-p"}}]}}


def test_a_new_pod_has_the_pool_re_rendered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = [pod("web-a"), pod("web-b")]
    scheduled: list[tuple[str, str]] = []

    async def list_pods(namespace: str, selector: str) -> list[dict[str, Any]]:
        assert (namespace, selector) == ("ns", "app=web")
        return list(listed)

    async def update_status(entry: Any, build: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return build({}), {}

    async def no_polls(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    entry = SimpleNamespace(name="p", generation=1)
    rt = SimpleNamespace(
        indices=SimpleNamespace(
            pool=lambda ns, name: entry,
            workloads=lambda ns, name: [WorkloadEntry("ns", "web", "u", "p", 2, "app=web")]),
        kube=SimpleNamespace(list_pods=list_pods),
        settings=SimpleNamespace(poll_timeout=1.0, poll_concurrency=4),
        pool_state={("ns", "p"): PoolState("p", "uid", pods=("web-a", "web-b"))},
        members={}, health={}, update_status=update_status,
        pool_runs=SimpleNamespace(schedule=scheduled.append))
    monkeypatch.setattr(poller, "poll_sidecars", no_polls)

    asyncio.run(poller.poll_pool(rt, "ns", "p"))  # type: ignore[arg-type]
    assert scheduled == [] and rt.members[("ns", "p")] == ("web-a", "web-b")

    listed.append(pod("web-c"))  # scaled to 3
    asyncio.run(poller.poll_pool(rt, "ns", "p"))  # type: ignore[arg-type]
    assert scheduled == [("ns", "p")]
    assert rt.members[("ns", "p")] == ("web-a", "web-b", "web-c")
