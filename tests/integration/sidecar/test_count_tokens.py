"""``POST /v1/messages/count_tokens`` through the real sidecar, with the ``anthropic`` SDK's
``messages.count_tokens`` as the client: answered for a group, a tier, a pool and a node,
from the sidecar's estimate, without calling any upstream."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from echelon_sidecar.server.gateway import ANTHROPIC_TOOL_PROMPT_TOKENS
from echelon_sidecar.translate import anthropic_to_openai_request, estimate_input_tokens
from echelon_tools.fake_provider import FakeProvider

from ..conftest import MakeSidecar, RunningSidecar, anthropic_model, gemini_model, openai_model

SYSTEM = "You are a terse assistant that answers in one sentence."
MESSAGES: list[Any] = [
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": [{"type": "text", "text": "And of Italy? Answer briefly."}]},
]
TOOLS: list[Any] = [{
    "name": "get_weather", "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
}]


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {"g": {"echelon1": {"models": ["claude"], "priority": 1},
                              "echelon2": {"models": ["gpt", "gem"], "priority": 2}}},
        "polling_pools": {"p": {"task_groups": ["g"]}},
        "workflow_nodes": {"n": {"llm_group": "g", "polling_pool": "p"}},
        "models": {"claude": anthropic_model(fake, "up-claude"),
                   "gpt": openai_model(fake, "up-gpt"),
                   "gem": gemini_model(fake, "up-gem")},
    }


@pytest.fixture
async def sc(fake: FakeProvider, make_sidecar: MakeSidecar) -> RunningSidecar:
    return await make_sidecar(_config(fake))


def _expected(**body: Any) -> int:
    return estimate_input_tokens(anthropic_to_openai_request({**body, "max_tokens": 1}))


@pytest.mark.parametrize("model", ["g", "g.echelon2", "p", "n"])
async def test_count_tokens_answers_for_a_group_a_tier_a_pool_and_a_node_without_an_upstream(
    sc: RunningSidecar, fake: FakeProvider, model: str
) -> None:
    counted = await sc.anthropic.messages.count_tokens(model=model, system=SYSTEM,
                                                       messages=MESSAGES)
    assert counted.input_tokens == _expected(model=model, system=SYSTEM, messages=MESSAGES)
    assert 30 <= counted.input_tokens <= 60  # cl100k counts 46 (OpenAI cookbook overheads)
    assert fake.requests() == []  # no upstream was called
    assert fake.stats()["total"] == 0


async def test_tools_add_their_definitions_and_anthropics_tool_use_system_prompt(
    sc: RunningSidecar,
) -> None:
    plain = await sc.anthropic.messages.count_tokens(model="g", messages=MESSAGES)
    with_tools = await sc.anthropic.messages.count_tokens(model="g", messages=MESSAGES,
                                                          tools=TOOLS)
    forced = await sc.anthropic.messages.count_tokens(
        model="g", messages=MESSAGES, tools=TOOLS, tool_choice={"type": "any"})
    definitions = with_tools.input_tokens - plain.input_tokens - ANTHROPIC_TOOL_PROMPT_TOKENS[
        "auto"]
    assert 15 <= definitions <= 80
    assert with_tools.input_tokens - forced.input_tokens == 346 - 313


async def test_thinking_and_other_count_tokens_fields_are_accepted(sc: RunningSidecar) -> None:
    counted = await sc.anthropic.messages.count_tokens(
        model="g", messages=MESSAGES, thinking={"type": "enabled", "budget_tokens": 2048})
    assert counted.input_tokens == _expected(model="g", messages=MESSAGES)


async def test_the_estimate_is_marked_as_one(sc: RunningSidecar) -> None:
    raw = await sc.anthropic.messages.with_raw_response.count_tokens(model="p",
                                                                     messages=MESSAGES)
    assert raw.headers["x-echelon-token-count"] == "estimated"
    assert raw.headers["x-request-id"]


async def test_an_unknown_model_is_404_in_anthropics_error_shape(sc: RunningSidecar) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        await sc.anthropic.messages.count_tokens(model="nope", messages=MESSAGES)
    assert caught.value.body["type"] == "error"  # type: ignore[index]


async def test_an_unknown_node_header_is_400(sc: RunningSidecar) -> None:
    with pytest.raises(anthropic.BadRequestError):
        await sc.anthropic.messages.count_tokens(
            model="g", messages=MESSAGES, extra_headers={"X-Echelon-Node": "nobody"})


@pytest.mark.parametrize("body", [
    {"model": "g"},
    {"model": "g", "messages": []},
    {"model": "g", "messages": [{"role": "robot", "content": "hi"}]},
])
async def test_a_wrong_count_tokens_request_is_400(sc: RunningSidecar,
                                                   body: dict[str, Any]) -> None:
    status, _, answer = await sc.post("/v1/messages/count_tokens", body)
    assert status == 400
    assert answer["type"] == "error" and answer["error"]["type"] == "invalid_request_error"
