"""Deletion and restarts: nothing left behind, nothing changed that was already right."""

from __future__ import annotations

import json
import urllib.request

from ..cluster import Cluster
from ..podspec import names, template_spec
from .conftest import apply, condition, events, get, play_kubelet, wait_for
from .manifests import deployment, global_config, polling_pool, task_group
from .sidecars import StatusServer

GC_TIMEOUT = 120  # the garbage collector starts ~30 s after a CRD appears on this cluster


def containers(k8s: Cluster, namespace: str, name: str) -> list[str]:
    dep = get(k8s, namespace, "deployment", name) or {}
    return names(template_spec(dep))


def versions(k8s: Cluster, namespace: str) -> dict[str, str]:
    out = {}
    for kind in ("taskgroups", "pollingpools", "configmaps", "deployments"):
        for item in k8s.kubectl_json("get", kind, "-n", namespace)["items"]:
            out[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


def probe(op) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{op.liveness_port}/healthz", timeout=2) as r:
        return json.loads(r.read())["echelon"]


def settled(k8s: Cluster, namespace: str, op) -> bool:
    pool = get(k8s, namespace, "pollingpool", "p")
    status = (pool or {}).get("status") or {}
    return (condition(pool, "Degraded") is not None and status.get("sidecars") == 1
            and probe(op).get("reconciling") == 0)


def test_deleting_a_pool_collects_its_configmap_and_removes_its_sidecars(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]),
          deployment("app", pool="p"))
    wait_for(lambda: containers(k8s, namespace, "app") == ["app", "echelon-sidecar"],
             what="the sidecar")
    assert get(k8s, namespace, "configmap", "echelon-pool-p") is not None
    k8s.kubectl("delete", "pollingpool", "p", "-n", namespace, "--wait=true", "--timeout=30s")
    wait_for(lambda: containers(k8s, namespace, "app") == ["app"], what="the sidecar removed")
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p") is None,
             timeout=GC_TIMEOUT, interval=1, what="the ConfigMap garbage-collected")
    group = wait_for(lambda: (g := get(k8s, namespace, "taskgroup", "g"))
                     and g["status"].get("pools") == [] and g, what="the group's pools emptied")
    assert group["status"]["ready"] == "True"


def test_restarting_the_operator_changes_nothing(
    k8s: Cluster, namespace: str, operator
) -> None:
    with StatusServer([("g", "m-openai"), ("g", "m-claude"), ("h", "m-openai"),
                       ("h", "m-claude")]) as sidecar:
        sidecar.set_state("g", "m-claude", "open")
        op = operator("--admin-port", str(sidecar.port))
        apply(k8s, namespace, global_config(), task_group("g"), task_group("h", fallback=["g"]),
              polling_pool("p", ["h"]), deployment("app", pool="p"))
        wait_for(lambda: containers(k8s, namespace, "app") == ["app", "echelon-sidecar"],
                 what="the sidecar")

        def circuits_shown() -> bool:
            play_kubelet(k8s, namespace, "app=app")
            group = get(k8s, namespace, "taskgroup", "g")
            return group["status"].get("openCircuits") == "1/2"

        wait_for(circuits_shown, what="the open circuit in g's status")
        wait_for(lambda: settled(k8s, namespace, op), what="the operator settled")
        before = versions(k8s, namespace)
        opened = len(events(k8s, namespace, "g", "CircuitOpened"))
        op.restart()
        wait_for(lambda: probe(op).get("lastPoll") is not None, what="a poll after the restart")
        wait_for(lambda: settled(k8s, namespace, op), what="the restarted operator settled")
        first_poll = probe(op)["lastPoll"]
        wait_for(lambda: probe(op)["lastPoll"] > first_poll, what="one more poll")
        assert versions(k8s, namespace) == before
        assert len(events(k8s, namespace, "g", "CircuitOpened")) == opened  # not re-announced


def test_deleting_while_the_operator_is_down_leaves_nothing_behind(
    k8s: Cluster, namespace: str, operator
) -> None:
    op = operator()
    apply(k8s, namespace, global_config(), task_group("g"), task_group("other"),
          polling_pool("p", ["g"]), polling_pool("q", ["other"]),
          deployment("app", pool="p"))
    wait_for(lambda: containers(k8s, namespace, "app") == ["app", "echelon-sidecar"],
             what="the sidecar")
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-q"), what="q's ConfigMap")
    op.stop()
    # pools carry no finalizer: they delete without the operator
    assert not get(k8s, namespace, "pollingpool", "p")["metadata"].get("finalizers")
    k8s.kubectl("delete", "pollingpool", "p", "-n", namespace, "--timeout=30s")
    k8s.kubectl("delete", "taskgroup", "other", "-n", namespace, "--timeout=30s")
    op.start()
    wait_for(lambda: containers(k8s, namespace, "app") == ["app"],
             what="the orphaned sidecar removed after the restart")
    assert "echelon.dev/injected-pool" not in (
        get(k8s, namespace, "deployment", "app")["metadata"].get("annotations") or {})
    wait_for(lambda: (c := condition(get(k8s, namespace, "pollingpool", "q"), "Invalid"))
             and c["status"] == "True" and "other" in c["message"],
             what="q invalid: its group was deleted while the operator was down")
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p") is None,
             timeout=GC_TIMEOUT, interval=1, what="p's ConfigMap garbage-collected")
    assert get(k8s, namespace, "configmap", "echelon-pool-q") is not None  # last good config
