"""Server-sent events: an incremental decoder and the encoders the sidecar writes with.

The decoder follows the WHATWG event-stream rules: lines end with ``\\r\\n``, ``\\n`` or
``\\r``; ``data:`` lines of one event are joined with ``\\n``; one space after the colon is
removed; lines starting with ``:`` are comments; ``id`` and ``retry`` are read and ignored;
a blank line dispatches the event (an event with no ``data`` is not dispatched); a leading
byte-order mark is skipped. Chunks may split the stream anywhere, even inside a line
terminator or a multi-byte character: lines are cut on bytes (``\\r`` and ``\\n`` never occur
inside UTF-8 sequences) and decoded whole. `flush()` ends the stream: unlike a browser it
dispatches a last event whose closing blank line never came, since some upstreams omit it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

__all__ = [
    "OPENAI_DONE",
    "SSEDecoder",
    "SSEEvent",
    "encode_anthropic_event",
    "encode_openai_chunk",
    "encode_sse",
]

OPENAI_DONE = b"data: [DONE]\n\n"


class SSEEvent(NamedTuple):
    """One dispatched event: its ``event:`` name (None when absent) and its data."""

    event: str | None
    data: str

    def json(self) -> Any:
        return orjson.loads(self.data)


class SSEDecoder:
    """Feed raw bytes as they arrive; get complete events back."""

    __slots__ = ("_buf", "_data", "_event", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                self._buf = buf
                return []
            self._started = True
            if buf.startswith(b"\xef\xbb\xbf"):
                buf = buf[3:]
        if not buf:
            self._buf = b""
            return []
        # bytes.splitlines() cuts on exactly SSE's line ends (\r\n, \n, \r) in one pass
        lines = buf.splitlines()
        last = buf[-1]
        if last == 10:  # b"\n": every line is whole
            self._buf = b""
        elif last == 13:  # b"\r": may be the first half of a \r\n split across chunks
            self._buf = lines.pop() + b"\r"
        else:
            self._buf = lines.pop()
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line.startswith(b"data: "):  # the common line, without the general parse
                data.append(line[6:].decode("utf-8", errors="replace"))
            else:
                self._line(line, events)
                data = self._data  # a dispatch starts a new list
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: process a last unterminated line and dispatch a pending event."""
        events: list[SSEEvent] = []
        rest, self._buf = self._buf, b""
        if rest.startswith(b"\xef\xbb\xbf") and not self._started:
            rest = rest[3:]
        self._started = True
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        if rest:
            self._line(rest, events)
        self._line(b"", events)
        return events

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        if not raw:
            if self._data:
                events.append(SSEEvent(self._event, "\n".join(self._data)))
            self._data = []
            self._event = None
            return
        if raw[0] == 0x3A:  # ':' comment
            return
        line = raw.decode("utf-8", errors="replace")
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # "id", "retry" and unknown fields are ignored


def encode_sse(data: bytes, event: str | None = None) -> bytes:
    """One event with a single-line ``data`` payload (JSON never contains raw newlines)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def encode_openai_chunk(chunk: dict[str, Any]) -> bytes:
    """``data: {...}\\n\\n`` for one OpenAI chunk (end the stream with `OPENAI_DONE`)."""
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def encode_anthropic_event(name: str, data: dict[str, Any]) -> bytes:
    """``event: <name>\\ndata: {...}\\n\\n`` for one Anthropic stream event."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
