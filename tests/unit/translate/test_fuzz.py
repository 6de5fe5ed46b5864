"""Malformed input gives a TranslationError, never a crash: recorded requests with one or
two values replaced anywhere by values of other types (a 400 or a skipped instance), and
recorded upstream responses and stream events mutated the same way (a malformed response)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echelon_sidecar.translate import (
    AnthropicStreamToOpenAI,
    GeminiStreamToOpenAI,
    OpenAIStreamToAnthropic,
    RequestSettings,
    TranslationError,
    anthropic_to_openai_request,
    anthropic_to_openai_response,
    apply_settings,
    gemini_to_openai_response,
    openai_to_anthropic_request,
    openai_to_anthropic_response,
    openai_to_gemini_request,
    prepare_openai_request,
)

from .helpers import deep, load_json, load_sse

_junk = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4),
                  st.just([]), st.just({}), st.just([1, "x"]), st.just({"type": "x"}))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    value = deep(value)
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return value


OPENAI = load_json("openai_request_full.json")
ANTHROPIC = load_json("anthropic_request_full.json")

TRANSLATORS: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], Any]]] = [
    ("openai->anthropic", OPENAI,
     lambda b: openai_to_anthropic_request(b, model="c", default_max_tokens=100)),
    ("openai->gemini", OPENAI, openai_to_gemini_request),
    ("openai->openai", OPENAI, lambda b: prepare_openai_request(b, model="m", reasoning=True)),
    ("anthropic->canonical", ANTHROPIC, anthropic_to_openai_request),
    ("settings", OPENAI, lambda b: apply_settings(b, RequestSettings(
        temperature=0.1, function_calling="required", response_format="json",
        thinking_enabled=True, max_tokens=50))),
]


@pytest.mark.parametrize(
    ("name", "payload", "translate"), TRANSLATORS, ids=[t[0] for t in TRANSLATORS]
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_one_wrong_value_anywhere_is_a_translation_error_not_a_crash(
    name: str,
    payload: dict[str, Any],
    translate: Callable[[dict[str, Any]], Any],
    data: st.DataObject,
) -> None:
    body = payload
    for _ in range(data.draw(st.integers(1, 2))):
        path = data.draw(st.sampled_from(_paths(body)))
        body = _replace(body, path, data.draw(_junk))
    try:
        translate(body)
    except TranslationError:
        pass


def _anthropic_stream(events: list[dict[str, Any]]) -> None:
    translator = AnthropicStreamToOpenAI(include_usage=True)
    for data in events:
        translator.feed(str(data.get("type")) if isinstance(data, dict) else "x", data)
    translator.finish()


def _openai_stream(chunks: list[dict[str, Any]]) -> None:
    translator = OpenAIStreamToAnthropic(model="m")
    for chunk in chunks:
        translator.feed(chunk)
    translator.finish()


def _gemini_stream(chunks: list[dict[str, Any]]) -> None:
    translator = GeminiStreamToOpenAI(model="m", include_usage=True)
    for chunk in chunks:
        translator.feed(chunk)
    translator.finish()


UPSTREAM: list[tuple[str, Any, Callable[[Any], Any]]] = [
    (
        "anthropic response",
        load_json("anthropic_response_thinking_tool.json"),
        lambda r: anthropic_to_openai_response(r),
    ),
    (
        "openai response",
        load_json("openai_response_tool_calls.json"),
        lambda r: openai_to_anthropic_response(r, model="m"),
    ),
    (
        "gemini response",
        load_json("gemini_response_function_call.json"),
        lambda r: gemini_to_openai_response(r, model="m"),
    ),
    (
        "anthropic stream",
        [e.json() for e in load_sse("anthropic_stream_tool_use.sse")],
        _anthropic_stream,
    ),
    (
        "openai stream",
        [e.json() for e in load_sse("openai_stream_tool_calls.sse") if e.data != "[DONE]"],
        _openai_stream,
    ),
    (
        "gemini stream",
        [e.json() for e in load_sse("gemini_stream_function_call.sse")],
        _gemini_stream,
    ),
]


@pytest.mark.parametrize(("name", "payload", "translate"), UPSTREAM, ids=[u[0] for u in UPSTREAM])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_malformed_upstream_body_is_a_malformed_response_not_a_crash(
    name: str, payload: Any, translate: Callable[[Any], Any], data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(_paths(payload)))
    try:
        translate(_replace(payload, path, data.draw(_junk)))
    except TranslationError:
        pass
