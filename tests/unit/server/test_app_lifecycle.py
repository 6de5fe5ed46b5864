"""What the data app's ``cleanup_ctx`` sets up and tears down, and reloading its config."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from echelon_sidecar.providers import HttpProvider
from echelon_sidecar.server import ServerSettings, Sidecar, create_data_app, runtime

from .conftest import FakeUpstream, WriteConfig, base_config, chat

Client = TestClient[Any, Any]


def _tasks(name: str) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name and not t.done()]


class ClosingSpy(HttpProvider):
    closed = 0

    async def close(self) -> None:
        type(self).closed += 1
        await super().close()


async def test_the_data_apps_start_up_loads_the_config_and_its_cleanup_closes_the_upstream(
    aiohttp_client: AiohttpClient, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "HttpProvider", ClosingSpy)
    ClosingSpy.closed = 0
    sidecar = Sidecar(ServerSettings(config=config, reload_interval=0))
    client = await aiohttp_client(create_data_app(sidecar))
    assert sidecar.engine is not None and isinstance(sidecar.provider, ClosingSpy)
    assert _tasks("health-checks") and not _tasks("config-watcher")  # interval 0: not watched
    await client.close()
    assert ClosingSpy.closed == 1
    assert not _tasks("health-checks")


async def test_an_injected_provider_is_left_to_its_owner(aiohttp_client: AiohttpClient,
                                                         config: Path) -> None:
    provider = ClosingSpy()
    ClosingSpy.closed = 0
    sidecar = Sidecar(ServerSettings(config=config, reload_interval=0), provider=provider)
    client = await aiohttp_client(create_data_app(sidecar))
    assert sidecar.engine is not None and sidecar.engine.provider is provider
    await client.close()
    assert ClosingSpy.closed == 0
    await provider.close()


async def test_the_config_watcher_runs_while_the_app_serves_and_picks_up_a_change(
    aiohttp_client: AiohttpClient, upstream: FakeUpstream, config: Path,
    write_config: WriteConfig
) -> None:
    sidecar = Sidecar(ServerSettings(config=config, reload_interval=0.02))
    client = await aiohttp_client(create_data_app(sidecar))
    assert len(_tasks("config-watcher")) == 1
    assert sidecar.engine is not None
    first = sidecar.engine.version
    changed = base_config(upstream)
    changed["task_groups"]["g"]["echelon1"]["models"] = ["b"]
    write_config(changed)
    deadline = time.monotonic() + 10
    while sidecar.engine.version == first:
        assert time.monotonic() < deadline, "the watcher did not reload the changed config"
        await asyncio.sleep(0.02)
    resp = await client.post("/v1/chat/completions", json=chat("g"))
    assert resp.headers["X-Echelon-Served-By"] == "b"
    assert sidecar.reload_state["reloads"] == 1
    await client.close()
    assert not _tasks("config-watcher")


async def test_an_invalid_new_config_is_refused_and_the_old_one_keeps_serving(
    data_client: Client, upstream: FakeUpstream, sidecar: Sidecar, write_config: WriteConfig
) -> None:
    assert sidecar.engine is not None
    version = sidecar.engine.version
    write_config("task_groups:\n  g:\n    echelon1: {models: [missing]}\n")
    assert await sidecar.reload_now() is False
    assert sidecar.engine.version == version
    assert sidecar.reload_state["failures"] == 1 and "missing" in sidecar.reload_state[
        "last_error"]
    resp = await data_client.post("/v1/chat/completions", json=chat("g"))
    assert resp.status == 200 and resp.headers["X-Echelon-Served-By"] == "a"
    text = sidecar.metrics.render().decode()
    assert 'echelon_config_reloads_total{result="failure"} 1.0' in text
    assert "echelon_config_last_reload_ok 0.0" in text

    write_config(base_config(upstream) | {"workflow_nodes": {}})  # valid again, and different
    assert await sidecar.reload_now() is True
    assert sidecar.engine.version != version and sidecar.reload_state["last_error"] is None
    assert await sidecar.reload_now() is False  # unchanged: nothing to do


async def test_a_sidecar_that_cannot_listen_closes_what_it_set_up(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "HttpProvider", ClosingSpy)
    ClosingSpy.closed = 0
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        sidecar = Sidecar(ServerSettings(config=config, port=0, admin_host="127.0.0.1",
                                         admin_port=port, reload_interval=0.05))
        with pytest.raises(OSError):
            await sidecar.start()
    assert sidecar.engine is not None  # the data app had started
    assert ClosingSpy.closed == 1
    assert not _tasks("config-watcher") and not _tasks("health-checks")


async def test_start_serves_both_apps_on_their_ports_and_stop_drains_them(
    config: Path,
) -> None:
    import aiohttp

    async with Sidecar(ServerSettings(config=config, port=0, admin_host="127.0.0.1",
                                      admin_port=0, reload_interval=0)) as sidecar, \
            aiohttp.ClientSession() as http:
        async with http.get(f"{sidecar.admin_url}/readyz") as resp:
            assert resp.status == 200
        async with http.post(f"{sidecar.data_url}/v1/chat/completions",
                             json=chat("g")) as resp:
            assert resp.status == 200
    assert sidecar.draining
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(f"{sidecar.admin_url}/readyz")


def test_the_apps_hold_the_sidecar_under_a_typed_key(config: Path) -> None:
    from echelon_sidecar.server import SIDECAR, create_admin_app

    sidecar = Sidecar(ServerSettings(config=config))
    for app in (create_data_app(sidecar), create_admin_app(sidecar)):
        assert isinstance(app, web.Application)
        assert app[SIDECAR] is sidecar
