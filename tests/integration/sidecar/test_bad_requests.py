"""Bad requests get a 4xx that says what was wrong -- never a 500, never a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, MakeSidecar, RunningSidecar, anthropic_model, openai_model

LIMIT = 4096


@pytest.fixture
async def sc(fake: FakeProvider, make_sidecar: MakeSidecar) -> RunningSidecar:
    return await make_sidecar({
        "task_groups": {
            "plan_group": {"echelon1": {"models": ["gpt"]}, "echelon2": {"models": ["claude"]}},
        },
        "workflow_nodes": {"planner": {"llm_group": "plan_group"}},
        "models": {"gpt": openai_model(fake, "up-gpt"),
                   "claude": anthropic_model(fake, "up-claude")},
    }, max_body_bytes=LIMIT)


def _check(status: int, body: Any, expected: int, *needles: str) -> str:
    assert status == expected, body
    assert isinstance(body, dict), f"not a JSON error: {body!r}"
    message = body["error"]["message"]
    assert "Traceback" not in message and 'File "' not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


OK_BODY = {"model": "plan_group", "messages": HI}


@pytest.mark.parametrize(
    ("data", "expected", "needles"),
    [
        (b'{"model": "plan_group", "messages": [', 400, ["not valid JSON"]),
        (b"", 400, ["empty"]),
        (b"[1, 2]", 400, ["JSON object", "list"]),
        (b'"hello"', 400, ["JSON object"]),
        (b'{"model": "plan_group"}', 400, ["messages"]),
        (b'{"model": "plan_group", "messages": []}', 400, ["messages"]),
        (b'{"model": "plan_group", "messages": "hi"}', 400, ["messages must be", "got a string"]),
        (b'{"model": "plan_group", "messages": [1]}', 400, ["messages[0]", "got a number"]),
        (b'{"model": 7, "messages": [{"role": "user", "content": "x"}]}', 400, ["model"]),
        (
            b'{"model": "plan_group", "stream": "yes", '
            b'"messages": [{"role": "user", "content": "x"}]}',
            400,
            ["stream"],
        ),
        (
            b'{"model": "plan_gruop", "messages": [{"role": "user", "content": "x"}]}',
            404,
            ["plan_gruop", "plan_group"],
        ),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, ["model is required"]),
    ],
    ids=[
        "malformed",
        "empty",
        "array",
        "string",
        "no-messages",
        "empty-messages",
        "messages-string",
        "message-number",
        "model-number",
        "stream-string",
        "unknown-model",
        "no-model",
    ],
)
async def test_a_bad_openai_body_gets_a_4xx_naming_the_problem(
    sc: RunningSidecar, fake: FakeProvider, data: bytes, expected: int, needles: list[str]
) -> None:
    status, _, body = await sc.post("/v1/chat/completions", data=data,
                                    headers={"Content-Type": "application/json"})
    _check(status, body, expected, *needles)
    assert fake.stats()["total"] == 0, "nothing bad reaches an upstream"


@pytest.mark.parametrize(("headers", "needles"), [
    ({"X-Echelon-Node": "no_such_node"}, ["X-Echelon-Node", "no_such_node"]),
    ({"X-Echelon-Node": "bad name!"}, ["X-Echelon-Node"]),
    ({"X-Echelon-Fallback-Groups": "plan_group, ghost_group"}, ["X-Echelon-Fallback-Groups",
                                                                "ghost_group"]),
    ({"X-Echelon-Fallback-Groups": " , "}, ["X-Echelon-Fallback-Groups", "none"]),
    ({"X-Echelon-Fallback-Groups": "a/b"}, ["X-Echelon-Fallback-Groups"]),
    ({"X-Echelon-Timeout": "soon"}, ["X-Echelon-Timeout"]),
    ({"X-Echelon-Timeout": "-1"}, ["X-Echelon-Timeout"]),
    ({"X-Echelon-Session": "x" * 300}, ["X-Echelon-Session"]),
], ids=["unknown-node", "bad-node", "unknown-group", "empty-groups", "bad-group",
        "timeout-word", "timeout-negative", "session-too-long"])
async def test_a_bad_header_gets_400_naming_the_header(
    sc: RunningSidecar, fake: FakeProvider, headers: dict[str, str], needles: list[str]
) -> None:
    status, _, body = await sc.post("/v1/chat/completions", OK_BODY, headers=headers)
    _check(status, body, 400, *needles)
    assert body["error"]["param"] in headers
    assert fake.stats()["total"] == 0


async def test_a_body_over_the_limit_gets_413(sc: RunningSidecar, fake: FakeProvider) -> None:
    big = {"model": "plan_group", "messages": [{"role": "user", "content": "x" * LIMIT}]}
    status, _, body = await sc.post("/v1/chat/completions", big)
    _check(status, body, 413, str(LIMIT))

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked encoding
        yield b'{"model": "plan_group", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"y" * 1024
        yield b'"}]}'

    async with sc.http.post(f"{sc.data_url}/v1/chat/completions", data=chunks()) as resp:
        _check(resp.status, await resp.json(content_type=None), 413, str(LIMIT))
    assert fake.stats()["total"] == 0


async def test_the_sdk_sees_clear_errors_for_an_unknown_model_and_a_bad_header(
    sc: RunningSidecar,
) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        await sc.openai.chat.completions.create(model="plan-grp", messages=HI)
    assert "did you mean" in info.value.message and "plan_group" in info.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        await sc.openai.chat.completions.create(
            model="plan_group", messages=HI, extra_headers={"X-Echelon-Node": "nobody"})
    assert "X-Echelon-Node" in bad.value.message


async def test_an_upstream_rejection_of_the_request_is_returned_not_retried(
    sc: RunningSidecar, fake: FakeProvider
) -> None:
    fake.set_fault("up-gpt", "400:message=Invalid 'temperature': must be at most 2.")
    with pytest.raises(openai.BadRequestError) as info:
        await sc.openai.chat.completions.create(model="plan_group", messages=HI,
                                                temperature=1.0)
    assert "temperature" in info.value.message
    assert fake.stats()["by_model"] == {"up-gpt": 1}, "a 400 is the request's fault: no fallback"


@pytest.mark.parametrize(("data", "needles"), [
    (b'{"model": "plan_group", "max_tokens": 10}', ["messages"]),
    (b'{"model": "plan_group", "max_tokens": 10, "messages": [{"role": "user"}]}',
     ["content"]),
    (b'{"model": "plan_group", "max_tokens": "ten", "messages": '
     b'[{"role": "user", "content": "x"}]}', ["max_tokens"]),
    (b'{"model": "plan_group", "max_tokens": 10, "system": 5, "messages": '
     b'[{"role": "user", "content": "x"}]}', ["system"]),
    (b'{"model": "plan_group", "max_tokens": 10, "messages": '
     b'[{"role": "wizard", "content": "x"}]}', ["role"]),
], ids=["no-messages", "no-content", "max-tokens-string", "system-number", "bad-role"])
async def test_a_bad_anthropic_body_gets_400_in_the_anthropic_error_shape(
    sc: RunningSidecar, fake: FakeProvider, data: bytes, needles: list[str]
) -> None:
    status, _, body = await sc.post("/v1/messages", data=data)
    assert status == 400, body
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    for needle in needles:
        assert needle in body["error"]["message"]
    assert fake.stats()["total"] == 0


async def test_the_anthropic_sdk_sees_a_404_for_an_unknown_model(sc: RunningSidecar) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        await sc.anthropic.messages.create(model="nope", max_tokens=10, messages=HI)
    assert "nope" in info.value.message


@pytest.mark.parametrize(("method", "path", "expected", "needles"), [
    ("POST", "/v1/completions", 404, ["/v1/completions", "POST /v1/chat/completions"]),
    ("GET", "/", 404, ["GET /", "/v1/messages"]),
    ("GET", "/v1/chat/completions", 405, ["GET", "POST"]),
    ("DELETE", "/v1/models", 405, ["DELETE", "GET"]),
])
async def test_an_unknown_endpoint_or_method_gets_a_json_error_saying_what_is_served(
    sc: RunningSidecar, method: str, path: str, expected: int, needles: list[str]
) -> None:
    async with sc.http.request(method, f"{sc.data_url}{path}") as resp:
        _check(resp.status, await resp.json(content_type=None), expected, *needles)
        assert resp.content_type == "application/json"
