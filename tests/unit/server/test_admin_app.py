"""``create_admin_app``: probes, ``/v1/status`` and ``/metrics`` of the sidecar it serves."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from echelon_sidecar.server import ServerSettings, Sidecar, create_admin_app, create_data_app

from .conftest import UPSTREAM_KEY, FakeUpstream, WriteConfig, chat

Client = TestClient[Any, Any]


def _sample(text: str, name: str, **labels: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_healthz_answers_even_before_any_config(aiohttp_client: AiohttpClient,
                                                      config: Any) -> None:
    client = await aiohttp_client(create_admin_app(Sidecar(ServerSettings(config=config))))
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}


async def test_readyz_is_503_until_a_config_is_loaded_then_200_with_its_version(
    aiohttp_client: AiohttpClient, sidecar: Sidecar
) -> None:
    admin = await aiohttp_client(create_admin_app(sidecar))
    resp = await admin.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["reason"] == "no config loaded"
    await aiohttp_client(create_data_app(sidecar))  # its start-up loads the config
    resp = await admin.get("/readyz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ready" and body["config_version"] == sidecar.engine.version  # type: ignore[union-attr]


async def test_readyz_gives_the_reason_an_invalid_config_was_refused(
    aiohttp_client: AiohttpClient, write_config: WriteConfig
) -> None:
    sidecar = Sidecar(ServerSettings(config=write_config("task_groups: {g: {}}\n"),
                                     reload_interval=0))
    await aiohttp_client(create_data_app(sidecar))
    admin = await aiohttp_client(create_admin_app(sidecar))
    resp = await admin.get("/readyz")
    assert resp.status == 503
    assert "task_groups.g" in (await resp.json())["reason"]


async def test_readyz_is_503_while_draining(data_client: Client, admin_client: Client,
                                            sidecar: Sidecar) -> None:
    sidecar.draining = True
    resp = await admin_client.get("/readyz")
    assert resp.status == 503 and (await resp.json())["status"] == "draining"


async def test_status_shows_each_instance_and_pool_and_no_credential(
    data_client: Client, admin_client: Client, upstream: FakeUpstream
) -> None:
    upstream.fail["up-a"] = 503
    await data_client.post("/v1/chat/completions", json=chat("g"))
    resp = await admin_client.get("/v1/status")
    assert resp.status == 200
    text = await resp.text()
    assert UPSTREAM_KEY not in text
    doc = await resp.json()
    assert doc["ready"] is True and doc["reload"]["failures"] == 0
    by_model = {i["model"]: i for i in doc["instances"]}
    assert by_model["a"]["consecutive_failures"] == 1 and by_model["a"]["provider"] == "openai"
    assert by_model["b"]["state"] == "closed"
    assert [i["model"] for i in doc["pools"]["p"]] == ["a"]


async def test_metrics_count_served_requests_and_fallbacks(
    data_client: Client, admin_client: Client, upstream: FakeUpstream
) -> None:
    await data_client.post("/v1/chat/completions", json=chat("g"))
    upstream.fail["up-a"] = 503
    await data_client.post("/v1/chat/completions", json=chat("g"))
    resp = await admin_client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert _sample(text, "echelon_requests_total", target="g", outcome="ok") == 2
    assert _sample(text, "echelon_fallbacks_total", target="g") == 1
    assert _sample(text, "echelon_pool_instance_healthy", pool="p", model="a") in (0, 1)
    assert _sample(text, "echelon_config_last_reload_ok") == 1


async def test_the_admin_port_describes_itself_in_openapi(admin_client: Client) -> None:
    resp = await admin_client.get("/openapi.json")
    assert resp.status == 200
    assert {"/healthz", "/readyz", "/metrics", "/v1/status"} <= set((await resp.json())["paths"])
