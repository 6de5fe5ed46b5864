"""``POST /v1/responses`` with ``stream: true``: the Responses typed event stream, whatever
upstream serves it, driven by the official SDK's ``client.responses.stream``. Failover before
the first byte as for chat; a stream broken after it ends with ``error`` and
``response.failed``.
"""

from __future__ import annotations

import json
from itertools import groupby
from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import MakeSidecar, RunningSidecar, openai_model
from .test_responses_api import ASK, QUESTION, ROUTES, TOOLS, responses_config

TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added", "response.output_text.delta",
               "response.output_text.done", "response.content_part.done",
               "response.output_item.done", "response.completed"]
CALL_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.function_call_arguments.delta",
               "response.function_call_arguments.done", "response.output_item.done",
               "response.completed"]


@pytest.fixture
async def sc(fake: FakeProvider, make_sidecar: MakeSidecar) -> RunningSidecar:
    fake.set_fault("up-broken", "503")
    fake.configure(stream_chunks=4)
    return await make_sidecar(responses_config(fake))


def _collapsed(types: list[str]) -> list[str]:
    """Event types in order, each run of the same type (the deltas) as one."""
    return [kind for kind, _ in groupby(types)]


async def _stream(sc: RunningSidecar, **create: Any) -> tuple[list[Any], Any]:
    events: list[Any] = []
    async with sc.openai.responses.stream(**create) as stream:
        async for event in stream:
            events.append(event)
        final = await stream.get_final_response()
    return events, final


@pytest.mark.parametrize("group", list(ROUTES))
async def test_a_text_stream_is_the_documented_event_sequence(
    sc: RunningSidecar, fake: FakeProvider, group: str
) -> None:
    _, upstream = ROUTES[group]
    events, final = await _stream(sc, model=group, input=QUESTION, instructions="Be brief.")
    types = [event.type for event in events]
    assert _collapsed(types) == TEXT_EVENTS
    assert types.count("response.output_text.delta") > 1, "the text came in pieces"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == f"[fake:{upstream}] {QUESTION}"
    (done,) = [e for e in events if e.type == "response.output_text.done"]
    assert done.text == deltas
    assert final.status == "completed" and final.output_text == deltas
    assert final.id == events[0].response.id and final.id.startswith("resp_")
    assert final.usage is not None and final.usage.output_tokens == 4
    assert final.usage.total_tokens == final.usage.input_tokens + 4
    assert final.instructions == "Be brief."
    if group != "direct":
        assert fake.requests("up-broken"), "the OpenAI tier failed before the first byte"
    sent = fake.last_request(upstream)
    assert sent is not None
    assert sent.body.get("stream") is True or sent.path.endswith("streamGenerateContent")


@pytest.mark.parametrize("group", list(ROUTES))
async def test_a_streamed_function_call_ends_in_a_function_call_item(
    sc: RunningSidecar, group: str
) -> None:
    events, final = await _stream(sc, model=group, input=ASK, tools=TOOLS)
    assert _collapsed([event.type for event in events]) == CALL_EVENTS
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.type == "function_call" and added.item.name == "get_weather"
    assert added.item.arguments == ""
    (args_done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(args_done.arguments) == {"city": "fake-city"}
    (call,) = final.output
    assert call.type == "function_call" and call.call_id == added.item.call_id
    assert call.arguments == args_done.arguments and call.status == "completed"
    assert final.status == "completed"


async def test_a_raw_stream_carries_the_x_echelon_headers_and_typed_events(
    sc: RunningSidecar
) -> None:
    async with sc.http.post(f"{sc.data_url}/v1/responses", json={
            "model": "to_claude", "input": QUESTION, "stream": True}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        assert resp.headers["X-Echelon-Served-By"] == "claude"
        assert resp.headers["X-Echelon-Attempts"] == "2"
        assert resp.headers["X-Echelon-Fallbacks"] == "1"
        text = await resp.text()
    blocks = [block for block in text.split("\n\n") if block]
    for block in blocks:
        event_line, data_line = block.split("\n")
        name = event_line.removeprefix("event: ")
        assert json.loads(data_line.removeprefix("data: "))["type"] == name
    assert "[DONE]" not in text


async def test_max_output_tokens_ends_a_stream_with_response_incomplete(
    sc: RunningSidecar
) -> None:
    stream = await sc.openai.responses.create(
        model="to_gemini", input="one two three four five six", max_output_tokens=3,
        stream=True)
    events = [event async for event in stream]
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output_text == "[fake:up-gem] one two"


async def test_a_stream_broken_after_its_first_byte_ends_with_error_and_response_failed(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar({
        "task_groups": {"g": {"echelon1": {"models": ["first"], "priority": 1},
                              "echelon2": {"models": ["second"], "priority": 2}}},
        "models": {"first": openai_model(fake, "up-first"),
                   "second": openai_model(fake, "up-second")}})
    fake.configure(stream_chunks=5)
    fake.set_fault("up-first", "cut:3")
    stream = await sc.openai.responses.create(model="g", input=QUESTION, stream=True)
    events = [event async for event in stream]
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-2:] == ["error", "response.failed"]
    assert "response.completed" not in types
    assert events[-2].code == "server_error" and "stream" in events[-2].message
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error"
    assert failed.id == events[0].response.id
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert fake.stats()["by_model"].get("up-second", 0) == 0, "no failover after the first byte"
    (first,) = [i for i in (await sc.status())["instances"] if i["model"] == "first"]
    assert first["consecutive_failures"] == 1, "the instance is charged the broken stream"
    with pytest.raises(RuntimeError, match=r"response\.completed"):
        async with sc.openai.responses.stream(model="g", input=QUESTION) as again:
            await again.get_final_response()


async def test_a_refused_stream_request_is_a_plain_400_before_any_event(
    sc: RunningSidecar
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sc.openai.responses.create(model="direct", input=QUESTION, stream=True,
                                         previous_response_id="resp_1")
    assert isinstance(info.value.body, dict)
    assert info.value.body["param"] == "previous_response_id"
