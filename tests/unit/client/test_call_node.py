"""``EchelonClient.call_node`` against a fake sidecar: what it sends, and how a node's
``task_config.timeout`` (per attempt, as in the sidecar) and ``request_timeout`` (the whole
request) bound the wait."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from echelon_sidecar import client as client_module
from echelon_sidecar.client import EchelonClient, LLMError, load_node_config


class FakeSidecar:
    """Answers /v1/chat/completions after ``delay`` seconds, recording each request; like the
    sidecar, it answers 504 once an ``X-Echelon-Timeout`` deadline passes."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.honours_deadline = True
        self.url = ""
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.requests.append((dict(request.headers), body))
        deadline = request.headers.get("X-Echelon-Timeout")
        if self.honours_deadline and deadline is not None and float(deadline) < self.delay:
            await asyncio.sleep(float(deadline))
            return web.json_response({"error": {
                "message": "the request's deadline passed", "code": "deadline_exceeded",
                "attempts": [{"model": "m", "result": "error"}]}}, status=504)
        await asyncio.sleep(self.delay)
        return web.json_response(
            {"choices": [{"message": {"role": "assistant", "content": f"ok {body['model']}"}}]},
            headers={"X-Echelon-Served-By": "m", "X-Echelon-Tier": "g.e1",
                     "X-Echelon-Attempts": "1"})

    @property
    def last(self) -> tuple[dict[str, str], dict[str, Any]]:
        return self.requests[-1]


@pytest.fixture
async def sidecar() -> Any:
    fake = FakeSidecar()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    server = TestServer(app, host="127.0.0.1", port=0)  # a port from the OS
    await server.start_server()
    fake.url = str(server.make_url("/"))
    yield fake
    await server.close()


@pytest.fixture
async def llm(sidecar: FakeSidecar) -> Any:
    async with EchelonClient(sidecar.url, timeout=0.3) as client:
        yield client


NODES = textwrap.dedent("""
    workflow_nodes:
      planning_node:
        llm_group: plan_group.echelon1
        fallback_groups: [plan_group.echelon2]
        polling_pool: plan_pool
        task_config: {timeout: 0.2, max_retries: 3, thinking_config: {enabled: true}}
        concurrency_config: {limit: 10, queue_size: 100}
""")


async def test_node_by_name_is_sent_as_the_model_without_a_deadline(
        llm: EchelonClient, sidecar: FakeSidecar) -> None:
    result = await llm.call_node("planning_node", "plan it")
    headers, body = sidecar.last
    assert body["model"] == "planning_node" and result.text == "ok planning_node"
    assert "X-Echelon-Timeout" not in headers and "X-Echelon-Fallback-Groups" not in headers


async def test_loaded_node_config_is_called_by_its_name_so_the_sidecar_applies_all_of_it(
        llm: EchelonClient, sidecar: FakeSidecar, tmp_path: Path) -> None:
    (tmp_path / "nodes.yaml").write_text(NODES)
    node = load_node_config(tmp_path / "nodes.yaml", "planning_node")
    assert node.name == "planning_node"
    await llm.call_node(node, "plan it")
    headers, body = sidecar.last
    assert body["model"] == "planning_node"
    assert "thinking" not in body  # the sidecar applies the node's own task config
    assert not {"X-Echelon-Timeout", "X-Echelon-Fallback-Groups", "X-Echelon-Node"} & set(headers)


async def test_node_task_timeout_bounds_attempts_in_the_sidecar_not_the_whole_request(
        llm: EchelonClient, sidecar: FakeSidecar, tmp_path: Path) -> None:
    """timeout 0.2 s per attempt; the sidecar's attempts take 0.6 s in all: the client neither
    sends the node's timeout as the request's deadline nor cuts the wait at its own 0.3 s."""
    sidecar.delay = 0.6
    (tmp_path / "nodes.yaml").write_text(NODES)
    result = await llm.call_node(load_node_config(tmp_path / "nodes.yaml"), "plan it")
    assert result.served_by == "m"
    named = await llm.call_node("planning_node", "plan it")
    assert named.served_by == "m"


async def test_node_config_without_a_name_sends_what_a_request_carries_and_outwaits_the_client(
        llm: EchelonClient, sidecar: FakeSidecar) -> None:
    sidecar.delay = 0.4
    node = load_node_config({"llm_group": "plan_group.echelon1",
                             "fallback_groups": ["plan_group.echelon2"],
                             "task_config": {"temperature": 0.2,
                                             "thinking_config": {"enabled": True}}})
    result = await llm.call_node(node, "plan it")
    headers, body = sidecar.last
    assert result.text == "ok plan_group.echelon1"
    assert headers["X-Echelon-Fallback-Groups"] == "plan_group.echelon2"
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["temperature"] == 0.2
    assert "X-Echelon-Timeout" not in headers and "X-Echelon-Node" not in headers


@pytest.mark.parametrize(("field", "node"), [
    ("task_config.timeout", {"task_config": {"timeout": 120}}),
    ("task_config.max_retries", {"task_config": {"max_retries": 3}}),
    ("polling_pool", {"polling_pool": "plan_pool"}),
    ("concurrency_config", {"concurrency_config": {"limit": 10}}),
])
async def test_node_config_without_a_name_refuses_fields_only_the_sidecar_can_apply(
        llm: EchelonClient, sidecar: FakeSidecar, field: str, node: dict[str, Any]) -> None:
    config = load_node_config({"llm_group": "plan_group.echelon1", **node})
    with pytest.raises(ValueError, match="only the sidecar can apply") as info:
        await llm.call_node(config, "plan it")
    assert field in str(info.value) and "call it by name" in str(info.value)
    assert not sidecar.requests


async def test_node_config_given_a_name_is_called_by_it(
        llm: EchelonClient, sidecar: FakeSidecar) -> None:
    node = load_node_config({"llm_group": "plan_group.echelon1", "task_config": {"timeout": 9}},
                            name="planning_node")
    await llm.call_node(node, "plan it")
    assert sidecar.last[1]["model"] == "planning_node"


async def test_request_timeout_of_a_node_call_is_the_sidecars_deadline_for_the_whole_request(
        llm: EchelonClient, sidecar: FakeSidecar) -> None:
    sidecar.delay = 5.0
    with pytest.raises(LLMError) as info:
        await llm.call_node("planning_node", "plan it", request_timeout=0.4)
    assert sidecar.last[0]["X-Echelon-Timeout"] == "0.4"
    assert info.value.status == 504 and info.value.attempts  # the sidecar's answer, not a cut


async def test_request_timeout_of_a_node_call_bounds_the_wait_when_the_sidecar_hangs(
        llm: EchelonClient, sidecar: FakeSidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "DEADLINE_GRACE", 0.1)
    sidecar.delay, sidecar.honours_deadline = 1.0, False
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(asyncio.TimeoutError):
        await llm.call_node("planning_node", "plan it", request_timeout=0.2)
    assert loop.time() - started < 0.9


async def test_complete_waits_past_the_client_timeout_for_a_longer_request_timeout(
        llm: EchelonClient, sidecar: FakeSidecar) -> None:
    sidecar.delay = 0.5
    result = await llm.complete("plan_group", [{"role": "user", "content": "x"}],
                                request_timeout=1.0)
    assert result.text == "ok plan_group"
