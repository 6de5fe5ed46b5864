"""peering.enabled: replicas run with the chart's args and RBAC; one renders, the other
stands by (its RBAC lets it create and use the KopfPeering object, nothing more)."""

from __future__ import annotations

from ..cluster import Cluster
from ..operator.conftest import SAMPLES, apply, get, wait_for
from .conftest import EXAMPLE_CATALOG, Chart, operator_command
from .test_rbac import can


def test_two_chart_replicas_peer_under_the_charts_rbac(
    k8s: Cluster, chart: Chart, namespace: str, app_namespace: str, run_operator,
    peering_crds: None,
) -> None:
    release = chart.install(values=(EXAMPLE_CATALOG,), sets={
        "rbac.scope": "namespaced", "watchNamespaces": [app_namespace],
        "peering.enabled": True, "operator.replicas": 2, "operator.logLevel": "INFO"})
    dep = chart.deployment(release)
    args, _, account = operator_command(dep)
    assert args == ["--peering", "echelon"] and dep["spec"]["replicas"] == 2
    sa = f"system:serviceaccount:{namespace}:{account}"
    for verb in ("create", "get", "watch", "patch"):
        assert can(k8s, app_namespace, verb, "kopfpeerings.kopf.dev", account=sa), verb
    assert not can(k8s, app_namespace, "delete", "kopfpeerings.kopf.dev", account=sa)

    replicas = [run_operator(release), run_operator(release)]

    def peers() -> dict | None:
        obj = get(k8s, app_namespace, "kopfpeerings.kopf.dev", "echelon")
        status = (obj or {}).get("status") or {}
        return status if len(status) == 2 else None

    wait_for(peers, timeout=60, what="both replicas in the KopfPeering the operator created")
    apply(k8s, app_namespace, SAMPLES / "10-taskgroups.yaml")
    apply(k8s, app_namespace, SAMPLES / "20-pollingpools.yaml")
    wait_for(lambda: get(k8s, app_namespace, "configmap", "echelon-pool-thinking-pool"),
             timeout=90, what="thinking-pool's ConfigMap, rendered by the active replica")

    def active(log: str) -> bool:  # kopf's last word on this replica
        return log.rfind("Resuming operations") > log.rfind("Pausing operations")

    wait_for(lambda: [active(op.log_text()) for op in replicas].count(True) == 1,
             timeout=60, what="exactly one active replica")
