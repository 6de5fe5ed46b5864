"""The lean client's answers and errors (see ``lean``): whole responses, streamed bodies."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aiohttp
from multidict import CIMultiDictProxy

if TYPE_CHECKING:
    from .lean import Pool
    from .lean_conn import Conn

__all__ = [
    "NO_BODY",
    "Body",
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


class Body:
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
        if conn.stream_done and not conn.closed:
            self._pool.put(conn)
        else:
            conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
