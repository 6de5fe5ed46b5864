"""A counting proxy in front of the API server: every write the operator makes, timestamped.

The operator gets a kubeconfig whose server is this proxy (plain HTTP on 127.0.0.1); the
proxy forwards each request as it came (its bearer token included) to the real API server
and streams the answer back (watches too). Requests that change something (POST, PUT, PATCH,
DELETE) are recorded with their time, method and path; reads are counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["CountingProxy", "Write"]

_HOP = {"host", "connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
        "proxy-authorization", "proxy-authenticate", "content-length"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class Write:
    at: float
    method: str
    path: str

    @property
    def kind(self) -> str:
        if self.path.endswith("/status"):
            return "status"
        if "/events" in self.path:
            return "event"
        return "other"


@dataclass
class CountingProxy:
    upstream: str
    writes: list[Write] = field(default_factory=list)
    reads: int = 0
    _runner: web.AppRunner | None = None
    _session: aiohttp.ClientSession | None = None
    port: int = 0

    async def start(self) -> str:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=False, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            auto_decompress=False)
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = next(int(a[1]) for a in self._runner.addresses if isinstance(a, tuple))
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def since(self, t: float) -> list[Write]:
        return [w for w in self.writes if w.at >= t]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        if request.method in WRITES:
            self.writes.append(Write(time.time(), request.method, request.path))
        else:
            self.reads += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        body = await request.read()
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         data=body or None, headers=headers) as up:
            out_headers: dict[str, Any] = {k: v for k, v in up.headers.items()
                                           if k.lower() not in _HOP and k.lower() != "content-encoding"}
            if up.headers.get("Content-Encoding"):
                out_headers["Content-Encoding"] = up.headers["Content-Encoding"]
            response = web.StreamResponse(status=up.status, headers=out_headers)
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response
