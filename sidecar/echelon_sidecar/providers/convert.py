"""Whole (non-streaming) upstream answers in the caller's format."""

from __future__ import annotations

from typing import Any

import orjson

from .. import translate  # the Anthropic and Gemini translators load when first called
from .checks import check_whole_body
from .payload import CallerFormat, UpstreamReply

__all__ = ["convert_body"]


def convert_body(reply: UpstreamReply, caller: CallerFormat) -> bytes:
    """A whole (non-streaming) upstream answer as the caller's response body (TranslationError
    when it is not a usable answer)."""
    check_whole_body(reply.format, reply.body)
    if reply.format == caller:
        return reply.raw
    body: Any = reply.body
    if reply.format == "anthropic":
        canonical = translate.anthropic_to_openai_response(body, model=reply.model)
    elif reply.format == "gemini":
        canonical = translate.gemini_to_openai_response(
            body, model=reply.model, parallel_tool_calls=not reply.first_tool_call_only)
    else:
        canonical = body
    if caller == "openai":
        return orjson.dumps(canonical)
    return orjson.dumps(translate.openai_to_anthropic_response(canonical, model=reply.model))
