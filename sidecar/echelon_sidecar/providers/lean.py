"""A lean HTTP/1.1 client for whole (non-streaming) upstream answers.

aiohttp's ``ClientSession.post`` costs about 75 µs of CPU per request on this path (request
object, payload registry, header multidicts, timers, the response's stream reader); for a
sidecar whose whole budget is a few hundred microseconds per request that is the largest
single cost. This client keeps one pool of keep-alive connections per upstream origin, writes
each request with one ``transport.write`` and parses the answer in ``data_received``
(status line, headers, ``Content-Length``, chunked or read-until-close bodies, gzip/deflate),
bounded by the caller's size limit.

Whole answers are read (bounded) before ``post`` returns; a streaming call (SSE) returns at
the response head and its body arrives chunk by chunk (``content.iter_any()``), the
connection going back to the pool only when the body ended cleanly (``release()``). Probes
stay on aiohttp. Responses offer the small part of ``aiohttp.ClientResponse`` the provider
uses (``status``, ``headers``, ``content_type``, ``content_length``, ``read()``,
``content.read(n)``, ``content.iter_any()``, ``release()``, ``close()``). Failures raise
:class:`LeanError` (an ``aiohttp.ClientError``, so the provider's and the relay's handlers
treat both clients alike) with the provider's error classes, or ``TimeoutError`` when
connecting times out. A cancelled call (the attempt's deadline, the caller gone) closes its
connection. The verifying TLS context of ``https`` upstreams (the system's CAs, or
``SSL_CERT_FILE``) is built at the first call that needs it, in a thread.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

from .lean_conn import Conn
from .lean_response import LeanError, LeanResponse, LeanStreamResponse

__all__ = ["LeanClient", "LeanError", "LeanResponse", "LeanStreamResponse"]

class Pool:
    """Keep-alive connections to one origin."""

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None,
                 connect_timeout: float, keepalive: float) -> None:
        self.host, self.port = host, port
        self.host_header = host if port in (80, 443) else f"{host}:{port}"
        self.ssl = ssl_context
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.idle: list[Conn] = []
        self.finishing: set[Conn] = set()  # released streams waiting for their body's end

    def put(self, conn: Conn) -> None:
        conn.idle_since = asyncio.get_running_loop().time()
        self.idle.append(conn)

    def take(self, now: float) -> Conn | None:
        idle = self.idle
        while idle:
            conn = idle.pop()  # the most recent first: the least likely to be timed out
            if conn.closed or now - conn.idle_since > self.keepalive:
                conn.close()
                continue
            return conn
        return None

    async def connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    Conn, self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None)
        except OSError as exc:
            raise LeanError("connect_error", exc.strerror or type(exc).__name__) from None
        return conn

    def close(self) -> None:
        idle, self.idle = self.idle, []
        for conn in [*idle, *self.finishing]:
            conn.close()


class LeanClient:
    """POST with whole answers, over one keep-alive pool per upstream origin."""

    def __init__(self, *, connect_timeout: float = 10.0, keepalive: float = 60.0,
                 max_response_bytes: int = 32 * 1024 * 1024) -> None:
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.max_response_bytes = max_response_bytes
        self._pools: dict[str, Pool] = {}
        self._targets: dict[str, tuple[Pool, str]] = {}  # URL -> (its pool, path and query)
        self._ssl: ssl.SSLContext | None = None
        self._ssl_loading: asyncio.Future[ssl.SSLContext] | None = None

    async def _tls_context(self) -> ssl.SSLContext:
        """The verifying TLS context, built once, in a thread: loading the system's CA bundle
        takes some 30 ms, which would stop every other request for as long in the event loop's
        thread. Calls that need it meanwhile wait for the same build."""
        if self._ssl is None:
            if self._ssl_loading is None:
                self._ssl_loading = asyncio.ensure_future(
                    asyncio.to_thread(ssl.create_default_context))
            try:
                self._ssl = await asyncio.shield(self._ssl_loading)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                self._ssl_loading = None  # the next call tries again
                raise LeanError("connect_error", f"TLS set-up failed: {exc}") from None
        return self._ssl

    async def _new_target(self, url: str) -> tuple[Pool, str]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LeanError("connect_error", f"unsupported URL {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        key = f"{parts.scheme}://{parts.hostname}:{port}"
        pool = self._pools.get(key)
        if pool is None:
            context = await self._tls_context() if tls else None
            pool = self._pools.get(key)  # another call may have made it meanwhile
            if pool is None:
                pool = self._pools[key] = Pool(parts.hostname, port, context,
                                                self.connect_timeout, self.keepalive)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if len(self._targets) >= 4096:
            self._targets.clear()
        target = self._targets[url] = (pool, path)
        return target

    async def post(self, url: str, body: bytes, headers: dict[str, str], *,
                   stream: bool = False, limit: int | None = None) -> Any:
        """The whole answer (a :class:`LeanResponse`), or with ``stream`` the answer's head
        (a :class:`LeanStreamResponse` that owns the connection until released)."""
        pool, path = self._targets.get(url) or await self._new_target(url)
        lines = [f"POST {path} HTTP/1.1", f"Host: {pool.host_header}",
                 f"Content-Length: {len(body)}"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r}: a newline in a header")
            lines.append(f"{name}: {value}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        loop = asyncio.get_running_loop()
        conn = pool.take(loop.time()) or await pool.connect()
        try:
            response = await conn.send(data, self.max_response_bytes if limit is None else limit,
                                       stream, pool)
        except BaseException:
            conn.close()  # failed, cancelled or timed out mid-answer: never reused
            raise
        if stream or conn.closed:
            return response
        pool.put(conn)
        return response

    def close(self) -> None:
        pools, self._pools, self._targets = list(self._pools.values()), {}, {}
        for pool in pools:
            pool.close()

    def stats(self) -> dict[str, Any]:
        return {key: len(pool.idle) for key, pool in self._pools.items()}
