"""Rate and concurrency limits inside the engine: skip along the chain, or refuse at entry."""

from __future__ import annotations

import asyncio

import pytest

from echelon_sidecar.engine import LimitRefused

from .support import Harness, Recorder, fallback, make_config, slow, tier


def two_tiers(first: dict[str, object], **sections: object) -> Harness:
    return Harness(make_config({
        "g": {"echelon1": tier("oa-1", priority=1, **first),
              "echelon2": tier("an-1", priority=2),
              "fallback_config": fallback()},
    }, **sections))


def limit(h: Harness, level: str, key: str, kind: str = "concurrency") -> dict[str, object]:
    return next(x for x in h.engine.status()["limits"]
                if x["level"] == level and x["key"] == key and x["kind"] == kind)


async def test_tier_rpm_limit_moves_on_along_the_chain_until_the_window_slides() -> None:
    h = two_tiers({"rpm_limit": 2})
    served = [(await h.call("g")).model for _ in range(3)]
    assert served == ["oa-1", "oa-1", "an-1"]
    outcome = await h.call("g")
    assert outcome.attempts[0].reason == "rate_limited"
    await h.clock.advance(60)
    assert (await h.call("g")).model == "oa-1"


async def test_budgets_are_divided_by_the_number_of_sidecars() -> None:
    h = two_tiers({"rpm_limit": 4, "concurrency_limit": 6}, sidecar={"sidecars": 2})
    served = [(await h.call("g")).model for _ in range(3)]
    assert served == ["oa-1", "oa-1", "an-1"]
    assert limit(h, "echelon", "g.echelon1", "rate")["max_requests"] == 2
    assert limit(h, "echelon", "g.echelon1")["limit"] == 3


async def test_the_pool_rate_limit_refuses_at_the_entry_with_a_retry_hint() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1", "an-1")}},
        pools={"p": {"task_groups": ["g"],
                     "rate_limiting": {"algorithm": "token_bucket", "bucket_size": 1,
                                       "refill_rate": 0.1}}},
    ))
    await h.call("p")
    err = await h.fails("p")
    assert isinstance(err, LimitRefused)
    assert (err.level, err.key) == ("pool", "p")
    assert err.retry_after == pytest.approx(10.0)
    assert h.provider.models_called == ["oa-1"]


async def test_the_global_rate_limit_refuses_every_target_at_the_entry() -> None:
    recorder = Recorder()
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1")}},
        rate_limiting={"algorithm": "sliding_window",
                       "sliding_window": {"window_size": 10, "max_requests": 1}},
    ), listeners=(recorder,))
    await h.call("g")
    err = await h.fails("g")
    assert isinstance(err, LimitRefused)
    assert err.level == "global" and err.retry_after == pytest.approx(10.0)
    assert recorder.refusals == [("global", "global")]
    await h.clock.advance(10)
    await h.call("g")


async def test_a_node_whose_pool_refuses_moves_on_or_is_refused_when_nothing_is_left() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1")}, "k": {"echelon1": tier("gm-1")}},
        pools={"p": {"task_groups": ["g"],
                     "rate_limiting": {"algorithm": "token_bucket", "bucket_size": 1,
                                       "refill_rate": 0.5}}},
        nodes={"with_fallback": {"llm_group": "g", "polling_pool": "p",
                                 "fallback_groups": ["k"]},
               "alone": {"llm_group": "g", "polling_pool": "p"}},
    ))
    await h.call("alone")
    outcome = await h.call("with_fallback")
    assert outcome.model == "gm-1"
    err = await h.fails("alone")
    assert isinstance(err, LimitRefused)
    assert (err.level, err.key) == ("pool", "p") and err.retry_after == pytest.approx(2.0)


async def test_a_disabled_rate_limit_is_not_enforced() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1")}},
        rate_limiting={"enabled": False, "algorithm": "token_bucket", "bucket_size": 1,
                       "refill_rate": 0.001},
    ))
    for _ in range(3):
        await h.call("g")


async def test_tier_concurrency_limit_skips_to_the_next_tier_when_full() -> None:
    h = two_tiers({"concurrency_limit": 1})
    h.provider.always("oa-1", slow(10))
    first = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.settle()
    second = await h.clock.drive(h.engine.call(h.request("g")))
    assert second.model == "an-1"
    assert second.attempts[0].reason == "queue_full"
    await h.clock.advance(10)
    assert (await first).model == "oa-1"


async def test_echelon_level_queue_waits_for_a_slot_in_fifo_order() -> None:
    h = two_tiers({}, concurrency_control={"levels": {"echelon": {"limit": 1, "queue_size": 2}}})
    h.provider.always("oa-1", slow(5))
    tasks = [asyncio.ensure_future(h.engine.call(h.request("g"))) for _ in range(3)]
    await h.clock.settle()
    assert limit(h, "echelon", "g.echelon1")["queued"] == 2
    await h.clock.advance(15)
    outcomes = [await t for t in tasks]
    assert [o.model for o in outcomes] == ["oa-1"] * 3
    assert [c.at - h.provider.calls[0].at for c in h.provider.calls] == [0.0, 5.0, 10.0]


async def test_a_queued_attempt_gives_up_at_the_deadline() -> None:
    h = two_tiers({}, concurrency_control={"levels": {"echelon": {"limit": 1, "queue_size": 1}}})
    h.provider.always("oa-1", slow(50))
    first = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.settle()
    start = h.clock.now()
    err = await h.fails("g", timeout=3)
    assert h.clock.now() - start == 3
    assert [a.reason for a in err.outcome.attempts][:1] == ["queue_timeout"]
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)


async def test_model_level_limit_skips_to_the_next_model() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1", "an-1")}},
        concurrency_control={"levels": [{"model_level": {"limit": 1, "queue_size": 0}}]},
    ))
    h.provider.always("oa-1", slow(5))
    first = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.settle()
    second = await h.clock.drive(h.engine.call(h.request("g")))
    assert second.model == "an-1" and second.attempts[0].reason == "queue_full"
    await h.clock.advance(5)
    await first


async def test_node_concurrency_refuses_at_the_entry() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1")}},
        nodes={"n": {"llm_group": "g", "concurrency_config": {"limit": 1, "queue_size": 0}}},
    ))
    h.provider.always("oa-1", slow(5))
    first = asyncio.ensure_future(h.engine.call(h.request("n")))
    await h.clock.settle()
    err = await h.fails("n")
    assert isinstance(err, LimitRefused) and (err.level, err.key) == ("node", "n")
    await h.clock.advance(5)
    await first
    assert limit(h, "node", "n")["in_flight"] == 0


async def test_group_level_slot_is_held_for_the_whole_request_and_waits_in_its_queue() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1"), "echelon2": tier("an-1")}},
        concurrency_control={"levels": {"group": {"limit": 1, "queue_size": 1}}},
    ))
    h.provider.always("oa-1", slow(5))
    first = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.settle()
    second = asyncio.ensure_future(h.engine.call(h.request("g")))
    await h.clock.settle()
    assert limit(h, "group", "g")["queued"] == 1
    err = await h.fails("g")  # the queue is full
    assert isinstance(err, LimitRefused) and err.level == "group"
    await h.clock.advance(10)
    await first
    await second
    assert [c.at - h.provider.calls[0].at for c in h.provider.calls] == [0.0, 5.0]


async def test_when_every_tier_is_refused_by_a_limit_the_request_is_refused() -> None:
    h = Harness(make_config({"g": {"echelon1": tier("oa-1", rpm_limit=1),
                                   "echelon2": tier("an-1", rpm_limit=1)}}))
    await h.call("g")
    await h.call("g")
    err = await h.fails("g")
    assert isinstance(err, LimitRefused)
    assert err.level == "echelon" and err.retry_after == pytest.approx(60.0)
    assert [a.reason for a in err.outcome.attempts] == ["rate_limited", "rate_limited"]


async def test_concurrency_control_levels_are_ignored_when_disabled() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1")}},
        concurrency_control={"enabled": False, "levels": {"group": {"limit": 1}}},
    ))
    h.provider.always("oa-1", slow(5))
    tasks = [asyncio.ensure_future(h.engine.call(h.request("g"))) for _ in range(3)]
    await h.clock.advance(5)
    assert [(await t).model for t in tasks] == ["oa-1"] * 3
    assert h.provider.max_total_in_flight == 3


async def test_each_pod_takes_its_share_by_name_and_the_shares_sum_to_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # concurrency 5 and rpm 7 over 3 sidecars: by pod name 2/2/1 and 3/2/2 (largest remainder)
    pods = ["app-c", "app-a", "app-b"]
    shares: dict[str, tuple[object, object]] = {}
    for pod in pods:
        monkeypatch.setenv("ECHELON_POD_NAME", pod)
        h = two_tiers({"rpm_limit": 7, "concurrency_limit": 5},
                      sidecar={"sidecars": 3, "pods": pods})
        assert h.engine.status()["slot"] == sorted(pods).index(pod)
        shares[pod] = (limit(h, "echelon", "g.echelon1")["limit"],
                       limit(h, "echelon", "g.echelon1", "rate")["max_requests"])
    assert shares == {"app-a": (2, 3), "app-b": (2, 2), "app-c": (1, 2)}
    assert sum(c for c, _ in shares.values()) == 5
    assert sum(r for _, r in shares.values()) == 7


async def test_a_sidecar_whose_pod_is_not_listed_takes_the_floor_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a pod that came up before the operator re-split: never more than the listed ones leave
    monkeypatch.setenv("ECHELON_POD_NAME", "app-new")
    h = two_tiers({"concurrency_limit": 5}, sidecar={"sidecars": 3, "pods": ["app-a", "app-b"]})
    assert h.engine.status()["slot"] is None
    assert limit(h, "echelon", "g.echelon1")["limit"] == 1
    monkeypatch.delenv("ECHELON_POD_NAME")
    alone = two_tiers({"concurrency_limit": 5})
    assert limit(alone, "echelon", "g.echelon1")["limit"] == 5  # run alone: the whole budget
