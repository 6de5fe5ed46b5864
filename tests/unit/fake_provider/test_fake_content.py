"""Deterministic reply generation: echo, tool calls, JSON output, thinking, token counts."""

from __future__ import annotations

import orjson
import pytest

from echelon_tools.fake_provider import Prompt, ToolSpec, build_reply, example_for_schema
from echelon_tools.fake_provider.content import count_tokens, split_chars, split_text

WEATHER = ToolSpec(
    "get_weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "celsius": {"type": "boolean"},
            "unit": {"type": "string", "enum": ["metric", "imperial"]},
            "threshold": {"type": "number"},
            "note": {"type": "string"},
        },
        "required": ["city", "days", "celsius", "unit", "threshold"],
    },
)
SEARCH = ToolSpec("search", {"type": "object", "properties": {"q": {"type": "string"}},
                             "required": ["q"]})


def reply_for(prompt: Prompt, fixed: str | None = None, echo_words: int = 24):
    return build_reply(prompt, fixed_reply=fixed, echo_words=echo_words)


def test_reply_names_the_model_and_echoes_the_last_user_text() -> None:
    reply = reply_for(Prompt(model="gpt-4", last_user_text="hello  there\nworld", prompt_tokens=3))
    assert reply.text == "[fake:gpt-4] hello there world"
    assert reply.completion_tokens == 4
    assert reply.prompt_tokens == 3
    assert reply.tool_call is None and reply.thinking is None


def test_echo_is_truncated_to_echo_words() -> None:
    reply = reply_for(Prompt(model="m", last_user_text="a b c d e f"), echo_words=3)
    assert reply.text == "[fake:m] a b c …"


def test_fixed_reply_replaces_the_echo_but_keeps_the_model_tag() -> None:
    reply = reply_for(Prompt(model="m", last_user_text="ignored"), fixed="always this")
    assert reply.text == "[fake:m] always this"


def test_same_prompt_gives_the_same_reply() -> None:
    prompt = Prompt(model="m", last_user_text="x y z", tools=[WEATHER], force_tool=True)
    assert reply_for(prompt) == reply_for(prompt)


def test_trigger_word_calls_the_first_tool_with_arguments_satisfying_required_props() -> None:
    reply = reply_for(Prompt(model="m", last_user_text="please CALL_TOOL now",
                             tools=[WEATHER, SEARCH]))
    assert reply.tool_call is not None
    assert reply.tool_call.name == "get_weather"
    args = reply.tool_call.arguments
    assert set(args) == {"city", "days", "celsius", "unit", "threshold"}
    assert isinstance(args["city"], str) and args["city"]
    assert isinstance(args["days"], int) and not isinstance(args["days"], bool)
    assert args["celsius"] is True
    assert args["unit"] == "metric"
    assert isinstance(args["threshold"], float)


def test_forced_named_tool_is_the_one_called() -> None:
    reply = reply_for(Prompt(model="m", tools=[WEATHER, SEARCH], force_tool=True,
                             forced_tool_name="search"))
    assert reply.tool_call is not None and reply.tool_call.name == "search"
    assert reply.tool_call.arguments == {"q": "fake-q"}


def test_the_parallel_trigger_calls_every_other_declared_tool_in_the_same_turn() -> None:
    reply = reply_for(Prompt(model="m", last_user_text="CALL_PARALLEL_TOOLS",
                             tools=[WEATHER, SEARCH]))
    assert reply.tool_call is not None and reply.tool_call.name == "get_weather"
    assert [(c.name, c.arguments) for c in reply.parallel_calls] == [("search", {"q": "fake-q"})]
    assert reply.completion_tokens == (1 + 5) + (1 + 1)
    alone = reply_for(Prompt(model="m", last_user_text="CALL_PARALLEL_TOOLS", tools=[SEARCH]))
    assert [c.name for c in alone.parallel_calls] == ["search"]  # the only tool, twice
    assert reply_for(Prompt(model="m", last_user_text="CALL_TOOL",
                            tools=[WEATHER, SEARCH])).parallel_calls == []


def test_no_tool_call_without_tools_or_without_a_reason() -> None:
    assert reply_for(Prompt(model="m", last_user_text="CALL_TOOL")).tool_call is None
    assert reply_for(Prompt(model="m", last_user_text="hi", tools=[WEATHER])).tool_call is None


def test_json_output_is_a_json_object_and_follows_a_schema_when_given() -> None:
    plain = reply_for(Prompt(model="m", last_user_text="hi", json_output=True))
    assert orjson.loads(plain.text)["model"] == "m"
    schema = {"type": "object", "properties": {"answer": {"type": "string"},
                                               "score": {"type": "number"}},
              "required": ["answer", "score"], "additionalProperties": False}
    shaped = reply_for(Prompt(model="m", json_output=True, json_schema=schema))
    assert set(orjson.loads(shaped.text)) == {"answer", "score"}


def test_thinking_adds_a_thought_and_reasoning_tokens_capped_by_budget() -> None:
    reply = reply_for(Prompt(model="m", last_user_text="why is the sky blue", thinking=True))
    assert reply.thinking is not None and reply.thinking.startswith("[fake:m] thinking")
    assert reply.reasoning_tokens == count_tokens(reply.thinking)
    assert reply.output_tokens == reply.completion_tokens + reply.reasoning_tokens
    capped = reply_for(Prompt(model="m", last_user_text="why is the sky blue", thinking=True,
                              thinking_budget=2))
    assert capped.reasoning_tokens == 2


def test_max_tokens_truncates_and_marks_the_reply() -> None:
    reply = reply_for(Prompt(model="m", last_user_text="one two three four five", max_tokens=3))
    assert reply.truncated
    assert reply.completion_tokens == 3
    assert reply.text == "[fake:m] one two"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "fake"),
        ({"type": "integer", "minimum": 5}, 5),
        ({"type": "boolean"}, True),
        ({"type": ["null", "integer"]}, 1),
        ({"enum": ["b", "a"]}, "b"),
        ({"anyOf": [{"type": "boolean"}, {"type": "string"}]}, True),
        ({"type": "array", "items": {"type": "string"}, "minItems": 2}, ["fake", "fake"]),
        ({"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}}, "required": ["n"]},
         {"n": 1.5}),
        ({"type": "object", "properties": {"o": {"type": "object", "properties": {
            "s": {"type": "string"}}, "required": ["s"]}}, "required": ["o"]},
         {"o": {"s": "fake-s"}}),
    ],
)
def test_example_for_schema(schema: dict, expected: object) -> None:
    assert example_for_schema(schema) == expected


@pytest.mark.parametrize("chunks", [1, 2, 3, 5, 8, 50])
def test_split_text_concatenates_back_and_respects_the_chunk_count(chunks: int) -> None:
    text = "[fake:m] the quick brown fox jumps over the lazy dog"
    pieces = split_text(text, chunks)
    assert "".join(pieces) == text
    assert len(pieces) == min(chunks, len(text.split(" ")))
    assert all(pieces)


def test_split_chars_concatenates_back() -> None:
    text = '{"city": "fake-city", "days": 1}'
    for n in (1, 2, 5, 100):
        assert "".join(split_chars(text, n)) == text
