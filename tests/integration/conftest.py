"""Shared fixtures of the integration tests: fake upstreams, sidecars on them, SDK clients.

::

    async def test_x(fake, make_sidecar):
        fake.set_fault("bad-model", "503")
        sc = await make_sidecar({"task_groups": {...}, "models": {...}})
        reply = await sc.openai.chat.completions.create(model="g", messages=HI)
        status = await sc.status()

Everything listens on 127.0.0.1 with OS-chosen ports; everything started is stopped. The fake
upstreams require ``FAKE_API_KEY``; the sidecar reads it from the env var ``API_KEY_ENV`` (so
the tests also prove credentials are forwarded, and that they never leak).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from echelon_sidecar.server import ServerSettings, Sidecar
from echelon_tools.fake_provider import FakeProvider, FakeSettings

FAKE_API_KEY = "sk-echelon-test-9f8e7d6c5b4a39281706"
API_KEY_ENV = "ECHELON_TEST_UPSTREAM_KEY"
HI = [{"role": "user", "content": "hello there sidecar"}]

Config = dict[str, Any] | str


# -- model catalog entries -------------------------------------------------------------------------

def openai_model(fake: FakeProvider, upstream: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "openai", "model": upstream, "base_url": fake.openai_base_url,
            "api_key_env": API_KEY_ENV, **extra}


def anthropic_model(fake: FakeProvider, upstream: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "anthropic", "model": upstream, "base_url": fake.anthropic_base_url,
            "api_key_env": API_KEY_ENV, **extra}


def gemini_model(fake: FakeProvider, upstream: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "gemini", "model": upstream, "base_url": fake.gemini_base_url,
            "api_key_env": API_KEY_ENV, **extra}


def write_config(path: Path, config: Config) -> None:
    """Write atomically (temp file + rename), so a watcher never reads half a file."""
    text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -- metrics ---------------------------------------------------------------------------------------

def metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def eventually(check: Callable[[], Awaitable[bool] | bool], *, within: float = 5.0,
                     interval: float = 0.02, what: str = "condition") -> None:
    """Poll ``check`` until it holds, failing after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


# -- the sidecar handle ----------------------------------------------------------------------------

@dataclass
class RunningSidecar:
    sidecar: Sidecar
    config_path: Path
    openai: openai.AsyncOpenAI
    anthropic: anthropic.AsyncAnthropic
    http: aiohttp.ClientSession
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def data_url(self) -> str:
        return self.sidecar.data_url

    @property
    def admin_url(self) -> str:
        return self.sidecar.admin_url

    def rewrite(self, config: Config) -> None:
        write_config(self.config_path, config)

    async def status(self) -> dict[str, Any]:
        async with self.http.get(f"{self.admin_url}/v1/status") as resp:
            assert resp.status == 200
            data: dict[str, Any] = await resp.json()
            return data

    async def metrics(self) -> str:
        async with self.http.get(f"{self.admin_url}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()

    async def post(self, path: str, body: Any = None, *, data: bytes | None = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """A raw request to the data port: (status, headers, parsed JSON or text)."""
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if data is not None:
            kwargs["data"] = data
        else:
            kwargs["json"] = body
        async with self.http.post(f"{self.data_url}{path}", **kwargs) as resp:
            text = await resp.text()
            try:
                parsed: Any = await resp.json(content_type=None)
            except ValueError:
                parsed = text
            return resp.status, dict(resp.headers), parsed

    async def openai_stream(self, into: list[Any], **create: Any) -> None:
        """Stream a chat completion chunk by chunk into ``into`` (kept if it fails)."""
        stream = await self.openai.chat.completions.create(stream=True, **create)
        async for chunk in stream:
            into.append(chunk)

    async def anthropic_stream(self, into: list[str], **create: Any) -> None:
        """Stream a message, appending each event's type to ``into`` (kept if it fails)."""
        async with self.anthropic.messages.stream(**create) as stream:
            async for event in stream:
                into.append(event.type)

    def in_flight(self, status: dict[str, Any]) -> int:
        """Concurrency slots held, over every limit in /v1/status."""
        return sum(int(item.get("in_flight", 0)) for item in status["limits"]
                   if item.get("kind") == "concurrency")


MakeSidecar = Callable[..., Awaitable[RunningSidecar]]


@pytest.fixture
def upstream_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(API_KEY_ENV, FAKE_API_KEY)
    return FAKE_API_KEY


@pytest.fixture
async def fake(upstream_key: str) -> AsyncIterator[FakeProvider]:
    async with FakeProvider(FakeSettings(api_key=upstream_key, seed=7, record_requests=500),
                            shutdown_timeout=1.0) as provider:
        yield provider


@pytest.fixture
async def make_sidecar(tmp_path: Path, upstream_key: str) -> AsyncIterator[MakeSidecar]:
    """``await make_sidecar(config, **server_settings)``: a started sidecar and its clients."""
    async with AsyncExitStack() as stack:
        count = 0

        async def make(config: Config, *, config_path: Path | None = None,
                       **settings: Any) -> RunningSidecar:
            nonlocal count
            count += 1
            if config_path is None:
                folder = tmp_path / f"sidecar{count}"
                folder.mkdir()
                config_path = folder / "echelon.yaml"
                write_config(config_path, config)
            options: dict[str, Any] = {"port": 0, "admin_port": 0, "admin_host": "127.0.0.1",
                                       "reload_interval": 0, "drain_timeout": 5.0}
            options.update(settings)
            clock = options.pop("clock", None)
            sidecar = Sidecar(ServerSettings(config=config_path, **options), clock=clock)
            await sidecar.start()
            stack.push_async_callback(sidecar.stop)
            http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            stack.push_async_callback(http.close)
            oai = openai.AsyncOpenAI(base_url=sidecar.data_url + "/v1", api_key="x",
                                     max_retries=0, timeout=30)
            stack.push_async_callback(oai.close)
            claude = anthropic.AsyncAnthropic(base_url=sidecar.data_url, api_key="x",
                                              max_retries=0, timeout=30)
            stack.push_async_callback(claude.close)
            return RunningSidecar(sidecar, config_path, oai, claude, http)

        yield make
