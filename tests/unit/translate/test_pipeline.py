"""The sidecar's whole path through the translators, for every caller format × upstream:
the caller gets the same answer shape whichever provider served it."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from echelon_sidecar.translate import (
    RequestSettings,
    UnsupportedFeature,
    anthropic_to_openai_request,
    anthropic_to_openai_response,
    apply_settings,
    gemini_to_openai_response,
    openai_to_anthropic_request,
    openai_to_anthropic_response,
    openai_to_gemini_request,
    prepare_openai_request,
)

from .helpers import (
    assert_anthropic_request,
    assert_no_extras,
    assert_openai_request,
    deep,
    load_json,
)

TIER = RequestSettings(temperature=None, function_calling="auto", thinking_enabled=True,
                       thinking_budget=2048)


def serve(canonical: dict[str, Any], upstream: str) -> dict[str, Any]:
    """Send `canonical` to `upstream` (the recorded answer stands in for the call)."""
    if upstream == "openai":
        assert_openai_request(prepare_openai_request(canonical, model="o4-mini", reasoning=True))
        return load_json("openai_response_tool_calls.json")
    if upstream == "anthropic":
        assert_anthropic_request(openai_to_anthropic_request(
            canonical, model="claude-sonnet-4-5", default_max_tokens=4096))
        return anthropic_to_openai_response(load_json("anthropic_response_thinking_tool.json"),
                                            model=canonical["model"])
    openai_to_gemini_request(canonical)
    return gemini_to_openai_response(  # the provider trims what Gemini cannot be told
        load_json("gemini_response_function_call.json"), model=canonical["model"],
        parallel_tool_calls=canonical.get("parallel_tool_calls") is not False)


@pytest.mark.parametrize("upstream", ["openai", "anthropic", "gemini"])
def test_anthropic_caller_gets_an_anthropic_message_from_any_upstream(upstream: str) -> None:
    body = load_json("anthropic_request_full.json")
    canonical = apply_settings(anthropic_to_openai_request(body), TIER)
    before = deep(canonical)
    answer = openai_to_anthropic_response(serve(canonical, upstream), model=body["model"])
    assert canonical == before, "the canonical request must survive for the next fallback"
    message = Message.model_validate(answer)
    assert_no_extras(message)
    assert message.stop_reason == "tool_use"
    assert message.model == "plan_group.echelon1"
    assert any(
        block.type == "tool_use" and block.name == "get_weather" for block in message.content
    )


@pytest.mark.parametrize("upstream", ["openai", "anthropic", "gemini"])
def test_openai_caller_gets_a_chat_completion_from_any_upstream(upstream: str) -> None:
    canonical = apply_settings(load_json("openai_request_full.json"), TIER)
    for key in ("temperature", "top_p", "max_completion_tokens"):
        canonical.pop(key)  # Anthropic thinking: temperature 1, budget below max_tokens
    completion = ChatCompletion.model_validate(serve(canonical, upstream))
    assert_no_extras(completion)
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls


def test_a_request_one_provider_cannot_serve_is_skipped_for_that_provider_only() -> None:
    canonical = anthropic_to_openai_request(load_json("anthropic_request_full.json"))
    # an image URL whose MIME type cannot be told: Anthropic and OpenAI fetch it, Gemini cannot
    canonical["messages"].append({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://cdn.example.org/render?id=7"}}]})
    with pytest.raises(UnsupportedFeature) as exc:
        openai_to_gemini_request(canonical)
    assert exc.value.provider == "gemini"
    assert_anthropic_request(openai_to_anthropic_request(
        canonical, model="claude-sonnet-4-5", default_max_tokens=4096))
    prepare_openai_request(canonical, model="o4-mini", reasoning=True)


def test_parallel_tool_calls_false_reaches_each_upstream_in_its_own_form() -> None:
    canonical = anthropic_to_openai_request(load_json("anthropic_request_full.json"))
    assert canonical["parallel_tool_calls"] is False  # from tool_choice.disable_parallel_tool_use
    openai = prepare_openai_request(canonical, model="o4-mini", reasoning=True)
    assert openai["parallel_tool_calls"] is False
    anthropic = openai_to_anthropic_request(canonical, model="claude-sonnet-4-5",
                                            default_max_tokens=4096)
    assert anthropic["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    gemini = openai_to_gemini_request(canonical)  # served: nothing to send, the answer is trimmed
    assert gemini == openai_to_gemini_request({**canonical, "parallel_tool_calls": True})
