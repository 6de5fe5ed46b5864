"""Invalid manifests: the API server rejects schema violations; the operator flags the rest."""

from __future__ import annotations

import pytest

from ..cluster import Cluster
from .conftest import apply, condition, events, get, wait_for
from .manifests import global_config, polling_pool, task_group


@pytest.mark.parametrize(("manifest", "message"), [
    (polling_pool("p", ["g"], rotationStrategy="sideways"),
     'spec.rotationStrategy: Unsupported value: "sideways"'),
    (task_group("g", fallbackConfig={"circuitBreaker": {"failureThreshold": 0}}),
     "spec.fallbackConfig.circuitBreaker.failureThreshold: Invalid value: 0"),
    (task_group("g", fallbackConfig={"strategy": "yolo"}),
     'spec.fallbackConfig.strategy: Unsupported value: "yolo"'),
    (polling_pool("p", []), "spec.taskGroups"),
])
def test_schema_violations_are_rejected_by_the_api_server(
    k8s: Cluster, namespace: str, crds: None, manifest: dict, message: str
) -> None:
    proc = apply(k8s, namespace, manifest, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    kind = manifest["kind"].lower()
    assert get(k8s, namespace, kind, manifest["metadata"]["name"]) is None


def invalid(k8s: Cluster, namespace: str, kind: str, name: str) -> str | None:
    cond = condition(get(k8s, namespace, kind, name), "Invalid")
    return cond["message"] if cond and cond["status"] == "True" else None


def valid(k8s: Cluster, namespace: str, kind: str, name: str) -> bool:
    cond = condition(get(k8s, namespace, kind, name), "Invalid")
    return bool(cond and cond["status"] == "False")


def test_a_pool_naming_a_missing_group_is_invalid_until_the_group_exists(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("a-group"),
          polling_pool("p", ["a-group", "missing-group"]))
    message = wait_for(lambda: invalid(k8s, namespace, "pollingpool", "p"),
                       what="Invalid=True on pool p")
    assert ("PollingPool p spec.taskGroups[1]: reference 'missing-group' names no task group"
            in message)
    pool = get(k8s, namespace, "pollingpool", "p")
    assert pool["status"]["ready"] == "False"
    assert condition(pool, "Ready")["reason"] == "Invalid"
    warning = wait_for(lambda: events(k8s, namespace, "p", "Invalid"),
                       what="a Warning Event Invalid on p")
    assert warning[0]["type"] == "Warning"
    assert "missing-group" in warning[0]["message"]
    assert get(k8s, namespace, "configmap", "echelon-pool-p") is None  # nothing rendered

    # creating the missing group fixes the pool by itself
    apply(k8s, namespace, task_group("missing-group"))
    wait_for(lambda: valid(k8s, namespace, "pollingpool", "p"), what="pool p valid again")
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p"),
             what="pool p's ConfigMap")
    wait_for(lambda: events(k8s, namespace, "p", "Valid"), what="a Valid Event on p")
    assert get(k8s, namespace, "pollingpool", "p")["status"]["ready"] == "True"


def test_a_fallback_cycle_is_invalid_and_breaking_it_recovers(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("a", fallback=["b"]),
          task_group("b", fallback=["a"]), polling_pool("p", ["a"]))
    for kind, name in (("taskgroup", "a"), ("taskgroup", "b"), ("pollingpool", "p")):
        wait_for(lambda k=kind, n=name: "fallback cycle" in (invalid(k8s, namespace, k, n) or ""),
                 what=f"Invalid=True (fallback cycle) on {kind} {name}")
    assert "fallback cycle: a -> b -> a" in invalid(k8s, namespace, "taskgroup", "a")
    wait_for(lambda: events(k8s, namespace, "a", "Invalid"), what="an Invalid Event on a")

    apply(k8s, namespace, task_group("b"))  # b no longer falls back to a
    for kind, name in (("taskgroup", "a"), ("taskgroup", "b"), ("pollingpool", "p")):
        wait_for(lambda k=kind, n=name: valid(k8s, namespace, k, n),
                 what=f"{kind} {name} valid again")
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p"),
             what="pool p's ConfigMap")


def test_an_invalid_edit_keeps_the_last_good_configmap(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("g"), polling_pool("p", ["g"]))
    first = wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-p"),
                     what="pool p's ConfigMap")
    apply(k8s, namespace, task_group("g", models=["m-unknown"]))
    message = wait_for(lambda: invalid(k8s, namespace, "taskgroup", "g"), what="g invalid")
    assert "TaskGroup g spec.echelons.echelon1.models[0]: model 'm-unknown' is not in the model " \
           "catalog" in message
    wait_for(lambda: invalid(k8s, namespace, "pollingpool", "p"), what="p invalid")
    after = get(k8s, namespace, "configmap", "echelon-pool-p")
    assert after["data"] == first["data"]
    pool = get(k8s, namespace, "pollingpool", "p")
    assert "keeps the last valid config" in condition(pool, "Ready")["message"]


def test_a_pool_mixing_task_types_is_served_but_flagged_not_dedicated(
    k8s: Cluster, namespace: str, operator
) -> None:
    operator()
    apply(k8s, namespace, global_config(), task_group("plan-group"), task_group("review-group"),
          polling_pool("mixed", ["plan-group", "review-group"]))

    def flagged() -> dict | None:
        cond = condition(get(k8s, namespace, "pollingpool", "mixed"), "Dedicated")
        return cond if cond and cond["status"] == "False" else None

    cond = wait_for(flagged, what="Dedicated=False on the mixed pool")
    assert cond["reason"] == "MixedTaskTypes"
    assert "pool mixes task types" in cond["message"]
    assert valid(k8s, namespace, "pollingpool", "mixed")
    wait_for(lambda: get(k8s, namespace, "configmap", "echelon-pool-mixed"),
             what="the mixed pool's ConfigMap")
