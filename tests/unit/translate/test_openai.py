from __future__ import annotations

from typing import Any

import pytest

from echelon_sidecar.translate import UnsupportedFeature, effort_for_budget, prepare_openai_request

from .helpers import assert_openai_request, deep, load_json


def req(**extra: Any) -> dict[str, Any]:
    return {
        "model": "plan_group.echelon1",
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def test_sets_the_upstream_model_and_leaves_everything_else_untouched() -> None:
    body = load_json("openai_request_full.json")
    out = prepare_openai_request(body, model="gpt-4.1", reasoning=False)
    assert out["model"] == "gpt-4.1"
    assert {k: v for k, v in out.items() if k != "model"} == {
        k: v for k, v in body.items() if k != "model"}
    assert out["messages"] is body["messages"]
    assert_openai_request(out)


def test_returns_the_input_itself_when_nothing_changes() -> None:
    body = req(model="gpt-4.1")
    assert prepare_openai_request(body, model="gpt-4.1", reasoning=True) is body


@pytest.mark.parametrize(
    ("budget", "effort"),
    [
        (1024, "low"),
        (2047, "low"),
        (2048, "medium"),
        (8191, "medium"),
        (8192, "high"),
        (65536, "high"),
    ],
)
def test_thinking_budget_becomes_reasoning_effort(budget: int, effort: str) -> None:
    body = req(thinking={"type": "enabled", "budget_tokens": budget})
    before = deep(body)
    out = prepare_openai_request(body, model="o4-mini", reasoning=True)
    assert out["reasoning_effort"] == effort == effort_for_budget(budget)
    assert "thinking" not in out
    assert body == before, "the canonical body must survive for the next fallback"


def test_caller_reasoning_effort_wins_over_the_canonical_budget() -> None:
    body = req(thinking={"type": "enabled", "budget_tokens": 30000}, reasoning_effort="low")
    assert (
        prepare_openai_request(body, model="o4-mini", reasoning=True)["reasoning_effort"] == "low"
    )


def test_thinking_on_a_model_without_reasoning_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature) as exc:
        prepare_openai_request(req(thinking={"type": "enabled", "budget_tokens": 2048}),
                               model="gpt-4.1", reasoning=False)
    assert (exc.value.feature, exc.value.provider) == ("thinking", "openai")


def test_disabled_or_adaptive_thinking_is_stripped_or_mapped() -> None:
    off = req(thinking={"type": "disabled"})
    assert "thinking" not in prepare_openai_request(off, model="gpt-4.1", reasoning=False)
    assert prepare_openai_request(off, model="gpt-5", reasoning=True)["reasoning_effort"] == "none"
    adaptive = prepare_openai_request(
        req(thinking={"type": "adaptive"}), model="gpt-5", reasoning=True
    )
    assert "thinking" not in adaptive
    assert "reasoning_effort" not in adaptive


def test_sidecar_only_message_keys_are_stripped_without_touching_the_input() -> None:
    assistant = {"role": "assistant", "content": "x", "reasoning_content": "r",
                 "thinking_blocks": [{"type": "thinking", "thinking": "r", "signature": "s"}]}
    tool = {"role": "tool", "tool_call_id": "c", "content": "boom", "is_error": True}
    body = req(messages=[{"role": "user", "content": "q"}, assistant, tool])
    before = deep(body)
    out = prepare_openai_request(body, model="deepseek-reasoner", reasoning=False)
    assert out["messages"][1] == {"role": "assistant", "content": "x", "reasoning_content": "r"}
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "c", "content": "boom"}
    assert out["messages"][0] is body["messages"][0]
    assert body == before
