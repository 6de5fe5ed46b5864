"""Fallback behaviour of a task group, circuit breakers, and the legacy global fallback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from .admission import rule, validations
from .base import ConfigModel

__all__ = [
    "DEFAULT_FALLBACK",
    "CircuitBreaker",
    "EffectiveFallback",
    "FallbackConfig",
    "FallbackStrategy",
    "GlobalFallback",
]

FallbackStrategy = Literal["echelon_down", "task_group_switch", "provider_failover", "model_rotate"]


DEFAULT_RECOVERY_TIME = 60.0


class CircuitBreaker(ConfigModel):
    """Per-instance breaker: closed -> open after consecutive failures -> half-open probes."""

    model_config = ConfigDict(json_schema_extra=validations(rule(
        "!has(self.maxRecoveryTime) || self.maxRecoveryTime >= "
        f"(has(self.recoveryTime) ? self.recoveryTime : {DEFAULT_RECOVERY_TIME!r})",
        "maxRecoveryTime must be at least recoveryTime (default 60)")))

    failure_threshold: int = Field(
        5, ge=1, le=10_000, description="Consecutive failures that open the circuit."
    )
    recovery_time: float = Field(
        DEFAULT_RECOVERY_TIME, gt=0, le=86_400,
        description="Seconds an open circuit rejects calls before probing.",
    )
    half_open_requests: int = Field(
        1, ge=1, le=1000, description="Probe calls let through while half-open; all must succeed."
    )
    recovery_backoff: float = Field(
        2.0,
        ge=1,
        le=10,
        description="Each consecutive re-open multiplies the open period by this (1 = constant).",
    )
    max_recovery_time: float | None = Field(
        None,
        gt=0,
        le=86_400,
        description="Cap of the growing open period (default: 10 x recoveryTime).",
    )

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> CircuitBreaker:
        if self.max_recovery_time is not None and self.max_recovery_time < self.recovery_time:
            raise ValueError(
                f"max_recovery_time ({self.max_recovery_time}) must be at least recovery_time "
                f"({self.recovery_time})"
            )
        return self

    def open_period(self, reopen_count: int) -> float:
        """Seconds the circuit stays open after its ``reopen_count``-th consecutive re-open."""
        cap = self.max_recovery_time or self.recovery_time * 10
        try:
            period = self.recovery_time * self.recovery_backoff ** max(0, reopen_count)
        except OverflowError:
            return float(cap)
        return float(min(cap, period))


class FallbackConfig(ConfigModel):
    """How a task group degrades. Unset fields come from global_fallback, then defaults."""

    strategy: FallbackStrategy | None = Field(
        None,
        description="echelon_down: next tier, then fallbackGroups; task_group_switch: straight to "
        "fallbackGroups; provider_failover: a model of another provider first; model_rotate: "
        "rotate the starting model of a tier across requests.",
    )
    fallback_groups: list[str] | None = Field(
        None,
        description="Ordered group references ('group' or 'group.tier') tried after this group.",
    )
    max_attempts: int | None = Field(
        None, ge=1, le=100, description="Upstream calls one request may make over the whole chain."
    )
    retry_delay: float | None = Field(
        None,
        ge=0,
        le=600,
        description="Seconds before the 2nd attempt; doubles per attempt, with jitter. A longer "
        "Retry-After from the upstream wins for that instance.",
    )
    max_retry_delay: float | None = Field(
        None, ge=0, le=3600, description="Cap of the growing retry delay (default 30 s)."
    )
    circuit_breaker: CircuitBreaker | None = Field(
        None, description="Circuit breaker applied to each model instance of this group."
    )
    last_resort: str | None = Field(
        None,
        description="A group reference tried when every other instance is open or failed, "
        "ignoring its circuit state.",
    )


class GlobalFallback(ConfigModel):
    """Legacy single fallback setting. Deprecated: each group should carry its own."""

    enabled: bool = Field(True, description="Apply these values to groups that lack them.")
    strategy: FallbackStrategy | None = None
    fallback_groups: list[str] | None = None
    max_attempts: int | None = Field(None, ge=1, le=100)
    retry_delay: float | None = Field(None, ge=0, le=600)
    max_retry_delay: float | None = Field(None, ge=0, le=3600)
    circuit_breaker: CircuitBreaker | None = None

    @model_validator(mode="after")
    def _no_global_fallback_groups(self) -> GlobalFallback:
        if self.fallback_groups:
            raise ValueError(
                "global_fallback.fallback_groups is not supported: a chain shared by every group "
                "is what per-group fallback replaces; put fallback_groups in each group's "
                "fallback_config"
            )
        return self


@dataclass(frozen=True, slots=True)
class EffectiveFallback:
    """A group's fallback with every value decided (group, then global fallback, then defaults)."""

    strategy: FallbackStrategy
    fallback_groups: tuple[str, ...]
    max_attempts: int
    retry_delay: float
    max_retry_delay: float
    circuit_breaker: CircuitBreaker
    last_resort: str | None
    #: field name -> "group" | "global_fallback" | "default": where each value came from
    origins: tuple[tuple[str, str], ...] = ()


DEFAULT_FALLBACK = EffectiveFallback(
    strategy="echelon_down",
    fallback_groups=(),
    max_attempts=3,
    retry_delay=0.0,
    max_retry_delay=30.0,
    circuit_breaker=CircuitBreaker(),
    last_resort=None,
)
