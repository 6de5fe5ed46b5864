"""A polling pool: a task-dedicated set of instances served in rotation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ConfigModel
from .limits import RateLimiting

__all__ = ["PollingPool", "PollingPoolSpec", "RotationStrategy", "SessionAffinity"]

RotationStrategy = Literal["round_robin", "least_recently_used", "weighted"]
PoolFallback = Literal["instance_rotation", "simple_retry"]


class SessionAffinity(ConfigModel):
    """Multi-turn conversations are pinned to one instance; pins expire when idle."""

    idle_ttl: float = Field(
        1800.0, gt=0, le=604_800, description="Seconds a session pin survives without a request."
    )
    max_sessions: int = Field(
        10_000, ge=1, le=10_000_000, description="Pins kept at most (least recently used go first)."
    )


class PollingPoolSpec(ConfigModel):
    """The spec of a PollingPool: instances of its task groups' tiers, served in rotation."""

    description: str | None = Field(None, description="What this pool serves.")
    task_groups: list[str] = Field(
        min_length=1,
        description="Group references ('group' or 'group.tier') whose instances form the pool. "
        "A pool should serve one task type.",
    )
    rotation_strategy: RotationStrategy = Field(
        "round_robin", description="How the next instance is chosen."
    )
    weights: dict[str, float] | None = Field(
        None,
        description="Weights per model id for rotationStrategy weighted (default 1 each).",
    )
    health_check_interval: float | None = Field(
        None,
        gt=0,
        le=86_400,
        description="Seconds between active health checks of the pool's instances (off if unset).",
    )
    failure_threshold: int = Field(
        3,
        ge=1,
        le=10_000,
        description="Consecutive failures that take an instance out of rotation.",
    )
    recovery_time: float = Field(
        60.0, gt=0, le=86_400, description="Seconds an unhealthy instance stays out of rotation."
    )
    rate_limiting: RateLimiting | None = Field(
        None, description="Request-rate budget of the whole pool, cluster-wide."
    )
    fallback_strategy: PoolFallback = Field(
        "instance_rotation",
        description="instance_rotation: take the next healthy instance; simple_retry: retry the "
        "same instance.",
    )
    max_instance_attempts: int = Field(
        2, ge=1, le=100, description="Calls one request may make in this pool."
    )
    session_affinity: SessionAffinity = Field(
        default_factory=SessionAffinity,
        description="Pinning of multi-turn conversations to one instance.",
    )


class PollingPool(PollingPoolSpec):
    """A polling pool as written in the source documents' files (may carry its own name)."""

    name: str | None = Field(None, description="The pool's name (per-pool files).")
