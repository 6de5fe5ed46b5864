"""Sidecar delivery: labelled Deployments gain it, unlabelled ones are never touched."""

from __future__ import annotations

import json

from ..cluster import Cluster
from ..podspec import names, sidecar_of, template_spec
from .conftest import apply, events, get, wait_for
from .manifests import deployment, global_config, polling_pool, task_group


def containers(k8s: Cluster, namespace: str, name: str) -> list[str]:
    """The app's containers, then the sidecar (either form: see podspec)."""
    return names(template_spec(get(k8s, namespace, "deployment", name)))


def test_label_adds_the_sidecar_unlabel_removes_it_and_others_stay_byte_for_byte(
    k8s: Cluster, namespace: str, operator
) -> None:
    apply(k8s, namespace, deployment("bystander"))
    before = k8s.kubectl("get", "deployment", "bystander", "-n", namespace, "-o", "json").stdout
    operator("--admin-port", "9191", "--sidecar-image", "example.org/echelon:test")
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("app", pool="p"))

    wait_for(lambda: containers(k8s, namespace, "app") == ["app", "echelon-sidecar"],
             what="the sidecar in app")
    dep = get(k8s, namespace, "deployment", "app")
    assert dep["metadata"]["annotations"]["echelon.dev/injected-pool"] == "p"
    pod = dep["spec"]["template"]["spec"]
    sidecar = sidecar_of(pod)
    assert sidecar["image"] == "example.org/echelon:test"
    assert "--admin-port" in sidecar["args"] and "9191" in sidecar["args"]
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["volumes"] == [{"name": "echelon-config", "configMap": {
        "name": "echelon-pool-p", "defaultMode": 420}}]
    assert sorted(e["name"] for e in sidecar["env"]) == ["ECHELON_KEY_M_CLAUDE",
                                                         "ECHELON_KEY_M_OPENAI",
                                                         "ECHELON_POD_NAME"]
    wait_for(lambda: events(k8s, namespace, "app", "SidecarInjected"),
             what="a SidecarInjected Event")

    # editing the pool and its group changes the ConfigMap, not the pod template
    generation = dep["metadata"]["generation"]
    cm_before = get(k8s, namespace, "configmap", "echelon-pool-p")["data"]
    apply(k8s, namespace, polling_pool("p", ["g"], rotationStrategy="least_recently_used"),
          task_group("g", models=["m-claude", "m-openai"]))
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p")["data"] != cm_before,
             what="the re-rendered ConfigMap")
    assert get(k8s, namespace, "deployment", "app")["metadata"]["generation"] == generation

    # unlabelling removes everything the operator added
    k8s.kubectl("label", "deployment", "app", "-n", namespace, "echelon.dev/pool-")
    wait_for(lambda: containers(k8s, namespace, "app") == ["app"], what="the sidecar removed")
    dep = get(k8s, namespace, "deployment", "app")
    assert "volumes" not in dep["spec"]["template"]["spec"]
    assert "initContainers" not in dep["spec"]["template"]["spec"]
    assert "echelon.dev/injected-pool" not in dep["metadata"].get("annotations", {})
    wait_for(lambda: events(k8s, namespace, "app", "SidecarRemoved"),
             what="a SidecarRemoved Event")

    # relabelling brings it back; the bystander never changed, byte for byte
    k8s.kubectl("label", "deployment", "app", "-n", namespace, "echelon.dev/pool=p")
    wait_for(lambda: containers(k8s, namespace, "app") == ["app", "echelon-sidecar"],
             what="the sidecar back in app")
    after = k8s.kubectl("get", "deployment", "bystander", "-n", namespace, "-o", "json").stdout
    # same bytes, same key order, as kubectl prints them
    assert json.dumps(json.loads(after)["spec"]) == json.dumps(json.loads(before)["spec"])
    assert _without_status(after) == _without_status(before)


def _without_status(text: str) -> str:
    obj = json.loads(text)
    obj.pop("status", None)  # the controller-manager writes the Deployment's status
    obj["metadata"].pop("resourceVersion", None)  # bumped by those status writes
    obj["metadata"].pop("managedFields", None)
    return json.dumps(obj, sort_keys=True)


def test_a_label_naming_no_pool_changes_nothing_until_the_pool_exists(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), deployment("early", pool="later"))
    generation = wait_for(lambda: get(k8s, namespace, "deployment", "early"),
                          what="the Deployment")["metadata"]["generation"]
    apply(k8s, namespace, polling_pool("later", ["g"]))
    wait_for(lambda: containers(k8s, namespace, "early") == ["app", "echelon-sidecar"],
             what="the sidecar once the pool exists")
    assert get(k8s, namespace, "deployment", "early")["metadata"]["generation"] == generation + 1
