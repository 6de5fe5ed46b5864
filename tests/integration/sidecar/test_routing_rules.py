"""The routing rules users meet in production, through the real sidecar over HTTP.

Each test drives the sidecar with the official SDKs against the fake upstreams, which answer
429s with ``Retry-After`` / ``retry-after-ms`` as OpenAI documents them.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import (
    HI,
    MakeSidecar,
    RunningSidecar,
    anthropic_model,
    eventually,
    metric,
    openai_model,
)

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


def _models(fake: FakeProvider, *names: str) -> dict[str, Any]:
    return {name: openai_model(fake, f"up-{name}") for name in names}


def _calls(fake: FakeProvider, name: str) -> int:
    return int(fake.stats()["by_model"].get(f"up-{name}", 0))


async def _served(sc: RunningSidecar, model: str, **create: Any) -> dict[str, str]:
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model=model, messages=create.pop("messages", HI), **create)
    raw.parse()
    return dict(raw.headers)


# -- 1. Retry-After never stalls a request that another instance can serve -----------------------

def _two_tiers(fake: FakeProvider, **tier1: Any) -> dict[str, Any]:
    return {
        "task_groups": {"g": {
            "echelon1": {"models": ["a"], "priority": 1, **tier1},
            "echelon2": {"models": ["b"], "priority": 2},
            "fallback_config": {"retry_delay": 0, "max_attempts": 4},
        }},
        "models": _models(fake, "a", "b"),
    }


async def test_an_instance_whose_retry_after_runs_is_skipped_without_a_call_or_a_wait(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_two_tiers(fake))
    fake.set_fault("up-a", "429:retry-after=30")
    first = await _served(sc, "g")
    assert (first["x-echelon-served-by"], first["x-echelon-attempts"]) == ("b", "2")
    for _ in range(5):  # each of these would have waited 30 s on `a` before falling back
        later = await _served(sc, "g")
        assert (later["x-echelon-served-by"], later["x-echelon-attempts"]) == ("b", "1")
    assert _calls(fake, "a") == 1  # called again only after its Retry-After
    status = await sc.status()
    (waiting,) = status["retry_after"]
    assert waiting["model"] == "a" and 25 < waiting["retry_in"] <= 30
    text = await sc.metrics()
    assert metric(text, "echelon_attempts_total", model="a", result="skipped",
                  reason="retry_after") == 5


async def test_the_retry_after_of_the_only_instance_is_waited_for_when_it_fits(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = {"task_groups": {"g": {"echelon1": {"models": ["a"], "max_retries": 1},
                                    "fallback_config": {"retry_delay": 0}}},
              "models": _models(fake, "a")}
    sc = await make_sidecar(config)
    fake.set_fault("up-a", "first:1:429:retry-after=0.3")
    headers = await _served(sc, "g")
    assert (headers["x-echelon-served-by"], headers["x-echelon-attempts"]) == ("a", "2")
    first, second = (r.time for r in fake.requests("up-a"))
    assert second - first >= 0.3  # called again only once its Retry-After had passed


async def test_nothing_can_serve_before_the_deadline_is_a_429_with_the_soonest_retry_after(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_two_tiers(fake))
    fake.set_fault("up-a", "429:retry-after=40")
    fake.set_fault("up-b", "429:retry-after=20")
    with pytest.raises(openai.RateLimitError):
        await _served(sc, "g")  # both answer 429: both remembered
    with pytest.raises(openai.RateLimitError) as info:
        await _served(sc, "g", extra_headers={"X-Echelon-Timeout": "10"})
    response = info.value.response
    assert response.json()["error"]["code"] == "upstream_rate_limited"
    assert 19 <= int(response.headers["retry-after"]) <= 20  # b's, the soonest
    reasons = [a["reason"] for a in response.json()["error"]["attempts"]]
    assert reasons == ["retry_after", "retry_after"]
    assert (_calls(fake, "a"), _calls(fake, "b")) == (1, 1)


async def test_openai_rate_limit_reset_headers_count_as_retry_after_on_a_429(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    """A 429 without Retry-After but with `x-ratelimit-remaining-requests: 0` and
    `x-ratelimit-reset-requests` (OpenAI's documented headers) is honoured the same way."""
    sc = await make_sidecar(_two_tiers(fake))
    fake.set_fault("up-a", "429")  # the fake sends x-ratelimit-reset-requests: 1s
    await _served(sc, "g")
    await _served(sc, "g")
    assert _calls(fake, "a") == 1
    (waiting,) = (await sc.status())["retry_after"]
    assert 0 < waiting["retry_in"] <= 1


# -- 2. request settings skip the instances a request cannot meet ------------------------------

def _mixed_pool(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {"g": {
            "echelon1": {"models": ["fc"], "priority": 1, "function_calling": "required"},
            "echelon2": {"models": ["plain1", "plain2"], "priority": 2},
        }},
        "polling_pools": {"p": {"task_groups": ["g"], "rotation_strategy": "round_robin"}},
        "models": _models(fake, "fc", "plain1", "plain2"),
    }


async def test_a_tool_less_request_skips_a_function_calling_required_tier_of_its_pool(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_mixed_pool(fake))
    served = [(await _served(sc, "p"))["x-echelon-served-by"] for _ in range(6)]
    assert set(served) == {"plain1", "plain2"}  # never a 400
    assert _calls(fake, "fc") == 0
    with_tools = [(await _served(sc, "p", tools=TOOLS))["x-echelon-served-by"]
                  for _ in range(3)]
    assert "fc" in with_tools  # a request with tools still rotates over every instance


async def test_a_tool_less_request_skips_a_required_tier_of_its_chain(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_two_tiers(fake, function_calling="required"))
    headers = await _served(sc, "g")
    assert (headers["x-echelon-served-by"], headers["x-echelon-attempts"]) == ("b", "1")
    assert _calls(fake, "a") == 0


# -- 3. a request no instance could ever serve is a 400 the SDKs do not retry ------------------

def _anthropic_only(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {"claude": {"echelon1": {"models": ["c1"]},
                                   "echelon2": {"models": ["c2"]}}},
        "models": {name: anthropic_model(fake, f"up-{name}") for name in ("c1", "c2")},
    }


@pytest.mark.parametrize(("extra", "code"), [
    ({"logprobs": True}, "unsupported_logprobs"),
    ({"n": 2}, "unsupported_n"),
])
async def test_a_request_no_instance_can_serve_is_a_400_naming_the_feature_not_retried(
    fake: FakeProvider, make_sidecar: MakeSidecar, extra: dict[str, Any], code: str
) -> None:
    sc = await make_sidecar(_anthropic_only(fake))
    client = openai.AsyncOpenAI(base_url=sc.data_url + "/v1", api_key="x", max_retries=2)
    try:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(model="claude", messages=HI,  # type: ignore[call-overload]
                                                 **extra)
    finally:
        await client.close()
    response = info.value.response
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", code)
    assert [a["reason"] for a in error["attempts"]] == ["cannot_serve", "cannot_serve"]
    assert fake.stats()["total"] == 0
    text = await sc.metrics()
    assert metric(text, "echelon_requests_total", target="claude") == 1  # the SDK did not retry


async def test_the_anthropic_sdk_sees_the_same_400_for_a_tool_less_request_on_required_tiers(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = {"task_groups": {"g": {"echelon1": {"models": ["a"],
                                                 "function_calling": "required"}}},
              "models": _models(fake, "a")}
    sc = await make_sidecar(config)
    with pytest.raises(anthropic.BadRequestError) as info:
        await sc.anthropic.messages.create(model="g", max_tokens=50,
                                           messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["x-should-retry"] == "false"
    assert "function_calling: required" in info.value.message
    assert fake.stats()["total"] == 0


# -- 5. a node's tier choice holds inside its pool ---------------------------------------------

def _node_in_a_pool(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            "fast_group": {"echelon1": {"models": ["gpt4"], "priority": 1},
                           "echelon2": {"models": ["turbo"], "priority": 2},
                           "echelon3": {"models": ["mini"], "priority": 3}},
            "small_group": {"translation": {"models": ["small"]}},
        },
        "polling_pools": {"single_turn_pool": {"task_groups": ["fast_group"],
                                               "rotation_strategy": "round_robin"}},
        "workflow_nodes": {"fast_response_node": {
            "llm_group": "fast_group.echelon3", "polling_pool": "single_turn_pool",
            "fallback_groups": ["small_group.translation"]}},
        "models": _models(fake, "gpt4", "turbo", "mini", "small"),
    }


async def test_a_nodes_tier_reference_narrows_its_pool_to_that_tier_then_its_fallbacks(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_node_in_a_pool(fake))
    served = {(await _served(sc, "fast_response_node"))["x-echelon-served-by"]
              for _ in range(6)}
    assert served == {"mini"}  # never widened to echelon1 / echelon2 of the pool
    fake.set_fault("up-mini", "503")
    headers = await _served(sc, "fast_response_node")
    assert headers["x-echelon-served-by"] == "small"  # then the node's fallback group
    assert (_calls(fake, "gpt4"), _calls(fake, "turbo")) == (0, 0)


async def test_a_callers_tier_reference_with_a_node_header_narrows_the_pool_too(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_node_in_a_pool(fake))
    served = {(await _served(sc, "fast_group.echelon2",
                             extra_headers={"X-Echelon-Node": "fast_response_node"})
               )["x-echelon-served-by"] for _ in range(4)}
    assert served == {"turbo"}
    assert (_calls(fake, "gpt4"), _calls(fake, "mini")) == (0, 0)


# -- 6. active health checks never shorten recovery_time ----------------------------------------

async def test_a_good_models_listing_does_not_bring_an_instance_back_before_recovery_time(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = {
        "task_groups": {"g": {"echelon1": {"models": ["a", "b"]},
                              "fallback_config": {"retry_delay": 0}}},
        "polling_pools": {"p": {"task_groups": ["g"], "rotation_strategy": "round_robin",
                                "failure_threshold": 1, "recovery_time": 600,
                                "health_check_interval": 0.05}},
        "models": _models(fake, "a", "b"),
    }
    sc = await make_sidecar(config)
    fake.set_fault("up-a", "503")  # the model answers 503; its models listing answers 200
    await _served(sc, "p")
    await _served(sc, "p")
    assert _calls(fake, "a") == 1  # out of rotation after its one failure
    listings = fake.stats()["by_endpoint"].get("openai.models", 0)
    await eventually(lambda: fake.stats()["by_endpoint"].get("openai.models", 0)
                     >= listings + 4, what="a few health-check rounds")
    for _ in range(4):
        assert (await _served(sc, "p"))["x-echelon-served-by"] == "b"
    assert _calls(fake, "a") == 1  # no request paid a failed call on it
    (pool,) = (await sc.status())["pools"].values()
    assert [i["healthy"] for i in pool] == [False, True]


# -- 7. max_retries: 0 tries each model once ----------------------------------------------------

async def test_max_retries_zero_on_a_two_model_tier_tries_each_model_once(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = {"task_groups": {"g": {"echelon1": {"models": ["a", "b"], "max_retries": 0},
                                    "fallback_config": {"retry_delay": 0, "max_attempts": 5}}},
              "models": _models(fake, "a", "b")}
    sc = await make_sidecar(config)
    fake.set_fault("up-a", "503")
    headers = await _served(sc, "g")
    assert (headers["x-echelon-served-by"], headers["x-echelon-attempts"]) == ("b", "2")
    fake.set_fault("up-b", "503")
    with pytest.raises(openai.APIStatusError) as info:
        await _served(sc, "g")
    calls = [a for a in info.value.response.json()["error"]["attempts"] if a["call"]]
    assert [a["model"] for a in calls] == ["a", "b"]  # each once, no retry
