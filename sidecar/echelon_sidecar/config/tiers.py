"""A tier ("echelon") of a task group and its request settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from .admission import rule, validations
from .base import ConfigModel

__all__ = [
    "MAX_MODELS_PER_TIER",
    "MAX_MODEL_ID_LENGTH",
    "ConcurrencySetting",
    "Echelon",
    "FunctionCalling",
    "ModelId",
    "ResponseFormat",
    "ThinkingConfig",
]

#: bounds that keep the API server's cost estimate of the tier rules small
MAX_MODELS_PER_TIER = 32
MAX_MODEL_ID_LENGTH = 253
#: a model id in a tier (the validator refuses an empty one with its own message)
ModelId = Annotated[str, Field(max_length=MAX_MODEL_ID_LENGTH,
                               json_schema_extra={"minLength": 1})]

FunctionCalling = Literal["required", "auto"]
ResponseFormat = Literal["json"]


class ThinkingConfig(ConfigModel):
    """Extended thinking / reasoning for the models of a tier or node."""

    enabled: bool = Field(True, description="Ask the model to think before answering.")
    budget_tokens: int | None = Field(
        None,
        ge=1024,
        le=1_000_000,
        description="Token budget for thinking (at least 1024). Mapped to Anthropic "
        "thinking.budget_tokens, Gemini thinkingBudget and OpenAI reasoning_effort.",
    )


class ConcurrencySetting(ConfigModel):
    """At most ``limit`` calls in flight; up to ``queue_size`` more wait in FIFO order."""

    limit: int = Field(ge=1, le=1_000_000, description="Calls allowed in flight at once.")
    queue_size: int = Field(
        0, ge=0, le=10_000_000, description="Calls that may wait for a slot (FIFO); beyond that "
        "a call is refused at once."
    )


class Echelon(ConfigModel):
    """One tier of a task group: an ordered list of models and the limits that apply to it."""

    description: str | None = Field(None, description="What this tier is for.")
    models: list[ModelId] = Field(
        min_length=1,
        max_length=MAX_MODELS_PER_TIER,
        description="Model ids from the model catalog, in the order they are tried (each "
        "once).",
        json_schema_extra=validations(rule(
            "self.all(m, self.filter(n, n == m).size() == 1)",
            "a model is listed twice in models; list each model once")),
    )
    priority: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Order of this tier in its group: 1 is tried first. Without it, tiers keep "
        "their declaration order (which Kubernetes does not preserve: set it there).",
    )
    concurrency_limit: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="Calls in flight on this tier, cluster-wide; the operator splits it across "
        "the pool's sidecars.",
    )
    rpm_limit: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="Requests per minute on this tier, cluster-wide (split across sidecars).",
    )
    tpm_limit: int | None = Field(
        None,
        ge=1,
        le=10_000_000_000,
        description="Tokens per minute on this tier (input + output), cluster-wide (split "
        "across sidecars). A call reserves its estimate (input tokens plus max_tokens or the "
        "model's default_max_tokens) and settles it with the usage the provider reports; a "
        "reservation that does not fit spills to the next tier.",
    )
    timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds one attempt on this tier may take."
    )
    max_retries: int | None = Field(
        None,
        ge=0,
        le=20,
        description="Retries this tier may make once each of its models was tried once (the "
        "retries cycle through its models). Budget: each model once plus max_retries; "
        "0 or unset: each model once.",
    )
    thinking_config: ThinkingConfig | None = Field(
        None, description="Extended thinking for this tier's requests."
    )
    function_calling: FunctionCalling | None = Field(
        None, description="'required': the model must call a tool; 'auto': it may."
    )
    temperature: float | None = Field(
        None, ge=0, le=2, description="Sampling temperature used when the caller sets none."
    )
    response_format: ResponseFormat | None = Field(
        None, description="'json': the answer must be a JSON object."
    )
    task_type: str | None = Field(
        None,
        description="The task type this tier serves when the group's tiers are named by task "
        "(defaults to the tier's name for such groups).",
    )

    @field_validator("models")
    @classmethod
    def _models_unique(cls, models: list[str]) -> list[str]:
        seen: set[str] = set()
        for m in models:
            if not m:
                raise ValueError("a model id must not be empty")
            if m in seen:
                raise ValueError(f"model {m!r} is listed twice; list each model once")
            seen.add(m)
        return models

    def attempt_budget(self, max_retries: int | None = None) -> int:
        """How many calls this tier may make for one request: each model once, plus
        ``max_retries`` retries (the tier's own, or ``max_retries`` given, e.g. a node's)."""
        retries = self.max_retries if max_retries is None else max_retries
        return len(self.models) + (retries or 0)
