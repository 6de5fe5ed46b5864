"""Pure wire-format translation between OpenAI Chat Completions, Anthropic Messages and
Gemini ``generateContent`` — requests, responses, errors and streaming events.

The sidecar's canonical form is the OpenAI chat format (see ``_common`` for the few
extension keys it carries). Callers speak OpenAI (``/v1/chat/completions``) or Anthropic
(``/v1/messages``); upstreams are OpenAI-compatible, Anthropic or Gemini::

    caller → canonical:   OpenAI callers as they are; Anthropic callers through
                          anthropic_to_openai_request; then apply_settings (tier settings)
    canonical → upstream: prepare_openai_request | openai_to_anthropic_request |
                          openai_to_gemini_request

and back: ``anthropic_to_openai_response`` / ``gemini_to_openai_response`` to canonical,
``openai_to_anthropic_response`` to an Anthropic caller; the stream classes do the same per
event. OpenAI Responses API callers (``/v1/responses``) come in through
responses_to_openai_request and get the canonical answer back through
``openai_to_responses_response`` / ``OpenAIStreamToResponses``. Nothing here does I/O,
reads config or imports aiohttp.

The translators of one upstream kind or one caller format (``anthropic_*``, ``gemini_*``,
``responses_*``, ``embeddings``) are imported the first time one of their names is read from
this package (``__getattr__``): a sidecar loads the ones of the upstream kinds its catalog has
when it loads the config (``preload``), and a caller format's the first time a caller uses it;
errors, SSE, settings, the OpenAI preparation and the token estimate are always loaded.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .errors import (
    InvalidRequest,
    MalformedUpstreamResponse,
    TranslationError,
    UnsupportedFeature,
)
from .errors_map import (
    anthropic_error_to_openai,
    openai_error_to_anthropic,
    upstream_error_to_openai,
)
from .openai import effort_for_budget, prepare_openai_request
from .settings import DEFAULT_THINKING_BUDGET, RequestSettings, apply_settings
from .sse import (
    OPENAI_DONE,
    SSEDecoder,
    SSEEvent,
    encode_anthropic_event,
    encode_openai_chunk,
    encode_sse,
)
from .tokens import estimate_input_tokens, estimate_request_tokens, estimate_text_tokens

if TYPE_CHECKING:
    from .anthropic_inbound import anthropic_to_openai_request
    from .anthropic_request import ANTHROPIC_MIN_THINKING_BUDGET, openai_to_anthropic_request
    from .anthropic_response import (
        anthropic_to_openai_response,
        openai_to_anthropic_response,
        usage_from_anthropic,
        usage_to_anthropic,
    )
    from .anthropic_stream import AnthropicStreamToOpenAI, OpenAIStreamToAnthropic
    from .anthropic_tools import JSON_RESPONSE_TOOL
    from .embeddings import (
        EmbeddingsInput,
        conform_openai_embeddings,
        decode_embedding,
        encode_embedding,
        gemini_to_openai_embeddings,
        openai_to_gemini_embeddings,
        read_embeddings_request,
    )
    from .gemini_request import DUMMY_THOUGHT_SIGNATURE, openai_to_gemini_request
    from .gemini_response import GeminiStreamToOpenAI, gemini_to_openai_response, usage_from_gemini
    from .gemini_schema import json_schema_to_gemini
    from .responses_request import StatefulFeature, responses_echo, responses_to_openai_request
    from .responses_response import (
        new_response_id,
        openai_to_responses_response,
        usage_to_responses,
    )
    from .responses_stream import OpenAIStreamToResponses

#: name -> the module that defines it, imported when the name is first read
_LAZY = {
    "anthropic_to_openai_request": "anthropic_inbound",
    "ANTHROPIC_MIN_THINKING_BUDGET": "anthropic_request",
    "openai_to_anthropic_request": "anthropic_request",
    "anthropic_to_openai_response": "anthropic_response",
    "openai_to_anthropic_response": "anthropic_response",
    "usage_from_anthropic": "anthropic_response",
    "usage_to_anthropic": "anthropic_response",
    "AnthropicStreamToOpenAI": "anthropic_stream",
    "OpenAIStreamToAnthropic": "anthropic_stream",
    "JSON_RESPONSE_TOOL": "anthropic_tools",
    "EmbeddingsInput": "embeddings",
    "conform_openai_embeddings": "embeddings",
    "decode_embedding": "embeddings",
    "encode_embedding": "embeddings",
    "gemini_to_openai_embeddings": "embeddings",
    "openai_to_gemini_embeddings": "embeddings",
    "read_embeddings_request": "embeddings",
    "DUMMY_THOUGHT_SIGNATURE": "gemini_request",
    "openai_to_gemini_request": "gemini_request",
    "GeminiStreamToOpenAI": "gemini_response",
    "gemini_to_openai_response": "gemini_response",
    "usage_from_gemini": "gemini_response",
    "json_schema_to_gemini": "gemini_schema",
    "StatefulFeature": "responses_request",
    "responses_echo": "responses_request",
    "responses_to_openai_request": "responses_request",
    "new_response_id": "responses_response",
    "openai_to_responses_response": "responses_response",
    "usage_to_responses": "responses_response",
    "OpenAIStreamToResponses": "responses_stream",
}

#: the translators an upstream kind needs beyond the OpenAI form
_UPSTREAM = {"anthropic": ("anthropic_request", "anthropic_response", "anthropic_stream"),
             "gemini": ("gemini_request", "gemini_response")}

__all__ = [
    "ANTHROPIC_MIN_THINKING_BUDGET",
    "DEFAULT_THINKING_BUDGET",
    "DUMMY_THOUGHT_SIGNATURE",
    "JSON_RESPONSE_TOOL",
    "OPENAI_DONE",
    "AnthropicStreamToOpenAI",
    "EmbeddingsInput",
    "GeminiStreamToOpenAI",
    "InvalidRequest",
    "MalformedUpstreamResponse",
    "OpenAIStreamToAnthropic",
    "OpenAIStreamToResponses",
    "RequestSettings",
    "SSEDecoder",
    "SSEEvent",
    "StatefulFeature",
    "TranslationError",
    "UnsupportedFeature",
    "anthropic_error_to_openai",
    "anthropic_to_openai_request",
    "anthropic_to_openai_response",
    "apply_settings",
    "conform_openai_embeddings",
    "decode_embedding",
    "effort_for_budget",
    "encode_anthropic_event",
    "encode_embedding",
    "encode_openai_chunk",
    "encode_sse",
    "estimate_input_tokens",
    "estimate_request_tokens",
    "estimate_text_tokens",
    "gemini_to_openai_embeddings",
    "gemini_to_openai_response",
    "json_schema_to_gemini",
    "new_response_id",
    "openai_error_to_anthropic",
    "openai_to_anthropic_request",
    "openai_to_anthropic_response",
    "openai_to_gemini_embeddings",
    "openai_to_gemini_request",
    "openai_to_responses_response",
    "preload",
    "prepare_openai_request",
    "read_embeddings_request",
    "responses_echo",
    "responses_to_openai_request",
    "upstream_error_to_openai",
    "usage_from_anthropic",
    "usage_from_gemini",
    "usage_to_anthropic",
    "usage_to_responses",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # read from the module's dict from now on
    return value


def preload(upstream_kinds: Iterable[str], *, embeddings: bool = False) -> None:
    """Import now the translators that these upstream kinds (``anthropic``, ``gemini``; the
    OpenAI kinds need none) and, with ``embeddings``, embedding models use: no request then
    waits for an import."""
    modules = {module for kind in upstream_kinds for module in _UPSTREAM.get(kind, ())}
    if embeddings:
        modules.add("embeddings")
    for module in sorted(modules):
        importlib.import_module(f"{__name__}.{module}")
