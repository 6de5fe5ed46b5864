"""The chart's RBAC is least privilege: no Secret at all, nothing outside the watched
namespaces (namespaced scope), only the global-config ConfigMap in its own namespace."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ..cluster import Cluster
from .conftest import Chart


@pytest.fixture
def other_namespace(k8s: Cluster) -> Iterator[str]:
    name = f"e2e-other-{uuid.uuid4().hex[:8]}"
    k8s.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        k8s.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def can(k8s: Cluster, namespace: str | None, *args: str, account: str) -> bool:
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    proc = k8s.kubectl("auth", "can-i", *args, *where, f"--as={account}", check=False)
    assert proc.stdout.strip() in ("yes", "no"), proc.stderr
    return proc.stdout.strip() == "yes"


def test_namespaced_scope_reaches_only_the_watched_namespace_and_no_secret(
    k8s: Cluster, chart: Chart, namespace: str, app_namespace: str, other_namespace: str
) -> None:
    chart.install(sets={"rbac.scope": "namespaced", "watchNamespaces": [app_namespace]})
    account = f"system:serviceaccount:{namespace}:echelon"
    allowed = [
        (app_namespace, "watch", "taskgroups.echelon.dev"),
        (app_namespace, "patch", "pollingpools.echelon.dev", "--subresource=status"),
        (app_namespace, "patch", "deployments.apps"),
        (app_namespace, "create", "configmaps"),
        (app_namespace, "list", "pods"),
        (app_namespace, "create", "events"),
        (namespace, "get", "configmap/echelon-global-config"),
    ]
    denied = [
        # Secrets: never, anywhere (the sidecars get them through secretKeyRef)
        *[(ns, verb, "secrets") for ns in (app_namespace, namespace, other_namespace, None)
          for verb in ("get", "list", "watch")],
        # nothing in a namespace it does not watch, including its own
        (other_namespace, "patch", "deployments.apps"),
        (other_namespace, "list", "deployments.apps"),
        (other_namespace, "watch", "taskgroups.echelon.dev"),
        (other_namespace, "create", "configmaps"),
        (namespace, "patch", "deployments.apps"),
        (namespace, "list", "configmaps"),
        (namespace, "get", "configmap/something-else"),
        # no deletes; nothing cluster-wide
        (app_namespace, "delete", "deployments.apps"),
        (app_namespace, "delete", "configmaps"),
        (None, "list", "namespaces"),
        (None, "patch", "deployments.apps"),
        (None, "list", "customresourcedefinitions.apiextensions.k8s.io"),
    ]
    for ns, *args in allowed:
        assert can(k8s, ns, *args, account=account), f"should be allowed: {args} in {ns}"
    for ns, *args in denied:
        assert not can(k8s, ns, *args, account=account), f"should be denied: {args} in {ns}"


def test_cluster_scope_still_never_reads_a_secret(
    k8s: Cluster, chart: Chart, namespace: str, app_namespace: str
) -> None:
    chart.install()
    account = f"system:serviceaccount:{namespace}:echelon"
    assert can(k8s, app_namespace, "patch", "deployments.apps", account=account)
    assert can(k8s, None, "watch", "pollingpools.echelon.dev", account=account)
    for ns in (app_namespace, namespace, None):
        for verb in ("get", "list", "watch"):
            assert not can(k8s, ns, verb, "secrets", account=account), (verb, ns)
    assert not can(k8s, app_namespace, "delete", "configmaps", account=account)
    assert not can(k8s, None, "create", "clusterroles.rbac.authorization.k8s.io",
                   account=account)
