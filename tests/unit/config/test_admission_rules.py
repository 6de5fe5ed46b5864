"""The CRDs' admission rules (x-kubernetes-validations) refuse what the config model refuses.

Every rule is evaluated (cel-python, ``apiserver.refusals``) against resources it must refuse
and near misses it must admit, and the config model is asked the same; a property test then
compares the two verdicts on generated TaskGroup and PollingPool specs.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from echelon_operator.crds import build_crds
from echelon_sidecar.config import PollingPoolSpec, TaskGroupSpec
from echelon_sidecar.config.admission import KEY, cel_literal, same_settings
from echelon_sidecar.config.fallback import CircuitBreaker

from ...admission_cases import ADMITTED, REFUSED, tiers
from .apiserver import refusals

CRDS = build_crds()
MODELS: dict[str, Any] = {"TaskGroup": TaskGroupSpec, "PollingPool": PollingPoolSpec}


def spec_schema(kind: str) -> dict[str, Any]:
    version = CRDS[kind]["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def model_refuses(kind: str, spec: dict[str, Any]) -> bool:
    try:
        MODELS[kind].model_validate(copy.deepcopy(spec))
    except ValidationError:
        return True
    return False


def api_refuses(kind: str, spec: dict[str, Any]) -> list[tuple[str, str]]:
    return refusals(spec_schema(kind), spec)


@pytest.mark.parametrize(("kind", "spec", "path", "message"), REFUSED)
def test_each_rule_refuses_what_the_model_refuses_naming_the_field(
    kind: str, spec: dict[str, Any], path: str, message: str
) -> None:
    found = api_refuses(kind, spec)
    assert len(found) == 1, found
    assert found[0][0] == path
    assert message in found[0][1]
    assert model_refuses(kind, spec)


@pytest.mark.parametrize(("kind", "spec"), ADMITTED)
def test_near_misses_are_admitted_by_both(kind: str, spec: dict[str, Any]) -> None:
    assert api_refuses(kind, spec) == []
    assert not model_refuses(kind, spec)


def _rules(node: Any) -> list[dict[str, str]]:
    if isinstance(node, dict):
        return [*node.get(KEY, []), *(r for k, v in node.items() if k != KEY
                                      for r in _rules(v))]
    if isinstance(node, list):
        return [r for item in node for r in _rules(item)]
    return []


def test_every_rule_in_the_crds_has_a_refused_example() -> None:
    messages = {p.values[3] for p in REFUSED}
    for kind in CRDS:
        for r in _rules(spec_schema(kind)):
            assert any(m in r["message"] for m in messages), r["message"]


def _names_a_field(message: str) -> bool:
    words = [w.strip("();,:.'") for w in message.split()]
    return any(w in ("models", "echelons") or (w[:1].islower() and any(c.isupper() for c in w))
               for w in words)


def test_every_rule_names_the_field_it_checks_and_is_one_line_of_cel() -> None:
    for kind in CRDS:
        for r in _rules(spec_schema(kind)):
            assert "\n" not in r["rule"]
            assert _names_a_field(r["message"]), r["message"]


def test_the_breaker_comparison_applies_each_fields_default() -> None:
    text = same_settings(CircuitBreaker, "a", "b")
    assert "(has(a.recoveryTime) ? a.recoveryTime : 60.0)" in text
    assert "(has(a.failureThreshold) ? a.failureThreshold : 5)" in text
    assert "has(a.maxRecoveryTime) == has(b.maxRecoveryTime)" in text
    assert cel_literal(2) == "2" and cel_literal(2, double=True) == "2.0"
    assert cel_literal("it's") == "'it\\'s'" and cel_literal(True) == "true"


def test_the_bounds_the_rules_need_are_enforced_by_the_model_too() -> None:
    many = {f"t{i}": {"models": ["m"]} for i in range(33)}
    assert api_refuses("TaskGroup", tiers(**many)) and model_refuses("TaskGroup", tiers(**many))
    crowded = tiers(a={"models": [f"m{i}" for i in range(33)]})
    assert api_refuses("TaskGroup", crowded) and model_refuses("TaskGroup", crowded)
    long_id = tiers(a={"models": ["m" * 254]})
    assert api_refuses("TaskGroup", long_id) and model_refuses("TaskGroup", long_id)
    empty_id = tiers(a={"models": [""]})
    assert api_refuses("TaskGroup", empty_id) and model_refuses("TaskGroup", empty_id)


# -- the property: the same verdict on generated specs -------------------------------------

# names and values near every rule's edges, mostly valid ones (so that the specs reach the
# rules rather than stop at a bound), and now and then one out of bounds (whitespace around
# names aside: the model strips it, the API server keeps it; see docs/operator.md)


def _mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(good * 9 + bad)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


TIER_NAMES = _mostly(["echelon1", "echelon2", "translation", "thinking-2", "x_y", "9"],
                     ["a.b", "-x", "_x", ""])
MODEL_IDS = _mostly(["m-a", "m-b", "gemini-pro", "openai/gpt-4o"], ["", "m" * 254])
SECONDS = _mostly([0.5, 30, 60, 60.0, 90.5, 120, 86400], [0, 86401])
BREAKERS = _optional(failureThreshold=_mostly([1, 5, 6], [0]),
                     recoveryTime=SECONDS, halfOpenRequests=_mostly([1, 2], [0]),
                     recoveryBackoff=_mostly([1, 2, 2.0, 3.5], [0.5]),
                     maxRecoveryTime=SECONDS)
TIERS = st.fixed_dictionaries(
    {"models": st.lists(MODEL_IDS, min_size=1, max_size=4)},
    optional={"priority": _mostly([1, 2, 3], [0, 1001]),
              "timeout": _mostly([1, 60, 3600], [0, 3601]),
              "maxRetries": _mostly([0, 3], [21])})
STRATEGIES = st.sampled_from(["echelon_down", "task_group_switch", "model_rotate"])
GROUPS = st.fixed_dictionaries(
    {"echelons": st.dictionaries(TIER_NAMES, TIERS, min_size=1, max_size=4)},
    optional={"fallbackStrategy": STRATEGIES,
              "circuitBreaker": BREAKERS,
              "fallbackConfig": _optional(strategy=STRATEGIES, circuitBreaker=BREAKERS,
                                          maxAttempts=_mostly([1, 3], [0]))})
COUNTS = _mostly([1, 100], [0])
RATES = _optional(
    tpmLimit=_mostly([1000], [0]),
    algorithm=st.sampled_from(["token_bucket", "sliding_window"]),
    bucketSize=COUNTS, refillRate=_mostly([0.5, 2], [0]),
    windowSize=SECONDS, maxRequests=COUNTS,
    tokenBucket=st.fixed_dictionaries({"bucketSize": COUNTS, "refillRate": _mostly([2], [0])}),
    slidingWindow=st.fixed_dictionaries({"windowSize": SECONDS, "maxRequests": COUNTS}),
    enabled=st.booleans())
POOLS = st.fixed_dictionaries(
    {"taskGroups": st.lists(st.sampled_from(["g", "g.echelon1"]), min_size=1, max_size=2),
     "rateLimiting": RATES},
    optional={"rotationStrategy": _mostly(["round_robin", "weighted"], ["sideways"])})
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(GROUPS)
def test_the_api_server_and_the_model_refuse_the_same_task_groups(spec: dict[str, Any]) -> None:
    assert bool(api_refuses("TaskGroup", spec)) == model_refuses("TaskGroup", spec), (
        api_refuses("TaskGroup", spec))


@PROPERTY
@given(POOLS)
def test_the_api_server_and_the_model_refuse_the_same_polling_pools(
    spec: dict[str, Any],
) -> None:
    assert bool(api_refuses("PollingPool", spec)) == model_refuses("PollingPool", spec), (
        api_refuses("PollingPool", spec))
