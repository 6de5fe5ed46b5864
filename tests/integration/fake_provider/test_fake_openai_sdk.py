"""The OpenAI wire format parses with the official `openai` SDK (non-stream and stream)."""

from __future__ import annotations

import json

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

USER = [{"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there brave new world"}]
TOOLS = [{"type": "function", "function": {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}, "metric": {"type": "boolean"}},
        "required": ["city", "days", "metric"]}}}]


async def test_non_stream_reply_names_the_model_and_counts_words(oai: openai.AsyncOpenAI) -> None:
    resp = await oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert resp.object == "chat.completion"
    assert resp.id.startswith("chatcmpl-")
    assert resp.model == "gpt-4o"
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "[fake:gpt-4o] hello there brave new world"
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (
        7, 6, 13)


async def test_stream_with_include_usage_ends_with_a_usage_chunk(
    oai: openai.AsyncOpenAI, fp: FakeProvider
) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    text_chunks = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(text_chunks) == fp.settings.stream_chunks
    assert "".join(text_chunks) == "[fake:gpt-4o] hello there brave new world"
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.total_tokens == 13
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_stream_helper_assembles_the_final_completion(oai: openai.AsyncOpenAI) -> None:
    async with oai.chat.completions.stream(
        model="gpt-4o", messages=USER, tools=TOOLS, tool_choice="required",
        stream_options={"include_usage": True},
    ) as stream:
        final = await stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "fake-city", "days": 1, "metric": True}
    assert final.choices[0].finish_reason == "tool_calls"


async def test_required_tool_choice_returns_a_tool_call(oai: openai.AsyncOpenAI) -> None:
    resp = await oai.chat.completions.create(model="gpt-4o", messages=USER, tools=TOOLS,
                                             tool_choice="required")
    message = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    (call,) = message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"city": "fake-city", "days": 1, "metric": True}


async def test_trigger_word_calls_a_tool_in_a_stream(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "weather? CALL_TOOL"}],
        tools=TOOLS, stream=True)
    name, args = None, ""
    async for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            assert call.index == 0
            name = name or (call.function.name if call.function else None)
            args += (call.function.arguments or "") if call.function else ""
    assert name == "get_weather"
    assert json.loads(args)["city"] == "fake-city"


async def test_json_response_format_yields_json_text(oai: openai.AsyncOpenAI) -> None:
    resp = await oai.chat.completions.create(
        model="gpt-4o", messages=USER, response_format={"type": "json_object"})
    assert json.loads(resp.choices[0].message.content or "")["model"] == "gpt-4o"


async def test_reasoning_effort_reports_reasoning_tokens(oai: openai.AsyncOpenAI) -> None:
    resp = await oai.chat.completions.create(model="o3", messages=USER, reasoning_effort="high")
    usage = resp.usage
    assert usage is not None and usage.completion_tokens_details is not None
    reasoning = usage.completion_tokens_details.reasoning_tokens
    assert reasoning and reasoning > 0
    assert usage.completion_tokens == 6 + reasoning


async def test_max_tokens_cuts_the_reply_with_finish_reason_length(oai: openai.AsyncOpenAI) -> None:
    resp = await oai.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=2)
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 2


async def test_wrong_key_is_a_401_in_openai_shape(fp: FakeProvider) -> None:
    client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="sk-wrong-key-0000",
                                max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    await client.close()
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.type == "invalid_request_error"
    assert "sk-wrong-key-0000" not in info.value.message


async def test_bad_request_names_the_param(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await oai.chat.completions.create(model="gpt-4o", messages=[])
    assert info.value.param == "messages"


async def test_models_list(oai: openai.AsyncOpenAI, fp: FakeProvider) -> None:
    models = [m.id async for m in oai.models.list()]
    assert models == list(fp.settings.models)


async def test_upstream_records_what_it_received(oai: openai.AsyncOpenAI, fp: FakeProvider) -> None:
    await oai.chat.completions.create(model="gpt-4o", messages=USER, tools=TOOLS,
                                      tool_choice="required")
    record = fp.last_request("gpt-4o")
    assert record is not None
    assert record.body["tool_choice"] == "required"
    assert record.headers["authorization"] == "Bearer sk-fake-test-key"
    assert record.path == "/v1/chat/completions"
