"""What a client saw, read from raw HTTP: one answer per request, well-formed, in time.

:func:`exchange` sends one OpenAI-style chat completion (or, with ``caller="anthropic"``, one
Anthropic message), streamed or not, with plain aiohttp and classifies the answer:

- ``served``: 200 with a chat completion (a message), or a stream ending with
  ``data: [DONE]`` (``event: message_stop``);
- ``broken``: a 200 stream ending with one error event (the upstream failed after the first
  byte) -- nothing follows that event;
- ``error``: a non-200 answer whose body is one JSON error in the caller's shape.

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


def parse_sse(raw: bytes) -> list[tuple[str | None, str]]:
    """``(event, data)`` of each event of an SSE body; fails unless the body is UTF-8 and ends
    on an event boundary."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), f"the stream does not end on an event boundary: {text[-80:]!r}"
    events: list[tuple[str | None, str]] = []
    for block in text.split("\n\n")[:-1]:
        lines = block.split("\n")
        data = [line[5:].lstrip(" ") for line in lines if line.startswith("data:")]
        names = [line[6:].strip() for line in lines if line.startswith("event:")]
        if data:  # a block without data (comments, unknown fields) is not an event
            events.append((names[-1] if names else None, "\n".join(data)))
    return events


def _classify_stream(raw: bytes, seen: Seen) -> None:
    events = [data for _, data in parse_sse(raw)]
    assert events, "an empty stream"
    terminal = [i for i, data in enumerate(events)
                if data == "[DONE]" or (data.startswith("{") and "error" in orjson.loads(data))]
    assert len(terminal) == 1, f"{len(terminal)} terminal events in {events!r}"
    assert terminal[0] == len(events) - 1, f"bytes after the end of the stream: {events!r}"
    parts = []
    for data in events[:-1]:
        chunk = orjson.loads(data)  # what the OpenAI SDK parses must parse
        assert isinstance(chunk, dict), f"a chunk that is not an object: {data!r}"
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            parts.append(content if isinstance(content, str) else "")
    seen.text = "".join(parts)
    last = events[-1]
    if last == "[DONE]":
        seen.kind = "served"
    else:
        error = orjson.loads(last)["error"]
        assert error.get("message"), error
        seen.kind, seen.code = "broken", error.get("code")


def _classify_anthropic_stream(raw: bytes, seen: Seen) -> None:
    events = parse_sse(raw)
    assert events, "an empty stream"
    names = [name for name, _ in events]
    terminal = [i for i, name in enumerate(names) if name in ("message_stop", "error")]
    assert len(terminal) == 1, f"{len(terminal)} terminal events in {names!r}"
    assert terminal[0] == len(events) - 1, f"bytes after the end of the stream: {names!r}"
    assert names[0] in ("message_start", "error"), names
    parts = []
    for name, data in events:
        body = orjson.loads(data)
        assert isinstance(body, dict) and body.get("type") == name, (name, data)
        if name == "content_block_delta" and body["delta"].get("type") == "text_delta":
            parts.append(body["delta"]["text"])
    seen.text = "".join(parts)
    if names[-1] == "message_stop":
        seen.kind = "served"
    else:
        error = orjson.loads(events[-1][1])["error"]
        assert error.get("type") and error.get("message"), error
        seen.kind, seen.code = "broken", error.get("type")


async def exchange(http: aiohttp.ClientSession, data_url: str, model: str, *, stream: bool,
                   deadline: float = 15.0, headers: dict[str, str] | None = None,
                   body: dict[str, Any] | None = None, caller: str = "openai") -> Seen:
    """One request; fails if no complete, well-formed answer arrives within ``deadline`` s."""
    anthropic = caller == "anthropic"
    payload = body if body is not None else {"model": model, "messages": HI, "stream": stream}
    if anthropic and body is None:
        payload["max_tokens"] = 50
    path = "/v1/messages" if anthropic else "/v1/chat/completions"
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            async with http.post(f"{data_url}{path}", json=payload,
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
        (_classify_anthropic_stream if anthropic else _classify_stream)(raw, seen)
        return seen
    assert got.get("content-type", "").startswith("application/json"), (status, got, raw[:200])
    doc = orjson.loads(raw)  # exactly one JSON document, or this raises
    assert isinstance(doc, dict), doc
    if status == 200 and anthropic:
        assert doc.get("type") == "message" and isinstance(doc.get("content"), list), doc
        seen.kind = "served"
        seen.text = "".join(b.get("text", "") for b in doc["content"] if b.get("type") == "text")
        return seen
    if status == 200:
        choices = doc.get("choices")
        assert choices and doc.get("object") == "chat.completion", doc
        seen.kind, seen.text = "served", choices[0]["message"].get("content") or ""
        return seen
    if anthropic:
        assert doc.get("type") == "error", doc
    error = doc.get("error")
    assert isinstance(error, dict) and error.get("message"), doc
    assert isinstance(error["message"], str), doc
    seen.code = error.get("code") or error.get("type")
    seen.trail = list(error.get("attempts") or [])
    return seen
