"""A real Prometheus (and promtool) for the tests: Debian's package, unpacked by
``scripts/install-prometheus`` into ``~/.cache/echelon/prometheus/bin``.

The binaries come from ``ECHELON_PROMETHEUS_DIR``, else ``PATH``, else that script. A test
that needs them is skipped, with the script's own message, only when they cannot be
installed (no apt-get, no Debian package lists).

::

    async with PrometheusServer(tmp_path, targets=["127.0.0.1:9090"]) as prom:
        await prom.wait_for('up{job="echelon"} == 1')
        result = await prom.query("sum(rate(echelon_requests_total[1m]))")
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "scripts" / "install-prometheus"
ENV_DIR = "ECHELON_PROMETHEUS_DIR"

__all__ = ["PrometheusServer", "prometheus_bin", "promtool"]


@functools.cache
def _bin_dir() -> Path | str:
    """The directory of prometheus and promtool, or the reason there is none."""
    given = os.environ.get(ENV_DIR)
    if given:
        return Path(given)
    found = shutil.which("prometheus")
    if found and (Path(found).parent / "promtool").exists():
        return Path(found).parent
    proc = subprocess.run([str(INSTALL)], capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not (Path(lines[-1]) / "promtool").is_file():
        return (f"Prometheus cannot be installed here (scripts/install-prometheus failed: "
                f"{proc.stderr.strip()[-500:]})")
    return Path(lines[-1])


def _binary(name: str) -> str:
    where = _bin_dir()
    if isinstance(where, str):
        pytest.skip(where)
    return str(where / name)


def prometheus_bin() -> str:
    return _binary("prometheus")


def promtool() -> str:
    return _binary("promtool")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrometheusServer:
    """A Prometheus scraping ``targets`` (host:port, path /metrics) every ``interval``."""

    def __init__(self, workdir: Path, targets: list[str], *, interval: str = "1s",
                 job: str = "echelon") -> None:
        self.workdir = workdir
        self.targets = targets
        self.interval = interval
        self.job = job
        self.port = 0
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PrometheusServer:
        binary = prometheus_bin()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "scrape_configs": [{"job_name": self.job, "metrics_path": "/metrics",
                                "static_configs": [{"targets": self.targets}]}],
        }))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc = self._spawn(binary, config)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        deadline = time.monotonic() + 30
        while True:
            if self._proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log()[-2000:]}")
            try:
                async with self._http.get(f"{self.url}/-/ready") as resp:
                    if resp.status == 200:
                        return self
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready after 30s: {self.log()[-2000:]}")
            await asyncio.sleep(0.1)

    def _spawn(self, binary: str, config: Path) -> subprocess.Popen[bytes]:
        with (self.workdir / "prometheus.log").open("wb") as log:
            return subprocess.Popen(
                [binary, f"--config.file={config}",
                 f"--storage.tsdb.path={self.workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)

    def log(self) -> str:
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (raises on a query error)."""
        assert self._http is not None
        async with self._http.get(f"{self.url}/api/v1/query", params={"query": expr}) as resp:
            body = await resp.json()
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body.get('error')}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    async def targets_up(self) -> list[dict[str, Any]]:
        assert self._http is not None
        async with self._http.get(f"{self.url}/api/v1/targets") as resp:
            body = await resp.json()
        active: list[dict[str, Any]] = body["data"]["activeTargets"]
        return active

    async def wait_for(self, expr: str, within: float = 20.0) -> list[dict[str, Any]]:
        """The result of ``expr`` once it is not empty (fails after ``within`` seconds)."""
        deadline = time.monotonic() + within
        while True:
            result = await self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{expr!r} still empty after {within}s; targets: "
                                     f"{await self.targets_up()}")
            await asyncio.sleep(0.2)

    async def scrapes(self, count: int = 2) -> None:
        """Wait until the target has been scraped ``count`` more times."""
        expr = f'count_over_time(up{{job="{self.job}"}}[10m])'
        before = await self.query(expr)
        start = float(before[0]["value"][1]) if before else 0.0
        deadline = time.monotonic() + 30
        while True:
            now = await self.query(expr)
            if now and float(now[0]["value"][1]) >= start + count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} scrapes in 30s")
            await asyncio.sleep(0.2)
