"""What an upstream's 200 must look like before any of it reaches the caller.

A 200 that is not a usable answer is a failure of the instance (the engine falls back), not
something to relay: the official SDKs decode SSE lines as strict UTF-8, expect every OpenAI
chunk to be a JSON object, and refuse an Anthropic stream that does not open with
``message_start``. Translated answers are validated by their translators; these checks matter
most where bytes pass through unchanged (OpenAI to OpenAI, Anthropic to Anthropic).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..engine import UpstreamError
from ..translate import SSEEvent, TranslationError

__all__ = ["check_first_events", "check_whole_body"]


def check_whole_body(fmt: str, body: Any) -> None:
    """Raise TranslationError unless ``body`` has the shape of a whole answer in ``fmt``."""
    if not isinstance(body, dict):
        raise TranslationError(f"the {fmt} answer is not a JSON object")
    if fmt == "openai":
        choices = body.get("choices")
        if not (isinstance(choices, list) and choices
                and all(isinstance(c, dict) and isinstance(c.get("message"), dict)
                        for c in choices)):
            raise TranslationError("the openai answer has no choices with a message")
    elif fmt == "anthropic" and (body.get("type") != "message"
                                 or not isinstance(body.get("content"), list)):
        raise TranslationError("the anthropic answer is not a message with content")


def _malformed(message: str) -> UpstreamError:
    return UpstreamError(None, "malformed_response", message)


def check_first_events(fmt: str, events: list[SSEEvent], received: bytes) -> None:
    """Raise UpstreamError (malformed_response) unless the first events of a stream, and the
    bytes they came in, can go to the caller: UTF-8, JSON objects, the right opening event."""
    try:
        received.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data":  # a character split across reads is fine
            raise _malformed("the stream is not UTF-8") from None
    if events[0].data == "[DONE]":
        raise _malformed("the stream ended before its first chunk")
    for index, event in enumerate(events):  # nothing unparsable goes out before the commit
        if event.data == "[DONE]":
            continue
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise _malformed("the stream's first event is not valid JSON") from None
        if not isinstance(data, dict):
            raise _malformed("the stream's first event is not a JSON object")
        if fmt != "anthropic" and data.get("error"):  # an error event, in any shape
            raise UpstreamError(500, "stream_error", event.data[:200])
        if fmt == "anthropic" and index == 0 and data.get("type") != "message_start":
            raise _malformed("the anthropic stream does not start with message_start")
        if fmt == "anthropic" and data.get("type") != event.event:
            raise _malformed("an anthropic stream event is not named after its type")
