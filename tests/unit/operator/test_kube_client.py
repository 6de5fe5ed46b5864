"""The operator's Kubernetes client wrapper outside of any cluster."""

from __future__ import annotations

import asyncio

import kubernetes
import pytest

from echelon_operator.kube import Kube, KubeError


def test_a_closed_client_refuses_calls_with_a_clear_error() -> None:
    """A handler still running while the operator stops gets a KubeError saying so (it got
    RuntimeError('cannot schedule new futures after shutdown') from the closed pool)."""
    kube = Kube(kubernetes.client.ApiClient(kubernetes.client.Configuration()), workers=1)
    kube.close()
    with pytest.raises(KubeError, match="the operator is stopping") as info:
        asyncio.run(kube.get_configmap("ns", "cm"))
    assert info.value.status == 0
