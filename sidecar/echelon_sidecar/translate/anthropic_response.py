"""Anthropic ``message`` ⇄ OpenAI ``chat.completion`` (non-streaming responses).

===========================  ===================================================================
Anthropic                    OpenAI
===========================  ===================================================================
text blocks                  ``message.content`` (joined)
tool_use                     ``message.tool_calls[{id, type: function, function{name,
                             arguments: JSON string}}]``
tool_use ``JSON_RESPONSE_    ``message.content`` = the tool input as JSON text, finish ``stop``
TOOL``                       (JSON mode, see anthropic_request)
thinking / redacted_thinking ``message.reasoning_content`` (joined thinking text) and
                             ``message.thinking_blocks`` (the blocks with signatures)
stop_reason end_turn,        finish_reason ``stop``; max_tokens and
stop_sequence, pause_turn    model_context_window_exceeded → ``length``; tool_use →
                             ``tool_calls``; refusal → ``content_filter``
usage input/output/cache     prompt_tokens = input + cache read + cache write;
                             ``prompt_tokens_details{cached_tokens, cache_write_tokens}``;
                             thinking tokens → ``completion_tokens_details.reasoning_tokens``
===========================  ===================================================================
"""

from __future__ import annotations

from typing import Any

import orjson

from ._common import REASONING_CONTENT, THINKING_BLOCKS, dumps, now, safe_id, upstream
from .anthropic_tools import JSON_RESPONSE_TOOL
from .errors import MalformedUpstreamResponse

__all__ = [
    "FINISH_FROM_ANTHROPIC",
    "STOP_FROM_OPENAI",
    "anthropic_to_openai_response",
    "openai_to_anthropic_response",
    "usage_from_anthropic",
    "usage_to_anthropic",
]

FINISH_FROM_ANTHROPIC: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_FROM_OPENAI: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def usage_from_anthropic(u: dict[str, Any]) -> dict[str, Any]:
    """Anthropic ``usage`` → OpenAI ``usage`` (prompt tokens include cached tokens)."""
    inp = u.get("input_tokens") or 0
    read = u.get("cache_read_input_tokens")
    write = u.get("cache_creation_input_tokens")
    out = u.get("output_tokens") or 0
    prompt = inp + (read or 0) + (write or 0)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": out,
        "total_tokens": prompt + out,
    }
    if read is not None or write is not None:
        usage["prompt_tokens_details"] = {
            "cached_tokens": read or 0,
            "cache_write_tokens": write or 0,
        }
    thinking = (u.get("output_tokens_details") or {}).get("thinking_tokens")
    if thinking is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return usage


def usage_to_anthropic(u: dict[str, Any] | None) -> dict[str, Any]:
    """OpenAI ``usage`` → Anthropic ``usage`` (input tokens exclude cached tokens)."""
    if not u:
        return {"input_tokens": 0, "output_tokens": 0}
    details = u.get("prompt_tokens_details") or {}
    read = details.get("cached_tokens") or 0
    write = details.get("cache_write_tokens") or 0
    out: dict[str, Any] = {
        "input_tokens": max(0, (u.get("prompt_tokens") or 0) - read - write),
        "output_tokens": u.get("completion_tokens") or 0,
    }
    if "cached_tokens" in details or "cache_write_tokens" in details:
        out["cache_read_input_tokens"] = read
        out["cache_creation_input_tokens"] = write
    reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning:
        out["output_tokens_details"] = {"thinking_tokens": reasoning}
    return out


@upstream("anthropic")
def anthropic_to_openai_response(
    resp: dict[str, Any], *, model: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """A full Anthropic ``message`` → a full OpenAI ``chat.completion``.

    `model` overrides the upstream's model name (the sidecar answers with the name the
    caller asked for); `created` defaults to now.
    """
    content = resp.get("content")
    if resp.get("type") != "message" or not isinstance(content, list):
        raise MalformedUpstreamResponse("anthropic", "expected a 'message' with a content list")
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    json_text: str | None = None
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
            thinking_blocks.append({"type": "thinking", "thinking": block.get("thinking", ""),
                                    "signature": block.get("signature", "")})
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data", "")})
        elif kind == "tool_use":
            if block.get("name") == JSON_RESPONSE_TOOL:
                json_text = dumps(block.get("input") or {})
            else:
                tool_calls.append(
                    {
                        "id": block["id"],
                        "type": "function",
                        "function": {
                            "name": block["name"],
                            "arguments": dumps(block.get("input") or {}),
                        },
                    }
                )
        # server tool blocks never occur: the translator does not enable server tools
    message: dict[str, Any] = {"role": "assistant"}
    message["content"] = json_text if json_text is not None else ("".join(texts) if texts else None)
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message[REASONING_CONTENT] = "".join(reasoning)
    if thinking_blocks:
        message[THINKING_BLOCKS] = thinking_blocks
    finish = FINISH_FROM_ANTHROPIC.get(resp.get("stop_reason") or "end_turn", "stop")
    if finish == "tool_calls" and not tool_calls:
        finish = "stop"  # only the JSON-mode tool was called
    return {
        "id": resp.get("id") or "",
        "object": "chat.completion",
        "created": created if created is not None else now(),
        "model": model or resp.get("model") or "",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": usage_from_anthropic(resp.get("usage") or {}),
    }


@upstream("openai")
def openai_to_anthropic_response(resp: dict[str, Any], *, model: str) -> dict[str, Any]:
    """A full OpenAI ``chat.completion`` → a full Anthropic ``message`` (first choice).

    ``reasoning_content`` without ``thinking_blocks`` becomes a thinking block with an empty
    signature (display only: `anthropic_to_openai_request` does not replay unsigned blocks).
    """
    choices = resp.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedUpstreamResponse("openai", "expected a chat.completion with choices")
    choice = choices[0]
    msg = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if msg.get(THINKING_BLOCKS):
        content.extend(dict(b) for b in msg[THINKING_BLOCKS] if isinstance(b, dict))
    elif msg.get(REASONING_CONTENT):
        content.append({"type": "thinking", "thinking": msg[REASONING_CONTENT], "signature": ""})
    text = msg.get("content")
    if isinstance(text, list):
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if text:
        content.append({"type": "text", "text": text})
    if msg.get("refusal"):
        content.append({"type": "text", "text": msg["refusal"]})
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            args = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError as exc:
            raise MalformedUpstreamResponse(
                "openai", f"tool call {call.get('id')!r} has arguments that are not JSON"
            ) from exc
        if not isinstance(args, dict):
            raise MalformedUpstreamResponse("openai", "tool call arguments are not a JSON object")
        content.append({"type": "tool_use", "id": call.get("id") or "", "name": fn.get("name", ""),
                        "input": args})
    stop_reason = STOP_FROM_OPENAI.get(choice.get("finish_reason") or "stop", "end_turn")
    if stop_reason == "end_turn" and msg.get("tool_calls"):
        stop_reason = "tool_use"  # some OpenAI-compatible servers say "stop" after tool calls
    rid = str(resp.get("id") or "")
    return {
        "id": rid if rid.startswith("msg_") else f"msg_{safe_id(rid)}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage_to_anthropic(resp.get("usage")),
    }
