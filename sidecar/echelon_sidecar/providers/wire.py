"""Per-provider request building: URL, headers and body for one attempt.

The caller's canonical (OpenAI chat) body gets the tier's settings, then is translated to the
upstream's format. When no translation and no setting applies, the caller's own body is sent
with only ``model`` changed (Anthropic callers to Anthropic upstreams, OpenAI to OpenAI).

``parallel_tool_calls: false`` reaches OpenAI-format upstreams as it is and Anthropic ones as
``tool_choice.disable_parallel_tool_use``; Gemini has no such setting, so its call is marked
``first_tool_call_only`` and the answer keeps only its first function call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .. import translate  # its Anthropic and Gemini translators load when first called
from ..engine import AttemptSettings, InstanceCannotServe, UpstreamError
from ..translate import (
    InvalidRequest,
    RequestSettings,
    UnsupportedFeature,
    apply_settings,
    prepare_openai_request,
    upstream_error_to_openai,
)
from .payload import InboundRequest, UpstreamFormat

__all__ = ["DEFAULT_ANTHROPIC_VERSION", "UpstreamCall", "build_call", "request_settings"]

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
_JSON = "application/json"


@dataclass(slots=True)
class UpstreamCall:
    format: UpstreamFormat
    url: str
    headers: dict[str, str]
    body: bytes
    first_tool_call_only: bool = False
    """The caller forbade parallel tool calls and this upstream cannot be told (Gemini): the
    answer's later tool calls are to be dropped (``UpstreamReply.first_tool_call_only``)."""


_SETTINGS_CACHE: dict[int, tuple[AttemptSettings, RequestSettings | None]] = {}


def request_settings(settings: AttemptSettings) -> RequestSettings | None:
    """The translate-layer view of a tier's request settings (None when there are none)."""
    cached = _SETTINGS_CACHE.get(id(settings))
    if cached is not None and cached[0] is settings:
        return cached[1]
    thinking = settings.thinking_config
    out: RequestSettings | None = RequestSettings(
        temperature=settings.temperature,
        function_calling=settings.function_calling,  # type: ignore[arg-type]
        response_format=settings.response_format,  # type: ignore[arg-type]
        thinking_enabled=thinking.enabled if thinking else None,
        thinking_budget=thinking.budget_tokens if thinking else None,
    )
    if out == RequestSettings():
        out = None
    if len(_SETTINGS_CACHE) > 4096:
        _SETTINGS_CACHE.clear()
    _SETTINGS_CACHE[id(settings)] = (settings, out)
    return out


def build_call(
    inbound: InboundRequest, settings: AttemptSettings, key: str | None
) -> UpstreamCall:
    """The HTTP call for one attempt. Raises InstanceCannotServe / UpstreamError(400)."""
    entry = settings.model
    if entry.is_embedding:
        raise InstanceCannotServe(
            f"model {settings.model_id} is an embedding model (embedding_space / "
            "embedding_dimensions in the catalog): it serves POST /v1/embeddings only", "chat")
    extra = settings.model.headers or {}
    try:
        tier = request_settings(settings)
        body = apply_settings(inbound.body, tier) if tier is not None else inbound.body
        if entry.provider in ("openai", "openai_compatible"):
            out = prepare_openai_request(body, model=settings.upstream_model,
                                         reasoning=entry.supports_reasoning)
            if inbound.stream and inbound.format != "openai":
                out = {**out, "stream_options": {"include_usage": True}}
            headers = {"Content-Type": _JSON, **extra}
            if key:
                headers["Authorization"] = f"Bearer {key}"
            return UpstreamCall("openai", f"{entry.endpoint}/chat/completions", headers,
                                orjson.dumps(out))
        if entry.provider == "anthropic":
            if inbound.original is not None and tier is None:
                out = {**inbound.original, "model": settings.upstream_model}
            else:
                out = translate.openai_to_anthropic_request(
                    body, model=settings.upstream_model, default_max_tokens=settings.max_tokens
                )
                if inbound.stream:
                    out["stream"] = True
            headers = {
                "Content-Type": _JSON,
                "anthropic-version": entry.api_version or DEFAULT_ANTHROPIC_VERSION,
                **extra,
            }
            if key:
                headers["x-api-key"] = key
            return UpstreamCall("anthropic", f"{entry.endpoint}/v1/messages", headers,
                                orjson.dumps(out))
        out = translate.openai_to_gemini_request(body)
        action = ("streamGenerateContent?alt=sse" if inbound.stream else "generateContent")
        headers = {"Content-Type": _JSON, **extra}
        if key:
            headers["x-goog-api-key"] = key
        url = f"{entry.endpoint}/v1beta/models/{settings.upstream_model}:{action}"
        return UpstreamCall("gemini", url, headers, orjson.dumps(out),
                            body.get("parallel_tool_calls") is False)
    except UnsupportedFeature as exc:
        raise InstanceCannotServe(str(exc), exc.feature) from None
    except InvalidRequest as exc:
        message = str(exc)
        body_err = upstream_error_to_openai("openai", 400, orjson.dumps(
            {"error": {"message": message, "type": "invalid_request_error",
                       "param": getattr(exc, "field_path", None), "code": None}}))
        raise UpstreamError(400, "bad_request", message, body=body_err) from None


def probe_call(entry: Any, key: str | None) -> tuple[str, dict[str, str]]:
    """A cheap authenticated GET that proves an upstream is reachable (models listing)."""
    extra = entry.headers or {}
    if entry.provider == "anthropic":
        headers = {"anthropic-version": entry.api_version or DEFAULT_ANTHROPIC_VERSION, **extra}
        if key:
            headers["x-api-key"] = key
        return f"{entry.endpoint}/v1/models", headers
    if entry.provider == "gemini":
        headers = dict(extra)
        if key:
            headers["x-goog-api-key"] = key
        return f"{entry.endpoint}/v1beta/models", headers
    headers = dict(extra)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return f"{entry.endpoint}/models", headers
