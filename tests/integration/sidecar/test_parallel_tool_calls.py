"""``parallel_tool_calls: false`` through the real sidecar: Gemini tiers serve it.

LangChain's ``with_structured_output(method="function_calling")``, LlamaIndex tool calls and
instructor send it. Gemini cannot be told: the fake Gemini upstream answers a prompt holding
``PARALLEL_TOOL_TRIGGER`` with one ``functionCall`` part per declared tool, as Gemini does, and
the sidecar gives the caller the first call alone (whole answers and streams, OpenAI and
Anthropic callers). OpenAI and Anthropic upstreams are told in their own words.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from echelon_tools.fake_provider import PARALLEL_TOOL_TRIGGER, FakeProvider

from ..conftest import MakeSidecar, RunningSidecar, anthropic_model, gemini_model, openai_model


def _schema(name: str) -> dict[str, Any]:
    return {"type": "object", "properties": {name: {"type": "string"}}, "required": [name]}


OPENAI_TOOLS: Any = [
    {"type": "function", "function": {"name": "get_weather", "description": "The weather.",
                                      "parameters": _schema("city")}},
    {"type": "function", "function": {"name": "get_time", "description": "The local time.",
                                      "parameters": _schema("zone")}},
]
ANTHROPIC_TOOLS: Any = [{"name": t["function"]["name"], "description": t["function"]["description"],
                         "input_schema": t["function"]["parameters"]} for t in OPENAI_TOOLS]
ASK: Any = [{"role": "user", "content": f"Weather and time in Paris? {PARALLEL_TOOL_TRIGGER}"}]
ONE_AT_A_TIME: Any = {"type": "auto", "disable_parallel_tool_use": True}


@pytest.fixture
async def sc(fake: FakeProvider, make_sidecar: MakeSidecar) -> RunningSidecar:
    return await make_sidecar({
        "task_groups": {
            # before this change every Gemini instance was skipped: echelon2 served instead
            "single": {"echelon1": {"models": ["gem"], "priority": 1},
                       "echelon2": {"models": ["gpt"], "priority": 2}},
            "to_openai": {"echelon1": {"models": ["gpt"]}},
            "to_claude": {"echelon1": {"models": ["claude"]}},
        },
        "models": {"gem": gemini_model(fake, "up-gem"), "gpt": openai_model(fake, "up-gpt"),
                   "claude": anthropic_model(fake, "up-claude")},
    })


def _served_by_gemini(headers: Any) -> None:
    assert headers["x-echelon-served-by"] == "gem"
    assert headers["x-echelon-tier"] == "single.echelon1"
    assert headers["x-echelon-attempts"] == "1"


async def test_parallel_tool_calls_false_is_served_by_gemini_with_only_its_first_function_call(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    both = await sc.openai.chat.completions.create(model="single", messages=ASK, tools=OPENAI_TOOLS)
    assert [c.function.name for c in both.choices[0].message.tool_calls or []  # type: ignore[union-attr]
            ] == ["get_weather", "get_time"], "the fake Gemini calls both tools in parallel"

    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="single", messages=ASK, tools=OPENAI_TOOLS, parallel_tool_calls=False)
    _served_by_gemini(raw.headers)
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "fake-city"}  # type: ignore[union-attr]
    assert fake.stats()["by_model"].get("up-gpt", 0) == 0


async def _streamed_calls(
    sc: RunningSidecar, **create: Any
) -> tuple[Any, dict[int, dict[str, str]], list[str]]:
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="single", messages=ASK, tools=OPENAI_TOOLS, stream=True,
        stream_options={"include_usage": True}, **create)
    calls: dict[int, dict[str, str]] = {}
    finishes: list[str] = []
    async for chunk in raw.parse():
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return raw.headers, calls, finishes


async def test_parallel_tool_calls_false_streams_gemini_s_first_function_call_alone(
    sc: RunningSidecar,
) -> None:
    _, both, _ = await _streamed_calls(sc)
    assert [both[i]["name"] for i in sorted(both)] == ["get_weather", "get_time"]

    headers, calls, finishes = await _streamed_calls(sc, parallel_tool_calls=False)
    _served_by_gemini(headers)
    assert list(calls) == [0], "one tool call, at index 0"
    assert calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert json.loads(calls[0]["arguments"]) == {"city": "fake-city"}
    assert finishes == ["tool_calls"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_disable_parallel_tool_use_from_an_anthropic_caller_gets_one_tool_use_from_gemini(
    sc: RunningSidecar, stream: bool
) -> None:
    create: Any = {"model": "single", "max_tokens": 200, "messages": ASK, "tools": ANTHROPIC_TOOLS,
                   "tool_choice": ONE_AT_A_TIME}
    if stream:
        async with sc.anthropic.messages.stream(**create) as events:
            message = await events.get_final_message()
            headers = events.response.headers
    else:
        raw = await sc.anthropic.messages.with_raw_response.create(**create)
        message, headers = await raw.parse(), raw.headers
    _served_by_gemini(headers)
    assert message.stop_reason == "tool_use"
    (use,) = [b for b in message.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "fake-city"}


@pytest.mark.parametrize(("caller", "group", "upstream", "told"), [
    ("openai", "to_openai", "up-gpt", lambda b: b["parallel_tool_calls"] is False),
    ("openai", "to_claude", "up-claude",
     lambda b: b["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}),
    ("anthropic", "to_openai", "up-gpt", lambda b: b["parallel_tool_calls"] is False),
    ("anthropic", "to_claude", "up-claude", lambda b: b["tool_choice"] == ONE_AT_A_TIME),
])
async def test_parallel_tool_calls_false_reaches_openai_and_anthropic_upstreams_in_their_own_words(
    sc: RunningSidecar, fake: FakeProvider, caller: str, group: str, upstream: str, told: Any
) -> None:
    if caller == "openai":
        await sc.openai.chat.completions.create(
            model=group, messages=ASK, tools=OPENAI_TOOLS, parallel_tool_calls=False)
    else:
        await sc.anthropic.messages.create(model=group, max_tokens=200, messages=ASK,
                                           tools=ANTHROPIC_TOOLS, tool_choice=ONE_AT_A_TIME)
    sent = fake.last_request(upstream)
    assert sent is not None and told(sent.body)
