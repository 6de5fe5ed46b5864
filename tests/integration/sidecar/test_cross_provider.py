"""Fallback across providers: the caller gets its own format whichever provider served it.

OpenAI-format callers (``openai`` SDK) and Anthropic-format callers (``anthropic`` SDK), served
by OpenAI, Anthropic and Gemini upstreams; what each fake upstream RECEIVED is checked in its
own wire format.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import (
    FAKE_API_KEY,
    MakeSidecar,
    RunningSidecar,
    anthropic_model,
    gemini_model,
    openai_model,
)

SYSTEM = "You answer briefly."
QUESTION = "hello there sidecar"
OPENAI_MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
ANTHROPIC_MESSAGES = [{"role": "user", "content": QUESTION}]


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            # OpenAI first, then Anthropic, then Gemini
            "oa": {"echelon1": {"models": ["gpt"], "priority": 1},
                   "echelon2": {"models": ["claude"], "priority": 2},
                   "echelon3": {"models": ["gem"], "priority": 3}},
            # Anthropic first, then OpenAI
            "ao": {"echelon1": {"models": ["claude"], "priority": 1},
                   "echelon2": {"models": ["gpt"], "priority": 2}},
        },
        "models": {"gpt": openai_model(fake, "up-gpt"),
                   "claude": anthropic_model(fake, "up-claude"),
                   "gem": gemini_model(fake, "up-gem")},
    }


@pytest.fixture
async def sc(fake: FakeProvider, make_sidecar: MakeSidecar) -> RunningSidecar:
    return await make_sidecar(_config(fake))


# -- OpenAI caller, Anthropic upstream ----------------------------------------------------------

async def test_an_openai_caller_is_served_by_anthropic_after_the_openai_tier_fails(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-gpt", "503")
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="oa", messages=OPENAI_MESSAGES, max_tokens=50, temperature=0.5)
    completion = raw.parse()
    assert raw.headers["x-echelon-served-by"] == "claude"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == f"[fake:up-claude] {QUESTION}"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 6  # system + user words, as the upstream counted
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == 10
    sent = fake.last_request("up-claude")
    assert sent is not None and sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == FAKE_API_KEY
    assert sent.headers["anthropic-version"]
    assert sent.body["system"] in (SYSTEM, [{"type": "text", "text": SYSTEM}])
    assert [m["role"] for m in sent.body["messages"]] == ["user"]
    assert sent.body["max_tokens"] == 50
    assert sent.body["temperature"] == 0.5
    assert sent.body["model"] == "up-claude"


async def test_an_openai_caller_streams_from_anthropic_after_the_openai_tier_fails(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-gpt", "503")
    stream = await sc.openai.chat.completions.create(
        model="oa", messages=OPENAI_MESSAGES, stream=True,
        stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == f"[fake:up-claude] {QUESTION}"
    assert finish == "stop"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (6, 4)
    sent = fake.last_request("up-claude")
    assert sent is not None and sent.body["stream"] is True


# -- Anthropic caller, OpenAI upstream ----------------------------------------------------------

async def test_an_anthropic_caller_is_served_by_openai_after_the_anthropic_tier_fails(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-claude", "529")
    raw = await sc.anthropic.messages.with_raw_response.create(
        model="ao", system=SYSTEM, max_tokens=50, messages=ANTHROPIC_MESSAGES)
    message = await raw.parse()
    assert raw.headers["x-echelon-served-by"] == "gpt"
    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == f"[fake:up-gpt] {QUESTION}"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (6, 4)
    sent = fake.last_request("up-gpt")
    assert sent is not None and sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {FAKE_API_KEY}"
    assert sent.body["messages"] == [{"role": "system", "content": SYSTEM},
                                     {"role": "user", "content": QUESTION}]
    assert sent.body.get("max_tokens") == 50 or sent.body.get("max_completion_tokens") == 50


async def test_an_anthropic_caller_streams_from_openai_after_the_anthropic_tier_fails(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-claude", "503")
    async with sc.anthropic.messages.stream(model="ao", system=SYSTEM, max_tokens=50,
                                            messages=ANTHROPIC_MESSAGES) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == f"[fake:up-gpt] {QUESTION}"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens == 6
    sent = fake.last_request("up-gpt")
    assert sent is not None and sent.body["stream"] is True


async def test_an_anthropic_caller_to_an_anthropic_upstream_is_passed_through(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    message = await sc.anthropic.messages.create(
        model="ao", system=SYSTEM, max_tokens=50, messages=ANTHROPIC_MESSAGES,
        metadata={"user_id": "u-1"})
    assert message.content[0].text == f"[fake:up-claude] {QUESTION}"  # type: ignore[union-attr]
    sent = fake.last_request("up-claude")
    assert sent is not None
    assert sent.body == {"model": "up-claude", "system": SYSTEM, "max_tokens": 50,
                         "messages": ANTHROPIC_MESSAGES, "metadata": {"user_id": "u-1"}}


# -- Gemini in a chain --------------------------------------------------------------------------

async def test_a_gemini_tier_serves_an_openai_caller_when_the_tiers_above_fail(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-gpt", "503")
    fake.set_fault("up-claude", "500")
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="oa", messages=OPENAI_MESSAGES)
    completion = raw.parse()
    assert raw.headers["x-echelon-tier"] == "oa.echelon3"
    assert raw.headers["x-echelon-attempts"] == "3"
    assert completion.choices[0].message.content == f"[fake:up-gem] {QUESTION}"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 6
    sent = fake.last_request("up-gem")
    assert sent is not None
    assert sent.path == "/v1beta/models/up-gem:generateContent"
    assert sent.headers["x-goog-api-key"] == FAKE_API_KEY
    assert sent.body["systemInstruction"]["parts"] == [{"text": SYSTEM}]
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": QUESTION}]}]


async def test_a_gemini_tier_streams_to_openai_and_anthropic_callers(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-gpt", "503")
    fake.set_fault("up-claude", "500")
    stream = await sc.openai.chat.completions.create(model="oa", messages=OPENAI_MESSAGES,
                                                     stream=True)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"[fake:up-gem] {QUESTION}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    sent = fake.last_request("up-gem")
    assert sent is not None and sent.path == "/v1beta/models/up-gem:streamGenerateContent"
    assert sent.query.get("alt") == "sse"
    async with sc.anthropic.messages.stream(model="oa", system=SYSTEM, max_tokens=50,
                                            messages=ANTHROPIC_MESSAGES) as astream:
        atext = "".join([piece async for piece in astream.text_stream])
        final = await astream.get_final_message()
    assert atext == f"[fake:up-gem] {QUESTION}"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 6


async def test_a_cut_anthropic_stream_ends_an_openai_callers_stream_with_an_error(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-claude", "cut:4")
    chunks: list[Any] = []
    with pytest.raises(openai.APIError):
        await sc.openai_stream(chunks, model="oa.echelon2", messages=OPENAI_MESSAGES)
    assert chunks, "the first chunks reached the caller before the error"
    assert fake.stats()["by_model"].get("up-gem", 0) == 0
