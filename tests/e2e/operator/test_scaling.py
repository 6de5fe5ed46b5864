"""Budgets are cluster-wide: the sidecar count follows the replicas of the served Deployments."""

from __future__ import annotations

import yaml

from ..cluster import Cluster
from ..podspec import names, template_spec
from .conftest import apply, get, wait_for
from .manifests import deployment, global_config, polling_pool, task_group


def sidecars_in_configmap(k8s: Cluster, namespace: str) -> int | None:
    cm = get(k8s, namespace, "configmap", "echelon-pool-p")
    return yaml.safe_load(cm["data"]["config.yaml"])["sidecar"]["sidecars"] if cm else None


def test_scaling_a_labelled_deployment_re_splits_the_budget(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("app", pool="p", replicas=1))
    wait_for(lambda: sidecars_in_configmap(k8s, namespace) == 1, what="sidecars: 1")
    template = wait_for(lambda: (d := get(k8s, namespace, "deployment", "app"))
                        and len(names(template_spec(d))) == 2 and d,
                        what="the sidecar")["spec"]["template"]

    k8s.kubectl("scale", "deployment", "app", "-n", namespace, "--replicas=4")
    wait_for(lambda: sidecars_in_configmap(k8s, namespace) == 4, what="sidecars: 4")
    apply(k8s, namespace, deployment("worker", pool="p", replicas=2))
    wait_for(lambda: sidecars_in_configmap(k8s, namespace) == 6, what="sidecars: 4 + 2")
    wait_for(lambda: get(k8s, namespace, "pollingpool", "p")["status"].get("sidecars") == 6,
             what="SIDECARS column 6")
    assert get(k8s, namespace, "pollingpool", "p")["status"]["deployments"] == ["app", "worker"]

    k8s.kubectl("scale", "deployment", "app", "-n", namespace, "--replicas=0")
    wait_for(lambda: sidecars_in_configmap(k8s, namespace) == 2, what="sidecars: 0 + 2")
    k8s.kubectl("delete", "deployment", "worker", "-n", namespace)
    wait_for(lambda: sidecars_in_configmap(k8s, namespace) == 1,
             what="sidecars: at least 1 even with no replica")
    # scaling never touched the pod template: no restarts for a budget change
    assert get(k8s, namespace, "deployment", "app")["spec"]["template"] == template
