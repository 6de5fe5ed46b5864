"""Deterministic reply generation, shared by the three wire formats.

Each wire module reduces its request to a `Prompt`; `build_reply` turns that into a `Reply`
(text, optional thinking, optional tool call, token counts). Tokens are words: the same request
always yields the same reply and the same usage, so tests can assert on them.

A tool call happens when the request forces one or its last user text holds `TOOL_TRIGGER`.
`PARALLEL_TOOL_TRIGGER` asks for parallel calls too: after the first call, one more per other
declared tool (the only tool twice when there is one), in `Reply.parallel_calls`. Only the
Gemini wire sends them (more ``functionCall`` parts in the same turn, as Gemini does; Gemini
has no way to forbid it); the OpenAI and Anthropic wires answer with the first call alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "PARALLEL_TOOL_TRIGGER",
    "TOOL_TRIGGER",
    "Prompt",
    "Reply",
    "ToolCall",
    "ToolSpec",
    "build_reply",
    "count_tokens",
    "example_for_schema",
    "split_chars",
    "split_text",
]

TOOL_TRIGGER = "CALL_TOOL"
PARALLEL_TOOL_TRIGGER = "CALL_PARALLEL_TOOLS"
_OVERSIZE_FILLER = b"lorem ipsum dolor sit amet "


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class Prompt:
    """What the reply depends on, whatever wire format the request came in."""

    model: str
    last_user_text: str = ""
    prompt_tokens: int = 1
    tools: list[ToolSpec] = field(default_factory=list)
    force_tool: bool = False
    forced_tool_name: str | None = None
    json_output: bool = False
    json_schema: dict[str, Any] | None = None
    thinking: bool = False
    thinking_budget: int | None = None
    max_tokens: int | None = None


@dataclass(slots=True)
class Reply:
    text: str
    completion_tokens: int
    prompt_tokens: int
    thinking: str | None = None
    reasoning_tokens: int = 0
    tool_call: ToolCall | None = None
    truncated: bool = False
    parallel_calls: list[ToolCall] = field(default_factory=list)
    """Calls made in the same turn after `tool_call` (see `PARALLEL_TOOL_TRIGGER`)."""

    @property
    def output_tokens(self) -> int:
        """Visible plus reasoning tokens (what Anthropic's `output_tokens` counts)."""
        return self.completion_tokens + self.reasoning_tokens


def count_tokens(text: str) -> int:
    """The fake tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def texts_tokens(texts: Iterable[str]) -> int:
    return max(1, sum(len(t.split()) for t in texts))


def example_for_schema(schema: object) -> Any:
    """A deterministic value satisfying the required properties of a JSON schema."""
    if not isinstance(schema, dict):
        return {}
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_for_schema(options[0])
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if isinstance(typ, str):
        typ = typ.lower()  # Gemini spells types in capitals
    if typ == "string":
        return "fake"
    if typ == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if typ == "number":
        return float(schema.get("minimum", 1.0)) if "minimum" in schema else 1.5
    if typ == "boolean":
        return True
    if typ == "null":
        return None
    if typ == "array":
        min_items = int(schema.get("minItems", 0))
        return [example_for_schema(schema.get("items", {})) for _ in range(min_items)]
    properties = schema.get("properties")
    if typ == "object" or isinstance(properties, dict):
        props = properties if isinstance(properties, dict) else {}
        required = schema.get("required") or []
        return {
            name: _named_example(name, props.get(name, {"type": "string"}))
            for name in required
            if isinstance(name, str)
        }
    return "fake"


def _named_example(name: str, schema: object) -> Any:
    value = example_for_schema(schema)
    if value == "fake" and not (isinstance(schema, dict) and "enum" in schema):
        return f"fake-{name}"
    return value


def _echo(text: str, words: int) -> str:
    parts = text.split()
    if len(parts) <= words:
        return " ".join(parts)
    return " ".join(parts[:words]) + " …"


def build_reply(prompt: Prompt, *, fixed_reply: str | None, echo_words: int) -> Reply:
    """The reply for `prompt`: tool call, JSON text, or `[fake:<model>] <echo>`."""
    model = prompt.model
    echo = fixed_reply if fixed_reply is not None else _echo(prompt.last_user_text, echo_words)
    thinking = None
    reasoning = 0
    if prompt.thinking:
        thinking = f"[fake:{model}] thinking about: {_echo(prompt.last_user_text, echo_words)}"
        reasoning = count_tokens(thinking)
        if prompt.thinking_budget is not None:
            reasoning = min(reasoning, max(1, prompt.thinking_budget))

    tool = _chosen_tool(prompt)
    if tool is not None:
        args = example_for_schema(tool.parameters or {"type": "object"})
        if not isinstance(args, dict):
            args = {}
        call = ToolCall(tool.name, args)
        parallel: list[ToolCall] = []
        if PARALLEL_TOOL_TRIGGER in prompt.last_user_text:
            for other in [t for t in prompt.tools if t is not tool] or [tool]:
                more = example_for_schema(other.parameters or {"type": "object"})
                parallel.append(ToolCall(other.name, more if isinstance(more, dict) else {}))
        return Reply(
            text="",
            completion_tokens=sum(max(1, 1 + len(c.arguments)) for c in (call, *parallel)),
            prompt_tokens=prompt.prompt_tokens,
            thinking=thinking,
            reasoning_tokens=reasoning,
            tool_call=call,
            parallel_calls=parallel,
        )

    if prompt.json_output:
        if prompt.json_schema:
            obj = example_for_schema(prompt.json_schema)
        else:
            obj = {"model": model, "fake": True, "echo": echo}
        text = orjson.dumps(obj).decode()
    else:
        text = f"[fake:{model}] {echo}" if echo else f"[fake:{model}]"

    tokens = count_tokens(text) or 1
    truncated = False
    if prompt.max_tokens is not None and tokens > prompt.max_tokens and not prompt.json_output:
        words = text.split()[: max(1, prompt.max_tokens)]
        text = " ".join(words)
        tokens = len(words)
        truncated = True
    return Reply(
        text=text,
        completion_tokens=tokens,
        prompt_tokens=prompt.prompt_tokens,
        thinking=thinking,
        reasoning_tokens=reasoning,
        truncated=truncated,
    )


def oversized_text(megabytes: float) -> str:
    """A reply text of about `megabytes` MiB (for the `oversize:MB` fault)."""
    size = int(megabytes * 1024 * 1024)
    reps = size // len(_OVERSIZE_FILLER) + 1
    return (_OVERSIZE_FILLER * reps)[:size].decode()


def _chosen_tool(prompt: Prompt) -> ToolSpec | None:
    if not prompt.tools:
        return None
    text = prompt.last_user_text
    if not (prompt.force_tool or TOOL_TRIGGER in text or PARALLEL_TOOL_TRIGGER in text):
        return None
    if prompt.forced_tool_name:
        for tool in prompt.tools:
            if tool.name == prompt.forced_tool_name:
                return tool
    return prompt.tools[0]


def split_text(text: str, chunks: int) -> list[str]:
    """Split `text` into at most `chunks` pieces (on word boundaries) that concatenate to it."""
    if chunks <= 1 or not text:
        return [text]
    if len(text) > 64 * 1024:  # oversize replies: fixed-size slices, word boundaries don't matter
        step = -(-len(text) // chunks)
        return [text[i : i + step] for i in range(0, len(text), step)]
    words = text.split(" ")
    if len(words) < chunks:
        pieces = [w + " " for w in words[:-1]] + [words[-1]]
        return pieces
    per = len(words) / chunks
    out: list[str] = []
    start = 0
    for i in range(1, chunks + 1):
        end = round(per * i)
        piece = " ".join(words[start:end])
        out.append(piece if i == chunks else piece + " ")
        start = end
    return out


def split_chars(text: str, chunks: int) -> list[str]:
    """Split `text` into at most `chunks` slices of equal length (for streamed JSON arguments)."""
    if chunks <= 1 or len(text) <= 1:
        return [text]
    step = -(-len(text) // chunks)
    return [text[i : i + step] for i in range(0, len(text), step)]
