"""Property-based tests: random request streams and failure patterns on the fake clock.

Each example builds an engine over one config shape with random limits, runs a random stream
of requests (targets, arrival times, deadlines, sessions, cancellations) against a provider
whose answers (latency, status, hang, refusal) are drawn at random, and checks invariants
that must hold whatever happens.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echelon_sidecar.config import EchelonConfig
from echelon_sidecar.engine import (
    AttemptSettings,
    Engine,
    EngineRequest,
    FakeClock,
    Instance,
    InstanceCannotServe,
    Outcome,
    RoutingError,
    SlidingWindow,
    TokenBucket,
    UpstreamError,
)

from .support import MODELS

TIER_OF = {"oa-1": "g.echelon1", "an-1": "g.echelon1", "gm-1": "g.echelon2",
           "oa-2": "g.echelon2", "oa-3": "h.echelon1"}
TARGETS = ["g", "g.echelon2", "p", "n"]

# (kind, latency, status, retry_after)
Answer = tuple[str, float, int | None, float | None]
answers = st.one_of(
    st.tuples(st.just("ok"), st.floats(0, 8), st.none(), st.none()),
    st.tuples(st.just("fail"), st.floats(0, 3), st.sampled_from([500, 503, 529, 408, None]),
              st.none()),
    st.tuples(st.just("fail"), st.floats(0, 1), st.just(429),
              st.one_of(st.none(), st.floats(0.5, 40))),
    st.tuples(st.just("fail"), st.floats(0, 1), st.sampled_from([401, 403, 413, 400]),
              st.none()),
    st.tuples(st.just("hang"), st.just(0.0), st.none(), st.none()),
    st.tuples(st.just("cannot"), st.just(0.0), st.none(), st.none()),
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 14))
    requests = []
    for _ in range(n):
        arrival = draw(st.floats(0, 30))
        requests.append({
            "target": draw(st.sampled_from(TARGETS)),
            "arrival": arrival,
            "deadline": draw(st.one_of(st.none(), st.floats(0.5, 40))),
            "session": draw(st.one_of(st.none(), st.sampled_from(["s1", "s2"]))),
            "cancel": draw(st.one_of(st.none(), st.none(), st.floats(0, 20))),
        })
    return {
        "seed": draw(st.integers(0, 2**16)),
        "answers": draw(st.lists(answers, min_size=1, max_size=12)),
        "requests": requests,
        "tier1_limit": draw(st.integers(1, 3)),
        "tier2_limit": draw(st.one_of(st.none(), st.integers(1, 3))),
        "rpm": draw(st.integers(1, 6)),
        "echelon_queue": draw(st.integers(0, 3)),
        "model_limit": draw(st.integers(1, 3)),
        "model_queue": draw(st.integers(0, 2)),
        "node_limit": draw(st.integers(1, 3)),
        "node_queue": draw(st.integers(0, 2)),
        "max_attempts": draw(st.integers(1, 6)),
        "max_retries": draw(st.one_of(st.none(), st.integers(0, 3))),
        "retry_delay": draw(st.sampled_from([0.0, 0.5, 2.0])),
        "threshold": draw(st.integers(1, 3)),
        "half_open": draw(st.integers(1, 2)),
        "strategy": draw(st.sampled_from(["echelon_down", "task_group_switch",
                                          "provider_failover", "model_rotate"])),
        "rotation": draw(st.sampled_from(["round_robin", "least_recently_used", "weighted"])),
        "pool_fallback": draw(st.sampled_from(["instance_rotation", "simple_retry"])),
        "pool_attempts": draw(st.integers(1, 4)),
        "sidecars": draw(st.sampled_from([1, 1, 2])),
    }


def build_config(sc: dict[str, Any]) -> EchelonConfig:
    tier1: dict[str, Any] = {"models": ["oa-1", "an-1"], "priority": 1, "timeout": 6,
                             "concurrency_limit": sc["tier1_limit"] * sc["sidecars"],
                             "rpm_limit": sc["rpm"] * sc["sidecars"]}
    if sc["max_retries"] is not None:
        tier1["max_retries"] = sc["max_retries"]
    tier2: dict[str, Any] = {"models": ["gm-1", "oa-2"], "priority": 2, "timeout": 4}
    if sc["tier2_limit"] is not None:
        tier2["concurrency_limit"] = sc["tier2_limit"] * sc["sidecars"]
    return EchelonConfig.model_validate({
        "models": MODELS,
        "task_groups": {
            "g": {"echelon1": tier1, "echelon2": tier2,
                  "fallback_config": {
                      "strategy": sc["strategy"], "fallback_groups": ["h"],
                      "max_attempts": sc["max_attempts"], "retry_delay": sc["retry_delay"],
                      "max_retry_delay": 5,
                      "circuit_breaker": {"failure_threshold": sc["threshold"],
                                          "recovery_time": 10,
                                          "half_open_requests": sc["half_open"]}}},
            "h": {"echelon1": {"models": ["oa-3"], "timeout": 5}},
        },
        "polling_pools": {"p": {"task_groups": ["g"], "rotation_strategy": sc["rotation"],
                                "fallback_strategy": sc["pool_fallback"],
                                "max_instance_attempts": sc["pool_attempts"],
                                "failure_threshold": 2, "recovery_time": 15}},
        "workflow_nodes": {"n": {"llm_group": "g", "polling_pool": "p",
                                 "concurrency_config": {"limit": sc["node_limit"],
                                                        "queue_size": sc["node_queue"]}}},
        "concurrency_control": {"levels": {
            "echelon": {"limit": 99, "queue_size": sc["echelon_queue"]},
            "model": {"limit": sc["model_limit"] * sc["sidecars"],
                      "queue_size": sc["model_queue"]},
        }},
        "sidecar": {"sidecars": sc["sidecars"]},
    })


@dataclass
class Measuring:
    """A provider that answers from a list (cycled) and measures what reaches it."""

    clock: FakeClock
    answers: list[Answer]
    index: int = 0
    in_flight: Counter[str] = field(default_factory=Counter)
    peak: Counter[str] = field(default_factory=Counter)
    node_in_flight: int = 0
    node_peak: int = 0
    starts: dict[str, list[float]] = field(default_factory=dict)
    per_request: Counter[int] = field(default_factory=Counter)

    async def call(self, instance: Instance, request: EngineRequest,
                   settings: AttemptSettings) -> Any:
        kind, latency, status, retry_after = self.answers[self.index % len(self.answers)]
        self.index += 1
        tier = f"{settings.group}.{settings.tier}"
        if kind == "cannot":  # a refusal before any upstream call (e.g. a translator's)
            raise InstanceCannotServe("refused")
        self.starts.setdefault(tier, []).append(self.clock.now())
        self.per_request[id(request)] += 1
        node = request.target.node == "n"
        for key in (instance.model_id, tier):
            self.in_flight[key] += 1
            self.peak[key] = max(self.peak[key], self.in_flight[key])
        if node:
            self.node_in_flight += 1
            self.node_peak = max(self.node_peak, self.node_in_flight)
        try:
            if kind == "hang":
                await asyncio.get_running_loop().create_future()
            await self.clock.sleep(latency)
            if kind == "fail":
                raise UpstreamError(status, None, "boom", retry_after)
            return "ok"
        finally:
            for key in (instance.model_id, tier):
                self.in_flight[key] -= 1
            if node:
                self.node_in_flight -= 1

    async def probe(self, instance: Instance) -> None:
        return None


@dataclass
class Ran:
    engine: Engine
    provider: Measuring
    clock: FakeClock
    results: dict[int, tuple[str, Any, float]]
    requests: dict[int, EngineRequest]
    stray: list[BaseException]


async def run_scenario(sc: dict[str, Any]) -> Ran:
    clock = FakeClock(0.0)
    provider = Measuring(clock, sc["answers"])
    engine = Engine(build_config(sc), provider, clock=clock, rng=random.Random(sc["seed"]))
    results: dict[int, tuple[str, Any, float]] = {}
    requests: dict[int, EngineRequest] = {}

    async def one(index: int, spec: dict[str, Any]) -> None:
        try:
            await clock.sleep(spec["arrival"])
            deadline = spec["arrival"] + spec["deadline"] if spec["deadline"] else None
            request = EngineRequest(engine.resolve(spec["target"]), deadline=deadline,
                                    session_id=spec["session"])
            requests[index] = request
            outcome = await engine.call(request)
            assert index not in results
            results[index] = ("ok", outcome, clock.now())
        except RoutingError as exc:
            assert index not in results
            results[index] = ("error", exc, clock.now())
        except asyncio.CancelledError:
            results[index] = ("cancelled", None, clock.now())
            raise

    tasks = []
    for index, spec in enumerate(sc["requests"]):
        task = asyncio.ensure_future(one(index, spec))
        tasks.append(task)
        if spec["cancel"] is not None:
            clock.call_at(spec["cancel"], task.cancel)
    gathered = await clock.drive(asyncio.gather(*tasks, return_exceptions=True), limit=10_000)
    stray = [r for r in gathered
             if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)]
    return Ran(engine, provider, clock, results, requests, stray)


def run(sc: dict[str, Any]) -> Ran:
    return asyncio.run(run_scenario(sc))


PROPERTY = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_in_flight_calls_never_exceed_a_concurrency_limit(sc: dict[str, Any]) -> None:
    ran = run(sc)
    peak = ran.provider.peak
    assert peak["g.echelon1"] <= sc["tier1_limit"]
    if sc["tier2_limit"] is not None:
        assert peak["g.echelon2"] <= sc["tier2_limit"]
    for model in TIER_OF:
        assert peak[model] <= sc["model_limit"]
    assert ran.provider.node_peak <= sc["node_limit"]


@PROPERTY
@given(scenarios())
def test_a_tier_rate_limit_is_never_exceeded_over_any_window(sc: dict[str, Any]) -> None:
    ran = run(sc)
    starts = sorted(ran.provider.starts.get("g.echelon1", []))
    for i, start in enumerate(starts):
        in_window = sum(1 for t in starts[i:] if t < start + 60.0)
        assert in_window <= sc["rpm"]


@PROPERTY
@given(scenarios())
def test_every_request_ends_within_its_deadline_in_one_success_or_one_error(
    sc: dict[str, Any],
) -> None:
    ran = run(sc)
    assert ran.stray == []
    for index, spec in enumerate(sc["requests"]):
        kind, value, ended = ran.results[index]
        if spec["cancel"] is None or spec["cancel"] > ended:
            assert kind in ("ok", "error")
        if kind == "ok":
            assert isinstance(value, Outcome) and value.served
            assert value.stop_reason == "served"
        if kind == "error":
            assert value.outcome is not None and value.outcome.stop_reason is not None
            assert not value.outcome.served
        if spec["deadline"] is not None and kind != "cancelled":
            assert ended <= spec["arrival"] + spec["deadline"] + 1e-9


@PROPERTY
@given(scenarios())
def test_the_trail_never_counts_more_calls_than_max_attempts(sc: dict[str, Any]) -> None:
    ran = run(sc)
    for index, (kind, value, _) in ran.results.items():
        if kind == "cancelled":
            continue
        outcome: Outcome = value if kind == "ok" else value.outcome
        target = sc["requests"][index]["target"]
        cap = sc["pool_attempts"] if target == "p" else sc["max_attempts"]
        assert outcome.max_attempts == cap
        calls = [a for a in outcome.attempts if a.call is not None]
        assert outcome.attempt_count == len(calls) <= cap
        assert [a.call for a in calls] == list(range(1, len(calls) + 1))
        assert ran.provider.per_request[id(ran.requests[index])] == len(calls)


@PROPERTY
@given(scenarios())
def test_no_slot_leaks_after_random_cancellations(sc: dict[str, Any]) -> None:
    ran = run(sc)
    status = ran.engine.status()
    for limit in status["limits"]:
        if limit["kind"] == "concurrency":
            assert (limit["in_flight"], limit["queued"]) == (0, 0), limit
    for breaker in status["breakers"]:
        assert breaker["probes_in_flight"] == 0, breaker
    assert sum(ran.provider.in_flight.values()) == 0
    assert ran.clock.pending == 0 or ran.clock.next_deadline() is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=60), st.integers(1, 5),
       st.floats(1, 20))
def test_sliding_window_never_admits_more_than_max_in_any_window(
    times: list[float], limit: int, window: float
) -> None:
    limiter = SlidingWindow(window, limit)
    admitted = [t for t in sorted(times) if limiter.try_acquire(t)]
    for i, start in enumerate(admitted):
        assert sum(1 for t in admitted[i:] if t < start + window) <= limit


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=60), st.integers(1, 5),
       st.floats(0.1, 5))
def test_token_bucket_never_admits_more_than_burst_plus_refill(
    times: list[float], size: int, rate: float
) -> None:
    bucket = TokenBucket(size, rate)
    admitted = [t for t in sorted(times) if bucket.try_acquire(t)]
    for i, start in enumerate(admitted):
        for end in admitted[i:]:
            count = sum(1 for t in admitted[i:] if t <= end)
            assert count <= size + rate * (end - start) + 1e-6
