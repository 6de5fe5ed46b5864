"""Streaming: canonical OpenAI ``chat.completion.chunk`` objects → the Responses event stream.

A small state machine fed one canonical chunk at a time (what the relay makes of any
upstream's stream); it never does I/O. It writes the typed events OpenAI documents, each with
its ``sequence_number`` (0, 1, 2, ...):

``response.created`` and ``response.in_progress`` first; then per output item
``response.output_item.added``; for a message ``response.content_part.added``,
``response.output_text.delta`` ... (``response.refusal.delta`` for a refusal),
``response.output_text.done``, ``response.content_part.done``; for a function call
``response.function_call_arguments.delta`` ... ``response.function_call_arguments.done``;
then ``response.output_item.done``. An item is closed when the next one starts or the upstream
sends its finish reason. `finish()` (the upstream stream ended) writes ``response.completed``,
or ``response.incomplete`` when the answer hit ``max_output_tokens`` (or a content filter),
with the whole output and the usage (canonical streams send usage after the finish reason).
`fail(message)` (the stream broke after its first byte) writes an ``error`` event and then
``response.failed`` holding what was produced so far.

Reassembling the events gives the same output as `openai_to_responses_response` on the whole
answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._common import new_id, now, upstream
from .errors import MalformedUpstreamResponse
from .responses_response import (
    call_item,
    message_item,
    new_response_id,
    refusal_part,
    response_object,
    status_of_finish,
    text_part,
    usage_to_responses,
)

__all__ = ["OpenAIStreamToResponses"]

Event = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class _Item:
    """An output item being streamed."""

    index: int
    id: str
    kind: str  # message | function_call
    parts: list[dict[str, Any]] = field(default_factory=list)  # message: closed parts
    part_kind: str = ""  # message: output_text | refusal (the open part), "" when none
    buffer: str = ""  # the open part's text, or the call's arguments
    call_id: str = ""
    name: str = ""


class OpenAIStreamToResponses:
    """Canonical chat.completion.chunk dicts → ``(event type, data)`` pairs of the Responses
    stream (encode each as ``event: <type>`` / ``data: <json>``)."""

    def __init__(self, echo: dict[str, Any], *, model: str, response_id: str | None = None,
                 created_at: int | None = None) -> None:
        self._echo = echo
        self._model = model
        self.response_id = response_id or new_response_id()
        self._created = created_at if created_at is not None else now()
        self._seq = 0
        self._started = False
        self._ended = False
        self._output: list[dict[str, Any]] = []  # each item's latest state, by output index
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}  # canonical tool call index → its item
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """True once the upstream sent a finish reason."""
        return self._finish is not None

    # -- the stream ------------------------------------------------------------------------------

    @upstream("openai")
    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if self._ended:
            return []
        events: list[Event] = []
        self._start(events)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # a Response holds one answer
            delta = choice.get("delta") or {}
            for kind, text in (("output_text", delta.get("content")),
                               ("refusal", delta.get("refusal"))):
                if isinstance(text, str) and text:
                    self._text(events, kind, text)
            for call in delta.get("tool_calls") or ():
                self._tool_call(events, call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self._close(events)
        return events

    def finish(self) -> list[Event]:
        """The end of the answer: the open item closed, ``response.completed`` (or
        ``response.incomplete``) with the output and the usage. Once."""
        if self._ended:
            return []
        events: list[Event] = []
        self._start(events)
        self._close(events)
        self._ended = True
        status, incomplete = status_of_finish(self._finish)
        name = "response.completed" if status == "completed" else "response.incomplete"
        self._emit(events, name, {"response": self._response(
            status, usage=usage_to_responses(self._usage), incomplete=incomplete)})
        return events

    def fail(self, message: str, code: str = "server_error") -> list[Event]:
        """The stream broke: an ``error`` event, then ``response.failed``. Once."""
        if self._ended:
            return []
        events: list[Event] = []
        self._start(events)
        self._ended = True
        self._emit(events, "error", {"code": code, "message": message, "param": None})
        self._emit(events, "response.failed", {"response": self._response(
            "failed", usage=usage_to_responses(self._usage),
            error={"code": code, "message": message})})
        return events

    # -- internals -------------------------------------------------------------------------------

    def _emit(self, events: list[Event], name: str, data: dict[str, Any]) -> None:
        events.append((name, {"type": name, "sequence_number": self._seq, **data}))
        self._seq += 1

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(self._echo, response_id=self.response_id,
                               created_at=self._created, model=self._model, status=status,
                               output=[dict(item) for item in self._output], **extra)

    def _start(self, events: list[Event]) -> None:
        if self._started:
            return
        self._started = True
        for name in ("response.created", "response.in_progress"):
            self._emit(events, name, {"response": self._response("in_progress")})

    def _add(self, events: list[Event], item: _Item, snapshot: dict[str, Any]) -> None:
        self._output.append(snapshot)
        self._open = item
        self._emit(events, "response.output_item.added",
                   {"output_index": item.index, "item": dict(snapshot)})

    def _text(self, events: list[Event], kind: str, text: str) -> None:
        item = self._open
        if item is None or item.kind != "message":
            self._close(events)
            item = _Item(len(self._output), new_id("msg_"), "message")
            self._add(events, item, message_item(item.id, [], "in_progress"))
        if item.part_kind != kind:
            self._close_part(events, item)
            item.part_kind = kind
            part = text_part("") if kind == "output_text" else refusal_part("")
            self._emit(events, "response.content_part.added", self._at(item, part=part))
        item.buffer += text
        name = "response.output_text.delta" if kind == "output_text" else "response.refusal.delta"
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        self._emit(events, name, self._at(item, delta=text, **extra))

    def _tool_call(self, events: list[Event], call: dict[str, Any]) -> None:
        index = call.get("index", 0)
        fn = call.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            self._close(events)
            item = _Item(len(self._output), new_id("fc_"), "function_call",
                         call_id=call.get("id") or new_id("call_"), name=fn.get("name") or "")
            self._calls[index] = item
            self._add(events, item, call_item(item.id, item.call_id, item.name, "",
                                              "in_progress"))
        elif item is not self._open:
            raise MalformedUpstreamResponse(
                "openai", f"tool call {index} continued after another output item started")
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.buffer += arguments
            self._emit(events, "response.function_call_arguments.delta",
                       {"item_id": item.id, "output_index": item.index, "delta": arguments})

    def _at(self, item: _Item, **data: Any) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index,
                "content_index": len(item.parts), **data}

    def _close_part(self, events: list[Event], item: _Item) -> None:
        if not item.part_kind:
            return
        text, item.buffer = item.buffer, ""
        if item.part_kind == "output_text":
            part = text_part(text)
            self._emit(events, "response.output_text.done",
                       self._at(item, text=text, logprobs=[]))
        else:
            part = refusal_part(text)
            self._emit(events, "response.refusal.done", self._at(item, refusal=text))
        self._emit(events, "response.content_part.done", self._at(item, part=part))
        item.parts.append(part)
        item.part_kind = ""

    def _close(self, events: list[Event]) -> None:
        item, self._open = self._open, None
        if item is None:
            return
        status = "incomplete" if status_of_finish(self._finish)[0] == "incomplete" else \
            "completed"
        if item.kind == "message":
            self._close_part(events, item)
            done = message_item(item.id, list(item.parts), status)
        else:
            self._emit(events, "response.function_call_arguments.done",
                       {"item_id": item.id, "output_index": item.index,
                        "arguments": item.buffer, "name": item.name})
            done = call_item(item.id, item.call_id, item.name, item.buffer, status)
        self._output[item.index] = done
        self._emit(events, "response.output_item.done",
                   {"output_index": item.index, "item": done})
