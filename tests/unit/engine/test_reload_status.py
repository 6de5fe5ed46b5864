"""Reload keeps state where unchanged; status() content; listener events."""

from __future__ import annotations

import asyncio

import orjson

from echelon_sidecar.config import LoadedConfig
from echelon_sidecar.engine import Engine, FakeClock, LimitRefused

from .support import FakeProvider, Harness, Recorder, fail, make_config, slow, tier


def config(threshold: int = 1, concurrency: int = 2, strategy: str = "round_robin") -> object:
    return make_config(
        {"g": {"echelon1": tier("oa-1", "an-1", concurrency_limit=concurrency),
               "fallback_config": {"retry_delay": 0,
                                   "circuit_breaker": {"failure_threshold": threshold}}}},
        pools={"p": {"task_groups": ["g"], "rotation_strategy": strategy}},
        models={"oa-1": {"provider": "openai", "model": "gpt-4o",
                         "api_key_env": "OPENAI_SECRET_ENV", "headers": {"x-org": "acme"}}},
    )


async def test_reload_keeps_breaker_state_when_its_config_is_unchanged() -> None:
    h = Harness(config())  # type: ignore[arg-type]
    h.provider.on("oa-1", fail(503))
    await h.call("g")
    h.engine.reload(config(concurrency=5))  # type: ignore[arg-type]
    states = {b["model"]: b["state"] for b in h.engine.status()["breakers"]}
    assert states["oa-1"] == "open"
    h.engine.reload(config(threshold=3))  # type: ignore[arg-type]
    states = {b["model"]: b["state"] for b in h.engine.status()["breakers"]}
    assert states["oa-1"] == "closed"  # a changed breaker config starts fresh


async def test_reload_keeps_pool_rotation_when_its_instances_are_unchanged() -> None:
    h = Harness(config())  # type: ignore[arg-type]
    assert (await h.call("p")).model == "oa-1"
    h.engine.reload(config(concurrency=5))  # type: ignore[arg-type]
    assert (await h.call("p")).model == "an-1"


async def test_in_flight_requests_finish_on_the_objects_they_hold() -> None:
    h = Harness(config(concurrency=1))  # type: ignore[arg-type]
    h.provider.always("oa-1", slow(10))
    first = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.settle()
    h.engine.reload(config(concurrency=3))  # type: ignore[arg-type]
    limit = next(x for x in h.engine.status()["limits"] if x["level"] == "echelon")
    assert (limit["limit"], limit["in_flight"]) == (3, 0)  # a new object; the old one drains
    others = [asyncio.ensure_future(h.engine.call(h.request("g"))) for _ in range(3)]
    await h.clock.settle()
    assert h.provider.in_flight["oa-1"] == 4
    await h.clock.advance(10)
    assert (await first).model == "oa-1"
    assert [(await o).model for o in others] == ["oa-1"] * 3
    limit = next(x for x in h.engine.status()["limits"] if x["level"] == "echelon")
    assert limit["in_flight"] == 0


async def test_reload_keeps_in_flight_slots_when_the_limit_is_unchanged() -> None:
    h = Harness(config(concurrency=1))  # type: ignore[arg-type]
    h.provider.always("oa-1", slow(10))
    first = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.settle()
    h.engine.reload(config(concurrency=1, strategy="weighted"))  # type: ignore[arg-type]
    limit = next(x for x in h.engine.status()["limits"] if x["level"] == "echelon")
    assert limit["in_flight"] == 1  # the same object, still holding the request in flight
    err = await h.fails("g")
    assert isinstance(err, LimitRefused)  # the kept limit is still full
    await h.clock.advance(10)
    await first
    limit = next(x for x in h.engine.status()["limits"] if x["level"] == "echelon")
    assert limit["in_flight"] == 0


async def test_status_reports_breakers_pools_limits_and_no_secrets() -> None:
    loaded = LoadedConfig(config(), [], {}, [])  # type: ignore[arg-type]
    clock = FakeClock()
    engine = Engine(loaded, FakeProvider(clock), clock=clock)
    status = engine.status()
    assert status["config_version"] == loaded.version == engine.version
    assert {(b["group"], b["model"], b["state"]) for b in status["breakers"]} == {
        ("g", "oa-1", "closed"), ("g", "an-1", "closed")}
    pool = status["pools"]["p"]
    assert pool["rotation_strategy"] == "round_robin"
    assert [i["model"] for i in pool["instances"]] == ["oa-1", "an-1"]
    assert pool["instances"][0]["in_rotation"] is True
    assert any(x["level"] == "echelon" and x["limit"] == 2 for x in status["limits"])
    text = orjson.dumps(status).decode()
    assert "OPENAI_SECRET_ENV" not in text and "acme" not in text and "https://" not in text


async def test_listeners_see_attempts_outcomes_refusals_and_queue_depth() -> None:
    recorder = Recorder()
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1", "an-1")}},
        concurrency_control={"levels": {"group": {"limit": 1, "queue_size": 1}}},
        rate_limiting={"algorithm": "token_bucket", "bucket_size": 2, "refill_rate": 0.001},
    ))
    h.engine.add_listener(recorder)
    h.provider.on("oa-1", fail(503), slow(5))
    await h.call("g")
    assert recorder.attempts == [("oa-1", "error", "fallback"), ("an-1", "ok", "served")]
    assert recorder.outcomes[-1].model == "an-1"
    first = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.settle()
    err = await h.fails("g")
    assert recorder.refusals == [("global", "global")]
    assert recorder.outcomes[-1] is err.outcome
    await h.clock.advance(5)
    await first
    h.engine.remove_listener(recorder)
    await h.clock.advance(10_000)
    second = asyncio.ensure_future(h.engine.call(h.request("g")))
    del second
    assert recorder.depths == []
    await asyncio.sleep(0)


async def test_queue_depth_events_follow_the_queue() -> None:
    recorder = Recorder()
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1")}},
        concurrency_control={"levels": {"group": {"limit": 1, "queue_size": 1}}},
    ), listeners=(recorder,))
    h.provider.always("oa-1", slow(5))
    tasks = [asyncio.ensure_future(h.engine.call(h.request("g"))) for _ in range(2)]
    await h.clock.advance(10)
    await asyncio.gather(*tasks)
    assert recorder.depths == [("group", "g", 1), ("group", "g", 0)]
