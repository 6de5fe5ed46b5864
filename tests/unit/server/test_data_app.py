"""``create_data_app``: routing, fallback, streams and error envelopes over a fake upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from echelon_sidecar.server import ServerSettings, Sidecar, create_data_app

from .conftest import UPSTREAM_KEY, FakeUpstream, WriteConfig, chat

Client = TestClient[Any, Any]


async def test_a_group_is_served_by_its_first_tier_and_the_reply_says_who_served_it(
    data_client: Client, upstream: FakeUpstream
) -> None:
    resp = await data_client.post("/v1/chat/completions", json=chat("g"))
    assert resp.status == 200
    body = await resp.json()
    assert body["choices"][0]["message"]["content"] == "hi from up-a"
    assert resp.headers["X-Echelon-Served-By"] == "a"
    assert resp.headers["X-Echelon-Tier"] == "g.echelon1"
    assert resp.headers["X-Echelon-Attempts"] == "1"
    assert resp.headers["X-Echelon-Fallbacks"] == "0"
    assert resp.headers["X-Request-Id"]
    assert upstream.seen == [("up-a", f"Bearer {UPSTREAM_KEY}")]


async def test_an_upstream_503_falls_back_to_the_next_tier(
    data_client: Client, upstream: FakeUpstream
) -> None:
    upstream.fail["up-a"] = 503
    resp = await data_client.post("/v1/chat/completions", json=chat("g"))
    assert resp.status == 200
    assert (await resp.json())["choices"][0]["message"]["content"] == "hi from up-b"
    assert resp.headers["X-Echelon-Tier"] == "g.echelon2"
    assert resp.headers["X-Echelon-Attempts"] == "2"
    assert resp.headers["X-Echelon-Fallbacks"] == "1"


async def test_pools_nodes_and_tiers_are_names_a_request_can_give(
    data_client: Client, upstream: FakeUpstream
) -> None:
    for name, served in (("p", "a"), ("n", "b"), ("g.echelon2", "b"), ("g-echelon1", None)):
        resp = await data_client.post("/v1/chat/completions", json=chat(name))
        if served is None:  # "-" for "_" is fine, "." for the tier is not optional
            assert resp.status == 404
            continue
        assert resp.status == 200, await resp.text()
        assert resp.headers["X-Echelon-Served-By"] == served


async def test_a_stream_is_relayed_as_server_sent_events_to_done(data_client: Client) -> None:
    resp = await data_client.post("/v1/chat/completions", json=chat("g", stream=True))
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["X-Echelon-Served-By"] == "a"
    events = [line[len(b"data: "):] for line in (await resp.read()).split(b"\n\n") if line]
    assert events[-1] == b"[DONE]"
    text = "".join(orjson.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1])
    assert text == "hi from up-a"


async def test_an_exhausted_chain_answers_the_openai_error_shape_with_every_attempt(
    data_client: Client, upstream: FakeUpstream
) -> None:
    upstream.fail.update({"up-a": 503, "up-b": 500})
    resp = await data_client.post("/v1/chat/completions", json=chat("g"))
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["code"] == "fallback_chain_exhausted"
    assert [(a["model"], a["status"]) for a in error["attempts"]] == [("a", 503), ("b", 500)]
    assert resp.headers["X-Echelon-Attempts"] == "2"


async def test_v1_messages_answers_errors_in_the_anthropic_shape(
    data_client: Client, upstream: FakeUpstream
) -> None:
    upstream.fail.update({"up-a": 503, "up-b": 503})
    resp = await data_client.post("/v1/messages", json=chat("g", max_tokens=16))
    assert resp.status == 502
    body = await resp.json()
    assert body["type"] == "error" and body["error"]["type"]
    assert len(body["error"]["attempts"]) == 2


async def test_an_unknown_model_is_a_404_naming_the_model_field(data_client: Client) -> None:
    resp = await data_client.post("/v1/chat/completions", json=chat("nope"))
    assert resp.status == 404
    error = (await resp.json())["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")


async def test_unknown_paths_answer_in_the_callers_shape_and_list_the_endpoints(
    data_client: Client,
) -> None:
    resp = await data_client.get("/v1/nope")
    assert resp.status == 404
    error = (await resp.json())["error"]
    assert error["code"] == "unknown_endpoint" and "POST /v1/chat/completions" in error["message"]
    resp = await data_client.post("/v1/messages/nope", json={})
    body = await resp.json()
    assert resp.status == 404 and body["type"] == "error"


async def test_a_wrong_method_is_a_405_with_allow(data_client: Client) -> None:
    resp = await data_client.get("/v1/chat/completions")
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert (await resp.json())["error"]["code"] == "unknown_endpoint"


async def test_a_body_that_is_not_json_is_a_400(data_client: Client) -> None:
    resp = await data_client.post("/v1/chat/completions", data=b"{not json",
                                  headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "invalid_request_error"


async def test_a_body_over_the_limit_is_a_413(aiohttp_client: AiohttpClient,
                                              config: Path) -> None:
    sidecar = Sidecar(ServerSettings(config=config, reload_interval=0, max_body_bytes=2048))
    client = await aiohttp_client(create_data_app(sidecar))
    resp = await client.post("/v1/chat/completions",
                             json=chat("g", user="x" * 4096))
    assert resp.status == 413


async def test_without_a_valid_config_requests_get_503_and_retry_after(
    aiohttp_client: AiohttpClient, write_config: WriteConfig
) -> None:
    sidecar = Sidecar(ServerSettings(config=write_config("task_groups: [1, 2]\n"),
                                     reload_interval=0))
    client = await aiohttp_client(create_data_app(sidecar))
    assert sidecar.engine is None
    resp = await client.post("/v1/chat/completions", json=chat("g"))
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"


async def test_v1_models_lists_every_served_name(data_client: Client) -> None:
    resp = await data_client.get("/v1/models")
    assert resp.status == 200
    ids = {m["id"]: m["kind"] for m in (await resp.json())["data"]}
    assert ids == {"g": "group", "g.echelon1": "tier", "g.echelon2": "tier", "p": "pool",
                   "n": "node"}
    resp = await data_client.get("/v1/models/g.echelon2")
    assert (await resp.json())["kind"] == "tier"
    resp = await data_client.get("/v1/models/nope")
    assert resp.status == 404


async def test_the_data_port_describes_itself_in_openapi(data_client: Client) -> None:
    resp = await data_client.get("/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert "/v1/chat/completions" in spec["paths"]
    assert spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]["model"][
        "enum"] == sorted(["g", "g.echelon1", "g.echelon2", "p", "n"])
