from __future__ import annotations

from typing import Any

import orjson
import pytest

from echelon_sidecar.translate import (
    InvalidRequest,
    UnsupportedFeature,
    anthropic_to_openai_request,
    openai_to_anthropic_request,
)

from .helpers import assert_anthropic_request, assert_openai_request, deep, load_json


def inbound(body: dict[str, Any]) -> dict[str, Any]:
    out = anthropic_to_openai_request(body)
    assert_openai_request(out)
    return out


def outbound(body: dict[str, Any]) -> dict[str, Any]:
    out = openai_to_anthropic_request(body, model=body["model"], default_max_tokens=4096)
    assert_anthropic_request(out)
    return out


def areq(**extra: Any) -> dict[str, Any]:
    return {
        "model": "g",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
        **extra,
    }


def test_recorded_anthropic_request_becomes_a_canonical_request() -> None:
    body = load_json("anthropic_request_full.json")
    before = deep(body)
    out = inbound(body)
    assert body == before
    assert out["model"] == "plan_group.echelon1"
    assert out["max_completion_tokens"] == 2048
    system, user, assistant, paris, lyon, followup = out["messages"]
    assert system == {"role": "system", "content": [
        {"type": "text", "text": "You are a concise travel assistant."},
        {"type": "text", "text": "Always answer in English."}]}
    assert user["content"][1]["image_url"]["url"].startswith("data:image/png;base64,iVBORw0KGgo")
    assert user["content"][2] == {"type": "image_url", "image_url": {
        "url": "https://upload.example.org/photos/lyon-fourviere.jpg"}}
    assert (
        assistant["content"] == "The photos show Paris and Lyon. Let me check the weather in both."
    )
    assert assistant["reasoning_content"] == "Two cities: Paris and Lyon. Call the tool for each."
    assert assistant["thinking_blocks"] == [body["messages"][1]["content"][0]]
    assert [orjson.loads(c["function"]["arguments"]) for c in assistant["tool_calls"]] == [
        {"city": "Paris", "unit": "celsius"}, {"city": "Lyon", "unit": "celsius"}]
    assert paris == {"role": "tool", "tool_call_id": "toolu_01Paris7xQ2mV9kLw3bN",
                     "content": '{"temperature": 21, "sky": "clear"}'}
    assert lyon == {"role": "tool", "tool_call_id": "toolu_01Lyon4rT8pZ1cXy6hJq", "is_error": True,
                    "content": [{"type": "text", "text": "weather service unavailable for Lyon"}]}
    assert followup == {"role": "user", "content": [
        {"type": "text", "text": "Thanks! Which city is warmer right now?"}]}
    assert out["tools"][0]["function"]["parameters"] == body["tools"][0]["input_schema"]
    assert (out["tool_choice"], out["parallel_tool_calls"]) == ("auto", False)
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert out["stop"] == ["\n\nHuman:"]
    assert out["user"] == "user-1234"
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(("choice", "expected", "parallel"), [
    ({"type": "auto"}, "auto", None),
    ({"type": "any"}, "required", None),
    ({"type": "none"}, "none", None),
    ({"type": "tool", "name": "f", "disable_parallel_tool_use": True},
     {"type": "function", "function": {"name": "f"}}, False),
])
def test_tool_choice_table(choice: dict[str, Any], expected: Any, parallel: Any) -> None:
    out = inbound(
        areq(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice=choice)
    )
    assert out["tool_choice"] == expected
    assert out.get("parallel_tool_calls") == parallel


def test_structured_output_effort_sampling_and_documents() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    out = inbound(
        areq(
            output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "high"},
            temperature=0.5,
            top_p=0.9,
            top_k=40,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "title": "r.pdf",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": "JVBE",
                            },
                        },
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                        },
                    ],
                }
            ],
        )
    )
    assert out["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "response", "schema": schema, "strict": True}}
    assert out["reasoning_effort"] == "high"
    assert (out["temperature"], out["top_p"], out["top_k"]) == (0.5, 0.9, 40)
    assert out["messages"][0]["content"] == [
        {
            "type": "file",
            "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "r.pdf"},
        },
        {
            "type": "file",
            "file": {"file_data": "data:text/plain;base64,bm90ZXM=", "filename": "document.txt"},
        },
    ]


def test_unsigned_thinking_is_kept_as_text_but_not_as_a_replayable_block() -> None:
    out = inbound(
        areq(
            messages=[
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": ""},
                        {"type": "text", "text": "a"},
                    ],
                },
            ]
        )
    )
    assert out["messages"][1] == {"role": "assistant", "content": "a", "reasoning_content": "hmm"}


@pytest.mark.parametrize(
    ("extra", "feature"),
    [
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "web_search_20250305 tool",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [
                                    {
                                        "type": "image",
                                        "source": {"type": "url", "url": "https://x/y.png"},
                                    }
                                ],
                            }
                        ],
                    }
                ]
            },
            "image in tool_result",
        ),
        ({"thinking": {"type": "between_tools"}}, "thinking type between_tools"),
        ({"container": "container_1"}, "container"),
        (
            {"messages": [{"role": "user", "content": [{"type": "search_result", "source": "s"}]}]},
            "search_result block",
        ),
    ],
)
def test_what_the_canonical_form_cannot_hold_is_unsupported(
    extra: dict[str, Any], feature: str
) -> None:
    with pytest.raises(UnsupportedFeature) as exc:
        inbound(areq(**extra))
    assert exc.value.feature == feature


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "g", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        (
            {"model": "g", "max_tokens": 1, "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].role",
        ),
        ({"model": "g", "max_tokens": 1, "messages": "hi"}, "messages"),
        (
            {"model": "g", "max_tokens": 1, "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        (
            {
                "model": "g",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": {"type": "magic"},
            },
            "tool_choice",
        ),
    ],
)
def test_malformed_anthropic_requests_name_the_field(body: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        anthropic_to_openai_request(body)
    assert exc.value.field_path == path


# --------------------------------------------------------------------------- round trips


def _semantic(body: dict[str, Any]) -> dict[str, Any]:
    """What an OpenAI request means, ignoring representation choices that do not matter."""
    system: list[str] = []
    turns: list[tuple[str, Any]] = []
    for msg in body["messages"]:
        content = msg.get("content")
        if isinstance(content, str):
            content = [{"type": "text", "text": content}] if content else []
        parts = [
            {k: v for k, v in p.items() if k != "detail"}
            if p["type"] != "image_url"
            else {"type": "image_url", "image_url": {"url": p["image_url"]["url"]}}
            for p in content or []
        ]
        if msg["role"] in ("system", "developer"):
            system += [p["text"] for p in parts]
            continue
        calls = [(c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
                 for c in msg.get("tool_calls", ())]
        turns.append(
            (msg["role"], parts, calls, msg.get("tool_call_id"), bool(msg.get("is_error")))
        )
    return {
        "system": system, "turns": turns, "tools": body.get("tools"),
        "tool_choice": body.get("tool_choice"), "temperature": body.get("temperature"),
        "top_p": body.get("top_p"), "stop": body.get("stop"), "user": body.get("user"),
        "max": body.get("max_completion_tokens") or body.get("max_tokens"),
    }


def test_openai_request_round_trips_through_anthropic_to_an_equivalent_request() -> None:
    original = load_json("openai_request_full.json")
    back = inbound(outbound(original))
    assert _semantic(back) == _semantic(original)


def test_anthropic_request_round_trips_through_the_canonical_form() -> None:
    original = load_json("anthropic_request_full.json")
    back = outbound(inbound(original))
    for block in original["system"]:
        block.pop("cache_control", None)
    original.pop("stream")
    back.pop("stream")
    assert back == original


def test_a_tool_call_and_its_result_round_trip() -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "lookup", "arguments": '{"q": "x", "n": [1, 2]}'}}
    body = {
        "model": "m",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "found"},
        ],
    }
    back = inbound(outbound(body))
    assert back["messages"][1]["tool_calls"][0]["id"] == "call_1"
    assert orjson.loads(back["messages"][1]["tool_calls"][0]["function"]["arguments"]) == {
        "q": "x", "n": [1, 2]}
    assert back["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": "found"}
    assert back["tools"] == body["tools"]
