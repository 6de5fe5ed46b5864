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
connection.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import zlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["LeanClient", "LeanError", "LeanResponse", "LeanStreamResponse"]

_NO_BODY = frozenset((204, 304))


class LeanError(aiohttp.ClientError):
    """A failed call: ``error_class`` is the provider's name for it."""

    def __init__(self, error_class: str, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


class UpstreamDisconnected(LeanError):
    """The connection closed before any answer."""


class UpstreamBodyCut(LeanError):
    """The connection closed in the middle of a streamed body."""


class _Body:
    """The body of a streaming answer, chunk by chunk as it arrives."""

    __slots__ = ("_chunks", "_eof", "_error", "_waiter")

    def __init__(self) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._eof = False
        self._error: LeanError | None = None
        self._waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake()

    def finish(self) -> None:
        self._eof = True
        self._wake()

    def fail(self, error: LeanError) -> None:
        if not self._eof:
            self._error = error
        self._wake()

    async def _next(self) -> bytes | None:
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._eof:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._chunks.popleft()

    async def iter_any(self) -> AsyncIterator[bytes]:
        while (data := await self._next()) is not None:
            yield data

    async def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            data = await self._next()
            if data is None:
                break
            out += data
        return bytes(out) if n < 0 else bytes(out[:n])


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


class LeanStreamResponse:
    """The head of a streaming answer; its body is ``content`` (``iter_any()``, ``read(n)``).
    ``release()`` gives the connection back when the body ended cleanly (else closes it);
    ``close()`` closes it."""

    __slots__ = ("_conn", "_pool", "content", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: _Body, conn: _Conn,
                 pool: _Pool) -> None:
        self.status = status
        self.headers = headers
        self.content = body
        self._conn: _Conn | None = conn
        self._pool = pool

    content_type = LeanResponse.content_type

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return int(value) if value and value.isdigit() else None

    async def read(self) -> bytes:
        return await self.content.read()

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.stream_done and not conn.closed:
            self._pool.put(conn)
        else:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Any] | None = None
        self._buf = bytearray()
        self._chunks = bytearray()
        self._pool: _Pool | None = None
        self._reset(0, False)

    def _reset(self, limit: int, stream: bool) -> None:
        self._stream = stream
        self._left = -1
        self._body: _Body | None = None
        self.stream_done = False
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
        body = self._body
        if body is not None and not self.stream_done:
            if self._mode == "close":  # a body that ends with the connection
                self.stream_done = True
                body.finish()
            else:
                body.fail(UpstreamBodyCut("stream_cut", "the upstream closed mid-body"))
            return
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._head_end and self._mode == "close":  # a body that ends with the connection
            try:
                self._finish(bytes(self._buf[self._head_end:]), keep=False)
            except LeanError as err:
                waiter.set_exception(err)
        elif not self._received:
            waiter.set_exception(UpstreamDisconnected("connection_error",
                                                      "the upstream closed the connection"))
        else:
            waiter.set_exception(LeanError("response_cut", "the response body was cut"))

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost decides what the EOF means

    def data_received(self, data: bytes) -> None:
        if self._body is not None:  # streaming: the head went out with the response
            if self.stream_done:
                self.close()
                return
            self._buf += data
            try:
                self._stream_body()
            except (LeanError, ValueError) as exc:
                self._body.fail(exc if isinstance(exc, LeanError) else LeanError(
                    "malformed_response", "the upstream sent malformed chunked framing"))
                self.close()
            return
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

    def send(self, data: bytes, limit: int, stream: bool = False,
             pool: _Pool | None = None) -> asyncio.Future[Any]:
        assert self.transport is not None
        self._reset(limit, stream)
        self._pool = pool
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
        if self._stream:
            self._start_stream()
            return
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

    def _start_stream(self) -> None:
        assert self._headers is not None and self._waiter is not None and self._pool is not None
        encoding = self._headers.get("Content-Encoding", "identity").lower()
        if encoding != "identity":
            raise LeanError("malformed_response", f"a stream with Content-Encoding {encoding!r}")
        body = self._body = _Body()
        del self._buf[:self._head_end]
        self._waiter.set_result(LeanStreamResponse(self._status, CIMultiDictProxy(self._headers),
                                                   body, self, self._pool))
        self._stream_body()

    def _stream_body(self) -> None:
        buf, body = self._buf, self._body
        assert body is not None
        if self._mode == "length":
            take = min(len(buf), self._length)
            if take:
                body.feed(bytes(buf[:take]))
                del buf[:take]
                self._length -= take
            if self._length == 0:
                self._end_stream(keep=self._keep and not buf)
        elif self._mode == "chunked":
            # _left: bytes still due of the current chunk (fed as they arrive, so a large
            # chunk is seen growing, as with aiohttp); -1: a size line is due; -2: its CRLF
            pos = 0
            while pos < len(buf):
                if self._left > 0:
                    take = min(self._left, len(buf) - pos)
                    body.feed(bytes(buf[pos:pos + take]))
                    pos += take
                    self._left -= take
                    if self._left == 0:
                        self._left = -2
                elif self._left == -2:
                    if len(buf) - pos < 2:
                        break
                    if buf[pos:pos + 2] != b"\r\n":
                        raise ValueError("chunk without CRLF")
                    pos += 2
                    self._left = -1
                else:
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
                        del buf[:end]
                        self._end_stream(keep=self._keep and not buf)
                        return
                    self._left = size
                    pos = eol + 2
            del buf[:pos]
        elif self._mode == "close":
            if buf:
                body.feed(bytes(buf))
                buf.clear()
        else:
            self._end_stream(keep=self._keep and not buf)

    def _end_stream(self, *, keep: bool) -> None:
        assert self._body is not None
        self.stream_done = True
        self._keep = keep
        self._body.finish()
        if not keep:
            self.close()

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

    def put(self, conn: _Conn) -> None:
        conn.idle_since = asyncio.get_running_loop().time()
        self.idle.append(conn)

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

    async def post(self, url: str, body: bytes, headers: dict[str, str], *,
                   stream: bool = False, limit: int | None = None) -> Any:
        """The whole answer (a :class:`LeanResponse`), or with ``stream`` the answer's head
        (a :class:`LeanStreamResponse` that owns the connection until released)."""
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
