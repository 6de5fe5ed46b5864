"""Conversations stay on the instance that served their first turn, without X-Echelon-Session.

A pool of two instances rotating round robin; the fake upstream answers ``[fake:<upstream
model>] <echo>``, so the two instances give different replies to the same messages. Round
robin takes the other instance for the next rotated request, and a pinned request does not
move the rotation: a second turn sent right after its first turn would be rotated onto the
other instance.
"""

from __future__ import annotations

from typing import Any

import pytest

from echelon_tools.fake_provider import TOOL_TRIGGER, FakeProvider

from ..conftest import MakeSidecar, RunningSidecar, anthropic_model, gemini_model, openai_model

SYSTEM = "You answer in one line."
OTHER = {"a": "b", "b": "a"}
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"},
                                                   "days": {"type": "integer"}},
                  "required": ["city", "days"]}
OPENAI_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": WEATHER_SCHEMA}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "The weather in a city.",
                    "input_schema": WEATHER_SCHEMA}]


def _config(fake: FakeProvider, upstream: str) -> dict[str, Any]:
    model = {"openai": openai_model, "anthropic": anthropic_model,
             "gemini": gemini_model}[upstream]
    return {
        "task_groups": {"pg": {"echelon1": {"models": ["a", "b"]}}},
        "polling_pools": {"pool": {"task_groups": ["pg"], "rotation_strategy": "round_robin"}},
        "models": {"a": model(fake, "up-a"), "b": model(fake, "up-b")},
    }


async def _pool(make_sidecar: MakeSidecar, fake: FakeProvider,
                upstream: str = "openai") -> RunningSidecar:
    return await make_sidecar(_config(fake, upstream))


# -- OpenAI SDK ------------------------------------------------------------------------------------

async def _chat(sc: RunningSidecar, messages: list[Any], **create: Any) -> tuple[str, Any]:
    """(the instance that served it, the assistant message as the SDK gives it)."""
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="pool", messages=messages, **create)
    return raw.headers["x-echelon-served-by"], raw.parse().choices[0].message


async def _chat_stream(sc: RunningSidecar, messages: list[Any]) -> tuple[str, str]:
    """(the instance that served the stream, the text assembled from its deltas)."""
    async with sc.openai.chat.completions.with_streaming_response.create(
            model="pool", messages=messages, stream=True) as response:
        served = response.headers["x-echelon-served-by"]
        stream = await response.parse()
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream
                        if chunk.choices])
    return served, text


async def _sessions(sc: RunningSidecar) -> int:
    return int((await sc.status())["sessions"].get("pool:pool", 0))


@pytest.mark.parametrize("upstream", ["openai", "anthropic", "gemini"])
async def test_a_second_turn_without_a_session_header_is_served_by_the_first_turns_instance(
    fake: FakeProvider, make_sidecar: MakeSidecar, upstream: str
) -> None:
    sc = await _pool(make_sidecar, fake, upstream)
    firsts = []
    for n in range(4):
        messages: list[Any] = [{"role": "system", "content": SYSTEM},
                               {"role": "user", "content": f"question {n}"}]
        first, reply = await _chat(sc, messages)
        firsts.append(first)
        assert reply.content == f"[fake:up-{first}] question {n}"
        messages += [reply, {"role": "user", "content": f"and then {n}?"}]
        second, reply = await _chat(sc, messages)  # rotation would give OTHER[first]
        assert second == first, f"conversation {n}: turn 2 left its instance"
        messages += [reply.model_dump(exclude_none=True),
                     {"role": "user", "content": "one more"}]
        assert (await _chat(sc, messages))[0] == first, f"conversation {n}: turn 3 moved"
    assert firsts == ["a", "b", "a", "b"], "first turns rotate: a pin never routes them"


async def test_two_conversations_that_open_alike_but_got_different_replies_keep_apart(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await _pool(make_sidecar, fake)
    opening = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hello"}]
    one, reply_one = await _chat(sc, list(opening))
    two, reply_two = await _chat(sc, list(opening))
    assert (one, two) == ("a", "b")
    assert reply_one.content != reply_two.content
    conv_one = [*opening, reply_one]
    conv_two = [*opening, reply_two]
    for turn in range(3):
        conv_two.append({"role": "user", "content": f"follow-up {turn}"})
        served, reply = await _chat(sc, conv_two)  # rotation would give a
        assert served == "b", f"turn {turn + 2} of the second conversation"
        conv_two.append(reply)
        assert (await _chat(sc, [{"role": "user", "content": f"filler {turn}"}]))[0] == "a"
        conv_one.append({"role": "user", "content": f"follow-up {turn}"})
        served, reply = await _chat(sc, conv_one)  # rotation would give b
        assert served == "a", f"turn {turn + 2} of the first conversation"
        conv_one.append(reply)
        assert (await _chat(sc, [{"role": "user", "content": f"other {turn}"}]))[0] == "b"


@pytest.mark.parametrize("upstream", ["openai", "anthropic", "gemini"])
async def test_a_streamed_first_turn_pins_its_conversation(
    fake: FakeProvider, make_sidecar: MakeSidecar, upstream: str
) -> None:
    sc = await _pool(make_sidecar, fake, upstream)
    fake.configure(stream_chunks=7)
    for n in range(3):
        messages: list[Any] = [{"role": "system", "content": SYSTEM},
                               {"role": "user", "content": f"tell me a long story {n}"}]
        first, text = await _chat_stream(sc, messages)
        assert text == f"[fake:up-{first}] tell me a long story {n}"
        messages += [{"role": "assistant", "content": text},
                     {"role": "user", "content": "go on"}]
        second, _ = await _chat_stream(sc, messages)
        assert second == first, f"conversation {n}: the streamed turn 2 left its instance"
        assert (await _chat(sc, messages))[0] == first


async def test_a_tool_call_reply_pins_the_turn_that_sends_its_result(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await _pool(make_sidecar, fake)
    for n in range(2):
        messages: list[Any] = [{"role": "user", "content": f"weather {n}? {TOOL_TRIGGER}"}]
        first, reply = await _chat(sc, messages, tools=OPENAI_TOOLS)
        assert reply.content is None and reply.tool_calls
        call = reply.tool_calls[0]
        messages += [reply, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
        second, _ = await _chat(sc, messages, tools=OPENAI_TOOLS)
        assert second == first, f"conversation {n}: the tool result left the instance"


async def test_a_session_header_wins_over_the_conversation_pin(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await _pool(make_sidecar, fake)
    messages: list[Any] = [{"role": "user", "content": "pinned by its reply"}]
    first, reply = await _chat(sc, messages)
    assert first == "a"
    assert await _sessions(sc) == 1
    session = {"X-Echelon-Session": "s-1"}
    assert (await _chat(sc, [{"role": "user", "content": "x"}], extra_headers=session))[0] \
        == "b"
    assert await _sessions(sc) == 2, "a first turn with a session id pins only its session"
    messages += [reply, {"role": "user", "content": "next"}]
    assert (await _chat(sc, messages, extra_headers=session))[0] == "b"
    assert (await _chat(sc, messages))[0] == "a"


async def test_single_turn_requests_still_rotate_through_a_pool_while_their_replies_pin(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await _pool(make_sidecar, fake)
    same = [{"role": "user", "content": "the same question every time"}]
    served = [(await _chat(sc, same))[0] for _ in range(6)]
    assert served == ["a", "b"] * 3
    assert await _sessions(sc) == 2, "the two replies differ: two pins, not six"


# -- Anthropic SDK ---------------------------------------------------------------------------------

async def _message(sc: RunningSidecar, messages: list[Any], **create: Any) -> tuple[str, Any]:
    raw = await sc.anthropic.messages.with_raw_response.create(
        model="pool", system=SYSTEM, max_tokens=2000, messages=messages, **create)
    return raw.headers["x-echelon-served-by"], await raw.parse()


async def _message_stream(sc: RunningSidecar, messages: list[Any],
                          **create: Any) -> tuple[str, Any]:
    async with sc.anthropic.messages.stream(model="pool", system=SYSTEM, max_tokens=2000,
                                            messages=messages, **create) as stream:
        final = await stream.get_final_message()
        served = stream.response.headers["x-echelon-served-by"]
    return served, final


@pytest.mark.parametrize("upstream", ["anthropic", "openai"])
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
async def test_an_anthropic_callers_conversation_stays_on_its_first_instance(
    fake: FakeProvider, make_sidecar: MakeSidecar, upstream: str, streamed: bool
) -> None:
    sc = await _pool(make_sidecar, fake, upstream)
    send = _message_stream if streamed else _message
    opening = [{"role": "user", "content": "hello"}]
    replies = {}
    for _ in range(2):  # the same opening twice: one conversation per instance
        served, reply = await send(sc, list(opening))
        replies[served] = reply
    assert set(replies) == {"a", "b"}
    for turn in range(2):
        for instance in ("b", "a"):
            history = [*opening, {"role": "assistant", "content": replies[instance].content},
                       {"role": "user", "content": f"follow-up {turn}"}]
            served, _ = await send(sc, history)  # rotation would give OTHER[instance]
            assert served == instance, f"turn {turn + 2} of the conversation on {instance}"
            filler = [{"role": "user", "content": f"filler {turn} {instance}"}]
            assert (await send(sc, filler))[0] == OTHER[instance]


async def test_an_anthropic_callers_thinking_and_tool_use_reply_pins_its_tool_result(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await _pool(make_sidecar, fake, "anthropic")
    thinking = {"type": "enabled", "budget_tokens": 1024}
    for n in range(2):
        messages: list[Any] = [{"role": "user", "content": f"weather {n}? {TOOL_TRIGGER}"}]
        first, reply = await _message_stream(sc, messages, tools=ANTHROPIC_TOOLS,
                                             thinking=thinking)
        kinds = [block.type for block in reply.content]
        assert kinds == ["thinking", "tool_use"], kinds
        use = reply.content[-1]
        messages += [{"role": "assistant", "content": reply.content},
                     {"role": "user", "content": [{"type": "tool_result",
                                                   "tool_use_id": use.id, "content": "sunny"}]}]
        second, _ = await _message(sc, messages, tools=ANTHROPIC_TOOLS, thinking=thinking)
        assert second == first, f"conversation {n}: the tool result left the instance"
