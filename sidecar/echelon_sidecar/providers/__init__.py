"""Upstream adapters: the engine's Provider over real HTTP (OpenAI, Anthropic, Gemini)."""

from .credentials import CredentialError, Credentials
from .embeddings import EmbeddingSpace, EmbeddingsRequest
from .http import HttpProvider, retry_after_seconds
from .payload import (
    CallerFormat,
    InboundRequest,
    UpstreamFormat,
    UpstreamReply,
    reported_tokens,
)
from .wire import DEFAULT_ANTHROPIC_VERSION, build_call

__all__ = [
    "DEFAULT_ANTHROPIC_VERSION",
    "CallerFormat",
    "CredentialError",
    "Credentials",
    "EmbeddingSpace",
    "EmbeddingsRequest",
    "HttpProvider",
    "InboundRequest",
    "UpstreamFormat",
    "UpstreamReply",
    "build_call",
    "reported_tokens",
    "retry_after_seconds",
]
