"""The sidecar's form: a native sidecar (an init container with restartPolicy Always and a
startup probe) where the API server runs them (1.29+), a regular container elsewhere or when
forced; switching forms moves it in one patch, and a restart changes nothing."""

from __future__ import annotations

import pytest

from ..cluster import Cluster
from ..podspec import form, sidecar_of, template_spec
from .conftest import apply, events, get, wait_for
from .manifests import deployment, global_config, polling_pool, task_group

NATIVE = (1, 29)


def app_form(k8s: Cluster, namespace: str) -> str | None:
    return form(template_spec(get(k8s, namespace, "deployment", "app")))


def test_on_a_native_server_the_sidecar_is_an_init_container_the_app_waits_for(
    k8s: Cluster, namespace: str, operator
) -> None:
    k8s.require(NATIVE, "native sidecars")
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("app", pool="p"))
    wait_for(lambda: app_form(k8s, namespace) == "native", what="a native sidecar in app")
    pod = template_spec(get(k8s, namespace, "deployment", "app"))
    assert [c["name"] for c in pod["initContainers"]] == ["echelon-sidecar"]
    assert [c["name"] for c in pod["containers"]] == ["app"]
    sidecar = pod["initContainers"][0]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    injected = wait_for(lambda: events(k8s, namespace, "app", "SidecarInjected"),
                        what="SidecarInjected")
    assert "native sidecar" in injected[0]["message"]


def test_the_operator_moves_a_regular_sidecar_into_the_init_containers_once(
    k8s: Cluster, namespace: str, operator
) -> None:
    k8s.require(NATIVE, "native sidecars")
    old = operator("--sidecar-mode", "container")
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("app", pool="p"))
    wait_for(lambda: app_form(k8s, namespace) == "container", what="a regular sidecar")
    generation = get(k8s, namespace, "deployment", "app")["metadata"]["generation"]
    old.stop()
    # what an operator started after the control plane's upgrade to 1.29+ does (auto)
    new = operator()
    wait_for(lambda: app_form(k8s, namespace) == "native", what="the sidecar moved")
    dep = get(k8s, namespace, "deployment", "app")
    assert dep["metadata"]["generation"] == generation + 1  # one patch: one rollout
    version = dep["metadata"]["resourceVersion"]
    new.restart()
    wait_for(lambda: "echelon-operator started" in new.log_text(), what="the restart")
    wait_for(lambda: get(k8s, namespace, "pollingpool", "p")["status"].get("ready") == "True",
             what="the pool reconciled after the restart")
    assert get(k8s, namespace, "deployment", "app")["metadata"]["resourceVersion"] == version


def test_without_native_sidecars_a_forced_native_mode_still_injects_a_regular_container(
    k8s: Cluster, namespace: str, operator
) -> None:
    if k8s.server_version() >= (1, 28):
        pytest.skip("this API server knows native sidecars; "
                    "test_the_operator_moves_a_regular_sidecar... covers forcing a form")
    op = operator("--sidecar-mode", "native")
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("app", pool="p"))
    wait_for(lambda: app_form(k8s, namespace) == "container", what="a regular sidecar")
    assert "needs Kubernetes 1.28 or newer" in op.log_text()
    pod = template_spec(get(k8s, namespace, "deployment", "app"))
    assert "initContainers" not in pod and sidecar_of(pod) is not None
