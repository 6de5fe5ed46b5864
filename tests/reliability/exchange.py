"""What a client saw, read from raw HTTP: one answer per request, well-formed, in time.

:func:`exchange` sends one OpenAI-style chat completion (streamed or not) with plain aiohttp
and classifies the answer:

- ``served``: 200 with a chat completion, or a stream ending with ``data: [DONE]``;
- ``broken``: a 200 stream ending with one error event (the upstream failed after the first
  byte) -- nothing follows that event;
- ``error``: a non-200 answer whose body is one JSON error in the OpenAI shape.

Anything else (a hang past the client's deadline, a body that is not one JSON document, a
stream with two terminal events or bytes after its end) fails the test with the reason.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

__all__ = ["Seen", "exchange", "parse_sse"]

HI = [{"role": "user", "content": "hello there sidecar"}]


@dataclass
class Seen:
    status: int
    kind: str  # served | broken | error
    served_by: str | None
    attempts: int | None
    text: str = ""
    code: str | None = None
    retry_after: str | None = None
    trail: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return (f"{self.kind} {self.status} by={self.served_by} attempts={self.attempts} "
                f"code={self.code} text={self.text[:40]!r}")


def parse_sse(raw: bytes) -> list[str]:
    """The ``data`` of each event of an SSE body; fails unless it ends on an event boundary."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), f"the stream does not end on an event boundary: {text[-80:]!r}"
    events = []
    for block in text.split("\n\n")[:-1]:
        lines = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        assert lines, f"an event without data: {block!r}"
        events.append("\n".join(lines))
    return events


def _classify_stream(raw: bytes, seen: Seen) -> None:
    events = parse_sse(raw)
    assert events, "an empty stream"
    terminal = [i for i, data in enumerate(events)
                if data == "[DONE]" or (data.startswith("{") and "error" in orjson.loads(data))]
    assert len(terminal) == 1, f"{len(terminal)} terminal events in {events!r}"
    assert terminal[0] == len(events) - 1, f"bytes after the end of the stream: {events!r}"
    parts = []
    for data in events[:-1]:
        chunk = orjson.loads(data)
        assert chunk.get("object") == "chat.completion.chunk", chunk
        for choice in chunk.get("choices") or []:
            parts.append((choice.get("delta") or {}).get("content") or "")
    seen.text = "".join(parts)
    last = events[-1]
    if last == "[DONE]":
        seen.kind = "served"
    else:
        error = orjson.loads(last)["error"]
        assert error.get("message"), error
        seen.kind, seen.code = "broken", error.get("code")


async def exchange(http: aiohttp.ClientSession, data_url: str, model: str, *, stream: bool,
                   deadline: float = 15.0, headers: dict[str, str] | None = None,
                   body: dict[str, Any] | None = None) -> Seen:
    """One request; fails if no complete answer arrives within ``deadline`` seconds."""
    payload = body if body is not None else {"model": model, "messages": HI, "stream": stream}
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            async with http.post(f"{data_url}/v1/chat/completions", json=payload,
                                 headers=headers or {}) as resp:
                raw = await resp.read()
                status, got = resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except TimeoutError:
        raise AssertionError(f"no complete answer within {deadline}s") from None
    attempts = got.get("x-echelon-attempts")
    seen = Seen(status, "error", got.get("x-echelon-served-by"),
                int(attempts) if attempts is not None else None,
                retry_after=got.get("retry-after"), elapsed=time.monotonic() - started,
                headers=got)
    if status == 200 and stream:
        assert got.get("content-type", "").startswith("text/event-stream"), got
        _classify_stream(raw, seen)
        return seen
    assert got.get("content-type", "").startswith("application/json"), (status, got, raw[:200])
    doc = orjson.loads(raw)  # exactly one JSON document, or this raises
    assert isinstance(doc, dict), doc
    if status == 200:
        choices = doc.get("choices")
        assert choices and doc.get("object") == "chat.completion", doc
        seen.kind, seen.text = "served", choices[0]["message"].get("content") or ""
        return seen
    error = doc.get("error")
    assert isinstance(error, dict) and error.get("message"), doc
    seen.code = error.get("code")
    seen.trail = list(error.get("attempts") or [])
    return seen
