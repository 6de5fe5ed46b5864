"""`echelon-sidecar` as a process: it binds loopback, and SIGTERM drains in-flight requests."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import psutil
import pytest

from echelon_tools.fake_provider import FakeProvider

from ..conftest import HI, eventually, openai_model, write_config

SIDECAR = Path(sys.executable).with_name("echelon-sidecar")


class Process:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, object]] = []
        self.data_url = self.admin_url = ""

    async def serving(self) -> None:
        """Read the JSON log until the sidecar says where it serves."""
        assert self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                raise AssertionError(f"echelon-sidecar exited early: {self.lines}")
            record = json.loads(line)
            self.lines.append(record)
            message = str(record["message"])
            if message.startswith("sidecar serving on "):
                parts = message.split()
                self.data_url, self.admin_url = parts[3], parts[5].rstrip(")")
                return

    async def drain_log(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.lines.append(json.loads(line))


@pytest.fixture
async def sidecar_process(fake: FakeProvider, tmp_path: Path) -> AsyncIterator[Process]:
    config = tmp_path / "echelon.yaml"
    write_config(config, {
        "task_groups": {"g": {"echelon1": {"models": ["slow"]}}},
        "models": {"slow": openai_model(fake, "up-slow")},
    })
    proc = await asyncio.create_subprocess_exec(
        str(SIDECAR), "--config", str(config), "--port", "0", "--admin-port", "0",
        "--admin-host", "127.0.0.1", "--log-format", "json", "--drain-timeout", "10",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    process = Process(proc)
    try:
        async with asyncio.timeout(20):
            await process.serving()
        yield process
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _connect(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return False
        return True


async def test_the_cli_data_port_binds_loopback_only(sidecar_process: Process) -> None:
    listening = {c.laddr.port: c.laddr.ip
                 for c in psutil.Process(sidecar_process.proc.pid).net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN}
    assert listening[_port(sidecar_process.data_url)] == "127.0.0.1"


async def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0(
    sidecar_process: Process, fake: FakeProvider
) -> None:
    fake.set_fault("up-slow", "latency:1500")
    client = openai.AsyncOpenAI(base_url=sidecar_process.data_url + "/v1", api_key="x",
                                max_retries=0, timeout=20)
    port = _port(sidecar_process.data_url)
    try:
        slow = asyncio.create_task(client.chat.completions.create(model="g", messages=HI))
        async with asyncio.timeout(10):
            await fake.wait_for(lambda s: s.in_flight == 1)
        sidecar_process.proc.send_signal(signal.SIGTERM)
        await eventually(lambda: not _connect(port), what="the data port to stop accepting")
        assert not slow.done(), "the slow request was still in flight when the port closed"
        async with aiohttp.ClientSession() as http, \
                http.get(f"{sidecar_process.admin_url}/readyz") as resp:
            assert resp.status == 503, "not ready while draining"
            assert (await resp.json())["status"] == "draining"
        async with asyncio.timeout(15):
            completion = await slow
        assert completion.choices[0].message.content == "[fake:up-slow] hello there sidecar"
        async with asyncio.timeout(15):
            code = await sidecar_process.proc.wait()
            await sidecar_process.drain_log()
    finally:
        await client.close()
    assert code == 0
    messages = [str(r["message"]) for r in sidecar_process.lines]
    assert any(m.startswith("stopping: draining") for m in messages)
    assert not any(r["level"] == "error" for r in sidecar_process.lines), messages
