"""An OTLP/HTTP trace receiver of the tests' own: what a collector would get from the sidecar.

An aiohttp server on 127.0.0.1 (port from the OS) that accepts ``POST /v1/traces`` with a
protobuf ``ExportTraceServiceRequest`` (gzip or not), decodes it with the OTLP protobuf
definitions, and keeps each span as a :class:`ReceivedSpan`::

    async with OtlpReceiver() as otlp:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.url)
        ...
        spans = await otlp.wait_for_trace(trace_id, count=3)
"""

from __future__ import annotations

import asyncio
import gzip
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["OtlpReceiver", "ReceivedSpan"]

#: OTLP's Span.SpanKind numbers
KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER",
         5: "CONSUMER"}
STATUS = {0: "UNSET", 1: "OK", 2: "ERROR"}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status: str
    status_message: str
    events: list[dict[str, Any]]
    resource: dict[str, Any]
    scope: str


@dataclass
class OtlpReceiver:
    """See the module docstring; ``requests`` counts the export requests received."""

    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    content_types: set[str] = field(default_factory=set)
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.content_types.add(request.content_type)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=KINDS.get(span.kind, str(span.kind)),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={kv.key: _value(kv.value) for kv in span.attributes},
                        status=STATUS.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message,
                        events=[{"name": e.name, "time_ns": e.time_unix_nano,
                                 "attributes": {kv.key: _value(kv.value)
                                                for kv in e.attributes}}
                                for e in span.events],
                        resource=resource,
                        scope=scope_spans.scope.name,
                    ))
        self.requests += 1
        self._arrived.set()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def __aenter__(self) -> OtlpReceiver:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]

    async def wait_for_trace(self, trace_id: str, count: int,
                             within: float = 10.0) -> list[ReceivedSpan]:
        """The spans of ``trace_id`` once at least ``count`` arrived (fails after ``within``)."""
        deadline = time.monotonic() + within
        while len(self.trace(trace_id)) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                got = [(s.name, s.kind) for s in self.trace(trace_id)]
                raise AssertionError(f"trace {trace_id}: {len(got)} spans after {within}s, "
                                     f"expected {count}: {got}")
            self._arrived.clear()
            try:
                async with asyncio.timeout(min(left, 0.5)):
                    await self._arrived.wait()
            except TimeoutError:
                pass
        return self.trace(trace_id)
