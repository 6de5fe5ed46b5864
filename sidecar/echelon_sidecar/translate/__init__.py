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
"""

from __future__ import annotations

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
from .gemini_request import DUMMY_THOUGHT_SIGNATURE, openai_to_gemini_request
from .gemini_response import GeminiStreamToOpenAI, gemini_to_openai_response, usage_from_gemini
from .gemini_schema import json_schema_to_gemini
from .openai import effort_for_budget, prepare_openai_request
from .responses_request import StatefulFeature, responses_echo, responses_to_openai_request
from .responses_response import (
    new_response_id,
    openai_to_responses_response,
    usage_to_responses,
)
from .responses_stream import OpenAIStreamToResponses
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
