"""Turning an upstream's answer into the caller's format: whole bodies and SSE streams.

Same format on both sides (OpenAI -> OpenAI, Anthropic -> Anthropic): bytes pass through
untouched. Otherwise the upstream's events go to the canonical OpenAI form, then to the
caller's. A stream that breaks after its first byte ends with a well-formed error event the
official SDKs raise on (OpenAI: a ``data: {"error": ...}`` chunk and no ``[DONE]``; Anthropic:
an ``event: error``). A Responses API caller (``to_responses``) never gets bytes passed
through: even an OpenAI upstream's chunks are translated into the Responses event stream, and
a broken stream ends with its ``error`` and ``response.failed`` events.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from .. import translate  # the stream translators of a format load when first needed
from ..errors import EchelonError
from ..providers import CallerFormat, UpstreamReply
from ..translate import (
    OPENAI_DONE,
    SSEEvent,
    anthropic_error_to_openai,
    encode_anthropic_event,
    encode_openai_chunk,
    encode_sse,
    openai_error_to_anthropic,
)
from .conversation import ReplyText

if TYPE_CHECKING:
    from ..translate import (
        AnthropicStreamToOpenAI,
        GeminiStreamToOpenAI,
        OpenAIStreamToAnthropic,
        OpenAIStreamToResponses,
    )

__all__ = ["StreamBroken", "StreamRelay"]


class StreamBroken(EchelonError):
    """The upstream stream failed after the commit point (cut, error event, idle timeout)."""


class StreamRelay:
    """Converts upstream SSE events to the caller's; ``done`` once the stream ended cleanly."""

    __slots__ = ("_anthropic_usage", "_held", "_usage", "caller", "collected", "done",
                 "passthrough", "to_anthropic", "to_openai", "to_responses", "upstream")

    def __init__(self, reply: UpstreamReply, caller: CallerFormat, include_usage: bool,
                 collected: ReplyText | None = None,
                 to_responses: OpenAIStreamToResponses | None = None) -> None:
        self.caller = caller
        # a first turn's reply, collected as it goes by (to pin its conversation): from the
        # events a passthrough parses anyway, else from the canonical chunks
        self.collected = collected
        self.upstream = reply.format
        # a Responses caller: canonical chunks, whatever the upstream, go out as its events
        self.to_responses = to_responses
        self.passthrough = reply.format == caller and to_responses is None
        self.done = False
        self._held = b""  # passthrough: bytes of an event not complete yet
        # the usage the stream reported (token metrics, spans): OpenAI's ``usage`` as seen
        # in a chunk, or an Anthropic passthrough's message_start / message_delta usage
        self._usage: dict[str, Any] | None = None
        self._anthropic_usage: dict[str, Any] | None = None
        self.to_openai: AnthropicStreamToOpenAI | GeminiStreamToOpenAI | None = None
        self.to_anthropic: OpenAIStreamToAnthropic | None = None
        usage = include_usage or caller == "anthropic"
        if reply.format == "anthropic" and caller != "anthropic":
            self.to_openai = translate.AnthropicStreamToOpenAI(model=reply.model,
                                                               include_usage=usage)
        elif reply.format == "gemini":
            self.to_openai = translate.GeminiStreamToOpenAI(
                model=reply.model, include_usage=usage,
                parallel_tool_calls=not reply.first_tool_call_only)
        if caller == "anthropic" and reply.format != "anthropic":
            self.to_anthropic = translate.OpenAIStreamToAnthropic(model=reply.model)

    # -- events in, bytes out --------------------------------------------------------------------

    def feed(self, events: list[SSEEvent], raw: bytes) -> bytes:
        """The bytes to send for ``events`` (decoded from ``raw``). Nothing after the stream's
        end marker goes out: an upstream that keeps sending after it is not relayed twice."""
        if self.done:
            return b""
        if self.passthrough:
            for event in events:
                self._check_passthrough(event)
                if self.done:
                    break
            # only whole events go out, so that a stream broken mid-event still ends with a
            # parsable error event rather than half an event
            held = self._held
            buf = held + raw if held else raw
            if self.done:
                end = _end_marker_boundary(buf, self.upstream) or _last_boundary(buf, 0)
                self._held = b""
            else:
                end = _last_boundary(buf, len(held))
                self._held = buf[end:]
            whole = buf[:end]
            whole.decode("utf-8")  # UnicodeDecodeError (a ValueError): SDKs decode strictly
            return whole
        out = bytearray()
        collected = self.collected
        for event in events:
            if self.done:
                break
            for chunk in self._canonical(event):
                if chunk is not self._END:
                    if collected is not None:
                        collected.openai_chunk(chunk)
                    usage = chunk.get("usage") if type(chunk) is dict else None
                    if usage:
                        self._usage = usage
                out += self._emit(chunk)
        return bytes(out)

    def usage(self) -> dict[str, Any] | None:
        """The usage the upstream reported in this stream so far, as OpenAI ``usage`` (None
        when it reported none: an OpenAI stream without ``stream_options.include_usage``)."""
        if self._usage is not None:
            return self._usage
        if self._anthropic_usage is not None:
            return translate.usage_from_anthropic(self._anthropic_usage)
        return self.to_openai.usage() if self.to_openai is not None else None

    def finish(self) -> bytes:
        """Called at the upstream's end of stream: the closing bytes (or StreamBroken)."""
        if self.passthrough:
            if not self.done:
                raise StreamBroken("the upstream stream ended before its end marker")
            held, self._held = self._held, b""
            return held
        out = bytearray()
        if (
            self.upstream == "gemini"
            and isinstance(self.to_openai, translate.GeminiStreamToOpenAI)
            and not self.done
        ):
            chunks = self.to_openai.finish()
            if not self.to_openai.complete:
                raise StreamBroken("the upstream stream ended without a finish reason")
            for chunk in chunks:
                out += self._emit(chunk)
            out += self._close()
        if not self.done:
            raise StreamBroken("the upstream stream ended before its end marker")
        return bytes(out)

    def error_event(self, message: str) -> bytes:
        if self.to_responses is not None:
            return _encode(self.to_responses.fail(message))
        error = {"message": message, "type": "upstream_error", "param": None,
                 "code": "stream_interrupted"}
        if self.caller == "anthropic":
            body = openai_error_to_anthropic({"error": error}, 502)
            return encode_anthropic_event("error", body)
        return encode_openai_chunk({"error": error})

    # -- internals -------------------------------------------------------------------------------

    def _check_passthrough(self, event: SSEEvent) -> None:
        if self.upstream == "openai":
            if event.data == "[DONE]":
                self.done = True
                return
            if event.data.startswith('{"error"'):
                raise StreamBroken(f"the upstream sent an error event: {event.data[:200]}")
        elif event.event == "message_stop":
            self.done = True
        elif event.event == "error":
            raise StreamBroken(f"the upstream sent an error event: {event.data[:200]}")
        # what the SDKs parse must parse: every event is a JSON object (an empty or malformed
        # one raises JSONDecodeError, which ends the stream cleanly), OpenAI's without an
        # error, Anthropic's named after its type
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            raise StreamBroken(f"the upstream sent an event that is not a JSON object: "
                               f"{event.data[:100]}")
        if self.upstream == "openai" and data.get("error"):  # what the OpenAI SDK raises on
            raise StreamBroken(f"the upstream sent an error event: {event.data[:200]}")
        if self.upstream == "anthropic":
            if data.get("type") != event.event:
                raise StreamBroken(f"the upstream sent an event {event.event!r} whose type is "
                                   f"{str(data.get('type'))[:40]!r}")
            if event.event in _ANTHROPIC_USAGE_EVENTS:
                self._note_anthropic_usage(data)
        else:
            usage = data.get("usage")
            if usage:
                self._usage = usage
        collected = self.collected
        if collected is not None:
            if self.upstream == "openai":
                collected.openai_chunk(data)
            else:
                collected.anthropic_event(event.event, data)

    def _note_anthropic_usage(self, data: dict[str, Any]) -> None:
        raw = data.get("usage") if data.get("type") == "message_delta" else (
            data.get("message") or {}).get("usage")
        if isinstance(raw, dict):
            usage = self._anthropic_usage
            if usage is None:
                usage = self._anthropic_usage = {}
            usage.update({k: v for k, v in raw.items() if v is not None})

    def _canonical(self, event: SSEEvent) -> list[dict[str, Any]]:
        if not event.data:
            return []
        if self.upstream == "openai":
            if event.data == "[DONE]":
                return self._end()
            data = orjson.loads(event.data)
            if isinstance(data, dict) and data.get("error"):
                raise StreamBroken(f"the upstream sent an error event: {event.data[:200]}")
            return [data]
        data = orjson.loads(event.data)
        if self.upstream == "anthropic":
            if event.event == "error":
                err = anthropic_error_to_openai(data)
                raise StreamBroken(str(err.get("error", {}).get("message", "error event")))
            assert isinstance(self.to_openai, translate.AnthropicStreamToOpenAI)
            chunks = self.to_openai.feed(event.event or "", data)
            if event.event == "message_stop":
                chunks = [*chunks, *self.to_openai.finish(), *self._end()]
            return chunks
        assert isinstance(self.to_openai, translate.GeminiStreamToOpenAI)
        return self.to_openai.feed(data)

    _END: dict[str, Any] = {"__end__": True}

    def _end(self) -> list[dict[str, Any]]:
        return [self._END]

    def _emit(self, chunk: dict[str, Any]) -> bytes:
        if chunk is self._END:
            return self._close()
        if self.to_responses is not None:
            return _encode(self.to_responses.feed(chunk))
        if self.to_anthropic is not None:
            return self.to_anthropic.feed_sse(chunk)
        return encode_openai_chunk(chunk)

    def _close(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        if self.to_responses is not None:
            return _encode(self.to_responses.finish())
        if self.to_anthropic is not None:
            return b"".join(encode_anthropic_event(name, data)
                            for name, data in self.to_anthropic.finish())
        return OPENAI_DONE


def _encode(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Typed events as SSE: ``event: <type>`` and the JSON data."""
    return b"".join(encode_sse(orjson.dumps(data), name) for name, data in events)


_ANTHROPIC_USAGE_EVENTS = frozenset(("message_start", "message_delta"))
_BOUNDARIES = (b"\n\n", b"\r\n\r\n", b"\r\r")
_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r|\r\n\n|\n\r\n")
# the end marker of a stream: its value, then the field names it may follow at a line start
_END_MARKERS = {
    "openai": (b"[DONE]", (b"data: ", b"data:")),
    "anthropic": (b"message_stop", (b"event: ", b"event:")),
}
_LINE_ENDS = (10, 13)  # b"\n", b"\r"


def _end_marker_boundary(buf: bytes, upstream: str) -> int:
    """The end of the event holding the stream's end marker in ``buf`` (0 if not found).
    Found with ``bytes.find`` on the marker's value, then its field checked: a regex that
    must try every position (the marker may open a line anywhere) cost ~30 µs a stream."""
    marker = _END_MARKERS.get(upstream)
    if marker is None:
        return 0
    value, fields = marker
    at = buf.find(value)
    while at >= 0:
        for field in fields:
            start = at - len(field)
            if start >= 0 and buf.startswith(field, start) and (
                    start == 0 or buf[start - 1] in _LINE_ENDS):
                boundary = _BOUNDARY.search(buf, at + len(value))
                return boundary.end() if boundary is not None else len(buf)
        at = buf.find(value, at + 1)
    return 0


def _last_boundary(buf: bytes, searched: int) -> int:
    """The end of the last blank line (SSE event boundary) in ``buf``, 0 if none; the first
    ``searched`` bytes are known to hold none (but for the last few)."""
    if buf.endswith(_BOUNDARIES):  # the usual case: the read ended with a whole event
        return len(buf)
    start = max(0, searched - 3)
    end = 0
    for sep in _BOUNDARIES:
        index = buf.rfind(sep, start)
        if index >= 0:
            end = max(end, index + len(sep))
    return end
