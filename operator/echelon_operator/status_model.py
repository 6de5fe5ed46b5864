"""The status of TaskGroup and PollingPool resources (the CRDs' status schemas come from here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "Condition",
    "InstanceCircuits",
    "PollingPoolStatus",
    "TaskGroupStatus",
]


class _Status(BaseModel):
    model_config = ConfigDict(populate_by_name=True, alias_generator=to_camel, extra="ignore")


class Condition(_Status):
    """A kubebuilder-style condition."""

    type: str = Field(description="Ready, Degraded or Invalid.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field("", description="A CamelCase reason.")
    message: str = Field("", description="What is wrong and where, for humans.")
    last_transition_time: str | None = Field(None, description="When status last changed.")
    observed_generation: int | None = Field(None, description="The generation this is about.")


class InstanceCircuits(_Status):
    """How many sidecars report each circuit state for one model instance."""

    model: str = Field(description="Model id from the catalog.")
    group: str | None = Field(None, description="The task group whose breaker this is.")
    closed: int = Field(0, description="Sidecars reporting the circuit closed.")
    open: int = Field(0, description="Sidecars reporting the circuit open.")
    half_open: int = Field(0, description="Sidecars reporting the circuit half-open.")
    last_error: str | None = Field(None, description="Last error class seen by any sidecar.")


class _Common(_Status):
    observed_generation: int | None = Field(None, description="The generation last reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Degraded, Invalid."
    )
    ready: str | None = Field(None, description="'True' when the resource is valid and served.")
    open_circuits: str | None = Field(
        None, description="Open circuits / instances, e.g. '1/6' (any sidecar reporting open)."
    )
    instances: list[InstanceCircuits] = Field(
        default_factory=list, description="Circuit state per model instance, over all sidecars."
    )


class TaskGroupStatus(_Common):
    """Status of a TaskGroup."""

    tiers: int | None = Field(None, description="Number of tiers.")
    strategy: str | None = Field(None, description="Effective fallback strategy.")
    pools: list[str] = Field(default_factory=list, description="Pools that serve this group.")


class PollingPoolStatus(_Common):
    """Status of a PollingPool."""

    groups: str | None = Field(None, description="The pool's task groups, comma separated.")
    rotation: str | None = Field(None, description="Effective rotation strategy.")
    sidecars: int | None = Field(
        None, description="Sidecars serving this pool: the desired replicas of its workloads "
        "(Deployments and StatefulSets: replicas; Jobs and CronJobs: parallelism)."
    )
    sidecars_ready: int | None = Field(
        None, description="Sidecars that answered the last status poll and report ready."
    )
    deployments: list[str] = Field(default_factory=list, description="Deployments served.")
    workloads: list[str] = Field(
        default_factory=list,
        description="Every workload served, as Kind/name (Deployment, StatefulSet, Job, CronJob).",
    )
    config_map: str | None = Field(None, description="The rendered ConfigMap's name.")
    config_version: str | None = Field(None, description="Hash of the rendered config.")
