"""One keep-alive HTTP/1.1 connection of the lean client (see ``lean``): writes a request,
parses the answer in ``data_received`` (status line, headers, Content-Length, chunked or
read-until-close bodies, gzip/deflate), bounded by the caller's size limit."""

from __future__ import annotations

import asyncio
import zlib
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict, CIMultiDictProxy

from .lean_response import (
    NO_BODY,
    Body,
    LeanError,
    LeanResponse,
    LeanStreamResponse,
    UpstreamBodyCut,
    UpstreamDisconnected,
)

if TYPE_CHECKING:
    from .lean import Pool

__all__ = ["FINISH_GRACE", "Conn"]

#: how long a released stream's connection waits for its body's last bytes before it is closed
FINISH_GRACE = 1.0

class Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[Any] | None = None
        # a stream released before its body's last bytes came: the pool it goes back to once
        # they do (within FINISH_GRACE seconds, else it is closed)
        self._return_to: Pool | None = None
        self._grace: asyncio.TimerHandle | None = None
        self._buf = bytearray()
        self._chunks = bytearray()
        self._pool: Pool | None = None
        self._reset(0, False)

    def _reset(self, limit: int, stream: bool) -> None:
        self._stream = stream
        self._left = -1
        self._body: Body | None = None
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
        self._stop_waiting_for_end()
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
             pool: Pool | None = None) -> asyncio.Future[Any]:
        assert self.transport is not None
        self._reset(limit, stream)
        self._pool = pool
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        self._stop_waiting_for_end()
        if self.transport is not None:
            self.transport.close()

    def return_when_done(self, pool: Pool) -> None:
        """A stream's reader is done with it, but its body's end (the last chunk after an
        SSE end marker) has not arrived yet: back to ``pool`` when it does, closed if it does
        not within FINISH_GRACE seconds. Only for a body whose end the framing says (chunked
        or Content-Length), never one that ends with the connection."""
        if self.closed or self._body is None or self._mode not in ("chunked", "length"):
            self.close()
            return
        self._return_to = pool
        pool.finishing.add(self)
        self._grace = asyncio.get_running_loop().call_later(FINISH_GRACE, self.close)

    def _stop_waiting_for_end(self) -> None:
        pool, self._return_to = self._return_to, None
        if pool is not None:
            pool.finishing.discard(self)
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

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
        body = self._body = Body(self.transport)
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
            self._stream_chunks(buf, body)
        elif self._mode == "close":
            if buf:
                body.feed(bytes(buf))
                buf.clear()
        else:
            self._end_stream(keep=self._keep and not buf)

    def _stream_chunks(self, buf: bytearray, body: Body) -> None:
        """Feed what has arrived of a chunked stream body, ending the stream at its last chunk.

        ``_left``: bytes still due of the current chunk (fed as they arrive, so a large chunk
        is seen growing, as with aiohttp); -1: a size line is due; -2: its CRLF. What one read
        brought is fed as one piece (the relay then parses and writes once per read, not once
        per HTTP chunk); a chunk that arrived whole is taken in one step.
        """
        pos, size_of = 0, len(buf)
        out: list[bytes] = []
        while pos < size_of:
            left = self._left
            if left == -1:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    break
                size = _chunk_size(buf, pos, eol)
                if size == 0:
                    end = _last_chunk_end(buf, eol)
                    if end < 0:
                        break
                    del buf[:end]
                    if out:
                        body.feed(b"".join(out))
                    self._end_stream(keep=self._keep and not buf)
                    return
                start = eol + 2
                stop = start + size
                if stop + 2 <= size_of:  # the usual case: the whole chunk is here
                    if not buf.startswith(b"\r\n", stop):
                        raise ValueError("chunk without CRLF")
                    out.append(bytes(buf[start:stop]))
                    pos = stop + 2
                    continue
                self._left = size
                pos = start
            elif left > 0:
                take = min(left, size_of - pos)
                out.append(bytes(buf[pos:pos + take]))
                pos += take
                self._left = left - take or -2
            else:
                if size_of - pos < 2:
                    break
                if not buf.startswith(b"\r\n", pos):
                    raise ValueError("chunk without CRLF")
                pos += 2
                self._left = -1
        del buf[:pos]
        if out:
            body.feed(out[0] if len(out) == 1 else b"".join(out))

    def _end_stream(self, *, keep: bool) -> None:
        assert self._body is not None
        self.stream_done = True
        self._keep = keep
        self._body.finish()
        if not keep:
            self.close()
            return
        pool = self._return_to
        if pool is not None:  # released while its last bytes were on their way
            self._stop_waiting_for_end()
            pool.put(self)

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
        if self._status in NO_BODY or 100 <= self._status < 200:
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
            size = _chunk_size(buf, pos, eol)
            if size == 0:
                end = _last_chunk_end(buf, eol)
                if end < 0:
                    break
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


def _chunk_size(buf: bytearray, pos: int, eol: int) -> int:
    """The size on a chunk's line ``buf[pos:eol]``: hex digits only (``int()`` alone would
    take signs, underscores and spaces), then extensions after ``;``, which are ignored."""
    line = buf[pos:eol]
    if not line.isalnum():  # extensions (rare), or not a size at all
        line = bytearray(bytes(line).split(b";", 1)[0].rstrip(b" \t"))
        if not line.isalnum():
            raise ValueError("malformed chunk size")
    return int(line, 16)  # ValueError for letters past F


def _last_chunk_end(buf: bytearray, eol: int) -> int:
    """Where the body ends after the last (zero) chunk line ending at ``eol``: past its
    trailers and the empty line; -1 while they have not all arrived."""
    if buf[eol + 2:eol + 4] == b"\r\n":
        return eol + 4
    trailer_end = buf.find(b"\r\n\r\n", eol + 2)
    return trailer_end + 4 if trailer_end >= 0 else -1
