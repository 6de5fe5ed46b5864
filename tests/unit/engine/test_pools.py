"""Polling pools: rotation strategies, pool fallback strategies, health, health checks."""

from __future__ import annotations

import asyncio
from collections import Counter

from echelon_sidecar.engine import AllCircuitsOpen, ChainExhausted

from .support import Harness, fail, make_config, ok, tier


def pool_harness(**pool: object) -> Harness:
    return Harness(make_config(
        {
            "g": {"echelon1": tier("oa-1", "an-1"), "echelon2": tier("gm-1"),
                  "fallback_config": {"retry_delay": 0,
                                      "circuit_breaker": {"failure_threshold": 50}}},
            "k": {"echelon1": tier("oa-3")},
        },
        pools={"p": {"task_groups": ["g"], **pool}},
        nodes={"n": {"llm_group": "g", "polling_pool": "p", "fallback_groups": ["k"]}},
    ))


async def served(h: Harness, count: int, model: str = "p") -> list[str]:
    return [(await h.call(model)).model for _ in range(count)]


async def test_pool_instances_are_its_groups_tiers_models_deduplicated() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1", "an-1"), "echelon2": tier("gm-1")}},
        pools={"p": {"task_groups": ["g", "g.echelon1"]}},
    ))
    instances = h.engine.status()["pools"]["p"]["instances"]
    assert [(i["tier"], i["model"]) for i in instances] == [
        ("echelon1", "oa-1"), ("echelon1", "an-1"), ("echelon2", "gm-1")]


async def test_round_robin_rotates_over_instances() -> None:
    h = pool_harness(rotation_strategy="round_robin")
    assert await served(h, 4) == ["oa-1", "an-1", "gm-1", "oa-1"]


async def lru_scenario(strategy: str) -> list[str]:
    h = pool_harness(rotation_strategy=strategy, failure_threshold=1, recovery_time=10)
    h.provider.on("oa-1", fail(503))
    picks = await served(h, 3)  # oa-1 fails and leaves the rotation for 10 s
    await h.clock.advance(10)
    picks += await served(h, 1)
    return picks


async def test_least_recently_used_picks_the_instance_idle_longest() -> None:
    assert await lru_scenario("least_recently_used") == ["an-1", "gm-1", "an-1", "oa-1"]
    assert await lru_scenario("round_robin") == ["an-1", "gm-1", "an-1", "gm-1"]


async def test_weighted_rotation_matches_the_weights_over_many_requests() -> None:
    h = pool_harness(rotation_strategy="weighted", weights={"oa-1": 5, "an-1": 2})
    counts = Counter(await served(h, 800))
    assert counts == {"oa-1": 500, "an-1": 200, "gm-1": 100}  # gm-1: default weight 1


async def test_weighted_rotation_spreads_picks_instead_of_bunching_them() -> None:
    h = pool_harness(rotation_strategy="weighted", weights={"oa-1": 2, "an-1": 1, "gm-1": 1})
    assert await served(h, 4) == ["oa-1", "an-1", "gm-1", "oa-1"]


async def test_instance_rotation_takes_another_instance_up_to_max_instance_attempts() -> None:
    h = pool_harness(fallback_strategy="instance_rotation", max_instance_attempts=2)
    h.provider.default = fail(503)
    err = await h.fails("p")
    assert isinstance(err, ChainExhausted)
    assert h.provider.models_called == ["oa-1", "an-1"]
    assert err.outcome.attempt_count == 2 and err.outcome.fallbacks_taken == 1


async def test_simple_retry_retries_the_same_instance() -> None:
    h = pool_harness(fallback_strategy="simple_retry", max_instance_attempts=3)
    h.provider.on("oa-1", fail(503), fail(503))
    outcome = await h.call("p")
    assert h.provider.models_called == ["oa-1", "oa-1", "oa-1"]
    assert outcome.model == "oa-1" and outcome.attempt_count == 3


async def test_simple_retry_stops_at_max_instance_attempts() -> None:
    h = pool_harness(fallback_strategy="simple_retry", max_instance_attempts=2)
    h.provider.default = fail(503)
    await h.fails("p")
    assert h.provider.models_called == ["oa-1", "oa-1"]


async def test_unhealthy_instances_leave_the_rotation_until_recovery_time() -> None:
    h = pool_harness(failure_threshold=2, recovery_time=30, max_instance_attempts=1)
    h.provider.always("oa-1", fail(503))
    await h.fails("p")  # oa-1: 1 failure
    await served(h, 2)  # an-1, gm-1
    await h.fails("p")  # oa-1: 2 failures: out of rotation
    assert await served(h, 4) == ["an-1", "gm-1", "an-1", "gm-1"]
    status = h.engine.status()["pools"]["p"]["instances"][0]
    assert status["in_rotation"] is False and status["consecutive_failures"] == 2
    await h.clock.advance(30)
    h.provider.calls.clear()
    await h.fails("p")  # back in rotation: one failure takes it out again
    assert h.provider.models_called == ["oa-1"]
    assert await served(h, 2) == ["an-1", "gm-1"]
    assert h.provider.models_called == ["oa-1", "an-1", "gm-1"]


async def test_the_group_breaker_of_each_instance_is_consulted_and_fed() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1", "an-1"),
               "fallback_config": {"circuit_breaker": {"failure_threshold": 1}}}},
        pools={"p": {"task_groups": ["g"], "failure_threshold": 10}},
    ))
    h.provider.on("oa-1", fail(503))
    await h.call("p")
    assert await served(h, 3) == ["an-1", "an-1", "an-1"]
    status = h.engine.status()["pools"]["p"]["instances"][0]
    assert status["in_rotation"] is True and status["circuit"] == "open"


async def test_a_pool_whose_every_circuit_is_open_fails_fast() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1", "an-1"),
               "fallback_config": {"circuit_breaker": {"failure_threshold": 1}}}},
        pools={"p": {"task_groups": ["g"]}},
    ))
    h.provider.default = fail(503)
    await h.fails("p")
    h.provider.calls.clear()
    err = await h.fails("p")
    assert isinstance(err, AllCircuitsOpen)
    assert h.provider.calls == []


async def test_a_node_with_a_pool_continues_along_its_fallback_groups() -> None:
    h = pool_harness(max_instance_attempts=2)
    h.provider.default = fail(503)
    h.provider.always("oa-3", ok())
    outcome = await h.call("n")
    assert h.provider.models_called == ["oa-1", "an-1", "oa-3"]
    assert [a.phase for a in outcome.attempts] == ["pool", "pool", "chain"]
    assert outcome.group == "k"


async def test_health_check_once_probes_every_instance() -> None:
    h = pool_harness(failure_threshold=1, recovery_time=1000)
    h.provider.on_probe("an-1", fail(None))
    result = await h.clock.drive(h.engine.health_check_once("p"))
    assert result == {"g.echelon1/oa-1": True, "g.echelon1/an-1": False,
                      "g.echelon2/gm-1": True}
    assert await served(h, 2) == ["oa-1", "gm-1"]  # an-1 left the rotation


async def test_a_good_probe_never_shortens_recovery_time() -> None:
    h = pool_harness(failure_threshold=1, recovery_time=100, rotation_strategy="round_robin")
    h.provider.on_probe("an-1", fail(None))
    await h.clock.drive(h.engine.health_check_once("p"))  # an-1 out until t=100
    result = await h.clock.drive(h.engine.health_check_once("p"))
    assert result["g.echelon1/an-1"] is False  # the model listing answers: still out
    assert "an-1" not in await served(h, 3)
    await h.clock.advance(100)
    assert h.engine.status()["pools"]["p"]["instances"][1]["on_probation"] is True


async def test_an_instance_back_after_recovery_time_is_on_probation() -> None:
    h = pool_harness(failure_threshold=3, recovery_time=50, rotation_strategy="round_robin")
    h.provider.always("an-1", fail(503))
    await served(h, 9)  # an-1 fails three times (each time the next instance serves): out
    h.provider.calls.clear()
    await served(h, 3)
    assert "an-1" not in h.provider.models_called
    await h.clock.advance(50)
    h.provider.calls.clear()
    await served(h, 3)  # back on probation: its first real request fails...
    assert h.provider.models_called.count("an-1") == 1
    h.provider.calls.clear()
    await served(h, 6)  # ...and takes it out again at once
    assert "an-1" not in h.provider.models_called


async def test_run_health_checks_probes_each_interval_on_the_clock() -> None:
    h = pool_harness(health_check_interval=15)
    task = asyncio.ensure_future(h.engine.run_health_checks())
    await h.clock.advance(14)
    assert h.provider.probes == []
    await h.clock.advance(1)
    assert len(h.provider.probes) == 3
    await h.clock.advance(15)
    assert len(h.provider.probes) == 6
    h.engine.reload(make_config(
        {"g": {"echelon1": tier("oa-1")}},
        pools={"p": {"task_groups": ["g"], "health_check_interval": 5}},
    ))
    await h.clock.advance(5)
    assert len(h.provider.probes) == 7
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
