"""The Anthropic wire format parses with the official `anthropic` SDK (non-stream and stream)."""

from __future__ import annotations

import json

import aiohttp
import anthropic
import pytest

from echelon_tools.fake_provider import FakeProvider

MESSAGES = [{"role": "user", "content": "hello there brave new world"}]
TOOLS = [{"name": "lookup", "description": "look things up",
          "input_schema": {"type": "object", "properties": {
              "query": {"type": "string"}, "limit": {"type": "integer"}},
              "required": ["query", "limit"]}}]


async def test_non_stream_message(claude: anthropic.AsyncAnthropic) -> None:
    msg = await claude.messages.create(model="claude-test", max_tokens=256,
                                       system="be brief", messages=MESSAGES)
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.id.startswith("msg_")
    assert msg.model == "claude-test"
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None
    (block,) = msg.content
    assert block.type == "text"
    assert block.text == "[fake:claude-test] hello there brave new world"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (7, 6)


async def test_stream_helper_yields_text_and_the_final_message(
    claude: anthropic.AsyncAnthropic, fp: FakeProvider
) -> None:
    async with claude.messages.stream(model="claude-test", max_tokens=256,
                                      messages=MESSAGES) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(pieces) == fp.settings.stream_chunks
    assert "".join(pieces) == "[fake:claude-test] hello there brave new world"
    assert final.content[0].type == "text"
    assert final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 6)


async def test_raw_stream_has_the_real_event_sequence(claude: anthropic.AsyncAnthropic) -> None:
    stream = await claude.messages.create(model="claude-test", max_tokens=256,
                                          messages=MESSAGES, stream=True)
    types = [event.type async for event in stream]
    assert types[0] == "message_start"
    assert types[1] == "content_block_start"
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert types.count("content_block_delta") == 5


async def test_wire_stream_names_each_event_and_sends_a_ping(fp: FakeProvider) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        f"{fp.anthropic_base_url}/v1/messages",
        headers={"x-api-key": "sk-fake-test-key", "anthropic-version": "2023-06-01"},
        json={"model": "claude-test", "max_tokens": 10, "messages": MESSAGES, "stream": True},
    ) as resp:
        raw = await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = [block.split("\n") for block in raw.strip().split("\n\n")]
    for lines in events:
        name, data = lines
        assert name.startswith("event: ") and data.startswith("data: ")
        assert json.loads(data[6:])["type"] == name[7:]
    names = [lines[0][7:] for lines in events]
    assert names.index("ping") == 2


async def test_forced_tool_use_non_stream(claude: anthropic.AsyncAnthropic) -> None:
    msg = await claude.messages.create(
        model="claude-test", max_tokens=256, messages=MESSAGES, tools=TOOLS,
        tool_choice={"type": "any"})
    assert msg.stop_reason == "tool_use"
    (block,) = msg.content
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert block.name == "lookup"
    assert block.input == {"query": "fake-query", "limit": 1}


async def test_tool_use_stream_accumulates_input_json(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="claude-test", max_tokens=256, tools=TOOLS,
        messages=[{"role": "user", "content": "find it CALL_TOOL"}],
    ) as stream:
        deltas = [e.delta.type async for e in stream if e.type == "content_block_delta"]
        final = await stream.get_final_message()
    assert set(deltas) == {"input_json_delta"}
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"query": "fake-query", "limit": 1}


async def test_thinking_block_with_signature_non_stream_and_stream(
    claude: anthropic.AsyncAnthropic,
) -> None:
    kwargs = {"model": "claude-test", "max_tokens": 4096, "messages": MESSAGES,
              "thinking": {"type": "enabled", "budget_tokens": 2048}}
    msg = await claude.messages.create(**kwargs)
    thinking, text = msg.content
    assert thinking.type == "thinking"
    assert thinking.thinking.startswith("[fake:claude-test] thinking about:")
    assert thinking.signature
    assert text.type == "text"
    assert msg.usage.output_tokens > 6
    async with claude.messages.stream(**kwargs) as stream:
        deltas = [e.delta.type async for e in stream if e.type == "content_block_delta"]
        final = await stream.get_final_message()
    assert "thinking_delta" in deltas and "signature_delta" in deltas
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == thinking.thinking
    assert final.content[0].signature == thinking.signature


async def test_thinking_budget_not_below_max_tokens_is_a_400(
    claude: anthropic.AsyncAnthropic,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await claude.messages.create(model="claude-test", max_tokens=1500,
                                     messages=MESSAGES,
                                     thinking={"type": "enabled", "budget_tokens": 2048})
    assert info.value.body["error"]["type"] == "invalid_request_error"


async def test_missing_anthropic_version_is_a_400_in_anthropic_shape(fp: FakeProvider) -> None:
    async with aiohttp.ClientSession() as session, session.post(
        f"{fp.anthropic_base_url}/v1/messages",
        headers={"x-api-key": "sk-fake-test-key"},
        json={"model": "claude-test", "max_tokens": 10, "messages": MESSAGES},
    ) as resp:
        body = await resp.json()
    assert resp.status == 400
    assert body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error",
                             "message": "anthropic-version: header is required"}


async def test_wrong_key_is_an_authentication_error(fp: FakeProvider) -> None:
    client = anthropic.AsyncAnthropic(base_url=fp.anthropic_base_url, api_key="nope",
                                      max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        await client.messages.create(model="claude-test", max_tokens=10, messages=MESSAGES)
    await client.close()
    assert info.value.body["error"]["type"] == "authentication_error"


async def test_models_list_in_anthropic_shape(
    claude: anthropic.AsyncAnthropic, fp: FakeProvider
) -> None:
    ids = [m.id async for m in claude.models.list()]
    assert ids == list(fp.settings.models)


async def test_upstream_records_tool_choice_and_headers(
    claude: anthropic.AsyncAnthropic, fp: FakeProvider
) -> None:
    await claude.messages.create(model="claude-x", max_tokens=64, messages=MESSAGES,
                                 tools=TOOLS, tool_choice={"type": "tool", "name": "lookup"})
    record = fp.last_request("claude-x")
    assert record is not None
    assert record.body["tool_choice"] == {"type": "tool", "name": "lookup"}
    # this SDK version sends the key as `Authorization: Bearer`; older ones as `x-api-key`
    sent = record.headers.get("x-api-key") or record.headers["authorization"].removeprefix(
        "Bearer "
    )
    assert sent == "sk-fake-test-key"
    assert "anthropic-version" in record.headers
