"""The lean upstream client against a raw loopback server that answers crafted bytes."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from bench.harness.tls import make_ca

from echelon_sidecar.providers import lean, lean_conn
from echelon_sidecar.providers.lean import LeanClient, LeanError, LeanResponse

# request bytes -> (pieces to send, close the connection afterwards); None: close at once
Answer = Callable[[bytes], tuple[list[bytes], bool] | None]


@asynccontextmanager
async def raw_server(answer: Answer, tls: ssl.SSLContext | None = None,
                     ) -> AsyncIterator[tuple[str, list[int]]]:
    """Yields the URL (``https`` with ``tls``, the server's context), and the id of the
    connection that received each request."""
    served: list[int] = []
    ids = iter(range(1_000_000))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn_id = next(ids)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                served.append(conn_id)
                reply = answer(head + body)
                if reply is None:
                    break
                pieces, close = reply
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.001)
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}/v1/chat/completions", served
    finally:
        server.close()
        await server.wait_closed()


def ok(body: bytes, *extra: bytes) -> tuple[list[bytes], bool]:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    return [head + b"".join(extra) + b"Content-Length: %d\r\n\r\n" % len(body) + body], False


async def post(client: LeanClient, url: str) -> LeanResponse:
    return await asyncio.wait_for(client.post(url, b"{}", {}), 5)


async def test_a_content_length_answer_is_read_and_its_connection_reused() -> None:
    seen: list[bytes] = []

    def answer(request: bytes) -> tuple[list[bytes], bool]:
        seen.append(request)
        return ok(b'{"ok":true}')

    client = LeanClient()
    async with raw_server(answer) as (url, served):
        for _ in range(3):
            r = await client.post(url, b'{"a":1}', {"Content-Type": "application/json",
                                                     "Authorization": "Bearer k"})
            assert (r.status, r.content_type, await r.read()) == (
                200, "application/json", b'{"ok":true}')
        assert served == [0, 0, 0]
    client.close()
    assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer k\r\n" in seen[0]
    assert b"\r\nContent-Type: application/json\r\n" in seen[0]
    assert b"\r\nContent-Length: 7\r\n" in seen[0]
    assert seen[0].endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_answers_split_anywhere_are_joined_and_the_connection_reused() -> None:
    body = b'{"choices":[{"message":{"content":"hi"}}]}'
    wire = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
            b"\r\n\r\n" + b"a\r\n" + body[:10] + b"\r\n" + b"%x;ext=1\r\n" % (len(body) - 10)
            + body[10:] + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
    client = LeanClient()
    async with raw_server(lambda _: ([wire[i:i + 7] for i in range(0, len(wire), 7)], False)
                          ) as (url, served):
        for _ in range(2):
            assert await (await post(client, url)).read() == body
        assert served == [0, 0]
    client.close()


async def test_gzip_bodies_are_decompressed_and_a_100_continue_is_skipped() -> None:
    body = b'{"x":"' + b"y" * 1000 + b'"}'
    pieces, _ = ok(gzip.compress(body), b"Content-Encoding: gzip\r\n")
    client = LeanClient()
    async with raw_server(lambda _: ([b"HTTP/1.1 100 Continue\r\n\r\n", *pieces], False)
                          ) as (url, _):
        r = await post(client, url)
        assert await r.read() == body and "Content-Encoding" not in r.headers
    client.close()


async def test_an_answer_without_length_ends_with_its_connection_which_is_not_reused() -> None:
    wire = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 2\r\n"
            b"Content-Type: application/json\r\n\r\n" + b'{"error":{"message":"down"}}')
    client = LeanClient()
    async with raw_server(lambda _: ([wire], True)) as (url, served):
        for _ in range(2):
            r = await post(client, url)
            assert r.status == 503 and r.headers["retry-after"] == "2"
            assert await r.content.read(8) == b'{"error"'
        assert served == [0, 1]
    client.close()


@pytest.mark.parametrize(("error_class", "reply"), [
    ("response_cut", ([b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc"], True)),
    ("connection_error", None),
    ("oversized_response", ok(b"x" * 101)),
    ("malformed_response", ([b"SSH-2.0-OpenSSH\r\n\r\n"], False)),
])
async def test_a_cut_body_a_silent_close_an_oversized_or_garbled_answer_are_errors(
        error_class: str, reply: tuple[list[bytes], bool] | None) -> None:
    client = LeanClient(max_response_bytes=100)
    async with raw_server(lambda _: reply) as (url, _):
        with pytest.raises(LeanError) as info:
            await post(client, url)
    assert info.value.error_class == error_class
    client.close()


async def test_the_tls_context_is_built_once_off_the_event_loop_and_trusts_ssl_cert_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the CA bundle is loaded in a thread (not in the loop, where it would stop every other
    # request), once for every call that needs it meanwhile; SSL_CERT_FILE names what it trusts
    ca = make_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_cert))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(ca.cert, ca.key)
    built_in: list[threading.Thread] = []
    create = ssl.create_default_context

    def recording() -> ssl.SSLContext:
        built_in.append(threading.current_thread())
        return create()

    monkeypatch.setattr(lean.ssl, "create_default_context", recording)
    client = LeanClient()
    async with raw_server(lambda _: ok(b'{"ok":true}'), server_tls) as (url, served):
        replies = await asyncio.gather(*(post(client, url) for _ in range(3)))
        assert [(r.status, await r.read()) for r in replies] == [(200, b'{"ok":true}')] * 3
        assert len(served) == 3
    assert len(built_in) == 1
    assert built_in[0] is not threading.main_thread()
    client.close()


async def test_an_upstream_whose_certificate_is_not_trusted_is_a_connection_error(
        tmp_path: Path) -> None:
    ca = make_ca(tmp_path)  # not in SSL_CERT_FILE: the system's CAs do not know it
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(ca.cert, ca.key)
    client = LeanClient()
    async with raw_server(lambda _: ok(b"{}"), server_tls) as (url, _served):
        with pytest.raises(LeanError) as info:
            await post(client, url)
    assert info.value.error_class == "connect_error"
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
    client.close()


async def test_a_refused_connection_is_a_connect_error() -> None:
    client = LeanClient()
    with pytest.raises(LeanError) as info:
        await client.post("http://127.0.0.1:1/v1/x", b"{}", {})
    assert info.value.error_class == "connect_error"


async def test_a_call_timed_out_or_cancelled_mid_answer_never_gives_its_connection_back() -> None:
    client = LeanClient()
    async with raw_server(lambda _: ([b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"],
                                     False)) as (url, served):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.post(url, b"{}", {}), 0.2)
        task = asyncio.ensure_future(client.post(url, b"{}", {}))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert list(client.stats().values()) == [0]  # nothing kept for reuse
        assert served == [0, 1]
    client.close()


async def test_a_newline_in_a_header_is_refused() -> None:
    client = LeanClient()
    with pytest.raises(ValueError, match="newline"):
        await client.post("http://127.0.0.1:9/x", b"{}", {"Authorization": "Bearer a\r\nX: y"})


SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


async def test_a_stream_arrives_chunk_by_chunk_and_its_connection_is_reused_after_the_end(
) -> None:
    events = [b"data: {\"n\": %d}\n\n" % i for i in range(3)]
    wire = SSE_HEAD + b"".join(chunk(e) for e in events) + b"0\r\n\r\n"
    client = LeanClient()
    async with raw_server(lambda _: ([wire[i:i + 5] for i in range(0, len(wire), 5)], False)
                          ) as (url, served):
        for _ in range(2):
            r = await asyncio.wait_for(client.post(url, b"{}", {}, stream=True), 5)
            assert (r.status, r.content_type) == (200, "text/event-stream")
            got = b"".join([data async for data in r.content.iter_any()])
            assert got == b"".join(events)
            r.release()
        assert served == [0, 0]
    client.close()


async def test_a_stream_released_before_its_end_or_cut_mid_way_is_not_reused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean_conn, "FINISH_GRACE", 0.05)
    first = SSE_HEAD + chunk(b"data: {}\n\n")
    client = LeanClient()
    async with raw_server(lambda _: ([first], False)) as (url, served):
        r = await asyncio.wait_for(client.post(url, b"{}", {}, stream=True), 5)
        assert await r.content.read(10) == b"data: {}\n\n"
        r.release()  # the body has not ended: not reused, closed when its end never comes
        r = await asyncio.wait_for(client.post(url, b"{}", {}, stream=True), 5)
        r.close()
        assert served == [0, 1]
        pool = next(iter(client._pools.values()))
        (waiting,) = pool.finishing
        closed = asyncio.Event()
        lost = waiting.connection_lost

        def losing(exc: Exception | None) -> None:
            lost(exc)
            closed.set()

        monkeypatch.setattr(waiting, "connection_lost", losing)
        await asyncio.wait_for(closed.wait(), 5)
        assert not pool.finishing and not pool.idle
    async with raw_server(lambda _: ([first], True)) as (url, _):
        r = await asyncio.wait_for(client.post(url, b"{}", {}, stream=True), 5)
        with pytest.raises(aiohttp.ClientError) as info:  # what the relay already handles
            async for _ in r.content.iter_any():
                pass
        assert isinstance(info.value, LeanError) and info.value.error_class == "stream_cut"
    client.close()


def test_an_egress_proxy_in_the_environment_sends_calls_through_aiohttp(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from echelon_sidecar.providers import HttpProvider

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert HttpProvider()._lean is None
    monkeypatch.delenv("HTTPS_PROXY")
    assert HttpProvider()._lean is not None


async def test_a_stream_released_at_its_end_marker_goes_back_when_its_last_chunk_comes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the SSE end marker in one read, the body's last chunk in a later one (as a server
    # writing [DONE] and then ending its response sends them): the connection is reused
    done = b"data: [DONE]\n\n"
    client = LeanClient()
    returned = asyncio.Event()
    put = lean.Pool.put

    def putting(pool: lean.Pool, conn: lean_conn.Conn) -> None:
        put(pool, conn)
        returned.set()

    monkeypatch.setattr(lean.Pool, "put", putting)
    async with raw_server(lambda _: ([SSE_HEAD + chunk(done), b"0\r\n\r\n"], False)
                          ) as (url, served):
        for _ in range(3):
            returned.clear()
            r = await asyncio.wait_for(client.post(url, b"{}", {}, stream=True), 5)
            got = b""
            async for data in r.content.iter_any():
                got += data
                if got.endswith(done):
                    break  # what the relay does at the end marker
            r.release()
            await asyncio.wait_for(returned.wait(), 5)
            pool = next(iter(client._pools.values()))
            assert pool.idle and not pool.finishing
        assert served == [0, 0, 0]
    client.close()
