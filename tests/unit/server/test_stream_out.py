"""StreamOut: a streamed body written to the transport is, on the wire, what aiohttp writes.

A real aiohttp server on a port from the OS and a raw socket client: the bytes after the head
are compared byte for byte with ``StreamResponse.write``'s (HTTP/1.1 chunked and HTTP/1.0),
back-pressure is shown by a client that does not read, and a closed connection raises.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from echelon_sidecar.server.stream_out import StreamOut

PIECES = [b"data: {\"a\": 1}\n\n", b"x" * 4097, b"event: e\ndata: \xc3\xa9\n\n", b"z"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> int:
        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return int(runner.addresses[0][1])

    yield start
    for runner in runners:
        await runner.cleanup()


async def _fetch(port: int, version: str = "1.1") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET / HTTP/{version}\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


def _body(raw: bytes) -> bytes:
    _head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw[:200]
    return body


def _writing(direct: bool) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sink = StreamOut(response)
        assert sink.direct
        for piece in PIECES:
            if direct:
                assert sink.send(piece) is False
            else:
                await response.write(piece)
        await response.write_eof()
        return response

    return handler


@pytest.mark.parametrize("version", ["1.1", "1.0"])
async def test_the_bytes_on_the_wire_are_aiohttps(serve, version: str) -> None:
    ours = _body(await _fetch(await serve(_writing(True)), version))
    theirs = _body(await _fetch(await serve(_writing(False)), version))
    assert ours == theirs
    if version == "1.1":  # chunked: a size line per piece, the last chunk from write_eof
        assert ours.startswith(b"%x\r\n%b\r\n" % (len(PIECES[0]), PIECES[0]))
        assert ours.endswith(b"0\r\n\r\n")
    else:  # HTTP/1.0: the bytes as they are, up to the connection's close
        assert ours == b"".join(PIECES)


async def test_counts_what_it_wrote_as_aiohttp_does(serve) -> None:
    lengths: dict[bool, int] = {}

    def handler(direct: bool) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            response = await _writing(direct)(request)
            lengths[direct] = response.body_length
            return response

        return handle

    for direct in (True, False):
        await _fetch(await serve(handler(direct)))
    assert lengths[True] == lengths[False] > sum(map(len, PIECES))


async def test_a_compressed_response_is_left_to_aiohttp(serve) -> None:
    verdict: list[bool] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_compression(web.ContentCoding.deflate)
        await response.prepare(request)
        verdict.append(StreamOut(response).direct)
        await response.write(b"hello")
        await response.write_eof()
        return response

    await _fetch(await serve(handler))
    assert verdict == [False]


async def test_a_reader_that_does_not_read_pauses_the_writer(serve) -> None:
    paused = asyncio.Event()
    drained = asyncio.Event()
    piece = b"p" * 65536

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        sink = StreamOut(response)
        for _ in range(2000):  # at most 128 MiB: far past any socket buffer
            if sink.send(piece):
                break
        else:
            raise AssertionError("the transport never asked to wait")
        paused.set()
        await sink.drain()
        drained.set()
        await response.write_eof()
        return response

    port = await serve(handler)
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await asyncio.wait_for(paused.wait(), 30)
        assert not drained.is_set()
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        while not drained.is_set():  # read until the writer is let go
            await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 30)
    finally:
        sock.close()


async def test_a_closed_connection_raises_connection_reset(serve) -> None:
    raised: list[BaseException] = []
    closed = asyncio.Event()
    started = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        sink = StreamOut(response)
        sink.send(b"first")
        started.set()
        await closed.wait()
        try:
            for _ in range(2000):  # the kernel says so at the first or second write
                sink.send(b"more")
                await asyncio.sleep(0.005)
        except ConnectionResetError as exc:
            raised.append(exc)
        return response

    port = await serve(handler)
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.wait_for(started.wait(), 10)
    writer.transport.abort()
    closed.set()
    for _ in range(400):
        if raised:
            break
        await asyncio.sleep(0.025)
    assert raised and isinstance(raised[0], ConnectionResetError)
