"""Workflow nodes: a caller names its node; the sidecar applies its routing and limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ConfigModel
from .tiers import ConcurrencySetting, ThinkingConfig

__all__ = ["TaskConfig", "WorkflowNode"]


class TaskConfig(ConfigModel):
    """Per-node overrides of a tier's request settings."""

    timeout: float | None = Field(None, gt=0, le=3600, description="Seconds per attempt.")
    max_retries: int | None = Field(None, ge=0, le=20, description="Retries per tier.")
    thinking_config: ThinkingConfig | None = None
    temperature: float | None = Field(None, ge=0, le=2)


class WorkflowNode(ConfigModel):
    """An LLM node of a workflow: its target, its own fallback groups and limits."""

    type: Literal["llm"] = Field("llm", description="Only 'llm' nodes route through Echelon.")
    description: str | None = None
    llm_group: str = Field(description="The group reference the node calls first.")
    fallback_groups: list[str] | None = Field(
        None, description="Replace the group's own fallback groups for this node's requests."
    )
    polling_pool: str | None = Field(
        None, description="Serve the node's requests from this pool (it must serve llm_group)."
    )
    task_type: str | None = Field(
        None, description="The node's task type (checked against the pool)."
    )
    task_config: TaskConfig | None = None
    thinking_config: ThinkingConfig | None = None
    concurrency_config: ConcurrencySetting | None = Field(
        None, description="Calls in flight for this node (overrides the node level default)."
    )
