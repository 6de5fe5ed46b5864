"""Estimating a request's tokens before it is sent (token budgets, ``count_tokens``).

The sidecar cannot run every provider's tokenizer, and must not spend a tokenizer's CPU on
the hot path. The estimate is deliberately simple and cheap, and errs high on prose:

- text: ``ceil(characters / 4)`` for ASCII text (OpenAI's and Anthropic's rule of thumb for
  English), ``ceil(characters / 2)`` for text with non-ASCII characters (CJK and accented
  text tokenise denser); one C-speed ``str.isascii`` per text, no per-character loop;
- each message adds 4 tokens (role and separators, as OpenAI's cookbook counts them), the
  request 3 (the reply's priming);
- tools: their JSON definition as text; images: 765 tokens each (a 1024x1024 image at
  OpenAI's high detail; Anthropic's ~1,600 for a full-size image is rarer), files 1,500;
- the reply's budget: the request's ``max_completion_tokens`` / ``max_tokens``, else the
  catalog's ``default_max_tokens`` (see :func:`estimate_request_tokens`).

Budgets reserve the estimate before a call and settle it with the provider's reported usage
afterwards (``usage`` of the answer, or of the last stream event), so an estimate's error
lasts only as long as the call.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["estimate_input_tokens", "estimate_request_tokens", "estimate_text_tokens"]

_MESSAGE_OVERHEAD = 4
_REQUEST_OVERHEAD = 3
_IMAGE_TOKENS = 765
_FILE_TOKENS = 1500


def estimate_text_tokens(text: str) -> int:
    """Tokens of one piece of text (see the module docstring)."""
    n = len(text)
    return -(-n // 4) if text.isascii() else -(-n // 2)


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_text_tokens(content)
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            total += estimate_text_tokens(part["text"])
        elif kind in ("image_url", "image", "input_image"):
            total += _IMAGE_TOKENS
        elif kind in ("file", "document", "input_file", "input_audio"):
            total += _FILE_TOKENS
    return total


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a canonical (OpenAI chat) request: messages, tools."""
    total = _REQUEST_OVERHEAD
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            total += _MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
            calls = message.get("tool_calls")
            if calls:
                total += estimate_text_tokens(orjson.dumps(calls).decode())
    tools = body.get("tools")
    if tools:
        total += estimate_text_tokens(orjson.dumps(tools).decode())
    return total


def estimate_request_tokens(body: dict[str, Any], default_max_tokens: int) -> int:
    """What a call may spend: its input estimate plus its reply budget."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(limit, int) or limit <= 0:
        limit = default_max_tokens
    return estimate_input_tokens(body) + limit
