"""Each fault, observed through the official SDKs (retries off) as the SDK's own error."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

MESSAGES = [{"role": "user", "content": "one two three four five six seven eight"}]


async def chat(client: openai.AsyncOpenAI, model: str = "gpt-4o", **kw: object):
    return await client.chat.completions.create(model=model, messages=MESSAGES, **kw)


async def message(client: anthropic.AsyncAnthropic, model: str = "claude-test", **kw: object):
    return await client.messages.create(model=model, max_tokens=64, messages=MESSAGES, **kw)


async def openai_stream(client: openai.AsyncOpenAI, into: list[Any]) -> None:
    """Read a chat stream chunk by chunk into `into` (kept when the stream fails)."""
    stream = await chat(client, stream=True)
    async for chunk in stream:
        into.append(chunk)


async def anthropic_stream(client: anthropic.AsyncAnthropic, into: list[str]) -> None:
    async with client.messages.stream(model="claude-test", max_tokens=64,
                                      messages=MESSAGES) as stream:
        async for event in stream:
            into.append(event.type)


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [(400, openai.BadRequestError, "invalid_request_error"),
     (401, openai.AuthenticationError, "invalid_request_error"),
     (404, openai.NotFoundError, "invalid_request_error"),
     (429, openai.RateLimitError, "requests"),
     (500, openai.InternalServerError, "server_error"),
     (502, openai.InternalServerError, "server_error"),
     (503, openai.InternalServerError, "server_error"),
     (529, openai.InternalServerError, "server_error")],
)
async def test_openai_status_faults_raise_the_sdk_error_in_openai_shape(
    oai: openai.AsyncOpenAI, fp: FakeProvider, status: int, exc_type: type, error_type: str
) -> None:
    fp.set_fault("gpt-4o", str(status))
    with pytest.raises(exc_type) as info:
        await chat(oai)
    err = info.value
    assert err.status_code == status
    assert err.type == error_type
    assert set(err.body) == {"message", "type", "param", "code"}
    assert fp.stats()["by_status"] == {str(status): 1}
    assert fp.stats()["faults_injected"] == {"gpt-4o": {"status": 1}}


async def test_openai_429_carries_retry_after(oai: openai.AsyncOpenAI, fp: FakeProvider) -> None:
    fp.set_fault("gpt-4o", "429:retry-after=2")
    with pytest.raises(openai.RateLimitError) as info:
        await chat(oai)
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.code == "rate_limit_exceeded"


async def test_custom_error_message(oai: openai.AsyncOpenAI, fp: FakeProvider) -> None:
    fp.set_fault("gpt-4o", "503:message=down for maintenance: back soon")
    with pytest.raises(openai.InternalServerError) as info:
        await chat(oai)
    assert info.value.body["message"] == "down for maintenance: back soon"


@pytest.mark.parametrize(
    ("status", "exc_type", "error_type"),
    [(400, anthropic.BadRequestError, "invalid_request_error"),
     (401, anthropic.AuthenticationError, "authentication_error"),
     (429, anthropic.RateLimitError, "rate_limit_error"),
     (500, anthropic.InternalServerError, "api_error"),
     (503, anthropic.ServiceUnavailableError, "api_error"),
     (504, anthropic.GatewayTimeoutError, "timeout_error"),
     (529, anthropic.OverloadedError, "overloaded_error")],
)
async def test_anthropic_status_faults_raise_the_sdk_error_in_anthropic_shape(
    claude: anthropic.AsyncAnthropic, fp: FakeProvider, status: int, exc_type: type,
    error_type: str
) -> None:
    fp.set_fault("claude-test", f"{status}:retry-after=1")
    with pytest.raises(exc_type) as info:
        await message(claude)
    err = info.value
    assert err.status_code == status
    assert err.body["type"] == "error"
    assert err.body["error"]["type"] == error_type
    assert err.response.headers["retry-after"] == "1"


async def test_anthropic_overloaded_is_an_internal_server_error_in_streams_too(
    claude: anthropic.AsyncAnthropic, fp: FakeProvider
) -> None:
    fp.set_fault("claude-test", "529")
    with pytest.raises(anthropic.InternalServerError) as info:
        async with claude.messages.stream(model="claude-test", max_tokens=64,
                                          messages=MESSAGES) as stream:
            await stream.get_final_message()
    assert isinstance(info.value, anthropic.OverloadedError)


async def test_faults_are_scoped_by_model(oai: openai.AsyncOpenAI, fp: FakeProvider) -> None:
    fp.set_fault("gpt-4", "503")
    fp.set_fault("*", "429")
    fp.set_fault("gpt-4o-mini", "ok")
    with pytest.raises(openai.InternalServerError):
        await chat(oai, "gpt-4")
    with pytest.raises(openai.RateLimitError):
        await chat(oai, "anything-else")
    assert (await chat(oai, "gpt-4o-mini")).choices[0].message.content
    assert fp.stats()["by_model_status"] == {
        "gpt-4": {"503": 1}, "anything-else": {"429": 1}, "gpt-4o-mini": {"200": 1}}


async def test_first_k_then_success_lets_sdk_retries_get_through(fp: FakeProvider) -> None:
    fp.set_fault("gpt-4o", "first:2:503:retry-after=0.01")
    client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="sk-fake-test-key",
                                max_retries=2)
    resp = await chat(client)
    await client.close()
    assert resp.choices[0].message.content
    assert fp.stats()["by_status"] == {"503": 2, "200": 1}


async def test_failure_rate_follows_the_seeded_rng(
    oai: openai.AsyncOpenAI, fp: FakeProvider
) -> None:
    fp.set_fault("*", "rate:0.5:500")
    fp.reseed(1234)
    outcomes = []
    for _ in range(24):
        try:
            await chat(oai)
            outcomes.append(False)
        except openai.InternalServerError:
            outcomes.append(True)
    rng = random.Random(1234)
    assert outcomes == [rng.random() < 0.5 for _ in range(24)]
    assert 0 < sum(outcomes) < 24


async def test_latency_beyond_the_client_timeout_is_an_sdk_timeout(fp: FakeProvider) -> None:
    fp.set_fault("slow-model", "latency:5000")
    client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="sk-fake-test-key",
                                max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        await chat(client, "slow-model")
    assert (await chat(client, "fast-model")).choices[0].message.content
    await client.close()


async def test_global_latency_setting_applies_to_every_model(fp: FakeProvider) -> None:
    fp.configure(latency_ms=5000)
    client = anthropic.AsyncAnthropic(base_url=fp.anthropic_base_url, api_key="sk-fake-test-key",
                                      max_retries=0, timeout=0.2)
    with pytest.raises(anthropic.APITimeoutError):
        await message(client)
    await client.close()


@pytest.mark.parametrize("spec", ["hang", "hang:headers"])
@pytest.mark.parametrize("stream", [False, True])
async def test_hang_times_out_the_client_and_ends_when_it_leaves(
    fp: FakeProvider, spec: str, stream: bool
) -> None:
    fp.set_fault("gpt-4o", spec)
    client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="sk-fake-test-key",
                                max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        await (openai_stream(client, []) if stream else chat(client))
    await client.close()
    async with asyncio.timeout(5):
        await fp.wait_for(lambda s: s.in_flight == 0)


@pytest.mark.parametrize("cut", [0, 3])
async def test_stream_cut_ends_the_openai_stream_with_a_connection_error(
    oai: openai.AsyncOpenAI, fp: FakeProvider, cut: int
) -> None:
    fp.set_fault("gpt-4o", f"cut:{cut}")
    received: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        await openai_stream(oai, received)
    assert len(received) == cut
    assert all(c.choices[0].finish_reason is None for c in received)


async def test_stream_cut_truncates_the_anthropic_stream(
    claude: anthropic.AsyncAnthropic, fp: FakeProvider
) -> None:
    fp.set_fault("claude-test", "cut:4")
    seen: list[str] = []
    with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
        await anthropic_stream(claude, seen)
    assert "message_stop" not in seen
    assert seen[0] == "message_start"


async def test_cut_non_stream_body_is_a_connection_error(
    oai: openai.AsyncOpenAI, fp: FakeProvider
) -> None:
    fp.set_fault("gpt-4o", "cut:1")
    with pytest.raises(openai.APIConnectionError):
        await chat(oai)


async def test_reset_is_a_connection_error_for_both_sdks(
    oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic, fp: FakeProvider
) -> None:
    fp.set_fault("*", "reset")
    with pytest.raises(openai.APIConnectionError):
        await chat(oai)
    with pytest.raises(anthropic.APIConnectionError):
        await message(claude)
    assert fp.stats()["by_status"] == {"none": 2}


async def test_malformed_body_is_200_with_invalid_json(
    oai: openai.AsyncOpenAI, fp: FakeProvider
) -> None:
    fp.set_fault("gpt-4o", "malformed")
    with pytest.raises(ValueError, match="line 1"):
        await chat(oai)
    async with aiohttp.ClientSession() as session, session.post(
        f"{fp.openai_base_url}/chat/completions",
        headers={"Authorization": "Bearer sk-fake-test-key"},
        json={"model": "gpt-4o", "messages": MESSAGES},
    ) as resp:
        raw = await resp.read()
    assert resp.status == 200
    assert resp.content_type == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)


async def test_wrong_content_type_is_a_200_html_page(fp: FakeProvider) -> None:
    fp.set_fault("claude-test", "html")
    async with aiohttp.ClientSession() as session, session.post(
        f"{fp.anthropic_base_url}/v1/messages",
        headers={"x-api-key": "sk-fake-test-key", "anthropic-version": "2023-06-01"},
        json={"model": "claude-test", "max_tokens": 5, "messages": MESSAGES},
    ) as resp:
        text = await resp.text()
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert text.startswith("<html>")


async def test_oversize_reply_has_the_requested_size(
    oai: openai.AsyncOpenAI, fp: FakeProvider
) -> None:
    fp.set_fault("gpt-4o", "oversize:2")
    resp = await chat(oai)
    assert len(resp.choices[0].message.content or "") == 2 * 1024 * 1024
    stream = await chat(oai, stream=True)
    size = 0
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            size += len(chunk.choices[0].delta.content)
    assert size == 2 * 1024 * 1024


async def test_counters_report_max_concurrency_under_load(fp: FakeProvider) -> None:
    fp.set_fault("held", "hang")
    client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="sk-fake-test-key",
                                max_retries=0, timeout=30)
    tasks = [asyncio.create_task(chat(client, "held")) for _ in range(8)]
    other = asyncio.create_task(chat(client, "other"))
    async with asyncio.timeout(5):
        await fp.wait_for(lambda s: s.in_flight_by_model["held"] == 8)
        assert (await other).choices[0].message.content
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    async with asyncio.timeout(5):
        await fp.wait_for(lambda s: s.in_flight == 0)
    await client.close()
    stats = fp.stats()
    assert stats["max_in_flight_by_model"] == {"held": 8, "other": 1}
    assert stats["max_in_flight"] == 9
    assert stats["total"] == 9
    assert sum(stats["per_minute"].values()) == 9
    assert len(stats["arrivals_by_model"]["held"]) == 8
    assert stats["arrivals"] == sorted(stats["arrivals"])
