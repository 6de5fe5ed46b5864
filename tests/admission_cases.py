"""Resources the CRDs' admission rules must refuse (and near misses they must admit), shared by
the unit tests (cel-python) and the e2e tests (a real API server, Kubernetes 1.25+).

``REFUSED``: ``(kind, spec, the path the API server names, part of the rule's message)``;
``ADMITTED``: ``(kind, spec)``.
"""

from __future__ import annotations

from typing import Any

import pytest


def group(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"echelons": {
        "echelon1": {"models": ["m-a", "m-b"], "priority": 1},
        "echelon2": {"models": ["m-c"], "priority": 2},
    }}
    body.update(spec)
    return body


def pool(**rate: Any) -> dict[str, Any]:
    return {"taskGroups": ["g"], "rateLimiting": rate}


def tiers(**named: dict[str, Any]) -> dict[str, Any]:
    return group(echelons=named)



REFUSED = [
    pytest.param("TaskGroup", tiers(**{"plan.fast": {"models": ["m-a"]}}),
                 "spec.echelons", "is invalid: use letters, digits", id="tier-name-with-dot"),
    pytest.param("TaskGroup", tiers(**{"-x": {"models": ["m-a"]}}),
                 "spec.echelons", "is invalid: use letters, digits", id="tier-name-leading-dash"),
    pytest.param("TaskGroup", tiers(a={"models": ["m-a"], "priority": 1},
                                    b={"models": ["m-b"], "priority": 1}),
                 "spec.echelons", "share a priority", id="shared-priority"),
    pytest.param("TaskGroup", tiers(a={"models": ["m-a", "m-b", "m-a"]}),
                 "spec.echelons[a].models", "a model is listed twice in models", id="model-twice"),
    pytest.param("TaskGroup", group(fallbackStrategy="echelon_down",
                                    fallbackConfig={"strategy": "model_rotate"}),
                 "spec", "fallbackStrategy contradicts fallbackConfig.strategy",
                 id="strategy-contradiction"),
    pytest.param("TaskGroup", group(circuitBreaker={"failureThreshold": 3},
                                    fallbackConfig={"circuitBreaker": {"failureThreshold": 4}}),
                 "spec", "circuitBreaker is set both at group level and in fallbackConfig",
                 id="two-breakers"),
    pytest.param("TaskGroup", group(circuitBreaker={"maxRecoveryTime": 120},
                                    fallbackConfig={"circuitBreaker": {}}),
                 "spec", "circuitBreaker is set both at group level and in fallbackConfig",
                 id="two-breakers-one-cap-unset"),
    pytest.param("TaskGroup", group(fallbackConfig={"circuitBreaker": {
        "recoveryTime": 120, "maxRecoveryTime": 60}}),
                 "spec.fallbackConfig.circuitBreaker", "maxRecoveryTime must be at least",
                 id="cap-below-recovery"),
    pytest.param("TaskGroup", group(circuitBreaker={"maxRecoveryTime": 30}),
                 "spec.circuitBreaker", "maxRecoveryTime must be at least",
                 id="cap-below-default-recovery"),
    pytest.param("PollingPool", pool(bucketSize=10, refillRate=1, windowSize=60),
                 "spec.rateLimiting", "windowSize/maxRequests belong to sliding_window",
                 id="window-under-token-bucket"),
    pytest.param("PollingPool", pool(bucketSize=10, refillRate=1,
                                     tokenBucket={"bucketSize": 5, "refillRate": 1}),
                 "spec.rateLimiting", "token bucket parameters are given twice",
                 id="token-bucket-twice"),
    pytest.param("PollingPool", pool(bucketSize=10), "spec.rateLimiting",
                 "algorithm token_bucket needs bucketSize and refillRate",
                 id="token-bucket-half"),
    pytest.param("PollingPool", pool(tpmLimit=1000, algorithm="token_bucket"),
                 "spec.rateLimiting", "algorithm token_bucket needs bucketSize and refillRate",
                 id="tpm-with-algorithm-needs-its-fields"),
    pytest.param("PollingPool", pool(algorithm="sliding_window", windowSize=60,
                                     maxRequests=100, refillRate=2),
                 "spec.rateLimiting", "bucketSize/refillRate belong to token_bucket",
                 id="bucket-under-sliding-window"),
    pytest.param("PollingPool", pool(algorithm="sliding_window", windowSize=60, maxRequests=5,
                                     slidingWindow={"windowSize": 1, "maxRequests": 1}),
                 "spec.rateLimiting", "sliding window parameters are given twice",
                 id="sliding-window-twice"),
    pytest.param("PollingPool", pool(algorithm="sliding_window", maxRequests=5),
                 "spec.rateLimiting", "algorithm sliding_window needs windowSize and maxRequests",
                 id="sliding-window-half"),
]

ADMITTED = [
    pytest.param("TaskGroup", group(), id="two-tiers"),
    pytest.param("TaskGroup", tiers(translation={"models": ["m-a"]}, high_payload={
        "models": ["m-a"]}, **{"thinking-2": {"models": ["m-b"]}}), id="named-tiers-no-priority"),
    pytest.param("TaskGroup", tiers(a={"models": ["m-a"], "priority": 1},
                                    b={"models": ["m-a"]}), id="one-model-in-two-tiers"),
    pytest.param("TaskGroup", group(fallbackStrategy="echelon_down",
                                    fallbackConfig={"strategy": "echelon_down"}),
                 id="same-strategy-twice"),
    pytest.param("TaskGroup", group(circuitBreaker={"failureThreshold": 5},
                                    fallbackConfig={"circuitBreaker": {"recoveryTime": 60}}),
                 id="breakers-equal-once-defaulted"),
    pytest.param("TaskGroup", group(fallbackConfig={"circuitBreaker": {
        "recoveryTime": 90.5, "maxRecoveryTime": 90.5}}), id="cap-equal-to-recovery"),
    pytest.param("PollingPool", pool(tpmLimit=1000), id="tokens-only"),
    pytest.param("PollingPool", pool(bucketSize=10, refillRate=0.5), id="flat-token-bucket"),
    pytest.param("PollingPool", pool(tokenBucket={"bucketSize": 10, "refillRate": 2}),
                 id="nested-token-bucket"),
    pytest.param("PollingPool", pool(algorithm="sliding_window", windowSize=60,
                                     maxRequests=100), id="flat-sliding-window"),
    pytest.param("PollingPool", pool(algorithm="sliding_window", slidingWindow={
        "windowSize": 60, "maxRequests": 100}, tokenBucket={"bucketSize": 1, "refillRate": 1}),
                 id="nested-sliding-window-with-an-unused-block"),
]


