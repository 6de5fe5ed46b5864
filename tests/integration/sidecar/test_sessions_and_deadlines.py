"""Session affinity, request deadlines, node and group limits, reload and drain mid-stream."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, MakeSidecar, RunningSidecar, openai_model


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {
        "task_groups": {
            "pg": {"echelon1": {"models": ["r1", "r2", "r3"]}},
            "g": {"echelon1": {"models": ["a"], "priority": 1, "timeout": 5},
                  "echelon2": {"models": ["b"], "priority": 2}},
        },
        "polling_pools": {"pool": {"task_groups": ["pg"]}},
        "workflow_nodes": {"one_at_a_time": {"llm_group": "g",
                                             "concurrency_config": {"limit": 1}}},
        "models": {name: openai_model(fake, f"up-{name}") for name in ("r1", "r2", "r3", "a",
                                                                       "b")},
    }


async def _served_by(sc: RunningSidecar, model: str, messages: Any = HI,
                     **headers: str) -> str:
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model=model, messages=messages, extra_headers=headers)
    return raw.headers["x-echelon-served-by"]


async def test_a_session_header_pins_a_conversation_to_one_pool_instance(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    rotated = {await _served_by(sc, "pool") for _ in range(3)}
    assert rotated == {"r1", "r2", "r3"}
    pinned = {await _served_by(sc, "pool", **{"X-Echelon-Session": "s-42"}) for _ in range(5)}
    assert len(pinned) == 1
    assert (await sc.status())["sessions"]


async def test_a_multi_turn_conversation_is_never_rotated_once_it_is_multi_turn(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    conversation: list[Any] = [{"role": "system", "content": "be brief"},
                               {"role": "user", "content": "first question"}]
    await _served_by(sc, "pool", conversation)  # single-turn: rotated, not pinned
    served = []
    for turn in range(5):
        conversation += [{"role": "assistant", "content": "an answer"},
                         {"role": "user", "content": f"follow-up {turn}"}]
        served.append(await _served_by(sc, "pool", conversation))
    assert len(set(served)) == 1, served
    assert {await _served_by(sc, "pool") for _ in range(3)} == {"r1", "r2", "r3"}, \
        "single-turn requests still rotate"


async def test_a_request_deadline_ends_a_hanging_call_with_504(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-a", "hang")
    with pytest.raises(openai.APIStatusError) as info:
        await sc.openai.chat.completions.create(
            model="g", messages=HI, extra_headers={"X-Echelon-Timeout": "0.4"})
    assert info.value.status_code == 504
    assert info.value.body["code"] == "deadline_exceeded"  # type: ignore[index]
    assert fake.stats()["by_model"].get("up-b", 0) == 0
    async with asyncio.timeout(5):
        await fake.wait_for(lambda s: s.in_flight == 0)
    status = await sc.status()
    (a,) = [i for i in status["instances"] if i["model"] == "a"]
    assert a["consecutive_failures"] == 0, "the caller's deadline is no failure of the upstream"


async def test_a_nodes_concurrency_limit_refuses_a_second_concurrent_request(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.set_fault("up-a", "latency:5000")
    first = asyncio.create_task(_served_by(sc, "one_at_a_time"))
    try:
        async with asyncio.timeout(5):
            await fake.wait_for(lambda s: s.in_flight == 1)
        with pytest.raises(openai.RateLimitError) as info:
            await sc.openai.chat.completions.create(model="one_at_a_time", messages=HI)
        assert info.value.body["code"] == "node_limit"  # type: ignore[index]
        assert "one_at_a_time" in info.value.message
        fake.clear_faults()
        assert await _served_by(sc, "g") == "a", "the group itself is not limited"
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)


async def test_a_group_queue_holds_requests_until_a_slot_frees(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = _config(fake)
    config["concurrency_control"] = {"levels": {"group": {"limit": 2, "queue_size": 10}}}
    sc = await make_sidecar(config)
    fake.configure(latency_ms=50)
    served = await asyncio.gather(*(_served_by(sc, "g") for _ in range(8)))
    assert served == ["a"] * 8
    assert fake.stats()["max_in_flight"] == 2


async def test_a_stream_in_flight_survives_a_reload_and_a_drain(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    fake.configure(stream_chunks=10, chunk_delay_ms=60)
    stream = await sc.openai.chat.completions.create(model="g", messages=HI, stream=True)
    chunks = [await stream.__anext__()]
    config = _config(fake)
    config["task_groups"]["g"]["echelon1"]["models"] = ["b"]
    sc.rewrite(config)
    assert await sc.sidecar.reload_now()
    stopping = asyncio.create_task(sc.sidecar.stop())
    chunks += [chunk async for chunk in stream]
    await stopping
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[fake:up-a] hello there sidecar"
    assert chunks[-1].choices[0].finish_reason == "stop"
