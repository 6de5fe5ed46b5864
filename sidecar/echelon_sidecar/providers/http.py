"""The engine's Provider over real HTTP: one pooled aiohttp session per upstream origin.

``call`` sends one attempt and returns an :class:`UpstreamReply`; for a streaming request it
returns only once the first SSE event has arrived (the commit point), so a stream that fails
before its first byte still falls back. Upstream failures become ``UpstreamError`` with the
status, the error class and the Retry-After; what an instance cannot do becomes
``InstanceCannotServe``. A request's trace context (``InboundRequest.trace``) goes upstream
as W3C ``traceparent`` / ``tracestate`` headers, naming the span of each call. Bodies are
checked (JSON, content type, size) before they are trusted: a malformed 200 is a failure of the
instance, not an answer.
"""

from __future__ import annotations

import email.utils
import logging
import os
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from ..engine import AttemptSettings, EngineRequest, Instance, InstanceCannotServe, UpstreamError
from ..translate import SSEDecoder, SSEEvent, TranslationError, upstream_error_to_openai
from .checks import check_first_events
from .convert import convert_body
from .credentials import CredentialError, Credentials
from .embeddings import EmbeddingsRequest, build_embeddings_call, embeddings_body
from .lean import LeanClient, LeanError
from .payload import InboundRequest, UpstreamReply
from .wire import UpstreamCall, build_call, probe_call

__all__ = ["HttpProvider"]

_log = logging.getLogger(__name__)

#: Largest upstream body accepted (non-streaming) and largest single SSE read buffered.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
_ERROR_BODY_BYTES = 64 * 1024


_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class HttpProvider:
    """Calls OpenAI-compatible, Anthropic and Gemini upstreams (see the module docstring)."""

    def __init__(self, *, max_response_bytes: int = MAX_RESPONSE_BYTES, lean: bool | None = None,
                 connect_timeout: float = 10.0) -> None:
        self.credentials = Credentials()
        self.max_response_bytes = max_response_bytes
        self.connect_timeout = connect_timeout
        self._sessions: dict[str, aiohttp.ClientSession] = {}  # one pool per upstream origin
        self._by_url: dict[str, aiohttp.ClientSession] = {}  # call URL -> its origin's session
        # calls go over the lean client (a third of aiohttp's CPU per call); probes stay on
        # aiohttp; ECHELON_UPSTREAM_CLIENT=aiohttp sends everything through aiohttp
        # (and when an egress proxy is configured: HTTPS_PROXY / HTTP_PROXY / NO_PROXY are
        # honoured by aiohttp with trust_env, not by the lean client)
        if lean is None:
            lean = os.environ.get("ECHELON_UPSTREAM_CLIENT", "lean") != "aiohttp" and not any(
                os.environ.get(var) for var in _PROXY_VARS)
        self._lean = LeanClient(connect_timeout=connect_timeout,
                                max_response_bytes=max_response_bytes) if lean else None

    # -- sessions --------------------------------------------------------------------------------

    def _session(self, url: str) -> aiohttp.ClientSession:
        session = self._by_url.get(url)  # the URLs come from the config: a bounded set
        if session is not None and not session.closed:
            return session
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        session = self._sessions.get(origin)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60,
                                             enable_cleanup_closed=True)
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
                json_serialize=lambda o: orjson.dumps(o).decode(),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                trust_env=True,
            )
            self._sessions[origin] = session
        if len(self._by_url) >= 4096:
            self._by_url.clear()
        self._by_url[url] = session
        return session

    async def close(self) -> None:
        if self._lean is not None:
            self._lean.close()
        sessions, self._sessions = list(self._sessions.values()), {}
        self._by_url = {}
        for session in sessions:
            await session.close()

    # -- the Provider protocol -------------------------------------------------------------------

    async def call(self, instance: Instance, request: EngineRequest,
                   settings: AttemptSettings) -> UpstreamReply:
        inbound = request.payload
        assert isinstance(inbound, (InboundRequest, EmbeddingsRequest))
        call = self._prepare(instance, inbound, settings)
        response: Any
        try:
            if self._lean is not None:
                response = await self._lean.post(call.url, call.body, call.headers,
                                                 stream=inbound.stream,
                                                 limit=self.max_response_bytes)
            else:
                response = await self._session(call.url).post(call.url, data=call.body,
                                                              headers=call.headers)
        except LeanError as exc:
            raise UpstreamError(None, exc.error_class, exc.message) from None
        except TimeoutError:
            raise UpstreamError(None, "connect_timeout", "connecting timed out") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamError(None, "connect_error", _os_reason(exc)) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(None, "connection_error", type(exc).__name__) from None
        try:
            if response.status != 200:
                await _raise_for_status(response, call.format)
            ctype = response.content_type
            if inbound.stream:
                if ctype != "text/event-stream":
                    raise UpstreamError(None, "wrong_content_type",
                                        f"expected text/event-stream, got {ctype}")
                reply = await self._first_event(response, call.format, settings.upstream_model,
                                                call.first_tool_call_only)
                return reply
            if ctype != "application/json":
                raise UpstreamError(None, "wrong_content_type",
                                    f"expected application/json, got {ctype}")
            raw = await _read_bounded(response, self.max_response_bytes)
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise UpstreamError(None, "malformed_response",
                                    "the upstream sent invalid JSON") from None
            if not isinstance(body, (dict, list)):
                raise UpstreamError(None, "malformed_response", "the upstream sent no object")
            response.release()
            reply = UpstreamReply(call.format, settings.upstream_model, raw=raw, body=body,
                                  first_tool_call_only=call.first_tool_call_only)
            try:
                reply.raw = _convert(reply, inbound, settings)
            except TranslationError as exc:
                raise UpstreamError(None, "malformed_response", str(exc)[:200]) from None
            return reply
        except BaseException:
            response.close()
            raise

    def _prepare(self, instance: Instance, inbound: InboundRequest | EmbeddingsRequest,
                 settings: AttemptSettings) -> UpstreamCall:
        """The HTTP call of one attempt, with its credential and its trace context."""
        trace = inbound.trace if isinstance(inbound, InboundRequest) else None
        # the span id of this call, taken before anything can fail (the engine counts it as
        # a call whatever happens next, but for InstanceCannotServe)
        span_id = trace.next_call() if trace is not None else 0
        try:
            key = self.credentials.key_for(instance.model_id, instance.entry)
        except CredentialError as exc:
            raise UpstreamError(401, "unauthorized", str(exc)) from None
        try:
            call = _build(inbound, settings, key)
        except InstanceCannotServe:
            if trace is not None:
                trace.cancel_call()
            raise
        if trace is not None:
            trace.inject(call.headers, span_id)
        return call

    async def _first_event(self, response: aiohttp.ClientResponse, fmt: Any,
                           model: str, first_tool_call_only: bool) -> UpstreamReply:
        decoder = SSEDecoder()
        received = bytearray()
        chunks = response.content.iter_any()
        events: list[SSEEvent] = []
        try:
            while not events:
                try:
                    data = await chunks.__anext__()
                except StopAsyncIteration:
                    raise UpstreamError(None, "stream_cut",
                                        "the stream ended before its first event") from None
                received += data
                events = decoder.feed(data)  # every one is checked: all go out as they are
                # the first event is bounded, not the read that completes it (how much of the
                # next event came with it depends on timing)
                if not events and len(received) > self.max_response_bytes:
                    raise UpstreamError(None, "oversized_response", "first event too large")
        except aiohttp.ClientError as exc:
            raise UpstreamError(None, "stream_cut", type(exc).__name__) from None
        _raise_for_error_event(events[0], fmt)
        check_first_events(fmt, events, bytes(received))
        return UpstreamReply(fmt, model, first=events, first_raw=bytes(received),
                             decoder=decoder, chunks=chunks, response=response,
                             max_event_bytes=self.max_response_bytes,
                             first_tool_call_only=first_tool_call_only)

    async def probe(self, instance: Instance) -> None:
        key = self.credentials.key_for(instance.model_id, instance.entry)
        url, headers = probe_call(instance.entry, key)
        session = self._session(url)
        started = time.monotonic()
        async with session.get(url, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status != 200:
                raise UpstreamError(response.status, message="health check failed")
        _log.debug("probe %s ok in %.3fs", instance.model_id, time.monotonic() - started)


# -- helpers ---------------------------------------------------------------------------------------

def _build(inbound: InboundRequest | EmbeddingsRequest, settings: AttemptSettings,
           key: str | None) -> UpstreamCall:
    if isinstance(inbound, InboundRequest):
        return build_call(inbound, settings, key)
    return build_embeddings_call(inbound, settings, key)  # the other request kind


def _convert(reply: UpstreamReply, inbound: InboundRequest | EmbeddingsRequest,
             settings: AttemptSettings) -> bytes:
    if isinstance(inbound, InboundRequest):
        return convert_body(reply, inbound.format)
    return embeddings_body(reply, inbound, settings)

def _os_reason(exc: aiohttp.ClientConnectorError) -> str:
    return getattr(exc.os_error, "strerror", None) or type(exc.os_error).__name__


async def _read_bounded(response: aiohttp.ClientResponse, limit: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > limit:
        raise UpstreamError(None, "oversized_response",
                            f"the response is {declared} bytes (limit {limit})")
    if declared is not None and "Content-Encoding" not in response.headers:
        try:  # a declared, bounded, uncompressed length: one read, no chunk loop
            return await response.read()
        except aiohttp.ClientPayloadError:
            raise UpstreamError(None, "response_cut", "the response body was cut") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(None, "connection_error", type(exc).__name__) from None
    out = bytearray()
    try:
        async for data in response.content.iter_any():
            out += data
            if len(out) > limit:
                raise UpstreamError(None, "oversized_response",
                                    f"the response exceeds {limit} bytes")
    except aiohttp.ClientPayloadError:
        raise UpstreamError(None, "response_cut", "the response body was cut") from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(None, "connection_error", type(exc).__name__) from None
    return bytes(out)


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?"
                       r"(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?")


def upstream_retry_after(headers: Mapping[str, str], status: int) -> float | None:
    """When the upstream says it may be called again, in seconds, as the providers document
    it: ``retry-after-ms`` (OpenAI's precise form, read first as its SDK does), then
    ``Retry-After`` (seconds or an HTTP date); for a 429 without either, OpenAI's
    ``x-ratelimit-reset-requests`` / ``-tokens`` (a Go-style duration such as ``1s``, ``6m0s``,
    ``20ms``) of whichever budget has ``x-ratelimit-remaining-*: 0``."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    seconds = retry_after_seconds(headers.get("Retry-After"))
    if seconds is not None or status != 429:
        return seconds
    for budget in ("requests", "tokens"):
        if headers.get(f"x-ratelimit-remaining-{budget}") == "0":
            reset = duration_seconds(headers.get(f"x-ratelimit-reset-{budget}"))
            if reset is not None:
                return reset
    return None


def duration_seconds(value: str | None) -> float | None:
    """``1h2m3.5s`` / ``6m0s`` / ``20ms`` / ``1s`` as seconds (None when it is none of these)."""
    if not value:
        return None
    match = _DURATION.fullmatch(value.strip())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, secs, millis = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def _raise_for_status(response: aiohttp.ClientResponse, fmt: str) -> None:
    status = response.status
    try:
        raw = await response.content.read(_ERROR_BODY_BYTES)
    except aiohttp.ClientError:
        raw = b""
    body = upstream_error_to_openai(fmt, status, raw)  # type: ignore[arg-type]
    message = str(body.get("error", {}).get("message", ""))[:300]
    retry_after = upstream_retry_after(response.headers, status)
    if retry_after is None and fmt == "gemini" and b"RetryInfo" in raw:
        retry_after = _gemini_retry_delay(raw)
    if fmt == "gemini" and status == 400 and b"API_KEY_INVALID" in raw:
        status = 401  # Gemini answers a wrong key with 400 INVALID_ARGUMENT / API_KEY_INVALID
    raise UpstreamError(status, message=message, retry_after=retry_after, body=body)


def _gemini_retry_delay(raw: bytes) -> float | None:
    """Gemini says when to retry in its error body (``google.rpc.RetryInfo``, e.g.
    ``"retryDelay": "17s"``), not in a Retry-After header."""
    try:
        details = orjson.loads(raw)["error"]["details"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = str(detail.get("retryDelay", ""))
            try:
                return max(0.0, float(delay.removesuffix("s")))
            except ValueError:
                return None
    return None


def _raise_for_error_event(event: SSEEvent, fmt: str) -> None:
    """An error as the first event of a stream (e.g. Anthropic overloaded) is a failure."""
    if fmt == "anthropic" and event.event == "error":
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            data = {}
        kind = (data.get("error") or {}).get("type", "api_error")
        status = {"overloaded_error": 529, "rate_limit_error": 429}.get(kind, 500)
        raise UpstreamError(status, message=str((data.get("error") or {}).get("message", kind)))
    if fmt != "anthropic" and event.data.startswith('{"error"'):
        raise UpstreamError(500, "stream_error", event.data[:200])
