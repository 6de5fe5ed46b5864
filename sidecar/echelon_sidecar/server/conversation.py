"""The implicit session key of a conversation: its opening and its first reply.

A caller that sends no ``X-Echelon-Session`` still gets session affinity: its conversation is
known by a hash of how it opened (every message before the first assistant reply: the system
prompt(s) and the first user message, and an opening assistant greeting if the caller put
one before them) and of that first reply. The reply is what tells apart two conversations
that opened with the same messages: each got its own answer, from its own instance.

- **Turn 1** (no assistant reply in the history): the request is not routed by a pin (a pool
  rotates it); once its reply is complete, the server pins the instance that served it under
  :meth:`Conversation.pin_key` of that reply (``Serving.pin_as``).
- **Turn 2 and later** (the history holds the first reply, followed by the caller's next
  message -- a user message or a tool result): :attr:`Conversation.key` finds that pin.

The reply is hashed in a normal form that the reply the sidecar sent and the assistant message
the caller sends back both reduce to, in either caller format: its text (OpenAI ``content`` --
a string or text parts -- and ``refusal``; Anthropic ``text`` blocks; parts joined as they
are, the whole stripped of surrounding whitespace), cut to its first :data:`REPLY_CHARS`
characters; or, when it has no text, its tool calls: each one's name and arguments (the JSON
re-dumped with sorted keys: OpenAI sends arguments as a string, Anthropic ``input`` as an
object). Thinking blocks and reasoning are left out. An assistant message that ends the
request (an Anthropic prefill) is no reply: the reply that continues it is hashed with that
text in front. In the opening, text parts count by their text and other parts without their
``cache_control`` (clients move cache breakpoints to the latest message).

The key is a 64-bit hash of those, by Python's own (SipHash) string hashing, keyed per
process: pins live in the process, so the key need not be stable beyond it, and a few
microseconds matter on every call (a cryptographic digest of a 1 KB opening costs more than
the rest of the key).

Only the history's first reply matters: the key stays the same for the whole conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["REPLY_CHARS", "TOOL_ARGUMENT_CHARS", "Conversation", "ReplyText", "read_conversation",
           "reply_of_body"]

REPLY_CHARS = 4096
"""How much of a reply's text the key hashes (a stream collects twice this much at most)."""
TOOL_ARGUMENT_CHARS = 65536
"""Beyond this many characters of a streamed reply's tool-call arguments (a reply without text),
the reply is not collected and the conversation is not pinned."""

_NO_KEYS = frozenset(("cache_control",))  # what clients move between turns, not content


@dataclass(slots=True)
class Reply:
    """A reply reduced to what the key hashes: its text, its tool calls."""

    text: str
    calls: list[tuple[str, object]]

    def normal(self, prefix: str = "") -> tuple[str, object]:
        text = (prefix + self.text if prefix else self.text).strip()
        if text or not self.calls:
            return "t", text[:REPLY_CHARS]
        return "c", tuple((name, _arguments(args)) for name, args in self.calls)


@dataclass(slots=True)
class Conversation:
    """What a request says about its conversation."""

    turns: int
    """1 + the assistant replies in the history (each followed by a message of the caller)."""
    key: str | None
    """The conversation's key when the history holds its first reply (turn 2 and later)."""
    opening: list[Any] | None = None
    """A first turn's opening (messages, or the system prompt and messages), for pin_key."""
    prefill: str = ""
    """A first turn's closing assistant text, continued by the reply."""

    def pin_key(self, reply: Reply) -> str:
        """A first turn's key, given its reply (what turn 2's :attr:`key` will be)."""
        return _key(self.opening or [], reply.normal(self.prefill))


def read_conversation(messages: list[Any], system: object = None, anthropic: bool = False,
                      keyed: bool = True) -> Conversation:
    """``messages`` in the caller's format (every one a dict); ``system``: Anthropic's
    top-level system prompt. Not ``keyed`` (the caller named its session): turns only."""
    turns = 1
    seen_user = False
    run = -1  # where the current run of assistant messages after a user message started
    first: tuple[int, int] | None = None
    for index, message in enumerate(messages):
        if message.get("role") == "assistant":
            if seen_user and run < 0:
                run = index
            continue
        if run >= 0:
            turns += 1
            if first is None:
                first = (run, index)
            run = -1
        if not seen_user and message.get("role") == "user":
            seen_user = True
    if not keyed:
        return Conversation(turns, None)
    head: list[Any] = [] if system is None else [{"role": "system", "content": system}]
    if first is not None:
        start, end = first
        reply = _history_reply(messages[start:end], anthropic)
        return Conversation(turns, _key([*head, *messages[:start]], reply.normal()))
    if run >= 0:
        prefill = _history_reply(messages[run:], anthropic).text
        return Conversation(1, None, [*head, *messages[:run]], prefill)
    return Conversation(1, None, [*head, *messages])


def reply_of_body(anthropic: bool, body: object) -> Reply:
    """The reply in a whole response body as the caller receives it."""
    if not isinstance(body, dict):
        return Reply("", [])
    if anthropic:
        return _anthropic_reply(body.get("content"))
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            return _openai_reply(message)
    return Reply("", [])


class ReplyText:
    """A streamed reply, collected from OpenAI chunks (the canonical form, or an OpenAI
    passthrough) or Anthropic events (a passthrough), as they go by: bounded by
    twice :data:`REPLY_CHARS` characters of text and :data:`TOOL_ARGUMENT_CHARS` of
    arguments."""

    __slots__ = ("_calls", "_size", "_spent", "_text", "overflow")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._size = 0
        self._calls: dict[int, list[Any]] = {}  # index -> [name, argument fragments, input]
        self._spent = 0
        self.overflow = False

    def reply(self) -> Reply | None:
        """The reply, or None if its tool calls outgrew the bound (and it has no text)."""
        text = "".join(self._text)
        if not text and self.overflow:
            return None
        calls: list[tuple[str, object]] = []
        for _, (name, fragments, given) in sorted(self._calls.items()):
            calls.append((name, "".join(fragments) if fragments else given))
        return Reply(text, calls)

    def _add_text(self, text: object) -> None:
        # twice the hashed length: the leading whitespace stripped off still leaves enough
        if isinstance(text, str) and self._size < 2 * REPLY_CHARS:
            self._text.append(text)
            self._size += len(text)

    def _call(self, index: object) -> list[Any]:
        key = index if isinstance(index, int) else 0
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = ["", [], ""]
        return call

    def _add_arguments(self, call: list[Any], fragment: object) -> None:
        if isinstance(fragment, str) and fragment and not self.overflow:
            self._spent += len(fragment)
            if self._spent > TOOL_ARGUMENT_CHARS:
                self.overflow = True
                self._calls.clear()
            else:
                call[1].append(fragment)

    def openai_chunk(self, data: dict[str, Any]) -> None:
        try:  # the common chunk first: one choice, a delta with some content
            choice = data["choices"][0]
            delta = choice["delta"]
            content = delta.get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            return
        if choice.get("index", 0) != 0:  # n > 1: the first choice only
            return
        if content:
            self._add_text(content)
        refusal = delta.get("refusal")
        if refusal:
            self._add_text(refusal)
        calls = delta.get("tool_calls")
        if calls and isinstance(calls, list):
            self._add_calls(calls)

    def _add_calls(self, calls: list[Any]) -> None:
        for item in calls:
            if not isinstance(item, dict):
                continue
            function = item.get("function")
            if not isinstance(function, dict):
                continue
            call = self._call(item.get("index"))
            name = function.get("name")
            if isinstance(name, str) and name:
                call[0] = name
            self._add_arguments(call, function.get("arguments"))

    def anthropic_event(self, event: str | None, data: dict[str, Any]) -> None:
        if event == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                kind = delta.get("type")
                if kind == "text_delta":
                    self._add_text(delta.get("text"))
                elif kind == "input_json_delta":
                    self._add_arguments(self._call(data.get("index")), delta.get("partial_json"))
        elif event == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict):
                kind = block.get("type")
                if kind == "text":
                    self._add_text(block.get("text"))
                elif kind == "tool_use":
                    call = self._call(data.get("index"))
                    call[0] = str(block.get("name") or "")
                    call[2] = block.get("input")


# -- normal forms ----------------------------------------------------------------------------------

def _history_reply(messages: list[Any], anthropic: bool) -> Reply:
    """Consecutive assistant messages of the history, as one reply."""
    if len(messages) == 1:
        message = messages[0]
        return _anthropic_reply(message.get("content")) if anthropic else _openai_reply(message)
    text: list[str] = []
    calls: list[tuple[str, object]] = []
    for message in messages:
        part = _anthropic_reply(message.get("content")) if anthropic else _openai_reply(message)
        text.append(part.text)
        calls.extend(part.calls)
    return Reply("".join(text), calls)


def _openai_reply(message: dict[str, Any]) -> Reply:
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(str(part.get("text") or part.get("refusal") or "") for part in content
                       if isinstance(part, dict) and part.get("type") in ("text", "refusal"))
    else:
        text = ""
    refusal = message.get("refusal")
    if isinstance(refusal, str):
        text += refusal
    calls: list[tuple[str, object]] = []
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for call in tool_calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                calls.append((str(function.get("name") or ""), function.get("arguments")))
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls.append((str(legacy.get("name") or ""), legacy.get("arguments")))
    return Reply(text, calls)


def _anthropic_reply(content: object) -> Reply:
    if isinstance(content, str):
        return Reply(content, [])
    if not isinstance(content, list):
        return Reply("", [])
    text: list[str] = []
    calls: list[tuple[str, object]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            value = block.get("text")
            if isinstance(value, str):
                text.append(value)
        elif kind == "tool_use":
            calls.append((str(block.get("name") or ""), block.get("input")))
    return Reply("".join(text), calls)


def _arguments(args: object) -> str:
    """Tool-call arguments, the same whether given as a JSON string or as an object."""
    if isinstance(args, str):
        text = args
        if not text.strip():
            return "{}"
        try:
            args = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
    if args is None:
        return "{}"
    try:
        return orjson.dumps(args, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # an integer beyond 64 bits, say
        return repr(args)


def _content(content: object) -> object:
    """A message's content as hashed: text as it is, other parts without cache markers."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[object] = []
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str) and part.get("type") == "text":
                    parts.append(text)
                    continue
                if not _NO_KEYS.isdisjoint(part):
                    part = {k: v for k, v in part.items() if k not in _NO_KEYS}
            parts.append(_dumps(part))
        return tuple(parts)
    return _dumps(content)


def _dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return repr(value).encode("utf-8", "surrogatepass")


def _key(opening: list[Any], reply: tuple[str, object]) -> str:
    items: list[object] = [reply]
    for message in opening:
        role = message.get("role")
        items.append("system" if role == "developer" else role if isinstance(role, str)
                     else repr(role))
        items.append(_content(message.get("content")))
    return f"conv:{hash(tuple(items)) & 0xFFFFFFFFFFFFFFFF:016x}"
