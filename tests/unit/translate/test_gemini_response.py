from __future__ import annotations

from typing import Any

import pytest
from google.genai import types as gt
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from echelon_sidecar.translate import (
    GeminiStreamToOpenAI,
    MalformedUpstreamResponse,
    gemini_to_openai_response,
)

from .helpers import assert_no_extras, load_json, load_sse, normalize_message, reassemble_openai


def to_openai(resp: dict[str, Any]) -> dict[str, Any]:
    gt.GenerateContentResponse.model_validate(resp)  # the input is a real Gemini shape
    out = gemini_to_openai_response(resp, model="plan_group.echelon1", created=1700000000)
    assert_no_extras(ChatCompletion.model_validate(out))
    return out


def stream(name: str, include_usage: bool = True) -> list[dict[str, Any]]:
    translator = GeminiStreamToOpenAI(model="plan_group.echelon1", include_usage=include_usage,
                                      created=1700000000)
    chunks: list[dict[str, Any]] = []
    for event in load_sse(name):
        data = event.json()
        gt.GenerateContentResponse.model_validate(data)
        chunks += translator.feed(data)
    chunks += translator.finish()
    assert translator.complete
    for chunk in chunks:
        assert_no_extras(ChatCompletionChunk.model_validate(chunk))
    return chunks


def candidate(parts: list[dict[str, Any]], finish: str | None = "STOP", index: int = 0) -> dict[str, Any]:
    cand: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": index}
    if finish:
        cand["finishReason"] = finish
    return cand


def test_recorded_function_call_response() -> None:
    out = to_openai(load_json("gemini_response_function_call.json"))
    assert out["id"] == "chatcmpl-mLX0aKvWIYqSz7IPv6jJ4Ak"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    msg = choice["message"]
    assert msg["content"] == "Let me look that up."
    assert msg["reasoning_content"].startswith("**Checking the forecast**")
    assert msg["tool_calls"] == [{
        "id": "call_mLX0aKvWIYqSz7IPv6jJ4Ak_0", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
        "extra_content": {"google": {"thought_signature": "CiQBcsjafE8rQ1wV2Y3eZgkL0n5x1Qm0Zx8K7h3P4s2vYk9a"}},
    }]
    assert out["usage"] == {"prompt_tokens": 120, "completion_tokens": 70, "total_tokens": 190,
                            "completion_tokens_details": {"reasoning_tokens": 45}}


@pytest.mark.parametrize(("reason", "finish"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"), ("LANGUAGE", "stop"), ("OTHER", "stop"),
    ("MALFORMED_FUNCTION_CALL", "stop"), ("FINISH_REASON_UNSPECIFIED", "stop"),
])
def test_finish_reason_table(reason: str, finish: str) -> None:
    resp = {"candidates": [candidate([{"text": "x"}], reason)], "responseId": "r"}
    assert to_openai(resp)["choices"][0]["finish_reason"] == finish


def test_blocked_prompt_gives_a_content_filter_choice() -> None:
    resp = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8,
                                                                         "totalTokenCount": 8}}
    out = to_openai(resp)
    assert out["choices"] == [{"index": 0, "message": {"role": "assistant", "content": None},
                               "finish_reason": "content_filter", "logprobs": None}]
    assert out["usage"]["prompt_tokens"] == 8


def test_candidates_become_choices_and_gemini_call_ids_are_kept() -> None:
    resp = {"responseId": "r1", "candidates": [
        candidate([{"text": "a"}]),
        candidate([{"functionCall": {"id": "fc-9", "name": "f", "args": {}}}], index=1)]}
    out = to_openai(resp)
    assert [c["index"] for c in out["choices"]] == [0, 1]
    assert out["choices"][1]["message"]["tool_calls"][0]["id"] == "fc-9"
    assert out["choices"][1]["finish_reason"] == "tool_calls"


def test_cached_and_tool_prompt_tokens_are_counted() -> None:
    resp = {"responseId": "r", "candidates": [candidate([{"text": "x"}])], "usageMetadata": {
        "promptTokenCount": 100, "toolUsePromptTokenCount": 20, "cachedContentTokenCount": 64,
        "candidatesTokenCount": 5, "totalTokenCount": 125}}
    assert to_openai(resp)["usage"] == {"prompt_tokens": 120, "completion_tokens": 5, "total_tokens": 125,
                                        "prompt_tokens_details": {"cached_tokens": 64}}


def test_a_response_without_candidates_or_feedback_is_malformed() -> None:
    with pytest.raises(MalformedUpstreamResponse):
        gemini_to_openai_response({"usageMetadata": {}}, model="m")


# --------------------------------------------------------------------------- streaming


def test_recorded_stream_reassembles_to_the_non_stream_translation() -> None:
    chunks = stream("gemini_stream_function_call.sse")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    whole = reassemble_openai(chunks)
    full = to_openai(load_json("gemini_response_function_call.json"))
    expected = {**full["choices"][0]["message"], "finish_reason": full["choices"][0]["finish_reason"]}
    assert normalize_message(whole["choices"][0]) == normalize_message(expected)
    assert whole["usage"] == full["usage"]
    assert {c["id"] for c in chunks} == {full["id"]}


def test_recorded_text_stream_with_cached_tokens() -> None:
    chunks = stream("gemini_stream_text.sse")
    whole = reassemble_openai(chunks)
    assert whole["choices"][0]["content"] == "Paris is warmer: 21 °C versus 18 °C in Lyon."
    assert whole["choices"][0]["finish_reason"] == "stop"
    assert whole["usage"] == {"prompt_tokens": 80, "completion_tokens": 14, "total_tokens": 94,
                              "prompt_tokens_details": {"cached_tokens": 64}}
    assert all(c["choices"] for c in stream("gemini_stream_text.sse", include_usage=False))


def test_stream_error_chunk_becomes_an_openai_error() -> None:
    translator = GeminiStreamToOpenAI(model="m")
    out = translator.feed({"error": {"code": 503, "message": "The model is overloaded.",
                                     "status": "UNAVAILABLE"}})
    assert out == [{"error": {"message": "The model is overloaded.", "type": "server_error",
                              "param": None, "code": "UNAVAILABLE"}}]


def test_truncated_stream_is_not_completed_by_finish() -> None:
    translator = GeminiStreamToOpenAI(model="m", include_usage=True)
    translator.feed(load_sse("gemini_stream_text.sse")[0].json())
    assert translator.complete is False
    assert translator.finish() == []
