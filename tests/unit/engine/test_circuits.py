"""Circuit breakers inside the engine: skipping, probing, fail-fast, last resort."""

from __future__ import annotations

import asyncio

from echelon_sidecar.engine import AllCircuitsOpen, ChainExhausted

from .support import Harness, Recorder, fail, fallback, make_config, ok, slow, tier


def breaker_harness(listeners: tuple[Recorder, ...] = (), **cb: object) -> Harness:
    return Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1"),
              "fallback_config": fallback(circuit_breaker={"failure_threshold": 2,
                                                           "recovery_time": 30, **cb})},
    }), listeners=listeners)


async def test_open_circuit_skips_instance_until_recovery_time() -> None:
    h = breaker_harness()
    h.provider.always("oa-1", fail(503))
    for _ in range(2):
        assert (await h.call("g")).model == "an-1"
    h.provider.calls.clear()
    outcome = await h.call("g")
    assert h.provider.models_called == ["an-1"]
    assert [(a.model, a.result, a.reason) for a in outcome.attempts] == [
        ("oa-1", "skipped", "circuit_open"), ("an-1", "ok", "served")]
    assert outcome.attempt_count == 1
    await h.clock.advance(29)
    await h.call("g")
    assert h.provider.models_called == ["an-1", "an-1"]
    await h.clock.advance(1)
    h.provider.always("oa-1", ok())
    outcome = await h.call("g")
    assert outcome.model == "oa-1"  # the half-open probe succeeded: closed again
    assert h.engine.status()["breakers"][1]["state"] == "closed"


async def test_half_open_lets_exactly_its_probes_through_concurrently() -> None:
    h = breaker_harness(half_open_requests=2)
    h.provider.always("oa-1", fail(503))
    for _ in range(2):
        await h.call("g")
    await h.clock.advance(30)
    h.provider.calls.clear()
    h.provider.always("oa-1", slow(5))
    requests = [asyncio.ensure_future(h.engine.call(h.request("g"))) for _ in range(3)]
    await h.clock.settle()
    assert h.provider.models_called == ["oa-1", "oa-1", "an-1"]
    await h.clock.advance(5)
    outcomes = [await r for r in requests]
    assert sorted(o.model for o in outcomes) == ["an-1", "oa-1", "oa-1"]
    assert h.engine.status()["breakers"][1]["state"] == "closed"


async def test_a_failed_probe_reopens_with_a_longer_period() -> None:
    h = breaker_harness(recovery_backoff=2, max_recovery_time=100)
    h.provider.always("oa-1", fail(503))
    for _ in range(2):
        await h.call("g")
    await h.clock.advance(30)
    await h.call("g")  # the probe fails
    snap = next(b for b in h.engine.status()["breakers"] if b["model"] == "oa-1")
    assert snap["state"] == "open" and snap["retry_in"] == 60.0
    assert snap["reopen_count"] == 1


async def test_every_circuit_open_fails_fast_without_calling_or_waiting() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1"), "echelon2": tier("an-1"),
              "fallback_config": {"retry_delay": 5, "max_attempts": 4,
                                  "circuit_breaker": {"failure_threshold": 1}}},
    }))
    h.provider.default = fail(503)
    await h.fails("g")
    h.provider.calls.clear()
    before = h.clock.now()
    err = await h.fails("g")
    assert isinstance(err, AllCircuitsOpen)
    assert h.provider.calls == [] and h.clock.now() == before
    assert [a.reason for a in err.outcome.attempts] == ["circuit_open", "circuit_open"]
    assert err.outcome.stop_reason == "all_circuits_open"


async def test_last_resort_is_tried_ignoring_its_circuit_when_everything_is_open() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1"),
              "fallback_config": fallback(last_resort="lr.echelon1",
                                          circuit_breaker={"failure_threshold": 1})},
        "lr": {"echelon1": tier("gm-1"),
               "fallback_config": fallback(circuit_breaker={"failure_threshold": 1})},
    }))
    h.provider.on("oa-1", fail(503))
    h.provider.on("gm-1", fail(503))
    await h.fails("g")  # oa-1 opens; the last resort is tried and fails, opening gm-1 too
    states = {b["model"]: b["state"] for b in h.engine.status()["breakers"]}
    assert states == {"oa-1": "open", "gm-1": "open"}
    h.provider.calls.clear()
    outcome = await h.call("g")
    assert h.provider.models_called == ["gm-1"]
    assert [(a.model, a.phase, a.result) for a in outcome.attempts] == [
        ("oa-1", "chain", "skipped"), ("gm-1", "last_resort", "ok")]


async def test_a_whole_group_last_resort_tries_its_tiers_and_respects_max_attempts() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1"),
              "fallback_config": fallback(last_resort="lr", max_attempts=2)},
        "lr": {"echelon1": tier("gm-1"), "echelon2": tier("an-1")},
    }))
    h.provider.default = fail(503)
    err = await h.fails("g")
    assert isinstance(err, ChainExhausted)
    assert h.provider.models_called == ["oa-1", "gm-1"]


async def test_transitions_reach_listeners_in_order() -> None:
    recorder = Recorder()
    h = breaker_harness(listeners=(recorder,))
    h.provider.always("oa-1", fail(503))
    for _ in range(2):
        await h.call("g")
    start = h.clock.now()
    await h.clock.advance(30)
    h.provider.always("oa-1", ok())
    await h.call("g")
    assert [(k, old, new) for k, old, new, _ in recorder.transitions] == [
        (("g", "oa-1"), "closed", "open"),
        (("g", "oa-1"), "open", "half_open"),
        (("g", "oa-1"), "half_open", "closed"),
    ]
    assert recorder.transitions[1][3] == start + 30
