"""A Responses API conversation stays on the instance of its first turn, like a chat one: the
follow-up that replays the output items (text, or a function call and its output) finds the
pin the first turn left, without X-Echelon-Session.

A pool of two instances rotating round robin: a second turn that were rotated would land on
the other instance.
"""

from __future__ import annotations

from typing import Any

import pytest

from echelon_tools.fake_provider import TOOL_TRIGGER, FakeProvider

from ..conftest import MakeSidecar, RunningSidecar, anthropic_model, openai_model
from .test_responses_api import TOOLS

OTHER = {"a": "b", "b": "a"}


@pytest.fixture(params=["openai", "anthropic"])
async def sc(request: pytest.FixtureRequest, fake: FakeProvider,
             make_sidecar: MakeSidecar) -> RunningSidecar:
    model = openai_model if request.param == "openai" else anthropic_model
    return await make_sidecar({
        "task_groups": {"pg": {"echelon1": {"models": ["a", "b"]}}},
        "polling_pools": {"pool": {"task_groups": ["pg"], "rotation_strategy": "round_robin"}},
        "models": {"a": model(fake, "up-a"), "b": model(fake, "up-b")}})


async def _create(sc: RunningSidecar, **create: Any) -> tuple[str, Any]:
    raw = await sc.openai.responses.with_raw_response.create(model="pool", **create)
    return raw.headers["x-echelon-served-by"], raw.parse()


async def _stream(sc: RunningSidecar, **create: Any) -> tuple[str, Any]:
    async with sc.openai.responses.with_streaming_response.create(
            model="pool", stream=True, **create) as response:
        served = response.headers["x-echelon-served-by"]
        final = None
        async for event in await response.parse():
            if event.type == "response.completed":
                final = event.response
    assert final is not None
    return served, final


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_second_turn_replaying_the_output_is_served_by_the_first_turns_instance(
    sc: RunningSidecar, streamed: bool
) -> None:
    call = _stream if streamed else _create
    for n in range(3):
        opening: list[Any] = [{"role": "user", "content": f"question {n}"}]
        first, response = await call(sc, instructions="One line.", input=opening)
        replay = [item.model_dump(exclude_none=True) for item in response.output]
        second, _ = await call(sc, instructions="One line.", input=[
            *opening, *replay, {"role": "user", "content": "and then?"}])
        assert second == first, f"conversation {n} moved from {first} to {OTHER[first]}"


async def test_a_function_call_turn_is_pinned_by_its_call(sc: RunningSidecar) -> None:
    opening: list[Any] = [{"role": "user", "content": f"weather? {TOOL_TRIGGER}"}]
    first, response = await _create(sc, input=opening, tools=TOOLS)
    (call,) = response.output
    assert call.type == "function_call"
    second, _ = await _create(sc, tools=TOOLS, input=[
        *opening, call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second == first
