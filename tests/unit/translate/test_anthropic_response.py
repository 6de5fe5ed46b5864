from __future__ import annotations

from typing import Any

import orjson
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from echelon_sidecar.translate import (
    JSON_RESPONSE_TOOL,
    MalformedUpstreamResponse,
    anthropic_to_openai_response,
    openai_to_anthropic_response,
    usage_from_anthropic,
    usage_to_anthropic,
)

from .helpers import assert_no_extras, load_json


def to_openai(resp: dict[str, Any], **kw: Any) -> dict[str, Any]:
    out = anthropic_to_openai_response(resp, **kw)
    assert_no_extras(ChatCompletion.model_validate(out))
    return out


def to_anthropic(resp: dict[str, Any], model: str = "plan_group.echelon1") -> dict[str, Any]:
    out = openai_to_anthropic_response(resp, model=model)
    assert_no_extras(Message.model_validate(out))
    return out


def message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 5, **usage}}


def test_recorded_thinking_text_and_tool_use_response() -> None:
    resp = load_json("anthropic_response_thinking_tool.json")
    out = to_openai(resp, model="plan_group.echelon1", created=1700000000)
    assert (out["id"], out["model"], out["created"]) == (
        resp["id"],
        "plan_group.echelon1",
        1700000000,
    )
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    msg = choice["message"]
    assert msg["content"] == "I'll look up the current weather in Paris."
    assert msg["reasoning_content"] == resp["content"][0]["thinking"]
    assert msg["thinking_blocks"] == [resp["content"][0]]
    assert msg["tool_calls"] == [{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                                  "function": {"name": "get_weather",
                                               "arguments": '{"city":"Paris","unit":"celsius"}'}}]
    assert out["usage"] == {
        "prompt_tokens": 600,
        "completion_tokens": 89,
        "total_tokens": 689,
        "prompt_tokens_details": {"cached_tokens": 128, "cache_write_tokens": 0},
    }


def test_model_defaults_to_the_upstream_model() -> None:
    assert to_openai(message([{"type": "text", "text": "x"}]))["model"] == "claude-x"


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"),
    ("max_tokens", "length"), ("model_context_window_exceeded", "length"),
    ("refusal", "content_filter"), (None, "stop"),
])
def test_stop_reason_table(stop_reason: str | None, finish: str) -> None:
    resp = message([{"type": "text", "text": "x"}])
    resp["stop_reason"] = stop_reason
    assert to_openai(resp)["choices"][0]["finish_reason"] == finish


def test_json_mode_tool_use_comes_back_as_text_content() -> None:
    resp = message([{"type": "tool_use", "id": "toolu_j", "name": JSON_RESPONSE_TOOL,
                     "input": {"answer": 42, "unit": "°C"}}], "tool_use")
    choice = to_openai(resp)["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]
    assert orjson.loads(choice["message"]["content"]) == {"answer": 42, "unit": "°C"}


def test_redacted_thinking_and_no_text_give_null_content() -> None:
    resp = message([{"type": "redacted_thinking", "data": "EmwKAhgB"}])
    msg = to_openai(resp)["choices"][0]["message"]
    assert msg["content"] is None
    assert msg["thinking_blocks"] == [{"type": "redacted_thinking", "data": "EmwKAhgB"}]
    assert "reasoning_content" not in msg


def test_usage_with_cache_and_thinking_tokens() -> None:
    u = {"input_tokens": 3, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 50,
         "output_tokens": 40, "output_tokens_details": {"thinking_tokens": 30}}
    out = usage_from_anthropic(u)
    assert out == {"prompt_tokens": 153, "completion_tokens": 40, "total_tokens": 193,
                   "prompt_tokens_details": {"cached_tokens": 50, "cache_write_tokens": 100},
                   "completion_tokens_details": {"reasoning_tokens": 30}}
    assert usage_to_anthropic(out) == u


def test_malformed_anthropic_response_is_reported_as_such() -> None:
    with pytest.raises(MalformedUpstreamResponse):
        anthropic_to_openai_response({"type": "error", "error": {}})


# --------------------------------------------------------------------------- OpenAI → Anthropic


def test_recorded_openai_tool_call_response_becomes_an_anthropic_message() -> None:
    out = to_anthropic(load_json("openai_response_tool_calls.json"))
    assert out["id"] == "msg_chatcmpl-C3xT0oolCallStream1"
    assert out["model"] == "plan_group.echelon1"
    assert out["stop_reason"] == "tool_use"
    assert out["content"] == [
        {"type": "tool_use", "id": "call_Wb5kQ1c0sEa1bJ2f8yW3n9Lp", "name": "get_weather",
         "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_4xTz0vQd9Hh2YpUe6mC1rKsA", "name": "get_weather",
         "input": {"city": "Lyon"}}]
    assert out["usage"] == {"input_tokens": 82, "output_tokens": 47, "cache_read_input_tokens": 0,
                            "cache_creation_input_tokens": 0}


@pytest.mark.parametrize(("finish", "stop_reason"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
    ("content_filter", "refusal"), ("function_call", "tool_use"),
])
def test_finish_reason_table(finish: str, stop_reason: str) -> None:
    resp = {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": "hi"}}]}
    assert to_anthropic(resp)["stop_reason"] == stop_reason


def test_tool_calls_with_a_stop_finish_still_say_tool_use() -> None:
    resp = load_json("openai_response_tool_calls.json")
    resp["choices"][0]["finish_reason"] = "stop"
    assert to_anthropic(resp)["stop_reason"] == "tool_use"


def test_reasoning_content_without_blocks_becomes_an_unsigned_thinking_block() -> None:
    resp = {"id": "x", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "4", "reasoning_content": "2+2"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12,
                  "completion_tokens_details": {"reasoning_tokens": 6}}}
    out = to_anthropic(resp)
    assert out["content"] == [{"type": "thinking", "thinking": "2+2", "signature": ""},
                              {"type": "text", "text": "4"}]
    assert out["usage"] == {"input_tokens": 5, "output_tokens": 7,
                            "output_tokens_details": {"thinking_tokens": 6}}


def test_anthropic_message_survives_a_round_trip_through_the_canonical_form() -> None:
    original = load_json("anthropic_response_thinking_tool.json")
    back = to_anthropic(to_openai(original), model=original["model"])
    assert back["content"] == original["content"]
    assert back["stop_reason"] == original["stop_reason"]
    assert back["id"] == original["id"]
    expected_usage = {k: v for k, v in original["usage"].items() if k != "service_tier"}
    assert back["usage"] == expected_usage


def test_tool_arguments_that_are_not_json_are_a_malformed_response() -> None:
    resp = load_json("openai_response_tool_calls.json")
    resp["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"city": '
    with pytest.raises(MalformedUpstreamResponse):
        openai_to_anthropic_response(resp, model="m")
    with pytest.raises(MalformedUpstreamResponse):
        openai_to_anthropic_response({"choices": []}, model="m")
