"""The request pipeline shared by every wire format: count, record, inject faults, answer.

Order per generation request: count the arrival, record it, pick a fault, wait the configured
latency, act out the fault (if it replaces the answer), check the API key, read the request,
build the reply and write it (possibly cut or oversized).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time

from aiohttp import web

from .content import build_reply, oversized_text
from .faults import Fault, FaultKind
from .state import STATE, FakeState
from .stats import NO_RESPONSE, RecordedRequest
from .wire import SSE_HEADERS, Exchange, InvalidRequest, Wire

__all__ = ["serve"]

_HTML_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center><hr><center>fake-provider</center>"
    b"</body></html>"
)


async def serve(exchange: Exchange, wire: Wire) -> web.StreamResponse:
    request = exchange.request
    state = request.app[STATE]
    model = exchange.model
    stats = state.stats
    stats.begin(model, exchange.endpoint)
    status = NO_RESPONSE
    try:
        if state.settings.record_requests:
            _record(state, exchange)
        fault = state.faults.pick(model)
        if state.settings.latency_ms:
            await _pause(state, state.settings.latency_ms)
        if fault is not None:
            stats.count_fault(model, fault.kind.value)
            if fault.latency_ms:
                await _pause(state, fault.latency_ms)
            acted = await _act(exchange, wire, fault, state)
            if acted is not None:
                status = _status_of(acted)
                return acted
        resp = await _answer(exchange, wire, state, fault)
        status = _status_of(resp)
        return resp
    except asyncio.CancelledError:
        status = "client_closed" if status == NO_RESPONSE else status
        raise
    finally:
        stats.end(model, status)


def _status_of(resp: web.StreamResponse | None) -> str:
    if resp is None or getattr(resp, "_fake_no_response", False):
        return NO_RESPONSE
    return str(resp.status)


def _record(state: FakeState, exchange: Exchange) -> None:
    request = exchange.request
    state.log.keep = state.settings.record_requests
    state.log.add(
        RecordedRequest(
            time=time.time(),
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=exchange.body,
            model=exchange.model,
            endpoint=exchange.endpoint,
        )
    )


async def _pause(state: FakeState, ms: float) -> None:
    """Sleep `ms` milliseconds, or less if the server is shutting down."""
    if state.shutdown.is_set():
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.shutdown.wait(), ms / 1000.0)


async def _answer(
    exchange: Exchange, wire: Wire, state: FakeState, fault: Fault | None
) -> web.StreamResponse:
    request = exchange.request
    settings = state.settings
    if settings.api_key is not None:
        denied = wire.unauthorized(request, settings.api_key)
        if denied is not None:
            return denied
    try:
        if exchange.body_error is not None:
            raise InvalidRequest(exchange.body_error)
        prompt = wire.prompt(exchange)
    except InvalidRequest as exc:
        return wire.error(exc.status, exc.message, param=exc.param)
    reply = build_reply(prompt, fixed_reply=settings.reply, echo_words=settings.echo_words)
    kind = fault.kind if fault is not None else None
    if kind is FaultKind.OVERSIZE and fault is not None:
        reply.text = oversized_text(fault.megabytes or 1.0)
        reply.tool_call = None
        reply.parallel_calls = []
        reply.truncated = False
    cut = fault.after_chunks if kind is FaultKind.CUT and fault is not None else None
    if exchange.stream:
        frames = wire.frames(reply, exchange, settings.stream_chunks)
        return await _write_stream(exchange, wire, frames, settings.chunk_delay_ms, cut)
    data = wire.body(reply, exchange)
    if cut is not None:
        return await _write_cut_body(request, data)
    return web.Response(body=data, content_type="application/json")


async def _write_stream(
    exchange: Exchange, wire: Wire, frames: list[bytes], delay_ms: float, cut: int | None
) -> web.StreamResponse:
    request = exchange.request
    resp = web.StreamResponse(status=200, headers=SSE_HEADERS)
    resp.content_type = wire.stream_content_type_for(exchange)
    await resp.prepare(request)
    if cut is not None:
        frames = frames[:cut]
    if not delay_ms and cut is None:
        await resp.write(b"".join(frames))
    else:
        delay = delay_ms / 1000.0
        for i, frame in enumerate(frames):
            if i and delay:
                await asyncio.sleep(delay)
            await resp.write(frame)
    if cut is not None:
        _close(request)
        return resp
    await resp.write_eof()
    return resp


async def _write_cut_body(request: web.Request, data: bytes) -> web.StreamResponse:
    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    resp.content_length = len(data)
    await resp.prepare(request)
    await resp.write(data[: len(data) // 2])
    _close(request)
    return resp


def _close(request: web.Request) -> None:
    """Close the connection gracefully after what was written (a truncated body)."""
    transport = request.transport
    if transport is not None:
        transport.close()


def _reset(request: web.Request) -> None:
    """Close the connection abruptly: SO_LINGER 0, so the peer gets a TCP RST."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError, TypeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _no_response() -> web.Response:
    resp = web.Response()
    resp._fake_no_response = True  # type: ignore[attr-defined]
    return resp


async def _hang(request: web.Request, state: FakeState) -> None:
    """Wait until the client goes away or the server shuts down."""
    while not state.shutdown.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.shutdown.wait(), 0.05)


async def _act(
    exchange: Exchange, wire: Wire, fault: Fault, state: FakeState
) -> web.StreamResponse | None:
    """Act out `fault`; None when the fault only shapes the normal answer (latency, cut,
    oversize)."""
    request = exchange.request
    kind = fault.kind
    if kind is FaultKind.STATUS:
        return wire.error(int(fault.status or 500), fault.message, retry_after=fault.retry_after)
    if kind is FaultKind.RESET:
        _reset(request)
        return _no_response()
    if kind is FaultKind.HANG:
        await _hang(request, state)
        _reset(request)
        return _no_response()
    if kind is FaultKind.HANG_BODY:
        resp = web.StreamResponse(status=200)
        resp.content_type = (
            wire.stream_content_type_for(exchange) if exchange.stream else "application/json"
        )
        await resp.prepare(request)
        await _hang(request, state)
        _reset(request)
        return resp
    if kind is FaultKind.MALFORMED:
        ctype = wire.stream_content_type_for(exchange) if exchange.stream else "application/json"
        return web.Response(body=wire.malformed(exchange), content_type=ctype)
    if kind is FaultKind.HTML:
        return web.Response(body=_HTML_PAGE, content_type="text/html")
    return None
