"""Upstream adapters: the engine's Provider over real HTTP (OpenAI, Anthropic, Gemini)."""

from .credentials import CredentialError, Credentials
from .embeddings import EmbeddingSpace, EmbeddingsRequest
from .http import HttpProvider, retry_after_seconds
from .payload import (
    CallerFormat,
    InboundRequest,
    UpstreamFormat,
    UpstreamReply,
    UpstreamTrace,
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
    "UpstreamTrace",
    "build_call",
    "retry_after_seconds",
]
