"""Echelon's routing engine: fallback chains, pools, circuit breakers, rate and concurrency
limits -- pure asyncio, no HTTP, no Kubernetes.

The engine takes a request and a target (a group reference, a polling pool or a workflow
node), calls instances through a :class:`Provider`, and returns an :class:`Outcome` with the
full attempt trail. The clock and randomness are injected, so tests never sleep. See
``docs/routing.md`` for the semantics, and each module's docstring for its part.
"""

from ..errors import RoutingError
from .breaker import Breaker, BreakerKey, BreakerState
from .classify import Disposition, class_of_status, disposition_of
from .clock import Clock, FakeClock, SystemClock, TimerHandle
from .concurrency import Admission, ConcurrencyLimit
from .engine import Engine
from .errors import (
    AllCircuitsOpen,
    ChainExhausted,
    InstanceCannotServe,
    LimitRefused,
    ProviderError,
    RequestRejected,
    RequestUnservable,
    UnknownTarget,
    UpstreamError,
)
from .events import EngineListener, NullListener
from .health import InstanceHealth
from .instance import AttemptSettings, Instance
from .limiters import RateLimiter, SlidingWindow, TokenBucket
from .outcome import Attempt, Outcome
from .provider import Provider
from .request import EngineRequest
from .rotation import LeastRecentlyUsed, RoundRobin, SmoothWeighted
from .serve import Serving
from .sessions import SessionPins
from .targets import Target

__all__ = [
    "Admission",
    "AllCircuitsOpen",
    "Attempt",
    "AttemptSettings",
    "Breaker",
    "BreakerKey",
    "BreakerState",
    "ChainExhausted",
    "Clock",
    "ConcurrencyLimit",
    "Disposition",
    "Engine",
    "EngineListener",
    "EngineRequest",
    "FakeClock",
    "Instance",
    "InstanceCannotServe",
    "InstanceHealth",
    "LeastRecentlyUsed",
    "LimitRefused",
    "NullListener",
    "Outcome",
    "Provider",
    "ProviderError",
    "RateLimiter",
    "RequestRejected",
    "RequestUnservable",
    "RoundRobin",
    "RoutingError",
    "Serving",
    "SessionPins",
    "SlidingWindow",
    "SmoothWeighted",
    "SystemClock",
    "Target",
    "TimerHandle",
    "TokenBucket",
    "UnknownTarget",
    "UpstreamError",
    "class_of_status",
    "disposition_of",
]
