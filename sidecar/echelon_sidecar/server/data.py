"""The data port: OpenAI-compatible and Anthropic-compatible endpoints over the engine.

``model`` names a group reference, a polling pool or a workflow node (``GET /v1/models`` lists
them; ``X-Echelon-Fallback-Groups: none`` asks for no fallback at all); with ``--pool``, a
request without a model (or with ``model: "default"``) goes to that pool.
``X-Echelon-Fallback-Groups``, ``X-Echelon-Node``, ``X-Echelon-Session`` and
``X-Echelon-Timeout`` adjust one request; ``X-Echelon-Served-By``, ``X-Echelon-Tier``,
``X-Echelon-Attempts`` and ``X-Echelon-Fallbacks`` say how it was served.
``POST /v1/responses`` (the OpenAI Responses API, stateless) is served the same way as chat
(see ``responses``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from ..engine import EngineRequest, Outcome, UnknownTarget
from ..errors import RoutingError
from ..providers import CallerFormat, UpstreamReply, UpstreamTrace
from ..providers.lean_response import Body
from ..translate import SSEDecoder, TranslationError, estimate_input_tokens
from . import gateway
from .conversation import ReplyText, reply_of_body
from .errors import ClientError, error_response, routing_error_response
from .inbound import Parsed, parse_request, request_id
from .keys import SIDECAR
from .pump import IdleWatch, Pump
from .relay import StreamBroken, StreamRelay
from .served import log_fields as _log_fields
from .served import served_headers as _served_headers
from .stream_out import StreamOut
from .tracing import RequestTrace, forwarded
from .usage import Usage, body_model, usage_of_body, usage_of_openai

if TYPE_CHECKING:
    from ..engine import Serving
    from .runtime import Sidecar

__all__ = ["ROUTES", "chat_completions", "json_errors", "messages", "openapi", "responses"]

_log = logging.getLogger("echelon.sidecar")
_DEFAULT_MODEL = "default"
_ENDPOINTS = ("POST /v1/chat/completions, POST /v1/messages, POST /v1/responses, "
              "POST /v1/embeddings, POST /v1/messages/count_tokens, GET /v1/models, "
              "GET /v1/models/{name} and GET /openapi.json")


async def openapi(request: web.Request) -> web.Response:
    """This port's OpenAPI description (the model names are the ones served now)."""
    from .openapi import data_spec  # only when asked for: not at start-up

    engine = request.app[SIDECAR].engine
    cfg = engine.config if engine is not None else None
    spec = data_spec(gateway.served_names(engine), nodes=list(cfg.workflow_nodes) if cfg else (),
                     groups=list(cfg.task_groups) if cfg else ())
    return web.Response(body=orjson.dumps(spec), content_type="application/json")


@web.middleware
async def json_errors(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    """Unknown paths and methods answer in the caller's error shape, saying what is served
    (aiohttp's own answers are plain text)."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        fmt: CallerFormat = "anthropic" if request.path.startswith("/v1/messages") \
            else "openai"
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"{request.method} is not allowed on {request.path}; use {allowed}"
            headers = {"Allow": allowed}
        else:
            message = (f"no endpoint {request.method} {request.path}; this sidecar serves "
                       f"{_ENDPOINTS}")
            headers = {}
        return error_response(fmt, exc.status, message, code="unknown_endpoint",
                              headers=headers)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "openai")


async def messages(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "anthropic")


async def responses(request: web.Request) -> web.StreamResponse:
    """The OpenAI Responses API: served as a chat completion, answered as a Response."""
    return await _serve(request, "openai", responses=True)


#: The data port's routes (``create_data_app`` serves them, with ``json_errors``).
ROUTES = (
    web.post("/v1/chat/completions", chat_completions),
    web.post("/v1/messages", messages),
    web.post("/v1/responses", responses),
    web.post("/v1/embeddings", gateway.embeddings),
    web.post("/v1/messages/count_tokens", gateway.count_tokens),
    web.get("/v1/models", gateway.models),
    web.get("/v1/models/{name}", gateway.model),
    web.get("/openapi.json", openapi),
)


# -- serving ---------------------------------------------------------------------------------

async def _serve(request: web.Request, fmt: CallerFormat,
                 responses: bool = False) -> web.StreamResponse:
    sidecar = request.app[SIDECAR]
    started = time.perf_counter()
    tracing = sidecar.tracing
    # tracing on: this request's trace; off: the caller's, forwarded upstream as it is
    trace: UpstreamTrace | None
    if tracing is not None:
        trace = traced = tracing.begin(request.headers)
    else:
        trace, traced = forwarded(request.headers), None
    engine = sidecar.engine
    if engine is None:
        return error_response(fmt, 503, "the sidecar has no valid config yet",
                              headers={"Retry-After": "1"})
    try:
        limit = sidecar.settings.max_body_bytes
        if responses:  # the Responses API and its translators: loaded with its first call
            from .responses import parse_responses

            parsed = await parse_responses(request, limit)
        else:
            parsed = await parse_request(request, fmt, limit)
    except ClientError as exc:
        return error_response(fmt, exc.status, exc.message, param=exc.param, code=exc.code,
                              headers={"X-Request-Id": request_id(request)})
    headers = {"X-Request-Id": parsed.inbound.request_id}
    parsed.inbound.trace = trace
    model = parsed.model
    if model in (None, _DEFAULT_MODEL):
        model = sidecar.default_pool
        if model is None:
            return error_response(fmt, 400, "model is required: a group reference, a "
                                  "polling pool or a workflow node (see GET /v1/models)",
                                  param="model", headers=headers)
    target_label = model
    try:
        target = engine.resolve(model, parsed.node)
    except UnknownTarget as exc:
        sidecar.metrics.observe_request(target_label, None, "unknown_target",
                                        time.perf_counter() - started)
        answer = routing_error_response(fmt, exc, headers)
        if traced is not None:
            _trace(sidecar, traced, request, parsed, model, None, answer.status, None,
                   "UnknownTarget")
        return answer
    target_label = target.name
    timeout = parsed.timeout or sidecar.settings.request_timeout
    ereq = EngineRequest(
        target,
        payload=parsed.inbound,
        fallback_groups=parsed.fallback_groups,
        session_id=parsed.session_id,
        user_turns=parsed.user_turns,
        conversation_key=parsed.conversation_key,
        deadline=engine.clock.now() + timeout if timeout else None,
        stream=parsed.inbound.stream,
    )
    if engine.token_budgets:
        _estimate_tokens(ereq, parsed.inbound.body)
    return await _answer(sidecar, request, fmt, ereq, parsed, headers, model, target_label,
                         started, traced)


async def _answer(sidecar: Sidecar, request: web.Request, fmt: CallerFormat,
                  ereq: EngineRequest, parsed: Parsed, headers: dict[str, str], model: str,
                  target_label: str, started: float, traced: RequestTrace | None
                  ) -> web.StreamResponse:
    """Serve the resolved request: streamed, or whole; a routing failure in the caller's
    error shape."""
    engine = sidecar.engine
    assert engine is not None
    metrics = sidecar.metrics
    metrics.in_flight.inc()
    try:
        if parsed.inbound.stream:
            return await _stream(sidecar, request, fmt, ereq, parsed, headers, model,
                                 target_label, started, traced)
        serving = engine.serve(ereq)
        async with serving as outcome:
            reply: UpstreamReply = outcome.result
            body = reply.raw
            if parsed.first_turn:
                _pin_first_turn(serving, parsed, fmt, reply)
            usage = usage_of_body(reply.format, reply.body)
            if usage is not None and ereq.input_tokens:
                serving.report_usage(usage[0] + usage[1])  # settles the token budgets
        if parsed.responses is not None:
            body = parsed.responses.body(reply)
        _served_headers(outcome, headers)
        seconds = time.perf_counter() - started
        metrics.observe_request(target_label, outcome, "ok", seconds)
        metrics.observe_served(outcome, usage, seconds)
        if traced is not None:
            _trace(sidecar, traced, request, parsed, model, target_label, 200, outcome, None,
                   usage, body_model(reply.body), reply)
        if outcome.fallbacks_taken and _log.isEnabledFor(logging.INFO):
            # the trail is built only when the line is written
            _log.info("served after fallback", extra=_log_fields(parsed.inbound.request_id,
                                                                 target_label, outcome))
        return web.Response(body=body, content_type="application/json", headers=headers)
    except RoutingError as exc:
        failed: Outcome | None = getattr(exc, "outcome", None)
        metrics.observe_request(target_label, failed, type(exc).__name__,
                                time.perf_counter() - started)
        _log.warning("request failed: %s", exc,
                     extra=_log_fields(parsed.inbound.request_id, target_label, failed))
        answer = routing_error_response(fmt, exc, headers)
        if traced is not None:
            _trace(sidecar, traced, request, parsed, model, target_label, answer.status,
                   failed, type(exc).__name__)
        return answer
    finally:
        metrics.in_flight.dec()


def _trace(sidecar: Sidecar, trace: RequestTrace, request: web.Request, parsed: Parsed,
           model: str | None, target: str | None, status: int, outcome: Outcome | None,
           error: str | None, usage: Usage | None = None, response_model: str | None = None,
           reply: UpstreamReply | None = None) -> None:
    """The request's spans (tracing on), built now from its outcome's trail."""
    tracing, engine = sidecar.tracing, sidecar.engine
    if tracing is None:
        return
    reply_body = None
    if tracing.capture_content and reply is not None and reply.raw:
        with suppress(orjson.JSONDecodeError):
            reply_body = orjson.loads(reply.raw)  # the reply as the caller got it
    inbound = parsed.inbound
    tracing.finish(
        trace, requested=model, target=target, path=request.path, stream=inbound.stream,
        request_id=inbound.request_id, status=status, outcome=outcome, error=error,
        usage=usage, response_model=response_model,
        models=engine.config.models if engine is not None else None,
        clock_now=engine.clock.now() if engine is not None else None,
        request_body=inbound.body, reply_body=reply_body)


async def _stream(sidecar: Sidecar, request: web.Request, fmt: CallerFormat,
                  ereq: EngineRequest, parsed: Parsed, headers: dict[str, str],
                  model: str | None, target_label: str, started: float,
                  traced: RequestTrace | None) -> web.StreamResponse:
    engine = sidecar.engine
    assert engine is not None
    response: web.StreamResponse | None = None
    outcome: Outcome | None = None
    try:
        serving = engine.serve(ereq)
        async with serving as outcome:
            reply: UpstreamReply = outcome.result
            _served_headers(outcome, headers)
            response = web.StreamResponse(headers={
                **headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no"})
            await response.prepare(request)
            sidecar.metrics.observe_request(target_label, outcome, "ok",
                                            time.perf_counter() - started)
            collected = ReplyText() if parsed.first_turn else None
            usage_raw, first_at = await _relay(response, reply, fmt, parsed, outcome,
                                               collected)
            usage = usage_of_openai(usage_raw)
            if usage is not None and ereq.input_tokens:
                serving.report_usage(usage[0] + usage[1])  # settles the token budgets
            if collected is not None:  # the whole reply went out
                streamed = collected.reply()
                if streamed is not None:
                    serving.pin_as(parsed.conversation.pin_key(streamed))
        sidecar.metrics.observe_served(outcome, usage, time.perf_counter() - started,
                                       first_at - started)
        if traced is not None:
            _trace(sidecar, traced, request, parsed, model, target_label, 200, outcome, None,
                   usage)
        return response
    except StreamBroken as exc:
        _log.warning("stream broke after its first byte: %s", exc,
                     extra=_log_fields(ereq.payload.request_id, target_label,  # type: ignore[attr-defined]
                                       outcome))
        assert response is not None
        if traced is not None:
            _trace(sidecar, traced, request, parsed, model, target_label, response.status,
                   outcome, "stream_broken")
        return response
    except RoutingError as exc:
        failed = getattr(exc, "outcome", None)
        sidecar.metrics.observe_request(target_label, failed, type(exc).__name__,
                                        time.perf_counter() - started)
        _log.warning("request failed: %s", exc, extra=_log_fields(
            ereq.payload.request_id, target_label, failed))  # type: ignore[attr-defined]
        answer = routing_error_response(fmt, exc, headers)
        if traced is not None:
            _trace(sidecar, traced, request, parsed, model, target_label, answer.status,
                   failed, type(exc).__name__)
        return answer


def _estimate_tokens(ereq: EngineRequest, body: dict[str, Any]) -> None:
    """What the request may spend, for the token budgets (``tpm_limit``)."""
    ereq.input_tokens = max(1, estimate_input_tokens(body))
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    ereq.max_output_tokens = limit if isinstance(limit, int) and limit > 0 else None


def _pin_first_turn(serving: Serving, parsed: Parsed, fmt: CallerFormat,
                    reply: UpstreamReply) -> None:
    """Pin a first turn's instance under the key of its opening and reply (what its second
    turn will look the pin up by). The reply is read from the body as the caller gets it:
    parsed already when it passes through, parsed again when it was translated."""
    body = reply.body if reply.format == fmt else orjson.loads(reply.raw)
    serving.pin_as(parsed.conversation.pin_key(reply_of_body(fmt == "anthropic", body)))


async def _relay(response: web.StreamResponse, reply: UpstreamReply, fmt: CallerFormat,
                 parsed: Parsed, outcome: Outcome, collected: ReplyText | None
                 ) -> tuple[dict[str, object] | None, float]:
    """Relay the stream to its end; the usage it reported, and when its first bytes went
    out (``time.perf_counter``). A lean-client body written straight to the caller's
    transport is relayed from the upstream connection's callbacks (``Pump``); any other one
    by awaiting each read."""
    calls = parsed.responses
    relay = StreamRelay(reply, fmt, parsed.inbound.include_usage, collected,
                        calls.stream(reply.model) if calls is not None else None)
    idle = outcome.settings.timeout if outcome.settings is not None else 60.0
    decoder, chunks = reply.decoder, reply.chunks
    assert decoder is not None and chunks is not None
    sink = StreamOut(response)
    ok = False
    watch: IdleWatch | None = None
    try:
        out = relay.feed(reply.first, reply.first_raw)
        if out:
            await response.write(out)
        first_at = time.perf_counter()
        watch = IdleWatch(idle)
        try:
            if sink.direct and type(chunks) is Body:
                if not relay.done:
                    await Pump(chunks, decoder, relay, sink, reply.max_event_bytes, watch).run()
            else:
                await _relay_reads(response, sink, relay, decoder, chunks,
                                   reply.max_event_bytes, watch)
        except asyncio.CancelledError:
            if watch.expired():
                raise StreamBroken(f"the upstream sent nothing for {idle:g}s") from None
            raise
        tail = relay.feed(decoder.flush(), b"") + relay.finish()
        if tail:
            await response.write(tail)
        await response.write_eof()
        ok = True
        return relay.usage(), first_at
    except (StreamBroken, TranslationError, orjson.JSONDecodeError, ValueError) as exc:
        with suppress(ConnectionError, RuntimeError):
            await response.write(relay.error_event(f"the upstream stream broke: {exc}"))
            await response.write_eof()
        raise StreamBroken(str(exc)) from None
    except ConnectionError:
        raise asyncio.CancelledError() from None  # the client went away: no one to blame
    finally:
        if watch is not None:
            watch.close()
        reply.close(ok)


async def _relay_reads(response: web.StreamResponse, sink: StreamOut, relay: StreamRelay,
                       decoder: SSEDecoder, chunks: AsyncIterator[bytes], limit: int,
                       watch: IdleWatch) -> None:
    """Relay by awaiting each upstream read, until the stream's end marker or its body's
    end (aiohttp's client, or a response StreamOut cannot write to)."""
    direct = sink.direct
    clock = watch.loop.time
    pending = 0
    while not relay.done:
        watch.since = clock()
        watch.waiting = True
        try:
            data = await chunks.__anext__()
        except StopAsyncIteration:
            break
        except aiohttp.ClientError as exc:
            raise StreamBroken(f"the upstream connection failed: {type(exc).__name__}") from None
        finally:
            watch.waiting = False
        events = decoder.feed(data)
        if events:
            pending = 0
        else:  # bytes of an event still incomplete: bounded, like a whole body
            pending += len(data)
            if limit and pending > limit:
                raise StreamBroken(f"an upstream event exceeds {limit} bytes")
        out = relay.feed(events, data)
        if out:
            if not direct:
                await response.write(out)
            elif sink.send(out):  # the caller reads slower than the upstream sends
                await sink.drain()
