"""Tools, JSON mode, usage, function_calling and thinking across providers.

What each fake upstream RECEIVED is asserted in its own wire format (Anthropic ``tool_use`` /
``tool_result`` blocks, Gemini ``functionCall`` / ``functionResponse`` parts, ...).
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import TOOL_TRIGGER, FakeProvider

from ..conftest import (
    MakeSidecar,
    RunningSidecar,
    anthropic_model,
    gemini_model,
    metric,
    openai_model,
)

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"]}
OPENAI_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": WEATHER_SCHEMA}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "The weather in a city.",
                    "input_schema": WEATHER_SCHEMA}]
ASK = f"What is the weather in Paris? {TOOL_TRIGGER}"
THINKING = {"enabled": True, "budget_tokens": 2048}


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            "to_claude": {"echelon1": {"models": ["gpt"], "priority": 1},
                          "echelon2": {"models": ["claude"], "priority": 2}},
            "to_gemini": {"echelon1": {"models": ["claude"], "priority": 1},
                          "echelon2": {"models": ["gem"], "priority": 2}},
            "json_group": {"echelon1": {"models": ["gem"], "response_format": "json"}},
            "fc": {"openai": {"models": ["gpt"], "function_calling": "required",
                              "priority": 1},
                   "anthropic": {"models": ["claude"], "function_calling": "required",
                                 "priority": 2},
                   "gemini": {"models": ["gem"], "function_calling": "required",
                              "priority": 3}},
            "think": {"echelon1": {"models": ["gpt", "claude", "gem"],
                                   "thinking_config": THINKING},
                      "fallback_config": {"max_attempts": 3}},
            "think_r": {"echelon1": {"models": ["gpt_r"], "thinking_config": THINKING}},
        },
        "models": {"gpt": openai_model(fake, "up-gpt"),
                   "gpt_r": openai_model(fake, "up-gpt-r", reasoning=True),
                   "claude": anthropic_model(fake, "up-claude"),
                   "gem": gemini_model(fake, "up-gem")},
    }


@pytest.fixture
async def sc(fake: FakeProvider, make_sidecar: MakeSidecar) -> RunningSidecar:
    return await make_sidecar(_config(fake))


def _body(fake: FakeProvider, model: str) -> dict[str, Any]:
    sent = fake.last_request(model)
    assert sent is not None, f"{model} was not called"
    body: dict[str, Any] = sent.body
    return body


# -- tools -------------------------------------------------------------------------------------

async def test_an_openai_tool_call_and_its_result_round_trip_through_anthropic(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-gpt", "503")
    messages: list[Any] = [{"role": "user", "content": ASK}]
    first = await sc.openai.chat.completions.create(model="to_claude", messages=messages,
                                                    tools=OPENAI_TOOLS)  # type: ignore[arg-type]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "fake-city"}  # type: ignore[union-attr]
    sent = _body(fake, "up-claude")
    assert sent["tools"] == [{"name": "get_weather", "description": "The weather in a city.",
                              "input_schema": WEATHER_SCHEMA}]

    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    second = await sc.openai.chat.completions.create(model="to_claude", messages=messages,
                                                     tools=OPENAI_TOOLS)  # type: ignore[arg-type]
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content
    sent = _body(fake, "up-claude")
    user, assistant, result = sent["messages"]
    assert user["role"] == "user"
    assert assistant == {"role": "assistant", "content": [
        {"type": "tool_use", "id": call.id, "name": "get_weather",
         "input": {"city": "fake-city"}}]}
    assert result["role"] == "user"
    (block,) = result["content"]
    assert block["type"] == "tool_result" and block["tool_use_id"] == call.id
    assert block["content"] in ("sunny, 21 C", [{"type": "text", "text": "sunny, 21 C"}])


async def test_an_anthropic_tool_use_and_its_result_round_trip_through_gemini(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-claude", "503")
    messages: list[Any] = [{"role": "user", "content": ASK}]
    first = await sc.anthropic.messages.create(model="to_gemini", max_tokens=200,
                                               messages=messages,
                                               tools=ANTHROPIC_TOOLS)  # type: ignore[arg-type]
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "fake-city"}
    sent = _body(fake, "up-gem")
    (declared,) = sent["tools"][0]["functionDeclarations"]
    assert declared["name"] == "get_weather"

    messages += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                               "content": "sunny, 21 C"}]}]
    second = await sc.anthropic.messages.create(model="to_gemini", max_tokens=200,
                                                messages=messages,
                                                tools=ANTHROPIC_TOOLS)  # type: ignore[arg-type]
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    contents = _body(fake, "up-gem")["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    (call,) = contents[1]["parts"]
    assert call["functionCall"] == {"name": "get_weather", "args": {"city": "fake-city"}}
    (part,) = contents[2]["parts"]
    response = part["functionResponse"]
    assert response["name"] == "get_weather"
    assert "sunny, 21 C" in json.dumps(response["response"])


async def test_a_streamed_tool_call_from_gemini_reaches_an_openai_caller_whole(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-claude", "503")
    stream = await sc.openai.chat.completions.create(
        model="to_gemini", messages=[{"role": "user", "content": ASK}],
        tools=OPENAI_TOOLS, stream=True)  # type: ignore[arg-type]
    name, arguments, finish = "", "", None
    async for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            if delta.function is not None:
                name += delta.function.name or ""
                arguments += delta.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert json.loads(arguments) == {"city": "fake-city"}
    assert finish == "tool_calls"


# -- JSON mode and usage -------------------------------------------------------------------------

async def test_json_mode_and_usage_survive_translation_to_anthropic(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-gpt", "503")
    completion = await sc.openai.chat.completions.create(
        model="to_claude", messages=[{"role": "user", "content": "give me json"}],
        response_format={"type": "json_object"})
    content = completion.choices[0].message.content
    assert isinstance(json.loads(content or ""), dict)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 3
    assert completion.usage.completion_tokens >= 1
    sent = _body(fake, "up-claude")
    assert sent["tool_choice"]["type"] == "tool"
    assert [t["name"] for t in sent["tools"]] == [sent["tool_choice"]["name"]]


async def test_a_tiers_json_response_format_reaches_gemini_as_a_json_mime_type(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    message = await sc.anthropic.messages.create(
        model="json_group", max_tokens=100, messages=[{"role": "user", "content": "json pls"}])
    text = message.content[0].text  # type: ignore[union-attr]
    assert isinstance(json.loads(text), dict)
    assert message.usage.input_tokens == 2
    assert _body(fake, "up-gem")["generationConfig"]["responseMimeType"] == "application/json"


# -- function_calling: required ------------------------------------------------------------------

@pytest.mark.parametrize(("tier", "upstream", "forced"), [
    ("openai", "up-gpt", lambda b: b["tool_choice"] == "required"),
    ("anthropic", "up-claude", lambda b: b["tool_choice"]["type"] == "any"),
    ("gemini", "up-gem",
     lambda b: b["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"),
])
async def test_function_calling_required_becomes_each_providers_must_call_a_tool(
    sc: RunningSidecar, fake: FakeProvider, tier: str, upstream: str, forced: Any
) -> None:
    completion = await sc.openai.chat.completions.create(
        model=f"fc.{tier}", messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=OPENAI_TOOLS)  # type: ignore[arg-type]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls
    assert forced(_body(fake, upstream))


async def test_function_calling_required_without_tools_is_a_clear_400(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sc.openai.chat.completions.create(
            model="fc.anthropic", messages=[{"role": "user", "content": "hi"}])
    assert "function_calling" in info.value.message
    assert fake.stats()["total"] == 0


# -- thinking ------------------------------------------------------------------------------------

async def test_thinking_skips_an_openai_model_without_reasoning_and_reaches_anthropic(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="think", messages=[{"role": "user", "content": "think hard"}])
    assert raw.headers["x-echelon-served-by"] == "claude"
    assert raw.headers["x-echelon-attempts"] == "1"
    assert _body(fake, "up-claude")["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert fake.stats()["by_model"].get("up-gpt", 0) == 0
    text = await sc.metrics()
    assert metric(text, "echelon_attempts_total", model="gpt", result="skipped",
                  reason="cannot_serve") == 1


async def test_thinking_reaches_gemini_as_thinking_config_and_the_skip_is_in_the_trail(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-claude", "503")
    completion = await sc.openai.chat.completions.create(
        model="think", messages=[{"role": "user", "content": "think hard"}])
    assert completion.choices[0].message.content == "[fake:up-gem] think hard"
    config = _body(fake, "up-gem")["generationConfig"]
    assert config["thinkingConfig"]["thinkingBudget"] == 2048
    fake.set_fault("up-gem", "503")
    with pytest.raises(openai.InternalServerError) as info:
        await sc.openai.chat.completions.create(
            model="think", messages=[{"role": "user", "content": "think hard"}])
    trail = info.value.body["attempts"]  # type: ignore[index]
    skipped = [a for a in trail if a["model"] == "gpt"]
    assert skipped and all(a["reason"] == "cannot_serve" for a in skipped)
    assert "reasoning" in skipped[0]["message"]
    assert "cannot_serve" in info.value.message or "reasoning" in info.value.message


async def test_thinking_reaches_an_openai_reasoning_model_as_reasoning_effort(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    await sc.openai.chat.completions.create(
        model="think_r", messages=[{"role": "user", "content": "think hard"}])
    assert _body(fake, "up-gpt-r")["reasoning_effort"] == "medium"


async def test_what_another_provider_cannot_do_is_skipped_with_the_reason_in_the_trail(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-gpt", "503")
    with pytest.raises(openai.InternalServerError) as info:
        await sc.openai.chat.completions.create(
            model="to_claude", messages=[{"role": "user", "content": "hi"}], logprobs=True)
    trail = info.value.body["attempts"]  # type: ignore[index]
    assert [(a["model"], a["reason"]) for a in trail] == [("gpt", "fallback"),
                                                          ("claude", "cannot_serve")]
    assert "logprobs" in trail[1]["message"]
    assert "logprobs" in info.value.message
    assert fake.stats()["by_model"].get("up-claude", 0) == 0, "refused before the call"
