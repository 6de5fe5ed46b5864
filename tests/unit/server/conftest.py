"""The sidecar's two applications under pytest-aiohttp, in front of a fake upstream.

::

    async def test_x(upstream, config, data_client):
        upstream.fail["up-a"] = 503
        resp = await data_client.post("/v1/chat/completions", json=chat("g"))

``upstream`` is a small OpenAI-compatible server (``aiohttp_server``) whose models answer, or
fail with a status set per upstream model name. ``config`` writes the sidecar's config file
(models ``a`` -> ``up-a``, ``b`` -> ``up-b``; group ``g`` with tiers ``echelon1: [a]`` and
``echelon2: [b]``; pool ``p``; node ``n``). ``data_client`` and ``admin_client`` are
``aiohttp_client`` over ``create_data_app(sidecar)`` and ``create_admin_app(sidecar)``: the
data app's start-up loads the config, so take ``data_client`` first when a test needs a
loaded engine on the admin port.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pytest_aiohttp import AiohttpClient, AiohttpServer

from echelon_sidecar.server import ServerSettings, Sidecar, create_admin_app, create_data_app

UPSTREAM_KEY = "sk-unit-upstream-5f4e3d2c1b0a"
KEY_ENV = "ECHELON_UNIT_UPSTREAM_KEY"
HI = [{"role": "user", "content": "hello"}]


def chat(model: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": HI, **extra}
    if model is not None:
        body["model"] = model
    return body


@dataclass
class FakeUpstream:
    """OpenAI's ``POST /v1/chat/completions``, whole and streamed (three chunks)."""

    server: TestServer | None = None
    fail: dict[str, int] = field(default_factory=dict)  # upstream model -> status
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (model, Authorization)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/v1"))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body["model"]
        self.seen.append((model, request.headers.get("Authorization")))
        status = self.fail.get(model)
        if status is not None:
            return web.json_response({"error": {"message": f"{model} is failing",
                                                "type": "server_error", "code": None}},
                                     status=status)
        if body.get("stream"):
            return await self._stream(request, model)
        return web.json_response({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"hi from {model}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})

    async def _stream(self, request: web.Request, model: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for delta, finish in (({"role": "assistant", "content": ""}, None),
                              ({"content": f"hi from {model}"}, None), ({}, "stop")):
            chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                     "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await resp.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def model_entry(upstream: FakeUpstream, name: str) -> dict[str, Any]:
    return {"provider": "openai", "model": name, "base_url": upstream.base_url,
            "api_key_env": KEY_ENV}


def base_config(upstream: FakeUpstream) -> dict[str, Any]:
    breaker = {"failure_threshold": 5, "recovery_time": 30, "half_open_requests": 1}
    return {
        "models": {"a": model_entry(upstream, "up-a"), "b": model_entry(upstream, "up-b")},
        "task_groups": {"g": {
            "echelon1": {"models": ["a"], "priority": 1, "max_retries": 0},
            "echelon2": {"models": ["b"], "priority": 2, "max_retries": 0},
            "fallback_config": {"strategy": "echelon_down", "retry_delay": 0,
                                "circuit_breaker": breaker}}},
        "polling_pools": {"p": {"task_groups": ["g.echelon1"]}},
        "workflow_nodes": {"n": {"llm_group": "g.echelon2"}},
    }


WriteConfig = Callable[[dict[str, Any] | str], Path]


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer,
                   monkeypatch: pytest.MonkeyPatch) -> FakeUpstream:
    monkeypatch.setenv(KEY_ENV, UPSTREAM_KEY)
    fake = FakeUpstream()
    fake.server = await aiohttp_server(fake.app())
    return fake


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write the config file (a dict as YAML, or text as it is), atomically."""
    path = tmp_path / "echelon.yaml"

    def write(config: dict[str, Any] | str) -> Path:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        tmp = path.with_name(".echelon.yaml.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path

    return write


@pytest.fixture
def config(upstream: FakeUpstream, write_config: WriteConfig) -> Path:
    return write_config(base_config(upstream))


@pytest.fixture
def sidecar(config: Path) -> Sidecar:
    return Sidecar(ServerSettings(config=config, reload_interval=0, drain_timeout=1))


@pytest.fixture
async def data_client(aiohttp_client: AiohttpClient, sidecar: Sidecar) -> TestClient[Any, Any]:
    return await aiohttp_client(create_data_app(sidecar))


@pytest.fixture
async def admin_client(aiohttp_client: AiohttpClient, sidecar: Sidecar) -> TestClient[Any, Any]:
    return await aiohttp_client(create_admin_app(sidecar))
