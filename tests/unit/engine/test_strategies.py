"""Fallback strategies, attempt caps and budgets, delays, timeouts, overrides."""

from __future__ import annotations

import itertools
import random

import pytest

from echelon_sidecar.engine import ChainExhausted, UnknownTarget

from .support import Harness, fail, fallback, hang, make_config, ok, slow, tier


def three_tiers(strategy: str = "echelon_down", **fb: object) -> Harness:
    return Harness(make_config({
        "g": {
            "echelon1": tier("oa-1", priority=1),
            "echelon2": tier("an-1", priority=2),
            "echelon3": tier("gm-1", priority=3),
            "fallback_config": fallback(strategy=strategy, max_attempts=5, **fb),
        },
        "h": {"echelon1": tier("oa-3")},
        "k": {"echelon1": tier("local-1")},
    }))


async def test_echelon_down_walks_tier_by_tier_in_priority_order() -> None:
    h = three_tiers()
    h.provider.on("oa-1", fail(503)).on("an-1", fail(500))
    outcome = await h.call("g")
    assert h.provider.models_called == ["oa-1", "an-1", "gm-1"]
    assert (outcome.group, outcome.tier, outcome.model) == ("g", "echelon3", "gm-1")
    assert outcome.attempt_count == 3
    assert outcome.fallbacks_taken == 2
    assert [a.result for a in outcome.attempts] == ["error", "error", "ok"]


async def test_echelon_down_then_the_fallback_groups() -> None:
    h = three_tiers(fallback_groups=["h"])
    for model in ("oa-1", "an-1", "gm-1"):
        h.provider.on(model, fail(503))
    outcome = await h.call("g")
    assert h.provider.models_called == ["oa-1", "an-1", "gm-1", "oa-3"]
    assert outcome.group == "h"


async def test_a_tier_reference_starts_at_that_tier() -> None:
    h = three_tiers()
    h.provider.on("an-1", fail(503))
    outcome = await h.call("g.echelon2")
    assert h.provider.models_called == ["an-1", "gm-1"]
    assert outcome.tier == "echelon3"


async def test_task_group_switch_skips_its_own_lower_tiers() -> None:
    h = three_tiers("task_group_switch", fallback_groups=["h"])
    h.provider.on("oa-1", fail(503))
    outcome = await h.call("g")
    assert h.provider.models_called == ["oa-1", "oa-3"]
    assert outcome.group == "h"


def failover_harness(*models: str) -> Harness:
    return Harness(make_config({
        "g": {"echelon1": tier(*models),
              "fallback_config": fallback(strategy="provider_failover", max_attempts=5)},
    }))


async def test_provider_failover_chooses_another_provider_after_a_failure() -> None:
    h = failover_harness("oa-1", "oa-2", "an-1")
    h.provider.on("oa-1", fail(503))
    outcome = await h.call("g")
    assert h.provider.models_called == ["oa-1", "an-1"]
    assert outcome.model == "an-1"


async def test_provider_failover_falls_back_to_the_same_provider_when_no_other_is_left() -> None:
    h = failover_harness("oa-1", "an-1", "oa-2")
    h.provider.on("oa-1", fail(503)).on("an-1", fail(503))
    outcome = await h.call("g")
    assert h.provider.models_called == ["oa-1", "an-1", "oa-2"]
    assert outcome.model == "oa-2"


async def test_provider_failover_tells_openai_compatible_hosts_apart() -> None:
    h = failover_harness("oa-1", "oa-2", "local-1")
    h.provider.on("oa-1", fail(503))
    await h.call("g")
    assert h.provider.models_called == ["oa-1", "local-1"]


async def test_echelon_down_keeps_declared_order_within_a_tier() -> None:
    h = Harness(make_config({"g": {"echelon1": tier("oa-1", "oa-2", "an-1"),
                                   "fallback_config": fallback()}}))
    h.provider.on("oa-1", fail(503))
    await h.call("g")
    assert h.provider.models_called == ["oa-1", "oa-2"]


async def test_model_rotate_rotates_the_starting_model_per_request() -> None:
    h = Harness(make_config({"g": {"echelon1": tier("oa-1", "oa-2", "an-1"),
                                   "fallback_config": fallback(strategy="model_rotate")}}))
    served = [(await h.call("g")).model for _ in range(4)]
    assert served == ["oa-1", "oa-2", "an-1", "oa-1"]
    h.provider.on("an-1", fail(503))
    h.provider.calls.clear()
    await h.call("g")  # starts at oa-2 ...
    await h.call("g")  # ... starts at an-1, which fails, then the next in order
    assert h.provider.models_called == ["oa-2", "an-1", "oa-1"]


async def test_max_attempts_caps_the_calls_of_the_whole_chain() -> None:
    h = three_tiers(fallback_groups=["h"])
    h.engine.reload(make_config({
        "g": {"echelon1": tier("oa-1", "oa-2"), "echelon2": tier("an-1"),
              "fallback_config": fallback(max_attempts=2, fallback_groups=["h"])},
        "h": {"echelon1": tier("oa-3")},
    }))
    h.provider.default = fail(503)
    err = await h.fails("g")
    assert isinstance(err, ChainExhausted)
    assert h.provider.models_called == ["oa-1", "oa-2"]
    assert err.outcome.attempt_count == 2
    assert err.outcome.stop_reason == "max_attempts"
    assert "max_attempts" in str(err)


async def test_fallback_first_a_tiers_retries_wait_until_later_tiers_were_tried() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1", priority=1, max_retries=2),
              "echelon2": tier("gm-1", priority=2),
              "fallback_config": fallback(max_attempts=10)},
    }))
    h.provider.on("oa-1", fail(503), fail(503)).on("an-1", fail(503))
    await h.call("g")
    assert h.provider.models_called == ["oa-1", "an-1", "gm-1"]


async def test_retry_pass_spends_each_tiers_max_retries_cycling_distinct_models_first() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1", priority=1, max_retries=2),
              "echelon2": tier("gm-1", priority=2),
              "fallback_config": fallback(max_attempts=10)},
    }))
    h.provider.on("oa-1", fail(503), fail(503)).on("an-1", fail(503), fail(503))
    h.provider.on("gm-1", fail(503))
    await h.fails("g")
    # pass 1: every distinct model once; pass 2: echelon1's two retries (budget 2 models + 2)
    assert h.provider.models_called == ["oa-1", "an-1", "gm-1", "oa-1", "an-1"]


async def test_tier_budget_defaults_to_each_model_once_and_max_retries_zero_means_no_retry(
) -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1", priority=1),
              "echelon2": tier("oa-2", "gm-1", priority=2, max_retries=0),
              "echelon3": tier("oa-3", priority=3),
              "fallback_config": fallback(max_attempts=10)},
    }))
    h.provider.default = fail(503)
    h.provider.on("oa-3", ok())
    await h.call("g")
    # max_retries: 0 on a two-model tier tries each model once, with no retry
    assert h.provider.models_called == ["oa-1", "an-1", "oa-2", "gm-1", "oa-3"]


async def test_retry_delay_backs_off_exponentially_with_jitter_on_the_clock() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", max_retries=4),
              "fallback_config": {"retry_delay": 1.0, "max_retry_delay": 3.0,
                                  "max_attempts": 5}},
    }), seed=11)
    h.provider.on("oa-1", *[fail(503)] * 4)
    start = h.clock.now()
    await h.call("g")
    times = [c.at - start for c in h.provider.calls]
    rng = random.Random(11)
    expected, t = [0.0], 0.0
    for k in (1, 2, 3, 4):
        t += min(3.0, 1.0 * 2 ** (k - 1)) * (1 + 0.25 * rng.random())
        expected.append(t)
    assert times == pytest.approx(expected)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 1.0 <= gaps[0] < 1.25 and 2.0 <= gaps[1] < 2.5
    assert 3.0 <= gaps[2] < 3.75 and 3.0 <= gaps[3] < 3.75  # capped at max_retry_delay


async def test_a_longer_retry_after_wins_over_the_backoff() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", max_retries=1),
              "fallback_config": {"retry_delay": 1.0, "max_attempts": 3}},
    }))
    h.provider.on("oa-1", fail(429, retry_after=7.0))
    start = h.clock.now()
    outcome = await h.call("g")
    assert [c.at - start for c in h.provider.calls] == [0.0, 7.0]
    assert outcome.attempts[0].error_class == "rate_limited"


async def test_a_shorter_retry_after_loses_to_the_backoff() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", max_retries=1),
              "fallback_config": {"retry_delay": 2.0, "max_attempts": 3}},
    }), seed=3)
    h.provider.on("oa-1", fail(429, retry_after=0.5))
    start = h.clock.now()
    await h.call("g")
    jitter = 1 + 0.25 * random.Random(3).random()
    assert h.provider.calls[1].at - start == pytest.approx(2.0 * jitter)


async def test_without_a_deadline_a_retry_after_up_to_the_backoff_is_waited_for() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", max_retries=1),
              "fallback_config": {"retry_delay": 20.0, "max_retry_delay": 20.0,
                                  "max_attempts": 3}},
    }), seed=5)
    h.provider.on("oa-1", fail(429, retry_after=1.0))
    start = h.clock.now()
    outcome = await h.call("g")
    jitter = 1 + 0.25 * random.Random(5).random()
    assert outcome.model == "oa-1"
    assert h.provider.calls[1].at - start == pytest.approx(20.0 * jitter)


async def test_a_retry_after_beyond_the_deadline_skips_that_instance() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1", max_retries=2),
              "fallback_config": fallback(max_attempts=5)},
    }))
    h.provider.on("oa-1", fail(429, retry_after=60.0)).on("an-1", *[fail(503)] * 3)
    outcome_err = await h.fails("g", timeout=10.0)
    trail = [(a.model, a.result, a.reason) for a in outcome_err.outcome.attempts]
    assert trail[:3] == [("oa-1", "error", "fallback"), ("an-1", "error", "fallback"),
                         ("oa-1", "skipped", "retry_after")]
    assert h.provider.models_called == ["oa-1", "an-1", "an-1", "an-1"]


async def test_retry_after_is_remembered_for_later_requests() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1"), "fallback_config": fallback()},
    }))
    h.provider.on("oa-1", fail(429, retry_after=100.0))
    await h.call("g")
    outcome = await h.call("g")  # 100 s > max_retry_delay (30 s): skip oa-1 at once
    assert outcome.model == "an-1"
    assert outcome.attempts[0].reason == "retry_after"


async def test_a_running_retry_after_skips_the_instance_at_once_when_another_tier_serves(
) -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", priority=1), "echelon2": tier("an-1", priority=2),
              "fallback_config": fallback(max_attempts=4)},
    }))
    h.provider.always("oa-1", fail(429, retry_after=30.0))
    start = h.clock.now()
    await h.call("g", timeout=120.0)
    for _ in range(3):  # a deadline far enough for the Retry-After: still no waiting
        outcome = await h.call("g", timeout=120.0)
        assert outcome.model == "an-1" and outcome.attempt_count == 1
        assert outcome.attempts[0].reason == "retry_after"
    assert h.clock.now() == start
    assert h.provider.models_called == ["oa-1", "an-1", "an-1", "an-1", "an-1"]
    await h.clock.advance(30.0)
    await h.call("g", timeout=120.0)
    assert h.provider.models_called[-2:] == ["oa-1", "an-1"]  # called again once it passed


async def test_the_retry_after_is_waited_for_only_when_nothing_else_can_serve() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1", max_retries=1),
              "fallback_config": fallback(max_attempts=4)},
    }))
    h.provider.on("oa-1", fail(429, retry_after=8.0)).on("an-1", fail(503), fail(503))
    start = h.clock.now()
    outcome = await h.call("g", timeout=60.0)
    assert outcome.model == "oa-1"
    assert [c.at - start for c in h.provider.calls] == [0.0, 0.0, 0.0, 8.0]


async def test_a_retry_after_past_the_deadline_ends_at_once_with_the_soonest_hint() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", priority=1), "echelon2": tier("an-1", priority=2),
              "fallback_config": fallback(max_attempts=4)},
    }))
    h.provider.always("oa-1", fail(429, retry_after=50.0))
    h.provider.always("an-1", fail(429, retry_after=20.0))
    await h.fails("g", timeout=10.0)
    start = h.clock.now()
    err = await h.fails("g", timeout=10.0)
    assert h.clock.now() == start  # nothing waited: no instance could serve in time
    assert isinstance(err, ChainExhausted)
    assert err.outcome.stop_reason == "rate_limited"
    assert err.retry_after == pytest.approx(20.0)
    assert h.provider.models_called == ["oa-1", "an-1"]


async def test_the_tier_timeout_bounds_one_attempt_on_the_fake_clock() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", priority=1, timeout=5),
              "echelon2": tier("an-1", priority=2),
              "fallback_config": fallback()},
    }))
    h.provider.on("oa-1", hang())
    start = h.clock.now()
    outcome = await h.call("g")
    assert [c.at - start for c in h.provider.calls] == [0.0, 5.0]
    assert outcome.attempts[0].error_class == "timeout"
    assert outcome.attempts[0].duration == 5.0


async def test_the_deadline_cuts_an_attempt_short_without_penalty() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", timeout=60), "fallback_config": fallback()},
    }))
    h.provider.on("oa-1", slow(30))
    start = h.clock.now()
    err = await h.fails("g", timeout=4.0)
    assert isinstance(err, ChainExhausted)
    assert h.clock.now() - start == 4.0
    assert err.outcome.stop_reason == "deadline"
    breaker = h.engine.status()["breakers"][0]
    assert breaker["consecutive_failures"] == 0


async def test_a_callers_fallback_groups_replace_the_groups_own() -> None:
    h = three_tiers("task_group_switch", fallback_groups=["h"])
    h.provider.on("oa-1", fail(503))
    outcome = await h.call("g", fallback_groups=["k"])
    assert h.provider.models_called == ["oa-1", "local-1"]
    assert outcome.group == "k"


async def test_an_unknown_fallback_group_from_the_caller_is_named() -> None:
    h = three_tiers()
    with pytest.raises(UnknownTarget, match=r"'hh'.*did you mean 'h'"):
        await h.call("g", fallback_groups=["hh"])


def node_harness() -> Harness:
    return Harness(make_config(
        {
            "g": {"echelon1": tier("an-1", "an-2", priority=1, timeout=30, temperature=0.9),
                  "echelon2": tier("oa-1", priority=2),
                  "fallback_config": fallback(fallback_groups=["h"], max_attempts=6)},
            "h": {"echelon1": tier("oa-3")},
            "k": {"echelon1": tier("gm-1")},
        },
        nodes={"planner": {"llm_group": "g.echelon1", "fallback_groups": ["k"],
                           "task_config": {"timeout": 7, "max_retries": 2, "temperature": 0.2,
                                           "thinking_config": {"enabled": True,
                                                               "budget_tokens": 2048}}}},
    ))


async def test_a_node_routes_with_its_own_fallback_groups_and_task_config() -> None:
    h = node_harness()
    h.provider.on("an-1", fail(503), fail(503)).on("an-2", fail(503))
    outcome = await h.call("planner")
    # fallback first: each model of the tier once, then the node's fallback group k (the
    # node's max_retries would only be spent in the retry pass)
    assert h.provider.models_called == ["an-1", "an-2", "gm-1"]
    settings = h.provider.calls[0].settings
    assert (settings.timeout, settings.temperature) == (7, 0.2)
    assert settings.thinking_config is not None and settings.thinking_config.budget_tokens == 2048
    assert outcome.group == "k"


async def test_the_node_header_applies_its_routing_to_a_group_reference() -> None:
    h = node_harness()
    h.provider.on("an-1", fail(503)).on("an-2", fail(503))
    target = h.engine.resolve("g", node="planner")
    assert (target.kind, target.node) == ("group", "planner")
    outcome = await h.call("g", node="planner")
    # the whole group, then the node's fallback groups (k) instead of the group's (h)
    assert h.provider.models_called == ["an-1", "an-2", "gm-1"]
    skipped = [a for a in outcome.attempts if a.result == "skipped"]
    assert [(a.model, a.reason) for a in skipped] == [("oa-1", "cannot_serve")]
    assert "reasoning" in (skipped[0].message or "")
    assert h.provider.calls[0].settings.timeout == 7
    plain = await h.call("g")
    assert plain.model == "an-1" and h.provider.calls[-1].settings.timeout == 30
    assert h.provider.calls[-1].settings.temperature == 0.9


async def test_targets_resolve_nodes_then_pools_then_group_references() -> None:
    h = Harness(make_config(
        {"fast_small_group": {"translation": tier("oa-1")}},
        pools={"p": {"task_groups": ["fast_small_group"]}},
        nodes={"n": {"llm_group": "fast_small_group"}},
    ))
    assert h.engine.resolve("n").kind == "node"
    assert h.engine.resolve("p").kind == "pool"
    target = h.engine.resolve("fast-small-group.translation")
    assert (target.kind, target.name) == ("group", "fast_small_group.translation")
    with pytest.raises(UnknownTarget, match="did you mean 'fast_small_group'"):
        h.engine.resolve("fast_smal_group")
    with pytest.raises(UnknownTarget, match="node 'm'"):
        h.engine.resolve("fast_small_group", node="m")
