"""The embeddings request kind: what the server hands the engine for ``POST /v1/embeddings``,
the upstream call each provider kind gets for it, and its answer in the OpenAI shape.

An instance serves embeddings only when its catalog entry declares an embedding model
(``embedding_space`` and/or ``embedding_dimensions``) of a provider with an embeddings API
(OpenAI, OpenAI-compatible, Gemini; never Anthropic), and only in the **embedding space of
the request** (``EmbeddingsRequest.space``: the space of the route's first embedding model,
fixed by the server before the engine walks the route): any other instance is
``InstanceCannotServe``, so the engine skips it without a call and never falls back across
spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from .. import translate  # the embeddings translators load with the first embeddings call
from ..config import ModelEntry
from ..config.route_checks import embedding_space_key, spaces_compatible
from ..engine import AttemptSettings, InstanceCannotServe
from ..translate import UnsupportedFeature
from .payload import CallerFormat, UpstreamReply
from .wire import UpstreamCall

if TYPE_CHECKING:
    from ..translate import EmbeddingsInput

__all__ = ["EmbeddingSpace", "EmbeddingsRequest", "build_embeddings_call", "embeddings_body",
           "space_label"]

EmbeddingSpace = tuple[str, int | None]
"""(space name, default vector length or None): see ``config.route_checks``."""

_JSON = "application/json"


@dataclass(slots=True)
class EmbeddingsRequest:
    """A caller's ``POST /v1/embeddings``: its body, the checked input, and the embedding
    space every instance serving it must share (None: the route has no embedding model)."""

    body: dict[str, Any]
    input: EmbeddingsInput
    space: EmbeddingSpace | None
    request_id: str = ""
    stream: bool = False
    format: CallerFormat = "openai"


def space_label(space: EmbeddingSpace) -> str:
    name, dims = space
    return f"{name!r}" if dims is None else f"{name!r} at {dims} dimensions"


def _cannot(model_id: str, entry: ModelEntry, request: EmbeddingsRequest) -> str | None:
    """Why this instance cannot serve the request (None: it can)."""
    if entry.provider == "anthropic":
        return "anthropic has no embeddings API"
    if not entry.is_embedding:
        return (f"model {model_id} is not an embedding model (its catalog entry declares no "
                "embedding_space or embedding_dimensions)")
    own = embedding_space_key(entry)
    if request.space is not None and not spaces_compatible(request.space, own):
        return (f"model {model_id} embeds into space {space_label(own)}, not the route's "
                f"{space_label(request.space)}: no fallback across embedding spaces")
    dims = request.input.dimensions
    if dims is not None and entry.embedding_dimensions is not None \
            and dims > entry.embedding_dimensions:
        return (f"model {model_id} makes {entry.embedding_dimensions}-dimensional vectors; "
                f"{dims} dimensions were asked for")
    return None


def _feature(entry: ModelEntry, request: EmbeddingsRequest) -> str:
    if entry.provider == "anthropic" or not entry.is_embedding:
        return "embeddings"
    if request.space is not None and not spaces_compatible(request.space,
                                                           embedding_space_key(entry)):
        return "embedding_space"
    return "dimensions"


def build_embeddings_call(request: EmbeddingsRequest, settings: AttemptSettings,
                          key: str | None) -> UpstreamCall:
    """The HTTP call of one embeddings attempt (InstanceCannotServe when it cannot be made)."""
    entry = settings.model
    reason = _cannot(settings.model_id, entry, request)
    if reason is not None:
        raise InstanceCannotServe(reason, _feature(entry, request))
    extra = entry.headers or {}
    if entry.provider == "gemini":
        try:
            action, body = translate.openai_to_gemini_embeddings(request.input,
                                                                 settings.upstream_model)
        except UnsupportedFeature as exc:
            raise InstanceCannotServe(str(exc), exc.feature) from None
        headers = {"Content-Type": _JSON, **extra}
        if key:
            headers["x-goog-api-key"] = key
        url = f"{entry.endpoint}/v1beta/models/{settings.upstream_model}:{action}"
        return UpstreamCall("gemini", url, headers, orjson.dumps(body))
    out = {**request.body, "model": settings.upstream_model}
    headers = {"Content-Type": _JSON, **extra}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return UpstreamCall("openai", f"{entry.endpoint}/embeddings", headers, orjson.dumps(out))


def embeddings_body(reply: UpstreamReply, request: EmbeddingsRequest,
                    settings: AttemptSettings) -> bytes:
    """The caller's answer (TranslationError when the upstream's is not a usable one): an
    OpenAI answer as it is when it already is what the caller asked for."""
    expected = request.input.dimensions or settings.model.embedding_dimensions
    if reply.format == "gemini":
        return orjson.dumps(translate.gemini_to_openai_embeddings(
            reply.body, request.input, expected, settings.upstream_model))
    rewritten = translate.conform_openai_embeddings(reply.body, request.input, expected,
                                                    settings.upstream_model)
    return reply.raw if rewritten is None else orjson.dumps(rewritten)
