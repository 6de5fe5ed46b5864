"""The tokens of a served reply, as its upstream reported them, and what they cost.

Tokens are never estimated here: they are the upstream's own count (OpenAI ``usage``,
Anthropic ``usage``, Gemini ``usageMetadata``), normalised to *input* (the prompt, cached
tokens included) and *output* (the reply, reasoning included), as the GenAI semantic
conventions' ``gen_ai.usage.input_tokens`` / ``output_tokens`` count them. A whole reply
carries its usage in its body; a stream in its events (:class:`~.relay.StreamRelay` keeps the
last one it saw). An OpenAI-format stream whose caller did not ask for
``stream_options.include_usage`` reports none: such replies are counted in
``echelon_usage_unreported_total`` instead.
"""

from __future__ import annotations

from typing import Any

from .. import translate  # the Anthropic and Gemini translators load when first called
from ..config import ModelPrice

__all__ = ["Usage", "cost_of", "usage_of_body", "usage_of_openai"]

Usage = tuple[int, int]
"""(input tokens, output tokens)."""


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_of_openai(usage: object) -> Usage | None:
    """An OpenAI ``usage`` object as (input, output); None when it is not one."""
    if not isinstance(usage, dict):
        return None
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def usage_of_body(fmt: str, body: object) -> Usage | None:
    """The usage of a whole reply in its upstream's format (``openai``, ``anthropic`` or
    ``gemini``); None when the body reports none."""
    if not isinstance(body, dict):
        return None
    if fmt == "openai":
        return usage_of_openai(body.get("usage"))
    if fmt == "anthropic":
        raw = body.get("usage")
        return (
            usage_of_openai(translate.usage_from_anthropic(raw)) if isinstance(raw, dict) else None
        )
    raw = body.get("usageMetadata")
    return usage_of_openai(translate.usage_from_gemini(raw)) if isinstance(raw, dict) else None


def cost_of(usage: Usage, price: ModelPrice | None) -> float:
    """What ``usage`` costs at ``price`` (per million tokens); 0 without a price."""
    if price is None:
        return 0.0
    return (usage[0] * price.input_per_million + usage[1] * price.output_per_million) / 1e6


def body_model(body: Any) -> str | None:
    """The model an upstream says answered (OpenAI / Anthropic ``model``, Gemini
    ``modelVersion``), for ``gen_ai.response.model``."""
    if not isinstance(body, dict):
        return None
    model = body.get("model") or body.get("modelVersion")
    return model if isinstance(model, str) and model else None
