"""Rate limits, concurrency limits and Retry-After, observed at the fake upstream's counters."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from aiohttp import web

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, MakeSidecar, RunningSidecar, eventually, metric, openai_model


def _models(fake: FakeProvider, *names: str) -> dict[str, Any]:
    return {name: openai_model(fake, f"up-{name}") for name in names}


async def _served_by(sc: RunningSidecar, model: str, **headers: str) -> str:
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model=model, messages=HI, extra_headers=headers)
    return raw.headers["x-echelon-served-by"]


async def test_a_tier_over_its_rpm_limit_is_skipped_for_the_next_tier(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {
            "echelon1": {"models": ["a"], "priority": 1, "rpm_limit": 3},
            "echelon2": {"models": ["b"], "priority": 2},
        }},
        "models": _models(fake, "a", "b"),
    })
    served = [await _served_by(sc, "g") for _ in range(5)]
    assert served == ["a", "a", "a", "b", "b"]
    assert fake.stats()["by_model"] == {"up-a": 3, "up-b": 2}
    text = await sc.metrics()
    assert metric(text, "echelon_limit_refusals_total", level="echelon", key="g.echelon1") == 2


async def test_a_request_refused_by_every_limit_gets_429_with_retry_after(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["a"], "rpm_limit": 2}}},
        "models": _models(fake, "a"),
    })
    for _ in range(2):
        await _served_by(sc, "g")
    with pytest.raises(openai.RateLimitError) as info:
        await sc.openai.chat.completions.create(model="g", messages=HI)
    err = info.value
    assert err.status_code == 429
    assert 1 <= int(err.response.headers["retry-after"]) <= 60
    assert "rpm_limit" in err.message or "rate limit" in err.message
    assert fake.stats()["total"] == 2


@pytest.mark.parametrize("rate_limiting", [
    {"algorithm": "token_bucket", "bucket_size": 3, "refill_rate": 0.01},
    {"algorithm": "sliding_window", "window_size": 60, "max_requests": 3},
], ids=["token_bucket", "sliding_window"])
async def test_a_pools_rate_limit_admits_its_budget_then_answers_429(
    fake: FakeProvider, make_sidecar: MakeSidecar, rate_limiting: dict[str, Any]
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["a", "b"]}}},
        "polling_pools": {"p": {"task_groups": ["g"], "rate_limiting": rate_limiting}},
        "models": _models(fake, "a", "b"),
    })
    for _ in range(3):
        await _served_by(sc, "p")
    with pytest.raises(openai.RateLimitError) as info:
        await sc.openai.chat.completions.create(model="p", messages=HI)
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert fake.stats()["total"] == 3, "the refused request never reached an upstream"
    status = await sc.status()
    (limit,) = [item for item in status["limits"] if item["level"] == "pool"]
    assert limit["kind"] == "rate" and limit["algorithm"] == rate_limiting["algorithm"]


async def test_a_tier_concurrency_limit_is_never_exceeded_under_load(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["a"], "concurrency_limit": 2}}},
        "concurrency_control": {"levels": {"echelon": {"limit": 100, "queue_size": 50}}},
        "models": _models(fake, "a"),
    })
    fake.configure(latency_ms=100)
    results = await asyncio.gather(*(_served_by(sc, "g") for _ in range(8)))
    assert results == ["a"] * 8
    stats = fake.stats()
    assert stats["by_model"]["up-a"] == 8
    assert stats["max_in_flight_by_model"]["up-a"] == 2
    assert sc.in_flight(await sc.status()) == 0


async def test_a_model_concurrency_limit_without_queue_refuses_with_429(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["a"]}}},
        "concurrency_control": {"levels": {"model": {"limit": 1, "queue_size": 0}}},
        "models": _models(fake, "a"),
    })
    fake.set_fault("up-a", "latency:10000")
    first = asyncio.create_task(_served_by(sc, "g"))
    try:
        async with asyncio.timeout(5):
            await fake.wait_for(lambda s: s.in_flight == 1)
        with pytest.raises(openai.RateLimitError) as info:
            await sc.openai.chat.completions.create(model="g", messages=HI)
        assert "retry-after" in info.value.response.headers
        body = info.value.body
        assert isinstance(body, dict) and body["code"] == "model_limit"
        assert fake.stats()["total"] == 1
        fake.clear_faults()
    finally:
        first.cancel()
    await asyncio.gather(first, return_exceptions=True)


async def test_an_upstream_retry_after_is_waited_out_before_calling_it_again(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["a"], "max_retries": 1}}},
        "models": _models(fake, "a"),
    })
    fake.set_fault("up-a", "first:1:429:retry-after=0.6")
    raw = await sc.openai.chat.completions.with_raw_response.create(model="g", messages=HI)
    assert raw.headers["x-echelon-attempts"] == "2"
    first, second = fake.stats()["arrivals_by_model"]["up-a"]
    assert second - first >= 0.55, f"called again after {second - first:.3f}s, asked 0.6s"


async def test_an_instance_whose_retry_after_does_not_fit_the_deadline_is_skipped(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["a", "b"]}}},
        "models": _models(fake, "a", "b"),
    })
    fake.set_fault("up-a", "429:retry-after=30")
    assert await _served_by(sc, "g") == "b"
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="g", messages=HI, extra_headers={"X-Echelon-Timeout": "5"})
    assert raw.headers["x-echelon-served-by"] == "b"
    assert raw.headers["x-echelon-attempts"] == "1"
    assert fake.stats()["by_model"]["up-a"] == 1, "a was asked to wait 30s: not called again"


async def test_an_upstream_429_on_the_only_instance_is_returned_as_429_with_its_retry_after(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["a"], "max_retries": 1}}},
        "models": _models(fake, "a"),
    })
    fake.set_fault("up-a", "429:retry-after=40")
    with pytest.raises(openai.RateLimitError) as info:
        await sc.openai.chat.completions.create(
            model="g", messages=HI, extra_headers={"X-Echelon-Timeout": "5"})
    err = info.value
    assert 30 <= int(err.response.headers["retry-after"]) <= 40
    body = err.body
    assert isinstance(body, dict)
    reasons = [a["reason"] for a in body["attempts"]]
    assert reasons == ["fallback", "retry_after"]
    assert fake.stats()["by_model"]["up-a"] == 1


async def test_a_client_leaving_while_queued_or_in_flight_leaks_no_slot(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["a"], "concurrency_limit": 1}}},
        "concurrency_control": {"levels": {"echelon": {"limit": 100, "queue_size": 5}}},
        "models": _models(fake, "a"),
    })
    fake.set_fault("up-a", "hang")
    holder = asyncio.create_task(_served_by(sc, "g"))
    async with asyncio.timeout(5):
        await fake.wait_for(lambda s: s.in_flight == 1)
    waiter = asyncio.create_task(_served_by(sc, "g"))

    async def queued() -> bool:
        return any(item.get("queued") == 1 for item in (await sc.status())["limits"])

    await eventually(queued, what="the second request to wait in the tier's queue")
    text = await sc.metrics()
    assert metric(text, "echelon_queue_depth", level="echelon", key="g.echelon1") == 1
    waiter.cancel()
    holder.cancel()
    await asyncio.gather(waiter, holder, return_exceptions=True)
    async with asyncio.timeout(5):
        await fake.wait_for(lambda s: s.in_flight == 0)

    async def released() -> bool:
        status = await sc.status()
        return sc.in_flight(status) == 0 and all(
            item.get("queued", 0) == 0 for item in status["limits"])

    await eventually(released, what="every slot and queue place to be released")
    fake.clear_faults()
    assert await _served_by(sc, "g") == "a"
    assert fake.stats()["by_model"]["up-a"] == 2, "the cancelled waiter never reached upstream"


async def test_a_gemini_retry_delay_in_the_error_body_is_honoured(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    """Gemini puts the wait in ``google.rpc.RetryInfo``, with no Retry-After header."""
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded",
                      "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                   "retryDelay": "37s"}]}}
    calls = 0

    async def quota(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.json_response(body, status=429)

    app = web.Application()
    app.router.add_post("/v1beta/models/{target}", quota)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        sc = await make_sidecar({
            "task_groups": {"g": {"echelon1": {"models": ["gem"], "max_retries": 1}}},
            "models": {"gem": {"provider": "gemini", "model": "quota-model",
                               "base_url": f"http://127.0.0.1:{port}", "api_key_env": "HOME"}},
        })
        with pytest.raises(openai.RateLimitError) as info:
            await sc.openai.chat.completions.create(
                model="g", messages=HI, extra_headers={"X-Echelon-Timeout": "5"})
        assert 30 <= int(info.value.response.headers["retry-after"]) <= 37
        assert [a["reason"] for a in info.value.body["attempts"]] == [  # type: ignore[index]
            "fallback", "retry_after"]
        assert calls == 1
    finally:
        await runner.cleanup()
