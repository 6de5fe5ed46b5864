"""`echelon fake-provider`: fake OpenAI / Anthropic / Gemini upstreams with fault injection.

Used by the tests, the demo and the benchmarks. Real wire formats (checked against the official
SDKs), deterministic replies, per-model faults settable from the CLI and at runtime over HTTP
(`/_fake/*`), and counters of what the upstream saw.

    async with FakeProvider(FakeSettings()) as fp:
        fp.set_fault("gpt-4", "429:retry-after=2")
        client = openai.AsyncOpenAI(base_url=fp.openai_base_url, api_key="k", max_retries=0)
"""

from __future__ import annotations

from .app import create_app
from .content import (
    PARALLEL_TOOL_TRIGGER,
    TOOL_TRIGGER,
    Prompt,
    Reply,
    ToolCall,
    ToolSpec,
    build_reply,
    example_for_schema,
)
from .faults import Fault, FaultBook, FaultKind, FaultSpecError, parse_fault, parse_fault_arg
from .server import FakeProvider
from .settings import FakeSettings
from .state import STATE, FakeState
from .stats import RecordedRequest, RequestLog, Stats

__all__ = [
    "PARALLEL_TOOL_TRIGGER",
    "STATE",
    "TOOL_TRIGGER",
    "FakeProvider",
    "FakeSettings",
    "FakeState",
    "Fault",
    "FaultBook",
    "FaultKind",
    "FaultSpecError",
    "Prompt",
    "RecordedRequest",
    "Reply",
    "RequestLog",
    "Stats",
    "ToolCall",
    "ToolSpec",
    "build_reply",
    "create_app",
    "example_for_schema",
    "parse_fault",
    "parse_fault_arg",
]
