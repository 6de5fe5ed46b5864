"""``POST /v1/responses`` (the OpenAI Responses API, stateless) with the official ``openai``
SDK's ``client.responses.create`` / ``.parse``: text, function calls with a follow-up turn,
structured output, served by an OpenAI upstream, and by Anthropic and Gemini upstreams after
a failing OpenAI tier. What each fake upstream RECEIVED is checked in its own wire format.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pydantic
import pytest

from echelon_tools.fake_provider import TOOL_TRIGGER, FakeProvider

from ..conftest import (
    MakeSidecar,
    RunningSidecar,
    anthropic_model,
    gemini_model,
    openai_model,
)

SYSTEM = "You answer briefly."
QUESTION = "hello there sidecar"
ASK = f"What is the weather in Paris? {TOOL_TRIGGER}"
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"], "additionalProperties": False}
TOOLS: list[Any] = [{"type": "function", "name": "get_weather",
                     "description": "The weather in a city.", "parameters": WEATHER_SCHEMA,
                     "strict": True}]
PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}

# group -> (the model id that serves it, the upstream model name)
ROUTES = {"direct": ("gpt", "up-gpt"), "to_claude": ("claude", "up-claude"),
          "to_gemini": ("gem", "up-gem")}


def responses_config(fake: FakeProvider) -> dict[str, Any]:
    """``direct``: an OpenAI upstream; ``to_claude`` / ``to_gemini``: a failing OpenAI tier,
    then Anthropic / Gemini."""
    return {
        "task_groups": {
            "direct": {"echelon1": {"models": ["gpt"]}},
            "to_claude": {"echelon1": {"models": ["broken"], "priority": 1},
                          "echelon2": {"models": ["claude"], "priority": 2}},
            "to_gemini": {"echelon1": {"models": ["broken"], "priority": 1},
                          "echelon2": {"models": ["gem"], "priority": 2}},
        },
        "models": {"gpt": openai_model(fake, "up-gpt"),
                   "broken": openai_model(fake, "up-broken"),
                   "claude": anthropic_model(fake, "up-claude"),
                   "gem": gemini_model(fake, "up-gem")},
    }


@pytest.fixture
async def sc(fake: FakeProvider, make_sidecar: MakeSidecar) -> RunningSidecar:
    fake.set_fault("up-broken", "503")
    return await make_sidecar(responses_config(fake))


def _sent(fake: FakeProvider, upstream: str) -> dict[str, Any]:
    record = fake.last_request(upstream)
    assert record is not None, f"{upstream} was not called"
    body: dict[str, Any] = record.body
    return body


def _failed_over(fake: FakeProvider, group: str) -> None:
    if group != "direct":
        assert fake.requests("up-broken"), "the OpenAI tier was tried first"


# -- text ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("group", list(ROUTES))
async def test_a_text_response_is_served_by_each_kind_of_upstream(
    sc: RunningSidecar, fake: FakeProvider, group: str
) -> None:
    model_id, upstream = ROUTES[group]
    raw = await sc.openai.responses.with_raw_response.create(
        model=group, instructions=SYSTEM, input=QUESTION, max_output_tokens=50,
        temperature=0.5, store=True)
    response = raw.parse()
    assert raw.headers["x-echelon-served-by"] == model_id
    assert raw.headers["x-echelon-attempts"] == ("1" if group == "direct" else "2")
    assert raw.headers["x-echelon-tier"].startswith(f"{group}.")
    assert raw.headers["x-request-id"]
    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed" and response.error is None
    assert response.output_text == f"[fake:{upstream}] {QUESTION}"
    (item,) = response.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    assert [part.type for part in item.content] == ["output_text"]
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens,
            response.usage.total_tokens) == (6, 4, 10)
    assert response.instructions == SYSTEM and response.max_output_tokens == 50
    assert response.temperature == 0.5
    assert response.model_extra is not None and response.model_extra["store"] is False
    _failed_over(fake, group)
    sent = _sent(fake, upstream)
    if group == "direct":
        assert sent["messages"] == [{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": QUESTION}]
        assert sent["max_completion_tokens"] == 50 and sent["temperature"] == 0.5
        assert "store" not in sent, "nothing is stored upstream either"
    elif group == "to_claude":
        assert sent["system"] == SYSTEM
        assert sent["messages"] == [{"role": "user", "content": QUESTION}]
        assert sent["max_tokens"] == 50 and sent["temperature"] == 0.5
    else:
        assert sent["systemInstruction"]["parts"] == [{"text": SYSTEM}]
        assert sent["generationConfig"]["maxOutputTokens"] == 50


async def test_input_items_with_text_and_image_parts_reach_the_upstream(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    image = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    response = await sc.openai.responses.create(model="to_claude", input=[
        {"role": "developer", "content": SYSTEM},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": QUESTION},
            {"type": "input_image", "image_url": image, "detail": "auto"}]}])
    assert response.output_text.startswith("[fake:up-claude]")
    sent = _sent(fake, "up-claude")
    (user,) = sent["messages"]
    kinds = [block["type"] for block in user["content"]]
    assert kinds == ["text", "image"]
    assert user["content"][1]["source"]["media_type"] == "image/png"


async def test_max_output_tokens_ends_the_response_incomplete(sc: RunningSidecar) -> None:
    response = await sc.openai.responses.create(
        model="to_gemini", input="one two three four five six seven", max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "[fake:up-gem] one two"
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]


# -- function calls --------------------------------------------------------------------------------

@pytest.mark.parametrize("group", list(ROUTES))
async def test_a_function_call_and_its_output_round_trip(
    sc: RunningSidecar, fake: FakeProvider, group: str
) -> None:
    _, upstream = ROUTES[group]
    first = await sc.openai.responses.create(model=group, input=ASK, tools=TOOLS,
                                             parallel_tool_calls=False)
    assert first.status == "completed"
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id and call.id and call.id.startswith("fc_")
    assert json.loads(call.arguments) == {"city": "fake-city"}
    assert first.tools[0].name == "get_weather"  # type: ignore[union-attr]
    assert first.parallel_tool_calls is False
    _failed_over(fake, group)

    follow_up: list[Any] = [{"role": "user", "content": ASK},
                            *[item.model_dump(exclude_none=True) for item in first.output],
                            {"type": "function_call_output", "call_id": call.call_id,
                             "output": "sunny, 21 C"}]
    second = await sc.openai.responses.create(model=group, input=follow_up, tools=TOOLS)
    assert second.status == "completed"
    sent = _sent(fake, upstream)
    if group == "direct":  # the fake OpenAI upstream calls again: its trigger is still there
        user, assistant, result = sent["messages"]
        assert user == {"role": "user", "content": ASK}
        assert assistant["tool_calls"][0]["id"] == call.call_id
        assert assistant["tool_calls"][0]["function"] == {"name": "get_weather",
                                                          "arguments": call.arguments}
        assert result == {"role": "tool", "tool_call_id": call.call_id,
                          "content": "sunny, 21 C"}
        return
    assert second.output_text, "the tool's result was answered with text"
    if group == "to_claude":
        user, assistant, result = sent["messages"]
        assert user == {"role": "user", "content": ASK}
        assert assistant["content"] == [{"type": "tool_use", "id": call.call_id,
                                         "name": "get_weather", "input": {"city": "fake-city"}}]
        (block,) = result["content"]
        assert block["type"] == "tool_result" and block["tool_use_id"] == call.call_id
    else:
        user, model_turn, result = sent["contents"]
        assert user == {"role": "user", "parts": [{"text": ASK}]}
        assert model_turn["parts"][0]["functionCall"]["name"] == "get_weather"
        assert result["parts"][0]["functionResponse"]["name"] == "get_weather"


async def test_a_named_tool_choice_forces_that_function(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    response = await sc.openai.responses.create(
        model="to_claude", input="no trigger here", tools=TOOLS,
        tool_choice={"type": "function", "name": "get_weather"})
    assert [item.type for item in response.output] == ["function_call"]
    assert _sent(fake, "up-claude")["tool_choice"]["name"] == "get_weather"


# -- structured output -----------------------------------------------------------------------------

@pytest.mark.parametrize("group", list(ROUTES))
async def test_structured_output_follows_the_json_schema_of_text_format(
    sc: RunningSidecar, fake: FakeProvider, group: str
) -> None:
    _, upstream = ROUTES[group]
    response = await sc.openai.responses.create(
        model=group, input="Describe a person.",
        text={"format": {"type": "json_schema", "name": "person", "schema": PERSON,
                         "strict": True}})
    assert json.loads(response.output_text) == {"name": "fake-name", "age": 1}
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"
    sent = _sent(fake, upstream)
    if group == "direct":
        assert sent["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "person", "schema": PERSON, "strict": True}}
    elif group == "to_claude":
        assert sent["output_config"] == {"format": {"type": "json_schema", "schema": PERSON}}
    else:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"
        assert sent["generationConfig"]["responseSchema"]["required"] == ["name", "age"]


class Person(pydantic.BaseModel):
    name: str
    age: int


async def test_the_sdks_parse_helper_gets_a_typed_object(sc: RunningSidecar) -> None:
    parsed = await sc.openai.responses.parse(model="to_claude", input="Describe a person.",
                                             text_format=Person)
    assert parsed.output_parsed == Person(name="fake-name", age=1)


# -- what a stateless gateway refuses --------------------------------------------------------------

async def test_previous_response_id_is_refused_with_a_400_saying_to_send_the_full_input(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sc.openai.responses.create(model="direct", input="and then?",
                                         previous_response_id="resp_123")
    error = info.value.body
    assert isinstance(error, dict)
    assert error["param"] == "previous_response_id"
    assert error["code"] == "unsupported_previous_response_id"
    assert "previous_response_id" in error["message"] and "input" in error["message"]
    assert error["type"] == "invalid_request_error"
    assert fake.requests("up-gpt") == [], "nothing was called"


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_tool"),
    ({"tool_choice": {"type": "file_search"}}, "tool_choice.type", "unsupported_tool_choice"),
    ({"conversation": "conv_1"}, "conversation", "unsupported_conversation"),
    ({"background": True}, "background", "unsupported_background"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type",
     "unsupported_item_reference"),
    ({"input": None}, "input", None),
    ({"input": []}, "input", None),
    ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema", None),
    ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", None),
])
async def test_what_cannot_be_served_is_a_400_naming_the_field(
    sc: RunningSidecar, body: dict[str, Any], param: str, code: str | None
) -> None:
    status, headers, answer = await sc.post("/v1/responses",
                                            {"model": "direct", "input": QUESTION, **body})
    assert status == 400, answer
    assert answer["error"]["param"] == param
    assert answer["error"]["code"] == code
    assert answer["error"]["type"] == "invalid_request_error"
    assert {k.lower(): v for k, v in headers.items()}["x-request-id"], headers


async def test_reasoning_items_in_the_input_are_ignored(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    response = await sc.openai.responses.create(model="direct", input=[
        {"role": "user", "content": "first"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": QUESTION}])
    assert response.output_text == f"[fake:up-gpt] {QUESTION}"
    assert [m["role"] for m in _sent(fake, "up-gpt")["messages"]] == ["user", "assistant",
                                                                      "user"]


async def test_an_unknown_model_and_an_exhausted_chain_answer_in_the_openai_error_shape(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await sc.openai.responses.create(model="nope", input=QUESTION)
    assert isinstance(missing.value.body, dict) and missing.value.body["code"] == \
        "model_not_found"
    fake.set_fault("up-claude", "503")
    with pytest.raises(openai.APIStatusError) as exhausted:
        await sc.openai.responses.create(model="to_claude", input=QUESTION)
    assert exhausted.value.status_code == 502
    body = exhausted.value.body
    assert isinstance(body, dict) and body["code"] == "fallback_chain_exhausted"
    assert [a["model"] for a in body["attempts"]] == ["broken", "claude"]
