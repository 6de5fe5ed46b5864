"""The `/_fake/*` HTTP control endpoints change faults and settings at runtime and report
counters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from echelon_tools.fake_provider import FakeProvider

MESSAGES = [{"role": "user", "content": "a b c d e f"}]


@pytest.fixture
async def http(fp: FakeProvider) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=fp.base_url) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, path: str,
               body: Any = None) -> tuple[int, Any]:
    async with http.request(method, path, json=body) as resp:
        return resp.status, await resp.json()


async def test_health(http: aiohttp.ClientSession) -> None:
    assert await call(http, "GET", "/_fake/health") == (200, {"ok": True})


async def test_post_fault_applies_at_once_and_delete_clears_it(
    http: aiohttp.ClientSession, oai: openai.AsyncOpenAI
) -> None:
    status, body = await call(http, "POST", "/_fake/faults",
                              {"model": "gpt-4o", "fault": "429:retry-after=2"})
    assert status == 200
    assert body["faults"]["gpt-4o"]["spec"] == "429:retry-after=2"
    assert body["faults"]["gpt-4o"]["status"] == 429
    with pytest.raises(openai.RateLimitError):
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert await call(http, "DELETE", "/_fake/faults") == (200, {"faults": {}})
    await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)


async def test_post_faults_map_with_replace_and_objects(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", "/_fake/faults", {"model": "old", "fault": "500"})
    status, body = await call(http, "POST", "/_fake/faults", {
        "faults": {"*": "rate:0.2:500", "m": {"kind": "cut", "after_chunks": 2}},
        "replace": True, "seed": 3})
    assert status == 200
    assert set(body["faults"]) == {"*", "m"}
    assert body["faults"]["m"]["spec"] == "cut:2"
    assert body["faults"]["*"]["rate"] == 0.2
    status, body = await call(http, "DELETE", "/_fake/faults?model=m")
    assert set(body["faults"]) == {"*"}
    assert (await call(http, "GET", "/_fake/faults"))[1] == body


@pytest.mark.parametrize(
    ("payload", "needle"),
    [({"model": "m", "fault": "teapot"}, "unknown fault 'teapot'"),
     ({"faults": {"m": "cut:x"}}, "faults.m: bad fault spec"),
     ({"model": "m"}, 'needs a "fault"'),
     ({}, "nothing to set"),
     ({"faults": {"m": {"kind": "status", "status": 503, "colour": "red"}}}, "colour")],
)
async def test_bad_fault_payload_is_a_400_saying_what_is_wrong(
    http: aiohttp.ClientSession, payload: dict[str, Any], needle: str
) -> None:
    status, body = await call(http, "POST", "/_fake/faults", payload)
    assert status == 400
    assert needle in body["error"]["message"]
    assert (await call(http, "GET", "/_fake/faults"))[1] == {"faults": {}}


async def test_stats_and_reset(http: aiohttp.ClientSession, oai: openai.AsyncOpenAI,
                               fp: FakeProvider) -> None:
    fp.set_fault("bad", "503")
    await oai.chat.completions.create(model="good", messages=MESSAGES)
    with pytest.raises(openai.InternalServerError):
        await oai.chat.completions.create(model="bad", messages=MESSAGES)
    _, stats = await call(http, "GET", "/_fake/stats")
    assert stats["total"] == 2
    assert stats["by_model"] == {"good": 1, "bad": 1}
    assert stats["by_status"] == {"200": 1, "503": 1}
    assert stats["by_endpoint"] == {"openai.chat_completions": 2}
    assert stats["in_flight"] == 0 and stats["max_in_flight"] == 1
    assert len(stats["arrivals"]) == 2
    assert list(stats["per_minute"].values()) in ([2], [1, 1])
    (minute,) = stats["per_minute_by_model"]["bad"]
    assert minute.endswith("Z") and len(minute) == len("2026-01-01T00:00Z")
    status, body = await call(http, "POST", "/_fake/reset")
    assert status == 200 and body["faults"]["bad"]["status"] == 503
    _, stats = await call(http, "GET", "/_fake/stats")
    assert stats["total"] == 0 and stats["arrivals"] == [] and stats["by_status"] == {}
    assert (await call(http, "GET", "/_fake/requests"))[1] == {"requests": []}
    _, body = await call(http, "POST", "/_fake/reset", {"clear_faults": True})
    assert body["faults"] == {}


async def test_requests_endpoint_shows_bodies_and_headers(
    http: aiohttp.ClientSession, oai: openai.AsyncOpenAI
) -> None:
    for i in range(3):
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=i / 10)
    await oai.chat.completions.create(model="other", messages=MESSAGES)
    _, body = await call(http, "GET", "/_fake/requests?model=gpt-4o&limit=2")
    records = body["requests"]
    assert [r["body"]["temperature"] for r in records] == [0.1, 0.2]
    assert records[0]["headers"]["authorization"] == "Bearer sk-fake-test-key"
    assert records[0]["path"] == "/v1/chat/completions"
    _, body = await call(http, "GET", "/_fake/requests")
    assert [r["model"] for r in body["requests"]] == ["gpt-4o"] * 3 + ["other"]


async def test_request_log_is_bounded_per_model(oai: openai.AsyncOpenAI, fp: FakeProvider) -> None:
    fp.configure(record_requests=2)
    for i in range(5):
        await oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, seed=i)
    assert [r.body["seed"] for r in fp.requests("gpt-4o")] == [3, 4]


async def test_settings_change_stream_chunks_and_reply_at_runtime(
    http: aiohttp.ClientSession, oai: openai.AsyncOpenAI
) -> None:
    status, body = await call(http, "POST", "/_fake/settings",
                              {"stream_chunks": 2, "reply": "fixed words here"})
    assert status == 200 and body["stream_chunks"] == 2
    stream = await oai.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    pieces = [c.choices[0].delta.content async for c in stream
              if c.choices and c.choices[0].delta.content]
    assert pieces == ["[fake:m] fixed ", "words here"]
    status, body = await call(http, "POST", "/_fake/settings", {"stream_chunks": 0})
    assert status == 400 and "stream_chunks" in body["error"]["message"]
    status, body = await call(http, "POST", "/_fake/settings", {"port": 1})
    assert status == 400 and "port" in body["error"]["message"]
    assert (await call(http, "GET", "/_fake/settings"))[1]["stream_chunks"] == 2


async def test_api_key_can_change_at_runtime(http: aiohttp.ClientSession,
                                             oai: openai.AsyncOpenAI) -> None:
    await call(http, "POST", "/_fake/settings", {"api_key": "rotated"})
    with pytest.raises(openai.AuthenticationError):
        await oai.chat.completions.create(model="m", messages=MESSAGES)
    _, body = await call(http, "GET", "/_fake/settings")
    assert body["api_key_set"] is True and "rotated" not in str(body)


async def test_invalid_json_body_gets_the_providers_400(http: aiohttp.ClientSession) -> None:
    async with http.post("/v1/chat/completions", data=b"{nope",
                         headers={"Authorization": "Bearer sk-fake-test-key"}) as resp:
        body = await resp.json()
    assert resp.status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in body["error"]["message"]
