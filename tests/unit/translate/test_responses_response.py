"""Canonical chat answers → Response objects, and canonical stream chunks → the Responses event
stream; both checked against the openai SDK's own types, and against each other."""

from __future__ import annotations

import copy
import json
from typing import Any

import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from echelon_sidecar.translate import (
    AnthropicStreamToOpenAI,
    GeminiStreamToOpenAI,
    MalformedUpstreamResponse,
    OpenAIStreamToResponses,
    anthropic_to_openai_response,
    gemini_to_openai_response,
    openai_to_responses_response,
    responses_echo,
    usage_to_responses,
)

from .helpers import assert_no_extras, load_json, load_sse

ECHO = responses_echo({"input": "hi", "instructions": "Be brief."})
_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
_RANDOM = ("id", "created_at", "completed_at")


def check_response(body: dict[str, Any]) -> Response:
    response = Response.model_validate(body)
    assert_no_extras(response, {"store"})
    return response


def completion(message: dict[str, Any], finish: str = "stop",
               usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
            "model": "up-model", "choices": [{"index": 0, "message": {
                "role": "assistant", **message}, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE_CHUNK = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3,
                                        "total_tokens": 10}}


def events_of(chunks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    translator = OpenAIStreamToResponses(ECHO, model="up-model")
    events = [e for c in chunks for e in translator.feed(c)] + translator.finish()
    assert translator.finish() == [], "the end is written once"
    for name, data in events:
        assert data["type"] == name
        # OpenAI's arguments.done event names the function too (the SDK's type lags)
        allowed = {"store", "name"} if name == "response.function_call_arguments.done" else {
            "store"}
        assert_no_extras(_EVENT.validate_python(data), allowed)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    return events


def reassemble(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """What a client builds from the events; checked against the final response's output."""
    output: dict[int, dict[str, Any]] = {}
    assert [name for name, _ in events[:2]] == ["response.created", "response.in_progress"]
    for name, data in events[2:-1]:
        index = data.get("output_index")
        if name == "response.output_item.added":
            assert index == len(output), "items arrive in order"
            assert all(item["status"] != "in_progress" for item in output.values()), \
                "the previous item is done before the next one starts"
            output[index] = copy.deepcopy(data["item"])
        elif name == "response.content_part.added":
            assert data["content_index"] == len(output[index]["content"])
            output[index]["content"].append(copy.deepcopy(data["part"]))
        elif name == "response.output_text.delta":
            output[index]["content"][data["content_index"]]["text"] += data["delta"]
        elif name == "response.refusal.delta":
            output[index]["content"][data["content_index"]]["refusal"] += data["delta"]
        elif name == "response.function_call_arguments.delta":
            output[index]["arguments"] += data["delta"]
        elif name == "response.output_item.done":
            built = {**output[index], "status": data["item"]["status"]}
            assert built == data["item"]
            output[index] = data["item"]
    final: dict[str, Any] = events[-1][1]["response"]
    assert final["output"] == [output[i] for i in sorted(output)]
    return final


def without_ids(response: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The response without its random ids and times (nor ``keys`` of its items); function
    arguments parsed (whitespace in JSON text is not meaningful)."""
    out = {k: v for k, v in response.items() if k not in _RANDOM}
    out["output"] = [{k: json.loads(v) if k == "arguments" else v for k, v in item.items()
                      if k not in ("id", *keys)} for item in response["output"]]
    return out


# -- whole answers ---------------------------------------------------------------------------------

def test_a_text_answer_becomes_a_completed_message() -> None:
    body = openai_to_responses_response(completion({"content": "Paris."}), ECHO,
                                        response_id="resp_1")
    response = check_response(body)
    assert (response.id, response.object, response.status) == ("resp_1", "response", "completed")
    assert response.created_at == 1700000000 and response.model == "up-model"
    assert response.output_text == "Paris." and response.instructions == "Be brief."
    (item,) = response.output
    assert item.type == "message" and item.id.startswith("msg_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens,
            response.usage.total_tokens) == (7, 3, 10)
    assert body["store"] is False and response.incomplete_details is None


def test_tool_calls_become_function_call_items() -> None:
    body = openai_to_responses_response(completion({"content": "Checking.", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_time", "arguments": {"tz": "CET"}}}]}, "tool_calls"), ECHO)
    response = check_response(body)
    message, first, second = response.output
    assert message.type == "message"
    assert first.type == "function_call" and second.type == "function_call"
    assert (first.call_id, first.name, first.arguments) == ("call_1", "get_weather",
                                                           '{"city":"Paris"}')
    assert second.arguments == '{"tz":"CET"}' and first.id and first.id.startswith("fc_")
    assert response.status == "completed"


@pytest.mark.parametrize(("finish", "reason"), [("length", "max_output_tokens"),
                                                ("content_filter", "content_filter")])
def test_a_cut_answer_is_incomplete_with_its_reason(finish: str, reason: str) -> None:
    response = check_response(openai_to_responses_response(
        completion({"content": "Par"}, finish), ECHO))
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == reason
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]


def test_a_refusal_and_text_parts_and_an_empty_answer() -> None:
    response = check_response(openai_to_responses_response(completion(
        {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
         "refusal": "no"}), ECHO))
    (item,) = response.output
    assert [part.type for part in item.content] == ["output_text", "refusal"]  # type: ignore[union-attr]
    assert response.output_text == "ab"
    empty = check_response(openai_to_responses_response(completion({"content": None}), ECHO))
    assert empty.output == [] and empty.status == "completed"


def test_usage_details_map_to_the_responses_names() -> None:
    assert usage_to_responses({
        "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 12}}) == {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0},
        "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 120}
    assert usage_to_responses(None) is None


def test_an_answer_without_choices_is_malformed() -> None:
    with pytest.raises(MalformedUpstreamResponse):
        openai_to_responses_response({"object": "chat.completion", "choices": []}, ECHO)
    with pytest.raises(MalformedUpstreamResponse):
        openai_to_responses_response({"choices": [{"message": {"tool_calls": [3]}}]}, ECHO)


# -- streams ---------------------------------------------------------------------------------------

def test_a_text_stream_is_the_documented_sequence_and_reassembles() -> None:
    events = events_of([chunk({"role": "assistant", "content": ""}), chunk({"content": "Par"}),
                        chunk({"content": "is."}), chunk({}, "stop"), USAGE_CHUNK])
    assert [name for name, _ in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    final = reassemble(events)
    check_response(final)
    assert final["status"] == "completed"
    assert final["usage"]["output_tokens"] == 3, "the usage that came after the finish reason"
    whole = openai_to_responses_response(completion({"content": "Paris."}), ECHO,
                                         model="up-model")
    assert without_ids(final) == without_ids(whole)
    created = events[0][1]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert created["id"] == final["id"]


def test_text_then_tool_calls_close_each_item_before_the_next() -> None:
    events = events_of([
        chunk({"role": "assistant", "content": "Checking."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "a", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                               "function": {"name": "b", "arguments": "{}"}}]}),
        chunk({}, "tool_calls"), USAGE_CHUNK])
    final = reassemble(events)
    assert [(i["type"], i.get("arguments")) for i in final["output"]] == [
        ("message", None), ("function_call", '{"x":1}'), ("function_call", "{}")]
    (first_done,) = [d for n, d in events if n == "response.function_call_arguments.done"
                     and d["output_index"] == 1]
    assert first_done["arguments"] == '{"x":1}' and first_done["name"] == "a"
    names = [n for n, _ in events]
    assert names.index("response.output_item.done") < names.index("response.output_item.added",
                                                                  3)
    check_response(final)


def test_a_refusal_streams_as_a_refusal_part() -> None:
    events = events_of([chunk({"refusal": "I can"}), chunk({"refusal": "not."}),
                        chunk({}, "stop")])
    assert "response.refusal.done" in [n for n, _ in events]
    final = reassemble(events)
    assert final["output"][0]["content"] == [{"type": "refusal", "refusal": "I cannot."}]
    assert final["usage"] is None


def test_a_stream_cut_by_the_token_limit_ends_with_response_incomplete() -> None:
    events = events_of([chunk({"content": "Par"}), chunk({}, "length"), USAGE_CHUNK])
    name, data = events[-1]
    assert name == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert reassemble(events)["output"][0]["status"] == "incomplete"


def test_a_failure_writes_error_then_response_failed_once() -> None:
    translator = OpenAIStreamToResponses(ECHO, model="m")
    translator.feed(chunk({"content": "Par"}))
    events = translator.fail("the upstream stream broke")
    assert [name for name, _ in events] == ["error", "response.failed"]
    for _, data in events:
        _EVENT.validate_python(data)
    assert events[0][1]["message"] == "the upstream stream broke"
    failed = events[1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert failed["output"][0]["type"] == "message", "what was produced so far"
    assert translator.fail("again") == [] and translator.finish() == []
    assert translator.feed(chunk({"content": "late"})) == []


def test_a_failure_before_any_chunk_still_opens_the_response() -> None:
    events = OpenAIStreamToResponses(ECHO, model="m").fail("broke")
    assert [name for name, _ in events] == ["response.created", "response.in_progress",
                                            "error", "response.failed"]


def test_a_tool_call_continued_after_another_item_started_is_malformed() -> None:
    translator = OpenAIStreamToResponses(ECHO, model="m")
    translator.feed(chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}))
    translator.feed(chunk({"content": "text"}))
    with pytest.raises(MalformedUpstreamResponse):
        translator.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))


def test_recorded_upstream_streams_reassemble_to_the_whole_translation() -> None:
    # Anthropic: thinking (dropped), text, then a tool call
    anthropic = AnthropicStreamToOpenAI(model="up", include_usage=True, created=1)
    chunks = [c for e in load_sse("anthropic_stream_tool_use.sse")
              for c in anthropic.feed(e.event or "", e.json())] + anthropic.finish()
    final = reassemble(events_of(chunks))
    whole = openai_to_responses_response(anthropic_to_openai_response(
        load_json("anthropic_response_thinking_tool.json"), model="up-model"), ECHO)
    assert without_ids(final) == without_ids(whole)
    assert [item["type"] for item in final["output"]] == ["message", "function_call"]
    # Gemini: a function call
    gemini = GeminiStreamToOpenAI(model="up", include_usage=True)
    chunks = [c for e in load_sse("gemini_stream_function_call.sse")
              for c in gemini.feed(e.json())] + gemini.finish()
    final = reassemble(events_of(chunks))
    whole = openai_to_responses_response(gemini_to_openai_response(
        load_json("gemini_response_function_call.json"), model="up-model"), ECHO)
    assert without_ids(final, "call_id") == without_ids(whole, "call_id")
