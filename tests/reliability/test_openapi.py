"""The sidecar describes both its ports in OpenAPI (``GET /openapi.json``), and the
descriptions cover every route each port serves. tests/reliability/test_schemathesis.py fuzzes
the sidecar against them."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from echelon_sidecar.server import admin, data
from echelon_tools.fake_provider import FakeProvider

from ..integration.conftest import MakeSidecar, openai_model


def _config(fake: FakeProvider) -> dict[str, Any]:
    return {"task_groups": {"g": {"echelon1": {"models": ["m"]}}},
            "polling_pools": {"p": {"task_groups": ["g"]}},
            "workflow_nodes": {"n": {"llm_group": "g"}},
            "models": {"m": openai_model(fake, "up-m")}}


def _routes(routes: Any) -> set[tuple[str, str]]:
    return {(route.method, route.path) for route in routes}


def _documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item}


@pytest.mark.parametrize(("port", "routes"), [("data", data.ROUTES), ("admin", admin.ROUTES)])
async def test_each_port_serves_an_openapi_description_of_every_route_it_has(
    fake: FakeProvider, make_sidecar: MakeSidecar, port: str, routes: Any
) -> None:
    sc = await make_sidecar(_config(fake))
    base = sc.data_url if port == "data" else sc.admin_url
    async with aiohttp.ClientSession() as http, http.get(f"{base}/openapi.json") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        spec = await resp.json()
    assert spec["openapi"].startswith("3.")
    assert _documented(spec) == _routes(routes)
    if port == "data":
        request = spec["components"]["schemas"]["ChatCompletionRequest"]
        assert request["properties"]["model"]["enum"] == sorted(
            ["g", "g.echelon1", "p", "n"]), "the names this sidecar serves"


async def test_the_data_port_describes_post_v1_responses(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    async with aiohttp.ClientSession() as http, http.get(f"{sc.data_url}/openapi.json") as resp:
        spec = await resp.json()
    operation = spec["paths"]["/v1/responses"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResponsesRequest"}
    answer = operation["responses"]["200"]["content"]
    assert answer["application/json"]["schema"] == {"$ref": "#/components/schemas/Response"}
    events = answer["text/event-stream"]["schema"]["properties"]["event"]["enum"]
    assert events[0] == "response.created" and "response.completed" in events
    assert "X-Echelon-Served-By" in operation["responses"]["200"]["headers"]
    schemas = spec["components"]["schemas"]
    assert schemas["ResponsesRequest"]["properties"]["model"]["enum"] == sorted(
        ["g", "g.echelon1", "p", "n"])
    assert schemas["Response"]["properties"]["object"]["enum"] == ["response"]


async def test_the_data_ports_description_covers_embeddings_and_count_tokens(
    fake: FakeProvider, make_sidecar: MakeSidecar
) -> None:
    sc = await make_sidecar(_config(fake))
    async with aiohttp.ClientSession() as http, http.get(f"{sc.data_url}/openapi.json") as resp:
        spec = await resp.json()
    schemas = spec["components"]["schemas"]
    embeddings = spec["paths"]["/v1/embeddings"]["post"]
    assert embeddings["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EmbeddingsRequest"}
    assert list(embeddings["responses"]["200"]["content"]) == ["application/json"]  # no stream
    assert "X-Echelon-Usage" in embeddings["responses"]["200"]["headers"]
    assert schemas["EmbeddingsRequest"]["properties"]["encoding_format"]["enum"] == [
        "float", "base64"]
    assert schemas["Embeddings"]["required"] == ["object", "data", "model", "usage"]
    count = spec["paths"]["/v1/messages/count_tokens"]["post"]
    assert count["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TokenCount"}
    assert {p["name"] for p in count["parameters"]} == {"X-Echelon-Node", "X-Request-Id"}
    for name in ("EmbeddingsRequest", "AnthropicCountTokensRequest"):
        assert schemas[name]["properties"]["model"]["enum"] == sorted(
            ["g", "g.echelon1", "p", "n"])
    assert "endpoints" in schemas["Model"]["properties"]
