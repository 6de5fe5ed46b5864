"""Session affinity: pinning, re-pinning, idle TTL, LRU bound."""

from __future__ import annotations

from echelon_sidecar.engine import SessionPins

from .support import Harness, fail, fallback, make_config, tier


def test_pins_expire_after_the_idle_ttl() -> None:
    pins = SessionPins(idle_ttl=60, max_sessions=10)
    pins.put("s", ("g", "t", "m"), 0.0)
    assert pins.get("s", 59.0) == ("g", "t", "m")  # use refreshes the pin
    assert pins.get("s", 118.0) == ("g", "t", "m")
    assert pins.get("s", 178.0) is None
    assert len(pins) == 0


def test_at_most_max_sessions_are_kept_least_recently_used_first_out() -> None:
    pins = SessionPins(idle_ttl=1000, max_sessions=2)
    pins.put("a", ("g", "t", "1"), 0.0)
    pins.put("b", ("g", "t", "2"), 1.0)
    pins.get("a", 2.0)
    pins.put("c", ("g", "t", "3"), 3.0)
    assert pins.get("b", 4.0) is None
    assert pins.get("a", 4.0) == ("g", "t", "1")
    assert pins.get("c", 4.0) == ("g", "t", "3")
    assert len(pins) == 2


def pool_harness(**affinity: object) -> Harness:
    return Harness(make_config(
        {"g": {"echelon1": tier("oa-1", "an-1", "gm-1"), "fallback_config": fallback()}},
        pools={"p": {"task_groups": ["g"], "session_affinity": {"idle_ttl": 60, **affinity}}},
    ))


async def test_a_multi_turn_session_stays_on_its_instance_while_single_turns_rotate() -> None:
    h = pool_harness()
    first = await h.call("p", session_id="s1")
    others = [(await h.call("p")).model for _ in range(2)]
    again = await h.call("p", session_id="s1")
    assert (first.model, again.model) == ("oa-1", "oa-1")
    assert others == ["an-1", "gm-1"]
    assert again.attempts[0].phase == "pinned"


async def test_a_conversation_key_pins_only_multi_turn_requests() -> None:
    h = pool_harness()
    assert (await h.call("p", conversation_key="c", user_turns=1)).model == "oa-1"
    assert (await h.call("p", conversation_key="c", user_turns=2)).model == "an-1"
    assert (await h.call("p", conversation_key="c", user_turns=3)).model == "an-1"
    assert (await h.call("p", conversation_key="c", user_turns=1)).model == "gm-1"


async def test_a_failing_pinned_instance_falls_back_and_the_session_is_re_pinned() -> None:
    h = pool_harness()
    assert (await h.call("p", session_id="s")).model == "oa-1"
    h.provider.on("oa-1", fail(503))
    moved = await h.call("p", session_id="s")
    assert moved.model != "oa-1"
    assert [a.phase for a in moved.attempts] == ["pinned", "pool"]
    assert (await h.call("p", session_id="s")).model == moved.model


async def test_session_pins_expire_after_idle_ttl_in_the_engine() -> None:
    h = pool_harness()
    assert (await h.call("p", session_id="s")).model == "oa-1"
    await h.clock.advance(61)
    assert (await h.call("p", session_id="s")).model == "an-1"


async def test_pool_sessions_are_bounded_by_max_sessions() -> None:
    h = pool_harness(max_sessions=2)
    for name in ("a", "b", "c"):
        await h.call("p", session_id=name)
    assert h.engine.status()["sessions"] == {"pool:p": 2}


async def test_a_group_session_is_pinned_even_when_the_tier_rotates() -> None:
    h = Harness(make_config({
        "g": {"echelon1": tier("oa-1", "an-1", "gm-1"),
              "fallback_config": fallback(strategy="model_rotate")},
    }))
    assert (await h.call("g", session_id="s")).model == "oa-1"
    assert (await h.call("g")).model == "an-1"
    assert (await h.call("g", session_id="s")).model == "oa-1"
    h.provider.on("oa-1", fail(503))
    moved = await h.call("g", session_id="s")
    # the pinned attempt counts in its tier: the walk continues with the other models
    assert h.provider.models_called[-2:] == ["oa-1", moved.model]
    assert moved.model != "oa-1"
    assert (await h.call("g", session_id="s")).model == moved.model
