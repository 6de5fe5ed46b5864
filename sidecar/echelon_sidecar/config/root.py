"""The whole configuration of an Echelon sidecar (and what the operator renders for one)."""

from __future__ import annotations

import os

from pydantic import Field

from .base import ConfigModel
from .catalog import ModelEntry
from .fallback import GlobalFallback
from .groups import TaskGroup
from .limits import ConcurrencyControl, RateLimiting
from .nodes import WorkflowNode
from .pools import PollingPool

__all__ = ["POD_NAME_ENV", "EchelonConfig", "SidecarSettings", "share"]

#: the sidecar's own pod name (the operator sets it from the downward API, metadata.name)
POD_NAME_ENV = "ECHELON_POD_NAME"


class SidecarSettings(ConfigModel):
    """Written by the operator: which pool a sidecar serves and how the budgets are shared."""

    pool: str | None = Field(None, description="The pool served by default.")
    sidecars: int = Field(
        1,
        ge=1,
        le=100_000,
        description="Sidecars sharing every cluster-wide budget (rpm, concurrency, rate "
        "limiting); each enforces its share (see pods), at least 1.",
    )
    pods: list[str] = Field(
        default_factory=list,
        max_length=100_000,
        description="The pods whose sidecars share the budgets, by name. The sidecar of the "
        "i-th pod in name order takes budget // sidecars, plus one while i < budget % sidecars "
        "(largest remainder), so the listed pods' shares add up to the budget; a sidecar whose "
        f"pod ({POD_NAME_ENV}) is not listed takes budget // sidecars.",
    )

    def slot(self, pod: str | None = None) -> int | None:
        """This sidecar's position among ``pods`` in name order, None when it is not listed.

        ``pod``: the pod's name (default: the ``ECHELON_POD_NAME`` environment variable).
        """
        name = os.environ.get(POD_NAME_ENV) if pod is None else pod
        if not name or name not in self.pods:
            return None
        index = sorted(set(self.pods)).index(name)
        return index if index < self.sidecars else None


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


def share(budget: int, sidecars: int, slot: int | None = None) -> int:
    """One sidecar's share of a cluster-wide integer budget, at least 1.

    ``budget // sidecars``, plus one for the sidecars at ``slot`` < ``budget % sidecars``
    (largest remainder: every quota has the same fraction, ties go by pod name), so that the
    shares of slots ``0 .. sidecars-1`` add up to the budget (when it is at least
    ``sidecars``). A sidecar without a slot (not listed, or run alone) takes the floor.
    """
    count = max(1, sidecars)
    base, extra = divmod(budget, count)
    if slot is not None and 0 <= slot < extra:
        base += 1
    return max(1, base)
