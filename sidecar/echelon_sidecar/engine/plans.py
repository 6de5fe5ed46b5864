"""Precomputed plans: what a request walks, built once per config (see ``planner``).

- :class:`InstancePlan` -- one model of one tier: its :class:`Instance`, precomputed
  :class:`AttemptSettings`, circuit breaker, model-level concurrency limit and Retry-After memo.
- :class:`TierPlan` -- one step of a chain: its models, attempt budget, timeout, the strategy
  of the group it belongs to, its ``rpm_limit`` window and echelon-level concurrency limit.
- :class:`InstancePoolPlan` -- a polling pool's instances: their health, the rotation over
  them and the pool's rate and token limits.
- :class:`Route` -- everything one target needs: the pool phase (if any), the chain steps, the
  last-resort steps, the attempt cap and retry delays of the governing group, and the
  request-level slots (node, entry group) and session pins.

Plans are read-only once built; the stateful objects they point to (breakers, limiters,
rotations, health, pins) are shared through the state registry so that a reload keeps them
where their parameters did not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import GroupRef, PollingPool, WorkflowNode
from .breaker import Breaker
from .concurrency import ConcurrencyLimit
from .health import InstanceHealth
from .instance import AttemptSettings, Instance
from .limiters import RateLimiter, SlidingWindow, TokenBucket
from .rotation import Rotation
from .sessions import InstanceKey, SessionPins
from .tokens import TokenWindow

__all__ = [
    "InstancePlan",
    "InstancePoolPlan",
    "RetryAfterMemo",
    "RotateCounter",
    "Route",
    "TierPlan",
]


class RetryAfterMemo:
    """When a model instance asked (Retry-After) not to be called before."""

    __slots__ = ("until",)

    def __init__(self) -> None:
        self.until = 0.0


class RotateCounter:
    """Per-tier request counter of ``model_rotate``: where the next request starts."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        value = self.value
        self.value = value + 1
        return value


@dataclass(slots=True, eq=False)
class InstancePlan:
    group: str
    tier: str
    model: str
    key: InstanceKey
    instance: Instance | None
    provider: str
    """The catalog provider kind (for the trail)."""
    provider_key: str
    """What ``provider_failover`` compares (openai/openai_compatible told apart by host)."""
    settings: AttemptSettings | None
    breaker: Breaker
    model_slots: ConcurrencyLimit | None
    memo: RetryAfterMemo
    cannot_serve: str | None
    """Set when the instance can never serve this tier (not in the catalog, no reasoning
    control while the tier enables thinking): skipped with this reason, without a call."""
    tier_plan: TierPlan = field(init=False, repr=False)


@dataclass(slots=True, eq=False)
class TierPlan:
    group: str
    tier: str
    label: str
    strategy: str
    models: tuple[InstancePlan, ...]
    budget: int
    timeout: float
    rpm: SlidingWindow | None
    tpm: TokenWindow | None
    slots: ConcurrencyLimit | None
    rotor: RotateCounter | None
    index: dict[str, int]
    first_pass: int = field(init=False)
    """Calls of the first pass over a chain: each distinct model once (within the budget)."""

    def __post_init__(self) -> None:
        self.first_pass = min(self.budget, len(self.models))
        for inst in self.models:
            inst.tier_plan = self


@dataclass(slots=True, eq=False)
class InstancePoolPlan:
    """The instances a request rotates over in a polling pool (not the operator's
    ``PoolConfigMapPlan``, what a pool's ConfigMap holds)."""

    name: str
    spec: PollingPool
    instances: tuple[InstancePlan, ...]
    health: tuple[InstanceHealth, ...]
    rotation: Rotation
    rate: RateLimiter | None
    tpm: TokenWindow | None
    index: dict[InstanceKey, int]
    fallback_strategy: str
    max_instance_attempts: int


@dataclass(slots=True, eq=False)
class Route:
    kind: str
    name: str
    node_name: str | None
    entry: GroupRef | None
    node: WorkflowNode | None
    pool: InstancePoolPlan | None
    chain: tuple[TierPlan, ...]
    last_resort: tuple[TierPlan, ...]
    max_attempts: int
    retry_delay: float
    max_retry_delay: float
    node_slots: ConcurrencyLimit | None
    group_slots: ConcurrencyLimit | None
    group_name: str | None
    sessions: SessionPins
    chain_index: dict[InstanceKey, tuple[int, int]]
    global_rate: TokenBucket | SlidingWindow | None
    """The config's global ``rate_limiting`` (one token per request)."""
    global_tpm: TokenWindow | None
    """The global ``rate_limiting.tpm_limit``."""
    reply_budget: int
    """Output tokens a request without ``max_tokens`` is reserved for (request-level token
    budgets): the ``default_max_tokens`` of the route's first model."""

    @staticmethod
    def index_chain(chain: tuple[TierPlan, ...]) -> dict[InstanceKey, tuple[int, int]]:
        index: dict[InstanceKey, tuple[int, int]] = {}
        for step, tier in enumerate(chain):
            for position, inst in enumerate(tier.models):
                index.setdefault(inst.key, (step, position))
        return index
