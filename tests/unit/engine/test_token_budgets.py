"""Token budgets (``tpm_limit``): reserve an estimate, settle with the reported usage, spill."""

from __future__ import annotations

import pytest

from echelon_sidecar.engine import LimitRefused
from echelon_sidecar.engine.tokens import TokenWindow

from .support import Harness, fail, make_config, tier


def test_a_window_admits_what_fits_and_refuses_the_rest() -> None:
    window = TokenWindow(60, 100)
    first = window.try_reserve(0.0, 70)
    assert first is not None
    assert window.try_reserve(1.0, 40) is None
    assert window.retry_after(1.0, 40) == pytest.approx(59.0)  # when the 70 leave
    assert window.try_reserve(1.0, 30) is not None


def test_settling_replaces_the_estimate_by_the_usage() -> None:
    window = TokenWindow(60, 100)
    hold = window.try_reserve(0.0, 90)
    assert hold is not None
    hold.settle(20)  # the call used far less than its reservation
    assert window.try_reserve(1.0, 80) is not None
    assert window.try_reserve(2.0, 1) is None


def test_holds_leave_the_window_after_sixty_seconds_whatever_they_settled_to() -> None:
    window = TokenWindow(60, 100)
    hold = window.try_reserve(0.0, 100)
    assert hold is not None
    assert window.try_reserve(59.9, 1) is None
    assert window.try_reserve(60.0, 100) is not None
    hold.settle(5)  # settling an expired hold changes nothing in the window
    assert window.used == 100


def test_a_reservation_above_the_whole_budget_can_never_fit() -> None:
    window = TokenWindow(60, 100)
    assert window.try_reserve(0.0, 101) is None
    assert window.retry_after(0.0, 101) == float("inf")


def _budgeted(**tier1: object) -> Harness:
    return Harness(make_config({
        "g": {"echelon1": tier("oa-1", priority=1, **tier1),
              "echelon2": tier("an-1", priority=2),
              "fallback_config": {"retry_delay": 0}},
    }))


async def test_a_tier_past_its_tpm_limit_spills_to_the_next_tier() -> None:
    h = _budgeted(tpm_limit=1000)
    served = []
    for _ in range(4):
        request = h.request("g")
        request.input_tokens, request.max_output_tokens = 100, 200  # reserves 300
        served.append((await h.engine.call(request)).model)
    assert served == ["oa-1", "oa-1", "oa-1", "an-1"]
    await h.clock.advance(60)
    request = h.request("g")
    request.input_tokens, request.max_output_tokens = 100, 200
    assert (await h.engine.call(request)).model == "oa-1"  # the minute passed


async def test_reported_usage_settles_the_reservation() -> None:
    h = _budgeted(tpm_limit=1000)
    for _ in range(5):  # without settling, the fourth would have spilled
        request = h.request("g")
        request.input_tokens, request.max_output_tokens = 100, 200
        serving = h.engine.serve(request)
        async with serving as outcome:
            serving.report_usage(150)  # half of what was reserved
        assert outcome.model == "oa-1"
    status = h.engine.status()
    (limit,) = [item for item in status["limits"] if item["kind"] == "tokens"]
    assert limit["used"] == 750


async def test_a_failed_call_gives_its_reservation_back() -> None:
    h = _budgeted(tpm_limit=300)
    h.provider.on("oa-1", fail(503))
    request = h.request("g")
    request.input_tokens, request.max_output_tokens = 100, 200
    assert (await h.engine.call(request)).model == "an-1"
    request = h.request("g")
    request.input_tokens, request.max_output_tokens = 100, 200
    assert (await h.engine.call(request)).model == "oa-1"  # 300 fit again


async def test_a_pools_tpm_limit_refuses_a_pool_request_with_a_retry_hint() -> None:
    h = Harness(make_config(
        {"g": {"echelon1": tier("oa-1", "an-1")}},
        pools={"p": {"task_groups": ["g"], "rate_limiting": {"tpm_limit": 500}}},
    ))
    request = h.request("p")
    request.input_tokens, request.max_output_tokens = 100, 300
    await h.engine.call(request)
    request = h.request("p")
    request.input_tokens, request.max_output_tokens = 100, 300
    with pytest.raises(LimitRefused) as info:
        await h.engine.call(request)
    assert (info.value.level, info.value.key) == ("pool", "p")
    assert info.value.retry_after == pytest.approx(60.0)
