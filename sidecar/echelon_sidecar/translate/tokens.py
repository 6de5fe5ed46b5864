"""Estimating a request's tokens before it is sent (token budgets, ``count_tokens``).

The sidecar cannot run every provider's tokenizer, and must not spend a tokenizer's CPU on
the hot path. The estimate is a linear model of counts that C-speed ``bytes`` operations give
(``translate`` and ``count`` over the text's UTF-8, about a dozen passes, no Python loop per
character), fitted by least squares (relative error, each kind of text weighted alike) to
OpenAI's ``cl100k_base`` tokenizer (GPT-4, GPT-3.5, text-embedding-3) on English prose,
Markdown, Python, JSON, short UI strings and translated text in German, French, Spanish,
Russian, Chinese, Japanese and Korean (``python -m bench.token_estimate`` measures it; the
figures are in docs/routing.md). Per occurrence in the text:

======================================  =====
ASCII letter                            0.128
run of letters (a word)                 0.368
digit                                   0.55
space / newline                         0.171 / 0.4
double quote                            0.242
other ASCII character (punctuation)     0.589
accented Latin letter (U+00C0-U+017F)   0.533
other 2-byte character (Cyrillic, ...)  0.404
3-byte character (CJK, kana, Hangul)    1.037
4-byte character (emoji)                2.75
======================================  =====

Text written with accented Latin letters (German, French, Spanish, ...) splits into more,
shorter tokens than English: the more accents per letter, the more its letters are counted
at 0.292 each instead of by word (fully from one accented letter in 50 on).

and the text's estimate is the sum, rounded up. Other tokenizers differ (Anthropic's and
Gemini's count more, or fewer, tokens for the same text): the estimate is cl100k's, not
theirs.

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


_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_DIGITS = b"0123456789"
_ASCII = bytes(range(128))
# letters (and every byte of a non-ASCII character) to "a", the rest to " ": a word is " a"
_RUNS = bytes(97 if 65 <= i <= 90 or 97 <= i <= 122 or i >= 0x80 else 32 for i in range(256))
_NOT_LEAD3 = bytes(i for i in range(256) if not 0xE0 <= i <= 0xEF)
_NOT_LEAD4 = bytes(i for i in range(256) if not 0xF0 <= i <= 0xF7)
_NOT_LATIN = bytes(i for i in range(256) if i not in (0xC3, 0xC4, 0xC5))  # U+00C0-U+017F


def estimate_text_tokens(text: str) -> int:
    """Tokens of one piece of text (see the module docstring for the model and its error)."""
    if not text:
        return 0
    data = text.encode("utf-8", "replace")
    size = len(data)
    letters = size - len(data.translate(None, _LETTERS))
    digits = size - len(data.translate(None, _DIGITS))
    spaces, newlines = data.count(b" "), data.count(b"\n")
    words = (b" " + data.translate(_RUNS)).count(b" a")
    quotes = data.count(b'"')
    by_word = 0.128 * letters + 0.368 * words
    total = 0.55 * digits + 0.171 * spaces + 0.4 * newlines + 0.242 * quotes
    other = size - letters - digits - spaces - newlines - quotes
    if text.isascii():
        total += by_word + 0.589 * other
    else:
        high = len(data.translate(None, _ASCII))  # bytes of non-ASCII characters
        wide = len(text) - (size - high)  # non-ASCII characters
        three = len(data.translate(None, _NOT_LEAD3))
        four = len(data.translate(None, _NOT_LEAD4))
        latin = len(data.translate(None, _NOT_LATIN))
        accented = min(1.0, 50.0 * latin / letters) if letters else 0.0
        total += (1.0 - accented) * by_word + accented * 0.292 * letters + 0.533 * latin
        total += 0.404 * (wide - three - four - latin) + 1.037 * three + 2.75 * four
        total += 0.589 * (other - high)
    return max(1, -int(-total // 1))


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
