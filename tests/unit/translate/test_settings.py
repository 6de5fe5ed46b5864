from __future__ import annotations

from typing import Any

import pytest

from echelon_sidecar.translate import (
    DEFAULT_THINKING_BUDGET,
    RequestSettings,
    UnsupportedFeature,
    apply_settings,
)

from .helpers import deep

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


def req(**extra: Any) -> dict[str, Any]:
    return {"model": "g", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_tier_temperature_applies_only_when_the_caller_gave_none() -> None:
    s = RequestSettings(temperature=0.2)
    assert apply_settings(req(), s)["temperature"] == 0.2
    assert apply_settings(req(temperature=None), s)["temperature"] == 0.2
    assert apply_settings(req(temperature=0.9), s)["temperature"] == 0.9


def test_function_calling_required_forces_a_tool_call() -> None:
    s = RequestSettings(function_calling="required")
    assert apply_settings(req(tools=TOOLS), s)["tool_choice"] == "required"
    assert apply_settings(req(tools=TOOLS, tool_choice="auto"), s)["tool_choice"] == "required"
    named = {"type": "function", "function": {"name": "f"}}
    assert apply_settings(req(tools=TOOLS, tool_choice=named), s)["tool_choice"] == named


def test_a_tool_less_request_cannot_meet_a_function_calling_required_tier() -> None:
    with pytest.raises(UnsupportedFeature) as exc:  # the engine skips the tier's instances
        apply_settings(req(), RequestSettings(function_calling="required"))
    assert exc.value.feature == "tools"
    assert "requires a tool call" in str(exc.value)


def test_a_caller_tool_choice_none_cannot_meet_a_function_calling_required_tier() -> None:
    with pytest.raises(UnsupportedFeature, match="tool_choice"):
        apply_settings(
            req(tools=TOOLS, tool_choice="none"), RequestSettings(function_calling="required")
        )


def test_function_calling_required_tightens_allowed_tools_auto() -> None:
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}
    out = apply_settings(
        req(tools=TOOLS, tool_choice=choice), RequestSettings(function_calling="required")
    )
    assert out["tool_choice"]["allowed_tools"]["mode"] == "required"
    assert choice["allowed_tools"]["mode"] == "auto"


def test_function_calling_auto_sets_auto_only_when_the_caller_gave_no_choice() -> None:
    s = RequestSettings(function_calling="auto")
    assert apply_settings(req(tools=TOOLS), s)["tool_choice"] == "auto"
    assert apply_settings(req(tools=TOOLS, tool_choice="none"), s)["tool_choice"] == "none"
    assert "tool_choice" not in apply_settings(req(), s)


def test_response_format_json_sets_json_object_when_the_caller_gave_none() -> None:
    s = RequestSettings(response_format="json")
    assert apply_settings(req(), s)["response_format"] == {"type": "json_object"}
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    assert apply_settings(req(response_format=schema), s)["response_format"] == schema


def test_thinking_sets_the_canonical_key() -> None:
    out = apply_settings(req(), RequestSettings(thinking_enabled=True, thinking_budget=2048))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    out = apply_settings(req(), RequestSettings(thinking_enabled=True))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": DEFAULT_THINKING_BUDGET}
    assert apply_settings(req(), RequestSettings(thinking_enabled=False))["thinking"] == {
        "type": "disabled"
    }
    assert "thinking" not in apply_settings(req(), RequestSettings())


def test_caller_thinking_or_reasoning_effort_wins_over_the_tier() -> None:
    s = RequestSettings(thinking_enabled=True, thinking_budget=9000)
    assert "thinking" not in apply_settings(req(reasoning_effort="low"), s)
    mine = {"type": "enabled", "budget_tokens": 1024}
    assert apply_settings(req(thinking=mine), s)["thinking"] == mine


def test_max_tokens_is_a_default() -> None:
    s = RequestSettings(max_tokens=500)
    assert apply_settings(req(), s)["max_completion_tokens"] == 500
    assert "max_completion_tokens" not in apply_settings(req(max_tokens=10), s)


def test_apply_settings_never_mutates_its_input() -> None:
    body = req(tools=TOOLS)
    before = deep(body)
    out = apply_settings(body, RequestSettings(temperature=0.1, function_calling="required",
                                               response_format="json", thinking_enabled=True,
                                               max_tokens=9))
    assert body == before
    assert out is not body


def test_settings_are_frozen() -> None:
    s = RequestSettings()
    with pytest.raises(AttributeError):
        s.temperature = 1.0  # type: ignore[misc]
