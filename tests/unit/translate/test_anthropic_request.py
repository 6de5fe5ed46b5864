from __future__ import annotations

import base64
from typing import Any

import pytest

from echelon_sidecar.translate import (
    JSON_RESPONSE_TOOL,
    InvalidRequest,
    UnsupportedFeature,
    openai_to_anthropic_request,
)

from .helpers import assert_anthropic_request, deep, load_json

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAC"
    "hwGA60e6kgAAAABJRU5ErkJggg=="
)


def req(**extra: Any) -> dict[str, Any]:
    return {"model": "g", "messages": [{"role": "user", "content": "hi"}], **extra}


def translate(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out = openai_to_anthropic_request(
        body, model="claude-sonnet-4-5", default_max_tokens=4096, **kw
    )
    assert_anthropic_request(out)
    return out


def test_recorded_multi_turn_request_with_images_tools_and_results() -> None:
    body = load_json("openai_request_full.json")
    before = deep(body)
    out = translate(body)
    assert body == before
    assert out["model"] == "claude-sonnet-4-5"
    assert out["system"] == [{"type": "text", "text": "You are a concise travel assistant."},
                             {"type": "text", "text": "Always answer in English."}]
    user, assistant, results = out["messages"]
    assert user["role"] == "user"
    assert user["content"][1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": PNG.split(",", 1)[1]}}
    assert user["content"][2] == {"type": "image", "source": {
        "type": "url", "url": "https://upload.example.org/photos/lyon-fourviere.jpg"}}
    assert assistant == {
        "role": "assistant",
        "content": [
            {
                "type": "text",
                "text": "The photos show Paris and Lyon. Let me check the weather in both.",
            },
            {
                "type": "tool_use",
                "id": "call_Wb5kQ1c0sEa1bJ2f8yW3n9Lp",
                "name": "get_weather",
                "input": {"city": "Paris", "unit": "celsius"},
            },
            {
                "type": "tool_use",
                "id": "call_4xTz0vQd9Hh2YpUe6mC1rKsA",
                "name": "get_weather",
                "input": {"city": "Lyon", "unit": "celsius"},
            },
        ],
    }
    assert results == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_Wb5kQ1c0sEa1bJ2f8yW3n9Lp",
         "content": '{"temperature": 21, "sky": "clear"}'},
        {"type": "tool_result", "tool_use_id": "call_4xTz0vQd9Hh2YpUe6mC1rKsA",
         "content": [{"type": "text", "text": '{"temperature": 18, "sky": "overcast"}'}]},
        {"type": "text", "text": "Thanks! Which city is warmer right now?"},
    ]}
    assert out["tools"] == [{
        "name": "get_weather", "description": "Get the current weather for a city.",
        "input_schema": body["tools"][0]["function"]["parameters"]}]
    assert out["tool_choice"] == {"type": "auto"}
    assert (out["temperature"], out["top_p"], out["max_tokens"]) == (0.3, 0.9, 1024)
    assert out["stop_sequences"] == ["\n\nUser:"]
    assert out["metadata"] == {"user_id": "user-1234"}


def test_a_single_system_message_stays_a_string_and_max_tokens_defaults() -> None:
    out = translate(req(messages=[{"role": "system", "content": "be brief"},
                                  {"role": "user", "content": "hi"}]))
    assert out["system"] == "be brief"
    assert out["max_tokens"] == 4096
    assert out["messages"] == [{"role": "user", "content": "hi"}]


def test_consecutive_same_role_messages_are_merged_into_one_turn() -> None:
    out = translate(
        req(
            messages=[
                {"role": "user", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "c"},
                {"role": "assistant", "content": "d"},
                {"role": "user", "content": ""},
                {"role": "user", "content": "e"},
            ]
        )
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "c"}, {"type": "text", "text": "d"}],
        },
        {"role": "user", "content": "e"},
    ]


def test_tool_results_open_the_user_turn_they_are_merged_into() -> None:
    out = translate(
        req(
            tools=[TOOL],
            messages=[
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "functions.get_weather:0",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ],
                },
                {"role": "user", "content": "also"},
                {
                    "role": "tool",
                    "tool_call_id": "functions.get_weather:0",
                    "content": "sunny",
                    "is_error": True,
                },
            ],
        )
    )
    assistant, user = out["messages"]
    assert assistant["content"][0]["id"] == "functions_get_weather_0"
    assert assistant["content"][0]["input"] == {}
    assert user["content"] == [
        {"type": "tool_result", "tool_use_id": "functions_get_weather_0", "content": "sunny",
         "is_error": True},
        {"type": "text", "text": "also"}]


def test_file_parts_become_documents() -> None:
    pdf = "data:application/pdf;base64,JVBERi0xLjQK"
    txt = "data:text/plain;base64," + base64.b64encode(b"hello notes").decode()
    out = translate(req(messages=[{"role": "user", "content": [
        {"type": "file", "file": {"file_data": pdf, "filename": "report.pdf"}},
        {"type": "file", "file": {"file_data": txt}}]}]))
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "title": "report.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"},
        },
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "hello notes"},
        },
    ]


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    (None, None, None),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("none", None, {"type": "none"}),
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ({"type": "function", "function": {"name": "get_weather"}}, None,
     {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice_table(choice: Any, parallel: Any, expected: Any) -> None:
    body = req(tools=[TOOL])
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert translate(body).get("tool_choice") == expected


def test_strict_function_tools_keep_strict() -> None:
    strict = {
        "type": "function",
        "function": {**TOOL["function"], "strict": True, "description": "d"},
    }
    assert translate(req(tools=[strict]))["tools"][0]["strict"] is True


@pytest.mark.parametrize(
    ("extra", "feature"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"modalities": ["text", "audio"]}, "audio output"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"verbosity": "low"}, "verbosity"),
        ({"temperature": 1.5}, "temperature"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "custom tools"),
        (
            {
                "tools": [TOOL],
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {"mode": "auto", "tools": []},
                },
            },
            "tool_choice allowed_tools",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "input_audio",
                                "input_audio": {"data": "AAAA", "format": "wav"},
                            }
                        ],
                    }
                ]
            },
            "input_audio",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/bmp;base64,Qk0="},
                            }
                        ],
                    }
                ]
            },
            "image type image/bmp",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}
                ]
            },
            "file_id",
        ),
    ],
)
def test_what_anthropic_cannot_do_is_refused_before_any_call(
    extra: dict[str, Any], feature: str
) -> None:
    with pytest.raises(UnsupportedFeature) as exc:
        translate(req(**extra))
    assert exc.value.feature == feature
    assert exc.value.provider == "anthropic"


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"messages": []}, "messages"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{not json"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (
            {"tools": [{"type": "function", "function": {"name": JSON_RESPONSE_TOOL}}]},
            "tools[0].function.name",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop": 5}, "stop"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ],
)
def test_malformed_caller_input_names_the_field(extra: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        translate(req(**extra))
    assert exc.value.field_path == path


def test_sampling_params_can_be_refused_for_models_without_them() -> None:
    assert "temperature" not in translate(req(), sampling_params=False)
    with pytest.raises(UnsupportedFeature, match="sampling"):
        translate(req(temperature=0.5), sampling_params=False)


# --------------------------------------------------------------------------- thinking


def test_canonical_thinking_maps_and_grows_a_defaulted_max_tokens() -> None:
    out = translate(req(thinking={"type": "enabled", "budget_tokens": 8000}))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 8000}
    assert out["max_tokens"] == 4096 + 8000


def test_thinking_budget_below_the_minimum_is_raised_to_1024() -> None:
    out = translate(req(thinking={"type": "enabled", "budget_tokens": 100}, max_tokens=4000))
    assert out["thinking"]["budget_tokens"] == 1024
    assert out["max_tokens"] == 4000


def test_thinking_budget_not_below_an_explicit_max_tokens_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature, match="below max_tokens"):
        translate(
            req(thinking={"type": "enabled", "budget_tokens": 2048}, max_completion_tokens=2048)
        )


@pytest.mark.parametrize(("effort", "thinking"), [
    ("low", {"type": "enabled", "budget_tokens": 1024}),
    ("medium", {"type": "enabled", "budget_tokens": 4096}),
    ("high", {"type": "enabled", "budget_tokens": 16384}),
    ("none", {"type": "disabled"}),
])
def test_reasoning_effort_from_an_openai_caller_becomes_a_budget(
    effort: str, thinking: Any
) -> None:
    assert translate(req(reasoning_effort=effort))["thinking"] == thinking


@pytest.mark.parametrize(("extra", "feature"), [
    ({"temperature": 0.2}, "temperature"),
    ({"top_p": 0.5}, "top_p"),
    ({"top_k": 40}, "top_k"),
    ({"tools": [TOOL], "tool_choice": "required"}, "thinking"),
    ({"response_format": {"type": "json_object"}}, "thinking"),
])
def test_extended_thinking_constraints(extra: dict[str, Any], feature: str) -> None:
    with pytest.raises(UnsupportedFeature) as exc:
        translate(req(thinking={"type": "enabled", "budget_tokens": 2048}, **extra))
    assert exc.value.feature == feature


def test_thinking_allows_temperature_one_and_auto_tools() -> None:
    out = translate(
        req(thinking={"type": "adaptive"}, temperature=1, tools=[TOOL], tool_choice="auto")
    )
    assert out["thinking"] == {"type": "adaptive"}


def test_signed_thinking_blocks_are_replayed_and_unsigned_reasoning_is_not() -> None:
    blocks = [{"type": "thinking", "thinking": "plan", "signature": "sig"},
              {"type": "redacted_thinking", "data": "opaque"}]
    out = translate(
        req(
            messages=[
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": None,
                    "reasoning_content": "plan",
                    "thinking_blocks": blocks,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                {"role": "assistant", "content": "done", "reasoning_content": "unsigned"},
            ]
        )
    )
    assert out["messages"][1]["content"][:2] == blocks
    assert out["messages"][3]["content"] == [{"type": "text", "text": "done"}]


# --------------------------------------------------------------------------- JSON mode


def test_json_object_without_tools_forces_the_json_tool() -> None:
    out = translate(req(response_format={"type": "json_object"}))
    assert out["tools"] == [
        {
            "name": JSON_RESPONSE_TOOL,
            "description": out["tools"][0]["description"],
            "input_schema": {"type": "object"},
        }
    ]
    assert out["tool_choice"] == {"type": "tool", "name": JSON_RESPONSE_TOOL,
                                  "disable_parallel_tool_use": True}


def test_json_object_with_tools_requires_some_tool_including_the_json_tool() -> None:
    out = translate(req(tools=[TOOL], response_format={"type": "json_object"}))
    assert [t["name"] for t in out["tools"]] == ["get_weather", JSON_RESPONSE_TOOL]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    named = {"type": "function", "function": {"name": "get_weather"}}
    out = translate(req(tools=[TOOL], tool_choice=named, response_format={"type": "json_object"}))
    assert out["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_json_object_with_required_tools_cannot_be_expressed() -> None:
    with pytest.raises(UnsupportedFeature, match="json_object"):
        translate(
            req(tools=[TOOL], tool_choice="required", response_format={"type": "json_object"})
        )


def test_json_schema_uses_native_structured_outputs() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
              "additionalProperties": False}
    out = translate(
        req(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "r", "schema": schema, "strict": True},
            }
        )
    )
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "tools" not in out


def test_a_conversation_with_only_a_system_prompt_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature, match="system-only"):
        translate(req(messages=[{"role": "system", "content": "You are terse."},
                                {"role": "user", "content": ""}]))
