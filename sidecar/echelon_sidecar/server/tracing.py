"""OpenTelemetry traces of the data port, after the GenAI semantic conventions.

Off unless ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set
(and ``OTEL_SDK_DISABLED`` is not ``true``, ``OTEL_TRACES_EXPORTER`` not ``none``). Off,
nothing of OpenTelemetry is imported; a caller's W3C ``traceparent`` / ``tracestate`` are
forwarded to the upstream unchanged (:class:`ForwardedTrace`), as a proxy that does not
trace should.

On, each request gets a :class:`RequestTrace` when it arrives: the caller's trace is continued
(else a new one starts), sampled by the SDK's sampler from the standard ``OTEL_TRACES_SAMPLER``
(default ``parentbased_always_on``). Each upstream call gets its span id *before* it is sent,
so the upstream's ``traceparent`` names the span of that very attempt. The spans themselves
are built when the request ends, from the engine's attempt trail (explicit start and end
times; nothing is instrumented on the hot path):

- one ``SERVER`` span per request, ``chat <model>``: ``gen_ai.operation.name``,
  ``gen_ai.request.model`` (the group reference, pool or node the caller named),
  ``gen_ai.response.model``, ``gen_ai.provider.name``, ``gen_ai.usage.input_tokens`` /
  ``output_tokens``, ``echelon.tier`` (``group.tier`` that served), ``echelon.attempts``,
  ``echelon.fallbacks``, ``echelon.stop_reason``, ``error.type``; skips without a call
  (open circuit, limits, ...) are its ``echelon.skip`` events;
- one ``CLIENT`` child span per upstream call, ``chat <upstream model>``: provider, model,
  ``echelon.attempt.outcome`` (``ok`` / ``error``), ``echelon.attempt.reason``,
  ``error.type`` (the error class), ``http.response.status_code``.

Exported in batches (a background thread) with OTLP over HTTP/protobuf, configured by the
standard ``OTEL_*`` variables (endpoint, headers, timeout, compression, service name, resource
attributes, batch sizes). No prompt or completion text and no credential is put in a span,
unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (the GenAI
instrumentations' own switch) adds ``gen_ai.input.messages`` and ``gen_ai.output.messages``.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

if TYPE_CHECKING:
    from ..config import ModelEntry
    from ..engine import Attempt, Outcome

__all__ = ["ForwardedTrace", "RequestTrace", "Tracing", "forwarded", "tracing_enabled"]

_log = logging.getLogger("echelon.sidecar")

#: W3C trace-context ``traceparent``: version, trace id, parent id, flags (a later version
#: may append fields after a ``-``).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_MAX_TRACESTATE = 512
_CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_MAX_CONTENT = 64 * 1024
#: gen_ai.provider.name of each catalog provider kind (the semantic conventions' values)
_PROVIDER_NAMES = {"openai": "openai", "openai_compatible": "openai",
                   "anthropic": "anthropic", "gemini": "gcp.gemini"}


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard OTel variables ask for traces (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())


def _parse(traceparent: str | None) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) of a valid ``traceparent``, else None."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    tid, sid = int(trace_id, 16), int(span_id, 16)
    if not tid or not sid:
        return None
    return tid, sid, int(flags, 16)


def _tracestate(value: str | None) -> str | None:
    if not value or len(value) > _MAX_TRACESTATE:
        return None
    return value


class ForwardedTrace:
    """Tracing off: the caller's trace context goes to every upstream call unchanged."""

    __slots__ = ("traceparent", "tracestate")

    def __init__(self, traceparent: str, tracestate: str | None) -> None:
        self.traceparent = traceparent
        self.tracestate = tracestate

    def next_call(self) -> int:
        return 0

    def cancel_call(self) -> None:
        return None

    def inject(self, headers: dict[str, str], span_id: int) -> None:
        headers["traceparent"] = self.traceparent
        if self.tracestate:
            headers["tracestate"] = self.tracestate


def forwarded(headers: Mapping[str, str]) -> ForwardedTrace | None:
    """The caller's valid trace context, to forward (tracing off); None without one."""
    value = headers.get("traceparent")
    if value is None or _parse(value) is None:
        return None
    return ForwardedTrace(value.strip(), _tracestate(headers.get("tracestate")))


class RequestTrace:
    """One request's trace ids: its span, its parent (the caller's), its upstream calls'."""

    __slots__ = ("attempt_ids", "flags", "parent", "parent_span_id", "sampled", "span_id",
                 "start_ns", "trace_id", "tracestate")

    def __init__(self, trace_id: int, parent_span_id: int | None, sampled: bool,
                 tracestate: str | None, parent: Any) -> None:
        self.trace_id = trace_id
        self.parent_span_id = parent_span_id
        self.span_id = _span_id()
        self.sampled = sampled
        self.flags = "01" if sampled else "00"
        self.tracestate = tracestate
        self.parent = parent  # the OTel Context of the caller's span (None: a root)
        self.start_ns = time.time_ns()
        self.attempt_ids: list[int] = []

    def next_call(self) -> int:
        """The span id of the upstream call about to be made (the n-th call of the trail)."""
        span_id = _span_id()
        self.attempt_ids.append(span_id)
        return span_id

    def cancel_call(self) -> None:
        """The call was not made after all (the instance cannot serve the request)."""
        if self.attempt_ids:
            self.attempt_ids.pop()

    def inject(self, headers: dict[str, str], span_id: int) -> None:
        headers["traceparent"] = f"00-{self.trace_id:032x}-{span_id:016x}-{self.flags}"
        if self.tracestate:
            headers["tracestate"] = self.tracestate


def _span_id() -> int:
    return random.getrandbits(64) or 1


class Tracing:
    """The sidecar's tracer: an OTel SDK ``TracerProvider`` exporting OTLP over HTTP/protobuf.

    ``begin(headers)`` when a request arrives, ``finish(trace, ...)`` when its reply is out;
    ``shutdown()`` flushes what is left (the sidecar calls it when it stops).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        # imported here: with tracing off, nothing of OpenTelemetry is ever imported
        from opentelemetry import trace as otel_trace
        from opentelemetry.context import Context
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.sdk.trace.sampling import Decision
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from .. import __version__

        env = os.environ if environ is None else environ
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
        if protocol != "http/protobuf":
            _log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported: the sidecar "
                         "exports traces with OTLP over http/protobuf", protocol)

        class PresetIds(RandomIdGenerator):
            """Hands out the ids chosen when the request arrived (the upstream calls were
            sent with them), then random ones."""

            def __init__(self) -> None:
                self.span_id = 0
                self.trace_id = 0

            def generate_span_id(self) -> int:
                span_id, self.span_id = self.span_id, 0
                return span_id or super().generate_span_id()

            def generate_trace_id(self) -> int:
                trace_id, self.trace_id = self.trace_id, 0
                return trace_id or super().generate_trace_id()

        attributes: dict[str, Any] = {"service.version": __version__}
        if not env.get("OTEL_SERVICE_NAME") and "service.name=" not in env.get(
                "OTEL_RESOURCE_ATTRIBUTES", ""):
            attributes["service.name"] = "echelon-sidecar"
        self._ids = PresetIds()
        self.provider = TracerProvider(resource=Resource.create(attributes),
                                       id_generator=self._ids)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.sampler = self.provider.sampler
        self.tracer = self.provider.get_tracer("echelon_sidecar", __version__)
        self.capture_content = env.get(_CAPTURE_ENV, "").strip().lower() == "true"
        self._otel = otel_trace
        self._root = Context()
        self._server, self._client = SpanKind.SERVER, SpanKind.CLIENT
        self._status, self._error = Status, StatusCode.ERROR
        self._sample = Decision.RECORD_AND_SAMPLE
        self._closed = False

    # -- a request arrives -----------------------------------------------------------------------

    def begin(self, headers: Mapping[str, str]) -> RequestTrace:
        """The trace of a request that just arrived: the caller's continued, or a new one."""
        otel = self._otel
        given = _parse(headers.get("traceparent"))
        tracestate = _tracestate(headers.get("tracestate")) if given else None
        if given is None:
            trace_id, parent_id, parent = self._ids.generate_trace_id(), None, None
        else:
            trace_id, parent_id, flags = given
            state = otel.TraceState.from_header([tracestate]) if tracestate else None
            parent = otel.set_span_in_context(otel.NonRecordingSpan(otel.SpanContext(
                trace_id, parent_id, is_remote=True, trace_flags=otel.TraceFlags(flags & 0xFF),
                trace_state=state)), self._root)
        decision = self.sampler.should_sample(parent or self._root, trace_id, "chat",
                                              self._server)
        return RequestTrace(trace_id, parent_id, decision.decision is self._sample,
                            tracestate, parent)

    # -- its reply is out ------------------------------------------------------------------------

    def finish(
        self, trace: RequestTrace, *, operation: str = "chat", requested: str | None,
        target: str | None, path: str, stream: bool, request_id: str, status: int,
        outcome: Outcome | None, error: str | None, usage: tuple[int, int] | None = None,
        response_model: str | None = None, models: Mapping[str, ModelEntry] | None = None,
        clock_now: float | None = None, request_body: Any = None, reply_body: Any = None,
    ) -> None:
        """Build and end the request's spans (see the module docstring). Never raises."""
        if not trace.sampled:
            return
        try:
            self._finish(trace, operation, requested, target, path, stream, request_id,
                         status, outcome, error, usage, response_model, models or {},
                         clock_now, request_body, reply_body)
        except Exception:  # a span must never fail a request
            _log.warning("building the request's spans failed", exc_info=True)

    def _finish(
        self, trace: RequestTrace, operation: str, requested: str | None, target: str | None,
        path: str, stream: bool, request_id: str, status: int, outcome: Outcome | None,
        error: str | None, usage: tuple[int, int] | None, response_model: str | None,
        models: Mapping[str, ModelEntry], clock_now: float | None, request_body: Any,
        reply_body: Any,
    ) -> None:
        end_ns = time.time_ns()
        requested = requested or target or ""
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": requested,
            "http.request.method": "POST",
            "url.path": path,
            "http.response.status_code": status,
            "echelon.request_id": request_id,
            "echelon.stream": stream,
        }
        if target:
            attrs["echelon.target"] = target
        if isinstance(request_body, dict):
            _request_attributes(attrs, request_body)
        entry = None
        if outcome is not None:
            attrs["echelon.attempts"] = sum(1 for a in outcome.attempts if a.call is not None)
            attrs["echelon.fallbacks"] = outcome.fallbacks_taken
            if outcome.stop_reason:
                attrs["echelon.stop_reason"] = outcome.stop_reason
            if outcome.model is not None:
                entry = models.get(outcome.model)
                attrs["echelon.tier"] = f"{outcome.group}.{outcome.tier}"
                attrs["echelon.group"] = outcome.group
                attrs["echelon.model_id"] = outcome.model
                settings = outcome.settings
                upstream = settings.upstream_model if settings is not None else (
                    entry.model if entry is not None else outcome.model)
                attrs["gen_ai.response.model"] = response_model or upstream
                if entry is not None:
                    attrs["gen_ai.provider.name"] = _PROVIDER_NAMES.get(entry.provider,
                                                                        entry.provider)
        if usage is not None:
            attrs["gen_ai.usage.input_tokens"] = usage[0]
            attrs["gen_ai.usage.output_tokens"] = usage[1]
        if error:
            attrs["error.type"] = error
        if self.capture_content:
            _content_attributes(attrs, request_body, reply_body)
        self._ids.span_id = trace.span_id
        if trace.parent is None:
            self._ids.trace_id = trace.trace_id
        span = self.tracer.start_span(f"{operation} {requested}".strip(),
                                      context=trace.parent or self._root, kind=self._server,
                                      attributes=attrs, start_time=trace.start_ns)
        self._ids.span_id = self._ids.trace_id = 0
        if outcome is not None:
            now = clock_now if clock_now is not None else time.monotonic()
            offset = end_ns - int(now * 1e9)
            self._attempt_spans(span, trace, outcome, models, offset, operation)
        if error:
            span.set_status(self._status(self._error, error))
        span.end(end_time=end_ns)

    def _attempt_spans(self, span: Any, trace: RequestTrace, outcome: Outcome,
                       models: Mapping[str, ModelEntry], offset: int, operation: str) -> None:
        parent = self._otel.set_span_in_context(span, self._root)
        ids = trace.attempt_ids
        for attempt in outcome.attempts:
            start = int(attempt.start * 1e9) + offset
            if attempt.call is None:
                span.add_event("echelon.skip", _skip_attributes(attempt), timestamp=start)
                continue
            entry = models.get(attempt.model)
            upstream = entry.model if entry is not None else attempt.model
            attrs = _attempt_attributes(attempt, entry, upstream, operation)
            index = attempt.call - 1
            self._ids.span_id = ids[index] if 0 <= index < len(ids) else 0
            child = self.tracer.start_span(f"{operation} {upstream}", context=parent,
                                           kind=self._client, attributes=attrs,
                                           start_time=start)
            self._ids.span_id = 0
            if attempt.result == "error":
                child.set_status(self._status(self._error, attempt.error_class or
                                              attempt.reason))
            child.end(end_time=start + int(attempt.duration * 1e9))

    def flush(self, timeout_millis: int = 5000) -> bool:
        return bool(self.provider.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Export what is queued and stop (idempotent: a stopped sidecar may stop again)."""
        if not self._closed:
            self._closed = True
            self.provider.shutdown()


def _attempt_attributes(attempt: Attempt, entry: ModelEntry | None, upstream: str,
                        operation: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": upstream,
        "gen_ai.provider.name": _PROVIDER_NAMES.get(attempt.provider, attempt.provider),
        "echelon.provider": attempt.provider,
        "echelon.model_id": attempt.model,
        "echelon.group": attempt.group,
        "echelon.tier": f"{attempt.group}.{attempt.tier}",
        "echelon.attempt.call": attempt.call,
        "echelon.attempt.phase": attempt.phase,
        "echelon.attempt.outcome": attempt.result,
        "echelon.attempt.reason": attempt.reason,
    }
    if entry is not None:
        host = urlsplit(entry.endpoint).hostname
        if host:
            attrs["server.address"] = host
    if attempt.error_class:
        attrs["error.type"] = attempt.error_class
    elif attempt.result == "error":
        attrs["error.type"] = attempt.reason
    if attempt.status is not None:
        attrs["http.response.status_code"] = attempt.status
    return attrs


def _skip_attributes(attempt: Attempt) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "echelon.model_id": attempt.model,
        "echelon.tier": f"{attempt.group}.{attempt.tier}",
        "echelon.attempt.phase": attempt.phase,
        "echelon.attempt.reason": attempt.reason,
    }
    if attempt.message:
        attrs["echelon.attempt.message"] = attempt.message
    return attrs


def _request_attributes(attrs: dict[str, Any], body: dict[str, Any]) -> None:
    """The request parameters the conventions name (numbers only, never text)."""
    for key, name in (("max_completion_tokens", "gen_ai.request.max_tokens"),
                      ("max_tokens", "gen_ai.request.max_tokens"),
                      ("temperature", "gen_ai.request.temperature"),
                      ("top_p", "gen_ai.request.top_p")):
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and name not in attrs:
            attrs[name] = value


def _content_attributes(attrs: dict[str, Any], request_body: Any, reply_body: Any) -> None:
    """Opt-in only: the prompt and the reply, as JSON (truncated to 64 KiB each)."""
    if isinstance(request_body, dict) and request_body.get("messages") is not None:
        attrs["gen_ai.input.messages"] = _json(request_body["messages"])
    if isinstance(reply_body, dict):
        choices = reply_body.get("choices")
        if isinstance(choices, list):
            attrs["gen_ai.output.messages"] = _json(
                [c.get("message") for c in choices if isinstance(c, dict)])
        elif reply_body.get("content") is not None:  # an Anthropic-format reply
            attrs["gen_ai.output.messages"] = _json(
                [{"role": "assistant", "content": reply_body["content"]}])


def _json(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= _MAX_CONTENT else text[:_MAX_CONTENT] + "…"
