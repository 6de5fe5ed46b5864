"""What the server hands the engine as a request's payload, and what a provider gives back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ..translate import SSEDecoder, SSEEvent

__all__ = ["CallerFormat", "InboundRequest", "UpstreamFormat", "UpstreamReply", "reported_tokens"]

CallerFormat = Literal["openai", "anthropic"]
UpstreamFormat = Literal["openai", "anthropic", "gemini"]


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


def reported_tokens(fmt: UpstreamFormat, body: object) -> int | None:
    """Input + output tokens an upstream's whole answer reports in its usage, in its own
    wire format (None when it reports none): OpenAI ``usage.total_tokens``, Anthropic
    ``usage.input_tokens + output_tokens`` (and cache tokens), Gemini
    ``usageMetadata.totalTokenCount``."""
    if not isinstance(body, dict):
        return None
    if fmt == "gemini":
        meta = body.get("usageMetadata")
        total = meta.get("totalTokenCount") if isinstance(meta, dict) else None
        return total if isinstance(total, int) else None
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    if fmt == "openai":
        total = usage.get("total_tokens")
        if isinstance(total, int):
            return total
        parts: tuple[object, ...] = (usage.get("prompt_tokens"), usage.get("completion_tokens"))
    else:
        parts = (usage.get("input_tokens"), usage.get("output_tokens"),
                 usage.get("cache_creation_input_tokens"), usage.get("cache_read_input_tokens"))
    counted = [n for n in parts if isinstance(n, int)]
    return sum(counted) if counted else None
