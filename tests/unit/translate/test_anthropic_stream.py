from __future__ import annotations

import itertools
from typing import Any

import orjson
import pydantic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

from echelon_sidecar.translate import (
    JSON_RESPONSE_TOOL,
    AnthropicStreamToOpenAI,
    MalformedUpstreamResponse,
    OpenAIStreamToAnthropic,
    anthropic_to_openai_response,
    encode_anthropic_event,
    openai_to_anthropic_response,
)

from .helpers import (
    assert_no_extras,
    load_json,
    load_sse,
    normalize_message,
    reassemble_anthropic,
    reassemble_openai,
)

_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)


def to_openai_chunks(events: list[tuple[str, dict[str, Any]]], **kw: Any) -> list[dict[str, Any]]:
    translator = AnthropicStreamToOpenAI(model="plan_group.echelon1", created=1700000000, **kw)
    chunks = [c for name, data in events for c in translator.feed(name, data)] + translator.finish()
    for chunk in chunks:
        assert_no_extras(ChatCompletionChunk.model_validate(chunk))
    return chunks


def to_anthropic_events(chunks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    translator = OpenAIStreamToAnthropic(model="plan_group.echelon1")
    events = [e for chunk in chunks for e in translator.feed(chunk)] + translator.finish()
    for _, data in events:
        assert_no_extras(_EVENT.validate_python(data))
    return events


def recorded(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.event or "", e.json()) for e in load_sse(name)]


def openai_chunks(name: str) -> list[dict[str, Any]]:
    return [e.json() for e in load_sse(name) if e.data != "[DONE]"]


def test_recorded_text_stream_becomes_openai_chunks() -> None:
    chunks = to_openai_chunks(recorded("anthropic_stream_text.sse"), include_usage=True)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert {c["id"] for c in chunks} == {"msg_01TextStream9ZyQk7fLw3"}
    whole = reassemble_openai(chunks)
    assert whole["choices"][0]["content"] == "Hello! How can I help you today?"
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert whole["usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 12,
        "total_tokens": 37,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    }
    assert chunks[-1]["choices"] == []


def test_usage_chunk_only_when_asked() -> None:
    chunks = to_openai_chunks(recorded("anthropic_stream_text.sse"))
    assert all(c["choices"] for c in chunks)


def test_recorded_tool_use_stream_reassembles_to_the_non_stream_translation() -> None:
    chunks = to_openai_chunks(recorded("anthropic_stream_tool_use.sse"), include_usage=True)
    first_call = next(
        c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls")
    )
    assert first_call["choices"][0]["delta"]["tool_calls"] == [{
        "index": 0, "id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
        "function": {"name": "get_weather", "arguments": ""}}]
    whole = reassemble_openai(chunks)
    full = anthropic_to_openai_response(load_json("anthropic_response_thinking_tool.json"))
    expected = {
        **full["choices"][0]["message"],
        "finish_reason": full["choices"][0]["finish_reason"],
    }
    assert normalize_message(whole["choices"][0]) == normalize_message(expected)
    assert whole["usage"] == full["usage"]


def test_json_mode_tool_input_streams_as_content() -> None:
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_j",
                    "type": "message",
                    "role": "assistant",
                    "model": "c",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 5, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_j",
                    "name": JSON_RESPONSE_TOOL,
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "[1, 2]}"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 9},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    whole = reassemble_openai(to_openai_chunks(events))["choices"][0]
    assert orjson.loads(whole["content"]) == {"a": [1, 2]}
    assert whole["finish_reason"] == "stop"
    assert whole["tool_calls"] == []


def test_error_event_becomes_an_openai_error_object_and_pings_are_ignored() -> None:
    translator = AnthropicStreamToOpenAI()
    assert translator.feed("ping", {"type": "ping"}) == []
    assert translator.feed(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    ) == [
        {
            "error": {
                "message": "Overloaded",
                "type": "overloaded_error",
                "param": None,
                "code": "overloaded_error",
            }
        }
    ]


def test_a_truncated_stream_is_not_completed_by_finish() -> None:
    translator = AnthropicStreamToOpenAI(include_usage=True)
    for name, data in recorded("anthropic_stream_text.sse")[:5]:
        translator.feed(name, data)
    assert translator.finish() == []
    assert translator.complete is False


def test_delta_for_an_unknown_block_is_a_malformed_stream() -> None:
    with pytest.raises(MalformedUpstreamResponse):
        AnthropicStreamToOpenAI().feed(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 3,
                "delta": {"type": "text_delta", "text": "x"},
            },
        )


# --------------------------------------------------------------------------- OpenAI → Anthropic


def test_recorded_openai_tool_call_stream_becomes_the_anthropic_event_sequence() -> None:
    events = to_anthropic_events(openai_chunks("openai_stream_tool_calls.sse"))
    names = [n for n, _ in events]
    assert names == ["message_start",
                     "content_block_start", "content_block_delta", "content_block_delta",
                     "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    message = reassemble_anthropic(events)
    Message.model_validate(message)
    full = openai_to_anthropic_response(load_json("openai_response_tool_calls.json"),
                                        model="plan_group.echelon1")
    assert message["content"] == full["content"]
    assert message["stop_reason"] == full["stop_reason"] == "tool_use"
    assert message["usage"] == full["usage"]
    assert message["id"] == full["id"]


def test_an_anthropic_stream_survives_a_round_trip_through_openai_chunks() -> None:
    chunks = to_openai_chunks(recorded("anthropic_stream_tool_use.sse"), include_usage=True)
    message = reassemble_anthropic(to_anthropic_events(chunks))
    original = load_json("anthropic_response_thinking_tool.json")
    assert message["content"] == original["content"]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["output_tokens"] == 89
    assert message["usage"]["cache_read_input_tokens"] == 128


def test_reasoning_content_from_openai_compatible_servers_becomes_a_thinking_block() -> None:
    base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "deepseek"}
    chunks = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "reasoning_content": "Let me"}}
            ],
        },
        {**base, "choices": [{"index": 0, "delta": {"reasoning_content": " think."}}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "42"}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
    ]
    message = reassemble_anthropic(to_anthropic_events(chunks))
    assert message["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""},
        {"type": "text", "text": "42"},
    ]
    assert message["stop_reason"] == "max_tokens"


def test_empty_upstream_stream_still_gives_a_well_formed_message() -> None:
    translator = OpenAIStreamToAnthropic(model="m", message_id="msg_fixed")
    events = translator.finish()
    assert [n for n, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0][1]["message"]["id"] == "msg_fixed"
    assert translator.complete is False
    assert translator.finish() == []


def test_openai_error_chunk_becomes_an_anthropic_error_event() -> None:
    translator = OpenAIStreamToAnthropic(model="m")
    assert translator.feed({"error": {"message": "boom", "type": "server_error"}}) == [
        ("error", {"type": "error", "error": {"type": "api_error", "message": "boom"}})]


def test_interleaved_tool_call_fragments_are_refused() -> None:
    base = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": index, **fields}]}}],
        }

    translator = OpenAIStreamToAnthropic(model="m")
    translator.feed(call(0, id="a", function={"name": "f", "arguments": "{"}))
    translator.feed(call(1, id="b", function={"name": "g", "arguments": "{}"}))
    with pytest.raises(MalformedUpstreamResponse):
        translator.feed(call(0, function={"arguments": "}"}))


# --------------------------------------------------------------------------- properties

_text = st.text(min_size=1, max_size=40)
_args = st.dictionaries(
    st.text(max_size=8), st.one_of(st.integers(-(2**53), 2**53), st.text(max_size=10)), max_size=4
)


def _fragments(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=5)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@st.composite
def _openai_stream(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    text = draw(st.one_of(st.none(), _text))
    calls = draw(st.lists(_args, max_size=3))
    message: dict[str, Any] = {"role": "assistant", "content": text}
    base = {"id": "chatcmpl-p", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    for piece in _fragments(draw, text or ""):
        chunks.append({**base, "choices": [{"index": 0, "delta": {"content": piece}}]})
    tool_calls = []
    for i, args in enumerate(calls):
        arguments = orjson.dumps(args).decode()
        tool_calls.append({"id": f"call_{i}", "type": "function",
                           "function": {"name": f"f{i}", "arguments": arguments}})
        head = {"index": i, "id": f"call_{i}", "type": "function",
                "function": {"name": f"f{i}", "arguments": ""}}
        chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [head]}}]})
        for piece in _fragments(draw, arguments):
            frag = {"index": i, "function": {"arguments": piece}}
            chunks.append({**base, "choices": [{"index": 0, "delta": {"tool_calls": [frag]}}]})
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length"]))
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}
    chunks.append({**base, "choices": [], "usage": usage})
    full = {"id": "chatcmpl-p", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
    return chunks, full


@settings(max_examples=150, deadline=None)
@given(case=_openai_stream())
def test_any_fragmentation_of_an_openai_stream_reassembles_to_the_full_translation(
    case: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    chunks, full = case
    message = reassemble_anthropic(to_anthropic_events(chunks))
    expected = openai_to_anthropic_response(full, model="plan_group.echelon1")
    assert message["content"] == expected["content"]
    assert message["stop_reason"] == expected["stop_reason"]
    assert message["usage"] == expected["usage"]


@settings(max_examples=100, deadline=None)
@given(text=_text, cuts=st.lists(st.integers(0, 40), max_size=6))
def test_any_fragmentation_of_anthropic_text_deltas_gives_the_same_content(
    text: str, cuts: list[int]
) -> None:
    events = recorded("anthropic_stream_text.sse")
    start, rest = events[:3], events[5:]  # drop the two recorded text deltas
    bounds = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    deltas = [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": text[a:b]}})
              for a, b in itertools.pairwise(bounds) if b > a]
    whole = reassemble_openai(to_openai_chunks(start + deltas + rest))
    assert whole["choices"][0]["content"] == text


_EXTRA_DELTAS = st.sampled_from([
    {"content": "x", "role": "assistant"},
    {"content": "y", "refusal": None, "tool_calls": None, "function_call": None},
    {"content": "z", "reasoning_content": "hmm"},
    {"content": "w", "refusal": "no"},
    {"reasoning_content": "think"},
    {"content": ""},
    {"content": "v", "tool_calls": [{"index": 0, "id": "c", "function": {"name": "f"}}]},
])


@settings(max_examples=150, deadline=None)
@given(case=_openai_stream(), extra=st.lists(st.tuples(st.integers(0, 30), _EXTRA_DELTAS),
                                             max_size=4),
       finish_with_text=st.booleans())
def test_the_sse_bytes_are_those_of_the_events_whatever_the_chunks(
    case: tuple[list[dict[str, Any]], dict[str, Any]],
    extra: list[tuple[int, dict[str, Any]]], finish_with_text: bool,
) -> None:
    # feed_sse writes the common chunk (more text in the open text block) from a template:
    # byte for byte what encoding feed()'s events gives, for every other chunk too
    chunks = list(case[0])
    for at, delta in extra:
        chunks.insert(min(at, len(chunks) - 2) + 1, {"choices": [{"index": 0, "delta": delta}]})
    if finish_with_text:
        chunks.insert(len(chunks) - 2, {"choices": [{"index": 0, "delta": {"content": "end"},
                                                     "finish_reason": "stop"}]})
    plain = OpenAIStreamToAnthropic(model="m", message_id="msg_1")
    fast = OpenAIStreamToAnthropic(model="m", message_id="msg_1")
    for chunk in chunks:
        try:
            expected = b"".join(encode_anthropic_event(n, d) for n, d in plain.feed(chunk))
        except MalformedUpstreamResponse:
            with pytest.raises(MalformedUpstreamResponse):
                fast.feed_sse(chunk)
            return
        assert fast.feed_sse(chunk) == expected
    assert fast.finish() == plain.finish()
