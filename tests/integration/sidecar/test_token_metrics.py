"""Token, cost, served-duration and time-to-first-token metrics, through the real sidecar."""

from __future__ import annotations

from typing import Any

import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import MakeSidecar, anthropic_model, gemini_model, metric, openai_model

PRICE = {"input_per_million": 3.0, "output_per_million": 15.0}


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            "oa_group": {"echelon1": {"models": ["oa"]}},
            "claude_group": {"fast": {"models": ["claude"]}},
            "gem_group": {"echelon1": {"models": ["gem"]}},
            "fall_group": {"echelon1": {"models": ["broken"], "priority": 1},
                           "echelon2": {"models": ["oa"], "priority": 2}},
        },
        "models": {
            "oa": openai_model(fake, "up-oa", price=PRICE),
            "broken": openai_model(fake, "up-broken"),
            "claude": anthropic_model(fake, "up-claude", price=PRICE),
            "gem": gemini_model(fake, "up-gem"),
        },
    }


def _tokens(text: str, group: str, tier: str, model: str, kind: str) -> float:
    return metric(text, "echelon_tokens_total", group=group, tier=tier, model=model, kind=kind)


async def test_whole_replies_count_their_reported_tokens_and_cost_at_the_catalog_price(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    total_in = total_out = 0
    for _ in range(3):
        reply = await sc.openai.chat.completions.create(
            model="oa_group", messages=[{"role": "user", "content": "count my tokens please"}])
        assert reply.usage is not None
        total_in += reply.usage.prompt_tokens
        total_out += reply.usage.completion_tokens
    text = await sc.metrics()
    assert _tokens(text, "oa_group", "echelon1", "oa", "input") == total_in > 0
    assert _tokens(text, "oa_group", "echelon1", "oa", "output") == total_out > 0
    cost = metric(text, "echelon_cost_total", group="oa_group", tier="echelon1", model="oa")
    assert cost == pytest.approx((total_in * 3.0 + total_out * 15.0) / 1e6)
    assert metric(text, "echelon_served_request_duration_seconds_count", group="oa_group",
                  tier="echelon1") == 3
    # no price, no cost; tokens all the same
    await sc.openai.chat.completions.create(model="gem_group", messages=[
        {"role": "user", "content": "hi"}])
    text = await sc.metrics()
    assert _tokens(text, "gem_group", "echelon1", "gem", "input") > 0
    assert 'echelon_cost_total{group="gem_group"' not in text


async def test_tokens_go_to_the_tier_that_served_after_a_fallback(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-broken", "503")
    reply = await sc.openai.chat.completions.create(model="fall_group", messages=[
        {"role": "user", "content": "hi"}])
    assert reply.usage is not None
    text = await sc.metrics()
    assert _tokens(text, "fall_group", "echelon2", "oa", "input") == reply.usage.prompt_tokens
    assert _tokens(text, "fall_group", "echelon1", "broken", "input") == 0
    assert metric(text, "echelon_served_request_duration_seconds_count", group="fall_group",
                  tier="echelon2") == 1


async def test_streams_count_the_usage_their_upstream_reported_and_their_ttft(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    # an Anthropic caller on an Anthropic upstream: passed through, usage from its events
    events: list[str] = []
    await sc.anthropic_stream(events, model="claude_group", max_tokens=100,
                              messages=[{"role": "user", "content": "stream to me"}])
    assert events[-1] == "message_stop"
    # an OpenAI caller on a Gemini upstream, not asking for usage: translated, counted anyway
    chunks: list[Any] = []
    await sc.openai_stream(chunks, model="gem_group", messages=[
        {"role": "user", "content": "stream to me"}])
    # an OpenAI caller on an OpenAI upstream, asking for usage
    asked: list[Any] = []
    await sc.openai_stream(asked, model="oa_group", messages=[
        {"role": "user", "content": "stream to me"}], stream_options={"include_usage": True})
    usage = asked[-1].usage
    text = await sc.metrics()
    assert _tokens(text, "claude_group", "fast", "claude", "input") > 0
    assert _tokens(text, "claude_group", "fast", "claude", "output") > 0
    assert _tokens(text, "gem_group", "echelon1", "gem", "output") > 0
    assert _tokens(text, "oa_group", "echelon1", "oa", "input") == usage.prompt_tokens
    assert _tokens(text, "oa_group", "echelon1", "oa", "output") == usage.completion_tokens
    assert metric(text, "echelon_cost_total", group="claude_group", model="claude") > 0
    for group, tier in (("claude_group", "fast"), ("gem_group", "echelon1"),
                        ("oa_group", "echelon1")):
        assert metric(text, "echelon_time_to_first_token_seconds_count", group=group,
                      tier=tier) == 1
        ttft = metric(text, "echelon_time_to_first_token_seconds_sum", group=group, tier=tier)
        whole = metric(text, "echelon_served_request_duration_seconds_sum", group=group,
                       tier=tier)
        assert 0 < ttft <= whole
    assert metric(text, "echelon_usage_unreported_total") == 0


async def test_an_openai_stream_without_include_usage_is_counted_as_unreported(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    chunks: list[Any] = []
    await sc.openai_stream(chunks, model="oa_group", messages=[
        {"role": "user", "content": "hi"}])
    assert all(chunk.usage is None for chunk in chunks)  # the caller gets what it asked for
    text = await sc.metrics()
    assert metric(text, "echelon_usage_unreported_total", group="oa_group", tier="echelon1",
                  model="oa") == 1
    assert _tokens(text, "oa_group", "echelon1", "oa", "input") == 0


async def test_failed_requests_count_no_tokens_and_no_served_duration(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-oa", "503")
    status, _, _ = await sc.post("/v1/chat/completions", {
        "model": "oa_group", "messages": [{"role": "user", "content": "hi"}]})
    assert status >= 500
    text = await sc.metrics()
    assert metric(text, "echelon_tokens_total") == 0
    assert metric(text, "echelon_served_request_duration_seconds_count") == 0
