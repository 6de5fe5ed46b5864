"""What one attempt is given: the :class:`Instance` it calls and its :class:`AttemptSettings`.

:class:`AttemptSettings` is precomputed when the config is loaded, per (group, tier, model)
and per workflow node (whose ``task_config`` overrides the tier's timeout, thinking and
temperature). ``provider_key`` is what ``provider_failover`` compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Echelon, ModelEntry, TaskConfig, ThinkingConfig, WorkflowNode

__all__ = ["AttemptSettings", "Instance", "build_settings", "provider_key"]


@dataclass(frozen=True, slots=True)
class Instance:
    """One callable model endpoint: a catalog model id and its entry."""

    model_id: str
    entry: ModelEntry

    @property
    def provider(self) -> str:
        return self.entry.provider


@dataclass(frozen=True, slots=True)
class AttemptSettings:
    """What one attempt asks of its instance (from the tier and the workflow node)."""

    group: str
    tier: str
    model_id: str
    model: ModelEntry
    upstream_model: str
    timeout: float
    thinking_config: ThinkingConfig | None
    function_calling: str | None
    temperature: float | None
    response_format: str | None
    max_tokens: int
    """The catalog's ``default_max_tokens``: used when the caller gives none."""


def build_settings(
    group: str,
    tier_name: str,
    tier: Echelon,
    model_id: str,
    entry: ModelEntry,
    node: WorkflowNode | None = None,
) -> AttemptSettings:
    """Settings of one (group, tier, model), with a workflow node's overrides applied."""
    task: TaskConfig | None = node.task_config if node is not None else None
    timeout = tier.timeout
    thinking = tier.thinking_config
    temperature = tier.temperature
    if node is not None and node.thinking_config is not None:
        thinking = node.thinking_config
    if task is not None:
        timeout = task.timeout if task.timeout is not None else timeout
        thinking = task.thinking_config if task.thinking_config is not None else thinking
        temperature = task.temperature if task.temperature is not None else temperature
    return AttemptSettings(
        group=group,
        tier=tier_name,
        model_id=model_id,
        model=entry,
        upstream_model=entry.model,
        timeout=timeout,
        thinking_config=thinking,
        function_calling=tier.function_calling,
        temperature=temperature,
        response_format=tier.response_format,
        max_tokens=entry.default_max_tokens,
    )


def provider_key(entry: ModelEntry) -> str:
    """What ``provider_failover`` compares: the provider kind, with openai and
    openai_compatible told apart by the host of their base URL."""
    if entry.provider in ("openai", "openai_compatible"):
        host = urlsplit(entry.endpoint).hostname or entry.endpoint
        return f"openai@{host}"
    return entry.provider
