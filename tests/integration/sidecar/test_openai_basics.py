"""OpenAI-format callers and OpenAI-format upstreams: answers parse with the official SDK."""

from __future__ import annotations

import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, MakeSidecar, openai_model


def _config(fake: FakeProvider) -> dict:
    return {
        "task_groups": {
            "plan_group": {
                "echelon1": {"models": ["primary"], "priority": 1},
                "echelon2": {"models": ["secondary"], "priority": 2},
            },
        },
        "models": {
            "primary": openai_model(fake, "gpt-primary"),
            "secondary": openai_model(fake, "gpt-secondary"),
        },
    }


async def test_non_stream_answer_parses_with_the_sdk_and_says_who_served_it(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="plan_group", messages=HI)
    completion = raw.parse()
    assert completion.choices[0].message.content == "[fake:gpt-primary] hello there sidecar"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    assert raw.headers["x-echelon-served-by"] == "primary"
    assert raw.headers["x-echelon-tier"] == "plan_group.echelon1"
    assert raw.headers["x-echelon-attempts"] == "1"
    assert raw.headers["x-echelon-fallbacks"] == "0"
    # the upstream got the upstream model name and the credential from the env var
    sent = fake.last_request("gpt-primary")
    assert sent is not None
    assert sent.body["model"] == "gpt-primary"
    assert sent.body["messages"] == HI


async def test_stream_answer_parses_with_the_sdk_chunk_by_chunk(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    raw = await sc.openai.chat.completions.with_raw_response.create(
        model="plan_group.echelon2", messages=HI, stream=True,
        stream_options={"include_usage": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.headers["x-echelon-served-by"] == "secondary"
    assert raw.headers["x-echelon-tier"] == "plan_group.echelon2"
    text, finish, usage = "", None, None
    async for chunk in raw.parse():
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "[fake:gpt-secondary] hello there sidecar"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 4


async def test_models_lists_groups_tiers_pools_and_nodes(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = _config(fake)
    config["polling_pools"] = {"plan_pool": {"task_groups": ["plan_group.echelon1"]}}
    config["workflow_nodes"] = {"planner": {"llm_group": "plan_group"}}
    sc = await make_sidecar(config)
    names = {m.id async for m in sc.openai.models.list()}
    assert names == {"plan_group", "plan_group.echelon1", "plan_group.echelon2", "plan_pool",
                     "planner"}
    one = await sc.openai.models.retrieve("plan_pool")
    assert one.id == "plan_pool"
    with pytest.raises(openai.NotFoundError, match="nope"):
        await sc.openai.models.retrieve("nope")


async def test_a_request_naming_no_model_goes_to_the_sidecars_pool(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    config = _config(fake)
    config["polling_pools"] = {"plan_pool": {"task_groups": ["plan_group.echelon2"]}}
    config["sidecar"] = {"pool": "plan_pool"}
    sc = await make_sidecar(config)
    raw = await sc.openai.chat.completions.with_raw_response.create(model="default",
                                                                   messages=HI)
    assert raw.headers["x-echelon-served-by"] == "secondary"
    status, headers, _ = await sc.post("/v1/chat/completions", {"messages": HI})
    assert status == 200 and headers["X-Echelon-Served-By"] == "secondary"
    assert (await sc.status())["pool"] == "plan_pool"
