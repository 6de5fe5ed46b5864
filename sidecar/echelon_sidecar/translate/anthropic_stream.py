"""Streaming: Anthropic SSE events ⇄ OpenAI ``chat.completion.chunk`` objects.

Both translators are small state machines fed one decoded event/chunk at a time; they never
do I/O. Reassembling their output gives the same message as the non-streaming translation
(`anthropic_to_openai_response` / `openai_to_anthropic_response`).

Anthropic → OpenAI: ``message_start`` → a ``{role: assistant, content: ""}`` chunk; text,
thinking (``reasoning_content``), tool_use (``tool_calls`` deltas: the first carries index,
id, type and name, the next ones ``arguments`` fragments) and JSON-mode tool input (content
fragments); a finished thinking block → one ``thinking_blocks`` delta holding the whole
signed block; ``message_delta`` → the finish chunk; ``message_stop`` → the usage chunk
(``choices: []``) when `include_usage`. An ``error`` event becomes OpenAI's mid-stream
error object ``{"error": {...}}``.

OpenAI → Anthropic: the documented event sequence ``message_start``, per block
``content_block_start`` / ``content_block_delta`` (text_delta, thinking_delta,
signature_delta, input_json_delta) / ``content_block_stop``, then ``message_delta`` (stop
reason and usage) and ``message_stop`` from `finish()` (OpenAI sends usage after the finish
reason, so the end can only be written once the upstream stream is over).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ._common import REASONING_CONTENT, THINKING_BLOCKS, new_id, now, upstream
from .anthropic_response import (
    FINISH_FROM_ANTHROPIC,
    STOP_FROM_OPENAI,
    usage_from_anthropic,
    usage_to_anthropic,
)
from .anthropic_tools import JSON_RESPONSE_TOOL
from .errors import MalformedUpstreamResponse
from .errors_map import anthropic_error_to_openai, openai_error_to_anthropic
from .sse import encode_anthropic_event

__all__ = ["AnthropicStreamToOpenAI", "OpenAIStreamToAnthropic"]


@dataclass(slots=True)
class _Block:
    kind: str  # text | thinking | tool | json | other
    tool_index: int = -1
    thinking: str = ""
    signature: str = ""


class AnthropicStreamToOpenAI:
    """Anthropic Messages stream events → OpenAI chat.completion.chunk dicts."""

    def __init__(
        self, *, model: str | None = None, include_usage: bool = False, created: int | None = None
    ) -> None:
        self._model = model or ""
        self._include_usage = include_usage
        self._created = created if created is not None else now()
        self._id = ""
        self._blocks: dict[int, _Block] = {}
        self._tools = 0
        self._usage: dict[str, Any] = {}
        self._finish: str | None = None
        self._usage_sent = False
        #: True once ``message_stop`` arrived: the upstream stream ended normally.
        self.complete = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    @upstream("anthropic")
    def feed(self, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = data.get("type") or event
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._start(data)
        if kind == "content_block_stop":
            block = self._blocks.get(data.get("index", -1))
            if block is not None and block.kind == "thinking":
                tb = {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
                return [self._chunk({THINKING_BLOCKS: [tb]})]
            return []
        if kind == "message_start":
            msg = data.get("message") or {}
            self._id = msg.get("id") or self._id
            self._model = self._model or msg.get("model") or ""
            self._usage.update(msg.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message_delta":
            self._usage.update(
                {k: v for k, v in (data.get("usage") or {}).items() if v is not None}
            )
            reason = (data.get("delta") or {}).get("stop_reason")
            finish = FINISH_FROM_ANTHROPIC.get(reason or "end_turn", "stop")
            if finish == "tool_calls" and not self._tools:
                finish = "stop"  # only the JSON-mode tool was called
            self._finish = finish
            return [self._chunk({}, finish)]
        if kind == "message_stop":
            self.complete = True
            return self._usage_chunk()
        if kind == "error":
            return [anthropic_error_to_openai(data)]
        return []  # ping and event types added after this was written

    def usage(self) -> dict[str, Any] | None:
        """The usage the stream reported so far, as OpenAI ``usage`` (None before any),
        whether or not the caller asked for a usage chunk (token metrics)."""
        return usage_from_anthropic(self._usage) if self._usage else None

    @upstream("anthropic")
    def finish(self) -> list[dict[str, Any]]:
        """Whatever is still owed once the upstream stream has ended (never a fake finish)."""
        return self._usage_chunk() if self._finish is not None else []

    def _usage_chunk(self) -> list[dict[str, Any]]:
        if not self._include_usage or self._usage_sent:
            return []
        self._usage_sent = True
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = usage_from_anthropic(self._usage)
        return [chunk]

    def _start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = data.get("content_block") or {}
        index, kind = data.get("index", -1), block.get("type")
        if kind == "text":
            self._blocks[index] = _Block("text")
            return [self._chunk({"content": block["text"]})] if block.get("text") else []
        if kind == "thinking":
            self._blocks[index] = _Block("thinking", thinking=block.get("thinking", ""),
                                         signature=block.get("signature", ""))
            text = block.get("thinking")
            return [self._chunk({REASONING_CONTENT: text})] if text else []
        if kind == "redacted_thinking":
            self._blocks[index] = _Block("other")
            tb = {"type": "redacted_thinking", "data": block.get("data", "")}
            return [self._chunk({THINKING_BLOCKS: [tb]})]
        if kind == "tool_use":
            if block.get("name") == JSON_RESPONSE_TOOL:
                self._blocks[index] = _Block("json")
                return []
            self._blocks[index] = _Block("tool", tool_index=self._tools)
            self._tools += 1
            call = {"index": self._tools - 1, "id": block.get("id", ""), "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        self._blocks[index] = _Block("other")
        return []

    def _delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = self._blocks.get(data.get("index", -1))
        delta = data.get("delta") or {}
        if block is None:
            raise MalformedUpstreamResponse("anthropic", "content_block_delta before its start")
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "input_json_delta":
            fragment = delta.get("partial_json", "")
            if not fragment:
                return []
            if block.kind == "json":
                return [self._chunk({"content": fragment})]
            call = {"index": block.tool_index, "function": {"arguments": fragment}}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking_delta":
            block.thinking += delta.get("thinking", "")
            return [self._chunk({REASONING_CONTENT: delta.get("thinking", "")})]
        if kind == "signature_delta":
            block.signature += delta.get("signature", "")
        return []  # citations_delta: citations are not translated


class OpenAIStreamToAnthropic:
    """OpenAI chat.completion.chunk dicts → Anthropic ``(event name, data)`` pairs."""

    def __init__(self, *, model: str, message_id: str | None = None) -> None:
        self._model = model
        self._id = message_id
        self._started = False
        self._index = -1  # Anthropic index of the open block, -1 when none is open
        self._open_kind = ""
        self._tools: dict[int, int] = {}  # OpenAI tool call index → Anthropic block index
        self._next = 0
        self._stop: str | None = None
        self._saw_tool_calls = False
        self._usage: dict[str, Any] | None = None
        self._ended = False

    @property
    def complete(self) -> bool:
        """True once the upstream sent a finish reason."""
        return self._stop is not None

    @upstream("openai")
    def feed(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if "error" in chunk and "choices" not in chunk:
            return [("error", openai_error_to_anthropic(chunk, 500))]
        events: list[tuple[str, dict[str, Any]]] = []
        if not self._started:
            events.append(self._message_start(chunk))
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # an Anthropic message holds one choice
            delta = choice.get("delta") or {}
            reasoning = delta.get(REASONING_CONTENT) or delta.get("reasoning")
            if reasoning:
                self._open(
                    events, "thinking", {"type": "thinking", "thinking": "", "signature": ""}
                )
                events.append(self._block_delta({"type": "thinking_delta", "thinking": reasoning}))
            for tb in delta.get(THINKING_BLOCKS) or ():
                self._thinking_block(events, tb)
            for text in (delta.get("content"), delta.get("refusal")):
                if text:
                    self._open(events, "text", {"type": "text", "text": ""})
                    events.append(self._block_delta({"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or ():
                self._tool_call(events, call)
            if choice.get("finish_reason"):
                self._close(events)
                self._stop = STOP_FROM_OPENAI.get(choice["finish_reason"], "end_turn")
                if self._stop == "end_turn" and self._saw_tool_calls:
                    self._stop = "tool_use"
        return events

    def feed_sse(self, chunk: dict[str, Any]) -> bytes:
        """What :meth:`feed` gives for ``chunk``, as the SSE bytes the caller reads. The common
        chunk -- more text for the open text block -- is written from a template, without
        building its event (byte for byte the same: tested)."""
        if self._open_kind == "text":
            text = _more_text(chunk)
            if text is not None:
                return _TEXT_DELTA % (self._index, orjson.dumps(text))
        return b"".join(encode_anthropic_event(name, data) for name, data in self.feed(chunk))

    @upstream("openai")
    def finish(self) -> list[tuple[str, dict[str, Any]]]:
        """Close the open block and write ``message_delta`` and ``message_stop`` (once)."""
        if self._ended:
            return []
        self._ended = True
        events: list[tuple[str, dict[str, Any]]] = []
        if not self._started:
            events.append(self._message_start({}))
        self._close(events)
        events.append(("message_delta", {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop, "stop_sequence": None},
            "usage": usage_to_anthropic(self._usage),
        }))
        events.append(("message_stop", {"type": "message_stop"}))
        return events

    def _message_start(self, chunk: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._started = True
        rid = self._id or chunk.get("id") or new_id("msg_")
        self._id = rid if rid.startswith("msg_") else f"msg_{rid}"
        usage = usage_to_anthropic(chunk.get("usage"))
        return ("message_start", {"type": "message_start", "message": {
            "id": self._id, "type": "message", "role": "assistant", "model": self._model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}})

    def _open(
        self, events: list[tuple[str, dict[str, Any]]], kind: str, block: dict[str, Any]
    ) -> None:
        if self._index >= 0 and self._open_kind == kind and kind != "tool":
            return
        self._close(events)
        self._index, self._open_kind = self._next, kind
        self._next += 1
        events.append(("content_block_start", {
            "type": "content_block_start", "index": self._index, "content_block": block}))

    def _close(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if self._index >= 0:
            events.append(
                ("content_block_stop", {"type": "content_block_stop", "index": self._index})
            )
            self._index, self._open_kind = -1, ""

    def _block_delta(self, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return ("content_block_delta", {"type": "content_block_delta", "index": self._index,
                                        "delta": delta})

    def _thinking_block(self, events: list[tuple[str, dict[str, Any]]], tb: dict[str, Any]) -> None:
        if tb.get("type") == "redacted_thinking":
            self._open(
                events, "redacted", {"type": "redacted_thinking", "data": tb.get("data", "")}
            )
            self._close(events)
            return
        if self._open_kind != "thinking":  # the whole block arrives at once
            self._open(events, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
            if tb.get("thinking"):
                events.append(
                    self._block_delta({"type": "thinking_delta", "thinking": tb["thinking"]})
                )
        if tb.get("signature"):
            events.append(
                self._block_delta({"type": "signature_delta", "signature": tb["signature"]})
            )
        self._close(events)

    def _tool_call(self, events: list[tuple[str, dict[str, Any]]], call: dict[str, Any]) -> None:
        self._saw_tool_calls = True
        index = call.get("index", 0)
        fn = call.get("function") or {}
        if index not in self._tools:
            block: dict[str, Any] = {"type": "tool_use", "id": call.get("id") or new_id("toolu_"),
                     "name": fn.get("name") or "", "input": {}}
            self._open(events, "tool", block)
            self._tools[index] = self._index
        elif self._tools[index] != self._index:
            raise MalformedUpstreamResponse(
                "openai", f"tool call {index} continued after another tool call started"
            )
        if fn.get("arguments"):
            events.append(self._block_delta({"type": "input_json_delta",
                                             "partial_json": fn["arguments"]}))


_TEXT_DELTA = (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
               b'"delta":{"type":"text_delta","text":%b}}\n\n')


def _more_text(chunk: Any) -> str | None:
    """The text of a chunk that only adds text to choice 0 -- no finish reason, usage, tool
    call, reasoning or refusal beside it -- else None."""
    if type(chunk) is not dict or chunk.get("usage"):
        return None
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") or choice.get("index", 0) != 0:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict:
        return None
    text = delta.get("content")
    if type(text) is not str or not text:
        return None
    for key, value in delta.items():
        if value and key != "content" and key != "role":
            return None
    return text
