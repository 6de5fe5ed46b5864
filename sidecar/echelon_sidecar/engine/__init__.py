"""Echelon's routing engine (being built): clock, limiters, concurrency, breakers so far."""

from ..errors import RoutingError
from .breaker import Breaker, BreakerKey, BreakerState
from .classify import Disposition, class_of_status, disposition_of
from .clock import Clock, FakeClock, SystemClock, TimerHandle
from .concurrency import Admission, ConcurrencyLimit
from .errors import (
    AllCircuitsOpen,
    ChainExhausted,
    InstanceCannotServe,
    LimitRefused,
    ProviderError,
    RequestRejected,
    UnknownTarget,
    UpstreamError,
)
from .limiters import RateLimiter, SlidingWindow, TokenBucket

__all__ = [
    "Admission",
    "AllCircuitsOpen",
    "Breaker",
    "BreakerKey",
    "BreakerState",
    "ChainExhausted",
    "Clock",
    "ConcurrencyLimit",
    "Disposition",
    "FakeClock",
    "InstanceCannotServe",
    "LimitRefused",
    "ProviderError",
    "RateLimiter",
    "RequestRejected",
    "RoutingError",
    "SlidingWindow",
    "SystemClock",
    "TimerHandle",
    "TokenBucket",
    "UnknownTarget",
    "UpstreamError",
    "class_of_status",
    "disposition_of",
]
