"""The whole configuration of an Echelon sidecar (and what the operator renders for one)."""

from __future__ import annotations

from pydantic import Field

from .base import ConfigModel
from .catalog import ModelEntry
from .fallback import GlobalFallback
from .groups import TaskGroup
from .limits import ConcurrencyControl, RateLimiting
from .nodes import WorkflowNode
from .pools import PollingPool

__all__ = ["EchelonConfig", "SidecarSettings", "share"]


class SidecarSettings(ConfigModel):
    """Written by the operator: which pool a sidecar serves and how many share the budgets."""

    pool: str | None = Field(None, description="The pool served by default.")
    sidecars: int = Field(
        1,
        ge=1,
        le=100_000,
        description="Sidecars sharing every cluster-wide budget (rpm, concurrency, rate "
        "limiting); each enforces its share (budget / sidecars, at least 1).",
    )


class EchelonConfig(ConfigModel):
    """Everything a sidecar needs. The source documents' combined file has this shape."""

    task_groups: dict[str, TaskGroup] = Field(default_factory=dict)
    polling_pools: dict[str, PollingPool] = Field(default_factory=dict)
    global_fallback: GlobalFallback | None = None
    concurrency_control: ConcurrencyControl | None = None
    rate_limiting: RateLimiting | None = None
    workflow_nodes: dict[str, WorkflowNode] = Field(default_factory=dict)
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    sidecar: SidecarSettings = Field(default_factory=SidecarSettings)


def share(budget: int, sidecars: int) -> int:
    """One sidecar's share of a cluster-wide integer budget: floor(budget / sidecars), >= 1."""
    return max(1, budget // max(1, sidecars))
