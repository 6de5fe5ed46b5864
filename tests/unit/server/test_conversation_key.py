"""The implicit conversation key: a first turn's reply gives the key its second turn has."""

from __future__ import annotations

from typing import Any

import orjson

from echelon_sidecar.server.conversation import (
    REPLY_CHARS,
    TOOL_ARGUMENT_CHARS,
    ReplyText,
    read_conversation,
    reply_of_body,
)

SYSTEM = {"role": "system", "content": "be brief"}
USER = {"role": "user", "content": "hello"}


def _completion(message: dict[str, Any]) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", **message},
                         "finish_reason": "stop"}]}


def _message(content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
            "content": content, "stop_reason": "end_turn"}


def _openai_pin(opening: list[Any], message: dict[str, Any]) -> str:
    first = read_conversation(opening)
    assert first.turns == 1 and first.key is None
    return first.pin_key(reply_of_body(False, _completion(message)))


def _anthropic_pin(opening: list[Any], content: list[dict[str, Any]],
                   system: object = None) -> str:
    first = read_conversation(opening, system, anthropic=True)
    assert first.turns == 1 and first.key is None
    return first.pin_key(reply_of_body(True, _message(content)))


def _key(messages: list[Any], system: object = None, anthropic: bool = False) -> str | None:
    return read_conversation(messages, system, anthropic=anthropic).key


# -- OpenAI format ---------------------------------------------------------------------------------

def test_a_first_turns_reply_gives_the_key_its_second_turn_looks_up() -> None:
    pin = _openai_pin([SYSTEM, USER], {"content": "Hi there."})
    second = read_conversation([SYSTEM, USER, {"role": "assistant", "content": "Hi there."},
                                {"role": "user", "content": "and then?"}])
    assert second.turns == 2
    assert second.key == pin


def test_the_key_stays_the_same_for_every_later_turn() -> None:
    history = [SYSTEM, USER, {"role": "assistant", "content": "Hi there."},
               {"role": "user", "content": "and then?"}]
    key = _key(history)
    history += [{"role": "assistant", "content": "Then this."},
                {"role": "user", "content": "more"}]
    later = read_conversation(history)
    assert later.turns == 3
    assert later.key == key


def test_text_parts_and_surrounding_whitespace_do_not_change_the_key() -> None:
    pin = _openai_pin([USER], {"content": "Hello world.\n\nBye.\n", "refusal": None})
    parts = {"role": "assistant", "content": [{"type": "text", "text": "Hello world.\n\n"},
                                              {"type": "text", "text": "Bye."}]}
    assert _key([USER, parts, {"role": "user", "content": "x"}]) == pin
    trimmed = {"role": "assistant", "content": "Hello world.\n\nBye."}
    assert _key([USER, trimmed, {"role": "user", "content": "x"}]) == pin
    other = {"role": "assistant", "content": "Hello world. Bye."}
    assert _key([USER, other, {"role": "user", "content": "x"}]) != pin


def test_two_conversations_that_open_alike_get_different_keys_for_different_replies() -> None:
    one = _openai_pin([SYSTEM, USER], {"content": "[fake:a] hello"})
    two = _openai_pin([SYSTEM, USER], {"content": "[fake:b] hello"})
    assert one != two
    assert _openai_pin([SYSTEM, USER], {"content": "[fake:a] hello"}) == one


def test_the_opening_is_part_of_the_key() -> None:
    reply = {"content": "same"}
    keys = {_openai_pin([SYSTEM, USER], reply), _openai_pin([USER], reply),
            _openai_pin([{"role": "system", "content": "other"}, USER], reply),
            _openai_pin([SYSTEM, {"role": "user", "content": "bye"}], reply)}
    assert len(keys) == 4
    developer = {"role": "developer", "content": "be brief"}
    assert _openai_pin([developer, USER], reply) == _openai_pin([SYSTEM, USER], reply)


def test_tool_call_arguments_match_whatever_their_spacing_and_key_order() -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'}}
    pin = _openai_pin([USER], {"content": None, "tool_calls": [call]})
    back = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"days":2,"city":"Paris"}'}}
    tool = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert _key([USER, {"role": "assistant", "tool_calls": [back]}, tool]) == pin
    other = {**back, "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
    assert _key([USER, {"role": "assistant", "tool_calls": [other]}, tool]) != pin


def test_a_tool_result_is_the_callers_second_turn() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    turn = read_conversation([USER, {"role": "assistant", "content": None, "tool_calls": [call]},
                              {"role": "tool", "tool_call_id": "c", "content": "ok"}])
    assert turn.turns == 2 and turn.key is not None


def test_a_reply_with_text_is_known_by_its_text() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    pin = _openai_pin([USER], {"content": "Let me look.", "tool_calls": [call]})
    other = {"id": "d", "type": "function", "function": {"name": "g", "arguments": "{}"}}
    again = [USER, {"role": "assistant", "content": "Let me look.", "tool_calls": [other]},
             {"role": "user", "content": "x"}]
    assert _key(again) == pin


def test_an_opening_greeting_is_part_of_the_opening_not_the_first_reply() -> None:
    greeting = {"role": "assistant", "content": "Hi, how can I help?"}
    first = read_conversation([SYSTEM, greeting, USER])
    assert first.turns == 1 and first.key is None
    pin = first.pin_key(reply_of_body(False, _completion({"content": "Hello!"})))
    second = [SYSTEM, greeting, USER, {"role": "assistant", "content": "Hello!"},
              {"role": "user", "content": "x"}]
    assert _key(second) == pin
    assert _openai_pin([SYSTEM, USER], {"content": "Hello!"}) != pin


def test_a_request_with_a_session_id_is_not_keyed() -> None:
    history = [USER, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "x"}]
    named = read_conversation(history, keyed=False)
    assert named.turns == 2 and named.key is None


def test_only_the_first_reply_chars_of_the_reply_are_hashed() -> None:
    head = "x" * REPLY_CHARS
    assert _openai_pin([USER], {"content": head + " one"}) == \
        _openai_pin([USER], {"content": head + " two"})
    assert _openai_pin([USER], {"content": "y" + head}) != _openai_pin([USER], {"content": head})


# -- Anthropic format ------------------------------------------------------------------------------

def test_anthropic_thinking_blocks_and_moved_cache_markers_do_not_change_the_key() -> None:
    system = [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}]
    opening = [{"role": "user", "content": [
        {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]}]
    pin = _anthropic_pin(opening, [
        {"type": "thinking", "thinking": "[fake:a] thinking", "signature": "sig"},
        {"type": "text", "text": "Hi"}, {"type": "text", "text": " there."}], system)
    second = [{"role": "user", "content": [{"type": "text", "text": "hello"}]},
              {"role": "assistant", "content": [
                  {"type": "thinking", "thinking": "[fake:a] thinking", "signature": "sig"},
                  {"type": "text", "text": "Hi there.", "citations": None}]},
              {"role": "user", "content": [{"type": "text", "text": "next",
                                            "cache_control": {"type": "ephemeral"}}]}]
    assert _key(second, [{"type": "text", "text": "be brief"}], anthropic=True) == pin
    assert _key(second, "other system", anthropic=True) != pin


def test_anthropic_tool_use_input_matches_as_an_object_in_any_key_order() -> None:
    pin = _anthropic_pin([USER], [{"type": "tool_use", "id": "t1", "name": "get_weather",
                                   "input": {"city": "Paris", "days": 2}}])
    second = [USER, {"role": "assistant", "content": [
                  {"type": "tool_use", "id": "t1", "name": "get_weather",
                   "input": {"days": 2, "city": "Paris"}}]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                            "content": "sunny"}]}]
    assert _key(second, anthropic=True) == pin


def test_an_anthropic_string_content_reply_matches_its_text_blocks() -> None:
    pin = _anthropic_pin([USER], [{"type": "text", "text": "Hi there."}])
    second = [USER, {"role": "assistant", "content": "Hi there."},
              {"role": "user", "content": "x"}]
    assert _key(second, anthropic=True) == pin


def test_a_prefill_is_hashed_with_the_reply_that_continues_it() -> None:
    first = read_conversation([USER, {"role": "assistant", "content": "{"}], anthropic=True)
    assert first.turns == 1 and first.key is None
    pin = first.pin_key(reply_of_body(True, _message([{"type": "text", "text": '"a": 1}'}])))
    merged = [USER, {"role": "assistant", "content": '{"a": 1}'},
              {"role": "user", "content": "x"}]
    split = [USER, {"role": "assistant", "content": "{"},
             {"role": "assistant", "content": '"a": 1}'}, {"role": "user", "content": "x"}]
    assert _key(merged, anthropic=True) == pin
    assert _key(split, anthropic=True) == pin


# -- streamed replies ------------------------------------------------------------------------------

def _chunk(delta: dict[str, Any]) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": None}]}


def test_a_streamed_openai_reply_gives_the_key_of_the_whole_reply() -> None:
    collected = ReplyText()
    for delta in ({"role": "assistant", "content": ""}, {"content": "Hello"},
                  {"reasoning_content": "hmm"}, {"content": " world"}, {}):
        collected.openai_chunk(_chunk(delta))
    collected.openai_chunk({"id": "c1", "choices": [], "usage": {"total_tokens": 3}})
    streamed = collected.reply()
    assert streamed is not None
    first = read_conversation([USER])
    assert first.pin_key(streamed) == _openai_pin([USER], {"content": "Hello world"})


def test_streamed_openai_tool_call_deltas_give_the_key_of_the_whole_call() -> None:
    collected = ReplyText()
    collected.openai_chunk(_chunk({"tool_calls": [{"index": 0, "id": "c", "type": "function",
                                                    "function": {"name": "get_weather",
                                                                 "arguments": ""}}]}))
    for piece in ('{"city"', ': "Paris"', ', "days": 2}'):
        collected.openai_chunk(_chunk({"tool_calls": [{"index": 0,
                                                        "function": {"arguments": piece}}]}))
    streamed = collected.reply()
    assert streamed is not None
    call = {"id": "c", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"days": 2, "city": "Paris"}'}}
    assert read_conversation([USER]).pin_key(streamed) == _openai_pin(
        [USER], {"content": None, "tool_calls": [call]})


def test_a_streamed_anthropic_reply_gives_the_key_of_the_whole_message() -> None:
    collected = ReplyText()
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": _message([])}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "thinking", "thinking": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "Hi "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "text_delta", "text": "there."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_stop", {"type": "message_stop"}),
    ]
    for name, data in events:
        collected.anthropic_event(name, data)
    streamed = collected.reply()
    assert streamed is not None
    first = read_conversation([USER], anthropic=True)
    assert first.pin_key(streamed) == _anthropic_pin([USER], [{"type": "text",
                                                               "text": "Hi there."}])


def test_a_streamed_anthropic_tool_use_gives_the_key_of_its_input() -> None:
    collected = ReplyText()
    collected.anthropic_event("content_block_start", {
        "type": "content_block_start", "index": 0,
        "content_block": {"type": "tool_use", "id": "t", "name": "get_weather", "input": {}}})
    for piece in ('{"city": "Pa', 'ris", "days": 2}'):
        collected.anthropic_event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": piece}})
    streamed = collected.reply()
    assert streamed is not None
    assert read_conversation([USER], anthropic=True).pin_key(streamed) == _anthropic_pin(
        [USER], [{"type": "tool_use", "id": "t", "name": "get_weather",
                  "input": {"days": 2, "city": "Paris"}}])


def test_a_streamed_reply_is_collected_within_bounds() -> None:
    collected = ReplyText()
    for _ in range(10_000):
        collected.openai_chunk(_chunk({"content": "word " * 20}))
    streamed = collected.reply()
    assert streamed is not None
    assert 2 * REPLY_CHARS <= len(streamed.text) < 2 * REPLY_CHARS + 100
    whole = _openai_pin([USER], {"content": "word " * 200_000})
    assert read_conversation([USER]).pin_key(streamed) == whole

    tools = ReplyText()
    piece = orjson.dumps("x" * 1000).decode()
    for _ in range(TOOL_ARGUMENT_CHARS // 1000 + 2):
        tools.openai_chunk(_chunk({"tool_calls": [{"index": 0, "function": {
            "name": "f", "arguments": piece}}]}))
    assert tools.reply() is None, "arguments past the bound: no key, the turn is not pinned"
