"""Conditions, printer fields, circuit counts and transitions."""

from __future__ import annotations

from echelon_operator.builders import (
    CircuitCounts,
    GlobalConfig,
    build_group_health,
    build_group_status,
    build_pool_health,
    build_pool_status,
    circuit_transitions,
    plan_group,
    plan_pool,
    set_condition,
    status_patch,
)
from echelon_operator.builders.plan import PoolConfigMapPlan
from echelon_sidecar.config import PollingPoolSpec, TaskGroupSpec

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"
MODELS = GlobalConfig(models={"m1": {"provider": "openai", "model": "x", "api_key_env": "K"},
                              "m2": {"provider": "openai", "model": "y", "api_key_env": "K"}})
GROUP = TaskGroupSpec.model_validate({"echelons": {"e1": {"models": ["m1", "m2"]}}})


def test_last_transition_time_changes_only_when_status_flips() -> None:
    conds = set_condition([], "Ready", True, "A", "first", now=T0, generation=1)
    conds = set_condition(conds, "Ready", True, "B", "second", now=T1, generation=2)
    assert conds == [{"type": "Ready", "status": "True", "reason": "B", "message": "second",
                      "lastTransitionTime": T0, "observedGeneration": 2}]
    conds = set_condition(conds, "Ready", False, "C", "third", now=T1, generation=2)
    assert conds[0]["lastTransitionTime"] == T1


def test_conditions_keep_a_stable_order() -> None:
    conds = set_condition([], "Invalid", False, "r", "m", now=T0, generation=1)
    conds = set_condition(conds, "Degraded", False, "r", "m", now=T0, generation=1)
    conds = set_condition(conds, "Ready", True, "r", "m", now=T0, generation=1)
    assert [c["type"] for c in conds] == ["Ready", "Degraded", "Invalid"]


def test_status_patch_holds_only_changed_fields() -> None:
    assert status_patch({"a": 1, "b": [1]}, {"a": 1, "b": [1]}) is None
    assert status_patch({"a": 1, "b": [1]}, {"a": 2, "b": [1]}) == {"a": 2}


def valid_plan() -> PoolConfigMapPlan:
    pool = PollingPoolSpec.model_validate({"taskGroups": ["g"]})
    return plan_pool("p", pool, {"g": GROUP}, MODELS, 2)


def test_valid_pool_status_has_printer_fields_and_ready() -> None:
    spec = {"taskGroups": ["g", "h.e1"], "rotationStrategy": "weighted"}
    status = build_pool_status(
        valid_plan(),
        spec=spec,
        replicas=2,
        workloads=["Deployment/b", "StatefulSet/c", "Deployment/a"],
        configmap="echelon-pool-p",
        generation=3,
        previous={},
        now=T0,
    )
    assert status["groups"] == "g,h.e1"
    assert status["rotation"] == "weighted"
    assert status["sidecars"] == 2
    assert status["deployments"] == ["a", "b"]
    assert status["workloads"] == ["Deployment/a", "Deployment/b", "StatefulSet/c"]
    assert status["ready"] == "True"
    assert status["observedGeneration"] == 3
    assert status["configMap"] == "echelon-pool-p" and status["configVersion"]
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types == {"Ready": "True", "Invalid": "False", "Dedicated": "True"}


def test_invalid_pool_status_keeps_the_last_good_config_fields() -> None:
    pool = PollingPoolSpec.model_validate({"taskGroups": ["missing"]})
    plan = plan_pool("p", pool, {"g": GROUP}, MODELS, 1)
    previous = {"configMap": "echelon-pool-p", "configVersion": "abc"}
    status = build_pool_status(plan, spec={"taskGroups": ["missing"]}, replicas=0,
                               workloads=[], configmap=None, generation=2,
                               previous=previous, now=T0)
    assert "configMap" not in status and "configVersion" not in status  # untouched by a patch
    invalid = next(c for c in status["conditions"] if c["type"] == "Invalid")
    assert invalid["status"] == "True"
    assert "spec.taskGroups[0]: reference 'missing' names no task group" in invalid["message"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and "echelon-pool-p keeps the last valid" in ready["message"]
    assert status["ready"] == "False"


def test_pool_health_counts_open_circuits_over_expected_instances() -> None:
    counts = {("g", "m1"): CircuitCounts(closed=1, open=1, last_error="http_503"),
              ("g", "m2"): CircuitCounts(closed=2)}
    health = build_pool_health(counts, expected=[("g", "m1"), ("g", "m2"), ("h", "m3")],
                               sidecars_polled=2, sidecars_ready=2, problems=[],
                               generation=1, previous={}, now=T0)
    assert health["openCircuits"] == "1/3"
    assert health["instances"][0] == {"group": "g", "model": "m1", "closed": 1, "open": 1,
                                      "halfOpen": 0, "lastError": "http_503"}
    degraded = health["conditions"][0]
    assert (degraded["type"], degraded["status"], degraded["reason"]) == (
        "Degraded", "True", "CircuitsOpen")
    assert "g/m1" in degraded["message"]


def test_pool_health_without_sidecars_is_not_degraded() -> None:
    health = build_pool_health({}, expected=[("g", "m1")], sidecars_polled=0, sidecars_ready=0,
                               problems=[], generation=1, previous={}, now=T0)
    assert health["openCircuits"] == "0/1"
    assert health["conditions"][0]["reason"] == "NoSidecars"
    assert health["conditions"][0]["status"] == "False"


def test_unreachable_sidecars_make_the_pool_degraded() -> None:
    health = build_pool_health({}, expected=[], sidecars_polled=1, sidecars_ready=0,
                               problems=["1 sidecar(s) did not answer: pod-a (timeout)"],
                               generation=1, previous={}, now=T0)
    assert health["conditions"][0]["reason"] == "SidecarsUnhealthy"


def test_transitions_are_reported_but_a_newly_seen_closed_circuit_is_not() -> None:
    before = [{"group": "g", "model": "m1", "closed": 2, "open": 0, "halfOpen": 0}]
    after = [{"group": "g", "model": "m1", "closed": 1, "open": 1, "halfOpen": 0,
              "lastError": "timeout"},
             {"group": "g", "model": "m2", "closed": 2, "open": 0, "halfOpen": 0}]
    changes = circuit_transitions(before, after)
    assert [(c.model, c.before, c.after, c.reason, c.event_type) for c in changes] == [
        ("m1", "closed", "open", "CircuitOpened", "Warning")]
    assert changes[0].message("p") == ("g/m1: circuit open on 1/2 sidecar(s) of pool p (was "
                                       "closed); last error: timeout")
    back = circuit_transitions(after, before)
    assert [(c.reason, c.event_type) for c in back] == [("CircuitClosed", "Normal")]
    half = [{"group": "g", "model": "m1", "closed": 1, "open": 0, "halfOpen": 1}]
    assert [c.reason for c in circuit_transitions(after, half)] == ["CircuitHalfOpen"]


def test_group_status_and_health() -> None:
    plan = plan_group("g", {"g": GROUP}, MODELS)
    status = build_group_status(plan, pools=["p2", "p1"], generation=4, previous={}, now=T0)
    assert (status["tiers"], status["strategy"], status["pools"], status["ready"]) == (
        1, "echelon_down", ["p1", "p2"], "True")
    health = build_group_health(
        [{"group": "g", "model": "m1", "closed": 1, "open": 0, "halfOpen": 0},
         {"group": "g", "model": "m1", "closed": 0, "open": 2, "halfOpen": 0, "lastError": "x"}],
        models=["m1", "m2"], group="g", generation=4, previous=status, now=T1)
    assert health["instances"] == [{"group": "g", "model": "m1", "closed": 1, "open": 2,
                                    "halfOpen": 0, "lastError": "x"}]
    assert health["openCircuits"] == "1/2"
    assert any(c["type"] == "Degraded" and c["status"] == "True" for c in health["conditions"])
    assert any(c["type"] == "Ready" for c in health["conditions"])  # kept from the reconcile
