"""The model catalog: model id -> provider, upstream model, endpoint and credential reference."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import ConfigModel

__all__ = ["DEFAULT_BASE_URLS", "EMBEDDING_PROVIDERS", "ModelEntry", "ModelPrice",
           "ProviderKind", "SecretKeyRef"]

ProviderKind = Literal["openai", "openai_compatible", "anthropic", "gemini"]

#: Each official SDK's own base URL convention.
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}

#: The provider kinds with an embeddings API (Anthropic has none).
EMBEDDING_PROVIDERS = ("openai", "openai_compatible", "gemini")


class SecretKeyRef(ConfigModel):
    """A key of a Kubernetes Secret in the pool's namespace (never its value)."""

    name: str = Field(description="The Secret's name.")
    key: str = Field(description="The key inside the Secret.")


class ModelPrice(ConfigModel):
    """What a model's tokens cost, per million, in the currency you account in (the sidecar
    only multiplies: ``echelon_cost_total`` is in that currency)."""

    input_per_million: float = Field(
        ge=0, le=1_000_000, description="Price of one million input tokens (cached ones "
        "included, at this price)."
    )
    output_per_million: float = Field(
        ge=0, le=1_000_000, description="Price of one million output tokens (reasoning "
        "included)."
    )


class ModelEntry(ConfigModel):
    """One callable model: how to reach it and where its credential lives."""

    provider: ProviderKind = Field(description="openai | openai_compatible | anthropic | gemini")
    model: str = Field(min_length=1, description="The model name the upstream expects.")
    base_url: str | None = Field(
        None,
        description="Endpoint, following the provider SDK's convention (OpenAI: .../v1; "
        "Anthropic and Gemini: the host). Required for openai_compatible.",
    )
    api_key_env: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Env var holding the API key."
    )
    api_key_file: str | None = Field(None, description="File holding the API key.")
    api_key_secret: SecretKeyRef | None = Field(
        None, description="Kubernetes Secret key holding the API key (the operator mounts it)."
    )
    headers: dict[str, str] | None = Field(
        None, description="Extra non-secret headers sent upstream."
    )
    default_max_tokens: int = Field(
        4096, ge=1, le=1_000_000, description="max_tokens sent when the caller gives none "
        "(Anthropic requires one)."
    )
    reasoning: bool | None = Field(
        None,
        description="The model accepts a reasoning / thinking control (default: true for "
        "anthropic and gemini, false for openai).",
    )
    api_version: str | None = Field(
        None, description="Anthropic: the anthropic-version header (default 2023-06-01)."
    )
    weight: float | None = Field(
        None, gt=0, le=1_000_000, description="Default weight in weighted pools."
    )
    embedding_space: str | None = Field(
        None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]*$",
        description="Makes this an embedding model (POST /v1/embeddings only) and names the "
        "vector space it embeds into: embeddings fall back only between models of the same "
        "space (and the same embeddingDimensions). Default: the upstream model name.",
    )
    embedding_dimensions: int | None = Field(
        None, ge=1, le=65536,
        description="Makes this an embedding model and gives the length of its vectors when "
        "the caller asks for no dimensions; a fallback needs the same length.",
    )
    price: ModelPrice | None = Field(
        None, description="Optional price per million tokens: turns the tokens the upstream "
        "reports into the echelon_cost_total metric."
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url {value!r} must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check(self) -> ModelEntry:
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError("provider openai_compatible needs a base_url")
        given = [
            n for n in ("api_key_env", "api_key_file", "api_key_secret") if getattr(self, n)
        ]
        if len(given) > 1:
            raise ValueError(f"give one credential source, not {' and '.join(given)}")
        if self.is_embedding and self.provider not in EMBEDDING_PROVIDERS:
            raise ValueError(
                f"provider {self.provider} has no embeddings API: embedding_space and "
                "embedding_dimensions are for openai, openai_compatible and gemini models")
        return self

    @property
    def is_embedding(self) -> bool:
        """An embedding model: it serves ``/v1/embeddings`` and no chat."""
        return self.embedding_space is not None or self.embedding_dimensions is not None

    @property
    def space(self) -> str:
        """The embedding space its vectors belong to (default: the upstream model name)."""
        return self.embedding_space or self.model

    @property
    def endpoint(self) -> str:
        return self.base_url or DEFAULT_BASE_URLS[self.provider]

    @property
    def supports_reasoning(self) -> bool:
        if self.reasoning is not None:
            return self.reasoning
        return self.provider in ("anthropic", "gemini")
