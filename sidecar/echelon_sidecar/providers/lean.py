"""A lean HTTP/1.1 client for whole (non-streaming) upstream answers.

aiohttp's ``ClientSession.post`` costs about 75 µs of CPU per request on this path (request
object, payload registry, header multidicts, timers, the response's stream reader); for a
sidecar whose whole budget is a few hundred microseconds per request that is the largest
single cost. This client keeps one pool of keep-alive connections per upstream origin, writes
each request with one ``transport.write`` and parses the answer in ``data_received``
(status line, headers, ``Content-Length``, chunked or read-until-close bodies, gzip/deflate),
bounded by the caller's size limit.

It serves POSTs whose whole answer is wanted; streams (SSE) and probes stay on aiohttp. Its
responses offer the small part of ``aiohttp.ClientResponse`` the provider uses (``status``,
``headers``, ``content_type``, ``content_length``, ``read()``, ``content.read(n)``,
``content.iter_any()``, ``release()``, ``close()``). Failures raise :class:`LeanError` with
the provider's error classes, or ``TimeoutError`` when connecting times out. A cancelled call
(the attempt's deadline, the caller gone) closes its connection.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["LeanClient", "LeanError", "LeanResponse"]

_NO_BODY = frozenset((204, 304))


class LeanError(Exception):
    """A failed call: ``error_class`` is the provider's name for it."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


class _Content:
    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def read(self, n: int = -1) -> bytes:
        return self._body if n < 0 else self._body[:n]

    async def iter_any(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body


class LeanResponse:
    """A complete answer (the body is already read and bounded)."""

    __slots__ = ("_body", "content", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self._body = body
        self.content = _Content(body)

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type")
        if not value:
            return "application/octet-stream"
        return value.partition(";")[0].strip().lower()

    @property
    def content_length(self) -> int | None:
        return len(self._body)

    async def read(self) -> bytes:
        return self._body

    def release(self) -> None:
        return None

    def close(self) -> None:
        return None


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[LeanResponse] | None = None
        self._buf = bytearray()
        self._chunks = bytearray()
        self._reset(0)

    def _reset(self, limit: int) -> None:
        self._buf.clear()
        self._chunks.clear()
        self._limit = limit
        self._received = False
        self._head_end = 0
        self._mode = ""
        self._status = 0
        self._headers: CIMultiDict[str] | None = None
        self._length = 0
        self._pos = 0
        self._keep = True

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._head_end and self._mode == "close":  # a body that ends with the connection
            try:
                self._finish(bytes(self._buf[self._head_end:]), keep=False)
            except LeanError as err:
                waiter.set_exception(err)
        elif not self._received:
            waiter.set_exception(LeanError("connection_error", "ServerDisconnectedError"))
        else:
            waiter.set_exception(LeanError("response_cut", "the response body was cut"))

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost decides what the EOF means

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        self._received = True
        buf = self._buf
        buf += data
        try:
            self._parse()
        except LeanError as exc:
            if not self._waiter.done():
                self._waiter.set_exception(exc)
            self.close()
        except ValueError:
            if not self._waiter.done():
                self._waiter.set_exception(LeanError("malformed_response",
                                                     "the upstream sent malformed HTTP"))
            self.close()

    # -- requests --------------------------------------------------------------------------------

    def send(self, data: bytes, limit: int) -> asyncio.Future[LeanResponse]:
        assert self.transport is not None
        self._reset(limit)
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- parsing ---------------------------------------------------------------------------------

    def _parse(self) -> None:
        buf = self._buf
        while not self._head_end:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 256 * 1024:
                    raise LeanError("malformed_response", "the response headers are too large")
                return
            self._head(bytes(buf[:end]).decode("latin-1"))
            if 100 <= self._status < 200:  # 100 Continue and friends: the answer follows
                del buf[:end + 4]
                self._head_end = 0
                continue
            self._head_end = end + 4
        if self._mode == "length":
            if len(buf) - self._head_end >= self._length:
                body = bytes(buf[self._head_end:self._head_end + self._length])
                self._finish(body, keep=self._keep and len(buf) == self._head_end + self._length)
        elif self._mode == "chunked":
            self._parse_chunks()
        elif self._mode == "close":
            if len(buf) - self._head_end > self._limit:
                raise LeanError("oversized_response",
                                f"the response exceeds {self._limit} bytes")
        else:  # no body
            self._finish(b"", keep=self._keep and len(buf) == self._head_end)

    def _head(self, text: str) -> None:
        lines = text.split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise LeanError("malformed_response", "the upstream does not speak HTTP/1.x")
        self._status = int(rest[:3])
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(line)
            headers.add(name.strip(), value.strip())
        self._headers = headers
        connection = headers.get("Connection", "").lower()
        self._keep = "close" not in connection and (version == "HTTP/1.1"
                                                    or "keep-alive" in connection)
        if self._status in _NO_BODY or 100 <= self._status < 200:
            self._mode = ""
        elif "chunked" in headers.get("Transfer-Encoding", "").lower():
            self._mode = "chunked"
        elif "Content-Length" in headers:
            self._length = int(headers["Content-Length"])
            if self._length > self._limit:
                raise LeanError("oversized_response", f"the response is {self._length} bytes "
                                f"(limit {self._limit})")
            self._mode = "length"
        else:
            self._mode = "close"
            self._keep = False

    def _parse_chunks(self) -> None:
        buf, pos = self._buf, max(self._pos, self._head_end)
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            if size == 0:  # the last chunk, then trailers and an empty line
                if buf[eol + 2:eol + 4] == b"\r\n":
                    end = eol + 4
                else:
                    trailer_end = buf.find(b"\r\n\r\n", eol + 2)
                    if trailer_end < 0:
                        break
                    end = trailer_end + 4
                self._finish(bytes(self._chunks), keep=self._keep and len(buf) == end)
                return
            if len(buf) < eol + 2 + size + 2:
                break
            self._chunks += buf[eol + 2:eol + 2 + size]
            if len(self._chunks) > self._limit:
                raise LeanError("oversized_response", f"the response exceeds {self._limit} bytes")
            pos = eol + 2 + size + 2
        self._pos = pos

    def _finish(self, body: bytes, *, keep: bool) -> None:
        assert self._headers is not None and self._waiter is not None
        headers = self._headers
        encoding = headers.get("Content-Encoding", "").lower()
        if encoding in ("gzip", "deflate", "x-gzip"):
            body = _decompress(body, self._limit)
            del headers["Content-Encoding"]
        elif encoding not in ("", "identity"):
            raise LeanError("malformed_response", f"unsupported Content-Encoding {encoding!r}")
        self._keep = keep
        if not keep:
            self.close()
        self._waiter.set_result(LeanResponse(self._status, CIMultiDictProxy(headers), body))


def _decompress(body: bytes, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits=47)  # gzip or zlib, detected from the header
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error:
        raise LeanError("malformed_response", "the compressed response is corrupt") from None
    if len(out) > limit or decoder.unconsumed_tail:
        raise LeanError("oversized_response", f"the response exceeds {limit} bytes")
    return out


class _Pool:
    """Keep-alive connections to one origin."""

    def __init__(self, host: str, port: int, ssl_context: ssl.SSLContext | None,
                 connect_timeout: float, keepalive: float) -> None:
        self.host, self.port = host, port
        self.host_header = host if port in (80, 443) else f"{host}:{port}"
        self.ssl = ssl_context
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.idle: list[_Conn] = []

    def take(self, now: float) -> _Conn | None:
        idle = self.idle
        while idle:
            conn = idle.pop()  # the most recent first: the least likely to be timed out
            if conn.closed or now - conn.idle_since > self.keepalive:
                conn.close()
                continue
            return conn
        return None

    async def connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    _Conn, self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None)
        except OSError as exc:
            raise LeanError("connect_error", exc.strerror or type(exc).__name__) from None
        return conn

    def close(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


class LeanClient:
    """POST with whole answers, over one keep-alive pool per upstream origin."""

    def __init__(self, *, connect_timeout: float = 10.0, keepalive: float = 60.0,
                 max_response_bytes: int = 32 * 1024 * 1024) -> None:
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.max_response_bytes = max_response_bytes
        self._pools: dict[str, _Pool] = {}
        self._targets: dict[str, tuple[_Pool, str]] = {}  # URL -> (its pool, path and query)
        self._ssl: ssl.SSLContext | None = None

    def _target(self, url: str) -> tuple[_Pool, str]:
        target = self._targets.get(url)
        if target is not None:
            return target
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LeanError("connect_error", f"unsupported URL {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        key = f"{parts.scheme}://{parts.hostname}:{port}"
        pool = self._pools.get(key)
        if pool is None:
            if tls and self._ssl is None:
                self._ssl = ssl.create_default_context()
            pool = self._pools[key] = _Pool(parts.hostname, port, self._ssl if tls else None,
                                            self.connect_timeout, self.keepalive)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if len(self._targets) >= 4096:
            self._targets.clear()
        target = self._targets[url] = (pool, path)
        return target

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> LeanResponse:
        pool, path = self._target(url)
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
            response = await conn.send(data, self.max_response_bytes)
        except BaseException:
            conn.close()  # failed, cancelled or timed out mid-answer: never reused
            raise
        if conn.closed:
            return response
        conn.idle_since = loop.time()
        pool.idle.append(conn)
        return response

    def close(self) -> None:
        pools, self._pools, self._targets = list(self._pools.values()), {}, {}
        for pool in pools:
            pool.close()

    def stats(self) -> dict[str, Any]:
        return {key: len(pool.idle) for key, pool in self._pools.items()}
