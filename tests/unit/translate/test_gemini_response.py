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


def candidate(
    parts: list[dict[str, Any]], finish: str | None = "STOP", index: int = 0
) -> dict[str, Any]:
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
    assert msg["tool_calls"] == [
        {
            "id": "call_mLX0aKvWIYqSz7IPv6jJ4Ak_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris","unit":"celsius"}'},
            "extra_content": {
                "google": {"thought_signature": "CiQBcsjafE8rQ1wV2Y3eZgkL0n5x1Qm0Zx8K7h3P4s2vYk9a"}
            },
        }
    ]
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
    assert to_openai(resp)["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 5,
        "total_tokens": 125,
        "prompt_tokens_details": {"cached_tokens": 64},
    }


def test_a_response_without_candidates_or_feedback_is_malformed() -> None:
    with pytest.raises(MalformedUpstreamResponse):
        gemini_to_openai_response({"usageMetadata": {}}, model="m")


# --------------------------------------------------------------------------- streaming


def test_recorded_stream_reassembles_to_the_non_stream_translation() -> None:
    chunks = stream("gemini_stream_function_call.sse")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    whole = reassemble_openai(chunks)
    full = to_openai(load_json("gemini_response_function_call.json"))
    expected = {
        **full["choices"][0]["message"],
        "finish_reason": full["choices"][0]["finish_reason"],
    }
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


# ------------------------------------------------------------------ parallel_tool_calls: false
# Gemini cannot be told not to call functions in parallel: it answers with several functionCall
# parts in one turn (candidates[].content.parts[].functionCall {name, args}; Gemini 3 puts the
# thought signature on the first one only). A caller that sent parallel_tool_calls: false gets
# the first call alone.

PARIS = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "CiQBcsjafE8rQ1wV2Y3eZgkL0n5x1Qm0Zx8K7h3P4s2vYk9a"}
LYON = {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}
CLOCK = {"functionCall": {"name": "get_time", "args": {"zone": "Europe/Paris"}}}
PARALLEL_USAGE = {"promptTokenCount": 40, "candidatesTokenCount": 30, "totalTokenCount": 70}


def parallel_answer() -> dict[str, Any]:
    return {"candidates": [candidate([{"text": "Let me check."}, PARIS, LYON, CLOCK])],
            "usageMetadata": PARALLEL_USAGE, "modelVersion": "gemini-2.5-flash",
            "responseId": "pAr4lLeLcAlLs9x"}


def one_call(**kwargs: Any) -> dict[str, Any]:
    resp = parallel_answer()
    gt.GenerateContentResponse.model_validate(resp)
    out = gemini_to_openai_response(resp, model="m", created=1700000000, **kwargs)
    assert_no_extras(ChatCompletion.model_validate(out))
    return out


def test_parallel_tool_calls_false_keeps_only_the_first_function_call_of_a_gemini_answer() -> None:
    assert len(one_call()["choices"][0]["message"]["tool_calls"]) == 3  # Gemini called three
    choice = one_call(parallel_tool_calls=False)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [{
        "id": "call_pAr4lLeLcAlLs9x_0", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        "extra_content": {"google": {"thought_signature": PARIS["thoughtSignature"]}},
    }]


def test_parallel_tool_calls_false_keeps_the_first_function_call_of_each_candidate() -> None:
    resp = {"responseId": "r2", "candidates": [candidate([PARIS, LYON]),
                                                candidate([CLOCK, PARIS], index=1)]}
    out = gemini_to_openai_response(resp, model="m", parallel_tool_calls=False)
    calls = [[c["function"]["name"] for c in ch["message"]["tool_calls"]] for ch in out["choices"]]
    assert calls == [["get_weather"], ["get_time"]]
    assert [ch["finish_reason"] for ch in out["choices"]] == ["tool_calls", "tool_calls"]


def _stream_of(bodies: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    translator = GeminiStreamToOpenAI(model="m", include_usage=True, created=1700000000, **kwargs)
    chunks: list[dict[str, Any]] = []
    for body in bodies:
        gt.GenerateContentResponse.model_validate(body)
        chunks += translator.feed(body)
    chunks += translator.finish()
    assert translator.complete
    for chunk in chunks:
        assert_no_extras(ChatCompletionChunk.model_validate(chunk))
    return chunks


def _chunk(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "candidates": [candidate(parts, finish)],
        "responseId": "pAr4lLeLcAlLs9x",
        "modelVersion": "gemini-2.5-flash",
    }
    if finish:
        body["usageMetadata"] = PARALLEL_USAGE
    return body


STREAMS = {
    # every call in the last chunk, with the finish reason
    "calls in one chunk": [_chunk([{"text": "Let me check."}], None),
                           _chunk([PARIS, LYON, CLOCK], "STOP")],
    # one call per chunk: the dropped ones come after the kept one was sent
    "a call per chunk": [_chunk([{"text": "Let me check."}], None), _chunk([PARIS], None),
                         _chunk([LYON], None), _chunk([CLOCK], "STOP")],
    # the finish reason alone, after the last call
    "finish chunk after the calls": [_chunk([{"text": "Let me check."}, PARIS], None),
                                     _chunk([LYON, CLOCK], None), _chunk([], "STOP")],
}


@pytest.mark.parametrize("bodies", STREAMS.values(), ids=STREAMS.keys())
def test_parallel_tool_calls_false_streams_only_the_first_function_call_as_tool_call_index_0(
    bodies: list[dict[str, Any]],
) -> None:
    assert len(reassemble_openai(_stream_of(bodies))["choices"][0]["tool_calls"]) == 3
    chunks = _stream_of(bodies, parallel_tool_calls=False)
    deltas = [
        call for c in chunks for ch in c["choices"] for call in ch["delta"].get("tool_calls") or ()
    ]
    assert [(d["index"], d["function"]["name"]) for d in deltas] == [(0, "get_weather")]
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]
    assert finishes == ["tool_calls"]
    whole = reassemble_openai(chunks)
    full = one_call(parallel_tool_calls=False)
    expected = {
        **full["choices"][0]["message"],
        "finish_reason": full["choices"][0]["finish_reason"],
    }
    assert normalize_message(whole["choices"][0]) == normalize_message(expected)
    assert whole["usage"] == full["usage"]
