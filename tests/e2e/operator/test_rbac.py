"""The rules of echelon_operator.rbac are enough for the operator, and no more."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from echelon_operator import rbac

from ..cluster import Cluster
from ..podspec import names, template_spec
from .conftest import SAMPLES, apply, get, wait_for
from .manifests import global_config

SA = "echelon-operator"


@pytest.fixture
def namespaces(k8s: Cluster) -> Iterator[tuple[str, str]]:
    """Two more namespaces: the operator's own, and one it does not watch."""
    names = (f"e2e-op-{uuid.uuid4().hex[:8]}", f"e2e-other-{uuid.uuid4().hex[:8]}")
    for name in names:
        k8s.kubectl("create", "-f", "-", input={
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"echelon.dev/e2e": "true"}}})
    try:
        yield names
    finally:
        for name in names:
            k8s.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


def can(k8s: Cluster, namespace: str | None, *args: str, sa_ns: str) -> bool:
    ns = ["-n", namespace] if namespace else []
    proc = k8s.kubectl("auth", "can-i", *args, *ns,
                       f"--as=system:serviceaccount:{sa_ns}:{SA}", check=False)
    return proc.stdout.strip() == "yes"


def test_namespaced_rules_allow_what_the_operator_needs_and_nothing_more(
    k8s: Cluster, namespace: str, namespaces: tuple[str, str], operator, tmp_path: Path
) -> None:
    op_ns, other = namespaces
    k8s.kubectl("create", "serviceaccount", SA, "-n", op_ns)
    docs = rbac.manifests(service_account=SA, operator_namespace=op_ns, mode="namespaced",
                          namespaces=[namespace])
    k8s.kubectl("apply", "-f", "-", input={"apiVersion": "v1", "kind": "List", "items": docs})

    yes = [
        (namespace, "watch", "taskgroups.echelon.dev"),
        (namespace, "patch", "pollingpools.echelon.dev"),
        (namespace, "patch", "pollingpools.echelon.dev", "--subresource=status"),
        (namespace, "create", "configmaps"),
        (namespace, "patch", "configmaps"),
        (namespace, "patch", "deployments.apps"),
        (namespace, "list", "pods"),
        (namespace, "create", "events"),
        (op_ns, "get", "configmap/echelon-global-config"),
    ]
    no = [
        (namespace, "get", "secrets"),
        (namespace, "list", "secrets"),
        (namespace, "delete", "configmaps"),
        (namespace, "delete", "deployments.apps"),
        (other, "patch", "deployments.apps"),
        (other, "list", "configmaps"),
        (other, "watch", "taskgroups.echelon.dev"),
        (op_ns, "get", "configmap/something-else"),
        (op_ns, "list", "configmaps"),
        (op_ns, "get", "secrets"),
        (None, "list", "namespaces"),
        (None, "list", "customresourcedefinitions.apiextensions.k8s.io"),
    ]
    for ns, *args in yes:
        assert can(k8s, ns, *args, sa_ns=op_ns), f"should be allowed: {args} in {ns}"
    for ns, *args in no:
        assert not can(k8s, ns, *args, sa_ns=op_ns), f"should be denied: {args} in {ns}"

    # and the operator really runs with exactly these rights: the global config from its own
    # namespace, the samples in the watched one
    kubeconfig = k8s.service_account_kubeconfig(op_ns, SA, tmp_path / "sa.kubeconfig")
    op = operator("--operator-namespace", op_ns, start=False)
    op.env["KUBECONFIG"] = str(kubeconfig)
    op.start()
    apply(k8s, op_ns, global_config(models=yaml.safe_load(
        next(d for d in yaml.safe_load_all((SAMPLES / "00-global-config.yaml").read_text())
             if d)["data"]["config.yaml"])["models"]))
    for sample in ("10-taskgroups.yaml", "20-pollingpools.yaml", "30-app-deployment.yaml"):
        apply(k8s, namespace, SAMPLES / sample)
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-thinking-pool"),
             what="the pool's ConfigMap, written with the ServiceAccount's rights")
    wait_for(lambda: len(names(template_spec(get(k8s, namespace, "deployment", "analysis-app"))))
             == 2, what="the sidecar injected")
    wait_for(lambda: (get(k8s, namespace, "taskgroup", "thinking-group")["status"]
                      .get("ready") == "True"), what="status written")
    # an HTTP 403 anywhere in the log (not a log timestamp's milliseconds, ",403")
    log = op.log_text()
    assert "Forbidden" not in log and not re.search(r"(?<![,.\d])403(?!\d)", log), log[-3000:]
