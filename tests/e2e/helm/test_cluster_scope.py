"""The chart's defaults, the README's quickstart: one cluster-wide operator for every namespace.

`helm install` with default values (ClusterRole, every namespace watched, the CRDs from the
chart) on a control plane of this test's own -- an operator watching every namespace must not
reconcile the other tests' namespaces of the shared cluster. Then the quickstart's steps in
two application namespaces, with the operator running as the chart's ServiceAccount.
"""

from __future__ import annotations

from pathlib import Path

from ...unit.chart.helm import CHART
from ..cluster import Cluster
from ..operator.conftest import SAMPLES, OperatorProcess, free_port, get, wait_for
from ..own_cluster import OwnCluster
from ..podspec import names, template_spec
from .conftest import EXAMPLE_CATALOG, Chart, operator_command
from .test_rbac import can

SYSTEM = "echelon-system"
TEAMS = ("team-a", "team-b")


def _pool_configmap(k8s: Cluster, namespace: str) -> dict | None:
    return get(k8s, namespace, "configmap", "echelon-pool-thinking-pool")


def _sidecars(k8s: Cluster, namespace: str) -> list[str]:
    """The container names of analysis-app's pods, the sidecar's in either form."""
    return names(template_spec(get(k8s, namespace, "deployment", "analysis-app")))


def test_default_install_watches_every_namespace_with_a_least_privilege_cluster_role(
    own_cluster: OwnCluster, tmp_path: Path
) -> None:
    k8s = own_cluster.cluster
    k8s.kubectl("create", "namespace", SYSTEM)
    chart = Chart(k8s, SYSTEM, tmp_path / "helm-home")
    # the defaults, except what a cluster without a registry or kubelet needs: the catalog
    args = ["install", "echelon", str(CHART), "--namespace", SYSTEM,
            "--values", str(EXAMPLE_CATALOG)]
    chart.helm(*args)
    try:
        k8s.wait_established("taskgroups.echelon.dev", "pollingpools.echelon.dev")
        dep = get(k8s, SYSTEM, "deployment", "echelon")
        assert dep is not None
        op_args, rendered_env, account = operator_command(dep)
        port = free_port()
        env = dict(k8s.env)
        env.pop("KUBERNETES_SERVICE_HOST", None)
        env.update(rendered_env)
        env["ECHELON_LIVENESS"] = f"http://127.0.0.1:{port}/healthz"
        env["KUBECONFIG"] = str(k8s.service_account_kubeconfig(
            SYSTEM, account, tmp_path / "sa.kubeconfig"))
        operator = OperatorProcess(k8s, op_args, tmp_path / "operator", env, port)
        operator.start()
        try:
            for team in TEAMS:
                k8s.kubectl("create", "namespace", team)
                k8s.kubectl("wait", "--for=create", "serviceaccount/default", "-n", team,
                            "--timeout=60s")
                k8s.kubectl("-n", team, "apply", "-f", str(SAMPLES / "10-taskgroups.yaml"),
                            "-f", str(SAMPLES / "20-pollingpools.yaml"),
                            "-f", str(SAMPLES / "30-app-deployment.yaml"))
            for team in TEAMS:
                cm = wait_for(lambda team=team: _pool_configmap(k8s, team), timeout=90,
                              what=f"thinking-pool's ConfigMap in {team}")
                # the catalog came from the chart's values (the operator's own namespace)
                assert "anthropic-claude-3-opus" in cm["data"]["config.yaml"]
                wait_for(lambda team=team: "echelon-sidecar" in _sidecars(k8s, team),
                         timeout=90, what=f"the sidecar in {team}'s analysis-app")
                wait_for(lambda team=team: (get(k8s, team, "taskgroup", "thinking-group") or {})
                         .get("status", {}).get("observedGeneration") == 1,
                         timeout=90, what=f"thinking-group's status in {team}")
            out = k8s.kubectl("get", "tg", "--all-namespaces").stdout
            assert all(team in out for team in TEAMS), out
        finally:
            operator.stop()
        sa = f"system:serviceaccount:{SYSTEM}:{account}"
        for verb in ("get", "list", "watch"):
            assert not can(k8s, None, verb, "secrets", account=sa), f"{verb} secrets"
        for verb in ("list", "watch", "patch"):
            assert can(k8s, None, verb, "taskgroups.echelon.dev", account=sa), verb
            assert can(k8s, None, verb, "deployments.apps", account=sa), verb
        assert not can(k8s, None, "delete", "deployments.apps", account=sa)
        assert not can(k8s, None, "create", "clusterroles.rbac.authorization.k8s.io",
                       account=sa)
    finally:
        chart.helm("uninstall", "echelon", "--namespace", SYSTEM, check=False)
