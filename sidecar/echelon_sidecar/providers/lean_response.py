"""The lean client's answers and errors (see ``lean``): whole responses, streamed bodies."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

import aiohttp
from multidict import CIMultiDictProxy

if TYPE_CHECKING:
    from .lean import Pool
    from .lean_conn import Conn

__all__ = [
    "NO_BODY",
    "Body",
    "BodySink",
    "LeanError",
    "LeanResponse",
    "LeanStreamResponse",
    "UpstreamBodyCut",
    "UpstreamDisconnected",
]

NO_BODY = frozenset((204, 304))


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


class BodySink(Protocol):
    """Takes a streamed body's bytes as they arrive, from the connection's callbacks (see
    :meth:`Body.attach`): it must not raise."""

    def data(self, data: bytes) -> None: ...

    def end(self) -> None: ...

    def error(self, error: LeanError) -> None: ...


class Body:
    """The body of a streaming answer, chunk by chunk as it arrives: awaited (``iter_any()``,
    ``read()``), or pushed to a :class:`BodySink` from the connection's ``data_received``
    (``attach``: no task wakes up per chunk), with the connection's reading paused and resumed
    by the sink's owner (``pause_reading`` / ``resume_reading``)."""

    __slots__ = ("_chunks", "_eof", "_error", "_sink", "_transport", "_waiter")

    def __init__(self, transport: asyncio.Transport | None = None) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._eof = False
        self._error: LeanError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._sink: BodySink | None = None
        self._transport = transport

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def feed(self, data: bytes) -> None:
        sink = self._sink
        if sink is not None:
            sink.data(data)
            return
        self._chunks.append(data)
        self._wake()

    def finish(self) -> None:
        self._eof = True
        if self._sink is not None:
            self._sink.end()
        self._wake()

    def fail(self, error: LeanError) -> None:
        if not self._eof:
            self._error = error
            if self._sink is not None:
                self._sink.error(error)
        self._wake()

    def attach(self, sink: BodySink) -> None:
        """From now on, push what arrives to ``sink`` (first what is queued, its end or its
        error included) instead of queueing it."""
        self._sink = sink
        chunks = self._chunks
        while chunks and self._sink is sink:
            sink.data(chunks.popleft())
        if self._sink is not sink:
            return
        if self._error is not None:
            sink.error(self._error)
        elif self._eof:
            sink.end()

    def detach(self) -> None:
        """Queue again what arrives (for nobody, once the stream is given up)."""
        self._sink = None

    def pause_reading(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def iter_any(self) -> AsyncIterator[bytes]:
        """The chunks as they arrive: the body is its own iterator (one coroutine a chunk,
        not an async generator around another coroutine: a relay reads tens of thousands of
        chunks a second)."""
        return self

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        chunks = self._chunks
        while not chunks:
            if self._error is not None:
                raise self._error
            if self._eof:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return chunks.popleft()

    async def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while n < 0 or len(out) < n:
            try:
                out += await self.__anext__()
            except StopAsyncIteration:
                break
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
    ``release()`` gives the connection back: at once when the body has ended, else once its
    last bytes come (a stream is released at its SSE end marker, which often arrives a read
    before the body's last chunk) -- closed if they do not within ``FINISH_GRACE`` seconds;
    ``close()`` closes it."""

    __slots__ = ("_conn", "_pool", "content", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: Body, conn: Conn,
                 pool: Pool) -> None:
        self.status = status
        self.headers = headers
        self.content = body
        self._conn: Conn | None = conn
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
        if conn.closed:
            return
        if conn.stream_done:
            self._pool.put(conn)
        else:  # the SSE end marker came before the body's last chunk: wait for it
            conn.return_when_done(self._pool)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
