"""The e2e cluster is a real API server: CRDs, custom resources, controllers, status."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest

from .cluster import Cluster

GROUP = "smoke.e2e.echelon.dev"


@pytest.fixture
def smoke_crd(k8s: Cluster) -> Iterator[dict[str, str]]:
    """A namespaced CRD with a unique kind (CRDs are cluster-scoped, shared by all tests)."""
    suffix = uuid.uuid4().hex[:8]
    plural, kind, short = f"smoke{suffix}s", f"Smoke{suffix}", f"sm{suffix}"
    name = f"{plural}.{GROUP}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": f"smoke{suffix}",
                "kind": kind,
                "shortNames": [short],
            },
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Colour", "type": "string", "jsonPath": ".spec.colour"},
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {
                            "name": "Age",
                            "type": "date",
                            "jsonPath": ".metadata.creationTimestamp",
                        },
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "colour": {"type": "string", "enum": ["red", "blue"]}
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {"phase": {"type": "string"}},
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    k8s.kubectl("apply", "-f", "-", input=crd)
    k8s.wait_established(name)
    yield {"name": name, "plural": plural, "kind": kind, "short": short}
    k8s.kubectl("delete", "crd", name, "--wait=false", "--ignore-not-found")


def test_custom_resource_is_served_with_printer_columns_short_name_and_status(
    k8s: Cluster, namespace: str, smoke_crd: dict[str, str]
) -> None:
    cr: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": smoke_crd["kind"],
        "metadata": {"name": "first", "namespace": namespace},
        "spec": {"colour": "red"},
    }
    k8s.kubectl("apply", "-f", "-", input=cr)

    table = k8s.kubectl("get", smoke_crd["short"], "-n", namespace).stdout
    header, row = table.strip().splitlines()
    assert header.split() == ["NAME", "COLOUR", "PHASE", "AGE"]
    assert row.split()[:2] == ["first", "red"]

    # the API server enforces the schema's enum
    bad = k8s.kubectl("apply", "-f", "-", input={**cr, "spec": {"colour": "green"}}, check=False)
    assert bad.returncode != 0
    assert "Unsupported value" in bad.stderr

    # status is a subresource: written through it, visible in the printer column
    k8s.kubectl(
        "patch", smoke_crd["short"], "first", "-n", namespace,
        "--subresource=status", "--type=merge", "-p", json.dumps({"status": {"phase": "Ok"}}),
    )  # fmt: skip
    assert k8s.kubectl_json("get", smoke_crd["short"], "first", "-n", namespace)["status"] == {
        "phase": "Ok"
    }


def test_deployment_gets_a_replicaset_and_a_pending_pod_whose_status_a_test_can_set(
    k8s: Cluster, namespace: str
) -> None:
    labels = {"app": "smoke"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "smoke", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
            },
        },
    }
    k8s.kubectl("apply", "-f", "-", input=deployment)

    # the controller-manager runs: Deployment -> ReplicaSet -> Pod (Pending: no kubelet)
    k8s.kubectl("wait", "--for=create", "pod", "-l", "app=smoke", "-n", namespace, "--timeout=60s")
    replicasets = k8s.kubectl_json("get", "replicasets", "-n", namespace)["items"]
    assert [rs["metadata"]["ownerReferences"][0]["name"] for rs in replicasets] == ["smoke"]
    pods = k8s.kubectl_json("get", "pods", "-l", "app=smoke", "-n", namespace)["items"]
    assert len(pods) == 1
    pod = pods[0]["metadata"]["name"]
    assert pods[0]["status"]["phase"] == "Pending"

    # a test plays kubelet
    k8s.kubectl(
        "patch", "pod", pod, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Running", "podIP": "127.0.0.1"}}),
    )  # fmt: skip
    status = k8s.kubectl_json("get", "pod", pod, "-n", namespace)["status"]
    assert (status["phase"], status["podIP"]) == ("Running", "127.0.0.1")


def test_python_client_reaches_the_cluster(k8s: Cluster, namespace: str) -> None:
    with k8s.api_client() as api:
        core = kubernetes.client.CoreV1Api(api)
        names = [ns.metadata.name for ns in core.list_namespace().items if ns.metadata]
    assert namespace in names
