from __future__ import annotations

import itertools
from typing import Any

import pytest
from google.genai import types as gt

from echelon_sidecar.translate import (
    DUMMY_THOUGHT_SIGNATURE,
    InvalidRequest,
    UnsupportedFeature,
    gemini_to_openai_response,
    openai_to_gemini_request,
)

from .helpers import deep, load_json

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def req(**extra: Any) -> dict[str, Any]:
    return {"model": "g", "messages": [{"role": "user", "content": "hi"}], **extra}


def translate(body: dict[str, Any]) -> dict[str, Any]:
    out = openai_to_gemini_request(body)
    # every piece through the SDK's own models (extra='forbid' catches misspelt fields)
    assert set(out) <= {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"}
    for content in out["contents"]:
        assert content["role"] in ("user", "model")
        gt.Content.model_validate(content)
    roles = [c["role"] for c in out["contents"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    if "systemInstruction" in out:
        gt.Content.model_validate(out["systemInstruction"])
    for tool in out.get("tools", ()):
        gt.Tool.model_validate(tool)
    if "toolConfig" in out:
        gt.ToolConfig.model_validate(out["toolConfig"])
    if "generationConfig" in out:
        gt.GenerationConfig.model_validate(out["generationConfig"])
    return out


def test_recorded_multi_turn_request_with_images_tools_and_results() -> None:
    body = load_json("openai_request_full.json")
    before = deep(body)
    out = translate(body)
    assert body == before
    assert out["systemInstruction"] == {"parts": [
        {"text": "You are a concise travel assistant."}, {"text": "Always answer in English."}]}
    user, model, results = out["contents"]
    assert user["role"] == "user"
    assert user["parts"][1] == {
        "inlineData": {
            "mimeType": "image/png",
            "data": body["messages"][2]["content"][1]["image_url"]["url"].split(",")[1],
        }
    }
    assert user["parts"][2] == {"fileData": {
        "mimeType": "image/jpeg", "fileUri": "https://upload.example.org/photos/lyon-fourviere.jpg"}}
    assert model == {"role": "model", "parts": [
        {"text": "The photos show Paris and Lyon. Let me check the weather in both."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "celsius"}},
         "thoughtSignature": DUMMY_THOUGHT_SIGNATURE},
        {"functionCall": {"name": "get_weather", "args": {"city": "Lyon", "unit": "celsius"}}},
    ]}
    assert results == {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather",
                              "response": {"output": '{"temperature": 21, "sky": "clear"}'}}},
        {"functionResponse": {"name": "get_weather",
                              "response": {"output": '{"temperature": 18, "sky": "overcast"}'}}},
        {"text": "Thanks! Which city is warmer right now?"},
    ]}
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Get the current weather for a city.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "city": {"type": "STRING", "description": "City name, e.g. Paris"},
                            "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]},
                        },
                        "required": ["city"],
                    },
                }
            ]
        }
    ]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert out["generationConfig"] == {"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 1024,
                                       "stopSequences": ["\n\nUser:"]}


def test_gemini_thought_signatures_survive_the_canonical_form() -> None:
    reply = gemini_to_openai_response(load_json("gemini_response_function_call.json"), model="g")
    assistant = reply["choices"][0]["message"]
    call_id = assistant["tool_calls"][0]["id"]
    out = translate(req(tools=[TOOL], messages=[
        {"role": "user", "content": "weather in Paris?"}, assistant,
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"}]))
    call_part = out["contents"][1]["parts"][-1]
    assert call_part["thoughtSignature"] == "CiQBcsjafE8rQ1wV2Y3eZgkL0n5x1Qm0Zx8K7h3P4s2vYk9a"
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]


@pytest.mark.parametrize(("choice", "config"), [
    ("none", {"mode": "NONE"}),
    ("auto", {"mode": "AUTO"}),
    ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
        {"type": "function", "function": {"name": "get_weather"}}]}},
     {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_tool_choice_table(choice: Any, config: dict[str, Any]) -> None:
    assert translate(req(tools=[TOOL], tool_choice=choice))["toolConfig"] == {
        "functionCallingConfig": config}


def test_parameterless_functions_omit_parameters() -> None:
    tool = {"type": "function", "function": {"name": "now", "parameters": {
        "type": "object", "properties": {}, "additionalProperties": False}}}
    assert translate(req(tools=[tool]))["tools"] == [{"functionDeclarations": [{"name": "now"}]}]


def test_generation_config_table() -> None:
    out = translate(req(n=2, top_k=40, seed=7, presence_penalty=0.1, frequency_penalty=0.2,
                        max_tokens=99, stop="END", response_format={"type": "json_object"}))
    assert out["generationConfig"] == {
        "topK": 40, "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": 0.2, "candidateCount": 2,
        "maxOutputTokens": 99, "stopSequences": ["END"], "responseMimeType": "application/json"}


def test_json_schema_response_format_sets_a_response_schema() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    out = translate(req(response_format={"type": "json_schema", "json_schema": {
        "name": "r", "strict": True, "schema": schema}}))
    assert out["generationConfig"] == {"responseMimeType": "application/json", "responseSchema": {
        "type": "OBJECT", "properties": {"answer": {"type": "INTEGER"}}, "required": ["answer"]}}


@pytest.mark.parametrize(("extra", "thinking_config"), [
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}},
     {"thinkingBudget": 2048, "includeThoughts": True}),
    ({"thinking": {"type": "disabled"}}, {"thinkingBudget": 0}),
    ({"thinking": {"type": "adaptive"}}, {"thinkingBudget": -1, "includeThoughts": True}),
    ({"reasoning_effort": "high"}, {"thinkingBudget": 16384, "includeThoughts": True}),
    ({"reasoning_effort": "none"}, {"thinkingBudget": 0}),
])
def test_thinking_table(extra: dict[str, Any], thinking_config: dict[str, Any]) -> None:
    assert translate(req(**extra))["generationConfig"]["thinkingConfig"] == thinking_config


def test_audio_input_and_tool_errors() -> None:
    out = translate(req(tools=[TOOL], messages=[
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklGRg==",
                                                                             "format": "wav"}}]},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "extra_content": {
            "google": {"thought_signature": "c2ln"}},
            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "timeout", "is_error": True}]))
    assert out["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}}
    ]
    assert out["contents"][1]["parts"][0]["thoughtSignature"] == "c2ln"
    assert out["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"error": "timeout"}}}]


@pytest.mark.parametrize("choice", [None, "auto", "required",
                                    {"type": "function", "function": {"name": "get_weather"}}])
def test_parallel_tool_calls_false_is_translated_not_refused_and_sends_gemini_nothing(
    choice: Any,
) -> None:
    # Gemini has no setting for it: the request is the one without it (the answer is trimmed)
    extra = {} if choice is None else {"tool_choice": choice}
    assert translate(req(tools=[TOOL], parallel_tool_calls=False, **extra)) == translate(
        req(tools=[TOOL], **extra))


@pytest.mark.parametrize(("extra", "feature"), [
    ({"logprobs": True}, "logprobs"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio output"),
    ({"tools": [TOOL], "tool_choice": {"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": []}}}, "tool_choice allowed_tools (auto)"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://cdn.example.org/render?id=7"}}]}]},
     "media URL"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {
        "type": "object", "properties": {"n": {"type": "number", "exclusiveMinimum": 0}}}}}},
     "JSON schema keyword 'exclusiveMinimum'"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "custom tools"),
])
def test_what_gemini_cannot_do_is_refused_before_any_call(
    extra: dict[str, Any], feature: str
) -> None:
    with pytest.raises(UnsupportedFeature) as exc:
        translate(req(**extra))
    assert exc.value.feature == feature
    assert exc.value.provider == "gemini"


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        (
            {"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"top_p": True}, "top_p"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "x", "format": "flac"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].input_audio",
        ),
    ],
)
def test_malformed_caller_input_names_the_field(extra: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        translate(req(**extra))
    assert exc.value.field_path == path


def test_a_conversation_with_only_a_system_prompt_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature, match="system-only"):
        translate(req(messages=[{"role": "developer", "content": "You are terse."}]))
