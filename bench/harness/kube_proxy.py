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
    #: sent when a request carries no credential of its own (client-go sends no bearer
    #: token over plain HTTP)
    token: str | None = None
    writes: list[Write] = field(default_factory=list)
    reads: int = 0
    #: when each pod list was asked for (the start of an operator's poll round)
    pod_lists: list[float] = field(default_factory=list)
    #: answers of 400 and above: (method, path, status, request content type, body head)
    refused: list[tuple[str, str, int, str, str]] = field(default_factory=list)
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
            if request.method == "GET" and request.path.endswith("/pods") and \
                    "watch" not in request.query:
                self.pod_lists.append(time.time())
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        if self.token and "Authorization" not in request.headers:
            headers["Authorization"] = f"Bearer {self.token}"
        body = await request.read()
        # a request without a Content-Type goes on without one (the API server reads it as
        # JSON; aiohttp would call it application/octet-stream, which it refuses)
        skip = () if "Content-Type" in request.headers else ("Content-Type",)
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         data=body or None, headers=headers,
                                         skip_auto_headers=skip) as up:
            out_headers: dict[str, Any] = {
                k: v
                for k, v in up.headers.items()
                if k.lower() not in _HOP and k.lower() != "content-encoding"
            }
            if up.headers.get("Content-Encoding"):
                out_headers["Content-Encoding"] = up.headers["Content-Encoding"]
            if up.status >= 400 and up.status != 404 and len(self.refused) < 100:
                self.refused.append((request.method, request.path, up.status,
                                     request.headers.get("Content-Type", ""),
                                     body[:200].decode("utf-8", "replace")))
            response = web.StreamResponse(status=up.status, headers=out_headers)
            await response.prepare(request)
            try:
                async for chunk in up.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:  # the client went away (a watch cut as it stops)
                pass
            return response
