"""Each wire format reads its own request fields into the shared `Prompt`."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from echelon_tools.fake_provider.anthropic_api import AnthropicWire
from echelon_tools.fake_provider.gemini_api import GeminiWire
from echelon_tools.fake_provider.openai_api import OpenAIWire
from echelon_tools.fake_provider.wire import Exchange, InvalidRequest

TOOL_SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}


def exchange(body: dict[str, Any], headers: dict[str, str] | None = None,
             **extra: Any) -> Exchange:
    request = make_mocked_request("POST", "/", headers=headers or {})
    return Exchange(request=request, endpoint="t", model=str(body.get("model", "m")), body=body,
                    stream=False, extra=dict(extra))


def openai_body(**kw: Any) -> dict[str, Any]:
    return {"model": "gpt-4", "messages": [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "hi there"}], **kw}


OPENAI_TOOLS = [{"type": "function", "function": {"name": "a", "parameters": TOOL_SCHEMA}},
                {"type": "function", "function": {"name": "b", "parameters": TOOL_SCHEMA}}]


@pytest.mark.parametrize(
    ("tool_choice", "force", "name", "has_tools"),
    [("auto", False, None, True), ("required", True, None, True),
     ({"type": "function", "function": {"name": "b"}}, True, "b", True),
     ("none", False, None, False)],
)
def test_openai_tool_choice(tool_choice: Any, force: bool, name: str | None,
                            has_tools: bool) -> None:
    prompt = OpenAIWire().prompt(exchange(openai_body(tools=OPENAI_TOOLS, tool_choice=tool_choice)))
    assert prompt.force_tool is force
    assert prompt.forced_tool_name == name
    assert bool(prompt.tools) is has_tools


def test_openai_reads_text_parts_json_format_reasoning_and_limits() -> None:
    body = openai_body(
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": TOOL_SCHEMA},
        },
        reasoning_effort="high",
        max_completion_tokens=7,
    )
    body["messages"].append({"role": "user", "content": [{"type": "text", "text": "part one"},
                                                         {"type": "text", "text": "two"}]})
    prompt = OpenAIWire().prompt(exchange(body))
    assert prompt.last_user_text == "part one two"
    assert prompt.prompt_tokens == 7  # "be brief" + "hi there" + "part one two"
    assert prompt.json_output and prompt.json_schema == TOOL_SCHEMA
    assert prompt.thinking
    assert prompt.max_tokens == 7


@pytest.mark.parametrize(
    ("body", "param"),
    [({"messages": [{"role": "user", "content": "x"}]}, "model"),
     ({"model": "m"}, "messages"), ({"model": "m", "messages": []}, "messages")],
)
def test_openai_rejects_requests_missing_required_fields(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        OpenAIWire().prompt(exchange(body))
    assert info.value.param == param


ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def anthropic_body(**kw: Any) -> dict[str, Any]:
    return {"model": "claude", "max_tokens": 4096, "system": "be brief",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}], **kw}


@pytest.mark.parametrize(
    ("tool_choice", "force", "name"),
    [({"type": "auto"}, False, None), ({"type": "any"}, True, None),
     ({"type": "tool", "name": "b"}, True, "b")],
)
def test_anthropic_tool_choice(tool_choice: dict[str, Any], force: bool, name: str | None) -> None:
    tools = [{"name": "a", "input_schema": TOOL_SCHEMA}, {"name": "b", "input_schema": TOOL_SCHEMA}]
    prompt = AnthropicWire().prompt(exchange(anthropic_body(tools=tools, tool_choice=tool_choice),
                                             ANTHROPIC_HEADERS))
    assert (prompt.force_tool, prompt.forced_tool_name) == (force, name)
    assert [t.name for t in prompt.tools] == ["a", "b"]


def test_anthropic_reads_thinking_and_structured_output() -> None:
    prompt = AnthropicWire().prompt(exchange(anthropic_body(
        thinking={"type": "enabled", "budget_tokens": 2048},
        output_config={"format": {"type": "json_schema", "schema": TOOL_SCHEMA}}),
        ANTHROPIC_HEADERS))
    assert prompt.thinking and prompt.thinking_budget == 2048
    assert prompt.json_output and prompt.json_schema == TOOL_SCHEMA
    assert prompt.prompt_tokens == 4
    assert prompt.max_tokens == 4096


@pytest.mark.parametrize(
    ("body", "headers", "needle"),
    [(anthropic_body(), {}, "anthropic-version: header is required"),
     ({"model": "c", "messages": []}, ANTHROPIC_HEADERS, "max_tokens: Field required"),
     (anthropic_body(thinking={"type": "enabled", "budget_tokens": 100}), ANTHROPIC_HEADERS,
      "greater than or equal to 1024"),
     (anthropic_body(max_tokens=1500, thinking={"type": "enabled", "budget_tokens": 2000}),
      ANTHROPIC_HEADERS, "`max_tokens` must be greater than `thinking.budget_tokens`")],
)
def test_anthropic_rejects_what_the_real_api_rejects(body: dict[str, Any], headers: dict[str, str],
                                                    needle: str) -> None:
    with pytest.raises(InvalidRequest, match=needle.replace("`", ".")):
        AnthropicWire().prompt(exchange(body, headers))


def gemini_exchange(body: dict[str, Any]) -> Exchange:
    return exchange(body, action="generateContent", sse=False)


def test_gemini_reads_camel_and_snake_case_fields() -> None:
    tools = [{"functionDeclarations": [{"name": "a", "parameters": TOOL_SCHEMA},
                                       {"name": "b", "parametersJsonSchema": TOOL_SCHEMA}]}]
    camel = {
        "contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "tools": tools,
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}},
        "generationConfig": {"responseMimeType": "application/json",
                             "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": True},
                             "maxOutputTokens": 9},
    }
    snake = {
        "contents": camel["contents"],
        "system_instruction": camel["systemInstruction"],
        "tools": [{"function_declarations": tools[0]["functionDeclarations"]}],
        "tool_config": {"function_calling_config": {"mode": "any",
                                                    "allowed_function_names": ["b"]}},
        "generation_config": {"response_mime_type": "application/json",
                              "thinking_config": {"thinking_budget": 512,
                                                  "include_thoughts": True},
                              "max_output_tokens": 9},
    }
    for body in (camel, snake):
        ex = gemini_exchange(body)
        prompt = GeminiWire().prompt(ex)
        assert [t.name for t in prompt.tools] == ["a", "b"]
        assert prompt.tools[1].parameters == TOOL_SCHEMA
        assert prompt.force_tool and prompt.forced_tool_name == "b"
        assert prompt.json_output and prompt.thinking and prompt.thinking_budget == 512
        assert ex.extra["include_thoughts"] is True
        assert prompt.max_tokens == 9
        assert prompt.prompt_tokens == 4


def test_gemini_zero_thinking_budget_disables_thinking_and_missing_contents_is_rejected() -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
    assert not GeminiWire().prompt(gemini_exchange(body)).thinking
    with pytest.raises(InvalidRequest, match="contents is not specified"):
        GeminiWire().prompt(gemini_exchange({}))
