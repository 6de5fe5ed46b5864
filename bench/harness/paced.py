"""A paced streaming upstream: long SSE streams at a fixed chunk rate, in each provider's
wire format, cheap enough that a thousand of them at once leave the core to the gateways.

    python -m bench.harness.paced --port 0 --port-file F [--chunks 200] [--rate 50]
                                  [--tls-cert C --tls-key K]

The events are the fake provider's own (``echelon_tools.fake_provider``'s wire classes:
OpenAI chat completion chunks, with ``usage`` in a last chunk when
``stream_options.include_usage``; Anthropic ``message_start`` / ``content_block_start`` /
``ping`` / ``content_block_delta`` / ``content_block_stop`` / ``message_delta`` (with usage) /
``message_stop``; Gemini ``streamGenerateContent?alt=sse`` ``GenerateContentResponse``
objects, the last with ``finishReason`` and ``usageMetadata``), rendered once per distinct
request and cached: what differs from ``echelon fake-provider`` is only how they are written.
Instead of aiohttp and a sleeping task per stream, a raw asyncio protocol (uvloop) writes
each content event at its due time from one timer callback (``loop.call_at``): the events
before the first content event go out with it, the rest of the stream's end with the last.

Routes (by path): ``.../chat/completions`` (OpenAI), ``.../messages`` (Anthropic),
``...:streamGenerateContent`` / ``...:generateContent`` (Gemini); a request without
``"stream": true`` (and not Gemini's stream action) gets the whole body at once. HTTP/1.1
keep-alive, chunked transfer coding. ``GET /_paced/stats`` counts connections accepted (TLS
handshakes, when serving TLS), requests, streams finished and content events written;
``POST /_paced/reset`` zeroes them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import ssl
import sys
import tempfile
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from multidict import CIMultiDict

from echelon_tools.fake_provider.anthropic_api import AnthropicWire
from echelon_tools.fake_provider.content import build_reply
from echelon_tools.fake_provider.gemini_api import GeminiWire
from echelon_tools.fake_provider.openai_api import OpenAIWire
from echelon_tools.fake_provider.wire import Exchange, Wire

__all__ = ["Paced", "main", "reply_text"]

_WIRES: dict[str, Wire] = {"openai": OpenAIWire(), "anthropic": AnthropicWire(),
                           "gemini": GeminiWire()}
# events before the first content event, per format (OpenAI: the role chunk; Anthropic:
# message_start, content_block_start, ping; Gemini: none)
_HEAD = {"openai": 1, "anthropic": 3, "gemini": 0}
_SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache"
             b"\r\nTransfer-Encoding: chunked\r\n\r\n")
_WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
          "kappa", "lambda", "mu")


def reply_text(chunks: int) -> str:
    """``chunks`` words: the fake provider splits a reply on words, one per content event."""
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(chunks))


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _nodelay(transport: asyncio.BaseTransport) -> None:
    """Small writes go out at once (no Nagle: with delayed ACKs it holds an event ~40 ms)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Stream:
    __slots__ = ("conn", "content", "head", "i", "start", "tail")

    def __init__(self, conn: _Conn, head: bytes, content: list[bytes], tail: bytes,
                 start: float) -> None:
        self.conn, self.head, self.content, self.tail = conn, head, content, tail
        self.i = 0
        self.start = start


class Paced:
    """Shared state: the cache of rendered streams, the pacing, the counters."""

    def __init__(self, chunks: int, rate: float) -> None:
        self.chunks = chunks
        self.interval = 1.0 / rate
        self.text = reply_text(chunks)
        self.cache: dict[tuple[str, bytes], tuple[bytes, list[bytes], bytes, bytes]] = {}
        self.stats = {"connections": 0, "requests": 0, "streams": 0, "streams_done": 0,
                      "content_events": 0, "streams_aborted": 0}
        self.loop = asyncio.get_running_loop()

    def render(self, fmt: str, path: str, body: dict[str, Any], raw: bytes,
               headers: CIMultiDict[str]) -> tuple[bytes, list[bytes], bytes, bytes]:
        """(head, content events, tail, whole non-stream body) for this request; cached by
        the request's bytes (minus nothing: identical requests get identical streams)."""
        key = (fmt, raw)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        wire = _WIRES[fmt]
        model = str(body.get("model") or "")
        extra: dict[str, Any] = {}
        if fmt == "gemini":
            tail = path.rsplit("/", 1)[-1]
            model, _, action = tail.partition(":")
            action = action.split("?", 1)[0]
            extra = {"action": action, "sse": True}
        # what the wire classes read of the aiohttp request: its headers and query
        request = types.SimpleNamespace(headers=headers, query={})
        exchange = Exchange(request=request, endpoint=f"paced.{fmt}", model=model,  # type: ignore[arg-type]
                            body=body, stream=True, extra=extra)
        prompt = wire.prompt(exchange)
        prompt.max_tokens = None
        reply = build_reply(prompt, fixed_reply=self.text, echo_words=self.chunks)
        frames = wire.frames(reply, exchange, self.chunks)
        head_n = _HEAD[fmt]
        n = len(frames) - head_n
        content_n = min(self.chunks, n)
        head = b"".join(frames[:head_n])
        content = frames[head_n:head_n + content_n]
        tail = b"".join(frames[head_n + content_n:])
        whole = wire.body(reply, exchange)
        if len(self.cache) > 256:
            self.cache.clear()
        self.cache[key] = out = (head, content, tail, whole)
        return out

    def begin(self, conn: _Conn, head: bytes, content: list[bytes], tail: bytes) -> None:
        self.stats["streams"] += 1
        stream = _Stream(conn, head, content, tail, self.loop.time())
        conn.stream = stream
        self._tick(stream)

    def _tick(self, stream: _Stream) -> None:
        conn = stream.conn
        if conn.stream is not stream or conn.transport is None or conn.transport.is_closing():
            self.stats["streams_aborted"] += 1
            return
        i = stream.i
        data = stream.content[i]
        if i == 0:
            data = stream.head + data
        stream.i = i + 1
        self.stats["content_events"] += 1
        last = stream.i >= len(stream.content)
        if last:
            conn.transport.write(_chunk(data + stream.tail) + b"0\r\n\r\n")
            conn.stream = None
            self.stats["streams_done"] += 1
            conn.next_request()
            return
        conn.transport.write(_chunk(data))
        self.loop.call_at(stream.start + stream.i * self.interval, self._tick, stream)


class _Conn(asyncio.Protocol):
    def __init__(self, paced: Paced) -> None:
        self.paced = paced
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.stream: _Stream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.paced.stats["connections"] += 1
        _nodelay(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.stream = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.stream is None:
            self.next_request()

    def next_request(self) -> None:
        """Serve the next complete request in the buffer (one at a time)."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0 or self.transport is None:
            return
        head = bytes(buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.rpartition(" ")[0]
        length = 0
        headers: CIMultiDict[str] = CIMultiDict()
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(buf) < end + 4 + length:
            return
        raw = bytes(buf[end + 4:end + 4 + length])
        del buf[:end + 4 + length]
        self.paced.stats["requests"] += 1
        self.serve(method, path, raw, headers)

    def _send(self, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
        assert self.transport is not None
        reason = b"OK" if status == 200 else b"Error"
        self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                             % (status, reason, ctype, len(body)) + body)

    def serve(self, method: str, path: str, raw: bytes, headers: CIMultiDict[str]) -> None:
        paced = self.paced
        if path.startswith("/_paced/"):
            if path.startswith("/_paced/reset"):
                for k in paced.stats:
                    paced.stats[k] = 0
            self._send(200, orjson.dumps(paced.stats))
            return self.next_request()
        if ":streamGenerateContent" in path or ":generateContent" in path:
            fmt = "gemini"
        elif path.split("?", 1)[0].endswith("/messages"):
            fmt = "anthropic"
        elif path.split("?", 1)[0].endswith("/chat/completions"):
            fmt = "openai"
        else:
            self._send(404, b'{"error": {"message": "no such route"}}')
            return self.next_request()
        try:
            body = orjson.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
            parts = paced.render(fmt, path, body, raw, headers)
        except Exception as exc:  # a wrong request: 400, like an upstream
            self._send(400, orjson.dumps({"error": {"message": f"{type(exc).__name__}: {exc}"}}))
            return self.next_request()
        stream = (":streamGenerateContent" in path) if fmt == "gemini" else bool(
            body.get("stream"))
        if not stream:
            self._send(200, parts[3])
            return self.next_request()
        assert self.transport is not None
        self.transport.write(_SSE_HEAD)
        paced.begin(self, parts[0], parts[1], parts[2])
        return None


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


async def serve(args: argparse.Namespace) -> None:
    paced = Paced(args.chunks, args.rate)
    loop = asyncio.get_running_loop()
    ctx = server_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = await loop.create_server(lambda: _Conn(paced), args.host, args.port, ssl=ctx,
                                      backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    if args.port_file:
        fd, tmp = tempfile.mkstemp(dir=args.port_file.parent, prefix=".paced.")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"paced upstream on {'https' if ctx else 'http'}://{args.host}:{port} "
          f"({args.chunks} chunks at {args.rate:g}/s)", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.harness.paced",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", type=Path)
    p.add_argument("--chunks", type=int, default=200, help="content events per stream")
    p.add_argument("--rate", type=float, default=50.0, help="content events per second")
    p.add_argument("--tls-cert", type=Path)
    p.add_argument("--tls-key", type=Path)
    args = p.parse_args(argv)
    import uvloop
    try:
        uvloop.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
