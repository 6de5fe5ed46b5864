"""What the server hands the engine as a request's payload, and what a provider gives back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..translate import SSEDecoder, SSEEvent

__all__ = ["CallerFormat", "InboundRequest", "UpstreamFormat", "UpstreamReply", "UpstreamTrace"]

CallerFormat = Literal["openai", "anthropic"]
UpstreamFormat = Literal["openai", "anthropic", "gemini"]


class UpstreamTrace(Protocol):
    """What a provider does with a request's trace context: per call, ``span_id =
    next_call()`` before anything can fail, ``cancel_call()`` when the call turns out not to
    be one (the instance cannot serve the request), ``inject(headers, span_id)`` to send it."""

    def next_call(self) -> int: ...

    def cancel_call(self) -> None: ...

    def inject(self, headers: dict[str, str], span_id: int) -> None: ...


@dataclass(slots=True)
class InboundRequest:
    """A caller's request: its own format, and the canonical (OpenAI chat) body.

    ``original`` is the caller's own body when it is not OpenAI (an Anthropic caller), so an
    Anthropic upstream can receive it untouched but for ``model``.
    """

    format: CallerFormat
    body: dict[str, Any]
    stream: bool
    original: dict[str, Any] | None = None
    include_usage: bool = False
    request_id: str = ""
    trace: UpstreamTrace | None = None
    """The trace context every upstream call carries (``server.tracing``): the request's own
    when tracing is on, the caller's forwarded unchanged when it is off, else None."""


@dataclass(slots=True)
class UpstreamReply:
    """A successful upstream answer, in the upstream's wire format.

    Non-streaming: ``body`` is the parsed JSON and ``raw`` its bytes (forwarded untouched when
    the caller speaks the same format). Streaming: ``first`` holds the events read before the
    commit point, ``decoder`` the decoder state, ``chunks`` the rest of the body; ``close()``
    releases the upstream connection.
    """

    format: UpstreamFormat
    model: str
    raw: bytes = b""
    body: dict[str, Any] | list[Any] | None = None
    first: list[SSEEvent] = field(default_factory=list)
    first_raw: bytes = b""
    decoder: SSEDecoder | None = None
    chunks: AsyncIterator[bytes] | None = None
    response: Any = None
    max_event_bytes: int = 0
    """Largest single SSE event the relay buffers (0: unbounded); beyond it the stream is
    broken off."""
    first_tool_call_only: bool = False
    """Keep only the first tool call of each choice when translating (the caller sent
    ``parallel_tool_calls: false`` and the upstream, Gemini, cannot be told)."""

    def close(self, ok: bool = False) -> None:
        """Release the upstream connection: back to the pool when the stream ended cleanly."""
        response, self.response = self.response, None
        if response is not None:
            if ok:
                response.release()
            else:
                response.close()

