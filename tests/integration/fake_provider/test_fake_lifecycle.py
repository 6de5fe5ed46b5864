"""Starting and stopping: OS-chosen ports, clean stops even with requests held, `create_app`
alone."""

from __future__ import annotations

import asyncio

import openai
import pytest
from aiohttp.test_utils import TestClient

from echelon_tools.fake_provider import FakeProvider, FakeSettings, create_app

MESSAGES = [{"role": "user", "content": "hi"}]


async def test_each_provider_gets_its_own_loopback_port() -> None:
    async with FakeProvider() as a, FakeProvider() as b:
        assert a.port and b.port and a.port != b.port
        assert a.base_url == f"http://127.0.0.1:{a.port}"
        assert a.openai_base_url == f"{a.base_url}/v1"
        assert a.anthropic_base_url == a.gemini_base_url == a.base_url


async def consume(client: openai.AsyncOpenAI) -> int:
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    return len([chunk async for chunk in stream])


@pytest.mark.parametrize(("spec", "answered"),
                         [("hang", False), ("hang:headers", False), ("latency:60000", True)])
async def test_stop_ends_held_requests_instead_of_waiting_for_them(
    spec: str, answered: bool
) -> None:
    fp = FakeProvider()
    await fp.start()
    fp.set_fault("*", spec)
    client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="k", max_retries=0,
                                timeout=60)
    held = asyncio.create_task(consume(client))
    async with asyncio.timeout(5):
        await fp.wait_for(lambda s: s.in_flight == 1)
        await fp.stop()
        result = await asyncio.gather(held, return_exceptions=True)
    await client.close()
    if answered:  # a pending latency is cut short: the answer goes out before the stop
        assert result == [4]  # role, "[fake:m] ", "hi", finish
    else:  # a hung request is dropped
        assert isinstance(result[0], openai.APIConnectionError)


async def test_create_app_serves_through_aiohttp_test_client(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(create_app(FakeSettings(reply="pong")))
    resp = await client.post("/v1/chat/completions",
                             json={"model": "gpt-4o", "messages": MESSAGES})
    assert resp.status == 200
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "[fake:gpt-4o] pong"
    stats = await (await client.get("/_fake/stats")).json()
    assert stats["total"] == 1
