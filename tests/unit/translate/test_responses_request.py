"""The Responses API request → canonical chat request, and what a stateless gateway refuses."""

from __future__ import annotations

from typing import Any

import pytest

from echelon_sidecar.translate import (
    InvalidRequest,
    StatefulFeature,
    openai_to_anthropic_request,
    openai_to_gemini_request,
    responses_echo,
    responses_to_openai_request,
)

from .helpers import assert_anthropic_request, assert_openai_request

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"


def translate(**body: Any) -> dict[str, Any]:
    out = responses_to_openai_request({"model": "plan_group", **body})
    assert_openai_request(out)
    return out


def test_a_string_input_with_instructions_and_settings() -> None:
    out = translate(
        input="hello",
        instructions="Be brief.",
        max_output_tokens=64,
        temperature=0.2,
        top_p=0.9,
        parallel_tool_calls=False,
        user="u-1",
        reasoning={"effort": "low", "summary": "auto"},
        store=True,
        metadata={"k": "v"},
        truncation="auto",
        include=["message.output_text.logprobs"],
    )
    assert out == {
        "model": "plan_group",
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "hello"}],
        "temperature": 0.2, "top_p": 0.9, "user": "u-1", "max_completion_tokens": 64,
        "parallel_tool_calls": False, "reasoning_effort": "low",
    }


def test_stream_asks_for_usage() -> None:
    out = translate(input="hi", stream=True)
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}


def test_input_items_become_messages_with_tool_calls_and_results() -> None:
    out = translate(input=[
        {"role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": IMAGE, "detail": "low"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,JVBERi0=",
             "filename": "a.pdf"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city":"Paris"}', "status": "completed"},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather",
         "arguments": '{"city":"Lyon"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2",
         "output": [{"type": "input_text", "text": "rain"}]},
        {"role": "user", "content": "thanks"},
    ])
    assert out["messages"] == [
        {"role": "developer", "content": [{"type": "text", "text": "rules"}]},
        {"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=",
                                      "filename": "a.pdf"}}]},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Lyon"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rain"}]},
        {"role": "user", "content": "thanks"},
    ]
    # and every upstream kind can take it
    assert_anthropic_request(openai_to_anthropic_request(out, model="c", default_max_tokens=100))
    assert openai_to_gemini_request(out)["contents"]


def test_a_function_call_without_a_message_before_it_opens_an_assistant_turn() -> None:
    out = translate(input=[
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ])
    assert out["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_function_tools_tool_choice_and_text_formats() -> None:
    tool = {"type": "function", "name": "get_weather", "description": "Weather.",
            "parameters": SCHEMA, "strict": True}
    out = translate(input="hi", tools=[tool], tool_choice={"type": "function",
                                                          "name": "get_weather"},
                    text={"format": {"type": "json_schema", "name": "w", "schema": SCHEMA,
                                     "description": "A city.", "strict": True},
                          "verbosity": "low"})
    assert out["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather.", "parameters": SCHEMA,
        "strict": True}}]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "w", "schema": SCHEMA, "description": "A city.", "strict": True}}
    assert out["verbosity"] == "low"
    assert translate(input="hi", text={"format": {"type": "json_object"}})[
        "response_format"] == {"type": "json_object"}
    assert "response_format" not in translate(input="hi", text={"format": {"type": "text"}})
    for choice in ("none", "auto", "required"):
        assert translate(input="hi", tools=[tool], tool_choice=choice)["tool_choice"] == choice
    allowed = translate(input="hi", tools=[tool], tool_choice={
        "type": "allowed_tools", "mode": "required",
        "tools": [{"type": "function", "name": "get_weather"}]})
    assert allowed["tool_choice"] == {"type": "allowed_tools", "allowed_tools": {
        "mode": "required", "tools": [{"type": "function",
                                       "function": {"name": "get_weather"}}]}}


def test_a_tool_without_parameters_gets_an_empty_object_schema() -> None:
    out = translate(input="hi", tools=[{"type": "function", "name": "ping"}])
    assert out["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id",
     "unsupported_previous_response_id"),
    ({"conversation": {"id": "conv_1"}}, "conversation", "unsupported_conversation"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt", "unsupported_prompt"),
    ({"background": True}, "background", "unsupported_background"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type",
     "unsupported_item_reference"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type",
     "unsupported_input_item"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
     "input[0].content[0].file_id", "unsupported_file_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_file",
                                               "file_url": "https://x/a.pdf"}]}]},
     "input[0].content[0].file_url", "unsupported_file_url"),
    ({"tools": [{"type": "web_search_preview"}]}, "tools[0].type", "unsupported_tool"),
    ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type", "unsupported_tool"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type",
     "unsupported_tool_choice"),
    ({"top_logprobs": 3}, "top_logprobs", "unsupported_top_logprobs"),
    ({"input": [{"type": "function_call_output", "call_id": "c",
                 "output": [{"type": "input_image", "image_url": IMAGE}]}]},
     "input[0].output", "unsupported_function_call_output"),
])
def test_what_needs_state_or_a_built_in_tool_is_refused_naming_the_field(
    body: dict[str, Any], field: str, code: str
) -> None:
    with pytest.raises(StatefulFeature) as info:
        responses_to_openai_request({"model": "g", "input": "hi", **body})
    assert info.value.field_path == field
    assert info.value.code == code


def test_previous_response_id_says_to_send_the_whole_input() -> None:
    with pytest.raises(StatefulFeature) as info:
        responses_to_openai_request({"input": "hi", "previous_response_id": "resp_1"})
    assert "send the whole conversation in 'input'" in str(info.value)
    assert "leave 'previous_response_id' out" in str(info.value)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "input"),
    ({"input": []}, "input"),
    ({"input": 3}, "input"),
    ({"input": [{"content": "no role"}]}, "input[0]"),
    ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": "system", "content": "only instructions"}]}, "input"),
    ({"input": [{"role": "system", "content": [{"type": "input_image",
                                                "image_url": IMAGE}]}]}, "input[0].content"),
    ({"input": [{"role": "user", "content": [{"type": "audio"}]}]}, "input[0].content[0].type"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]},
     "input[0].arguments"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
    ({"instructions": 3}, "instructions"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"temperature": "hot"}, "temperature"),
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
    ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"text": {"format": {"type": "json_schema", "schema": SCHEMA}}}, "text.format.name"),
    ({"text": {"verbosity": "loud"}}, "text.verbosity"),
    ({"reasoning": {"effort": "max"}}, "reasoning.effort"),
    ({"tools": [{"type": "function"}]}, "tools[0].name"),
    ({"tool_choice": "any"}, "tool_choice"),
    ({"tool_choice": {"type": "allowed_tools", "mode": "sometimes", "tools": []}},
     "tool_choice.mode"),
])
def test_a_malformed_request_is_invalid_at_its_field(body: dict[str, Any], field: str) -> None:
    body = {"input": "hi", **body} if "input" not in body and body else body
    with pytest.raises(InvalidRequest) as info:
        responses_to_openai_request({"model": "g", **body})
    assert info.value.field_path == field
    assert not isinstance(info.value, StatefulFeature)


def test_the_echo_repeats_the_settings_and_says_nothing_is_stored() -> None:
    tools = [{"type": "function", "name": "f", "parameters": SCHEMA}]
    echo = responses_echo({"input": "hi", "store": True, "tools": tools,
                           "instructions": "x", "max_output_tokens": 9,
                           "text": {"verbosity": "low"}, "reasoning": {"effort": "high"}})
    assert echo["store"] is False and echo["previous_response_id"] is None
    assert echo["tools"] == tools and echo["tool_choice"] == "auto"
    assert echo["parallel_tool_calls"] is True
    assert echo["text"] == {"format": {"type": "text"}, "verbosity": "low"}
    assert echo["reasoning"] == {"effort": "high", "summary": None}
    assert (echo["instructions"], echo["max_output_tokens"]) == ("x", 9)
    assert echo["truncation"] == "disabled" and echo["metadata"] == {}
